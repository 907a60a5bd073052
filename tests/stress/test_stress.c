/*
 * Multi-threaded stress: 8 threads, random sizes from 1 B to 1 MiB (mostly
 * small), malloc / calloc / aligned allocations / realloc in the mix, about a
 * third of the frees done by another thread than the allocating one (objects
 * are handed over through per-thread mutex-protected inboxes). Every object
 * is filled with a pattern derived from its address and size and verified
 * before it is reallocated or freed.
 *
 * Worker threads never call Criterion's assertions: they count errors and
 * keep the first message; the test thread asserts at the end.
 */
#include <criterion/criterion.h>
#include <malloc.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <gcmalloc.h>
#include "testutil.h"

#define NTHREADS 8
#define SLOTS 1024
#define INBOX_CAP 4096
#define SALT 0x5eed

struct obj {
    void *p;
    size_t size;
    size_t align; /* the alignment asked for (16 for plain malloc) */
};

#include "inbox.h"

struct stats {
    unsigned long ops, allocs, local_frees, remote_frees, sent, reallocs, aligned, large;
};

static struct inbox inboxes[NTHREADS];
static pthread_barrier_t barrier;
static unsigned long g_ops;
static struct stats tstats[NTHREADS];


static size_t pick_size(uint64_t *rng) {
    uint64_t r = tu_rand(rng);
    unsigned k = (unsigned)(r % 1000);
    r >>= 10;
    if (k < 4) /* 0.4 %: large, up to 1 MiB */
        return 32768 + (size_t)(r % ((1 << 20) - 32768 + 1));
    if (k < 60) /* 5.6 %: medium, 1 KiB .. 32 KiB */
        return 1024 + (size_t)(r % (32768 - 1024 + 1));
    if (k < 500) /* 44 %: 1 .. 64 */
        return 1 + (size_t)(r % 64);
    return 1 + (size_t)(r % 1024); /* 50 %: 1 .. 1 KiB */
}

static void check_obj(const struct obj *o, const char *when) {
    if (((uintptr_t)o->p & (o->align - 1)) != 0 || ((uintptr_t)o->p & 15) != 0)
        tu_error("%s: %p (size %zu) not aligned to %zu", when, o->p, o->size, o->align);
    size_t u = malloc_usable_size(o->p);
    if (u < o->size)
        tu_error("%s: %p usable size %zu < size %zu", when, o->p, u, o->size);
    long bad = pat_check(o->p, o->size, SALT);
    if (bad >= 0)
        tu_error("%s: object %p of %zu bytes corrupted at offset %ld", when, o->p, o->size, bad);
}

static int new_obj(struct obj *o, uint64_t *rng, struct stats *st) {
    size_t n = pick_size(rng);
    unsigned m = (unsigned)(tu_rand(rng) % 100);
    void *p = NULL;
    size_t align = 16;
    if (m < 55) {
        p = malloc(n);
    } else if (m < 65) {
        p = calloc(1, n);
        if (p) {
            long nz = first_nonzero(p, n);
            if (nz >= 0)
                tu_error("calloc(1, %zu) = %p: byte %ld not zero", n, p, nz);
        }
    } else if (m < 80) {
        align = (size_t)16 << (tu_rand(rng) % 9); /* 16 .. 4096 */
        if (m < 70) {
            if (posix_memalign(&p, align, n))
                p = NULL;
        } else if (m < 75) {
            p = aligned_alloc(align, n);
        } else {
            p = memalign(align, n);
        }
        st->aligned++;
    } else if (m < 90) {
        p = realloc(NULL, n);
    } else if (m < 95) {
        p = gcm_malloc(n);
    } else {
        p = gcm_calloc(n, 1);
    }
    if (!p) {
        tu_error("allocation of %zu bytes (method %u) failed", n, m);
        return 0;
    }
    o->p = p;
    o->size = n;
    o->align = align;
    pat_fill(p, n, SALT);
    st->allocs++;
    if (n > 32768)
        st->large++;
    return 1;
}

static void do_realloc(struct obj *o, uint64_t *rng) {
    size_t n = pick_size(rng);
    uintptr_t old = addr_of(o->p);
    size_t oldn = o->size;
    void *q = (tu_rand(rng) & 1) ? realloc(o->p, n) : gcm_realloc(o->p, n);
    if (!q) {
        tu_error("realloc(%zu -> %zu) failed", oldn, n);
        return;
    }
    size_t keep = oldn < n ? oldn : n;
    long bad = pat_check_key(q, keep, old, oldn, SALT);
    if (bad >= 0)
        tu_error("realloc(%p, %zu -> %zu) = %p lost contents at offset %ld", (void *)old, oldn, n, q, bad);
    o->p = q;
    o->size = n;
    o->align = 16;
    pat_fill(q, n, SALT);
}

