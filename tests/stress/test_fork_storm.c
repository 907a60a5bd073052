/*
 * Fork storm: 1 000 fork()s while 8 threads allocate and free (small,
 * medium and large blocks, realloc, aligned, frees of blocks another thread
 * allocated). Every child allocates, checks and frees blocks of several size
 * classes (more than a span's worth of the classes the threads use, and a
 * large block), then _exit(0)s; a child that deadlocks is killed by its own
 * alarm and by the parent's deadline, and counts as a failure. The parent's
 * threads check their blocks' contents throughout.
 *
 * The busy threads pause for 1 ms between bursts of 32 operations, so
 * that on a 2-core machine the forking thread still gets to run (without
 * the pauses 8 busy threads starve it: 130+ ms per fork); with 8 of them, an
 * allocation is still in progress in some thread at most forks.
 */
#include <criterion/criterion.h>
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <gcmalloc.h>
#include "testutil.h"

#define NBUSY 8
#define NFORKS_DEFAULT 1000 /* GCM_FORK_STORM_FORKS overrides (scripts/sanitize.sh: 100) */
#define HANDOFF 64

static atomic_int stop;
static atomic_ulong busy_ops, busy_errors;
static _Atomic(void *) handoff[HANDOFF]; /* blocks left for another thread to free (16 bytes checked) */

static void *busy(void *arg) {
    uint64_t rng = 0x9e37 + 77 * (uintptr_t)arg;
    enum { K = 128 };
    void *v[K] = {0};
    size_t sz[K] = {0};
    unsigned n = 0;
    while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
        uint64_t r = tu_rand(&rng);
        unsigned k = (unsigned)(r % K);
        if (v[k]) {
            if (pat_check(v[k], sz[k], 1) >= 0)
                atomic_fetch_add(&busy_errors, 1);
            if ((r >> 8) % 4 == 0) { /* leave it to another thread */
                pat_fill(v[k], 16, 1); /* what the taker checks */
                void *old = atomic_exchange(&handoff[(r >> 12) % HANDOFF], v[k]);
                if (old) {
                    if (pat_check(old, 16, 1) >= 0)
                        atomic_fetch_add(&busy_errors, 1);
                    free(old);
                }
            } else if ((r >> 8) % 4 == 1) {
                size_t m = (size_t)(r >> 20) % 2000 + 16;
                uintptr_t old = addr_of(v[k]);
                void *q = realloc(v[k], m);
                if (!q || pat_check_key(q, 16, old, sz[k], 1) >= 0)
                    atomic_fetch_add(&busy_errors, 1);
                free(q);
            } else {
                free(v[k]);
            }
            v[k] = NULL;
        } else {
            unsigned c = (unsigned)((r >> 16) % 100);
            size_t m = c < 90 ? (size_t)(r >> 24) % 512 + 16 : c < 99 ? (size_t)(r >> 24) % 30000 + 16
                                                                      : (size_t)(r >> 24) % (1 << 20) + 32769;
            if ((r >> 8) % 10 == 1) {
                if (posix_memalign(&v[k], 256, m))
                    v[k] = NULL;
            } else {
                v[k] = malloc(m);
            }
            if (!v[k]) {
                atomic_fetch_add(&busy_errors, 1);
                continue;
            }
            sz[k] = m < 1024 ? m : 1024;
            pat_fill(v[k], sz[k], 1);
                    }
        if (++n % 32 == 0) {
            atomic_fetch_add_explicit(&busy_ops, 32, memory_order_relaxed);
            struct timespec ts = {0, 1000000};
            nanosleep(&ts, NULL);
        }
    }
    for (unsigned k = 0; k < K; k++)
        free(v[k]);
    return NULL;
}

/* The child: blocks of 24 sizes, 300 of each small one (more than one span
 * of the busy classes: the cache must refill from the central lists the
 * parent's threads' caches went back to), checked and freed; then a calloc,
 * a realloc and a large block. */
static int child_count(size_t n) { return n <= 512 ? 300 : n <= 32768 ? 20 : 2; }

static int child_work(void) {
    static const size_t cls[] = {16, 32, 48, 64, 96, 128, 160, 208, 256, 320, 416, 512,
                                 768, 1024, 2048, 4096, 8192, 16384, 20480, 32768, 40000, 70000, 300000, 1 << 20};
    static void *v[300];
    return tu_child_alloc_round(cls, sizeof cls / sizeof *cls, child_count, v, 1, 64);
}

Test(fork_storm, thousand_forks_while_eight_threads_allocate, .timeout = 280) {
    const char *env = getenv("GCM_FORK_STORM_FORKS");
    int NFORKS = env && atoi(env) > 0 ? atoi(env) : NFORKS_DEFAULT;
    pthread_t t[NBUSY];
    for (int i = 0; i < NBUSY; i++)
        cr_assert_eq(pthread_create(&t[i], NULL, busy, (void *)(uintptr_t)i), 0);
    while (atomic_load(&busy_ops) < 20000)
        tu_sleep_ms(1);
    uint64_t t0 = tu_now_ms();
    unsigned long ops0 = atomic_load(&busy_ops);
    fork_tally f = fork_many(NFORKS, child_work, 20, 30000, false);
    double took = (double)(tu_now_ms() - t0) / 1000;
    unsigned long ops = atomic_load(&busy_ops) - ops0;
    atomic_store(&stop, 1);
    for (int i = 0; i < NBUSY; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < HANDOFF; i++)
        free(atomic_exchange(&handoff[i], NULL));
    fprintf(stderr, "fork_storm: %d forks in %.1f s while 8 threads did %lu operations; %d failed, %d hung\n", NFORKS,
            took, ops, f.failures, f.hangs);
    cr_assert_eq(f.failures + f.hangs, 0, "%d of %d children failed, %d hung; first: %s", f.failures + f.hangs, NFORKS,
                 f.hangs, f.first);
    cr_assert_eq(atomic_load(&busy_errors), 0, "the parent's threads saw %lu errors", atomic_load(&busy_errors));
    cr_assert_gt(ops, 1000, "the threads hardly ran during the forks (%lu operations)", ops);
}
