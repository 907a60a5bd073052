/*
 * Collect mode reclaims garbage; the statistics, modes and pacing.
 *
 *  - gigabytes of garbage with a small live set keep the RSS small, and the
 *    live set stays intact;
 *  - right after gcm_collect(), allocated_bytes is exact (it moves by exactly
 *    the usable sizes of what was allocated / freed, equals what the
 *    collection found live), gc_cycles counts the collections, gc_freed_*
 *    count the garbage;
 *  - off and leakcheck modes reclaim nothing (gcm_collect marks only), and
 *    never collect by themselves; a marking-only cycle between a collection
 *    and an owner's sweep leaves that sweep freeing the garbage, not the live;
 *  - gcm_set_gc_mode / gcm_get_gc_mode / gcm_set_gc_percent return values;
 *  - pacing: a negative percent means no automatic collection; 100 keeps
 *    the heap small; a smaller percent collects more often;
 *  - GCMALLOC_GC and GCMALLOC_GC_PERCENT at start-up (a compiled program
 *    under LD_PRELOAD).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdlib.h>
#include <string.h>

#include "gcutil.h"

/* ------------------------------------------------------------------ gigabytes */

#define LIVE_N 2048
static void *g_live[LIVE_N];
static size_t g_live_sz[LIVE_N];

GCT_NOINLINE static void live_replace(unsigned k, size_t n) {
    free(g_live[k]); /* explicit frees mixed in */
    g_live[k] = malloc(n);
    if (!g_live[k])
        CHILD_FAIL(91, "malloc(%zu)", n);
    g_live_sz[k] = n;
    pat_fill(g_live[k], n, k);
}

/* 3 GiB of garbage in objects of 16 B .. 256 KiB (every byte written), a
 * live set of ~2 MiB that keeps changing; the RSS must stay within 160 MiB
 * of where it started. */
GCT_NOINLINE static void garbage_burst(uint64_t *rng, size_t *made) {
    for (int i = 0; i < 256; i++) {
        uint64_t r = tu_rand(rng);
        unsigned c = (unsigned)(r % 100);
        size_t n = c < 70 ? (size_t)(r >> 8) % 256 + 16 : c < 95 ? (size_t)(r >> 8) % 8192 + 256
                                                               : (size_t)(r >> 8) % (256 * 1024) + 32769;
        char *p = malloc(n);
        if (!p)
            CHILD_FAIL(91, "malloc(%zu) failed after %zu MiB of garbage", n, *made >> 20);
        memset(p, (int)r, n);
        *made += n;
        __asm__ volatile("" : : "r"(p) : "memory");
    }
}

static void gigabytes_child(void *arg) {
    gct_collect_mode(100);
    uint64_t rng = 12345;
    for (unsigned k = 0; k < LIVE_N; k++)
        live_replace(k, (size_t)(tu_rand(&rng) % 2000) + 1);
    size_t rss0 = gct_rss(), maxrss = rss0, made = 0, next = 0;
    const size_t total = (size_t)3 << 30, limit = 160 * TU_MiB;
    uint64_t t0 = tu_now_ms();
    while (made < total) {
        garbage_burst(&rng, &made);
        live_replace((unsigned)(tu_rand(&rng) % LIVE_N), (size_t)(tu_rand(&rng) % 2000) + 1);
        if (made >= next) {
            next = made + 16 * TU_MiB;
            size_t rss = gct_rss();
            if (rss > maxrss)
                maxrss = rss;
            CHILD_CHECK(rss <= rss0 + limit, 50,
                        "RSS grew from %zu MiB to %zu MiB after %zu MiB of garbage (live set ~2 MiB)", rss0 >> 20,
                        rss >> 20, made >> 20);
            CHILD_CHECK(tu_now_ms() - t0 < 60000, 51, "too slow: %zu MiB of garbage in 60 s", made >> 20);
        }
    }
    for (unsigned k = 0; k < LIVE_N; k++) {
        long bad = pat_check(g_live[k], g_live_sz[k], k);
        CHILD_CHECK(bad < 0, 52, "live object %u (%zu bytes) overwritten at %ld", k, g_live_sz[k], bad);
        CHILD_CHECK(gcm_usable_size(g_live[k]) >= g_live_sz[k], 53, "live object %u: bad usable size", k);
    }
    struct gcm_stats s;
    gcm_get_stats(&s);
    CHILD_CHECK(s.gc_cycles >= 10, 54, "only %lu collections for 3 GiB of garbage", (unsigned long)s.gc_cycles);
    CHILD_CHECK(s.gc_freed_bytes >= total / 2, 55, "collections reclaimed %zu MiB of 3072 MiB garbage",
                s.gc_freed_bytes >> 20);
    dprintf(2, "rss %zu -> max %zu MiB, %lu collections, %zu MiB reclaimed, %lu ms\n", rss0 >> 20, maxrss >> 20,
            (unsigned long)s.gc_cycles, s.gc_freed_bytes >> 20, (unsigned long)(tu_now_ms() - t0));
}

