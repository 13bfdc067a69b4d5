/* SentencePiece-BPE encode/decode over a GGUF vocabulary; see tokenizer.h.
 * Legend: V vocabulary size, S symbols (UTF-8 characters) of the escaped text. */
#include "llm/tokenizer.h"

#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/array.h"
#include "core/hash.h"

#define SPACE_MARK "\xe2\x96\x81" /* U+2581 LOWER ONE EIGHTH BLOCK, SentencePiece's space */
#define SPACE_MARK_LEN 3

struct sd_tokenizer {
    int32_t n_vocab;
    char **piece;       /* [V] NUL-terminated copies */
    uint32_t *piece_len;/* [V] */
    float *score;       /* [V] */
    int32_t *type;      /* [V] */
    int32_t bos, eos, unk;
    int add_bos, add_space_prefix;
    int32_t byte_token[256]; /* id of "<0xXX>", or -1 */
    int32_t *table;     /* open-addressing hash: piece -> id, -1 empty */
    size_t table_mask;
};

static uint64_t hash_bytes(const char *s, size_t n) { return sd_fnv1a(SD_FNV1A_INIT, s, n); }

int32_t sd_tokenizer_find(const sd_tokenizer *tok, const char *piece, size_t len) {
    for (size_t h = hash_bytes(piece, len) & tok->table_mask;; h = (h + 1) & tok->table_mask) {
        int32_t id = tok->table[h];
        if (id < 0) return -1;
        if (tok->piece_len[id] == len && !memcmp(tok->piece[id], piece, len)) return id;
    }
}

static const sd_gguf_kv *array_kv(const sd_gguf *g, const char *key, sd_gguf_vtype et,
                                  sd_error *err) {
    const sd_gguf_kv *kv = sd_gguf_find_kv(g, key);
    if (!kv) {
        sd_fail(err, SD_E_FORMAT, "%s: missing key '%s'", sd_gguf_path(g), key);
        return NULL;
    }
    if (kv->type != SD_GGUF_ARRAY || kv->arr_type != et) {
        sd_fail(err, SD_E_FORMAT, "%s: key '%s' has the wrong type", sd_gguf_path(g), key);
        return NULL;
    }
    return kv;
}

static sd_status get_bool_or(const sd_gguf *g, const char *key, int def, int *out, sd_error *err) {
    const sd_gguf_kv *kv = sd_gguf_find_kv(g, key);
    if (!kv) {
        *out = def;
        return SD_OK;
    }
    if (kv->type != SD_GGUF_BOOL)
        return sd_fail(err, SD_E_FORMAT, "%s: key '%s' is not a bool", sd_gguf_path(g), key);
    *out = kv->v.u != 0;
    return SD_OK;
}

