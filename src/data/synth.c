/* Writing the synthetic corpus: videos and split, then utterances in parallel (each a pure
 * function of the seed and its index), into a temporary folder renamed into place at the end
 * (data/dataset_writer.h). */
#include "synth.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/interrupt.h"
#include "core/omp.h"
#include "core/rng.h"
#include "core/strbuf.h"
#include "data/batch.h"
#include "data/dataset_writer.h"
#include "dataset.h"
#include "synth_model.h"

/* CMU-MOSEI's standard split: 16,326 / 1,871 / 4,659 utterances. */
#define MOSEI_TRAIN 16326.0
#define MOSEI_VALID 1871.0
#define MOSEI_TEST 4659.0

sd_synth_spec sd_synth_spec_of(int kind) {
    sd_synth_spec s;
    memset(&s, 0, sizeof s);
    s.raw_scales = (kind & SD_SYNTH_RAW_SCALES) != 0;
    kind &= ~SD_SYNTH_RAW_SCALES;
    if (kind == SD_SYNTH_MOSEI) {
        s.dim_audio = 1024, s.dim_text = 4096, s.dim_video = 1024;
        s.words_min = 8, s.words_max = 50;
        s.frames_per_word = 16; /* 50 Hz frames, about 3 words a second */
        s.audio_min = 100, s.audio_max = 1000;
        s.video_per_audio = 0.2f, s.video_min = 10, s.video_max = 200;
        s.vocab = 2000;
        s.dtype = SD_DTYPE_F16;
    } else {
        s.dim_audio = 32, s.dim_text = 48, s.dim_video = 24;
        s.words_min = 5, s.words_max = 20;
        s.frames_per_word = 4;
        s.audio_min = 20, s.audio_max = 80;
        s.video_per_audio = 0.5f, s.video_min = 10, s.video_max = 40;
        s.vocab = 300;
        s.dtype = SD_DTYPE_F32;
    }
    return s;
}

int sd_synth_kind_from_name(const char *name) {
    if (!name) return -1;
    if (!strcmp(name, "small")) return SD_SYNTH_SMALL;
    if (!strcmp(name, "mosei")) return SD_SYNTH_MOSEI;
    return -1;
}

/* Utterances come in videos of 1..max_seg segments, one speaker per video (so that speaker
 * offsets are shared within a video), and whole videos go to one split, as in CMU-MOSEI: test
 * videos until 20.4% of the utterances, valid until 8.2%, the rest train. */
static int plan(int64_t n, uint64_t seed, int64_t *video_of, int *seg_of, int *split_of) {
    sd_rng r = sd_rng_make(seed, SD_STREAM_SYNTH);
    r.index = SYN_BASE_STRUCTURE;
    int64_t max_seg = n / 25 < 1 ? 1 : n / 25 > 10 ? 10 : n / 25;
    int64_t nvid = 0;
    for (int64_t i = 0; i < n;) {
        int64_t seg = 1 + (int64_t)sd_rng_below(&r, (uint64_t)max_seg);
        for (int64_t k = 0; k < seg && i < n; k++, i++) {
            video_of[i] = nvid;
            seg_of[i] = (int)k;
        }
        nvid++;
    }
    int64_t *order = malloc((size_t)nvid * sizeof *order);
    int64_t *size = calloc((size_t)nvid, sizeof *size);
    int *vsplit = malloc((size_t)nvid * sizeof *vsplit);
    if (!order || !size || !vsplit) {
        free(order);
        free(size);
        free(vsplit);
        return -1;
    }
    for (int64_t i = 0; i < n; i++) size[video_of[i]]++;
    for (int64_t v = 0; v < nvid; v++) order[v] = v;
    sd_rng_shuffle(&r, order, (size_t)nvid);
    double total = MOSEI_TRAIN + MOSEI_VALID + MOSEI_TEST;
    int64_t want_test = (int64_t)((double)n * MOSEI_TEST / total + 0.5);
    int64_t want_valid = (int64_t)((double)n * MOSEI_VALID / total + 0.5);
    if (want_test < 1) want_test = 1;
    if (want_valid < 1) want_valid = 1;
    int64_t got_test = 0, got_valid = 0;
    for (int64_t j = 0; j < nvid; j++) {
        int64_t v = order[j];
        if (got_test < want_test) {
            vsplit[v] = SD_SPLIT_TEST;
            got_test += size[v];
        } else if (got_valid < want_valid) {
            vsplit[v] = SD_SPLIT_VALID;
            got_valid += size[v];
        } else {
            vsplit[v] = SD_SPLIT_TRAIN;
        }
    }
    for (int64_t i = 0; i < n; i++) split_of[i] = vsplit[video_of[i]];
    free(order);
    free(size);
    free(vsplit);
    return 0;
}

