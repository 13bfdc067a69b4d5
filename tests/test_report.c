/* The training report and its charts: round tick values, the warning when the selected epoch is
 * the last one (and only then), the configuration rows marked when they differ from the preset,
 * the loss-term explanations, the training-mean reference line; epoch records with the
 * training-subset metrics read back exactly, and records of older logs without them read as
 * "not measured". */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "io/json.h"
#include "io/svg.h"
#include "train/history.h"
#include "train/report.h"

static void test_nice_ticks(void) {
    double t[64];
    int n = sd_nice_ticks(0.0, 0.9, 10, 0, t, 64);
    EXPECT(n == 10 && t[0] == 0.0 && fabs(t[9] - 0.9) < 1e-12 && fabs(t[3] - 0.3) < 1e-12, "0..0.9: %d ticks, %g..%g", n, t[0], t[n - 1]);
    n = sd_nice_ticks(0.8312, 0.9731, 6, 0, t, 64);
    EXPECT(n >= 4 && n <= 9 && t[0] <= 0.8312 && t[n - 1] >= 0.9731, "0.83..0.97: %d ticks %g..%g", n, t[0], t[n - 1]);
    for (int k = 0; k < n; k++) {
        double steps = t[k] / (t[1] - t[0]);
        EXPECT(fabs(steps - round(steps)) < 1e-6, "tick %g is not a multiple of the step", t[k]);
    }
    double step = t[1] - t[0], mag = pow(10, floor(log10(step))), lead = step / mag;
    EXPECT(fabs(lead - 1) < 1e-9 || fabs(lead - 2) < 1e-9 || fabs(lead - 5) < 1e-9, "step %g is not 1, 2 or 5 x 10^k", step);
    n = sd_nice_ticks(1, 3, 10, 1, t, 64); /* epochs: whole numbers */
    EXPECT(n == 3 && t[0] == 1 && t[2] == 3, "epochs 1..3: %d ticks", n);
    n = sd_nice_ticks(2.5, 2.5, 6, 0, t, 64); /* a flat series still gets an axis */
    EXPECT(n >= 2 && t[0] <= 2.5 && t[n - 1] >= 2.5, "flat: %d ticks", n);
}

static sd_epoch_record history[3];
static float label[4] = {1, -1, 0.5f, 2}, pred[4] = {0.5f, -0.5f, 0, 1};

static void fill_history(void) {
    for (int e = 0; e < 3; e++) {
        sd_epoch_record *r = &history[e];
        memset(r, 0, sizeof *r);
        r->epoch = e;
        r->lr = 1e-3;
        r->loss = (sd_loss_terms){0.9 - 0.1 * e, 1.0 - 0.1 * e, 0, 0.3, 0.05, 2.7, 3.1};
        sd_metrics_compute(pred, label, 4, &r->valid_full);
        r->valid_miss = r->valid_full;
        r->train_full = r->train_miss = r->valid_full;
        r->seconds = 1.5;
        r->eval_seconds = 0.25;
        r->samples = 100;
    }
}

static char *write_report(int selected, sd_select select, const sd_train_options *o) {
    char path[600];
    snprintf(path, sizeof path, "%s/report_%d_%d.html", sd_test_tmpdir(), selected, (int)select);
    sd_train_options local = o ? *o : sd_train_default_options();
    local.select = select;
    sd_report_input in = {history, 3, selected, "why", label, pred, pred, 4, "m.safetensors", &local, NULL, NULL, 4};
    sd_error err;
    EXPECT(sd_report_write(path, &in, &err) == SD_OK, "report: %s", err.msg);
    size_t n;
    return sd_test_read_file(path, &n);
}

static void test_last_epoch_warning(void) {
    fill_history();
    char *last = write_report(2, SD_SELECT_MEAN, NULL), *middle = write_report(1, SD_SELECT_MEAN, NULL),
         *asked = write_report(2, SD_SELECT_LAST, NULL);
    EXPECT(last && strstr(last, "class='warn'") && strstr(last, "the selected epoch is the last one (3)"), "no warning for the last epoch");
    EXPECT(middle && !strstr(middle, "class='warn'"), "a warning for a middle epoch");
    EXPECT(asked && !strstr(asked, "class='warn'"), "a warning although --select last asked for the last epoch");
    free(last);
    free(middle);
    free(asked);
}

