/* The generative story of the synthetic corpus (docs/DATASET.md tells it in words).
 * Legend as in synth_model.h. */
#include "synth_model.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- random helpers ---- */

static float uni(sd_rng *r) { return sd_rng_uniform(r); }
static float gauss(sd_rng *r) { return (float)sd_rng_normal(r); }
static int below(sd_rng *r, int n) { return (int)sd_rng_below(r, (uint64_t)n); }

/* Adds sigma * (unit-variance noise) to x[0..n): triangular noise from two 16-bit uniforms,
 * (u1 + u2 - 1) * sqrt(6), four values per Philox block (cheap: this is most of the draws). The
 * counters are taken from r, as sd_rng_u32 would. */
static void add_noise(sd_rng *r, float *x, size_t n, float sigma) {
    r->index = (r->index + 3) & ~(uint64_t)3; /* start on a block boundary */
    uint64_t block = r->index >> 2;
    const uint32_t key[2] = {(uint32_t)r->seed, (uint32_t)(r->seed >> 32)};
    const float s6 = sigma * 2.449489743f / 65536.0f;
    size_t i = 0;
    while (i < n) {
        uint32_t ctr[4] = {(uint32_t)block, (uint32_t)(block >> 32), (uint32_t)r->stream,
                           (uint32_t)(r->stream >> 32)};
        uint32_t out[4];
        sd_philox4x32(ctr, key, out);
        block++;
        for (int k = 0; k < 4 && i < n; k++, i++)
            x[i] += ((float)(out[k] & 0xffffu) + (float)(out[k] >> 16) - 65535.0f) * s6;
    }
    r->index = block << 2;
}

static float sigmoidf(float x) { return 1.0f / (1.0f + expf(-x)); }
static float softplusf(float x) { return x > 20.0f ? x : log1pf(expf(x)); }
static float reluf(float x) { return x > 0.0f ? x : 0.0f; }

/* y[D] = b + M[D, H] h[H] */
static void affine(float *y, const float *M, const float *b, const float *h, int D, int H) {
    for (int d = 0; d < D; d++) {
        const float *row = M + (size_t)d * (size_t)H;
        float s = b[d];
        for (int k = 0; k < H; k++) s += row[k] * h[k];
        y[d] = s;
    }
}

/* ---- the world: vocabulary and the modality "encoders" ---- */

static float *randn(sd_rng *r, size_t n, float scale) {
    float *x = malloc((n ? n : 1) * sizeof *x);
    if (x)
        for (size_t i = 0; i < n; i++) x[i] = scale * gauss(r);
    return x;
}

/* Makes the H columns of M [D, H] orthonormal (Gram-Schmidt, D >= H), times scale: every latent
 * channel gets its own direction, so nuisance channels (head pose, speaker pitch) never hide the
 * sentiment channels by chance alignment, whatever the seed. */
static void orthonormal_columns(float *M, int D, int H, float scale) {
    for (int k = 0; k < H; k++) {
        for (int j = 0; j < k; j++) {
            double dot = 0;
            for (int d = 0; d < D; d++) dot += (double)M[(size_t)d * H + k] * M[(size_t)d * H + j];
            for (int d = 0; d < D; d++) M[(size_t)d * H + k] -= (float)dot * M[(size_t)d * H + j];
        }
        double norm = 0;
        for (int d = 0; d < D; d++) norm += (double)M[(size_t)d * H + k] * M[(size_t)d * H + k];
        float inv = norm > 0 ? (float)(1.0 / sqrt(norm)) : 0.0f;
        for (int d = 0; d < D; d++) M[(size_t)d * H + k] *= inv;
    }
    for (size_t i = 0; i < (size_t)D * (size_t)H; i++) M[i] *= scale;
}

/* Raw scales: per modality and dim an affine map x -> scale x + offset, drawn from their own counter
 * range (the corpus under them is the default one). Audio dim 0 is F0-like (150 + 40 x, in Hz);
 * then, per dim, large (scale 50-200, offset 0-400: values in the hundreds, as COVAREP's or Facet's),
 * tiny (scale 0.002-0.02, values near zero) or moderate (scale 0.5-3). Text (and with it the
 * simulated text, which lives in the text space) gets tiny and moderate dims, video all three. */
