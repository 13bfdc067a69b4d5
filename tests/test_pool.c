/* The library's worker pool (src/core/pool.c): every index runs once, on a valid worker, each
 * worker value on one thread at a time; jobs follow each other; a task's own sd_pool_run stays on
 * its thread; pool mode (sd_pool_enter) is per thread and nests; a pool of 1 has no workers. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "core/pool.h"
#include "harness.h"

#define MAX_N 1000

typedef struct {
    atomic_int runs[MAX_N];
    atomic_int busy[8];   /* tasks running on each worker value right now */
    atomic_int overlap;   /* a worker value was used by two tasks at once */
    atomic_int bad_worker;
    int threads;
    sd_pool *pool;
    atomic_int nested_ok, nested_runs;
    atomic_int saw_current;
} job;

static void count_task(void *arg, int i, int worker) {
    job *j = arg;
    if (worker < 0 || worker >= j->threads) {
        atomic_fetch_add(&j->bad_worker, 1);
        return;
    }
    if (atomic_fetch_add(&j->busy[worker], 1) != 0) atomic_fetch_add(&j->overlap, 1);
    atomic_fetch_add(&j->runs[i], 1);
    if (sd_pool_current() != NULL) atomic_fetch_add(&j->saw_current, 1);
    for (volatile int k = 0; k < 2000; k++) {
    }
    atomic_fetch_sub(&j->busy[worker], 1);
}

static void inner_task(void *arg, int i, int worker) {
    (void)i;
    job *j = arg;
    atomic_fetch_add(&j->nested_runs, 1);
    if (worker == 0) atomic_fetch_add(&j->nested_ok, 1); /* on the task's own thread */
}

static void nesting_task(void *arg, int i, int worker) {
    (void)i;
    (void)worker;
    job *j = arg;
    sd_pool_run(j->pool, 5, inner_task, j);
}

static void run_and_check(int threads, int n, int jobs) {
    sd_pool *p = NULL;
    sd_error e;
    EXPECT(sd_pool_new(threads, &p, &e) == SD_OK, "pool of %d: %s", threads, e.msg);
    if (!p) return;
    EXPECT(sd_pool_threads(p) == threads, "threads %d", sd_pool_threads(p));
    static job j;
    for (int r = 0; r < jobs; r++) {
        memset(&j, 0, sizeof j);
        j.threads = threads;
        sd_pool_run(p, n, count_task, &j);
        int wrong = 0;
        for (int i = 0; i < n; i++) wrong += atomic_load(&j.runs[i]) != 1;
        EXPECT(!wrong && !j.bad_worker && !j.overlap && !j.saw_current,
               "threads %d, n %d, job %d: %d indices not run exactly once, %d bad workers, %d overlaps, %d saw a "
               "current pool",
               threads, n, r, wrong, (int)j.bad_worker, (int)j.overlap, (int)j.saw_current);
    }
    memset(&j, 0, sizeof j);
    j.pool = p;
    sd_pool_run(p, 4, nesting_task, &j);
    EXPECT(j.nested_runs == 20 && j.nested_ok == 20, "nested runs %d, on their own thread %d", (int)j.nested_runs,
           (int)j.nested_ok);
    sd_pool_free(p);
}

static void test_runs_every_index_once(void) {
    run_and_check(1, 37, 3);
    run_and_check(2, 1, 3);
    run_and_check(2, 3, 200);
    run_and_check(3, MAX_N, 20);
    run_and_check(5, 7, 50);
}

static void *mode_thread(void *arg) {
    sd_pool *p = arg;
    /* Another thread's pool mode is its own. */
    return (void *)(intptr_t)(sd_pool_active() == 0 && sd_pool_current() == NULL && p != NULL);
}

static void test_pool_mode_is_per_thread(void) {
    sd_pool *p = NULL;
    sd_error e;
    EXPECT(sd_pool_new(2, &p, &e) == SD_OK, "%s", e.msg);
    EXPECT(!sd_pool_active() && sd_pool_current() == NULL, "pool mode before enter");
    sd_pool_scope outer = sd_pool_enter(p);
    EXPECT(sd_pool_active() && sd_pool_current() == p, "after enter(p)");
    sd_pool_scope inner = sd_pool_enter(NULL);
    EXPECT(sd_pool_active() && sd_pool_current() == NULL, "after enter(NULL)");
    pthread_t t;
    void *other = NULL;
    pthread_create(&t, NULL, mode_thread, p);
    pthread_join(t, &other);
    EXPECT(other != NULL, "another thread saw this thread's pool mode");
    sd_pool_leave(inner);
    EXPECT(sd_pool_current() == p, "leave(inner)");
    sd_pool_leave(outer);
    EXPECT(!sd_pool_active() && sd_pool_current() == NULL, "leave(outer)");
    sd_pool_free(p);
    sd_pool *bad = (sd_pool *)&e;
    EXPECT(sd_pool_new(0, &bad, &e) == SD_E_ARG && bad == NULL, "pool of 0 threads");
    sd_pool_free(NULL);
}

int main(void) {
    sd_test_run("pool_runs_every_index_once", test_runs_every_index_once);
    sd_test_run("pool_mode_is_per_thread", test_pool_mode_is_per_thread);
    return sd_test_finish();
}