sd_status sd_tokenizer_from_gguf(const sd_gguf *g, sd_tokenizer **out, sd_error *err) {
    *out = NULL;
    const char *path = sd_gguf_path(g), *model = NULL;
    sd_status s = sd_gguf_get_str(g, "tokenizer.ggml.model", &model, err);
    if (s) return s;
    if (strcmp(model, "llama"))
        return sd_fail(err, SD_E_UNSUPPORTED,
                       "%s: tokenizer model '%s' is not supported (need 'llama', SentencePiece)",
                       path, model);
    const sd_gguf_kv *tokens = array_kv(g, "tokenizer.ggml.tokens", SD_GGUF_STRING, err);
    if (!tokens) return err ? err->code : SD_E_FORMAT;
    const sd_gguf_kv *scores = sd_gguf_find_kv(g, "tokenizer.ggml.scores");
    const sd_gguf_kv *types = sd_gguf_find_kv(g, "tokenizer.ggml.token_type");
    uint64_t n = tokens->arr_n;
    if (n == 0 || n > INT32_MAX / 4)
        return sd_fail(err, SD_E_FORMAT, "%s: vocabulary of %llu tokens", path, (unsigned long long)n);
    if (scores && (scores->type != SD_GGUF_ARRAY || scores->arr_type != SD_GGUF_F32 || scores->arr_n != n))
        return sd_fail(err, SD_E_FORMAT, "%s: tokenizer.ggml.scores is not %llu f32", path,
                       (unsigned long long)n);
    if (types && (types->type != SD_GGUF_ARRAY || types->arr_type != SD_GGUF_I32 || types->arr_n != n))
        return sd_fail(err, SD_E_FORMAT, "%s: tokenizer.ggml.token_type is not %llu i32", path,
                       (unsigned long long)n);

    sd_tokenizer *t = calloc(1, sizeof *t);
    if (!t) return sd_fail(err, SD_E_NOMEM, "out of memory");
    t->n_vocab = (int32_t)n;
    const size_t cap = sd_array_next_cap(0, 2 * (size_t)n, 16); /* hash slots, a power of two */
    t->piece = calloc(n, sizeof *t->piece);
    t->piece_len = calloc(n, sizeof *t->piece_len);
    t->score = calloc(n, sizeof *t->score);
    t->type = calloc(n, sizeof *t->type);
    t->table = malloc(cap * sizeof *t->table);
    t->table_mask = cap - 1;
    if (!t->piece || !t->piece_len || !t->score || !t->type || !t->table) {
        sd_tokenizer_free(t);
        return sd_fail(err, SD_E_NOMEM, "out of memory");
    }
    memset(t->table, 0xff, cap * sizeof *t->table);
    for (int32_t i = 0; i < t->n_vocab; i++) {
        size_t len = tokens->arr_str_len[i];
        t->piece[i] = malloc(len + 1);
        if (!t->piece[i]) {
            sd_tokenizer_free(t);
            return sd_fail(err, SD_E_NOMEM, "out of memory");
        }
        memcpy(t->piece[i], tokens->arr_str[i], len + 1);
        t->piece_len[i] = (uint32_t)len;
        t->score[i] = scores ? ((const float *)scores->arr)[i] : 0.0f;
        t->type[i] = types ? ((const int32_t *)types->arr)[i] : SD_TOK_NORMAL;
        /* First occurrence wins for duplicate pieces (as a std::map insert in llama.cpp would). */
        if (sd_tokenizer_find(t, t->piece[i], len) < 0) {
            size_t h = hash_bytes(t->piece[i], len) & t->table_mask;
            while (t->table[h] >= 0) h = (h + 1) & t->table_mask;
            t->table[h] = i;
        }
    }
    for (int b = 0; b < 256; b++) { /* -1 where the vocabulary has no "<0xXX>" */
        char hex[8];
        static const char digits[] = "0123456789ABCDEF";
        memcpy(hex, "<0x", 3);
        hex[3] = digits[b >> 4];
        hex[4] = digits[b & 15];
        hex[5] = '>';
        t->byte_token[b] = sd_tokenizer_find(t, hex, 6);
    }
    uint32_t bos, eos, unk;
    if ((s = sd_gguf_get_u32_or(g, "tokenizer.ggml.bos_token_id", 1, &bos, err)) ||
        (s = sd_gguf_get_u32_or(g, "tokenizer.ggml.eos_token_id", 2, &eos, err)) ||
        (s = sd_gguf_get_u32_or(g, "tokenizer.ggml.unknown_token_id", 0, &unk, err)) ||
        (s = get_bool_or(g, "tokenizer.ggml.add_bos_token", 1, &t->add_bos, err)) ||
        (s = get_bool_or(g, "tokenizer.ggml.add_space_prefix", 1, &t->add_space_prefix, err))) {
        sd_tokenizer_free(t);
        return s;
    }
    if (bos >= n || eos >= n || unk >= n) {
        sd_tokenizer_free(t);
        return sd_fail(err, SD_E_FORMAT, "%s: special token id out of the vocabulary (%u/%u/%u of %llu)",
                       path, bos, eos, unk, (unsigned long long)n);
    }
    t->bos = (int32_t)bos;
    t->eos = (int32_t)eos;
    t->unk = (int32_t)unk;
    *out = t;
    return SD_OK;
}

