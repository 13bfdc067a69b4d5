/* Model files: safetensors with the reference module's tensor names (MODEL.md appendix) and
 * the configuration in __metadata__.
 *
 * A file written by sdumc carries every tensor and metadata keys "format" = "sdumc",
 * "sdumc_version", "dim_audio", "dim_text", "dim_video", "hidden", "mia", "mask", "p_mlp",
 * "p_att", "preset", "seed". A file without them (a PyTorch state_dict of the reference
 * module converted by tools/pt2safetensors.py, possibly with DataParallel's "module."
 * prefix) is loaded by inference: dims from frame_dim_reshape_{0,1,2}.weight [H, D_m], mask on
 * and the default dropout rates, and MIA off: the reference module registers the MIA tensors
 * whether or not its code calls them (the released code does not), so their presence says
 * nothing. The loader's options override MIA either way. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "io/safetensors.h"
#include "model/model.h"

static const char *strip_prefix(const char *name) {
    return strncmp(name, "module.", 7) == 0 ? name + 7 : name;
}

/* The file's tensor with this reference name, with or without the "module." prefix. */
static const sd_st_tensor *find_tensor(const sd_safetensors *st, const char *name) {
    for (int i = 0; i < sd_st_count(st); i++) {
        const sd_st_tensor *t = sd_st_tensor_at(st, i);
        if (strcmp(strip_prefix(t->name), name) == 0) return t;
    }
    return NULL;
}

sd_status sd_model_write_config(sd_st_writer *w, const sd_model_config *c, sd_error *err) {
    sd_status st = SD_OK;
    char buf[64];
    struct {
        const char *key;
        const char *value;
    } meta[] = {{"format", "sdumc"}, {"sdumc_version", SDUMC_VERSION}, {"preset", c->preset}};
    for (size_t i = 0; i < sizeof meta / sizeof meta[0] && !st; i++)
        st = sd_st_writer_set_metadata(w, meta[i].key, meta[i].value, err);
    const char *int_keys[] = {"dim_audio", "dim_text", "dim_video", "hidden", "mia", "mask"};
    const int int_values[] = {c->dim[0], c->dim[1], c->dim[2], c->hidden, c->mia, c->mask};
    for (size_t i = 0; i < 6 && !st; i++) {
        snprintf(buf, sizeof buf, "%d", int_values[i]);
        st = sd_st_writer_set_metadata(w, int_keys[i], buf, err);
    }
    if (!st) {
        snprintf(buf, sizeof buf, "%.9g", (double)c->p_mlp);
        st = sd_st_writer_set_metadata(w, "p_mlp", buf, err);
    }
    if (!st) {
        snprintf(buf, sizeof buf, "%.9g", (double)c->p_att);
        st = sd_st_writer_set_metadata(w, "p_att", buf, err);
    }
    if (!st) {
        snprintf(buf, sizeof buf, "%" PRIu64, c->seed);
        st = sd_st_writer_set_metadata(w, "seed", buf, err);
    }
    return st;
}

sd_status sd_model_save(const sd_model *m, const char *path, sd_error *err) {
    sd_st_writer *w = sd_st_writer_new();
    if (!w) return sd_fail(err, SD_E_NOMEM, "%s: out of memory", path);
    sd_status st = SD_OK;
    for (int i = 0; i < m->table.count && !st; i++) {
        const sd_tensor_spec *s = &m->table.specs[i];
        st = sd_st_writer_add(w, s->name, SD_DTYPE_F32, s->ndim, s->shape, m->params + s->offset, err);
    }
    if (!st) st = sd_model_write_config(w, &m->cfg, err);
    if (!st) st = sd_st_writer_write(w, path, err);
    sd_st_writer_free(w);
    return st;
}

/* Parses a metadata integer in [lo, hi]. */
static sd_status meta_int(const sd_safetensors *st, const char *path, const char *key, long lo,
                          long hi, int *out, sd_error *err) {
    const char *v = sd_st_metadata_get(st, key);
    if (!v) return sd_fail(err, SD_E_FORMAT, "%s: sdumc metadata lacks \"%s\"", path, key);
    char *end;
    long x = strtol(v, &end, 10);
    if (end == v || *end || x < lo || x > hi)
        return sd_fail(err, SD_E_FORMAT, "%s: metadata \"%s\" = \"%s\" is not an integer in [%ld, %ld]",
                       path, key, v, lo, hi);
    *out = (int)x;
    return SD_OK;
}

