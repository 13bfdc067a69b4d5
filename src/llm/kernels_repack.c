/* Repacking Q8_0 / Q4_0 weights into 16-row groups at model load (layout: kernels_repack.h), and
 * the activations' block corrections the repacked kernels start from. */
#include "llm/kernels_repack.h"

#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/omp.h"
#include "llm/kernels_impl.h"

int sd_llm_packable(const sd_wmat *W) {
    return (W->type == SD_GGML_Q8_0 || W->type == SD_GGML_Q4_0) && W->K > 0 && W->K % SD_LLM_QK == 0 && W->N > 0 &&
           W->data;
}

size_t sd_llm_packed_bytes(const sd_wmat *W) {
    if (!sd_llm_packable(W)) return 0;
    const size_t groups = ((size_t)W->N + SD_LLM_PACK_ROWS - 1) / SD_LLM_PACK_ROWS;
    size_t n;
    return sd_mul_size(groups, sd_llm_pack_group_bytes(W->type, W->K), &n) ? n : 0;
}

/* Group g of W into out (sd_llm_pack_group_bytes(W) bytes). */
static void pack_group(const sd_wmat *W, size_t g, unsigned char *out) {
    const size_t nb = (size_t)W->K / SD_LLM_QK, QB = sd_llm_pack_qbytes(W->type);
    const size_t bb = W->type == SD_GGML_Q8_0 ? 2 + SD_LLM_QK : 2 + SD_LLM_QK / 2; /* bytes of a stored block */
    unsigned char *d = out + nb * QB;
    for (size_t r = 0; r < SD_LLM_PACK_ROWS; r++) {
        const size_t row = g * SD_LLM_PACK_ROWS + r;
        if (row >= (size_t)W->N) break;
        const unsigned char *src = (const unsigned char *)W->data + row * W->row_bytes;
        for (size_t b = 0; b < nb; b++, src += bb) {
            memcpy(d + (b * SD_LLM_PACK_ROWS + r) * 2, src, 2); /* the float16 scale */
            /* 4-byte chunk k of the block's codes (Q8_0: 8 chunks, Q4_0: 4) to byte 64 k + 4 r */
            for (size_t k = 0; k < QB / 64; k++) memcpy(out + b * QB + 64 * k + 4 * r, src + 2 + 4 * k, 4);
        }
    }
}

/* Drops the whole pages of [p, p + n) from the process (a read-only file mapping: they come back
 * from the file if read again). */
static void release_pages(const void *p, size_t n) {
    const uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE), a = (uintptr_t)p, e = a + n;
    const uintptr_t a0 = (a + page - 1) / page * page, e0 = e / page * page;
    if (e0 > a0) madvise((void *)a0, e0 - a0, MADV_DONTNEED);
}

/* A packed matrix of 2 MiB or more lives in its own anonymous mapping (zero-filled: the padding
 * rows need no writes) of whole 2 MiB pages, which the kernel may back with transparent huge pages
 * (MADV_HUGEPAGE): a 7B model's 4 to 7 GB then take a few thousand page faults instead of a million
 * (each costs microseconds in a VM), and the kernels' streams miss the TLB 512x less often. A
 * smaller one is an ordinary zeroed allocation (a huge page each would cost more than it saves). */
#define HUGE_PAGE ((size_t)2 << 20)

static size_t mapped_bytes(size_t bytes) { return (bytes + HUGE_PAGE - 1) / HUGE_PAGE * HUGE_PAGE; }

static void *map_packed(size_t bytes) {
    if (bytes < HUGE_PAGE) return sd_calloc(1, bytes);
    const size_t n = mapped_bytes(bytes);
    if (n < bytes || n + HUGE_PAGE < n) return NULL;
    /* one huge page more, trimmed so that the mapping starts on a huge page */
    unsigned char *p = mmap(NULL, n + HUGE_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return NULL;
    const size_t head = (HUGE_PAGE - (uintptr_t)p % HUGE_PAGE) % HUGE_PAGE;
    if (head) munmap(p, head);
    munmap(p + head + n, HUGE_PAGE - head); /* head < HUGE_PAGE: there is always a tail */
#ifdef MADV_HUGEPAGE
    madvise(p + head, n, MADV_HUGEPAGE);
#endif
    return p + head;
}

int sd_llm_repack(sd_wmat *W, int release_source) {
    const size_t bytes = sd_llm_packed_bytes(W);
    if (!bytes || W->packed) return 0;
    unsigned char *out = map_packed(bytes);
    if (!out) return -1;
    const size_t gb = sd_llm_pack_group_bytes(W->type, W->K);
    const size_t groups = bytes / gb;
    /* in chunks of 64 groups (at 7B widths 2-6 MB of weights) so that the pages of the source are
     * released as the packing goes and the process never holds both copies of a matrix */
    const size_t chunk = 64;
    for (size_t c0 = 0; c0 < groups; c0 += chunk) {
        const size_t c1 = c0 + chunk < groups ? c0 + chunk : groups;
SD_OMP(omp parallel for schedule(static))
        for (size_t g = c0; g < c1; g++) pack_group(W, g, out + g * gb);
        if (release_source) {
            const size_t r0 = c0 * SD_LLM_PACK_ROWS, r1 = c1 * SD_LLM_PACK_ROWS < (size_t)W->N ? c1 * SD_LLM_PACK_ROWS
                                                                                                  : (size_t)W->N;
            release_pages((const char *)W->data + r0 * W->row_bytes, (r1 - r0) * W->row_bytes);
        }
    }
    W->packed = out;
    return 0;
}

void sd_llm_unpack(sd_wmat *W) {
    const size_t bytes = sd_llm_packed_bytes(W);
    if (W->packed && bytes < HUGE_PAGE) sd_free(W->packed);
    else if (W->packed) munmap(W->packed, mapped_bytes(bytes));
    W->packed = NULL;
}

int sd_llm_packed_in_use(void) { return sd_llm_kernels()->prange != NULL; }

void sd_llm_block_corr(sd_llm_work *w, size_t m0, size_t m1) {
    const size_t nb = w->Kp / SD_LLM_QK;
    for (size_t i = m0 * nb; i < m1 * nb; i++) {
        const int32_t *c = w->corr + i * 8;
        w->csum[i] = ((c[0] + c[1]) + (c[2] + c[3])) + ((c[4] + c[5]) + (c[6] + c[7]));
    }
}