Test(gc_reclaim, gigabytes_of_garbage_small_rss, .timeout = 120) {
    gct_run_child(gigabytes_child, NULL, 100);
}

/* ------------------------------------------------------------------ exact statistics */

#define K 1000
static void **g_arr;

GCT_NOINLINE static size_t make_rooted(size_t n) {
    g_arr = malloc(K * sizeof *g_arr);
    if (!g_arr)
        CHILD_FAIL(91, "malloc");
    size_t sum = gcm_usable_size(g_arr);
    for (int i = 0; i < K; i++) {
        g_arr[i] = malloc(n);
        if (!g_arr[i])
            CHILD_FAIL(91, "malloc");
        memset(g_arr[i], 7, n);
        sum += gcm_usable_size(g_arr[i]);
    }
    return sum;
}

GCT_NOINLINE static size_t free_half(void) {
    size_t sum = 0;
    for (int i = 0; i < K; i += 2) {
        sum += gcm_usable_size(g_arr[i]);
        free(g_arr[i]);
        g_arr[i] = NULL;
    }
    return sum;
}

GCT_NOINLINE static size_t unroot_half(void) {
    size_t sum = 0;
    for (int i = 1; i < K; i += 2) {
        sum += gcm_usable_size(g_arr[i]);
        g_arr[i] = NULL;
    }
    return sum;
}

