/* Audio input (src/audio/audio.c) on files written here with libsndfile: 16-bit, 24-bit and float
 * WAV, FLAC, OGG/Vorbis; channels averaged; resampling to 16 kHz (length, no delay, a sine keeps its
 * frequency and level); the reader from memory agrees with the one from a file; clear errors
 * (not audio, no samples, a header claiming more than the length limit, NaN samples, a missing
 * file), each naming the file.
 *
 * Also a tool for tests/scripts/test_audio_features.sh: test_audio --decode IN OUT.npy writes the
 * 16 kHz mono float32 samples sdumc reads from IN. */
#include <math.h>
#include <sndfile.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audio/audio.h"
#include "core/alloc.h"
#include "harness.h"
#include "io/npy.h"

/* Writes frames x channels samples (interleaved, in [-1, 1]) at rate in format; 0 on success. */
static int write_sound(const char *path, int format, int rate, int channels, const float *x, size_t frames) {
    SF_INFO si = {0};
    si.samplerate = rate;
    si.channels = channels;
    si.format = format;
    SNDFILE *f = sf_open(path, SFM_WRITE, &si);
    if (!f) return -1;
    sf_count_t w = sf_writef_float(f, x, (sf_count_t)frames);
    sf_close(f);
    return w == (sf_count_t)frames ? 0 : -1;
}

static const char *tmp_path(const char *name) {
    static char buf[8][512];
    static int k;
    k = (k + 1) % 8;
    snprintf(buf[k], sizeof buf[k], "%s/%s", sd_test_tmpdir(), name);
    return buf[k];
}

/* Amplitude and phase of frequency f in x[n] at rate r (a least-squares fit over the middle). */
static void tone(const float *x, size_t n, double f, double r, double *amp) {
    double s = 0, c = 0;
    size_t lo = n / 4, hi = 3 * n / 4;
    for (size_t i = lo; i < hi; i++) {
        s += x[i] * sin(2 * M_PI * f * (double)i / r);
        c += x[i] * cos(2 * M_PI * f * (double)i / r);
    }
    *amp = 2 * sqrt(s * s + c * c) / (double)(hi - lo);
}

static void test_formats(void) {
    const int rate = 22050;
    const size_t frames = 22050; /* 1 s */
    float *st = malloc(2 * frames * sizeof *st);
    for (size_t i = 0; i < frames; i++) {
        st[2 * i] = 0.5f * (float)sin(2 * M_PI * 440.0 * (double)i / rate);
        st[2 * i + 1] = 0.25f * (float)sin(2 * M_PI * 440.0 * (double)i / rate);
    }
    struct { const char *name; int format; double tol; } cases[] = {
        {"pcm16.wav", SF_FORMAT_WAV | SF_FORMAT_PCM_16, 2e-4},
        {"pcm24.wav", SF_FORMAT_WAV | SF_FORMAT_PCM_24, 2e-4},
        {"float.wav", SF_FORMAT_WAV | SF_FORMAT_FLOAT, 2e-4},
        {"lossless.flac", SF_FORMAT_FLAC | SF_FORMAT_PCM_16, 2e-4},
        {"vorbis.ogg", SF_FORMAT_OGG | SF_FORMAT_VORBIS, 3e-2},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        const char *p = tmp_path(cases[k].name);
        EXPECT(!write_sound(p, cases[k].format, rate, 2, st, frames), "cannot write %s", p);
        float *x = NULL;
        size_t n = 0;
        sd_audio_info info;
        sd_error err = {0};
        EXPECT(sd_audio_read(p, 16000, &x, &n, &info, &err) == SD_OK, "%s", err.msg);
        if (!x) continue;
        EXPECT(info.rate == rate && info.channels == 2 && info.frames == (int64_t)frames, "%s: info %d Hz %d ch %lld",
               p, info.rate, info.channels, (long long)info.frames);
        EXPECT(n >= 15999 && n <= 16001, "%s: %zu samples at 16 kHz for 1 s", p, n);
        double amp;
        tone(x, n, 440.0, 16000.0, &amp);
        EXPECT(fabs(amp - 0.375) < cases[k].tol + 1e-3, "%s: 440 Hz amplitude %.5f, expected 0.375 (mean of "
               "0.5 and 0.25)", p, amp);
        /* From memory: the same samples. */
        size_t size = 0;
        unsigned char *raw = sd_test_read_file(p, &size);
        float *y = NULL;
        size_t ny = 0;
        EXPECT(raw && sd_audio_read_memory(raw, size, p, 16000, &y, &ny, NULL, &err) == SD_OK, "%s", err.msg);
        EXPECT(y && ny == n && !memcmp(x, y, n * sizeof *x), "%s: memory and file readers differ", p);
        free(raw);
        sd_free(x);
        sd_free(y);
    }
    free(st);
}

/* At the target rate: no resampling, the decoded samples exactly; elsewhere the resampler keeps
 * the signal aligned (no delay) and of the expected length. */
