/* Audio files to mono float samples at the model's rate: libsndfile decodes in blocks, each block
 * is averaged over its channels and streamed through libsoxr, so the only whole-recording buffer
 * is the output. */
#include "audio/audio.h"

#include <ctype.h>
#include <math.h>
#include <sndfile.h>
#include <soxr.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/array.h"
#include "io/file.h"

/* Frames decoded per block. */
#define BLOCK_FRAMES 16384

/* ---- reading from memory (libsndfile virtual I/O) ------------------------------------------ */

typedef struct {
    const uint8_t *data;
    sf_count_t size, pos;
} mem_file;

static sf_count_t mem_len(void *u) { return ((mem_file *)u)->size; }

/* Seeks as lseek does on a file: a position past the end is allowed (reads there return nothing),
 * one before the start is not. libsndfile seeks past the end over a chunk whose stated length
 * exceeds the file; refusing that here would make it parse the bytes after the chunk header
 * instead, and a buffer would then decode differently from the same bytes in a file. */
static sf_count_t mem_seek(sf_count_t off, int whence, void *u) {
    mem_file *m = u;
    sf_count_t base = whence == SEEK_SET ? 0 : whence == SEEK_CUR ? m->pos : m->size;
    if (off < -base || (off > 0 && off > INT64_MAX - base)) return -1; /* before 0, or overflow */
    m->pos = base + off;
    return m->pos;
}

static sf_count_t mem_read(void *ptr, sf_count_t count, void *u) {
    mem_file *m = u;
    if (count < 0 || m->pos >= m->size) return 0;
    sf_count_t left = m->size - m->pos, k = count < left ? count : left;
    if (k > 0) memcpy(ptr, m->data + m->pos, (size_t)k);
    m->pos += k;
    return k;
}

static sf_count_t mem_write(const void *ptr, sf_count_t count, void *u) {
    (void)ptr, (void)count, (void)u;
    return 0;
}

static sf_count_t mem_tell(void *u) { return ((mem_file *)u)->pos; }

/* ---- decoding ------------------------------------------------------------------------------ */

/* Grows *buf to hold at least need floats (doubling); 0 on success. */
static int reserve(float **buf, size_t *cap, size_t need) {
    if (need <= *cap) return 0;
    const size_t c = sd_array_next_cap(*cap, need, 65536);
    float *p = c && c <= SIZE_MAX / sizeof *p ? sd_alloc(c * sizeof *p) : NULL;
    if (!p) return -1;
    if (*buf) memcpy(p, *buf, *cap * sizeof *p);
    sd_free(*buf);
    *buf = p;
    *cap = c;
    return 0;
}

static void describe_format(SNDFILE *f, int format, char *out, size_t cap) {
    SF_FORMAT_INFO major = {.format = format & SF_FORMAT_TYPEMASK};
    SF_FORMAT_INFO minor = {.format = format & SF_FORMAT_SUBMASK};
    int ok1 = sf_command(f, SFC_GET_FORMAT_INFO, &major, sizeof major) == 0;
    int ok2 = sf_command(f, SFC_GET_FORMAT_INFO, &minor, sizeof minor) == 0;
    snprintf(out, cap, "%s / %s", ok1 && major.name ? major.name : "?", ok2 && minor.name ? minor.name : "?");
}

/* Streams in[n_in] through the resampler, appending to *out (len used, cap allocated); in == NULL
 * flushes: the rest of the output is drained. */
static sd_status resample_block(soxr_t sx, const float *in, size_t n_in, double ratio, float **out,
                                size_t *cap, size_t *len, const char *name, sd_error *err) {
    size_t fed = 0;
    for (;;) {
        size_t want = (size_t)((double)(n_in - fed) * ratio) + 4096, idone = 0, odone = 0;
        if (reserve(out, cap, *len + want)) return sd_fail(err, SD_E_NOMEM, "%s: out of memory", name);
        soxr_error_t e = soxr_process(sx, in ? in + fed : NULL, n_in - fed, &idone, *out + *len, want, &odone);
        if (e) return sd_fail(err, SD_E_FORMAT, "%s: resampling failed: %s", name, soxr_strerror(e));
        fed += idone;
        *len += odone;
        if (in ? fed >= n_in : odone == 0) return SD_OK;
    }
}

