/* sdumc prepare as a library function: the checks, then audio-features, text-features and
 * simulate-text one after the other over the dataset's folders, on all the work or a worker's
 * share of it (prepare.h). */
#include "audio/prepare.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "io/atomic_file.h"
#include "llm/transcripts.h"

sd_prepare_options sd_prepare_default_options(void) {
    sd_prepare_options o;
    memset(&o, 0, sizeof o);
    o.name_col = "name";
    o.text_col = "text";
    o.audio_layer = 20;
    o.chunk_seconds = SD_WAVLM_CHUNK_SECONDS;
    o.overlap_seconds = SD_WAVLM_OVERLAP_SECONDS;
    o.sim = sd_simtext_default_params();
    o.text = sd_textfeat_default_params();
    return o;
}

/* OUT/<sub>, created; *path malloc'd. */
static sd_status make_dir(const char *out, const char *sub, char **path, sd_error *err) {
    *path = sub ? sd_utt_path(out, sub, "") : strdup(out);
    if (!*path) return sd_fail(err, SD_E_NOMEM, "out of memory");
    struct stat st;
    if (mkdir(*path, 0755) && errno != EEXIST)
        return sd_fail(err, SD_E_IO, "%s: cannot create the folder: %s", *path, strerror(errno));
    if (stat(*path, &st) || !S_ISDIR(st.st_mode)) return sd_fail(err, SD_E_IO, "%s: not a folder", *path);
    return SD_OK;
}

static int find_name(char *const *names, size_t n, const char *name) {
    for (size_t i = 0; i < n; i++)
        if (!strcmp(names[i], name)) return 1;
    return 0;
}

/* The checks that need the models: layer, chunking, the models fitting together. */
static sd_status check_models(const sd_wavlm *wavlm, const sd_llama *llm, const sd_projector *proj,
                              const sd_prepare_options *o, sd_error *err) {
    const sd_wavlm_config *c = sd_wavlm_get_config(wavlm);
    if (o->audio_layer < 0 || o->audio_layer > c->n_layers)
        return sd_fail(err, SD_E_ARG, "--layer %d: the WavLM model has hidden states 0..%d (%d layers)",
                       o->audio_layer, c->n_layers, c->n_layers);
    sd_status s = sd_wavlm_check_chunking(c, o->chunk_seconds, o->overlap_seconds, err);
    if (s) return s;
    if (sd_projector_feat_dim(proj) != c->hidden)
        return sd_fail(err, SD_E_SHAPE, "the projector takes %lld-dim frames but WavLM gives %d (a WavLM-Large "
                       "projector needs WavLM-Large)", (long long)sd_projector_feat_dim(proj), c->hidden);
    if (sd_projector_out_dim(proj) != sd_llama_get_hparams(llm)->n_embd)
        return sd_fail(err, SD_E_SHAPE, "the projector's output dim %lld is not the LLM's embedding length %d",
                       (long long)sd_projector_out_dim(proj), sd_llama_get_hparams(llm)->n_embd);
    return SD_OK;
}

/* The rows of t whose names are recordings, as a table that borrows t's strings (free only its
 * arrays); every such transcript is tokenized once to refuse an empty or too long one now. */
static sd_status select_transcripts(const sd_transcripts *t, const char *csv, char *const *names, size_t n,
                                    const sd_textfeat *tf, sd_transcripts *view, size_t *unused, sd_error *err) {
    memset(view, 0, sizeof *view);
    *unused = 0;
    const size_t cap = t->n ? t->n : 1;
    view->name = malloc(cap * sizeof *view->name);
    view->text = malloc(cap * sizeof *view->text);
    view->line = malloc(cap * sizeof *view->line);
    if (!view->name || !view->text || !view->line) return sd_fail(err, SD_E_NOMEM, "out of memory");
    view->cap = cap;
    for (size_t i = 0; i < t->n; i++) {
        if (!find_name(names, n, t->name[i])) {
            (*unused)++;
            continue;
        }
        int32_t *ids = NULL;
        size_t n_ids = 0;
        sd_status s = sd_textfeat_tokenize(tf, t->text[i], &ids, &n_ids, err);
        free(ids);
        if (s) {
            sd_error_prefix(err, "%s, line %zu, utterance '%s'", csv, t->line[i], t->name[i]);
            return s;
        }
        view->name[view->n] = t->name[i];
        view->text[view->n] = t->text[i];
        view->line[view->n] = t->line[i];
        view->n++;
    }
    return SD_OK;
}