/* The name of segment seg of video v: its feature files' base name and its labels.csv row. */
static void utt_name(char *buf, size_t size, int64_t video, int seg) {
    snprintf(buf, size, "v%05lld_%d", (long long)video, seg);
}

static sd_status write_one(const sd_dataset_writer *w, const char *name, const syn_utt *u, const sd_synth_spec *S,
                           sd_error *err) {
    const float *data[SD_MOD_COUNT] = {u->audio, u->text, u->video, u->sim};
    int64_t rows[SD_MOD_COUNT] = {u->Ta, u->L, u->Tv, u->Ls};
    int64_t cols[SD_MOD_COUNT] = {S->dim_audio, S->dim_text, S->dim_video, S->dim_text};
    for (int m = 0; m < SD_MOD_COUNT; m++) {
        sd_status s = sd_dataset_writer_npy(w, m, name, data[m], rows[m], cols[m], S->dtype, err);
        if (s) return s;
    }
    return SD_OK;
}

/* What the corpus is made of, utterance by utterance ([n] each): the plan (video, segment, split),
 * then what the parallel pass generated (label, word errors and words of the simulated text). */
typedef struct {
    int64_t n;
    int64_t *video_of;
    int *seg_of, *split_of;
    float *label;
    int64_t *errors, *words;
} synth_corpus;

static void corpus_free(synth_corpus *c) {
    free(c->video_of);
    free(c->seg_of);
    free(c->split_of);
    free(c->label);
    free(c->errors);
    free(c->words);
}

/* Allocates the arrays and plans the videos and the split; -1 when memory runs out. */
static int corpus_plan(synth_corpus *c, int64_t n, uint64_t seed) {
    memset(c, 0, sizeof *c);
    c->n = n;
    c->video_of = malloc((size_t)n * sizeof *c->video_of);
    c->seg_of = malloc((size_t)n * sizeof *c->seg_of);
    c->split_of = malloc((size_t)n * sizeof *c->split_of);
    c->label = malloc((size_t)n * sizeof *c->label);
    c->errors = calloc((size_t)n, sizeof *c->errors);
    c->words = calloc((size_t)n, sizeof *c->words);
    if (!c->video_of || !c->seg_of || !c->split_of || !c->label || !c->errors || !c->words) return -1;
    return plan(n, seed, c->video_of, c->seg_of, c->split_of);
}

/* Generates and writes utterance i's four feature files, recording its label and word counts. */
static sd_status write_utterance(const sd_dataset_writer *w, const syn_world *W, const sd_synth_spec *S,
                                 synth_corpus *c, int64_t i, sd_error *e) {
    sd_status s = sd_interrupt_check(e, "while writing the synthetic corpus; nothing was kept");
    if (s) return s;
    syn_utt u;
    if (sd_syn_utt_generate(W, i, c->video_of[i], &u)) return sd_fail(e, SD_E_NOMEM, "synth: out of memory");
    char name[64];
    utt_name(name, sizeof name, c->video_of[i], c->seg_of[i]);
    s = write_one(w, name, &u, S, e);
    c->label[i] = u.label;
    c->errors[i] = u.word_errors;
    c->words[i] = u.L;
    sd_syn_utt_free(&u);
    return s;
}

/* Every utterance, in parallel; the first failure stops the others (its error is the one kept). */
static sd_status write_utterances(const sd_dataset_writer *w, const syn_world *W, const sd_synth_spec *S,
                                  synth_corpus *c, sd_error *err) {
    sd_error first_err;
    sd_error_clear(&first_err);
    int failed = 0;
    const int64_t n = c->n;
    SD_OMP(omp parallel for schedule(dynamic, 4))
    for (int64_t i = 0; i < n; i++) {
        int stop;
        SD_OMP(omp atomic read)
        stop = failed;
        if (stop) continue;
        sd_error e;
        sd_error_clear(&e);
        if (write_utterance(w, W, S, c, i, &e)) {
            SD_OMP(omp critical)
            {
                if (!failed) first_err = e;
                SD_OMP(omp atomic write)
                failed = 1;
            }
        }
    }
    if (!failed) return SD_OK;
    if (err) *err = first_err;
    return first_err.code ? first_err.code : SD_E_IO;
}

