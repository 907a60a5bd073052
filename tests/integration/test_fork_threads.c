/*
 * fork() while other threads allocate and free continuously: the child's
 * allocator must be usable (no lock left held by a thread that does not
 * exist in the child, no half-updated structure). 200 forks; each child
 * mallocs and frees a few thousand blocks of several sizes and _exit(0)s.
 * A child that deadlocks is killed by its own alarm or by the parent's
 * watchdog, and the test fails instead of hanging.
 */
#include <criterion/criterion.h>
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <gcmalloc.h>
#include "testutil.h"

#define NBUSY 4
#define NFORKS 200

static atomic_int stop;
static atomic_ulong busy_ops;

static void *busy(void *arg) {
    uint64_t rng = 77 + (uintptr_t)arg;
    enum { K = 256 };
    void *v[K] = {0};
    size_t sz[K] = {0};
    while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
        uint64_t r = tu_rand(&rng);
        unsigned k = (unsigned)(r % K);
        if (v[k]) {
            if (pat_check(v[k], sz[k], 1) >= 0)
                abort();
            free(v[k]);
            v[k] = NULL;
        } else {
            unsigned c = (unsigned)((r >> 16) % 100);
            size_t n = c < 90 ? (size_t)(r >> 24) % 512 + 1
                     : c < 99 ? (size_t)(r >> 24) % 30000 + 1
                              : (size_t)(r >> 24) % (2 << 20) + 32769;
            if ((r >> 8) % 10 == 0) {
                v[k] = realloc(NULL, n);
            } else if ((r >> 8) % 10 == 1) {
                if (posix_memalign(&v[k], 256, n))
                    v[k] = NULL;
            } else {
                v[k] = malloc(n);
            }
            if (!v[k])
                abort();
            sz[k] = n < 4096 ? n : 4096;
            pat_fill(v[k], sz[k], 1);
        }
        atomic_fetch_add_explicit(&busy_ops, 1, memory_order_relaxed);
    }
    for (unsigned k = 0; k < K; k++)
        free(v[k]);
    return NULL;
}

/* In the child: blocks of every small size class up to 512 bytes (the
 * classes the busy threads use most), 600 of each - more than a span's
 * worth, so the child's cache must refill from the shared lists that the
 * parent's threads' caches were handed back to - then some bigger ones;
 * checked and freed. */
enum { K = 600 };
static int child_count(size_t n) { return n <= 512 ? K : n <= 20480 ? 40 : 4; }

static int child_work(void) {
    static const size_t cls[] = {16,  32,  48,  64,  80,  96,  112, 128,  144,  160,  176,  192,   208,  224,
                                 240, 256, 288, 320, 352, 384, 416, 448,  480,  512,  1024, 2048,  3072, 8192,
                                 20480, 70000, 1 << 20};
    static void *v[K];
    return tu_child_alloc_round(cls, sizeof cls / sizeof *cls, child_count, v, 8, 16);
}

static void start_threads(pthread_t *t, int n, void *(*fn)(void *), unsigned long ops) {
    atomic_store(&stop, 0);
    for (int i = 0; i < n; i++)
        cr_assert_eq(pthread_create(&t[i], NULL, fn, (void *)(uintptr_t)i), 0);
    /* Let them get going. */
    while (atomic_load(&busy_ops) < ops)
        tu_sleep_ms(1);
}

static void start_busy(pthread_t *t, int n) { start_threads(t, n, busy, 10000); }

static void stop_busy(pthread_t *t, int n) {
    atomic_store(&stop, 1);
    for (int i = 0; i < n; i++)
        pthread_join(t[i], NULL);
}

Test(fork_threads, fork_while_threads_allocate, .timeout = 280) {
    pthread_t t[NBUSY];
    start_busy(t, NBUSY);
    fork_tally f = fork_many(NFORKS, child_work, 30, 40000, true);
    stop_busy(t, NBUSY);
    cr_assert_eq(f.failures + f.hangs, 0, "%d children failed, %d hung; %s", f.failures, f.hangs, f.first);
}

/* Bursts of large blocks of up to 128 KiB, allocated and then freed in
 * reverse: the thread's stash fills, gives its older half to the mheap's
 * large-span cache, and takes batches back (alloc/lstash.c), so a fork
 * catches threads in the middle of those moves. */
