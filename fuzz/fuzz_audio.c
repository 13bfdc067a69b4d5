/* Audio files (libsndfile + libsoxr through sd_audio_read): from memory and from a file, both must
 * agree on acceptance and on every sample; a rejection carries a message; accepted audio has
 * samples, all finite, and a length that matches the file's rate and frame count. */
#include "audio/audio.h"
#include "core/alloc.h"
#include "fuzz_util.h"

static int fuzz_audio(const uint8_t *data, size_t size) {
    float *x = NULL, *y = NULL;
    size_t n = 0, ny = 0;
    sd_audio_info info;
    sd_error err;
    sd_error_clear(&err);
    sd_status s = sd_audio_read_memory(data, size, "in.wav", 16000, &x, &n, &info, &err);
    if (s) FUZZ_CHECK(x == NULL && n == 0 && err.msg[0] != '\0');
    sd_status sf = sd_audio_read(fuzz_write("in.wav", data, size), 16000, &y, &ny, NULL, &err);
    FUZZ_CHECK((s == SD_OK) == (sf == SD_OK));
    if (s) return s;
    FUZZ_CHECK(n > 0 && n == ny && !memcmp(x, y, n * sizeof *x));
    for (size_t i = 0; i < n; i++) FUZZ_CHECK(isfinite(x[i]));
    FUZZ_CHECK(info.rate >= SD_AUDIO_MIN_RATE && info.rate <= SD_AUDIO_MAX_RATE && info.channels >= 1 &&
               info.frames > 0 && info.frames <= (int64_t)SD_AUDIO_MAX_SECONDS * info.rate);
    const double want = (double)info.frames * 16000.0 / info.rate;
    FUZZ_CHECK(info.rate == 16000 ? n == (size_t)info.frames : fabs((double)n - want) <= 2.0);
    sd_free(x);
    sd_free(y);
    return SD_OK;
}

#ifndef SD_FUZZ_NO_MAIN
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_audio(data, size);
    return 0;
}
#endif