static int raw_maps(syn_world *w) {
    sd_rng r = sd_rng_make(w->seed, SD_STREAM_SYNTH);
    r.index = SYN_BASE_RAW;
    const int dims[3] = {w->spec.dim_audio, w->spec.dim_text, w->spec.dim_video};
    const float big[3] = {0.12f, 0.0f, 0.1f}, tiny[3] = {0.35f, 0.3f, 0.25f};
    for (int m = 0; m < 3; m++) {
        w->raw_scale[m] = malloc((size_t)dims[m] * sizeof(float));
        w->raw_offset[m] = malloc((size_t)dims[m] * sizeof(float));
        if (!w->raw_scale[m] || !w->raw_offset[m]) return -1;
        for (int d = 0; d < dims[m]; d++) {
            float u = uni(&r), a = uni(&r), b = uni(&r);
            float scale = 0.5f + 2.5f * a, offset = 6.0f * b - 3.0f;
            if (u < big[m]) scale = 50.0f + 150.0f * a, offset = 400.0f * b;
            else if (u < big[m] + tiny[m]) scale = 0.002f + 0.018f * a, offset = 0.0f;
            if (m == 0 && d == 0) scale = 40.0f, offset = 150.0f;
            w->raw_scale[m][d] = scale;
            w->raw_offset[m][d] = offset;
        }
    }
    return 0;
}

static void raw_map(const syn_world *w, int m, float *x, int T) {
    const int D = m == 0 ? w->spec.dim_audio : m == 1 ? w->spec.dim_text : w->spec.dim_video;
    for (int t = 0; t < T; t++)
        for (int d = 0; d < D; d++) x[(size_t)t * D + d] = w->raw_scale[m][d] * x[(size_t)t * D + d] + w->raw_offset[m][d];
}