static sd_status meta_float(const sd_safetensors *st, const char *path, const char *key, float *out,
                            sd_error *err) {
    const char *v = sd_st_metadata_get(st, key);
    if (!v) return SD_OK; /* keep the default */
    char *end;
    double x = strtod(v, &end);
    if (end == v || *end || !(x >= 0.0 && x < 1.0))
        return sd_fail(err, SD_E_FORMAT, "%s: metadata \"%s\" = \"%s\" is not a rate in [0, 1)", path, key, v);
    *out = (float)x;
    return SD_OK;
}

sd_status sd_model_read_config(const sd_safetensors *st, const char *path, sd_model_config *c,
                               sd_error *err) {
    int d[3], hidden, mia, mask;
    const char *keys[3] = {"dim_audio", "dim_text", "dim_video"};
    for (int i = 0; i < 3; i++) {
        sd_status s = meta_int(st, path, keys[i], 1, 1 << 24, &d[i], err);
        if (s) return s;
    }
    sd_status s;
    if ((s = meta_int(st, path, "hidden", 4, 65536, &hidden, err))) return s;
    if ((s = meta_int(st, path, "mia", 0, 1, &mia, err))) return s;
    if ((s = meta_int(st, path, "mask", 0, 1, &mask, err))) return s;
    *c = sd_model_default_config(d[0], d[1], d[2]);
    c->hidden = hidden;
    c->mia = mia;
    c->mask = mask;
    if ((s = meta_float(st, path, "p_mlp", &c->p_mlp, err))) return s;
    if ((s = meta_float(st, path, "p_att", &c->p_att, err))) return s;
    const char *preset = sd_st_metadata_get(st, "preset");
    snprintf(c->preset, sizeof c->preset, "%s", preset ? preset : "");
    const char *seed = sd_st_metadata_get(st, "seed");
    c->seed = seed ? strtoull(seed, NULL, 10) : 0;
    return SD_OK;
}

uint64_t sd_model_min_params(const sd_model_config *c) {
    uint64_t H = c->hidden > 0 ? (uint64_t)c->hidden : 0, n = 3 * H * H;
    for (int m = 0; m < 3; m++) n += H * (uint64_t)(c->dim[m] > 0 ? c->dim[m] : 0);
    return n;
}

/* Values the file's tensors hold (at least 2 bytes each: F16/BF16 are the smallest dtypes). */
static uint64_t file_values(const sd_safetensors *st) {
    uint64_t n = 0;
    for (int i = 0; i < sd_st_count(st); i++) n += sd_st_tensor_at(st, i)->numel;
    return n;
}

static sd_status config_from_shapes(const sd_safetensors *st, const char *path, sd_model_config *c,
                                    sd_error *err) {
    int d[3], hidden = 0;
    for (int i = 0; i < 3; i++) {
        char name[64];
        snprintf(name, sizeof name, "frame_dim_reshape_%d.weight", i);
        const sd_st_tensor *t = find_tensor(st, name);
        if (!t)
            return sd_fail(err, SD_E_SHAPE,
                           "%s: no sdumc metadata and no tensor %s to infer the input dims from "
                           "(is this an SDUMC model?)", path, name);
        if (t->ndim != 2 || t->shape[0] < 4 || t->shape[0] % 4 || t->shape[1] < 1 ||
            t->shape[1] > (1 << 24) || t->shape[0] > 65536 || (hidden && t->shape[0] != hidden))
            return sd_fail(err, SD_E_SHAPE, "%s: tensor %s has an unusable shape for a frame projection",
                           path, name);
        hidden = (int)t->shape[0];
        d[i] = (int)t->shape[1];
    }
    *c = sd_model_default_config(d[0], d[1], d[2]);
    c->hidden = hidden;
    c->mia = 0; /* as the released code runs; see the file comment */
    snprintf(c->preset, sizeof c->preset, "imported");
    return SD_OK;
}

