/* Status codes and error messages: setting, prefixing and clearing an sd_error, status names. */
#include "status.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

sd_status sd_fail(sd_error *err, sd_status code, const char *fmt, ...) {
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
        err->code = code;
    }
    return code;
}

void sd_error_prefix(sd_error *err, const char *fmt, ...) {
    if (!err) return;
    char joined[2 * SD_ERROR_MSG_MAX + 2];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(joined, SD_ERROR_MSG_MAX, fmt, ap);
    va_end(ap);
    if (n < 0) n = 0;
    if (n > SD_ERROR_MSG_MAX - 1) n = SD_ERROR_MSG_MAX - 1;
    memcpy(joined + n, ": ", 2);
    memcpy(joined + n + 2, err->msg, SD_ERROR_MSG_MAX);
    joined[sizeof joined - 1] = '\0';
    memcpy(err->msg, joined, SD_ERROR_MSG_MAX - 1);
    err->msg[SD_ERROR_MSG_MAX - 1] = '\0';
}

void sd_error_clear(sd_error *err) {
    if (err) {
        err->code = SD_OK;
        err->msg[0] = '\0';
    }
}

const char *sd_status_name(sd_status code) {
    switch (code) {
    case SD_OK: return "ok";
    case SD_E_ARG: return "invalid argument";
    case SD_E_NOMEM: return "out of memory";
    case SD_E_IO: return "I/O error";
    case SD_E_FORMAT: return "malformed file";
    case SD_E_SHAPE: return "shape mismatch";
    case SD_E_NUMERIC: return "non-finite value";
    case SD_E_UNSUPPORTED: return "unsupported";
    case SD_E_INTERRUPTED: return "interrupted";
    }
    return "unknown error";
}
