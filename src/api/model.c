/* Public API: status names, version, options, loading and describing a model, scratch contexts. */
#include <stdlib.h>
#include <string.h>

#include "api/api_internal.h"
#include "core/pool.h"
#include "core/threads.h"

/* The public codes are the internal ones under other names: keep them equal. */
_Static_assert((int)SDUMC_OK == (int)SD_OK && (int)SDUMC_E_ARG == (int)SD_E_ARG &&
                   (int)SDUMC_E_NOMEM == (int)SD_E_NOMEM && (int)SDUMC_E_IO == (int)SD_E_IO &&
                   (int)SDUMC_E_FORMAT == (int)SD_E_FORMAT && (int)SDUMC_E_SHAPE == (int)SD_E_SHAPE &&
                   (int)SDUMC_E_NUMERIC == (int)SD_E_NUMERIC &&
                   (int)SDUMC_E_UNSUPPORTED == (int)SD_E_UNSUPPORTED,
               "sdumc_status must mirror sd_status");
_Static_assert(SDUMC_ERROR_MAX == SD_ERROR_MSG_MAX, "error message sizes must agree");

sdumc_status sd_api_error(sdumc_error *err, const sd_error *e, sd_status code) {
    if (err) {
        err->code = (sdumc_status)code;
        memcpy(err->message, e->msg, SDUMC_ERROR_MAX);
        err->message[SDUMC_ERROR_MAX - 1] = '\0';
    }
    return (sdumc_status)code;
}

void sd_api_ok(sdumc_error *err) {
    if (err) {
        err->code = SDUMC_OK;
        err->message[0] = '\0';
    }
}

sdumc_status sd_api_fail(sdumc_error *err, sdumc_status code, const char *msg) {
    sd_error e;
    sd_fail(&e, (sd_status)code, "%s", msg);
    return sd_api_error(err, &e, (sd_status)code);
}

const char *sdumc_status_name(sdumc_status code) { return sd_status_name((sd_status)code); }

const char *sdumc_version(void) { return SDUMC_VERSION; }

_Static_assert((int)SDUMC_MIA_SOURCE_METADATA == (int)SD_MIA_FROM_METADATA &&
                   (int)SDUMC_MIA_SOURCE_NO_METADATA == (int)SD_MIA_FROM_DEFAULT &&
                   (int)SDUMC_MIA_SOURCE_PARAMS == (int)SD_MIA_FROM_OVERRIDE,
               "sdumc_mia_source must mirror sd_mia_source");

sdumc_model_params sdumc_model_default_params(void) {
    sdumc_model_params p;
    memset(&p, 0, sizeof p);
    p.size = sizeof p;
    const int cpus = sd_threads_online();
    p.n_threads = cpus > 4 ? 4 : cpus;
    p.mia = SDUMC_MIA_FROM_FILE;
    p.use_mmap = 1;
    return p;
}

sdumc_context_params sdumc_context_default_params(void) {
    sdumc_context_params p;
    memset(&p, 0, sizeof p);
    p.size = sizeof p;
    p.n_threads = 0;
    return p;
}

/* Copies the caller's options struct `in` (first field: its size) over the defaults already in
 * dst [ours bytes]: fields past the caller's size keep their defaults (a caller built against an
 * older header). A larger size comes from a newer header than this library's and is refused. */
static sd_status read_sized(const void *in, void *dst, size_t ours, const char *what, const char *fn,
                            sd_error *e) {
    size_t size;
    memcpy(&size, in, sizeof size);
    if (size < sizeof(size_t) || size > ours)
        return sd_fail(e, SD_E_ARG, "%s: %s->size is %zu; start from the library's defaults (this library's "
                       "struct has %zu bytes; a larger one comes from a newer sdumc.h)", fn, what, size, ours);
    memcpy((char *)dst + sizeof(size_t), (const char *)in + sizeof(size_t), size - sizeof(size_t));
    return SD_OK;
}

static sd_status check_threads(int n, int zero_ok, const char *what, const char *fn, sd_error *e) {
    if (n < (zero_ok ? 0 : 1) || n > SD_API_MAX_THREADS)
        return sd_fail(e, SD_E_ARG, "%s: %s->n_threads is %d (%d to %d)", fn, what, n, zero_ok ? 0 : 1,
                       SD_API_MAX_THREADS);
    return SD_OK;
}

/* The caller's params (NULL: the defaults), checked. */
static sd_status read_model_params(const sdumc_model_params *in, sdumc_model_params *p, const char *fn, sd_error *e) {
    *p = sdumc_model_default_params();
    if (!in) return SD_OK;
    sd_status st = read_sized(in, p, sizeof *p, "params", fn, e);
    if (st) return st;
    if ((int)p->mia < (int)SDUMC_MIA_FROM_FILE || (int)p->mia > (int)SDUMC_MIA_ON)
        return sd_fail(e, SD_E_ARG, "%s: params->mia is %d (SDUMC_MIA_FROM_FILE, SDUMC_MIA_OFF or SDUMC_MIA_ON)",
                       fn, (int)p->mia);
    if (p->use_mmap != 0 && p->use_mmap != 1)
        return sd_fail(e, SD_E_ARG, "%s: params->use_mmap is %d (0 or 1)", fn, p->use_mmap);
    return check_threads(p->n_threads, 0, "params", fn, e);
}