int sd_syn_world_init(syn_world *w, const sd_synth_spec *spec, uint64_t seed) {
    memset(w, 0, sizeof *w);
    w->spec = *spec;
    w->seed = seed;
    int V = w->V = spec->vocab;
    sd_rng r = sd_rng_make(seed, SD_STREAM_SYNTH); /* world draws: counters from 0 */
    w->cls = malloc((size_t)V);
    w->polarity = calloc((size_t)V, sizeof *w->polarity);
    w->sem = randn(&r, (size_t)V * SYN_SEM, 1.0f);
    w->ph = randn(&r, (size_t)V * SYN_PH, 1.0f);
    for (int c = 0; c < SYN_CLASSES; c++) w->by_class[c] = malloc((size_t)V * sizeof(int));
    int Dt = spec->dim_text, Da = spec->dim_audio, Dv = spec->dim_video;
    w->Mt = randn(&r, (size_t)Dt * SYN_GT, 1.0f / sqrtf((float)SYN_GT));
    w->bt = randn(&r, (size_t)Dt, 0.5f);
    w->sim_drift = randn(&r, (size_t)Dt, 0.15f);
    w->Ma = randn(&r, (size_t)Da * SYN_HA, 1.0f / sqrtf((float)SYN_HA));
    w->ba = randn(&r, (size_t)Da, 0.5f);
    w->Mv = randn(&r, (size_t)Dv * SYN_HV, 1.0f / sqrtf((float)SYN_HV));
    w->bv = randn(&r, (size_t)Dv, 0.5f);
    if (!w->cls || !w->polarity || !w->sem || !w->ph || !w->Mt || !w->bt || !w->sim_drift ||
        !w->Ma || !w->ba || !w->Mv || !w->bv)
        return -1;
    for (int c = 0; c < SYN_CLASSES; c++)
        if (!w->by_class[c]) return -1;
    orthonormal_columns(w->Mt, Dt, SYN_GT, 1.0f);
    orthonormal_columns(w->Ma, Da, SYN_HA, 1.0f);
    orthonormal_columns(w->Mv, Dv, SYN_HV, 1.0f);
    /* Word classes: 12% positive, 10% negative, 1.5% negators ("not"), 2.5% intensifiers
     * ("very"), the rest neutral; polar words carry a strength in [0.5, 1.5]. Each class has at
     * least one word. */
    for (int v = 0; v < V; v++) {
        float u = uni(&r);
        int c = v < SYN_CLASSES ? v
                : u < 0.12f     ? SYN_POS
                : u < 0.22f     ? SYN_NEG
                : u < 0.235f    ? SYN_NEGATOR
                : u < 0.26f     ? SYN_INTENS
                                : SYN_NEUTRAL;
        w->cls[v] = (unsigned char)c;
        w->by_class[c][w->n_class[c]++] = v;
        float strength = 0.5f + uni(&r);
        w->polarity[v] = c == SYN_POS ? strength : c == SYN_NEG ? -strength : 0.0f;
    }
    /* Centre the phonetic codes within each class: then the mean phonetic content of an utterance
     * says nothing linear about how many positive or negative words it holds (the audio carries
     * the words, not their meaning). */
    for (int c = 0; c < SYN_CLASSES; c++) {
        float mean[SYN_PH] = {0};
        for (int j = 0; j < w->n_class[c]; j++)
            for (int k = 0; k < SYN_PH; k++) mean[k] += w->ph[(size_t)w->by_class[c][j] * SYN_PH + k];
        for (int k = 0; k < SYN_PH && w->n_class[c] > 1; k++) mean[k] /= (float)w->n_class[c];
        for (int j = 0; j < w->n_class[c] && w->n_class[c] > 1; j++)
            for (int k = 0; k < SYN_PH; k++) w->ph[(size_t)w->by_class[c][j] * SYN_PH + k] -= mean[k];
    }
    /* The simulated text's systematic map (drawn last, so the other draws keep their values): per
     * dim d, x'[d] = g_d x[d] + c_d x[p(d)], g_d in [0.2, 1.0], c_d ~ N(0, 0.6^2), p a random
     * permutation. Speech-LLM states during generation are a different function of the
     * words than the states of the real transcript, so a model trained on real text only does not
     * read them correctly. Cheap (O(D) a frame) at MOSEI dims. */
    w->sim_gain = malloc((size_t)Dt * sizeof(float));
    w->sim_cross = randn(&r, (size_t)Dt, 0.6f);
    w->sim_partner = malloc((size_t)Dt * sizeof(int));
    if (!w->sim_gain || !w->sim_cross || !w->sim_partner) return -1;
    for (int d = 0; d < Dt; d++) w->sim_gain[d] = 0.2f + 0.8f * uni(&r);
    for (int d = 0; d < Dt; d++) w->sim_partner[d] = d;
    for (int d = Dt - 1; d > 0; d--) {
        int j = below(&r, d + 1), t = w->sim_partner[d];
        w->sim_partner[d] = w->sim_partner[j];
        w->sim_partner[j] = t;
    }
    return w->spec.raw_scales ? raw_maps(w) : 0;
}

void sd_syn_world_free(syn_world *w) {
    free(w->cls);
    free(w->polarity);
    free(w->sem);
    free(w->ph);
    for (int c = 0; c < SYN_CLASSES; c++) free(w->by_class[c]);
    free(w->Mt);
    free(w->bt);
    free(w->sim_drift);
    free(w->sim_gain);
    free(w->sim_cross);
    free(w->sim_partner);
    free(w->Ma);
    free(w->ba);
    free(w->Mv);
    free(w->bv);
    for (int m = 0; m < 3; m++) {
        free(w->raw_scale[m]);
        free(w->raw_offset[m]);
    }
    memset(w, 0, sizeof *w);
}

static int pick(const syn_world *w, sd_rng *r, int cls) {
    return w->by_class[cls][below(r, w->n_class[cls])];
}

/* ---- one utterance ---- */

/* Sentiment and label. The utterance has a true sentiment z: neutral (33%, z near 0) or polar,
 * positive 72% of the time, magnitude 0.3 + |N(1.0, 0.9^2)|. Three annotators each rate
 * round(z + N(0, 0.42^2)) clipped to [-3, 3]; the label is their mean (a multiple of 1/3), as in
 * CMU-MOSEI. */