static void view_free(sd_transcripts *view) {
    free(view->name);
    free(view->text);
    free(view->line);
}

struct sd_prepare {
    sd_prepare_work w;
    const sd_prepare_options *o;
    const sd_wavlm *wavlm;
    sd_transcripts t, view; /* the CSV, and its rows of recordings (borrowing t's strings) */
    size_t *pass;
    int64_t *tokens;
    char *out, *d_audio, *d_last, *d_text, *d_sim;
    sd_textfeat *tf;
    sd_simtext *st;
};

void sd_prepare_free(sd_prepare *p) {
    if (!p) return;
    free(p->out), free(p->d_audio), free(p->d_last), free(p->d_text), free(p->d_sim);
    free(p->pass), free(p->tokens);
    view_free(&p->view);
    sd_transcripts_free(&p->t);
    sd_simtext_free(p->st);
    sd_textfeat_free(p->tf);
    sd_af_list_free(p->w.paths, p->w.names, p->w.n);
    free(p);
}

sd_status sd_prepare_open(const sd_wavlm *wavlm, const sd_llama *llm, const sd_projector *proj,
                          const sd_prepare_options *o, sd_prepare **out, sd_error *err) {
    *out = NULL;
    sd_prepare *p = calloc(1, sizeof *p);
    if (!p) return sd_fail(err, SD_E_NOMEM, "out of memory");
    p->o = o;
    p->wavlm = wavlm;
    size_t other = 0;
    /* Checks first: nothing is written until they all pass. */
    sd_status s = check_models(wavlm, llm, proj, o, err);
    if (!s) s = sd_af_list(o->wav_dir, &p->w.paths, &p->w.names, &p->w.n, &other, err);
    if (!s && p->w.n == 0) s = sd_fail(err, SD_E_ARG, "%s: no audio files", o->wav_dir);
    if (!s) s = sd_textfeat_create(llm, &o->text, &p->tf, err);
    if (!s) s = sd_simtext_create(llm, proj, &o->sim, &p->st, err);
    if (!s && o->transcripts) s = sd_transcripts_read(o->transcripts, o->name_col, o->text_col, 0, &p->t, err);
    if (!s && o->transcripts)
        s = select_transcripts(&p->t, o->transcripts, p->w.names, p->w.n, p->tf, &p->view, &p->w.transcripts_unused, err);
    /* The passes of a complete run (workers take whole passes of it). */
    const size_t nt = p->view.n;
    if (!s && (!(p->pass = malloc((nt + 1) * sizeof *p->pass)) || !(p->tokens = malloc((nt + 1) * sizeof *p->tokens))))
        s = sd_fail(err, SD_E_NOMEM, "out of memory");
    if (!s && nt) {
        sd_textfeat_job all = {&p->view, o->transcripts, NULL, SD_DTYPE_F16, 0, nt, NULL, NULL};
        s = sd_textfeat_plan(p->tf, &all, p->pass, p->tokens, err);
    }
    if (!s) s = make_dir(o->out_dir, NULL, &p->out, err);
    if (!s) s = make_dir(p->out, "audio", &p->d_audio, err);
    if (!s) s = make_dir(p->out, "wavlm_last", &p->d_last, err);
    if (!s && nt) s = make_dir(p->out, "text", &p->d_text, err);
    if (!s) s = make_dir(p->out, "text_sim", &p->d_sim, err);
    /* What killed runs left in the text folders, of any age (sd_af_run cleans its own; live
     * writers keep theirs: io/atomic_file.h). */
    for (int k = 0; k < 2 && !s; k++) {
        char *all = (k ? p->d_sim : p->d_text) ? sd_utt_path(k ? p->d_sim : p->d_text, "", "") : NULL;
        if (all) sd_atomic_remove_stale(all, time(NULL) + 1);
        free(all);
    }
    if (s) {
        sd_prepare_free(p);
        return s;
    }
    p->w.text = &p->view;
    p->w.text_pass = p->pass;
    p->w.text_tokens = p->tokens;
    p->w.audio_dir = p->d_audio;
    p->w.last_dir = p->d_last;
    p->w.text_dir = p->d_text;
    p->w.sim_dir = p->d_sim;
    *out = p;
    return SD_OK;
}

const sd_prepare_work *sd_prepare_get_work(const sd_prepare *p) { return &p->w; }

static void add_counts(sd_utt_counts *to, const sd_utt_counts *c) {
    to->written += c->written;
    to->skipped += c->skipped;
    to->failed += c->failed;
}