/* Loads from a path or, when path is NULL, from data [size]. */
static sdumc_status load_model(const char *path, const void *data, size_t size, const sdumc_model_params *params,
                               sdumc_model **out, const char *fn, sdumc_error *err) {
    sd_error e;
    if (!out) return sd_api_error(err, &e, sd_fail(&e, SD_E_ARG, "%s: out is NULL", fn));
    *out = NULL;
    sdumc_model_params p;
    sd_status st = read_model_params(params, &p, fn, &e);
    if (st) return sd_api_error(err, &e, st);
    sdumc_model *model = calloc(1, sizeof *model);
    if (!model) return sd_api_error(err, &e, sd_fail(&e, SD_E_NOMEM, "%s: out of memory", fn));
    model->n_threads = p.n_threads;
    sd_model_load_opts o = sd_model_default_load_opts();
    o.mia = p.mia == SDUMC_MIA_ON ? 1 : p.mia == SDUMC_MIA_OFF ? 0 : -1;
    o.use_mmap = p.use_mmap;
    st = path ? sd_model_load_with(path, &o, &model->m, &e) : sd_model_load_memory(data, size, &o, &model->m, &e);
    if (!st) st = sd_model_prepare_inference(model->m, &e); /* an API model only predicts */
    if (st) {
        sd_model_free(model->m);
        free(model);
        return sd_api_error(err, &e, st);
    }
    *out = model;
    sd_api_ok(err);
    return SDUMC_OK;
}

sdumc_status sdumc_model_load(const char *path, sdumc_model **out, sdumc_error *err) {
    return sdumc_model_load_with_params(path, NULL, out, err);
}

sdumc_status sdumc_model_load_with_params(const char *path, const sdumc_model_params *params,
                                          sdumc_model **out, sdumc_error *err) {
    static const char fn[] = "sdumc_model_load";
    if (!path) {
        if (out) *out = NULL;
        return sd_api_fail(err, SDUMC_E_ARG, "sdumc_model_load: path is NULL");
    }
    return load_model(path, NULL, 0, params, out, fn, err);
}

sdumc_status sdumc_model_load_from_memory(const void *data, size_t size, const sdumc_model_params *params,
                                          sdumc_model **out, sdumc_error *err) {
    static const char fn[] = "sdumc_model_load_from_memory";
    if (!data) {
        if (out) *out = NULL;
        return sd_api_fail(err, SDUMC_E_ARG, "sdumc_model_load_from_memory: data is NULL");
    }
    return load_model(NULL, data, size, params, out, fn, err);
}

void sdumc_model_free(sdumc_model *model) {
    if (!model) return;
    sd_model_free(model->m);
    free(model);
}

sdumc_status sdumc_model_info(const sdumc_model *model, sdumc_info *caller, sdumc_error *err) {
    sdumc_info *info = caller;
    if (!model) return sd_api_fail(err, SDUMC_E_ARG, "sdumc_model_info: model is NULL");
    if (!info) return sd_api_fail(err, SDUMC_E_ARG, "sdumc_model_info: info is NULL");
    const sd_model_config *c = &model->m->cfg;
    const size_t size = info->size;
    if (size < sizeof(size_t) || size > sizeof(sdumc_info))
        return sd_api_fail(err, SDUMC_E_ARG, "sdumc_model_info: set info->size = sizeof(sdumc_info) before the call "
                                             "(sdumc_info info = {sizeof info};)");
    sdumc_info all;
    memset(&all, 0, sizeof all);
    info = &all; /* filled whole, then copied up to the caller's size */
    info->dim_audio = c->dim[SD_MOD_AUDIO];
    info->dim_text = c->dim[SD_MOD_TEXT];
    info->dim_video = c->dim[SD_MOD_VIDEO];
    info->hidden = c->hidden;
    info->embedding_dim = c->hidden / 2;
    info->mia = c->mia;
    info->mask = c->mask;
    memcpy(info->preset, c->preset, sizeof info->preset);
    info->preset[sizeof info->preset - 1] = '\0';
    info->param_count = (int64_t)sd_model_param_count(model->m, 1);
    info->param_count_registered = (int64_t)sd_model_param_count(model->m, 0);
    info->mia_source = (sdumc_mia_source)model->m->mia_source;
    info->n_threads = model->n_threads;
    info->mapped = model->m->mapping != NULL;
    info->size = size;
    memcpy(caller, info, size);
    sd_api_ok(err);
    return SDUMC_OK;
}

sdumc_status sdumc_context_new(sdumc_context **out, sdumc_error *err) {
    return sdumc_context_new_with_params(NULL, out, err);
}

sdumc_status sdumc_context_new_with_params(const sdumc_context_params *params, sdumc_context **out,
                                           sdumc_error *err) {
    static const char fn[] = "sdumc_context_new";
    if (!out) return sd_api_fail(err, SDUMC_E_ARG, "sdumc_context_new: out is NULL");
    *out = NULL;
    sdumc_context_params p = sdumc_context_default_params();
    sd_error e;
    sd_status st = params ? read_sized(params, &p, sizeof p, "params", fn, &e) : SD_OK;
    if (!st) st = check_threads(p.n_threads, 1, "params", fn, &e);
    if (st) return sd_api_error(err, &e, st);
    sdumc_context *ctx = calloc(1, sizeof *ctx);
    if (ctx) ctx->scratch = calloc(1, sizeof *ctx->scratch);
    if (!ctx || !ctx->scratch || sd_api_scratch_init(&ctx->scratch[0], &e)) {
        if (ctx) free(ctx->scratch);
        free(ctx);
        return sd_api_fail(err, SDUMC_E_NOMEM, "sdumc_context_new: out of memory");
    }
    ctx->scratch_n = 1;
    ctx->n_threads = p.n_threads;
    *out = ctx;
    sd_api_ok(err);
    return SDUMC_OK;
}

void sdumc_context_free(sdumc_context *ctx) {
    if (!ctx) return;
    sd_pool_free(ctx->pool);
    for (int w = 0; w < ctx->scratch_n; w++) sd_api_scratch_release(&ctx->scratch[w]);
    free(ctx->scratch);
    free(ctx);
}
