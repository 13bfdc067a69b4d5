/* The LLaMA SentencePiece-BPE tokenizer stored in a GGUF file (tokenizer.ggml.model = "llama"),
 * behaving as llama.cpp's SPM tokenizer does:
 *   encode: [BOS] + pieces of ("▁" + text with every ' ' replaced by "▁"); the text is split into
 *           UTF-8 characters, then the adjacent pair whose concatenation is a vocabulary piece of
 *           the highest score is merged, repeatedly (ties: the leftmost pair); a final symbol that
 *           is not a piece is emitted as byte tokens "<0xXX>" (byte fallback), or <unk> when the
 *           vocabulary has no such byte token.
 *   decode: "▁" -> ' ', byte tokens -> their byte, control tokens (BOS/EOS) -> nothing, unknown ->
 *           U+2585 as llama.cpp; the one space the encoder prefixed is removed.
 * The special-token text "<s>" in the input is ordinary text (no special-token parsing). */
#ifndef SD_LLM_TOKENIZER_H
#define SD_LLM_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"
#include "io/gguf.h"

/* Token types (tokenizer.ggml.token_type), SentencePiece numbering. */
enum {
    SD_TOK_NORMAL = 1,
    SD_TOK_UNKNOWN = 2,
    SD_TOK_CONTROL = 3,
    SD_TOK_USER_DEFINED = 4,
    SD_TOK_UNUSED = 5,
    SD_TOK_BYTE = 6
};

typedef struct sd_tokenizer sd_tokenizer;

/* Reads tokenizer.ggml.{model,tokens,scores,token_type,bos_token_id,eos_token_id,
 * unknown_token_id,add_bos_token,add_space_prefix}. The tokenizer owns copies (the GGUF may be
 * closed afterwards). SD_E_UNSUPPORTED for a model other than "llama". */
sd_status sd_tokenizer_from_gguf(const sd_gguf *g, sd_tokenizer **out, sd_error *err);
void sd_tokenizer_free(sd_tokenizer *tok);

int32_t sd_tokenizer_n_vocab(const sd_tokenizer *tok);
int32_t sd_tokenizer_bos(const sd_tokenizer *tok);
int32_t sd_tokenizer_eos(const sd_tokenizer *tok);
/* The stored piece (with "▁"), its type; NULL / 0 for an id out of range. */
const char *sd_tokenizer_piece(const sd_tokenizer *tok, int32_t id);
int sd_tokenizer_type(const sd_tokenizer *tok, int32_t id);
/* id of an exact piece, or -1. */
int32_t sd_tokenizer_find(const sd_tokenizer *tok, const char *piece, size_t len);

/* Encodes len bytes of text (any bytes; invalid UTF-8 goes through byte fallback). add_bos: put
 * BOS first. *ids is malloc'd (free with free()), *n_ids its length. */
sd_status sd_tokenizer_encode(const sd_tokenizer *tok, const char *text, size_t len, int add_bos,
                              int32_t **ids, size_t *n_ids, sd_error *err);
/* Decodes ids into a malloc'd NUL-terminated string (*len bytes, excluding the NUL). */
sd_status sd_tokenizer_decode(const sd_tokenizer *tok, const int32_t *ids, size_t n_ids,
                              char **text, size_t *len, sd_error *err);

/* Copies n bytes into a malloc'd NUL-terminated string where every ill-formed UTF-8 sequence (its
 * maximal valid prefix, or one bad byte) becomes U+FFFD, as Python's decode("utf-8", "replace")
 * does; decoded token sequences may end inside a multi-byte character. */
sd_status sd_utf8_repair(const char *in, size_t n, char **out, size_t *out_len, sd_error *err);

#endif
