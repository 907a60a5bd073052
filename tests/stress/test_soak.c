/*
 * Soak: 8 threads for GCM_SOAK_SECONDS seconds (default 60; 600 by hand:
 * `GCM_SOAK_SECONDS=600 build/tests/stress_test_soak`) of random sizes from
 * 1 B to 4 MiB (mostly small), malloc / calloc / aligned allocations /
 * realloc, a third of the frees done by another thread (handed over through
 * per-thread inboxes). Every object is filled with a pattern derived from its
 * address and size and checked in full before it is reallocated or freed.
 *
 * Memory stays bounded. The main thread samples, every 50 ms, the bytes the
 * program holds (sum of usable sizes, kept by the workers) and the process's
 * RSS, and requires at every sample
 *      RSS <= baseline RSS + 2 x (peak live bytes so far) + 64 MiB
 * (a heap that leaked or never reused memory would grow past it within
 * seconds), and at the end, after every object is freed and malloc_trim(0),
 *      RSS <= baseline RSS + 64 MiB  and  allocated_bytes back at its start.
 * Under TSan (sanitizer builds) RSS includes the shadow memory and is not
 * bounded; gcmalloc's own mapped_bytes (held from the OS, not released) is bounded the same way in
 * every build.
 *
 * It prints one line with the figures (seconds, operations, peak live
 * bytes, peak RSS) on stderr.
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
#define INBOX_CAP 2048
#define SALT 0x50a4
#define SLACK ((size_t)64 << 20)

#if defined(__SANITIZE_THREAD__)
#define RSS_BOUNDED 0
#else
#define RSS_BOUNDED 1
#endif

struct obj {
    void *p;
    size_t size, align, usable;
};

#include "inbox.h"

static struct inbox inboxes[NTHREADS];
static atomic_int stop;
static atomic_long live_bytes; /* sum of usable sizes of the objects the threads hold */
static atomic_ulong total_ops;


static size_t rss_bytes(void) {
    char buf[256];
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f)
        return 0;
    unsigned long size = 0, res = 0;
    if (!fgets(buf, sizeof buf, f) || sscanf(buf, "%lu %lu", &size, &res) != 2)
        res = 0;
    fclose(f);
    return (size_t)res * (size_t)sysconf(_SC_PAGESIZE);
}

static size_t pick_size(uint64_t *rng) {
    uint64_t r = tu_rand(rng);
    unsigned k = (unsigned)(r % 10000);
    r >>= 14;
    if (k < 15) /* 0.15 %: 1 .. 4 MiB */
        return TU_MiB + (size_t)(r % (3 * TU_MiB + 1));
    if (k < 100) /* 0.85 %: 32 KiB .. 1 MiB */
        return 32768 + (size_t)(r % (TU_MiB - 32768 + 1));
    if (k < 700) /* 6 %: 1 .. 32 KiB */
        return 1024 + (size_t)(r % (32768 - 1024 + 1));
    if (k < 5000) /* 43 %: 1 .. 64 B */
        return 1 + (size_t)(r % 64);
    return 1 + (size_t)(r % 1024); /* 50 %: up to 1 KiB */
}

static void check_obj(const struct obj *o, const char *when) {
    if (((uintptr_t)o->p & (o->align - 1)) != 0)
        tu_error("%s: %p (size %zu) not aligned to %zu", when, o->p, o->size, o->align);
    size_t u = malloc_usable_size(o->p);
    if (u != o->usable)
        tu_error("%s: %p usable size changed from %zu to %zu", when, o->p, o->usable, u);
    long bad = pat_check(o->p, o->size, SALT);
    if (bad >= 0)
        tu_error("%s: object %p of %zu bytes corrupted at offset %ld", when, o->p, o->size, bad);
}

static void adopt(struct obj *o, void *p, size_t n, size_t align) {
    o->p = p;
    o->size = n;
    o->align = align;
    o->usable = malloc_usable_size(p);
    if (o->usable < n)
        tu_error("%p: usable size %zu < %zu", p, o->usable, n);
    atomic_fetch_add_explicit(&live_bytes, (long)o->usable, memory_order_relaxed);
    pat_fill(p, n, SALT);
}

