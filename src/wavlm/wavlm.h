/* WavLM (Chen et al., arXiv 2110.13900) inference on the CPU, float32, from a safetensors file with
 * Hugging Face's tensor names. The architecture, and where each detail comes from: docs/WAVLM.md.
 *
 * Legend: n waveform samples (16 kHz), T frames (50 Hz: one per hop of 320 samples), C conv
 *         channels (512), D hidden size (1024 Large, 768 Base+), H heads, d = D/H, F feed-forward
 *         size, L Transformer layers, K positional-conv kernel (128), G its groups (16),
 *         B relative-position buckets (320).
 *
 *   x = waveform, layer-normalised over the whole input when `normalize` (Large)
 *   feature encoder: n_conv x [Conv1d (no padding) -> norm -> GELU]; norm is a LayerNorm over the
 *       channels of every frame in every layer ("layer", Large) or a GroupNorm with one group per
 *       channel, over time, after the first conv only ("group", Base+)           -> [T, C]
 *   feature projection: LayerNorm(C) -> Linear(C, D)                              -> [T, D]
 *   x += GELU(grouped Conv1d(D, D, K, padding K/2, weight-normalised), last frame dropped if K even)
 *   post-LN models only: x = LayerNorm(x)
 *   hidden_states[0] = x; for l < L: x = layer_l(x); hidden_states[l + 1] = x
 *   pre-LN models only: hidden_states[L] = LayerNorm(x) (the encoder's final norm)
 *
 *   layer (pre-LN, "stable layer norm", Large): h = LN1(x); x += Attn(h); x += FFN(LN2(x))
 *   layer (post-LN, Base+):                     x = LN1(x + Attn(x)); x = LN2(x + FFN(x))
 *   FFN(h) = W2 GELU(W1 h + b1) + b2; GELU exact (erf)
 *   Attn(h): per head, softmax_j(q_i.k_j / sqrt(d) + g_i * P[bucket(j - i)]) v_j, then Wo
 *       P [B, H]: the relative-position embedding of layer 0, shared by all layers
 *       g_i = a (b c - 1) + 2 per head, (a, b) = sigmoid of the sums of outputs 0-3 and 4-7 of
 *       Linear(d, 8) applied to head h's slice of h_i; c: a learnt constant per head and layer
 *
 * hidden_states[l] is what Hugging Face's WavLMModel returns as hidden_states[l]: l = 20 of
 * WavLM-Large is the audio modality of MODEL.md, l = L (24) its last layer (last_hidden_state). */
#ifndef SD_WAVLM_WAVLM_H
#define SD_WAVLM_WAVLM_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

#define SD_WAVLM_RATE 16000
#define SD_WAVLM_MAX_CONV 16
#define SD_WAVLM_MAX_OUT 8 /* hidden states one run can return */

typedef enum {
    SD_WAVLM_CONV_NORM_LAYER, /* LayerNorm over channels after every conv ("layer") */
    SD_WAVLM_CONV_NORM_GROUP  /* GroupNorm (one group per channel) after the first conv only ("group") */
} sd_wavlm_conv_norm;

typedef struct {
    int n_conv;
    int conv_dim[SD_WAVLM_MAX_CONV], conv_kernel[SD_WAVLM_MAX_CONV], conv_stride[SD_WAVLM_MAX_CONV];
    int conv_bias;                /* the convs of the feature encoder have biases */
    sd_wavlm_conv_norm conv_norm;
    int hidden, n_layers, n_heads, ffn;
    int pos_kernel, pos_groups;
    int num_buckets, max_distance;
    int stable_layer_norm;        /* 1: pre-LN layers and a final LayerNorm (Large); 0: post-LN */
    int normalize;                /* layer-normalise the waveform first */
    float eps;                    /* LayerNorm epsilon of the projection and Transformer (1e-5) */
    /* Derived: samples per frame and samples seen by one frame (320 and 400 for WavLM). */
    int hop, receptive;
} sd_wavlm_config;

typedef struct sd_wavlm sd_wavlm;

/* Loads a WavLM model from safetensors (F32, F16, BF16 or F64 tensors, converted to float32).
 *
 * Tensor names are Hugging Face's (WavLMModel), after stripping any number of leading "module."
 * (DataParallel) and "wavlm." (WavLMFor... heads) prefixes; tensors of other parts (heads,
 * masked_spec_embed, quantizer) are ignored. The positional conv's weight may be stored as
 * weight_g/weight_v, as parametrizations.weight.original0/original1 (newer PyTorch) or already
 * combined as weight.
 *
 * The configuration comes from the tensor shapes (layers, channels, kernel sizes, hidden size,
 * heads, feed-forward size, buckets, positional-conv kernel and groups, conv biases, the
 * feature-encoder norm) and from __metadata__ where the shapes cannot tell (Hugging Face
 * config.json names; see docs/WAVLM.md): conv_stride (default 5,2,2,2,2,2,2 for the standard
 * 7-layer stack of kernels 10,3,3,3,3,2,2; required otherwise), max_bucket_distance (800),
 * layer_norm_eps (1e-5), do_stable_layer_norm and normalize (default: true with the "layer" conv
 * norm, as WavLM-Large; false with "group", as WavLM-Base/Base+). A metadata value that
 * contradicts the tensors is an error. Messages start with the path. */
sd_status sd_wavlm_load(const char *path, sd_wavlm **out, sd_error *err);
/* The same from a whole file in memory (name for messages). */
sd_status sd_wavlm_load_memory(const uint8_t *buf, size_t size, const char *name, sd_wavlm **out,
                               sd_error *err);
void sd_wavlm_free(sd_wavlm *m);