/* MIA on needs its tensors: names every one the file lacks (all of them, for a file trained or
 * converted without MIA). */
static sd_status check_mia_tensors(const sd_model *m, const sd_safetensors *st, const char *path,
                                   int source, sd_error *err) {
    char list[SD_ERROR_MSG_MAX];
    size_t len = 0;
    int missing = 0;
    list[0] = '\0';
    for (int i = 0; i < m->table.count; i++) {
        const char *name = m->table.specs[i].name;
        if (m->use[i] != SD_USE_MIA || find_tensor(st, name)) continue;
        if (len < sizeof list) len += (size_t)snprintf(list + len, sizeof list - len, "%s%s", missing ? ", " : "", name);
        missing++;
    }
    if (!missing) return SD_OK;
    return sd_fail(err, SD_E_SHAPE, "%s: MIA is on (%s), but the file lacks %d MIA tensor%s: %s", path,
                   source == SD_MIA_FROM_OVERRIDE ? "as asked" : "in its metadata", missing, missing > 1 ? "s" : "",
                   list);
}

sd_model_load_opts sd_model_default_load_opts(void) {
    sd_model_load_opts o = {-1, 0};
    return o;
}

/* 1 when the file's data section is the parameter buffer as it stands: every tensor of the table,
 * F32, in the table's order, back to back (every file sdumc writes), at a float-aligned address. */
static int params_in_place(const sd_model *m, const sd_safetensors *st) {
    if (sd_st_count(st) != m->table.count || m->table.count == 0) return 0;
    for (int i = 0; i < m->table.count; i++) {
        const sd_tensor_spec *spec = &m->table.specs[i];
        const sd_st_tensor *t = sd_st_tensor_at(st, i);
        if (strcmp(strip_prefix(t->name), spec->name) || t->dtype != SD_DTYPE_F32 ||
            t->begin != spec->offset * sizeof(float) || t->numel != spec->numel)
            return 0;
    }
    const sd_st_tensor *t0 = sd_st_tensor_at(st, 0);
    return (uintptr_t)sd_st_data(st, t0) % sizeof(float) == 0;
}

/* Makes the mapped file's data section the model's parameters (params_in_place holds). */
static void use_mapping(sd_model *m, sd_safetensors *st) {
    const sd_st_tensor *t0 = sd_st_tensor_at(st, 0);
    sd_free(m->params);
    m->params = (float *)(uintptr_t)sd_st_data(st, t0);
    sd_model_bind(m, m->params, &m->p);
    m->mapping = sd_st_take_map(st, &m->mapping_size);
}

static sd_status load_from(sd_safetensors *st, const char *path, const sd_model_load_opts *opts, int mapped,
                           sd_model **out, sd_error *err);

sd_status sd_model_load(const char *path, sd_model **out, sd_error *err) {
    const sd_model_load_opts o = sd_model_default_load_opts();
    return sd_model_load_with(path, &o, out, err);
}

sd_status sd_model_load_with(const char *path, const sd_model_load_opts *opts, sd_model **out, sd_error *err) {
    *out = NULL;
    sd_safetensors *st = NULL;
    /* Mapping is a preference: a file that cannot be mapped is read (with read's messages). */
    const int mapped = opts && opts->use_mmap && sd_st_map(path, &st, NULL) == SD_OK;
    if (!mapped) {
        sd_status s = sd_st_open(path, &st, err);
        if (s) return s;
    }
    sd_status s = load_from(st, path, opts, mapped, out, err);
    sd_st_close(st);
    return s;
}

sd_status sd_model_load_memory(const void *buf, size_t size, const sd_model_load_opts *opts, sd_model **out,
                               sd_error *err) {
    *out = NULL;
    char name[64];
    snprintf(name, sizeof name, "model in memory (%zu bytes)", size);
    sd_safetensors *st = NULL;
    sd_status s = sd_st_view(buf, size, &st, err);
    if (s) {
        sd_error_prefix(err, "%s", name);
        return s;
    }
    s = load_from(st, name, opts, 0, out, err);
    sd_st_close(st);
    return s;
}