static float draw_sentiment(sd_rng *r, float *label) {
    float z;
    if (uni(r) < 0.33f) {
        z = 0.1f * gauss(r);
    } else {
        float sign = uni(r) < 0.72f ? 1.0f : -1.0f;
        z = sign * (0.3f + fabsf(1.0f + 0.9f * gauss(r)));
    }
    int sum = 0;
    for (int a = 0; a < 3; a++) {
        float rating = roundf(z + 0.42f * gauss(r));
        sum += (int)fminf(3.0f, fmaxf(-3.0f, rating));
    }
    *label = (float)sum / 3.0f;
    return z;
}

/* The transcript: L words whose polar words express s_t. A position holds a polar word of the
 * utterance's sign with probability min(0.85, 0.06 + 0.3 |s_t|): alone, after an intensifier
 * (20%), or negated (15%: "not" + a word of the opposite sign); 4% of positions hold a word of the
 * opposite sign ("but ..."); the rest are neutral. */
static void draw_words(const syn_world *w, sd_rng *r, float s_t, int *words, int L) {
    float p_pol = fminf(0.85f, 0.06f + 0.3f * fabsf(s_t));
    int sign_cls = s_t >= 0 ? SYN_POS : SYN_NEG, other = s_t >= 0 ? SYN_NEG : SYN_POS;
    int k = 0;
    while (k < L) {
        float u = uni(r);
        if (u < p_pol) {
            float v = uni(r);
            if (v < 0.15f && k + 1 < L) {
                words[k++] = pick(w, r, SYN_NEGATOR);
                words[k++] = pick(w, r, other);
            } else if (v < 0.35f && k + 1 < L) {
                words[k++] = pick(w, r, SYN_INTENS);
                words[k++] = pick(w, r, sign_cls);
            } else {
                words[k++] = pick(w, r, sign_cls);
            }
        } else if (u < p_pol + 0.04f) {
            words[k++] = pick(w, r, other);
        } else {
            words[k++] = pick(w, r, SYN_NEUTRAL);
        }
    }
}

/* The text "encoder" (a stand-in for an LLM's hidden states): word k's frame is
 *   x_k = b_t + M_t g_k,  g_k = [tanh(1.5 p_k), p_k^2 / 2, negator?, intensifier?,
 *                               sem(w_k) + 0.35 sem(w_{k-1})]
 * where p_k is the word's polarity composed with its left context: flipped after a negator,
 * times 1.6 after an intensifier. Mean pooling therefore sees the composed sentiment, a bag of
 * words does not. */
static void encode_text(const syn_world *w, const int *words, int L, float *x) {
    int Dt = w->spec.dim_text;
    for (int k = 0; k < L; k++) {
        int wk = words[k], prev = k > 0 ? words[k - 1] : -1;
        float p = w->polarity[wk];
        if (prev >= 0 && w->cls[prev] == SYN_NEGATOR) p = -p;
        if (prev >= 0 && w->cls[prev] == SYN_INTENS) p *= 1.6f;
        float g[SYN_GT];
        g[0] = tanhf(1.5f * p);
        g[1] = 0.5f * p * p;
        g[2] = w->cls[wk] == SYN_NEGATOR ? 1.0f : 0.0f;
        g[3] = w->cls[wk] == SYN_INTENS ? 1.0f : 0.0f;
        for (int j = 0; j < SYN_SEM; j++)
            g[4 + j] = w->sem[(size_t)wk * SYN_SEM + j] +
                       (prev >= 0 ? 0.35f * w->sem[(size_t)prev * SYN_SEM + j] : 0.0f);
        affine(x + (size_t)k * (size_t)Dt, w->Mt, w->bt, g, Dt, SYN_GT);
    }
}

/* The words "recognised from the audio": per word, with the utterance's error rate e, a
 * substitution (probability e/2, a random word of the vocabulary), a deletion (e/4), and after it
 * an insertion (e/4, a random word); the expected word error rate is e. At least one word is kept.
 * Returns the number of recognised words; *errors the edit count. */