static void stats_child(void *arg) {
    size_t n = (size_t)(uintptr_t)arg;
    gct_collect_mode(-1);
    struct gcm_stats s0, s1, s2, s3, s4;
    gct_clobber_stack();
    gcm_collect();
    gcm_get_stats(&s0);
    CHILD_CHECK(s0.allocated_bytes == s0.gc_last_live_bytes, 40,
                "right after gcm_collect: allocated_bytes %zu != gc_last_live_bytes %zu", s0.allocated_bytes,
                s0.gc_last_live_bytes);
    size_t rooted = make_rooted(n);
    gct_clobber_stack();
    gcm_collect();
    gcm_get_stats(&s1);
    CHILD_CHECK(s1.gc_cycles == s0.gc_cycles + 1, 41, "gc_cycles %lu -> %lu after one gcm_collect",
                (unsigned long)s0.gc_cycles, (unsigned long)s1.gc_cycles);
    CHILD_CHECK(s1.allocated_bytes == s0.allocated_bytes + rooted, 42,
                "allocated_bytes after collect: %zu, want %zu + %zu rooted = %zu (objects of %zu)",
                s1.allocated_bytes, s0.allocated_bytes, rooted, s0.allocated_bytes + rooted, n);
    CHILD_CHECK(s1.allocated_objects == s0.allocated_objects + K + 1, 43, "allocated_objects %zu -> %zu, want +%d",
                s0.allocated_objects, s1.allocated_objects, K + 1);
    CHILD_CHECK(s1.gc_freed_objects == s0.gc_freed_objects, 44,
                "a collection with no garbage freed %zu objects", s1.gc_freed_objects - s0.gc_freed_objects);
    /* Explicit free: counted at once (and not again by the collector). */
    size_t freed = free_half();
    gct_clobber_stack();
    gcm_collect();
    gcm_get_stats(&s2);
    CHILD_CHECK(s2.allocated_bytes == s1.allocated_bytes - freed, 45,
                "after freeing %zu bytes explicitly: allocated_bytes %zu, want %zu", freed, s2.allocated_bytes,
                s1.allocated_bytes - freed);
    CHILD_CHECK(s2.gc_freed_objects == s1.gc_freed_objects, 46,
                "the collector counted %zu explicitly freed objects as reclaimed",
                s2.gc_freed_objects - s1.gc_freed_objects);
    /* Dropped: reclaimed by the next collection, counted in gc_freed_*. */
    size_t dropped = unroot_half();
    gct_clobber_stack();
    gcm_collect();
    gcm_get_stats(&s3);
    size_t slack = 4 * (dropped / (K / 2)); /* a stale word or two may keep an object or two */
    CHILD_CHECK(s3.allocated_bytes + dropped <= s2.allocated_bytes + slack, 47,
                "%zu bytes dropped, allocated_bytes %zu -> %zu", dropped, s2.allocated_bytes, s3.allocated_bytes);
    CHILD_CHECK(s3.gc_freed_objects - s2.gc_freed_objects >= (size_t)K / 2 - 4, 48,
                "gc_freed_objects grew by %zu for %d dropped objects", s3.gc_freed_objects - s2.gc_freed_objects,
                K / 2);
    CHILD_CHECK(s3.gc_freed_bytes - s2.gc_freed_bytes == s2.allocated_bytes - s3.allocated_bytes, 49,
                "gc_freed_bytes grew by %zu, allocated_bytes fell by %zu", s3.gc_freed_bytes - s2.gc_freed_bytes,
                s2.allocated_bytes - s3.allocated_bytes);
    CHILD_CHECK(s3.allocated_bytes == s3.gc_last_live_bytes, 50, "allocated_bytes %zu != gc_last_live_bytes %zu",
                s3.allocated_bytes, s3.gc_last_live_bytes);
    CHILD_CHECK(s3.gc_pause_total_ns > 0 && s3.gc_pause_max_ns > 0 && s3.gc_pause_max_ns <= s3.gc_pause_total_ns,
                51, "pause figures: total %lu max %lu", (unsigned long)s3.gc_pause_total_ns,
                (unsigned long)s3.gc_pause_max_ns);
    /* Nothing changed: another collection changes nothing. */
    gct_clobber_stack();
    gcm_collect();
    gcm_get_stats(&s4);
    CHILD_CHECK(s4.allocated_bytes == s3.allocated_bytes && s4.gc_freed_objects == s3.gc_freed_objects, 52,
                "a second collection moved allocated_bytes %zu -> %zu", s3.allocated_bytes, s4.allocated_bytes);
}

Test(gc_reclaim, stats_exact_small_objects, .timeout = 60) {
    gct_run_child(stats_child, (void *)(uintptr_t)100, 50);
}
Test(gc_reclaim, stats_exact_medium_objects, .timeout = 60) {
    gct_run_child(stats_child, (void *)(uintptr_t)5000, 50);
}
Test(gc_reclaim, stats_exact_large_objects, .timeout = 60) {
    gct_run_child(stats_child, (void *)(uintptr_t)70000, 50);
}

/* ------------------------------------------------------------------ modes */

GCT_NOINLINE static void garbage_mb(size_t mb) {
    gct_garbage(mb * 1024 * 1024 / 1024, 1024);
}