static int send_obj(unsigned to, const struct obj *o) { return inbox_send(&inboxes[to], o); }

static void drain_inbox(unsigned me, struct stats *st) {
    struct obj local[256];
    for (unsigned n; (n = inbox_take(&inboxes[me], local, 256)) != 0;) {
        for (unsigned i = 0; i < n; i++) {
            check_obj(&local[i], "remote free");
            free(local[i].p);
            st->remote_frees++;
        }
    }
}

static void *worker(void *arg) {
    unsigned me = (unsigned)(uintptr_t)arg;
    struct stats *st = &tstats[me];
    uint64_t rng = 0x9e3779b97f4a7c15ULL * (me + 1);
    struct obj *slots = calloc(SLOTS, sizeof *slots);
    if (!slots) {
        tu_error("calloc of the slot table failed");
        return NULL;
    }
    for (unsigned long op = 0; op < g_ops; op++) {
        st->ops++;
        if ((op & 63) == 0)
            drain_inbox(me, st);
        uint64_t r = tu_rand(&rng);
        struct obj *o = &slots[r % SLOTS];
        if (!o->p) {
            new_obj(o, &rng, st);
            continue;
        }
        check_obj(o, "before free/realloc");
        unsigned action = (unsigned)((r >> 20) % 100);
        if (action < 15) {
            do_realloc(o, &rng);
            st->reallocs++;
            continue;
        }
        if (action < 15 + 28) { /* a third of the frees: another thread */
            unsigned to = (me + 1 + (unsigned)((r >> 40) % (NTHREADS - 1))) % NTHREADS;
            if (send_obj(to, o)) {
                st->sent++;
                o->p = NULL;
                continue;
            }
        }
        free(o->p);
        o->p = NULL;
        st->local_frees++;
    }
    /* Everybody stops sending, then everybody empties its inbox and slots. */
    pthread_barrier_wait(&barrier);
    drain_inbox(me, st);
    for (unsigned k = 0; k < SLOTS; k++)
        if (slots[k].p) {
            check_obj(&slots[k], "final free");
            free(slots[k].p);
            st->local_frees++;
        }
    free(slots);
    return NULL;
}

static void run_stress(unsigned long ops) {
    g_ops = ops;
    memset(tstats, 0, sizeof tstats);
    for (int i = 0; i < NTHREADS; i++) {
        inbox_init(&inboxes[i]);
    }
    pthread_barrier_init(&barrier, NULL, NTHREADS);
    pthread_t t[NTHREADS];
    for (int i = 0; i < NTHREADS; i++)
        cr_assert_eq(pthread_create(&t[i], NULL, worker, (void *)(uintptr_t)i), 0);
    for (int i = 0; i < NTHREADS; i++)
        pthread_join(t[i], NULL);
    pthread_barrier_destroy(&barrier);
    cr_assert_eq(atomic_load(&tu_errors), 0, "%lu errors; first: %s", atomic_load(&tu_errors), tu_first_error);
    struct stats sum = {0};
    for (int i = 0; i < NTHREADS; i++) {
        sum.ops += tstats[i].ops;
        sum.allocs += tstats[i].allocs;
        sum.local_frees += tstats[i].local_frees;
        sum.remote_frees += tstats[i].remote_frees;
        sum.sent += tstats[i].sent;
        sum.reallocs += tstats[i].reallocs;
        sum.aligned += tstats[i].aligned;
        sum.large += tstats[i].large;
        cr_assert_eq(tstats[i].ops, ops);
    }
    /* Every object allocated was freed exactly once, and the mix is what
     * the test claims it is. */
    cr_assert_eq(sum.allocs, sum.local_frees + sum.remote_frees, "allocs %lu, frees %lu + %lu", sum.allocs,
                 sum.local_frees, sum.remote_frees);
    cr_assert_eq(sum.sent, sum.remote_frees);
    cr_assert_gt(sum.remote_frees * 5, sum.allocs, "only %lu of %lu frees were remote", sum.remote_frees,
                 sum.allocs);
    cr_assert_gt(sum.reallocs, 0);
    cr_assert_gt(sum.aligned, 0);
    cr_assert_gt(sum.large, 0);
}

Test(stress, eight_threads_mixed, .timeout = 240) {
    run_stress(400000);
}