/* The body of every load: configuration, MIA choice, tensors (st stays the caller's to close). */
static sd_status load_from(sd_safetensors *st, const char *path, const sd_model_load_opts *opts, int mapped,
                           sd_model **out, sd_error *err) {
    sd_status s = SD_OK;
    sd_model_config cfg;
    const char *fmt = sd_st_metadata_get(st, "format");
    const int has_meta = fmt && !strcmp(fmt, "sdumc");
    if (has_meta)
        s = sd_model_read_config(st, path, &cfg, err);
    else
        s = config_from_shapes(st, path, &cfg, err);
    int mia_source = has_meta ? SD_MIA_FROM_METADATA : SD_MIA_FROM_DEFAULT;
    if (opts && opts->mia >= 0) {
        cfg.mia = opts->mia != 0;
        mia_source = SD_MIA_FROM_OVERRIDE;
    }
    sd_model *m = NULL;
    if (!s && sd_model_min_params(&cfg) > file_values(st))
        s = sd_fail(err, SD_E_SHAPE, "%s: the configuration (hidden %d, dims %d/%d/%d) needs at least %llu "
                    "parameters, the file holds %llu values", path, cfg.hidden, cfg.dim[0], cfg.dim[1],
                    cfg.dim[2], (unsigned long long)sd_model_min_params(&cfg),
                    (unsigned long long)file_values(st));
    if (!s) s = sd_model_alloc(&cfg, &m, err);
    if (!s) {
        m->mia_source = mia_source;
        if (cfg.mia) s = check_mia_tensors(m, st, path, mia_source, err);
    }
    const int in_place = !s && mapped && params_in_place(m, st);
    if (in_place)
        use_mapping(m, st); /* every tensor is there: nothing to initialise */
    else if (!s)
        sd_model_init_params(m, cfg.seed); /* optional tensors absent from the file keep these */
    /* Every tensor of the file must be one of ours. */
    for (int i = 0; !s && i < sd_st_count(st); i++) {
        const char *name = strip_prefix(sd_st_tensor_at(st, i)->name);
        if (sd_params_find(&m->table, name) < 0)
            s = sd_fail(err, SD_E_SHAPE, "%s: unexpected tensor %s (not part of the SDUMC module)", path, name);
    }
    for (int i = 0; !s && i < m->table.count; i++) {
        const sd_tensor_spec *spec = &m->table.specs[i];
        const sd_st_tensor *t = find_tensor(st, spec->name);
        if (!t) {
            /* Tensors the network never uses with this configuration may be absent. */
            if (!sd_model_tensor_used(m, i)) continue;
            s = sd_fail(err, SD_E_SHAPE, "%s: missing tensor %s (expected shape %s)", path,
                        spec->name, sd_shape_str((char[64]){0}, 64, spec->ndim, spec->shape));
            break;
        }
        int same = t->ndim == spec->ndim;
        for (int k = 0; same && k < spec->ndim; k++) same = t->shape[k] == spec->shape[k];
        if (!same) {
            char a[64], b[64];
            s = sd_fail(err, SD_E_SHAPE, "%s: tensor %s has shape %s, expected %s", path, spec->name,
                        sd_shape_str(a, sizeof a, t->ndim, t->shape),
                        sd_shape_str(b, sizeof b, spec->ndim, spec->shape));
            break;
        }
        if (!in_place) s = sd_st_read_f32(st, t, m->params + spec->offset, err);
        const float *w = m->params + spec->offset;
        for (size_t k = 0; !s && k < spec->numel; k++)
            if (!isfinite(w[k]))
                s = sd_fail(err, SD_E_NUMERIC, "%s: tensor %s holds %s at index %zu: a model with non-finite weights "
                            "cannot predict (the file is damaged, or its training diverged)", path, spec->name,
                            isnan(w[k]) ? "NaN" : "Inf", k);
    }
    if (s) {
        sd_model_free(m);
        return s;
    }
    *out = m;
    return SD_OK;
}