static void test_rates(void) {
    const int rates[] = {8000, 11025, 16000, 22050, 44100, 48000};
    for (size_t k = 0; k < sizeof rates / sizeof rates[0]; k++) {
        const int r = rates[k];
        const size_t frames = (size_t)r * 3 / 2; /* 1.5 s */
        float *x = malloc(frames * sizeof *x);
        /* a 300 Hz tone that starts at 0.5 s: its onset shows any delay */
        for (size_t i = 0; i < frames; i++)
            x[i] = i < (size_t)r / 2 ? 0.0f : 0.6f * (float)sin(2 * M_PI * 300.0 * (double)(i - (size_t)r / 2) / r);
        const char *p = tmp_path("rate.wav");
        EXPECT(!write_sound(p, SF_FORMAT_WAV | SF_FORMAT_FLOAT, r, 1, x, frames), "write");
        float *y = NULL;
        size_t n = 0;
        sd_error err = {0};
        EXPECT(sd_audio_read(p, 16000, &y, &n, NULL, &err) == SD_OK, "%s", err.msg);
        if (!y) {
            free(x);
            continue;
        }
        const double want_n = (double)frames * 16000.0 / r;
        EXPECT(fabs((double)n - want_n) <= 1.0, "%d Hz: %zu samples, expected %.1f", r, n, want_n);
        if (r == 16000) EXPECT(n == frames && !memcmp(x, y, n * sizeof *y), "16 kHz input is not passed through");
        double amp;
        tone(y + 8000, n - 8000, 300.0, 16000.0, &amp);
        EXPECT(fabs(amp - 0.6) < 2e-3, "%d Hz: tone amplitude %.4f after resampling", r, amp);
        /* Compare with the ideal continuous signal at 16 kHz away from the onset (at (r/2)/r s). */
        const double onset = (double)((size_t)r / 2) / r;
        double worst = 0;
        for (size_t i = 8000 + 400; i + 400 < n; i++) {
            const double ideal = 0.6 * sin(2 * M_PI * 300.0 * ((double)i / 16000.0 - onset));
            if (fabs(y[i] - ideal) > worst) worst = fabs(y[i] - ideal);
        }
        EXPECT(worst < 2e-3, "%d Hz: resampled signal off by %.2e (delay?)", r, worst);
        double before = 0;
        for (size_t i = 0; i < 7600; i++) before = fmax(before, fabs(y[i]));
        EXPECT(before < 1e-3, "%d Hz: %.2e before the onset (pre-echo or delay)", r, before);
        sd_free(y);
        free(x);
    }
}

static void expect_read_error(const char *path, const char *want) {
    float *x = NULL;
    size_t n = 0;
    sd_error err = {0};
    sd_status s = sd_audio_read(path, 16000, &x, &n, NULL, &err);
    EXPECT(s != SD_OK && !x && n == 0, "%s: read, expected an error", path);
    EXPECT(s == SD_OK || (strstr(err.msg, path) && strstr(err.msg, want)), "%s: message '%s' lacks '%s'", path,
           err.msg, want);
    sd_free(x);
}

static void test_errors(void) {
    const char *p = tmp_path("text.wav");
    EXPECT(!sd_test_write_file(p, "not audio at all\n", 17), "write");
    expect_read_error(p, "cannot read as audio");
    p = tmp_path("empty.wav");
    EXPECT(!write_sound(p, SF_FORMAT_WAV | SF_FORMAT_PCM_16, 16000, 1, NULL, 0), "write");
    expect_read_error(p, "no audio samples");
    expect_read_error(tmp_path("missing.wav"), "cannot read as audio");
    /* NaN in a float file. */
    float x[100] = {0};
    x[37] = NAN;
    p = tmp_path("nan.wav");
    EXPECT(!write_sound(p, SF_FORMAT_WAV | SF_FORMAT_FLOAT, 16000, 1, x, 100), "write");
    expect_read_error(p, "sample 37 is not a finite number");
    /* Over the length limit: 7201 s at 1000 Hz, 8-bit (7 MB): refused before decoding. */
    const size_t long_frames = 7201000;
    float *quiet = calloc(long_frames, sizeof *quiet);
    p = tmp_path("long.wav");
    EXPECT(quiet && !write_sound(p, SF_FORMAT_WAV | SF_FORMAT_PCM_U8, 1000, 1, quiet, long_frames), "write");
    free(quiet);
    expect_read_error(p, "longer than the 7200 s limit");
    float *y = NULL;
    size_t n = 0;
    sd_error err = {0};
    EXPECT(sd_audio_read(p, 100, &y, &n, NULL, &err) == SD_E_ARG, "target rate 100 Hz accepted");
    EXPECT(sd_audio_is_audio_name("a.WAV") && sd_audio_is_audio_name("x.flac") && sd_audio_is_audio_name("y.Ogg") &&
               !sd_audio_is_audio_name("z.npy") && !sd_audio_is_audio_name("wav") && !sd_audio_is_audio_name(".wav"),
           "audio names");
}

int main(int argc, char **argv) {
    if (argc == 4 && !strcmp(argv[1], "--decode")) {
        float *x = NULL;
        size_t n = 0;
        sd_error err = {0};
        if (sd_audio_read(argv[2], 16000, &x, &n, NULL, &err) ||
            sd_npy_write(argv[3], x, 1, 1, (int64_t)n, SD_DTYPE_F32, &err)) {
            fprintf(stderr, "%s\n", err.msg);
            return 1;
        }
        sd_free(x);
        return 0;
    }
    sd_test_run("audio.formats_channels_memory", test_formats);
    sd_test_run("audio.rates", test_rates);
    sd_test_run("audio.errors", test_errors);
    return sd_test_finish();
}
