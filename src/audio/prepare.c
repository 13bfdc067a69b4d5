/* sdumc prepare as a library function: the checks, then audio-features, text-features and
 * simulate-text one after the other over the dataset's folders (prepare.h). */
#include "audio/prepare.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

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

sd_status sd_prepare_run(const sd_wavlm *wavlm, const sd_llama *llm, const sd_projector *proj,
                         const sd_prepare_options *o, const sd_prepare_progress *p, sd_prepare_counts *counts,
                         sd_error *err) {
    static const sd_prepare_progress none = {0};
    if (!p) p = &none;
    memset(counts, 0, sizeof *counts);
    char **paths = NULL, **names = NULL, **sim_names = NULL;
    char *out = NULL, *d_audio = NULL, *d_last = NULL, *d_text = NULL, *d_sim = NULL, *csv = NULL;
    size_t n = 0, other = 0, n_sim = 0;
    sd_transcripts t = {0}, view = {0};
    sd_textfeat *tf = NULL;
    sd_simtext *st = NULL;
    /* Checks first: nothing is written until they all pass. */
    sd_status s = check_models(wavlm, llm, proj, o, err);
    if (!s) s = sd_af_list(o->wav_dir, &paths, &names, &n, &other, err);
    if (!s && n == 0) s = sd_fail(err, SD_E_ARG, "%s: no audio files", o->wav_dir);
    if (!s) s = sd_textfeat_create(llm, &o->text, &tf, err);
    if (!s) s = sd_simtext_create(llm, proj, &o->sim, &st, err);
    if (!s && o->transcripts) s = sd_transcripts_read(o->transcripts, o->name_col, o->text_col, 0, &t, err);
    if (!s && o->transcripts)
        s = select_transcripts(&t, o->transcripts, names, n, tf, &view, &counts->transcripts_unused, err);
    counts->recordings = n;
    counts->with_transcript = view.n;
    if (!s) s = make_dir(o->out_dir, NULL, &out, err);
    if (!s) s = make_dir(out, "audio", &d_audio, err);
    if (!s) s = make_dir(out, "wavlm_last", &d_last, err);
    if (!s && view.n) s = make_dir(out, "text", &d_text, err);
    if (!s) s = make_dir(out, "text_sim", &d_sim, err);
    /* 1. WavLM: the audio layer and the last layer, one pass per recording. */
    if (!s) {
        sd_af_options ao = sd_af_default_options();
        ao.out_dir[0] = d_audio;
        ao.layer[0] = o->audio_layer;
        ao.out_dir[1] = d_last;
        ao.layer[1] = sd_wavlm_get_config(wavlm)->n_layers;
        ao.n_out = 2;
        ao.chunk_seconds = o->chunk_seconds;
        ao.overlap_seconds = o->overlap_seconds;
        ao.threads = o->threads;
        if (p->stage) p->stage(p->user, 1, "audio-features", n);
        s = sd_af_run(wavlm, &ao, paths, names, n, p->audio, p->user, &counts->audio, err);
    }
    /* 2. The transcripts' LLM states. */
    if (!s && view.n) {
        if (p->stage) p->stage(p->user, 2, "text-features", view.n);
        sd_textfeat_job job = {&view, o->transcripts, d_text, SD_DTYPE_F16, 0, view.n, p->text, p->user};
        s = sd_textfeat_run(tf, &job, &counts->text, err);
    }
    /* 3. Simulated text from the last layer, for the recordings whose features exist. */
    if (!s && !(sim_names = malloc(n * sizeof *sim_names))) s = sd_fail(err, SD_E_NOMEM, "out of memory");
    for (size_t i = 0; !s && i < n; i++) {
        char *f = sd_utt_path(d_last, names[i], ".npy");
        if (!f) s = sd_fail(err, SD_E_NOMEM, "out of memory");
        else if (sd_utt_file_exists(f)) sim_names[n_sim++] = names[i];
        free(f);
    }
    if (!s && !(csv = sd_utt_path(d_sim, "transcripts", ".csv"))) s = sd_fail(err, SD_E_NOMEM, "out of memory");
    if (!s) {
        if (p->stage) p->stage(p->user, 3, "simulate-text", n_sim);
        sd_simtext_job job = {d_last, d_sim, csv, sim_names, 0, n_sim, p->sim, p->user};
        s = sd_simtext_run(st, &job, &counts->sim, err);
    }
    free(sim_names);
    free(out), free(d_audio), free(d_last), free(d_text), free(d_sim), free(csv);
    view_free(&view);
    sd_transcripts_free(&t);
    sd_simtext_free(st);
    sd_textfeat_free(tf);
    sd_af_list_free(paths, names, n);
    return s;
}