static void no_reclaim_child(void *arg) {
    int mode = (int)(uintptr_t)arg;
    gcm_set_gc_percent(100);
    if (mode != GCM_GC_OFF && gcm_set_gc_mode(mode) < 0)
        CHILD_FAIL(92, "gcm_set_gc_mode(%d)", mode);
    CHILD_CHECK(gcm_get_gc_mode() == mode, 30, "mode %d, want %d", gcm_get_gc_mode(), mode);
    struct gcm_stats a, b, c;
    gcm_get_stats(&a);
    garbage_mb(64);
    gct_clobber_stack();
    gcm_get_stats(&b);
    CHILD_CHECK(b.gc_cycles == a.gc_cycles, 31, "mode %d: %lu automatic collections", mode,
                (unsigned long)(b.gc_cycles - a.gc_cycles));
    CHILD_CHECK(b.allocated_bytes >= a.allocated_bytes + 60 * TU_MiB, 32,
                "mode %d: allocated_bytes grew by %zu only for 64 MiB never freed", mode,
                b.allocated_bytes - a.allocated_bytes);
    gcm_collect();
    gcm_get_stats(&c);
    CHILD_CHECK(c.gc_cycles == b.gc_cycles + 1, 33, "mode %d: gcm_collect did not count a cycle", mode);
    CHILD_CHECK(c.allocated_bytes == b.allocated_bytes, 34,
                "mode %d: gcm_collect freed something (allocated_bytes %zu -> %zu)", mode, b.allocated_bytes,
                c.allocated_bytes);
    CHILD_CHECK(c.gc_freed_objects == b.gc_freed_objects, 35, "mode %d: gcm_collect counted %zu freed objects",
                mode, c.gc_freed_objects - b.gc_freed_objects);
    CHILD_CHECK(c.gc_last_live_bytes < b.allocated_bytes - 60 * TU_MiB, 36,
                "mode %d: the marking found %zu bytes live of %zu allocated (64 MiB unreachable)", mode,
                c.gc_last_live_bytes, c.allocated_bytes);
}

Test(gc_reclaim, off_mode_reclaims_nothing, .timeout = 60) {
    cr_assert_eq(gcm_get_gc_mode(), GCM_GC_OFF, "the default mode is %d", gcm_get_gc_mode());
    gct_run_child(no_reclaim_child, (void *)(uintptr_t)GCM_GC_OFF, 50);
}

Test(gc_reclaim, leakcheck_mode_reclaims_nothing, .timeout = 60) {
    gct_run_child(no_reclaim_child, (void *)(uintptr_t)GCM_GC_LEAKCHECK, 50);
}

/* A cycle that only marks (the leak check, or gcm_collect outside collect
 * mode) between a collection and the owner's sweep of its spans: the owner's
 * later sweep must free the garbage of the collection, never what the
 * marking-only cycle found live. A worker owns the spans: it keeps the odd
 * objects of 256 B (in g_unswept) and drops the even ones, then waits while
 * the main thread collects and runs the marking-only cycle; woken, it
 * allocates the same class again, which sweeps its spans. */
#define UNSWEPT_N 512
#define UNSWEPT_SIZE 256
static void *g_unswept[UNSWEPT_N];
static sem_t g_unswept_made, g_unswept_go;

GCT_NOINLINE static void unswept_make(void) {
    for (unsigned i = 0; i < UNSWEPT_N; i++) {
        void *p = malloc(UNSWEPT_SIZE);
        if (!p)
            CHILD_FAIL(91, "malloc(%d)", UNSWEPT_SIZE);
        pat_fill(p, UNSWEPT_SIZE, i);
        g_unswept[i] = i & 1 ? p : NULL;
    }
}

static void *unswept_worker(void *arg) {
    (void)arg;
    unswept_make();
    gct_clobber_stack();
    sem_post(&g_unswept_made);
    while (sem_wait(&g_unswept_go) != 0) {
    }
    for (unsigned i = 0; i < 4 * UNSWEPT_N; i++) {
        char *p = malloc(UNSWEPT_SIZE);
        if (!p)
            CHILD_FAIL(91, "malloc(%d)", UNSWEPT_SIZE);
        for (unsigned k = 1; k < UNSWEPT_N; k += 2)
            if (p == g_unswept[k])
                CHILD_FAIL(40, "malloc #%u returned %p, live object %u, after a marking-only cycle", i, (void *)p, k);
        memset(p, 0xee, UNSWEPT_SIZE);
    }
    return NULL;
}