void sd_tokenizer_free(sd_tokenizer *tok) {
    if (!tok) return;
    if (tok->piece)
        for (int32_t i = 0; i < tok->n_vocab; i++) free(tok->piece[i]);
    free(tok->piece);
    free(tok->piece_len);
    free(tok->score);
    free(tok->type);
    free(tok->table);
    free(tok);
}

int32_t sd_tokenizer_n_vocab(const sd_tokenizer *tok) { return tok->n_vocab; }
int32_t sd_tokenizer_bos(const sd_tokenizer *tok) { return tok->bos; }
int32_t sd_tokenizer_eos(const sd_tokenizer *tok) { return tok->eos; }
const char *sd_tokenizer_piece(const sd_tokenizer *tok, int32_t id) {
    return id >= 0 && id < tok->n_vocab ? tok->piece[id] : NULL;
}
int sd_tokenizer_type(const sd_tokenizer *tok, int32_t id) {
    return id >= 0 && id < tok->n_vocab ? tok->type[id] : 0;
}

/* ---- encode --------------------------------------------------------------------------------- */

typedef struct {
    int prev, next;   /* neighbours in the live list, -1 at the ends */
    size_t off, n;    /* bytes [off, off+n) of the escaped text; n == 0 once merged away */
} symbol;

typedef struct {
    int left, right;
    float score;
    size_t size;      /* bytes of the merged text, to detect stale entries */
} bigram;

/* Max-heap order: higher score first, then the leftmost pair. */
static int bigram_before(const bigram *a, const bigram *b) {
    return a->score > b->score || (a->score == b->score && a->left < b->left);
}

typedef struct {
    bigram *v;
    size_t n, cap;
} heap;

