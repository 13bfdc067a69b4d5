/* Per-epoch training records to and from JSON (the log lines and the history in the state). */
#include "train/history.h"

#include <limits.h>
#include <math.h>
#include <string.h>

/* JSON has no NaN: an undefined value (Corr of a constant prediction, a diverged loss) is null. */
static void num(sd_strbuf *o, const char *key, double v, int first) {
    if (isfinite(v))
        sd_strbuf_printf(o, "%s\"%s\": %.17g", first ? "" : ", ", key, v);
    else
        sd_strbuf_printf(o, "%s\"%s\": null", first ? "" : ", ", key);
}

static void metrics_json(sd_strbuf *o, const char *key, const sd_metrics *m) {
    sd_strbuf_printf(o, ", \"%s\": {", key);
    num(o, "mae", m->mae, 1);
    num(o, "mse", m->mse, 0);
    num(o, "corr", m->corr_defined ? m->corr : NAN, 0);
    if (m->scheme == SD_METRICS_MOSI) {
        num(o, "acc7", m->acc7, 0);
        num(o, "acc5", m->acc5, 0);
        num(o, "acc2_has0", m->acc2_has0, 0);
        num(o, "f1_has0", m->f1_has0, 0);
        num(o, "acc2_non0", m->acc2_non0, 0);
        num(o, "f1_non0", m->f1_non0, 0);
        sd_strbuf_printf(o, ", \"n\": %zu, \"n_non0\": %zu}", m->n, m->n_non0);
        return;
    }
    if (m->scheme == SD_METRICS_SIMS) {
        num(o, "acc2", m->acc2, 0);
        num(o, "acc3", m->acc3, 0);
        num(o, "acc5", m->acc5, 0);
        num(o, "f1", m->f1, 0);
    }
    sd_strbuf_printf(o, ", \"n\": %zu, \"scheme\": \"%s\"}", m->n, sd_metrics_scheme_name(m->scheme));
}

/* "epoch" is 1-based in JSON, as on the console and in the report (0-based in memory). */
void sd_epoch_record_json(sd_strbuf *o, const sd_epoch_record *r) {
    sd_strbuf_printf(o, "{\"epoch\": %d", r->epoch + 1);
    num(o, "lr", r->lr, 0);
    sd_strbuf_puts(o, ", \"loss\": {");
    num(o, "full", r->loss.full, 1);
    num(o, "miss", r->loss.miss, 0);
    num(o, "tf", r->loss.tf, 0);
    num(o, "tq", r->loss.tq, 0);
    num(o, "f", r->loss.f, 0);
    num(o, "rnc", r->loss.rnc, 0);
    num(o, "total", r->loss.total, 0);
    sd_strbuf_puts(o, "}");
    metrics_json(o, "valid_full", &r->valid_full);
    metrics_json(o, "valid_missing", &r->valid_miss);
    if (r->train_full.n) { /* none with --train-subset 0 */
        metrics_json(o, "train_full", &r->train_full);
        metrics_json(o, "train_missing", &r->train_miss);
    }
    if (r->pass_full.n) metrics_json(o, "train_pass_full", &r->pass_full);
    if (r->pass_miss.n) metrics_json(o, "train_pass_missing", &r->pass_miss); /* none: that flow did not run */
    num(o, "seconds", r->seconds, 0);
    num(o, "eval_seconds", r->eval_seconds, 0);
    num(o, "samples_per_s", r->samples_per_s, 0);
    sd_strbuf_printf(o, ", \"samples\": %lld}", (long long)r->samples);
}

static double get_num(const sd_json *obj, const char *key, int *ok) {
    const sd_json *v = obj ? sd_json_get(obj, key) : NULL;
    if (v && v->type == SD_JSON_NUMBER) return v->number;
    if (v && v->type == SD_JSON_NULL) return NAN;
    *ok = 0;
    return NAN;
}

/* A count or index: a whole number in [0, max]; anything else (NaN, out of range, a fraction)
 * clears *ok, as converting it to an integer type would be undefined. */