static void drop(struct obj *o) {
    atomic_fetch_sub_explicit(&live_bytes, (long)o->usable, memory_order_relaxed);
    free(o->p);
    o->p = NULL;
}

static void new_obj(struct obj *o, uint64_t *rng) {
    size_t n = pick_size(rng), align = 16;
    unsigned m = (unsigned)(tu_rand(rng) % 100);
    void *p = NULL;
    if (m < 60) {
        p = malloc(n);
    } else if (m < 70) {
        p = calloc(1, n);
        if (p && n <= 65536) {
            long nz = first_nonzero(p, n);
            if (nz >= 0)
                tu_error("calloc(1, %zu) = %p: byte %ld not zero", n, p, nz);
        }
    } else if (m < 85) {
        align = (size_t)16 << (tu_rand(rng) % 13); /* 16 B .. 64 KiB */
        if (m < 75) {
            if (posix_memalign(&p, align, n))
                p = NULL;
        } else if (m < 80) {
            p = aligned_alloc(align, n);
        } else {
            p = memalign(align, n);
        }
    } else {
        p = gcm_malloc(n);
    }
    if (!p) {
        tu_error("allocation of %zu bytes (method %u) failed", n, m);
        return;
    }
    adopt(o, p, n, align);
}

static void do_realloc(struct obj *o, uint64_t *rng) {
    size_t n = pick_size(rng);
    uintptr_t old = addr_of(o->p);
    size_t oldn = o->size;
    atomic_fetch_sub_explicit(&live_bytes, (long)o->usable, memory_order_relaxed);
    void *q = realloc(o->p, n);
    if (!q) {
        tu_error("realloc(%zu -> %zu) failed", oldn, n);
        o->p = NULL;
        return;
    }
    size_t keep = oldn < n ? oldn : n;
    long bad = pat_check_key(q, keep, old, oldn, SALT);
    if (bad >= 0)
        tu_error("realloc(%p, %zu -> %zu) = %p lost contents at offset %ld", (void *)old, oldn, n, q, bad);
    adopt(o, q, n, 16);
}

static int send_obj(unsigned to, const struct obj *o) { return inbox_send(&inboxes[to], o); }

static void drain_inbox(unsigned me) {
    struct obj local[128];
    for (unsigned n; (n = inbox_take(&inboxes[me], local, 128)) != 0;) {
        for (unsigned i = 0; i < n; i++) {
            check_obj(&local[i], "remote free");
            drop(&local[i]);
        }
    }
}

static void *worker(void *arg) {
    unsigned me = (unsigned)(uintptr_t)arg;
    uint64_t rng = 0x243f6a8885a308d3ULL * (me + 1) + (uint64_t)time(NULL);
    struct obj *slots = calloc(SLOTS, sizeof *slots);
    if (!slots) {
        tu_error("calloc of the slot table failed");
        return NULL;
    }
    unsigned long ops = 0;
    while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
        ops++;
        if ((ops & 63) == 0) {
            drain_inbox(me);
            atomic_fetch_add_explicit(&total_ops, 64, memory_order_relaxed);
        }
        uint64_t r = tu_rand(&rng);
        struct obj *o = &slots[r % SLOTS];
        if (!o->p) {
            new_obj(o, &rng);
            continue;
        }
        check_obj(o, "before free/realloc");
        unsigned action = (unsigned)((r >> 20) % 100);
        if (action < 15) {
            do_realloc(o, &rng);
        } else if (action < 15 + 28) {
            unsigned to = (me + 1 + (unsigned)((r >> 40) % (NTHREADS - 1))) % NTHREADS;
            if (send_obj(to, o))
                o->p = NULL;
            else
                drop(o);
        } else {
            drop(o);
        }
    }
    for (unsigned i = 0; i < SLOTS; i++)
        if (slots[i].p) {
            check_obj(&slots[i], "at the end");
            drop(&slots[i]);
        }
    free(slots);
    return NULL;
}

static unsigned soak_seconds(void) {
    const char *s = getenv("GCM_SOAK_SECONDS");
    long v = s ? strtol(s, NULL, 10) : 60;
    return v > 0 ? (unsigned)v : 60;
}

