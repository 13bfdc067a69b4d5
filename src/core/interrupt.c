/* The process-wide stop request (interrupt.h): one atomic flag, set from a signal handler. */
#include "core/interrupt.h"

#include <signal.h>
#include <stdatomic.h>

static atomic_int pending; /* lock-free on every target we build for, so safe in a handler */

void sd_interrupt_request(int signo) { atomic_store(&pending, signo > 0 ? signo : SIGINT); }

void sd_interrupt_clear(void) { atomic_store(&pending, 0); }

int sd_interrupted(void) { return atomic_load_explicit(&pending, memory_order_relaxed); }

sd_status sd_interrupt_check(sd_error *err, const char *where) {
    int s = sd_interrupted();
    if (!s) return SD_OK;
    return sd_fail(err, SD_E_INTERRUPTED, "interrupted (%s) %s", s == SIGTERM ? "SIGTERM" : s == SIGINT ? "SIGINT" : "signal",
                   where ? where : "");
}