static void test_report_contents(void) {
    fill_history();
    sd_train_options o = sd_train_default_options();
    o.lr = 2e-3f;
    o.w.tf = 0;
    char *html = write_report(1, SD_SELECT_MEAN, &o);
    if (!html) return;
    EXPECT(strstr(html, "<tr class='changed'><td>learning rate</td><td>0.002</td><td>set (preset: 0.0001)</td></tr>") != NULL,
           "the changed learning rate is not marked");
    EXPECT(strstr(html, "<tr><td>weight decay</td><td>1e-05</td><td></td></tr>") != NULL, "an unchanged value is marked");
    EXPECT(strstr(html, "sdumc version") && strstr(html, "total time</td><td>5.2 s over 3 epochs (training 4.5 s, evaluation 0.8 s)"),
           "version or total time missing");
    EXPECT(strstr(html, "Rank-N-Contrast (own axis)") && strstr(html, "text-query distillation") &&
               strstr(html, "(weight w_tf = 0: not computed)"),
           "loss-term explanations missing");
    EXPECT(strstr(html, "train, complete flow") && strstr(html, "train, text-missing flow"), "training MAE not drawn");
    /* the tf term (weight 0) is not drawn */
    EXPECT(!strstr(html, "<title>tf, epoch"), "a term with weight 0 is drawn");
    EXPECT(!strstr(html, "NaN") && !strstr(html, "nan") && !strstr(html, "inf'"), "a non-number in the page");
    free(html);
}

static void test_history_roundtrip(void) {
    fill_history();
    history[1].train_full.mae = 0.123456789012345;
    sd_strbuf b = {0};
    sd_epoch_record_json(&b, &history[1]);
    sd_json *v = NULL;
    sd_epoch_record r;
    sd_error err;
    EXPECT(sd_json_parse(b.data, b.len, &v, &err) == SD_OK && sd_epoch_record_parse(v, &r, &err) == SD_OK, "%s", err.msg);
    EXPECT(r.train_full.mae == history[1].train_full.mae && r.train_miss.n == 4 && r.eval_seconds == 0.25, "train metrics lost");
    sd_json_free(v);
    sd_strbuf_free(&b);
    /* A record of an older log: no train_full, train_missing, eval_seconds. */
    const char *old = "{\"epoch\": 1, \"lr\": 0.001, \"loss\": {\"full\": 1, \"miss\": 1, \"tf\": 0, \"tq\": 0, \"f\": 0, "
                      "\"rnc\": 0, \"total\": 1}, \"valid_full\": {\"mae\": 1, \"mse\": 1, \"corr\": null, \"acc7\": 0, "
                      "\"acc5\": 0, \"acc2_has0\": 0, \"f1_has0\": 0, \"acc2_non0\": 0, \"f1_non0\": 0, \"n\": 2, \"n_non0\": 2}, "
                      "\"valid_missing\": {\"mae\": 1, \"mse\": 1, \"corr\": null, \"acc7\": 0, \"acc5\": 0, \"acc2_has0\": 0, "
                      "\"f1_has0\": 0, \"acc2_non0\": 0, \"f1_non0\": 0, \"n\": 2, \"n_non0\": 2}, \"seconds\": 1, "
                      "\"samples_per_s\": 10, \"samples\": 10}";
    EXPECT(sd_json_parse(old, strlen(old), &v, &err) == SD_OK && sd_epoch_record_parse(v, &r, &err) == SD_OK, "old record: %s", err.msg);
    EXPECT(r.train_full.n == 0 && r.eval_seconds == 0 && r.valid_full.n == 2, "old record read wrongly");
    sd_json_free(v);
}

int main(void) {
    sd_test_run("report.nice_ticks", test_nice_ticks);
    sd_test_run("report.last_epoch_warning", test_last_epoch_warning);
    sd_test_run("report.contents", test_report_contents);
    sd_test_run("report.history_roundtrip", test_history_roundtrip);
    return sd_test_finish();
}
