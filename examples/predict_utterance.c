/* Scores one utterance with the sdumc C API: the smallest program an application would write.
 *
 *   predict_utterance MODEL AUDIO.npy TEXT.npy VIDEO.npy [--missing]
 *
 * TEXT.npy holds the transcript features (complete flow) or, with --missing, the simulated text
 * (text-missing flow). Feature files are float32 .npy, [frames, dim] (numpy.save of a float32
 * array). Prints the model, the score and the first values of the embedding; errors go to stderr
 * with the library's message.
 *
 * Build against an installed sdumc (make install PREFIX=$HOME/.local):
 *   export PKG_CONFIG_PATH=$HOME/.local/lib/pkgconfig
 *   cc -std=c11 -O2 $(pkg-config --cflags sdumc) predict_utterance.c -o predict_utterance \
 *      $(pkg-config --libs sdumc) -Wl,-rpath,$(pkg-config --variable=libdir sdumc)
 * or statically: ... $(pkg-config --variable=libdir sdumc)/libsdumc.a $(pkg-config --libs-only-l --static sdumc | sed s/-lsdumc//)
 */
#include <sdumc.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A minimal .npy reader: format 1.x or 2.x, dtype '<f4', C order, shape (T, D) or (D,).
 * Returns the floats (free with free()) and sets *frames, *dim; NULL with a message on failure. */
static float *read_npy_f32(const char *path, int64_t *frames, int64_t *dim) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        return NULL;
    }
    unsigned char pre[12];
    float *data = NULL;
    char *header = NULL;
    size_t hlen = 0;
    if (fread(pre, 1, 10, f) != 10 || memcmp(pre, "\x93NUMPY", 6) != 0 || (pre[6] != 1 && pre[6] != 2)) goto bad;
    if (pre[6] == 1) {
        hlen = (size_t)pre[8] | (size_t)pre[9] << 8;
    } else {
        if (fread(pre + 10, 1, 2, f) != 2) goto bad;
        hlen = (size_t)pre[8] | (size_t)pre[9] << 8 | (size_t)pre[10] << 16 | (size_t)pre[11] << 24;
    }
    header = calloc(1, hlen + 1);
    if (!header || fread(header, 1, hlen, f) != hlen) goto bad;
    if (!strstr(header, "'descr': '<f4'") || !strstr(header, "'fortran_order': False")) {
        fprintf(stderr, "%s: only little-endian float32 C-order arrays are read here\n", path);
        goto fail;
    }
    const char *shape = strstr(header, "'shape': (");
    long long t = 1, d = 0;
    if (!shape) goto bad;
    shape += 10;
    if (sscanf(shape, "%lld, %lld)", &t, &d) != 2) {
        t = 1;
        if (sscanf(shape, "%lld,)", &d) != 1) goto bad;
    }
    if (t < 1 || d < 1 || t > (1LL << 31) || d > (1LL << 24)) goto bad;
    data = malloc(sizeof(float) * (size_t)t * (size_t)d);
    if (!data || fread(data, sizeof(float), (size_t)t * (size_t)d, f) != (size_t)t * (size_t)d) goto bad;
    fclose(f);
    free(header);
    *frames = t;
    *dim = d;
    return data;
bad:
    fprintf(stderr, "%s: not a readable float32 .npy file\n", path);
fail:
    fclose(f);
    free(header);
    free(data);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 5 && !(argc == 6 && strcmp(argv[5], "--missing") == 0)) {
        fprintf(stderr, "usage: %s MODEL AUDIO.npy TEXT.npy VIDEO.npy [--missing]\n", argv[0]);
        return 2;
    }
    sdumc_flow flow = argc == 6 ? SDUMC_FLOW_TEXT_MISSING : SDUMC_FLOW_COMPLETE;
    sdumc_error err;
    sdumc_model *model = NULL;
    if (sdumc_model_load(argv[1], &model, &err) != SDUMC_OK) {
        fprintf(stderr, "error (%s): %s\n", sdumc_status_name(err.code), err.message);
        return 1;
    }
    sdumc_info info;
    sdumc_model_info(model, &info, NULL);
    printf("sdumc %s: model dims %d/%d/%d, hidden %d, MIA %s, %lld parameters\n", sdumc_version(),
           info.dim_audio, info.dim_text, info.dim_video, info.hidden, info.mia ? "on" : "off",
           (long long)info.param_count);

    sdumc_utterance u;
    memset(&u, 0, sizeof u);
    float *audio = read_npy_f32(argv[2], &u.audio.frames, &u.audio.dim);
    float *text = read_npy_f32(argv[3], &u.text.frames, &u.text.dim);
    float *video = read_npy_f32(argv[4], &u.video.frames, &u.video.dim);
    u.audio.data = audio;
    u.text.data = text;
    u.video.data = video;
    float *z = malloc(sizeof(float) * (size_t)info.embedding_dim);
    float score = 0.0f;
    int rc = 1;
    if (audio && text && video && z) {
        /* One call gives the score and the embedding; sdumc_predict gives the score alone. */
        if (sdumc_embed(model, NULL, &u, flow, z, (size_t)info.embedding_dim, &score, &err) != SDUMC_OK) {
            fprintf(stderr, "error (%s): %s\n", sdumc_status_name(err.code), err.message);
        } else {
            printf("flow %s\nscore %.9g\nembedding %d floats:", flow == SDUMC_FLOW_COMPLETE ? "complete" : "text-missing",
                   (double)score, info.embedding_dim);
            for (int i = 0; i < info.embedding_dim && i < 4; i++) printf(" %.6g", (double)z[i]);
            printf(" ...\n");
            rc = 0;
        }
    }
    free(audio);
    free(text);
    free(video);
    free(z);
    sdumc_model_free(model);
    return rc;
}