/* labels.csv in labels order (video by video). */
static sd_status write_labels(const sd_dataset_writer *w, const synth_corpus *c, sd_error *err) {
    sd_strbuf t = {0};
    sd_strbuf_printf(&t, "name,label,split\n");
    for (int64_t i = 0; i < c->n; i++) {
        char name[64];
        utt_name(name, sizeof name, c->video_of[i], c->seg_of[i]);
        sd_strbuf_printf(&t, "%s,%.6f,%s\n", name, (double)c->label[i], sd_split_name((sd_split)c->split_of[i]));
    }
    sd_status st = t.failed ? sd_fail(err, SD_E_NOMEM, "synth: out of memory")
                            : sd_dataset_writer_file(w, "labels.csv", sd_strbuf_str(&t), t.len, err);
    sd_strbuf_free(&t);
    return st;
}

/* SYNTH.txt: a note of what was generated. */
static sd_status write_note(const sd_dataset_writer *w, const synth_corpus *c, const sd_synth_spec *S, int dims_kind,
                            uint64_t seed, sd_error *err) {
    int64_t nerr = 0, nword = 0;
    for (int64_t i = 0; i < c->n; i++) {
        nerr += c->errors[i];
        nword += c->words[i];
    }
    sd_strbuf note = {0};
    sd_strbuf_printf(&note,
                     "Synthetic multimodal sentiment corpus written by sdumc synth (a test bed, not real "
                     "data; see docs/DATASET.md).\nn %lld, seed %llu, dims %s (audio %d, text %d, video "
                     "%d), %s\nword error rate of text_sim: %.4f\n",
                     (long long)c->n, (unsigned long long)seed,
                     dims_kind == SD_SYNTH_MOSEI ? (S->raw_scales ? "mosei, raw scales" : "mosei")
                                                 : (S->raw_scales ? "small, raw scales" : "small"),
                     S->dim_audio, S->dim_text, S->dim_video, sd_dtype_name(S->dtype),
                     nword ? (double)nerr / (double)nword : 0.0);
    sd_status st = note.failed ? sd_fail(err, SD_E_NOMEM, "synth: out of memory")
                               : sd_dataset_writer_file(w, "SYNTH.txt", sd_strbuf_str(&note), note.len, err);
    sd_strbuf_free(&note);
    return st;
}

sd_status sd_synth_write(const char *dir, int64_t n, uint64_t seed, int kind, sd_error *err) {
    if (!dir || !*dir) return sd_fail(err, SD_E_ARG, "synth: no output folder");
    int dims_kind = kind & ~SD_SYNTH_RAW_SCALES;
    if (dims_kind != SD_SYNTH_SMALL && dims_kind != SD_SYNTH_MOSEI)
        return sd_fail(err, SD_E_ARG, "synth: unknown dims kind %d (small or mosei)", kind);
    if (n < SD_SYNTH_MIN_N || n > SYN_MAX_N)
        return sd_fail(err, SD_E_ARG, "synth: n = %lld, must be in [%d, %lld]", (long long)n,
                       SD_SYNTH_MIN_N, (long long)SYN_MAX_N);
    sd_dataset_writer w;
    sd_status st = sd_dataset_writer_begin(&w, dir, "synth", SD_MODS_ALL, err);
    if (st) return st;
    sd_synth_spec S = sd_synth_spec_of(kind);
    syn_world W;
    synth_corpus c;
    int world_ok = sd_syn_world_init(&W, &S, seed) == 0;
    if (corpus_plan(&c, n, seed) || !world_ok) st = sd_fail(err, SD_E_NOMEM, "synth: out of memory");
    if (!st) st = write_utterances(&w, &W, &S, &c, err);
    if (!st) st = write_labels(&w, &c, err);
    if (!st) st = write_note(&w, &c, &S, dims_kind, seed, err);
    if (!st) st = sd_dataset_writer_commit(&w, err);
    else sd_dataset_writer_abort(&w);
    sd_syn_world_free(&W);
    corpus_free(&c);
    return st;
}