/* Decodes the open file f (name for messages) into *samples at rate. */
static sd_status decode(SNDFILE *f, const SF_INFO *si, const char *name, int rate, float **samples,
                        size_t *n, sd_audio_info *info, sd_error *err) {
    const int C = si->channels;
    if (si->samplerate < SD_AUDIO_MIN_RATE || si->samplerate > SD_AUDIO_MAX_RATE)
        return sd_fail(err, SD_E_UNSUPPORTED, "%s: sample rate %d Hz is outside the supported %d..%d Hz",
                       name, si->samplerate, SD_AUDIO_MIN_RATE, SD_AUDIO_MAX_RATE);
    if (C < 1 || C > SD_AUDIO_MAX_CHANNELS)
        return sd_fail(err, SD_E_UNSUPPORTED, "%s: %d channels (at most %d are read)", name, C,
                       SD_AUDIO_MAX_CHANNELS);
    const int64_t max_frames = (int64_t)SD_AUDIO_MAX_SECONDS * si->samplerate;
    if (si->frames > max_frames)
        return sd_fail(err, SD_E_UNSUPPORTED, "%s: %.0f s of audio, longer than the %d s limit: "
                       "split the recording", name, (double)si->frames / si->samplerate,
                       SD_AUDIO_MAX_SECONDS);
    const int resample = si->samplerate != rate;
    const double ratio = (double)rate / si->samplerate;
    soxr_t sx = NULL;
    if (resample) {
        soxr_error_t e = NULL;
        soxr_quality_spec_t q = soxr_quality_spec(SOXR_HQ, 0);
        soxr_runtime_spec_t rt = soxr_runtime_spec(1);
        sx = soxr_create(si->samplerate, rate, 1, &e, NULL, &q, &rt);
        if (!sx || e)
            return sd_fail(err, SD_E_UNSUPPORTED, "%s: cannot resample %d Hz to %d Hz: %s", name,
                           si->samplerate, rate, soxr_strerror(e));
    }
    float *block = sd_alloc((size_t)BLOCK_FRAMES * (size_t)C * sizeof *block); /* [frames, C] */
    float *mono = sd_alloc((size_t)BLOCK_FRAMES * sizeof *mono);                /* [frames] */
    float *out = NULL;
    size_t cap = 0, len = 0;
    int64_t frames = 0;
    sd_status s = SD_OK;
    if (!block || !mono) s = sd_fail(err, SD_E_NOMEM, "%s: out of memory", name);
    for (int eof = 0; !s && !eof;) {
        sf_count_t got = sf_readf_float(f, block, BLOCK_FRAMES);
        if (got < 0) got = 0;
        if (got < BLOCK_FRAMES) {
            eof = 1;
            if (sf_error(f) != SF_ERR_NO_ERROR) {
                s = sd_fail(err, SD_E_FORMAT, "%s: read error after %lld samples: %s", name,
                            (long long)(frames + got), sf_strerror(f));
                break;
            }
        }
        frames += got;
        if (frames > max_frames) {
            s = sd_fail(err, SD_E_UNSUPPORTED, "%s: more than %d s of audio: split the recording",
                        name, SD_AUDIO_MAX_SECONDS);
            break;
        }
        for (sf_count_t i = 0; i < got; i++) {
            double acc = 0;
            for (int c = 0; c < C; c++) acc += block[(size_t)i * (size_t)C + (size_t)c];
            mono[i] = (float)(acc / C);
            if (!isfinite(mono[i])) {
                s = sd_fail(err, SD_E_NUMERIC, "%s: sample %lld is not a finite number", name,
                            (long long)(frames - got + i));
                break;
            }
        }
        if (s || got == 0) continue;
        if (!resample) {
            if (reserve(&out, &cap, len + (size_t)got)) {
                s = sd_fail(err, SD_E_NOMEM, "%s: out of memory", name);
                break;
            }
            memcpy(out + len, mono, (size_t)got * sizeof *mono);
            len += (size_t)got;
            continue;
        }
        s = resample_block(sx, mono, (size_t)got, ratio, &out, &cap, &len, name, err);
    }
    if (!s && resample) s = resample_block(sx, NULL, 0, ratio, &out, &cap, &len, name, err);
    for (size_t i = 0; !s && resample && i < len; i++) /* finite samples near FLT_MAX can overflow */
        if (!isfinite(out[i]))
            s = sd_fail(err, SD_E_NUMERIC, "%s: samples too large to resample (sample %zu at %d Hz is not "
                        "finite)", name, i, rate);
    sd_free(block);
    sd_free(mono);
    soxr_delete(sx);
    if (!s && frames == 0) s = sd_fail(err, SD_E_FORMAT, "%s: no audio samples", name);
    if (!s && len == 0)
        s = sd_fail(err, SD_E_FORMAT, "%s: %lld samples at %d Hz give no sample at %d Hz", name,
                    (long long)frames, si->samplerate, rate);
    if (s) {
        sd_free(out);
        return s;
    }
    *samples = out;
    *n = len;
    if (info) {
        info->rate = si->samplerate;
        info->channels = C;
        info->frames = frames;
        describe_format(f, si->format, info->format, sizeof info->format);
    }
    return SD_OK;
}