/* After the threads are done and everything is freed, the heap is back where
 * it started: allocated_bytes within 2 MiB of the start, and after
 * malloc_trim(0) at most 16 MiB mapped but not allocated. */
Test(stress, memory_returns_after_threads, .timeout = 240) {
    struct gcm_stats a, b, c;
    gcm_get_stats(&a);
    run_stress(150000);
    gcm_get_stats(&b);
    cr_assert_leq(b.allocated_bytes, a.allocated_bytes + (2 << 20),
                  "allocated_bytes %zu after the stress, %zu before", b.allocated_bytes, a.allocated_bytes);
    int r = malloc_trim(0);
    cr_assert(r == 0 || r == 1);
    gcm_get_stats(&c);
    cr_assert_geq(c.mapped_bytes, c.allocated_bytes);
    cr_assert_leq(c.mapped_bytes - c.allocated_bytes, (size_t)16 << 20,
                  "after malloc_trim(0): mapped %zu, allocated %zu (peak mapped %zu)", c.mapped_bytes,
                  c.allocated_bytes, c.peak_mapped_bytes);
}

/* Producers only allocate, consumers only free: every free is remote. */
#define PC_PAIRS 4
#define PC_ITEMS 150000
struct pcq {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct obj ring[1024];
    unsigned head, count, done;
};
static struct pcq pcqs[PC_PAIRS];

static void *producer(void *arg) {
    struct pcq *q = &pcqs[(uintptr_t)arg];
    uint64_t rng = 1234567 + (uintptr_t)arg;
    struct stats st = {0};
    for (int i = 0; i < PC_ITEMS; i++) {
        struct obj o;
        if (!new_obj(&o, &rng, &st))
            continue;
        pthread_mutex_lock(&q->mu);
        while (q->count == 1024)
            pthread_cond_wait(&q->cv, &q->mu);
        q->ring[(q->head + q->count) % 1024] = o;
        q->count++;
        pthread_cond_broadcast(&q->cv);
        pthread_mutex_unlock(&q->mu);
    }
    pthread_mutex_lock(&q->mu);
    q->done = 1;
    pthread_cond_broadcast(&q->cv);
    pthread_mutex_unlock(&q->mu);
    return NULL;
}

static void *consumer(void *arg) {
    struct pcq *q = &pcqs[(uintptr_t)arg];
    unsigned long freed = 0;
    for (;;) {
        struct obj batch[64];
        unsigned n = 0;
        pthread_mutex_lock(&q->mu);
        while (q->count == 0 && !q->done)
            pthread_cond_wait(&q->cv, &q->mu);
        while (q->count && n < 64) {
            batch[n++] = q->ring[q->head];
            q->head = (q->head + 1) % 1024;
            q->count--;
        }
        int fin = q->done && q->count == 0;
        pthread_cond_broadcast(&q->cv);
        pthread_mutex_unlock(&q->mu);
        for (unsigned i = 0; i < n; i++) {
            check_obj(&batch[i], "consumer");
            free(batch[i].p);
            freed++;
        }
        if (fin && n == 0)
            break;
    }
    return (void *)(uintptr_t)freed;
}

Test(stress, producers_and_consumers, .timeout = 240) {
    struct gcm_stats a, b;
    gcm_get_stats(&a);
    pthread_t p[PC_PAIRS], c[PC_PAIRS];
    for (uintptr_t i = 0; i < PC_PAIRS; i++) {
        pthread_mutex_init(&pcqs[i].mu, NULL);
        pthread_cond_init(&pcqs[i].cv, NULL);
        cr_assert_eq(pthread_create(&p[i], NULL, producer, (void *)i), 0);
        cr_assert_eq(pthread_create(&c[i], NULL, consumer, (void *)i), 0);
    }
    unsigned long total = 0;
    for (int i = 0; i < PC_PAIRS; i++) {
        void *r;
        pthread_join(p[i], NULL);
        pthread_join(c[i], &r);
        total += (uintptr_t)r;
    }
    cr_assert_eq(atomic_load(&tu_errors), 0, "%lu errors; first: %s", atomic_load(&tu_errors), tu_first_error);
    cr_assert_eq(total, (unsigned long)PC_PAIRS * PC_ITEMS);
    gcm_get_stats(&b);
    cr_assert_leq(b.allocated_bytes, a.allocated_bytes + (2 << 20),
                  "allocated_bytes %zu after, %zu before", b.allocated_bytes, a.allocated_bytes);
}
