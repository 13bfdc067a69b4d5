/* Audio input for the speech models: any file libsndfile decodes (WAV, FLAC, OGG/Vorbis, Opus,
 * AIFF, AU, CAF, W64, MP3 where the library was built with it), channels averaged to mono,
 * resampled to the model's rate with libsoxr (SOXR_HQ, the library's default quality: 20-bit
 * precision, pass band to 91% of the lower Nyquist frequency, linear phase, no added delay).
 * A file already at the target rate is not resampled: the decoded samples come back unchanged.
 *
 * Samples are float32 as libsndfile gives them (integer PCM scaled to [-1, 1); float files as
 * stored). Refused, with the file's name and the reason: a file libsndfile cannot open, no
 * samples, a sample rate outside [SD_AUDIO_MIN_RATE, SD_AUDIO_MAX_RATE], more than
 * SD_AUDIO_MAX_CHANNELS channels, more than SD_AUDIO_MAX_SECONDS of audio (split longer
 * recordings), a NaN or infinite sample, a read error part-way. */
#ifndef SD_AUDIO_AUDIO_H
#define SD_AUDIO_AUDIO_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

#define SD_AUDIO_MAX_SECONDS 7200 /* 2 hours: 461 MB of float samples at 16 kHz */
#define SD_AUDIO_MIN_RATE 1000
#define SD_AUDIO_MAX_RATE 768000
#define SD_AUDIO_MAX_CHANNELS 256

typedef struct {
    int rate;          /* of the file, Hz */
    int channels;      /* of the file */
    int64_t frames;    /* samples per channel decoded from the file */
    char format[64];   /* libsndfile's name of the container and encoding, e.g. "WAV / Signed 16 bit PCM" */
} sd_audio_info;

/* Decodes path, mixes to mono and resamples to rate (Hz). *samples (sd_alloc'ed, free with
 * sd_free) holds *n > 0 samples; info (may be NULL) describes the file. Messages start with path. */
sd_status sd_audio_read(const char *path, int rate, float **samples, size_t *n, sd_audio_info *info,
                        sd_error *err);
/* The same from a whole file held in memory (size bytes); name is used in messages. */
sd_status sd_audio_read_memory(const uint8_t *data, size_t size, const char *name, int rate,
                               float **samples, size_t *n, sd_audio_info *info, sd_error *err);

/* 1 when name ends in an extension libsndfile reads (.wav .flac .ogg .oga .opus .mp3 .aif .aiff
 * .aifc .au .snd .caf .w64 .rf64; case-insensitive). */
int sd_audio_is_audio_name(const char *name);

#endif
