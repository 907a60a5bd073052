/*
 * Allocation during thread teardown: pthread key destructors that malloc
 * and free (several keys, several destructor rounds re-setting the key),
 * and C++-style thread_local destructors (__cxa_thread_atexit_impl, which
 * glibc runs before the key destructors) that free __thread buffers. These
 * run around the allocator's own thread-exit hook, so they allocate after
 * (or before) the thread's cache was given back. No crash, and no leak:
 * allocated_bytes is back at its baseline after the threads are joined.
 */
#include <criterion/criterion.h>
#include <limits.h>
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <gcmalloc.h>
#include "testutil.h"

#define NKEYS 4
#define ROUNDS 3 /* re-set in rounds 1..ROUNDS-1; PTHREAD_DESTRUCTOR_ITERATIONS is 4 */

static pthread_key_t keys[NKEYS];
static atomic_ulong dtor_calls, dtor_errors, tl_dtor_calls;

struct kval {
    int key;
    int round;
    size_t n;
    unsigned char *buf;
};

static void key_dtor(void *v) {
    struct kval *kv = v;
    atomic_fetch_add(&dtor_calls, 1);
    if (pat_check(kv->buf, kv->n, (uint64_t)kv->round) >= 0)
        atomic_fetch_add(&dtor_errors, 1);
    /* Allocate and free in the destructor, of several size classes. */
    for (int i = 0; i < 20; i++) {
        size_t n = (size_t)(i * 97 % 2000) + 1;
        void *p = malloc(n);
        if (!p) {
            atomic_fetch_add(&dtor_errors, 1);
            continue;
        }
        memset(p, i, n);
        free(p);
    }
    void *big = malloc(100000);
    if (big)
        memset(big, 1, 100000);
    free(big);
    free(kv->buf);
    if (kv->round + 1 < ROUNDS) {
        /* Re-set the key with a new value: the destructor runs again. */
        kv->round++;
        kv->n = (size_t)kv->round * 1500 + 40;
        kv->buf = malloc(kv->n);
        if (!kv->buf) {
            atomic_fetch_add(&dtor_errors, 1);
            free(kv);
            return;
        }
        pat_fill(kv->buf, kv->n, (uint64_t)kv->round);
        pthread_setspecific(keys[kv->key], kv);
        return;
    }
    free(kv);
}

/* "thread_local" objects with destructors, as C++ compiles them. */
extern int __cxa_thread_atexit_impl(void (*func)(void *), void *obj, void *dso_symbol);
extern void *__dso_handle;

static __thread char *tl_buffer;
static __thread size_t tl_size;

static void tl_dtor(void *obj) {
    atomic_fetch_add(&tl_dtor_calls, 1);
    char **slot = obj;
    if (*slot && pat_check(*slot, tl_size, 77) >= 0)
        atomic_fetch_add(&dtor_errors, 1);
    free(*slot);
    *slot = NULL;
    /* A destructor that allocates a temporary. */
    char *tmp = calloc(1, 5000);
    if (!tmp || first_nonzero(tmp, 5000) >= 0)
        atomic_fetch_add(&dtor_errors, 1);
    free(tmp);
}

static void *worker(void *arg) {
    unsigned id = (unsigned)(uintptr_t)arg;
    for (int k = 0; k < NKEYS; k++) {
        struct kval *kv = malloc(sizeof *kv);
        if (!kv)
            return NULL;
        kv->key = k;
        kv->round = 0;
        kv->n = (size_t)(k + 1) * 300 + id % 7;
        kv->buf = malloc(kv->n);
        if (!kv->buf)
            return NULL;
        pat_fill(kv->buf, kv->n, 0);
        pthread_setspecific(keys[k], kv);
    }
    tl_size = 3000 + id % 100;
    tl_buffer = malloc(tl_size);
    if (tl_buffer)
        pat_fill(tl_buffer, tl_size, 77);
    __cxa_thread_atexit_impl(tl_dtor, &tl_buffer, &__dso_handle);
    /* Ordinary work in between. */
    for (int i = 0; i < 100; i++)
        free(malloc((size_t)i * 33 + 1));
    return NULL;
}

static void run_threads(int n, int batch) {
    for (int base = 0; base < n; base += batch) {
        pthread_t t[64];
        for (int i = 0; i < batch; i++)
            cr_assert_eq(pthread_create(&t[i], NULL, worker, (void *)(uintptr_t)(base + i)), 0);
        for (int i = 0; i < batch; i++)
            pthread_join(t[i], NULL);
    }
}

Test(thread_dtors, key_and_thread_local_destructors_allocate, .timeout = 200) {
    for (int k = 0; k < NKEYS; k++)
        cr_assert_eq(pthread_key_create(&keys[k], key_dtor), 0);
    run_threads(8, 8); /* warm-up */
    struct gcm_stats a, b;
    gcm_get_stats(&a);
    unsigned long calls0 = atomic_load(&dtor_calls), tl0 = atomic_load(&tl_dtor_calls);
    enum { N = 2000 };
    run_threads(N, 8);
    gcm_get_stats(&b);
    cr_assert_eq(atomic_load(&dtor_errors), 0, "%lu errors in destructors", atomic_load(&dtor_errors));
    /* Every key's value went through ROUNDS destructor calls. */
    cr_assert_eq(atomic_load(&dtor_calls) - calls0, (unsigned long)N * NKEYS * ROUNDS,
                 "%lu key destructor calls, expected %lu", atomic_load(&dtor_calls) - calls0,
                 (unsigned long)N * NKEYS * ROUNDS);
    cr_assert_eq(atomic_load(&tl_dtor_calls) - tl0, (unsigned long)N);
    cr_assert_leq(b.allocated_bytes, a.allocated_bytes + ((size_t)1 << 20),
                  "allocated_bytes %zu after %d threads, %zu before", b.allocated_bytes, N, a.allocated_bytes);
    cr_assert_lt(b.mapped_bytes, a.mapped_bytes + ((size_t)64 << 20),
                 "mapped_bytes %zu after %d threads, %zu before", b.mapped_bytes, N, a.mapped_bytes);
}

/* A destructor that frees memory allocated by another (already exited)
 * thread, and one that hands a block to the main thread. */
static void *handed[256];
static void give_dtor(void *v) {
    unsigned id = (unsigned)(uintptr_t)v - 1;
    void *p = malloc(777);
    if (p)
        memset(p, 0x77, 777);
    handed[id] = p;
}

static pthread_key_t give_key;
static void *give_worker(void *arg) {
    pthread_setspecific(give_key, arg);
    free(malloc(100));
    return NULL;
}

Test(thread_dtors, destructor_allocates_for_main_thread) {
    cr_assert_eq(pthread_key_create(&give_key, give_dtor), 0);
    struct gcm_stats a, b;
    gcm_get_stats(&a);
    for (int round = 0; round < 20; round++) {
        pthread_t t[256];
        for (uintptr_t i = 0; i < 256; i++)
            cr_assert_eq(pthread_create(&t[i], NULL, give_worker, (void *)(i + 1)), 0);
        for (int i = 0; i < 256; i++)
            pthread_join(t[i], NULL);
        for (int i = 0; i < 256; i++) {
            cr_assert_not_null(handed[i], "destructor's malloc failed");
            cr_assert_eq(((unsigned char *)handed[i])[776], 0x77);
            free(handed[i]);
            handed[i] = NULL;
        }
    }
    gcm_get_stats(&b);
    cr_assert_leq(b.allocated_bytes, a.allocated_bytes + ((size_t)1 << 20), "allocated %zu -> %zu",
                  a.allocated_bytes, b.allocated_bytes);
}