static int recognise(const syn_world *w, sd_rng *r, const int *words, int L, float e, int *out,
                     int64_t *errors) {
    int n = 0;
    int64_t errs = 0;
    for (int k = 0; k < L; k++) {
        float u = uni(r);
        if (u < 0.5f * e) {
            out[n++] = below(r, w->V);
            errs++;
        } else if (u < 0.75f * e) {
            errs++;
        } else {
            out[n++] = words[k];
        }
        if (uni(r) < 0.25f * e) {
            out[n++] = below(r, w->V);
            errs++;
        }
    }
    if (n == 0) {
        out[n++] = below(r, w->V);
        errs++;
    }
    *errors = errs;
    return n;
}

/* Speaker traits, a pure function of (seed, speaker): audio and video offsets (the nuisance that
 * makes pooled features cluster by speaker; N(0, 0.35^2) per dim), pitch, expressiveness and a
 * smile bias. */
typedef struct {
    float pitch, express, smile_bias;
} speaker_traits;

static void speaker_draw(const syn_world *w, int64_t speaker, speaker_traits *t, float *off_a,
                         float *off_v) {
    sd_rng r = sd_rng_make(w->seed, SD_STREAM_SYNTH);
    r.index = SYN_BASE_SPEAKER + (uint64_t)speaker * SYN_SPEAKER_SPAN;
    t->pitch = gauss(&r);
    t->express = 0.6f + 0.8f * uni(&r);
    t->smile_bias = 0.6f * gauss(&r);
    for (int d = 0; d < w->spec.dim_audio; d++) off_a[d] = 0.35f * gauss(&r);
    for (int d = 0; d < w->spec.dim_video; d++) off_v[d] = 0.35f * gauss(&r);
}

void sd_syn_utt_free(syn_utt *u) {
    free(u->audio);
    free(u->text);
    free(u->video);
    free(u->sim);
    memset(u, 0, sizeof *u);
}

/* Audio frames follow the words: word j lasts about frames_per_word * U(0.6, 1.4) frames, and
 * 15% of words are followed by a pause. The latent of a frame inside word w at relative position
 * rho (envelope env = sin(pi rho), 0 in pauses) is
 *   [ph(w) env, pitch, energy, tanh(val) env, relu(val - 0.5), relu(-val - 0.5), jitter,
 *    tanh(1.5 tone) (0.3 + env)]
 * with val = s_a * expressiveness, pitch = speaker pitch + 0.35 val + a slow oscillation,
 * energy = softplus(1.2 |val| - 1 + env), jitter a per-frame voice-quality nuisance, tone the
 * observed tone of voice (the part of the sentiment the words do not carry); the frame is
 * b_a + M_a latent + the speaker's audio offset + noise (level varying per utterance). */
static int make_audio(const syn_world *w, sd_rng *r, const int *words, int L, float s_a, float tone,
                      const speaker_traits *sp, const float *off_a, float noise, syn_utt *u,
                      float **env_out) {
    const sd_synth_spec *S = &w->spec;
    int *dur = malloc((size_t)L * 2 * sizeof *dur); /* [2L]: word, pause, word, pause ... */
    if (!dur) return -1;
    int total = 0;
    for (int j = 0; j < L; j++) {
        int d = (int)lroundf((float)S->frames_per_word * (0.6f + 0.8f * uni(r)));
        dur[2 * j] = d < 1 ? 1 : d;
        dur[2 * j + 1] = uni(r) < 0.15f ? 1 + (int)((float)S->frames_per_word * uni(r)) : 0;
        total += dur[2 * j] + dur[2 * j + 1];
    }
    int Ta = total < S->audio_min ? S->audio_min : total > S->audio_max ? S->audio_max : total;
    int Da = S->dim_audio;
    u->Ta = Ta;
    u->audio = malloc((size_t)Ta * (size_t)Da * sizeof(float));
    float *env = malloc((size_t)Ta * sizeof(float));
    if (!u->audio || !env) {
        free(dur);
        free(env);
        return -1;
    }
    float val = s_a * sp->express, arousal = fabsf(val);
    float period = 8.0f + 16.0f * uni(r), phase = 6.2831853f * uni(r);
    for (int f = 0; f < Ta; f++) {
        /* Time warp: longer utterances are squeezed into audio_max frames; shorter ones padded
         * with silence at the end. */
        int64_t raw = total > Ta ? (int64_t)f * total / Ta : f;
        int word = -1;
        float rho = 0.0f;
        int64_t acc = 0;
        for (int s = 0; s < 2 * L; s++) {
            if (raw < acc + dur[s]) {
                if (s % 2 == 0) {
                    word = words[s / 2];
                    rho = ((float)(raw - acc) + 0.5f) / (float)dur[s];
                }
                break;
            }
            acc += dur[s];
        }
        float e = word >= 0 ? sinf(3.14159265f * rho) : 0.0f;
        env[f] = e;
        float h[SYN_HA];
        for (int k = 0; k < SYN_PH; k++) h[k] = word >= 0 ? w->ph[(size_t)word * SYN_PH + k] * e : 0.0f;
        h[SYN_PH + 0] = sp->pitch + 0.35f * val + 0.3f * sinf(6.2831853f * (float)f / period + phase);
        h[SYN_PH + 1] = softplusf(1.2f * arousal - 1.0f + e);
        h[SYN_PH + 2] = tanhf(val) * e;
        h[SYN_PH + 3] = reluf(val - 0.5f);
        h[SYN_PH + 4] = reluf(-val - 0.5f);
        h[SYN_PH + 5] = 0.5f * gauss(r);
        h[SYN_PH + 6] = tanhf(1.5f * tone) * (0.3f + e);
        float *a = u->audio + (size_t)f * (size_t)Da;
        affine(a, w->Ma, w->ba, h, Da, SYN_HA);
        for (int d = 0; d < Da; d++) a[d] += off_a[d];
    }
    add_noise(r, u->audio, (size_t)Ta * (size_t)Da, noise);
    free(dur);
    *env_out = env;
    return 0;
}

