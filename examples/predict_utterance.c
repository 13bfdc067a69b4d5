/* Scores one utterance with the sdumc C API: the smallest program an application would write.
 *
 *   predict_utterance MODEL AUDIO.npy TEXT.npy VIDEO.npy [--missing] [--threads N]
 *
 * Modalities in the API's order: audio, text, video. TEXT.npy holds the transcript features
 * (complete flow) or, with --missing, the simulated text (text-missing flow). Feature files are
 * .npy [frames, dim] in float16, float32 or float64 (what `sdumc synth` and numpy.save write),
 * read by the library's own reader. --threads N: the most threads a call may use (default: the
 * library's). Prints the model, the score and the first values of the embedding; errors go to
 * stderr with the library's message.
 *
 * Build against an installed sdumc (make install PREFIX=$HOME/.local):
 *   export PKG_CONFIG_PATH=$HOME/.local/lib/pkgconfig
 *   cc -std=c11 -O2 $(pkg-config --cflags sdumc) predict_utterance.c -o predict_utterance \
 *      $(pkg-config --libs sdumc) -Wl,-rpath,$(pkg-config --variable=libdir sdumc)
 * or statically: ... $(pkg-config --variable=libdir sdumc)/libsdumc.a $(pkg-config --libs-only-l --static sdumc | sed s/-lsdumc//)
 */
#include <sdumc.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(const sdumc_error *err) {
    fprintf(stderr, "error (%s): %s\n", sdumc_status_name(err->code), err->message);
    return 1;
}

int main(int argc, char **argv) {
    int missing = 0, threads = 0, bad = argc < 5;
    for (int i = 5; i < argc && !bad; i++) {
        if (!strcmp(argv[i], "--missing"))
            missing = 1;
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc && atoi(argv[i + 1]) > 0)
            threads = atoi(argv[++i]);
        else
            bad = 1;
    }
    if (bad) {
        fprintf(stderr, "usage: %s MODEL AUDIO.npy TEXT.npy VIDEO.npy [--missing] [--threads N]\n", argv[0]);
        return 2;
    }
    if (SDUMC_VERSION_MAJOR != atoi(sdumc_version())) { /* the header and the library agree */
        fprintf(stderr, "built against sdumc %d.x, running with %s\n", SDUMC_VERSION_MAJOR, sdumc_version());
        return 1;
    }
    sdumc_error err;
    sdumc_model_params params = sdumc_model_default_params();
    if (threads) params.n_threads = threads;
    sdumc_model *model = NULL;
    if (sdumc_model_load_with_params(argv[1], &params, &model, &err) != SDUMC_OK) return fail(&err);
    sdumc_info info = {.size = sizeof info};
    sdumc_model_info(model, &info, NULL);
    printf("sdumc %s: model dims %d/%d/%d, hidden %d, MIA %s, %lld parameters, %d threads\n", sdumc_version(),
           info.dim_audio, info.dim_text, info.dim_video, info.hidden, info.mia ? "on" : "off",
           (long long)info.param_count, info.n_threads);
    if (info.mia_source == SDUMC_MIA_SOURCE_NO_METADATA)
        fprintf(stderr, "note: %s has no sdumc metadata: MIA is off, as the released code runs it\n", argv[1]);

    const sdumc_flow flow = missing ? SDUMC_FLOW_TEXT_MISSING : SDUMC_FLOW_COMPLETE;
    sdumc_utterance u;
    memset(&u, 0, sizeof u);
    float *z = malloc(sizeof(float) * (size_t)info.embedding_dim);
    float score = 0.0f;
    int rc = 1;
    if (!z) {
        fprintf(stderr, "out of memory\n");
    } else if (sdumc_features_load_npy(argv[2], &u.audio, &err) || sdumc_features_load_npy(argv[3], &u.text, &err) ||
               sdumc_features_load_npy(argv[4], &u.video, &err)) {
        fail(&err);
    } else if (sdumc_embed(model, NULL, &u, flow, z, (size_t)info.embedding_dim, &score, &err)) {
        /* One call gives the score and the embedding; sdumc_predict gives the score alone. */
        fail(&err);
    } else {
        printf("flow %s\nscore %.9g\nembedding %d floats:", missing ? "text-missing" : "complete", (double)score,
               info.embedding_dim);
        for (int i = 0; i < info.embedding_dim && i < 4; i++) printf(" %.6g", (double)z[i]);
        printf(" ...\n");
        rc = 0;
    }
    sdumc_features_free(&u.audio);
    sdumc_features_free(&u.text);
    sdumc_features_free(&u.video);
    free(z);
    sdumc_model_free(model);
    return rc;
}