static double get_count(const sd_json *obj, const char *key, double max, int *ok) {
    double x = get_num(obj, key, ok);
    if (!(x >= 0.0 && x <= max && x == floor(x))) {
        *ok = 0;
        return 0.0;
    }
    return x;
}

static void parse_metrics(const sd_json *v, sd_metrics *m, int *ok) {
    memset(m, 0, sizeof *m);
    if (!v || v->type != SD_JSON_OBJECT) {
        *ok = 0;
        return;
    }
    m->mae = get_num(v, "mae", ok);
    m->mse = get_num(v, "mse", ok);
    m->corr = get_num(v, "corr", ok);
    m->corr_defined = !isnan(m->corr);
    m->n = (size_t)get_count(v, "n", 9007199254740992.0, ok);
    const sd_json *scheme = sd_json_get(v, "scheme");
    if (!scheme) { /* MOSI, the default */
        m->acc7 = get_num(v, "acc7", ok);
        m->acc5 = get_num(v, "acc5", ok);
        m->acc2_has0 = get_num(v, "acc2_has0", ok);
        m->f1_has0 = get_num(v, "f1_has0", ok);
        m->acc2_non0 = get_num(v, "acc2_non0", ok);
        m->f1_non0 = get_num(v, "f1_non0", ok);
        m->n_non0 = (size_t)get_count(v, "n_non0", 9007199254740992.0, ok);
    } else if (scheme->type == SD_JSON_STRING && !strcmp(scheme->str, "sims")) {
        m->scheme = SD_METRICS_SIMS;
        m->acc2 = get_num(v, "acc2", ok);
        m->acc3 = get_num(v, "acc3", ok);
        m->acc5 = get_num(v, "acc5", ok);
        m->f1 = get_num(v, "f1", ok);
    } else if (scheme->type == SD_JSON_STRING && !strcmp(scheme->str, "range")) {
        m->scheme = SD_METRICS_RANGE;
    } else {
        *ok = 0;
    }
}

sd_status sd_epoch_record_parse(const sd_json *v, sd_epoch_record *r, sd_error *err) {
    int ok = v && v->type == SD_JSON_OBJECT;
    memset(r, 0, sizeof *r);
    if (ok) {
        r->epoch = (int)get_count(v, "epoch", INT_MAX, &ok) - 1;
        if (r->epoch < 0) ok = 0;
        r->lr = get_num(v, "lr", &ok);
        const sd_json *l = sd_json_get(v, "loss");
        r->loss.full = get_num(l, "full", &ok);
        r->loss.miss = get_num(l, "miss", &ok);
        r->loss.tf = get_num(l, "tf", &ok);
        r->loss.tq = get_num(l, "tq", &ok);
        r->loss.f = get_num(l, "f", &ok);
        r->loss.rnc = get_num(l, "rnc", &ok);
        r->loss.total = get_num(l, "total", &ok);
        parse_metrics(sd_json_get(v, "valid_full"), &r->valid_full, &ok);
        parse_metrics(sd_json_get(v, "valid_missing"), &r->valid_miss, &ok);
        /* Records written before the training-subset metrics existed have none: n = 0. */
        if (sd_json_get(v, "train_full")) parse_metrics(sd_json_get(v, "train_full"), &r->train_full, &ok);
        if (sd_json_get(v, "train_missing")) parse_metrics(sd_json_get(v, "train_missing"), &r->train_miss, &ok);
        /* Nor the training pass's, before they existed. */
        if (sd_json_get(v, "train_pass_full")) parse_metrics(sd_json_get(v, "train_pass_full"), &r->pass_full, &ok);
        if (sd_json_get(v, "train_pass_missing"))
            parse_metrics(sd_json_get(v, "train_pass_missing"), &r->pass_miss, &ok);
        if (sd_json_get(v, "eval_seconds")) r->eval_seconds = get_num(v, "eval_seconds", &ok);
        r->seconds = get_num(v, "seconds", &ok);
        r->samples_per_s = get_num(v, "samples_per_s", &ok);
        r->samples = (int64_t)get_count(v, "samples", 9007199254740992.0, &ok);
    }
    return ok ? SD_OK : sd_fail(err, SD_E_FORMAT, "malformed epoch record in the training history");
}