static void unswept_child(void *arg) {
    int leakcheck = (int)(uintptr_t)arg;
    gct_collect_mode(-1);
    sem_init(&g_unswept_made, 0, 0);
    sem_init(&g_unswept_go, 0, 0);
    pthread_t th;
    if (pthread_create(&th, NULL, unswept_worker, NULL))
        CHILD_FAIL(94, "pthread_create");
    while (sem_wait(&g_unswept_made) != 0) {
    }
    struct gcm_stats a, b;
    gcm_get_stats(&a);
    gct_clobber_stack();
    gcm_collect(); /* records the even objects as garbage of the worker's spans, unswept */
    if (leakcheck) {
        int fd = open("/dev/null", O_WRONLY);
        size_t leaks = gcm_leakcheck(fd);
        close(fd);
        /* The collection reclaimed every unreachable object: what it has not swept yet is no leak. */
        CHILD_CHECK(leaks == 0, 44, "the leak check right after a collection found %zu leaks", leaks);
    } else {
        gcm_set_gc_mode(GCM_GC_OFF);
        gcm_collect();
    }
    gcm_get_stats(&b);
    CHILD_CHECK(b.gc_cycles == a.gc_cycles + 2, 41, "%lu cycles, want 2", (unsigned long)(b.gc_cycles - a.gc_cycles));
    CHILD_CHECK(a.allocated_bytes - b.allocated_bytes >= UNSWEPT_N / 2 * UNSWEPT_SIZE * 9 / 10, 42,
                "allocated_bytes fell by %zd only, for %d garbage objects of %d B", (ssize_t)(a.allocated_bytes - b.allocated_bytes),
                UNSWEPT_N / 2, UNSWEPT_SIZE);
    sem_post(&g_unswept_go);
    pthread_join(th, NULL);
    for (unsigned k = 1; k < UNSWEPT_N; k += 2)
        CHILD_CHECK(pat_check(g_unswept[k], UNSWEPT_SIZE, k) < 0, 43, "live object %u overwritten", k);
}

Test(gc_reclaim, leakcheck_between_collection_and_sweep, .timeout = 60) {
    gct_run_child(unswept_child, (void *)(uintptr_t)1, 50);
}

Test(gc_reclaim, mark_only_collect_between_collection_and_sweep, .timeout = 60) {
    gct_run_child(unswept_child, (void *)(uintptr_t)0, 50);
}

static void mode_api_child(void *arg) {
    CHILD_CHECK(gcm_set_gc_mode(GCM_GC_COLLECT) == GCM_GC_OFF, 20, "set collect did not return off");
    CHILD_CHECK(gcm_get_gc_mode() == GCM_GC_COLLECT, 21, "get != collect");
    CHILD_CHECK(gcm_set_gc_mode(GCM_GC_LEAKCHECK) == GCM_GC_COLLECT, 22, "set leakcheck did not return collect");
    errno = 0;
    CHILD_CHECK(gcm_set_gc_mode(3) == -1 && errno == EINVAL, 23, "set_gc_mode(3) accepted (errno %d)", errno);
    errno = 0;
    CHILD_CHECK(gcm_set_gc_mode(-1) == -1 && errno == EINVAL, 24, "set_gc_mode(-1) accepted (errno %d)", errno);
    CHILD_CHECK(gcm_get_gc_mode() == GCM_GC_LEAKCHECK, 25, "a bad mode changed the mode");
    CHILD_CHECK(gcm_set_gc_mode(GCM_GC_OFF) == GCM_GC_LEAKCHECK, 26, "set off did not return leakcheck");
    CHILD_CHECK(gcm_set_gc_percent(50) == 100, 27, "the default percent is not 100");
    CHILD_CHECK(gcm_set_gc_percent(-1) == 50, 28, "set_gc_percent did not return 50");
    CHILD_CHECK(gcm_set_gc_percent(100) == -1, 29, "set_gc_percent did not return -1");
}

