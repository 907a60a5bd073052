/*
 * 10 000 threads, created and joined in batches of 16. Each allocates a few
 * KiB in various size classes, frees some itself and leaves the rest to the
 * main thread. The per-thread caches of exited threads must be given back:
 * afterwards mapped_bytes has grown by less than 64 MiB (10 000 leaked
 * caches of even one 8 KiB span would be 80 MiB) and allocated_bytes is
 * back within 1 MiB of the start.
 */
#include <criterion/criterion.h>
#include <malloc.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <gcmalloc.h>
#include "testutil.h"

#define NTHREADS 10000
#define BATCH 16
#define PER_THREAD 24

struct job {
    unsigned id;
    int ok;
    void *left[PER_THREAD]; /* blocks the main thread frees */
    size_t left_size[PER_THREAD];
};

static const size_t class_sizes[] = {8,   16,   32,   48,   64,   96,   128,  256,   384,  512,
                                     640, 1024, 1536, 2048, 3072, 4096, 6144, 10240, 16384, 32768};

static void *thread_fn(void *arg) {
    struct job *j = arg;
    uint64_t rng = j->id * 2654435761u + 1;
    void *mine[PER_THREAD];
    size_t sz[PER_THREAD];
    size_t total = 0;
    for (int i = 0; i < PER_THREAD; i++) {
        size_t n = class_sizes[tu_rand(&rng) % 16]; /* up to 4 KiB */
        if (i == 0 && j->id % 10 == 0)
            n = class_sizes[16 + tu_rand(&rng) % 4]; /* sometimes bigger */
        if (i == 1 && j->id % 100 == 0)
            n = 100000; /* and sometimes large */
        mine[i] = malloc(n);
        if (!mine[i]) {
            j->ok = 0;
            return NULL;
        }
        sz[i] = n;
        total += n;
        pat_fill(mine[i], n, j->id);
    }
    int k = 0;
    for (int i = 0; i < PER_THREAD; i++) {
        if (pat_check(mine[i], sz[i], j->id) >= 0) {
            j->ok = 0;
            return NULL;
        }
        if (i % 3 == 0) { /* a third survive the thread */
            j->left[k] = mine[i];
            j->left_size[k++] = sz[i];
        } else {
            free(mine[i]);
        }
    }
    j->ok = total > 0 ? 1 : 0;
    return NULL;
}

Test(many_threads, ten_thousand_threads_give_back_their_caches, .timeout = 280) {
    struct gcm_stats a, b;
    struct job *jobs = calloc(BATCH, sizeof *jobs);
    cr_assert_not_null(jobs);
    /* Warm up: one batch before taking the baseline. */
    for (int round = 0; round < 2; round++) {
        if (round == 1)
            gcm_get_stats(&a);
        int count = round == 0 ? BATCH : NTHREADS;
        for (int base = 0; base < count; base += BATCH) {
            pthread_t t[BATCH];
            for (int i = 0; i < BATCH; i++) {
                memset(&jobs[i], 0, sizeof jobs[i]);
                jobs[i].id = (unsigned)(base + i);
                int e = pthread_create(&t[i], NULL, thread_fn, &jobs[i]);
                cr_assert_eq(e, 0, "pthread_create #%d: error %d", base + i, e);
            }
            for (int i = 0; i < BATCH; i++) {
                pthread_join(t[i], NULL);
                cr_assert(jobs[i].ok, "thread %u failed (allocation or corrupted block)", jobs[i].id);
                for (int k = 0; k < PER_THREAD && jobs[i].left[k]; k++) {
                    cr_assert_eq(pat_check(jobs[i].left[k], jobs[i].left_size[k], jobs[i].id), -1,
                                 "block left by thread %u changed", jobs[i].id);
                    free(jobs[i].left[k]);
                }
            }
        }
    }
    gcm_get_stats(&b);
    free(jobs);
    cr_assert_lt(b.mapped_bytes, a.mapped_bytes + ((size_t)64 << 20),
                 "mapped_bytes %zu after 10000 threads, %zu before (bound: +64 MiB)", b.mapped_bytes,
                 a.mapped_bytes);
    cr_assert_leq(b.allocated_bytes, a.allocated_bytes + ((size_t)1 << 20),
                  "allocated_bytes %zu after 10000 threads, %zu before (bound: +1 MiB)", b.allocated_bytes,
                  a.allocated_bytes);
}

/* Detached threads that exit on their own, while the main thread frees
 * what they leave behind. */
struct djob {
    pthread_mutex_t *mu;
    pthread_cond_t *cv;
    int *done;
    void **slot;
};

static void *detached_fn(void *arg) {
    struct djob *d = arg;
    void *p = malloc(200);
    void *q = malloc(3000);
    free(q);
    memset(p, 7, 200);
    pthread_mutex_lock(d->mu);
    *d->slot = p;
    (*d->done)++;
    pthread_cond_signal(d->cv);
    pthread_mutex_unlock(d->mu);
    free(d);
    return NULL;
}

Test(many_threads, detached_threads, .timeout = 120) {
    enum { N = 2000 };
    pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
    int done = 0;
    void **slots = calloc(N, sizeof *slots);
    cr_assert_not_null(slots);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    for (int i = 0; i < N; i++) {
        struct djob *d = malloc(sizeof *d);
        cr_assert_not_null(d);
        *d = (struct djob){&mu, &cv, &done, &slots[i]};
        pthread_t t;
        cr_assert_eq(pthread_create(&t, &attr, detached_fn, d), 0);
        if (i % 32 == 31) { /* keep at most ~32 alive */
            pthread_mutex_lock(&mu);
            while (done < i - 16)
                pthread_cond_wait(&cv, &mu);
            pthread_mutex_unlock(&mu);
        }
    }
    pthread_mutex_lock(&mu);
    while (done < N)
        pthread_cond_wait(&cv, &mu);
    pthread_mutex_unlock(&mu);
    for (int i = 0; i < N; i++) {
        cr_assert_not_null(slots[i]);
        cr_assert_eq(((unsigned char *)slots[i])[199], 7);
        free(slots[i]);
    }
    free(slots);
    pthread_attr_destroy(&attr);
}
