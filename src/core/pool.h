/* The library's own worker threads for inference calls (the public API): a fixed number of
 * threads that sleep on a condition variable between jobs instead of spinning, so a call never
 * burns CPU that other work on a shared host could use, and never uses more threads than it was
 * given. (OpenMP's wait policy cannot be chosen by a library: libgomp reads OMP_WAIT_POLICY and
 * GOMP_SPINCOUNT once, when it starts, and by default spins up to ~300,000 rounds at every
 * barrier and after every parallel region.)
 *
 * A pool has `threads` threads in all: the caller of sd_pool_run and threads - 1 workers. The
 * workers run with OpenMP's thread count set to 1, so the layers' OpenMP loops inside a task run
 * on that thread alone. */
#ifndef SD_CORE_POOL_H
#define SD_CORE_POOL_H

#include "core/status.h"

typedef struct sd_pool sd_pool;

/* A task: runs index i on thread `worker` (0 .. threads - 1, 0 is the caller); each worker value
 * is used by one thread at a time, so it can pick per-thread scratch. */
typedef void (*sd_pool_task)(void *arg, int i, int worker);

/* threads >= 1 (1: no workers, sd_pool_run runs everything on the caller). */
sd_status sd_pool_new(int threads, sd_pool **out, sd_error *err);
/* Stops and joins the workers (none may be running a job). NULL is fine. */
void sd_pool_free(sd_pool *p);
int sd_pool_threads(const sd_pool *p);

/* Runs task(arg, i, worker) for every i in [0, n), each once, on the calling thread and the
 * workers (taking indices in order as they become free), and returns when all have finished. One
 * job at a time per pool: call it from one thread. From inside a task it runs the indices on the
 * calling thread alone. */
void sd_pool_run(sd_pool *p, int n, sd_pool_task task, void *arg);

/* Pool mode: the public API's calls run their library work "the pool's way" (sd_pool_enter):
 * products are cut by their shape alone and branches run as tasks, on the pool's threads or, with
 * p NULL, on the calling thread alone, giving the same bits either way. sd_pool_current() is the
 * pool that work may spread over (NULL outside pool mode, with p NULL, and inside a task: nested
 * work stays on its thread); sd_pool_active() is 1 in pool mode and inside a task. */
typedef struct {
    sd_pool *pool;
    int active;
} sd_pool_scope;

sd_pool_scope sd_pool_enter(sd_pool *p);
void sd_pool_leave(sd_pool_scope previous);
sd_pool *sd_pool_current(void);
int sd_pool_active(void);

#endif