static void *busy_large(void *arg) {
    uint64_t rng = 991 + (uintptr_t)arg;
    enum { BURST = 24 };
    void *v[BURST];
    size_t sz[BURST];
    while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
        int n = 1 + (int)(tu_rand(&rng) % BURST);
        for (int i = 0; i < n; i++) {
            sz[i] = i % 2 ? (size_t)64 << 10 : (size_t)(5 + tu_rand(&rng) % 12) * 8192; /* 40-128 KiB */
            v[i] = malloc(sz[i]);
            if (!v[i])
                abort();
            pat_fill(v[i], 64, 5);
        }
        for (int i = n; i-- > 0;) {
            if (pat_check(v[i], 64, 5) >= 0)
                abort();
            free(v[i]);
        }
        atomic_fetch_add_explicit(&busy_ops, 1, memory_order_relaxed);
    }
    return NULL;
}

/* The child also returns every cached large span's pages (malloc_trim):
 * a span both in a vanished thread's stash and in the cache would be
 * destroyed twice. */
static int child_trim_work(void) {
    int r = child_work();
    malloc_trim(0);
    return r ? r : child_work();
}

Test(fork_threads, fork_while_threads_move_large_spans, .timeout = 280) {
    pthread_t t[NBUSY];
    start_threads(t, NBUSY, busy_large, 1000); /* bursts */
    fork_tally f = fork_many(100, child_trim_work, 30, 40000, true);
    stop_busy(t, NBUSY);
    cr_assert_eq(f.failures + f.hangs, 0, "%d children failed, %d hung; %s", f.failures, f.hangs, f.first);
}

/* The parent's heap is intact after all the forks: its own blocks keep their
 * contents and the allocator still works in the parent. */
Test(fork_threads, parent_heap_intact_after_forks, .timeout = 120) {
    enum { K = 2000 };
    char **mine = malloc(K * sizeof *mine);
    cr_assert_not_null(mine);
    for (int i = 0; i < K; i++) {
        mine[i] = malloc((size_t)i % 700 + 1);
        cr_assert_not_null(mine[i]);
        pat_fill(mine[i], (size_t)i % 700 + 1, 3);
    }
    pthread_t t[NBUSY];
    start_busy(t, NBUSY);
    for (int i = 0; i < 50; i++) {
        pid_t pid = fork();
        cr_assert_geq(pid, 0);
        if (pid == 0) {
            alarm(30);
            /* The child frees the parent's blocks in its copy of the heap. */
            for (int j = 0; j < K; j++)
                free(mine[j]);
            _exit(child_work());
        }
        int st;
        cr_assert_eq(wait_timeout(pid, 40000, &st), 0, "child %d hung", i);
        cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child %d failed (status 0x%x)", i, st);
    }
    stop_busy(t, NBUSY);
    for (int i = 0; i < K; i++) {
        cr_assert_eq(pat_check(mine[i], (size_t)i % 700 + 1, 3), -1, "parent block %d changed", i);
        free(mine[i]);
    }
    free(mine);
}

/* Nested: a child of a forked child (forked while its own threads run). */
static void *child_busy(void *arg) {
    return busy(arg);
}

Test(fork_threads, fork_in_child_with_threads, .timeout = 120) {
    pthread_t t[2];
    start_busy(t, 2);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        alarm(60);
        /* Threads of the child (the parent's threads do not exist here). */
        pthread_t ct[2];
        for (int i = 0; i < 2; i++)
            if (pthread_create(&ct[i], NULL, child_busy, (void *)(uintptr_t)(i + 10)))
                _exit(10);
        for (int i = 0; i < 20; i++) {
            pid_t g = fork();
            if (g < 0)
                _exit(11);
            if (g == 0) {
                alarm(30);
                _exit(child_work());
            }
            int st;
            if (wait_timeout(g, 40000, &st) != 0)
                _exit(12);
            if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
                _exit(13);
        }
        atomic_store(&stop, 1);
        for (int i = 0; i < 2; i++)
            pthread_join(ct[i], NULL);
        _exit(child_work());
    }
    int st;
    int w = wait_timeout(pid, 90000, &st);
    stop_busy(t, 2);
    cr_assert_eq(w, 0, "child hung");
    char s[64];
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child ended with %s", status_str(st, s, sizeof s));
}
