/* Issue 14 through the public API: finite but huge features never give NaN with SDUMC_OK; a model
 * file with a non-finite weight is refused at load, naming the tensor; OMP_NUM_THREADS far above the
 * core count does not crash the library (it clamps its own thread count). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "model/model.h"
#include "sdumc.h"

static char model_path[700], nan_path[700];

static void setup(void) {
    snprintf(model_path, sizeof model_path, "%s/m.safetensors", sd_test_tmpdir());
    snprintf(nan_path, sizeof nan_path, "%s/nan.safetensors", sd_test_tmpdir());
    sd_model_config c = sd_model_default_config(6, 8, 4);
    c.hidden = 16;
    sd_model *m = NULL;
    sd_error err;
    if (sd_model_create(&c, &m, &err) || sd_model_save(m, model_path, &err)) {
        fprintf(stderr, "setup: %s\n", err.msg);
        exit(2);
    }
    /* One NaN in a weight that a ReLU follows (a NaN there used to vanish into a finite score). */
    m->params[m->table.specs[0].offset] = NAN;
    if (sd_model_save(m, nan_path, &err)) exit(2);
    sd_model_free(m);
}

/* An utterance of constant features v (frames 3) for the dims above. */
static sdumc_utterance utterance(float *buf, float v) {
    for (int i = 0; i < 3 * 8; i++) buf[i] = v;
    sdumc_utterance u = {{buf, 3, 6}, {buf, 3, 8}, {buf, 3, 4}};
    return u;
}

static void test_huge_inputs(void) {
    sdumc_model *m = NULL;
    sdumc_error err;
    EXPECT(sdumc_model_load(model_path, &m, &err) == SDUMC_OK, "%s", err.message);
    if (!m) return;
    float buf[24], score = 0.0f, emb[8];
    const float values[] = {1.0f, 1e30f, 3e38f, -3e38f};
    for (int i = 0; i < 4; i++) {
        sdumc_utterance u = utterance(buf, values[i]);
        sdumc_status st = sdumc_predict(m, NULL, &u, SDUMC_FLOW_COMPLETE, &score, &err);
        EXPECT(st == SDUMC_E_NUMERIC || (st == SDUMC_OK && isfinite(score)), "value %g: status %d, score %g", (double)values[i],
               (int)st, (double)score);
        if (st) EXPECT(strstr(err.message, "not finite") != NULL, "message: %s", err.message);
        st = sdumc_embed(m, NULL, &u, SDUMC_FLOW_TEXT_MISSING, emb, 8, &score, &err);
        int finite = 1;
        for (int k = 0; k < 8; k++) finite &= isfinite(emb[k]) != 0;
        EXPECT(st == SDUMC_E_NUMERIC || (st == SDUMC_OK && isfinite(score) && finite), "embed %g: status %d",
               (double)values[i], (int)st);
        sdumc_utterance two[2] = {utterance(buf, values[i]), u};
        float scores[2];
        st = sdumc_predict_batch(m, NULL, two, 2, SDUMC_FLOW_COMPLETE, scores, NULL, &err);
        EXPECT(st == SDUMC_E_NUMERIC || (st == SDUMC_OK && isfinite(scores[0]) && isfinite(scores[1])),
               "batch %g: status %d", (double)values[i], (int)st);
    }
    /* 3e38 overflows inside the network: it must be the error, not a score. */
    sdumc_utterance u = utterance(buf, 3e38f);
    EXPECT(sdumc_predict(m, NULL, &u, SDUMC_FLOW_COMPLETE, &score, &err) == SDUMC_E_NUMERIC, "3e38 accepted");
    sdumc_model_free(m);
}

static void test_nan_weight_refused(void) {
    sdumc_model *m = NULL;
    sdumc_error err;
    EXPECT(sdumc_model_load(nan_path, &m, &err) == SDUMC_E_NUMERIC && m == NULL, "NaN weight loaded");
    EXPECT(strstr(err.message, "holds NaN at index 0") != NULL && strstr(err.message, ".weight") != NULL,
           "message: %s", err.message);
    sdumc_model_free(m);
}

/* The child: one prediction under the environment the parent set. */
static int child_predict(void) {
    sdumc_model *m = NULL;
    sdumc_error err;
    float buf[24], score;
    if (sdumc_model_load(model_path, &m, &err)) return 3;
    sdumc_utterance u = utterance(buf, 0.5f);
    int rc = sdumc_predict(m, NULL, &u, SDUMC_FLOW_COMPLETE, &score, &err) ? 4 : 0;
    sdumc_model_free(m);
    return rc;
}

static void test_omp_threads_far_above_cores(void) {
    pid_t pid = fork();
    if (pid == 0) {
        setenv("OMP_NUM_THREADS", "100000", 1);
        setenv("SD_API_HOSTILE_CHILD", model_path, 1);
        execl("/proc/self/exe", "test_api_hostile", (char *)NULL);
        _exit(5);
    }
    int status = 0;
    EXPECT(pid > 0 && waitpid(pid, &status, 0) == pid, "fork");
    EXPECT(WIFEXITED(status) && WEXITSTATUS(status) == 0, "OMP_NUM_THREADS=100000: the child %s %d",
           WIFEXITED(status) ? "exited" : "died of signal", WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
}

int main(void) {
    const char *child = getenv("SD_API_HOSTILE_CHILD");
    if (child) {
        snprintf(model_path, sizeof model_path, "%s", child);
        return child_predict();
    }
    setup();
    sd_test_run("api_hostile.huge_inputs_never_nan_ok", test_huge_inputs);
    sd_test_run("api_hostile.nan_weight_refused_at_load", test_nan_weight_refused);
    sd_test_run("api_hostile.omp_threads_far_above_cores", test_omp_threads_far_above_cores);
    return sd_test_finish();
}
