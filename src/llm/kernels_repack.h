/* Q8_0 / Q4_0 weights repacked at model load into row groups for the 8-bit products (the
 * llama.cpp arithmetic): one vector load of weights then feeds 16 output rows, and each output row
 * sits in its own 32-bit lane for a whole block, so a block's scale is applied to 16 rows at once.
 *
 * Layout of a matrix of N rows x K inputs (nb = K / 32 blocks): ceil(N / 16) groups of 16 rows,
 * group g holding rows 16g .. 16g + 15 (rows past N are zero), each group SD_LLM_PACK_GROUP_BYTES
 * apart (a multiple of 64, from 64-byte aligned memory):
 *   qs [nb][QB]   the block's codes, in 32-bit chunks: chunk k of row r at byte 64 k + 4 r
 *        Q8_0 (QB = 512): chunk k (k = 0..7) = the signed codes of elements 4k .. 4k+3;
 *        Q4_0 (QB = 256): chunk j (j = 0..3) = the stored bytes 4j .. 4j+3 of the block unchanged,
 *        so the low nibbles are elements 4j .. 4j+3 and the high nibbles elements 16+4j .. 16+4j+3
 *        (one AND gives the first, one shift and AND the second);
 *   d  [nb][16]   the blocks' float16 scales, row r at index r.
 * The bytes are those of the original blocks, moved: a packed matrix is as large as the stored one
 * (up to 15 padding rows). */
#ifndef SD_LLM_KERNELS_REPACK_H
#define SD_LLM_KERNELS_REPACK_H

#include "llm/kernels.h"

#define SD_LLM_PACK_ROWS 16

/* Code bytes of one block of a group: 512 (Q8_0) or 256 (Q4_0). */
static inline size_t sd_llm_pack_qbytes(sd_ggml_type t) { return t == SD_GGML_Q8_0 ? 512 : 256; }

/* Bytes from one group to the next. */
static inline size_t sd_llm_pack_group_bytes(sd_ggml_type t, int64_t K) {
    const size_t nb = (size_t)K / 32, b = nb * (sd_llm_pack_qbytes(t) + 2 * SD_LLM_PACK_ROWS);
    return (b + 63) / 64 * 64;
}

/* Whether W can be repacked (Q8_0 or Q4_0 with K a multiple of 32) and the packed bytes. */
int sd_llm_packable(const sd_wmat *W);
size_t sd_llm_packed_bytes(const sd_wmat *W);

/* Repacks W into W->packed (allocated here, freed by sd_llm_unpack). release_source: W->data lies
 * in a read-only file mapping whose pages may be dropped from the process after each share of
 * groups is packed (madvise MADV_DONTNEED; a later read of W->data faults them in again from the
 * file), so that the process does not hold both copies. 0 on success (also when W is not
 * packable: nothing is done), -1 out of memory. */
int sd_llm_repack(sd_wmat *W, int release_source);
void sd_llm_unpack(sd_wmat *W);

/* The prepared rows m0 .. m0 + rm - 1 of w (rm <= 8) as the kernels read them: 8-bit codes [K],
 * block corrections [nb] and block scales [nb, 8]. */
typedef struct {
    const int8_t *q[8];
    const int32_t *csum[8];
    const float *d8[8];
} sd_llm_pack_rows;

static inline sd_llm_pack_rows sd_llm_pack_rows_at(const sd_llm_work *w, size_t m0, int rm) {
    const size_t K = w->Kp, nb = K / 32;
    sd_llm_pack_rows r = {{0}, {0}, {0}};
    for (int i = 0; i < rm && i < 8; i++) {
        r.q[i] = w->q + (m0 + (size_t)i) * K;
        r.csum[i] = w->csum + (m0 + (size_t)i) * nb;
        r.d8[i] = w->d8 + (m0 + (size_t)i) * nb * 8;
    }
    return r;
}

/* Whether the kernels in use have products over repacked weights. */
int sd_llm_packed_in_use(void);

/* Block sums of the activations' corrections: csum[m, b] = sum of the 8 corr entries of row m's
 * block b (the work's csum, for rows [m0, m1)). */
void sd_llm_block_corr(sd_llm_work *w, size_t m0, size_t m1);

#endif
