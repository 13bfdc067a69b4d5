/* Status codes and error messages. Library code never prints: every fallible
 * function returns an sd_status and, on failure, writes a human-readable message
 * into the caller's sd_error (which may be NULL when the caller does not care). */
#ifndef SD_CORE_STATUS_H
#define SD_CORE_STATUS_H

typedef enum {
    SD_OK = 0,
    SD_E_ARG = 1,      /* bad argument: NULL pointer, bad value, out of range */
    SD_E_NOMEM = 2,    /* allocation failed */
    SD_E_IO = 3,       /* open/read/write/rename failed (errno text in the message) */
    SD_E_FORMAT = 4,   /* malformed file: bad magic, truncated, inconsistent header */
    SD_E_SHAPE = 5,    /* tensor missing or of the wrong shape / dim */
    SD_E_NUMERIC = 6,  /* NaN / Inf where a finite value is required */
    SD_E_UNSUPPORTED = 7, /* valid but unsupported (dtype, version, feature) */
    SD_E_INTERRUPTED = 8  /* stopped at a safe point on request (SIGINT/SIGTERM: core/interrupt.h) */
} sd_status;

#define SD_ERROR_MSG_MAX 1024

typedef struct {
    sd_status code;
    char msg[SD_ERROR_MSG_MAX];
} sd_error;

/* Records code and a printf-formatted message in err (if non-NULL); returns code. */
sd_status sd_fail(sd_error *err, sd_status code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* Prefixes an existing message with "<prefix>: " (e.g. a file name); err may be NULL. Returns
 * nothing: the caller returns the status it already has (err->code is not there when err is
 * NULL). */
void sd_error_prefix(sd_error *err, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

void sd_error_clear(sd_error *err);
const char *sd_status_name(sd_status code);

#endif
