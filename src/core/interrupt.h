/* A stop request for long work. The command line's SIGINT/SIGTERM handler calls
 * sd_interrupt_request (async-signal-safe); long loops (training batches, evaluation batches, the
 * cache build, the dataset's value scan, the synthetic corpus) poll sd_interrupted() at safe
 * points and return SD_E_INTERRUPTED, so that nothing is left half-written: every output is
 * written atomically, and an unfinished one is its temporary, which the unwinding removes. */
#ifndef SD_CORE_INTERRUPT_H
#define SD_CORE_INTERRUPT_H

#include "core/status.h"

/* Records the request (signo: the signal, for messages). Safe in a signal handler. */
void sd_interrupt_request(int signo);
/* The signal of a pending request, 0 when none. */
int sd_interrupted(void);
/* SD_E_INTERRUPTED with "interrupted (SIGINT) <where>" when a request is pending, SD_OK otherwise. */
sd_status sd_interrupt_check(sd_error *err, const char *where);
/* Forgets a request (for a caller that handled it and goes on, e.g. a test). */
void sd_interrupt_clear(void);

#endif