const sd_wavlm_config *sd_wavlm_get_config(const sd_wavlm *m);
/* Number of float parameters held (after weight normalisation is folded in). */
size_t sd_wavlm_param_count(const sd_wavlm *m);
/* Frames the feature encoder gives for n samples (0 when n < receptive). */
size_t sd_wavlm_frames(const sd_wavlm_config *c, size_t n);
/* "WavLM 24 layers, hidden 1024, 16 heads, pre-LN, layer-norm conv" for messages. */
void sd_wavlm_describe(const sd_wavlm *m, char *out, size_t cap);

/* Scratch for running inputs of up to max_samples samples with up to `threads` OpenMP threads
 * (0: the current maximum). Reused across calls: a forward pass allocates nothing. */
typedef struct sd_wavlm_ws sd_wavlm_ws;
sd_status sd_wavlm_ws_create(const sd_wavlm *m, size_t max_samples, int threads, sd_wavlm_ws **out,
                             sd_error *err);
void sd_wavlm_ws_free(sd_wavlm_ws *ws);
size_t sd_wavlm_ws_max_samples(const sd_wavlm_ws *ws);

/* Runs the model on wav[n] (16 kHz mono; layer-normalised by the caller when config->normalize:
 * sd_wavlm_normalize) and writes hidden_states[layers[k]] to out[k] [T, D] for k < n_out
 * (0 <= layers[k] <= L; T = sd_wavlm_frames(n) >= 1). Layers above the highest one requested are
 * not run. n must not exceed the workspace's max_samples. */
sd_status sd_wavlm_forward(const sd_wavlm *m, sd_wavlm_ws *ws, const float *wav, size_t n,
                           const int *layers, int n_out, float *const *out, sd_error *err);

/* ---- whole recordings (wavlm_recording.c) ----------------------------------------------------
 *
 * Chunking policy (docs/WAVLM.md). A recording of n samples has F = sd_wavlm_frames(n) frames.
 * With Fw = sd_wavlm_frames(chunk samples) and O = overlap frames (overlap seconds x 50):
 *   F <= Fw: one window, the whole recording (exactly what the model gives on it);
 *   else m = ceil((F - O) / (Fw - O)) windows of Fw frames, the first at frame 0, the last ending
 *   at frame F, the others evenly between (start_i = round(i (F - Fw) / (m - 1)), halves up), so
 *   consecutive windows overlap by at least O frames; window i reads samples hop start_i ..
 *   hop (start_i + Fw - 1) + receptive (the last one to the end of the recording); each overlap is
 *   split at its middle: frame f comes from the later window when f >= (start_{i-1} + Fw +
 *   start_i) / 2 (integer division), so every frame has at least O / 2 frames of context on each
 *   side that has any. Frames lie on the whole recording's grid (starts are multiples of the hop).
 * The waveform normalisation (when the model has it) uses the statistics of the whole recording. */
#define SD_WAVLM_CHUNK_SECONDS 30.0
#define SD_WAVLM_OVERLAP_SECONDS 5.0

typedef struct {
    size_t sample_begin, sample_end; /* input samples of the window */
    size_t frame_begin;              /* its first frame on the recording's grid */
    size_t keep_begin, keep_end;     /* the frames taken from it */
} sd_wavlm_window;

/* Checks a chunk length and overlap against the model: the chunk must hold at least 2 frames and
 * more than the overlap, 0 <= overlap <= chunk / 2. Messages name the options. */
sd_status sd_wavlm_check_chunking(const sd_wavlm_config *c, double chunk_seconds, double overlap_seconds,
                                  sd_error *err);
/* Windows of a recording of n samples (checked chunking): returns their count (0 when n gives no
 * frame) and writes the first max of them to w (w may be NULL). */
size_t sd_wavlm_plan(const sd_wavlm_config *c, size_t n, double chunk_seconds, double overlap_seconds,
                     sd_wavlm_window *w, size_t max);

/* Runs whole recordings: normalisation, windows, the model once per window for all the layers
 * asked for. Holds the workspace and buffers, grown to the longest window seen (at most chunk +
 * one hop of samples), so recordings after the first allocate nothing new. Not thread-safe: one
 * runner per thread of recordings. */
typedef struct sd_wavlm_runner sd_wavlm_runner;
/* Receives, window by window in order, the kept frames rows [n_rows, D] of layer layers[k]; over
 * a recording each k gets sd_wavlm_frames(n) rows in all. A non-zero status stops the run. */
typedef sd_status (*sd_wavlm_sink)(void *user, int k, const float *rows, size_t n_rows, sd_error *err);

sd_status sd_wavlm_runner_create(const sd_wavlm *m, double chunk_seconds, double overlap_seconds,
                                 int threads, sd_wavlm_runner **out, sd_error *err);
void sd_wavlm_runner_free(sd_wavlm_runner *r);
/* wav[n]: raw 16 kHz mono samples (not normalised). layers as sd_wavlm_forward. */
sd_status sd_wavlm_run(sd_wavlm_runner *r, const float *wav, size_t n, const int *layers, int n_out,
                       sd_wavlm_sink sink, void *user, sd_error *err);

/* The waveform normalisation of WavLM-Large (fairseq's F.layer_norm over the whole input, no
 * affine, eps 1e-5): y = (x - mean) / sqrt(var + 1e-5), population variance, in double. */
void sd_wavlm_normalize(const float *x, size_t n, float *y);

/* Bucket of the relative position r = j - i (key minus query), as WavLM computes it: half of the
 * buckets for r > 0; |r| below B/4 exact; above, logarithmic up to max_distance; the last bucket
 * of each half beyond. */
int sd_wavlm_bucket(int64_t r, int num_buckets, int max_distance);

#endif