static sd_status check_rate(int rate, const char *name, sd_error *err) {
    if (rate < SD_AUDIO_MIN_RATE || rate > SD_AUDIO_MAX_RATE)
        return sd_fail(err, SD_E_ARG, "%s: target rate %d Hz is outside %d..%d Hz", name, rate,
                       SD_AUDIO_MIN_RATE, SD_AUDIO_MAX_RATE);
    return SD_OK;
}

sd_status sd_audio_read(const char *path, int rate, float **samples, size_t *n, sd_audio_info *info,
                        sd_error *err) {
    *samples = NULL;
    *n = 0;
    sd_status s = check_rate(rate, path, err);
    if (s) return s;
    SF_INFO si;
    memset(&si, 0, sizeof si);
    int fd; /* opened without blocking on a FIFO, regular files only (io/file.h) */
    if ((s = sd_file_open(path, &fd, NULL, err))) {
        char why[sizeof err->msg];
        const size_t pl = strlen(path); /* the message is "<path>: why" */
        snprintf(why, sizeof why, "%s", !strncmp(err->msg, path, pl) && err->msg[pl] == ':' ? err->msg + pl + 2 : err->msg);
        return sd_fail(err, s, "%s: cannot read as audio: %s", path, why);
    }
    SNDFILE *f = sf_open_fd(fd, SFM_READ, &si, 1); /* closes fd, also on failure */
    if (!f) return sd_fail(err, SD_E_FORMAT, "%s: cannot read as audio: %s", path, sf_strerror(NULL));
    s = decode(f, &si, path, rate, samples, n, info, err);
    sf_close(f);
    return s;
}

sd_status sd_audio_read_memory(const uint8_t *data, size_t size, const char *name, int rate,
                               float **samples, size_t *n, sd_audio_info *info, sd_error *err) {
    *samples = NULL;
    *n = 0;
    sd_status s = check_rate(rate, name, err);
    if (s) return s;
    SF_VIRTUAL_IO vio = {mem_len, mem_seek, mem_read, mem_write, mem_tell};
    mem_file m = {data, (sf_count_t)size, 0};
    SF_INFO si;
    memset(&si, 0, sizeof si);
    SNDFILE *f = sf_open_virtual(&vio, SFM_READ, &si, &m);
    if (!f) return sd_fail(err, SD_E_FORMAT, "%s: cannot read as audio: %s", name, sf_strerror(NULL));
    s = decode(f, &si, name, rate, samples, n, info, err);
    sf_close(f);
    return s;
}

int64_t sd_audio_length(const char *path, int rate) {
    SF_INFO si;
    memset(&si, 0, sizeof si);
    SNDFILE *f = sf_open(path, SFM_READ, &si);
    if (!f) return 0;
    sf_close(f);
    if (si.samplerate <= 0 || si.frames <= 0) return 0;
    /* frames * rate / samplerate, rounded down; within int64 for any length libsndfile reports. */
    return (int64_t)((double)si.frames * (double)rate / (double)si.samplerate);
}

int sd_audio_is_audio_name(const char *name) {
    static const char *const ext[] = {"wav", "flac", "ogg", "oga", "opus", "mp3", "aif", "aiff",
                                      "aifc", "au", "snd", "caf", "w64", "rf64"};
    const char *dot = strrchr(name, '.');
    if (!dot || dot == name) return 0;
    for (size_t i = 0; i < sizeof ext / sizeof ext[0]; i++) {
        const char *a = dot + 1, *b = ext[i];
        while (*a && *b && tolower((unsigned char)*a) == *b) a++, b++;
        if (!*a && !*b) return 1;
    }
    return 0;
}