Test(gc_reclaim, mode_and_percent_api, .timeout = 30) {
    gct_run_child(mode_api_child, NULL, 20);
}

/* ------------------------------------------------------------------ pacing */

static void pacing_child(void *arg) {
    gct_collect_mode(-1);
    struct gcm_stats a, b, c, d;
    gct_clobber_stack();
    gcm_collect();
    gcm_get_stats(&a);
    garbage_mb(128);
    gcm_get_stats(&b);
    CHILD_CHECK(b.gc_cycles == a.gc_cycles, 10, "percent -1: %lu automatic collections",
                (unsigned long)(b.gc_cycles - a.gc_cycles));
    CHILD_CHECK(b.allocated_bytes >= a.allocated_bytes + 120 * TU_MiB, 11,
                "percent -1: 128 MiB of garbage, allocated_bytes grew by %zu only (reclaimed without collections?)",
                b.allocated_bytes - a.allocated_bytes);
    CHILD_CHECK(gcm_set_gc_percent(100) == -1, 12, "set_gc_percent did not return -1");
    gct_clobber_stack();
    gcm_collect();
    gcm_get_stats(&b);
    garbage_mb(256);
    gcm_get_stats(&c);
    CHILD_CHECK(c.gc_cycles >= b.gc_cycles + 2, 13, "percent 100: %lu collections during 256 MiB of garbage",
                (unsigned long)(c.gc_cycles - b.gc_cycles));
    CHILD_CHECK(c.allocated_bytes <= b.allocated_bytes + 64 * TU_MiB, 14,
                "percent 100: allocated_bytes %zu -> %zu during 256 MiB of garbage", b.allocated_bytes,
                c.allocated_bytes);
    /* A small live set of 16 MiB: percent 10 collects more often than 400. */
    static void *live[16 * 64];
    for (int i = 0; i < 16 * 64; i++) {
        live[i] = malloc(16384);
        if (!live[i])
            CHILD_FAIL(91, "malloc");
        memset(live[i], 1, 16384);
    }
    gcm_set_gc_percent(400);
    gcm_collect();
    gcm_get_stats(&c);
    garbage_mb(256);
    gcm_get_stats(&d);
    uint64_t at400 = d.gc_cycles - c.gc_cycles;
    gcm_set_gc_percent(10);
    gcm_collect();
    gcm_get_stats(&c);
    garbage_mb(256);
    gcm_get_stats(&d);
    uint64_t at10 = d.gc_cycles - c.gc_cycles;
    CHILD_CHECK(at10 > 2 * at400, 15, "256 MiB of garbage over a 16 MiB live set: %lu collections at 10%%, %lu at 400%%",
                (unsigned long)at10, (unsigned long)at400);
    CHILD_CHECK(at400 >= 2, 16, "only %lu collections at 400%% (256 MiB over 16 MiB live)", (unsigned long)at400);
    for (int i = 0; i < 16 * 64; i++)
        CHILD_CHECK(((unsigned char *)live[i])[16383] == 1, 17, "live block %d changed", i);
}

Test(gc_reclaim, pacing, .timeout = 60) {
    gct_run_child(pacing_child, NULL, 50);
}

/* The percent set while the mode is still off holds once collect mode is
 * turned on. */
static void percent_first_child(void *arg) {
    if (gcm_set_gc_percent(-1) != 100)
        CHILD_FAIL(10, "the default percent is not 100");
    if (gcm_set_gc_mode(GCM_GC_COLLECT) != GCM_GC_OFF)
        CHILD_FAIL(11, "the mode was not off");
    struct gcm_stats a, b;
    gcm_get_stats(&a);
    garbage_mb(64);
    gcm_get_stats(&b);
    CHILD_CHECK(b.gc_cycles == a.gc_cycles, 12,
                "gcm_set_gc_percent(-1) then gcm_set_gc_mode(GCM_GC_COLLECT): %lu automatic collections during "
                "64 MiB of garbage",
                (unsigned long)(b.gc_cycles - a.gc_cycles));
}

