/* sdumc predict-one: the score of one utterance from its .npy feature files, through the public
 * API (include/sdumc.h), as an embedding application would call it. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"
#include "common.h"
#include "core/threads.h"
#include "sdumc.h"

/* Reads one feature file into x (the public reader; free with sdumc_features_free). Prints and
 * returns 1 on failure. */
static int read_features(const char *path, sdumc_features *x) {
    sdumc_error err;
    if (sdumc_features_load_npy(path, x, &err)) {
        fprintf(stderr, "sdumc predict-one: %s\n", err.message);
        return 1;
    }
    return 0;
}

/* The file's features against the model's dim for their slot, and finite: the library checks the
 * same, but its message names the slot, not the file the user gave. Prints and returns 1 when not. */
static int check_features(const char *path, const sdumc_features *x, int want_dim, const char *slot) {
    if (x->dim != want_dim) {
        fprintf(stderr, "sdumc predict-one: %s: %s features of dim %lld, the model takes dim %d\n", path, slot,
                (long long)x->dim, want_dim);
        return 1;
    }
    for (int64_t i = 0; i < x->frames * x->dim; i++)
        if (!isfinite(x->data[i])) {
            fprintf(stderr, "sdumc predict-one: %s: %s features: %s at frame %lld, column %lld\n", path, slot,
                    isnan(x->data[i]) ? "NaN" : "infinity", (long long)(i / x->dim), (long long)(i % x->dim));
            return 1;
        }
    return 0;
}

static void print_embedding(const float *z, int n, const char *sep) {
    for (int i = 0; i < n; i++) printf("%s%.9g", i ? sep : "", (double)z[i]);
}

int cli_predict_one(int argc, char **argv) {
    const char *model_path = NULL, *audio = NULL, *text = NULL, *sim = NULL, *video = NULL;
    int json = 0, require_mia = 0, show_embedding = 0, threads = 0, mia = -1;
    arg_spec specs[] = {
        {"model", ARG_STRING, &model_path, 0, 0, NULL, "model file", 0, 0},
        {"audio", ARG_STRING, &audio, 0, 0, NULL, "audio features .npy [T_a, D_a]", 0, 0},
        {"text", ARG_STRING, &text, 0, 0, NULL, "transcript features .npy [T_t, D_t]: the complete flow", 0, 0},
        {"sim-text", ARG_STRING, &sim, 0, 0, NULL, "simulated text .npy [T_s, D_t]: the text-missing flow", 0, 0},
        {"video", ARG_STRING, &video, 0, 0, NULL, "video features .npy [T_v, D_v]", 0, 0},
        {"require-mia", ARG_FLAG, &require_mia, 0, 0, NULL, "with --sim-text: fail if the model has no MIA", 0, 0},
        {"json", ARG_FLAG, &json, 0, 0, NULL, "print a JSON object: score, flow, mia, embedding_dim", 0, 0},
        {"embedding", ARG_FLAG, &show_embedding, 0, 0, NULL, "also print the embedding z (a second line, or in the JSON)", 0, 0},
        {"threads", ARG_INT, &threads, 0, 256, NULL, "threads (0 = all cores, at most 256)", 0, 0},
        CLI_MIA_SPEC(mia),
    };
    int n = (int)(sizeof specs / sizeof specs[0]), code;
    const char *synopsis =
        "sdumc predict-one --model M --audio a.npy (--text t.npy | --sim-text s.npy) --video v.npy [--mia on|off] [--json]";
    if (!cli_parse("predict-one", synopsis,
                   "Prints the score of one utterance (complete flow with --text, text-missing flow with\n"
                   "--sim-text).",
                   specs, n, argc, argv, &code))
        return code;
    if (!model_path || !audio || !video || (!text && !sim)) {
        fprintf(stderr, "sdumc predict-one: --model, --audio, one of --text and --sim-text, and --video are required\n");
        return 2;
    }
    if (text && sim) {
        fprintf(stderr, "sdumc predict-one: --text and --sim-text exclude each other (one flow per call)\n");
        return 2;
    }
    if (require_mia && !sim) {
        fprintf(stderr, "sdumc predict-one: --require-mia applies to the text-missing flow (--sim-text)\n");
        return 2;
    }
    sdumc_flow flow = text ? SDUMC_FLOW_COMPLETE : require_mia ? SDUMC_FLOW_TEXT_MISSING_MIA : SDUMC_FLOW_TEXT_MISSING;
    sdumc_error err;
    sdumc_model *model = NULL;
    sdumc_model_params params = sdumc_model_default_params();
    params.mia = mia < 0 ? SDUMC_MIA_FROM_FILE : mia ? SDUMC_MIA_ON : SDUMC_MIA_OFF;
    const int cpus = sd_threads_online();
    params.n_threads = threads > 0 ? threads : cpus > 256 ? 256 : cpus;
    if (sdumc_model_load_with_params(model_path, &params, &model, &err)) {
        fprintf(stderr, "sdumc predict-one: %s\n", err.message);
        return 1;
    }
    sdumc_info info = {.size = sizeof info};
    sdumc_model_info(model, &info, NULL);
    if (info.mia_source == SDUMC_MIA_SOURCE_NO_METADATA) cli_note_mia_default("predict-one", model_path);
    sdumc_utterance u = {{NULL, 0, 0}, {NULL, 0, 0}, {NULL, 0, 0}};
    int rc = 1;
    float score = 0.0f;
    float *z = malloc(sizeof(float) * (size_t)info.embedding_dim);
    if (!z) {
        fprintf(stderr, "sdumc predict-one: out of memory\n");
    } else if (!read_features(audio, &u.audio) && !read_features(text ? text : sim, &u.text) &&
               !read_features(video, &u.video) && !check_features(audio, &u.audio, info.dim_audio, "audio") &&
               !check_features(text ? text : sim, &u.text, info.dim_text, text ? "text" : "simulated text") &&
               !check_features(video, &u.video, info.dim_video, "video")) {
        if (sdumc_embed(model, NULL, &u, flow, z, (size_t)info.embedding_dim, &score, &err)) {
            fprintf(stderr, "sdumc predict-one: %s\n", err.message);
        } else {
            rc = 0;
            if (json) {
                printf("{\"score\": %.9g, \"flow\": \"%s\", \"mia\": %s, \"embedding_dim\": %d", (double)score,
                       text ? "complete" : "text-missing", !text && info.mia ? "true" : "false",
                       info.embedding_dim);
                if (show_embedding) {
                    printf(", \"embedding\": [");
                    print_embedding(z, info.embedding_dim, ", ");
                    printf("]");
                }
                printf("}\n");
            } else {
                printf("%.9g\n", (double)score);
                if (show_embedding) {
                    print_embedding(z, info.embedding_dim, " ");
                    printf("\n");
                }
            }
        }
    }
    sdumc_features_free(&u.audio);
    sdumc_features_free(&u.text);
    sdumc_features_free(&u.video);
    free(z);
    sdumc_model_free(model);
    return rc;
}