/* Video frames: T_v ~ T_a * video_per_audio * U(0.8, 1.2) (clamped). The latent of a frame is
 *   [smile, brow, yaw, head pitch, blink, mouth, smile * brow, 1]
 * with smile = sigmoid(1.0 s_v + speaker smile bias + a slow oscillation), brow =
 * sigmoid(-0.8 s_v + noise), yaw and pitch slow random walks (large nuisance), blinks, and the
 * mouth opening following the audio envelope; the frame is b_v + M_v latent + the speaker's
 * video offset + noise. */
static int make_video(const syn_world *w, sd_rng *r, float s_v, const speaker_traits *sp,
                      const float *off_v, const float *env, int Ta, syn_utt *u) {
    const sd_synth_spec *S = &w->spec;
    int Tv = (int)lroundf((float)Ta * S->video_per_audio * (0.8f + 0.4f * uni(r)));
    Tv = Tv < S->video_min ? S->video_min : Tv > S->video_max ? S->video_max : Tv;
    int Dv = S->dim_video;
    u->Tv = Tv;
    u->video = malloc((size_t)Tv * (size_t)Dv * sizeof(float));
    if (!u->video) return -1;
    float yaw = gauss(r), pitch = 0.5f * gauss(r);
    float period = 6.0f + 10.0f * uni(r), phase = 6.2831853f * uni(r);
    for (int f = 0; f < Tv; f++) {
        yaw += 0.2f * gauss(r);
        pitch += 0.1f * gauss(r);
        float smile = sigmoidf(1.0f * s_v + sp->smile_bias + 0.5f * sinf(6.2831853f * (float)f / period + phase));
        float brow = sigmoidf(-0.8f * s_v + 0.6f * gauss(r));
        float h[SYN_HV] = {smile, brow, yaw, pitch, uni(r) < 0.06f ? 1.0f : 0.0f,
                           env[(int64_t)f * Ta / Tv] * (0.5f + 0.5f * uni(r)), smile * brow, 1.0f};
        float *v = u->video + (size_t)f * (size_t)Dv;
        affine(v, w->Mv, w->bv, h, Dv, SYN_HV);
        for (int d = 0; d < Dv; d++) v[d] += off_v[d];
    }
    add_noise(r, u->video, (size_t)Tv * (size_t)Dv, 0.3f);
    return 0;
}

/* One utterance. Each modality sees the true sentiment z through its own noise. Part of it is
 * tone, N(0, 0.45^2), carried by the voice (observed with noise 0.3) and not by the words: the words
 * express s_t = z - tone + N(0, 0.3^2); the voice's overall valence is s_a = z + N(0, 1.6^2), the
 * face's s_v = z + N(0, 1.5^2). No modality alone has all of it. */