Test(soak, eight_threads_bounded_memory, .timeout = 7200) {
    unsigned secs = soak_seconds();
    for (int i = 0; i < NTHREADS; i++)
        inbox_init(&inboxes[i]);
    malloc_trim(0);
    struct gcm_stats st0, st;
    gcm_get_stats(&st0);
    size_t rss0 = rss_bytes(), heap0 = st0.mapped_bytes;
    pthread_t t[NTHREADS];
    for (int i = 0; i < NTHREADS; i++)
        cr_assert_eq(pthread_create(&t[i], NULL, worker, (void *)(uintptr_t)i), 0);
    uint64_t start = tu_now_ms(), end = start + (uint64_t)secs * 1000;
    long peak_live = 0;
    size_t peak_rss = 0, peak_heap = 0, samples = 0;
    char fail[512] = "";
    while (tu_now_ms() < end && !fail[0] && atomic_load(&tu_errors) == 0) {
        tu_sleep_ms(50);
        long live = atomic_load(&live_bytes);
        if (live > peak_live)
            peak_live = live;
        size_t rss = rss_bytes();
        gcm_get_stats(&st);
        size_t heap = st.mapped_bytes;
        if (rss > peak_rss)
            peak_rss = rss;
        if (heap > peak_heap)
            peak_heap = heap;
        samples++;
        size_t bound = 2 * (size_t)peak_live + SLACK;
        if (RSS_BOUNDED && rss > rss0 + bound)
            snprintf(fail, sizeof fail, "after %.1f s: RSS %zu MiB > baseline %zu MiB + 2 x peak live %ld MiB + 64 MiB",
                     (double)(tu_now_ms() - start) / 1000, rss >> 20, rss0 >> 20, peak_live >> 20);
        else if (heap > heap0 + bound)
            snprintf(fail, sizeof fail,
                     "after %.1f s: heap (mapped_bytes) %zu MiB > start %zu MiB + 2 x peak live %ld MiB + 64 MiB",
                     (double)(tu_now_ms() - start) / 1000, heap >> 20, heap0 >> 20, peak_live >> 20);
    }
    atomic_store(&stop, 1);
    for (int i = 0; i < NTHREADS; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < NTHREADS; i++)
        drain_inbox((unsigned)i);
    double took = (double)(tu_now_ms() - start) / 1000;
    cr_assert_eq(atomic_load(&tu_errors), 0, "%lu errors; first: %s", atomic_load(&tu_errors), tu_first_error);
    cr_assert(!fail[0], "%s", fail);
    cr_assert_eq(atomic_load(&live_bytes), 0, "model: %ld bytes still live", atomic_load(&live_bytes));
    malloc_trim(0);
    gcm_get_stats(&st);
    size_t rss_end = rss_bytes();
    fprintf(stderr,
            "soak: %.1f s, 8 threads, %lu operations (%.0f/s), peak live %ld MiB, peak RSS %zu MiB (baseline %zu MiB),"
            " peak heap %zu MiB, after trim: RSS %zu MiB, allocated %zu bytes (start %zu), %zu samples\n",
            took, atomic_load(&total_ops), (double)atomic_load(&total_ops) / took, peak_live >> 20, peak_rss >> 20,
            rss0 >> 20, peak_heap >> 20, rss_end >> 20, st.allocated_bytes, st0.allocated_bytes, samples);
    cr_assert_leq(st.allocated_bytes, st0.allocated_bytes + 65536,
                  "allocated_bytes %zu after freeing everything, %zu at the start", st.allocated_bytes,
                  st0.allocated_bytes);
    if (RSS_BOUNDED)
        cr_assert_leq(rss_end, rss0 + SLACK, "RSS %zu MiB after freeing everything and malloc_trim(0), baseline %zu MiB",
                      rss_end >> 20, rss0 >> 20);
    cr_assert_leq(st.mapped_bytes, heap0 + SLACK, "heap holds %zu MiB after malloc_trim(0)",
                  st.mapped_bytes >> 20);
}
