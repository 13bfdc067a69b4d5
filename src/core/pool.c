/* A fixed pool of worker threads with blocking waits (see pool.h): workers sleep on a condition
 * variable until a job is posted and take task indices from a shared counter, as the caller does.
 * When the caller runs out of indices it closes the job and sleeps until the workers that joined
 * it have finished; a worker that had not woken up by then skips the job, so on a busy host the
 * caller never waits for a thread the scheduler has not run yet (it did the work itself). No
 * spinning anywhere: a wake-up costs a few microseconds of futex traffic, against the
 * milliseconds of an inference call. */
#include "core/pool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

struct sd_pool {
    int threads;            /* the caller + workers */
    int started;            /* workers created */
    pthread_t *workers;     /* [threads - 1] */
    pthread_mutex_t mu;
    pthread_cond_t wake;    /* workers wait here for a new job (or stop) */
    pthread_cond_t done;    /* the caller waits here for the workers to finish a job */
    unsigned long job;      /* number of the posted job; workers remember the last one they saw */
    int stop;
    int open;               /* the current job still takes workers */
    int joined;             /* workers that joined the current job and have not finished it */
    sd_pool_task task;      /* the current job */
    void *arg;
    int n;
    atomic_int next;        /* next task index to hand out */
};

typedef struct {
    sd_pool *p;
    int id; /* 1 .. threads - 1 */
} worker_start;

static _Thread_local sd_pool *current; /* sd_pool_enter's pool */
static _Thread_local int active;       /* sd_pool_enter was called (pool mode) */
static _Thread_local int in_task;      /* this thread is running a task */

static void run_tasks(sd_pool *p, sd_pool_task task, void *arg, int n, int worker) {
    in_task = 1;
    for (int i; (i = atomic_fetch_add_explicit(&p->next, 1, memory_order_relaxed)) < n;) task(arg, i, worker);
    in_task = 0;
}

static void *worker_main(void *start) {
    worker_start w = *(worker_start *)start;
    free(start);
    sd_pool *p = w.p;
#ifdef _OPENMP
    omp_set_num_threads(1); /* OpenMP loops inside a task stay on this thread */
#endif
    unsigned long seen = 0;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->stop && (p->job == seen || !p->open)) pthread_cond_wait(&p->wake, &p->mu);
        if (p->stop) break;
        seen = p->job;
        p->joined++;
        sd_pool_task task = p->task;
        void *arg = p->arg;
        const int n = p->n;
        pthread_mutex_unlock(&p->mu);
        run_tasks(p, task, arg, n, w.id);
        pthread_mutex_lock(&p->mu);
        if (--p->joined == 0 && !p->open) pthread_cond_signal(&p->done);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

void sd_pool_free(sd_pool *p) {
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    p->stop = 1;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->started; i++) pthread_join(p->workers[i], NULL);
    pthread_cond_destroy(&p->wake);
    pthread_cond_destroy(&p->done);
    pthread_mutex_destroy(&p->mu);
    free(p->workers);
    free(p);
}

sd_status sd_pool_new(int threads, sd_pool **out, sd_error *err) {
    *out = NULL;
    if (threads < 1) return sd_fail(err, SD_E_ARG, "a thread pool needs at least 1 thread, not %d", threads);
    sd_pool *p = calloc(1, sizeof *p);
    if (!p) return sd_fail(err, SD_E_NOMEM, "out of memory for a thread pool");
    p->threads = threads;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->wake, NULL);
    pthread_cond_init(&p->done, NULL);
    atomic_init(&p->next, 0);
    p->workers = calloc((size_t)threads, sizeof *p->workers);
    if (!p->workers) {
        sd_pool_free(p);
        return sd_fail(err, SD_E_NOMEM, "out of memory for a thread pool");
    }
    for (int i = 1; i < threads; i++) {
        worker_start *w = malloc(sizeof *w);
        int rc = w ? 0 : 1;
        if (w) {
            w->p = p;
            w->id = i;
            rc = pthread_create(&p->workers[p->started], NULL, worker_main, w);
            if (rc) free(w);
        }
        if (rc) {
            sd_pool_free(p);
            return sd_fail(err, SD_E_NOMEM, "cannot start thread %d of a pool of %d: %s", i + 1, threads,
                           w ? strerror(rc) : "out of memory");
        }
        p->started++;
    }
    *out = p;
    return SD_OK;
}

int sd_pool_threads(const sd_pool *p) { return p ? p->threads : 1; }

void sd_pool_run(sd_pool *p, int n, sd_pool_task task, void *arg) {
    if (n <= 0) return;
    if (!p || p->started == 0 || n == 1 || in_task) {
        const int was = in_task;
        in_task = 1;
        for (int i = 0; i < n; i++) task(arg, i, 0);
        in_task = was;
        return;
    }
    pthread_mutex_lock(&p->mu);
    p->task = task;
    p->arg = arg;
    p->n = n;
    atomic_store_explicit(&p->next, 0, memory_order_relaxed);
    p->joined = 0;
    p->open = 1;
    p->job++;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    run_tasks(p, task, arg, n, 0);
    pthread_mutex_lock(&p->mu);
    p->open = 0; /* every index is taken: late workers skip this job */
    while (p->joined > 0) pthread_cond_wait(&p->done, &p->mu);
    pthread_mutex_unlock(&p->mu);
}

sd_pool_scope sd_pool_enter(sd_pool *p) {
    const sd_pool_scope previous = {current, active};
    current = p;
    active = 1;
    return previous;
}

void sd_pool_leave(sd_pool_scope previous) {
    current = previous.pool;
    active = previous.active;
}

sd_pool *sd_pool_current(void) { return in_task ? NULL : current; }

int sd_pool_active(void) { return active || in_task; }