Test(gc_reclaim, percent_set_before_collect_mode_holds, .timeout = 60) {
    gct_run_child(percent_first_child, NULL, 50);
}

/* ------------------------------------------------------------------ environment */

static const char env_src[] =
    "#include <dlfcn.h>\n"
    "#include <stdio.h>\n"
    "#include <stdlib.h>\n"
    "int main(void) {\n"
    "    int (*get_mode)(void) = (int (*)(void))dlsym(RTLD_DEFAULT, \"gcm_get_gc_mode\");\n"
    "    int (*set_pct)(int) = (int (*)(int))dlsym(RTLD_DEFAULT, \"gcm_set_gc_percent\");\n"
    "    if (!get_mode || !set_pct) { printf(\"no gcm_ functions\\n\"); return 2; }\n"
    "    free(malloc(10));\n"
    "    printf(\"mode=%d percent=%d\\n\", get_mode(), set_pct(100));\n"
    "    return 0;\n"
    "}\n";

static void check_env(const char *prog, const char *gc, const char *pct, const char *want, int want_warning) {
    const char *env[3] = {NULL, NULL, NULL};
    char e1[64], e2[64];
    int k = 0;
    if (gc) {
        snprintf(e1, sizeof e1, "GCMALLOC_GC=%s", gc);
        env[k++] = e1;
    }
    if (pct) {
        snprintf(e2, sizeof e2, "GCMALLOC_GC_PERCENT=%s", pct);
        env[k++] = e2;
    }
    const char *argv[] = {prog, NULL};
    struct run_result r;
    cr_assert_eq(run_cmd(argv, GCM_LIB, env, NULL, 30, &r), 0, "timed out");
    cr_assert(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0, "GCMALLOC_GC=%s GCMALLOC_GC_PERCENT=%s: %s %s",
              gc ? gc : "(unset)", pct ? pct : "(unset)", r.out, r.err);
    cr_assert_str_eq(r.out, want, "GCMALLOC_GC=%s GCMALLOC_GC_PERCENT=%s: printed %s, want %s (stderr: %s)",
                     gc ? gc : "(unset)", pct ? pct : "(unset)", r.out, want, r.err);
    if (want_warning)
        cr_assert_not_null(strstr(r.err, want_warning == 1 ? "GCMALLOC_GC=" : "GCMALLOC_GC_PERCENT="),
                           "no warning for a bad value: stderr: %s", r.err);
    else if (gc && strcmp(gc, "leakcheck") == 0)
        /* No leak: no report, or a report of none. */
        cr_assert(r.err_len == 0 || strncmp(r.err, "gcmalloc: leaks: 0 objects, 0 bytes\n", 36) == 0,
                  "unexpected stderr: %s", r.err);
    else
        cr_assert_eq(r.err_len, 0, "unexpected stderr: %s", r.err);
    run_result_free(&r);
}

Test(gc_reclaim, environment_variables, .timeout = 60) {
    const char *prog = gct_compile("gct_env", env_src, 0, NULL);
    check_env(prog, NULL, NULL, "mode=0 percent=100\n", 0);
    check_env(prog, "off", NULL, "mode=0 percent=100\n", 0);
    check_env(prog, "collect", NULL, "mode=1 percent=100\n", 0);
    check_env(prog, "leakcheck", NULL, "mode=2 percent=100\n", 0);
    check_env(prog, "collect", "50", "mode=1 percent=50\n", 0);
    check_env(prog, "collect", "-1", "mode=1 percent=-1\n", 0);
    check_env(prog, "bogus", NULL, "mode=0 percent=100\n", 1);
}