static int heap_push(heap *h, bigram b) {
    bigram *v = sd_array_grow(h->v, &h->cap, h->n + 1, sizeof *v, 64);
    if (!v) return -1;
    h->v = v;
    size_t i = h->n++;
    while (i > 0 && bigram_before(&b, &h->v[(i - 1) / 2])) {
        h->v[i] = h->v[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h->v[i] = b;
    return 0;
}

static bigram heap_pop(heap *h) {
    bigram top = h->v[0], last = h->v[--h->n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->n) break;
        if (c + 1 < h->n && bigram_before(&h->v[c + 1], &h->v[c])) c++;
        if (!bigram_before(&h->v[c], &last)) break;
        h->v[i] = h->v[c];
        i = c;
    }
    if (h->n) h->v[i] = last;
    return top;
}

static int try_bigram(const sd_tokenizer *tok, const char *text, const symbol *sym, int left,
                      int right, heap *h) {
    if (left < 0 || right < 0) return 0;
    size_t n = sym[left].n + sym[right].n;
    int32_t id = sd_tokenizer_find(tok, text + sym[left].off, n);
    if (id < 0) return 0;
    bigram b = {left, right, tok->score[id], n};
    return heap_push(h, b);
}

/* Length of the UTF-8 sequence a lead byte announces (1 for continuation / invalid bytes), as
 * llama.cpp's unicode_len_utf8. */
static size_t utf8_len(unsigned char c) {
    static const unsigned char lookup[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    return lookup[c >> 4];
}

typedef struct {
    int32_t *v;
    size_t n, cap;
} idvec;

static int push_id(idvec *o, int32_t id) {
    int32_t *v = sd_array_grow(o->v, &o->cap, o->n + 1, sizeof *v, 32);
    if (!v) return -1;
    o->v = v;
    o->v[o->n++] = id;
    return 0;
}

sd_status sd_tokenizer_encode(const sd_tokenizer *tok, const char *text, size_t len, int add_bos,
                              int32_t **ids, size_t *n_ids, sd_error *err) {
    *ids = NULL;
    *n_ids = 0;
    idvec out = {0};
    char *esc = NULL;
    symbol *sym = NULL;
    heap h = {0};
    if (add_bos && push_id(&out, tok->bos)) goto nomem;
    if (len > 0) {
        /* Escaped text: [▁] + text with ' ' -> ▁ (at most 3 bytes per input byte). */
        size_t cap;
        if (!sd_mul_size(len + 1, SPACE_MARK_LEN, &cap) || !(esc = malloc(cap))) goto nomem;
        size_t m = 0;
        if (tok->add_space_prefix) {
            memcpy(esc, SPACE_MARK, SPACE_MARK_LEN);
            m = SPACE_MARK_LEN;
        }
        for (size_t i = 0; i < len; i++) {
            if (text[i] == ' ') {
                memcpy(esc + m, SPACE_MARK, SPACE_MARK_LEN);
                m += SPACE_MARK_LEN;
            } else {
                esc[m++] = text[i];
            }
        }
        /* Symbols: one per UTF-8 character. */
        if (!(sym = malloc(m * sizeof *sym))) goto nomem;
        int ns = 0;
        for (size_t off = 0; off < m; ns++) {
            size_t n = utf8_len((unsigned char)esc[off]);
            if (n > m - off) n = m - off;
            sym[ns] = (symbol){ns - 1, -1, off, n};
            if (ns > 0) sym[ns - 1].next = ns;
            off += n;
        }
        for (int i = 1; i < ns; i++)
            if (try_bigram(tok, esc, sym, i - 1, i, &h)) goto nomem;
        /* Merge the best pair until none is left; skip entries made stale by earlier merges. */
        while (h.n) {
            bigram b = heap_pop(&h);
            symbol *l = &sym[b.left], *r = &sym[b.right];
            if (l->n == 0 || r->n == 0 || l->n + r->n != b.size) continue;
            l->n += r->n;
            r->n = 0;
            l->next = r->next;
            if (r->next >= 0) sym[r->next].prev = b.left;
            if (try_bigram(tok, esc, sym, l->prev, b.left, &h) ||
                try_bigram(tok, esc, sym, b.left, l->next, &h))
                goto nomem;
        }
        for (int i = 0; i >= 0 && ns > 0; i = sym[i].next) {
            int32_t id = sd_tokenizer_find(tok, esc + sym[i].off, sym[i].n);
            if (id >= 0) {
                if (push_id(&out, id)) goto nomem;
                continue;
            }
            /* Not a piece (only possible for single characters): one token per byte. */
            for (size_t k = 0; k < sym[i].n; k++) {
                int32_t bt = tok->byte_token[(unsigned char)esc[sym[i].off + k]];
                if (push_id(&out, bt >= 0 ? bt : tok->unk)) goto nomem;
            }
        }
    }
    free(esc);
    free(sym);
    free(h.v);
    if (!out.v && !(out.v = malloc(sizeof *out.v))) goto nomem;
    *ids = out.v;
    *n_ids = out.n;
    return SD_OK;
nomem:
    free(esc);
    free(sym);
    free(h.v);
    free(out.v);
    return sd_fail(err, SD_E_NOMEM, "tokenizer: out of memory");
}

/* ---- decode --------------------------------------------------------------------------------- */

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

sd_status sd_tokenizer_decode(const sd_tokenizer *tok, const int32_t *ids, size_t n_ids,
                              char **text, size_t *len, sd_error *err) {
    *text = NULL;
    size_t cap = 1, m = 0;
    for (size_t i = 0; i < n_ids; i++) {
        if (ids[i] < 0 || ids[i] >= tok->n_vocab)
            return sd_fail(err, SD_E_ARG, "tokenizer: token id %d out of range [0, %d)", ids[i],
                           tok->n_vocab);
        cap += tok->piece_len[ids[i]] + 3;
    }
    char *o = malloc(cap);
    if (!o) return sd_fail(err, SD_E_NOMEM, "tokenizer: out of memory");
    int first = 1, strip = 0;
    for (size_t i = 0; i < n_ids; i++) {
        const char *p = tok->piece[ids[i]];
        size_t pl = tok->piece_len[ids[i]];
        switch (tok->type[ids[i]]) {
        case SD_TOK_CONTROL:
        case SD_TOK_UNUSED: continue;
        case SD_TOK_UNKNOWN:
            memcpy(o + m, "\xe2\x96\x85", 3);
            m += 3;
            break;
        case SD_TOK_BYTE:
            if (pl == 6 && hexval(p[3]) >= 0 && hexval(p[4]) >= 0) {
                o[m++] = (char)(hexval(p[3]) * 16 + hexval(p[4]));
                break;
            }
            memcpy(o + m, p, pl);
            m += pl;
            break;
        case SD_TOK_USER_DEFINED:
            memcpy(o + m, p, pl);
            m += pl;
            break;
        default:
            if (first && tok->add_space_prefix && pl >= SPACE_MARK_LEN &&
                !memcmp(p, SPACE_MARK, SPACE_MARK_LEN))
                strip = 1;
            for (size_t k = 0; k < pl;) {
                if (k + SPACE_MARK_LEN <= pl && !memcmp(p + k, SPACE_MARK, SPACE_MARK_LEN)) {
                    o[m++] = ' ';
                    k += SPACE_MARK_LEN;
                } else {
                    o[m++] = p[k++];
                }
            }
        }
        first = 0;
    }
    if (strip) {
        memmove(o, o + 1, m - 1);
        m--;
    }
    o[m] = 0;
    *text = o;
    if (len) *len = m;
    return SD_OK;
}

/* ---- UTF-8 repair ----------------------------------------------------------------------- */

/* Valid range of the second byte after lead c (the later ones are always 80..BF); 0 if c is not
 * a lead byte. Returns the sequence length. */
static int utf8_lead(unsigned char c, unsigned char *lo, unsigned char *hi) {
    *lo = 0x80, *hi = 0xBF;
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) return 2;
    if (c == 0xE0) { *lo = 0xA0; return 3; }
    if (c >= 0xE1 && c <= 0xEC) return 3;
    if (c == 0xED) { *hi = 0x9F; return 3; }
    if (c == 0xEE || c == 0xEF) return 3;
    if (c == 0xF0) { *lo = 0x90; return 4; }
    if (c >= 0xF1 && c <= 0xF3) return 4;
    if (c == 0xF4) { *hi = 0x8F; return 4; }
    return 0;
}

sd_status sd_utf8_repair(const char *in, size_t n, char **out, size_t *out_len, sd_error *err) {
    size_t cap;
    if (!sd_mul_size(n, 3, &cap) || !(*out = malloc(cap + 1)))
        return sd_fail(err, SD_E_NOMEM, "out of memory");
    const unsigned char *s = (const unsigned char *)in;
    char *o = *out;
    size_t m = 0, i = 0;
    while (i < n) {
        unsigned char lo, hi;
        int len = utf8_lead(s[i], &lo, &hi);
        int k = 1;
        if (len > 1)
            for (; k < len && i + (size_t)k < n; k++) {
                unsigned char c = s[i + (size_t)k];
                if (k == 1 ? (c < lo || c > hi) : (c < 0x80 || c > 0xBF)) break;
            }
        if (len >= 1 && k == len) {
            memcpy(o + m, s + i, (size_t)len);
            m += (size_t)len;
        } else {
            memcpy(o + m, "\xef\xbf\xbd", 3); /* U+FFFD for the maximal subpart (or one byte) */
            m += 3;
        }
        i += (size_t)k;
    }
    o[m] = 0;
    if (out_len) *out_len = m;
    return SD_OK;
}