int sd_syn_utt_generate(const syn_world *w, int64_t i, int64_t speaker, syn_utt *u) {
    const sd_synth_spec *S = &w->spec;
    memset(u, 0, sizeof *u);
    sd_rng r = sd_rng_make(w->seed, SD_STREAM_SYNTH);
    r.index = (uint64_t)(i + 16) << SYN_UTT_SHIFT;
    float z = draw_sentiment(&r, &u->label);
    float tone = 0.45f * gauss(&r);
    float s_t = z - tone + 0.3f * gauss(&r), s_a = z + 1.6f * gauss(&r), s_v = z + 1.5f * gauss(&r);
    float tone_heard = tone + 0.3f * gauss(&r);
    int L = S->words_min + below(&r, S->words_max - S->words_min + 1);
    /* Per-utterance recording quality: noisier audio, more recognition errors (mean WER 0.25). */
    float quality = uni(&r);
    float wer = 0.15f + 0.2f * quality, audio_noise = 0.3f + 0.4f * quality;
    int *words = calloc((size_t)L, sizeof *words);
    int *heard = malloc((size_t)(2 * L + 1) * sizeof *heard);
    float *off_a = malloc((size_t)S->dim_audio * sizeof(float));
    float *off_v = malloc((size_t)S->dim_video * sizeof(float));
    float *env = NULL;
    int ok = words && heard && off_a && off_v;
    if (ok) {
        speaker_traits sp;
        speaker_draw(w, speaker, &sp, off_a, off_v);
        draw_words(w, &r, s_t, words, L);
        u->L = L;
        u->text = malloc((size_t)L * (size_t)S->dim_text * sizeof(float));
        ok = u->text != NULL;
        if (ok) {
            encode_text(w, words, L, u->text);
            add_noise(&r, u->text, (size_t)L * (size_t)S->dim_text, 0.1f);
            u->Ls = recognise(w, &r, words, L, wer, heard, &u->word_errors);
            u->sim = malloc((size_t)u->Ls * (size_t)S->dim_text * sizeof(float));
            ok = u->sim != NULL;
        }
        if (ok) {
            /* Same encoder and dim, then the systematic map of the speech LLM's states (gain,
             * mixing with a partner dim, drift) and more noise. */
            encode_text(w, heard, u->Ls, u->sim);
            float *mixed = malloc((size_t)S->dim_text * sizeof(float));
            ok = mixed != NULL;
            for (int k = 0; ok && k < u->Ls; k++) {
                float *x = u->sim + (size_t)k * (size_t)S->dim_text;
                for (int d = 0; d < S->dim_text; d++)
                    mixed[d] = w->sim_gain[d] * x[d] + w->sim_cross[d] * x[w->sim_partner[d]] + w->sim_drift[d];
                memcpy(x, mixed, (size_t)S->dim_text * sizeof(float));
            }
            free(mixed);
            if (ok) add_noise(&r, u->sim, (size_t)u->Ls * (size_t)S->dim_text, 0.25f);
            if (ok) ok = make_audio(w, &r, words, L, s_a, tone_heard, &sp, off_a, audio_noise, u, &env) == 0;
        }
        if (ok) ok = make_video(w, &r, s_v, &sp, off_v, env, u->Ta, u) == 0;
    }
    if (ok && S->raw_scales) {
        raw_map(w, 0, u->audio, u->Ta);
        raw_map(w, 1, u->text, u->L);
        raw_map(w, 1, u->sim, u->Ls);
        raw_map(w, 2, u->video, u->Tv);
        /* A log-energy-like audio dim is -inf in a third of the silent frames (pauses). */
        for (int f = 0; f < u->Ta; f++)
            if (env[f] == 0.0f && uni(&r) < 0.33f) u->audio[(size_t)f * S->dim_audio + 1] = -INFINITY;
    }
    free(words);
    free(heard);
    free(off_a);
    free(off_v);
    free(env);
    if (!ok) sd_syn_utt_free(u);
    return ok ? 0 : -1;
}