/* Stage 2 on the share's rows: one job over every row, or one per pass of a share of some. */
static sd_status run_text(sd_prepare *p, const sd_prepare_share *sh, const sd_prepare_progress *pg,
                          sd_utt_counts *counts, sd_error *err) {
    sd_transcripts mine = {0}; /* the share's rows (strings borrowed) */
    const size_t n = sh->n_text;
    mine.name = malloc((n + 1) * sizeof *mine.name);
    mine.text = malloc((n + 1) * sizeof *mine.text);
    mine.line = malloc((n + 1) * sizeof *mine.line);
    sd_status s = mine.name && mine.text && mine.line ? SD_OK : sd_fail(err, SD_E_NOMEM, "out of memory");
    for (size_t i = 0; !s && i < n; i++) {
        mine.name[i] = p->view.name[sh->text[i]];
        mine.text[i] = p->view.text[sh->text[i]];
        mine.line[i] = p->view.line[sh->text[i]];
    }
    mine.n = mine.cap = n;
    sd_utt_offset so = {pg->text, pg->user, 0, n}; /* reports counted over the share */
    for (size_t i = 0; !s && i < n;) {
        size_t k = n == p->view.n ? n : 1;
        while (i + k < n && p->pass[sh->text[i + k]] == p->pass[sh->text[i]]) k++;
        sd_textfeat_job job = {&mine, p->o->transcripts, p->d_text, SD_DTYPE_F16, i, k,
                               pg->text ? sd_utt_offset_report : NULL, &so};
        sd_utt_counts c;
        s = sd_textfeat_run(p->tf, &job, &c, err);
        if (!s) add_counts(counts, &c);
        so.done = i += k;
    }
    view_free(&mine);
    return s;
}

sd_status sd_prepare_run(sd_prepare *p, const sd_prepare_share *sh, const sd_prepare_progress *pg,
                         sd_prepare_counts *counts, sd_error *err) {
    static const sd_prepare_progress none = {0};
    if (!pg) pg = &none;
    const sd_prepare_options *o = p->o;
    memset(counts, 0, sizeof *counts);
    counts->recordings = p->w.n;
    counts->with_transcript = p->view.n;
    counts->transcripts_unused = p->w.transcripts_unused;
    const size_t n = sh->n_rec;
    char **paths = malloc((n + 1) * sizeof *paths), **names = malloc((n + 1) * sizeof *names);
    size_t n_sim = 0;
    sd_status s = paths && names ? SD_OK : sd_fail(err, SD_E_NOMEM, "out of memory");
    for (size_t i = 0; !s && i < n; i++) {
        paths[i] = p->w.paths[sh->rec[i]];
        names[i] = p->w.names[sh->rec[i]];
    }
    /* 1. WavLM: the audio layer and the last layer, one pass per recording. */
    if (!s) {
        sd_af_options ao = sd_af_default_options();
        ao.out_dir[0] = p->d_audio;
        ao.layer[0] = o->audio_layer;
        ao.out_dir[1] = p->d_last;
        ao.layer[1] = sd_wavlm_get_config(p->wavlm)->n_layers;
        ao.n_out = 2;
        ao.chunk_seconds = o->chunk_seconds;
        ao.overlap_seconds = o->overlap_seconds;
        ao.threads = o->threads;
        if (pg->stage) pg->stage(pg->user, 1, "audio-features", n);
        s = sd_af_run(p->wavlm, &ao, paths, names, n, pg->audio, pg->user, &counts->audio, err);
    }
    /* 2. The transcripts' LLM states. */
    if (!s && sh->n_text) {
        if (pg->stage) pg->stage(pg->user, 2, "text-features", sh->n_text);
        s = run_text(p, sh, pg, &counts->text, err);
    }
    /* 3. Simulated text from the last layer, for the recordings whose features exist (names keeps
     * its order: sorted). */
    for (size_t i = 0; !s && i < n; i++) {
        char *f = sd_utt_path(p->d_last, names[i], ".npy");
        if (!f) s = sd_fail(err, SD_E_NOMEM, "out of memory");
        else if (sd_utt_file_exists(f)) names[n_sim++] = names[i];
        free(f);
    }
    if (!s) {
        if (pg->stage) pg->stage(pg->user, 3, "simulate-text", n_sim);
        sd_simtext_job job = {p->d_last, p->d_sim, sh->sim_csv, names, 0, n_sim, pg->sim, pg->user};
        s = sd_simtext_run(p->st, &job, &counts->sim, err);
    }
    free(paths);
    free(names);
    return s;
}
