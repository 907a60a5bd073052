/*
 * RSS after a program frees its heap (issue #5): back within 10% of its
 * floor within 1 second, while the program is idle.
 *
 * The child keeps a live set of 32 MiB, builds a transient heap of ~270 MiB
 * on top of it (a million small objects of the classes up to 256 B and 256
 * large ones of 64 KiB to 1 MiB, interleaved, every byte written), frees the
 * transient heap in the order it was built, and then makes no call into the
 * allocator for a second: nothing but the frees themselves can have given
 * the memory back. Its floor is what the allocator keeps by design for that
 * live set: the RSS after malloc_trim(0) (every free page released) plus the
 * scavenger's retained floor, max(4 MiB, in-use / 8) (docs/design.md,
 * "Scavenging"). The RSS one second after the last free must be within 10%
 * of that.
 *
 * Two programs: one whose worker thread built the heap and exited (its
 * cached spans went back to the mcentrals, the main thread's frees are
 * remote), and one thread doing everything. The single thread frees the
 * last objects into spans its mcache still owns, which it keeps, emptied,
 * until it allocates again (mcache_retired_slots + 1 per class, 32 + 1 for the
 * one-page spans of these classes: noticing that a
 * span became empty would cost the free fast path a test); that is allowed
 * on top of the 10%.
 */
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <malloc.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "gcutil.h"
#include "alloc/mcache.h"
#include "alloc/sizeclass.h"

#define LIVE_BYTES (32 * TU_MiB)
#define SMALL_MAX 256
#define SMALL_N 1000000
#define LARGE_N 256

static void *live[1 << 16];
static void *small[SMALL_N];
static void *large[LARGE_N];

static void *filled(size_t n, uint64_t r) {
    char *p = malloc(n);
    CHILD_CHECK(p, 90, "malloc(%zu) failed", n);
    memset(p, (int)r, n);
    return p;
}

static size_t build_live(uint64_t *rng) {
    size_t n = 0;
    for (size_t made = 0; made < LIVE_BYTES; n++) {
        uint64_t r = tu_rand(rng);
        size_t len = r % 4 ? (size_t)(r >> 8) % 1024 + 16 : (size_t)(r >> 8) % (64 * TU_KiB) + 1024;
        live[n] = filled(len, r);
        made += len;
    }
    return n;
}

static bool large_turn(size_t i) { return i % (SMALL_N / LARGE_N) == 0 && i / (SMALL_N / LARGE_N) < LARGE_N; }

static void *build_heap(void *arg) {
    uint64_t rng = *(uint64_t *)arg;
    for (size_t i = 0; i < SMALL_N; i++) {
        uint64_t r = tu_rand(&rng);
        small[i] = filled((size_t)(r >> 8) % SMALL_MAX + 1, r);
        if (large_turn(i))
            large[i / (SMALL_N / LARGE_N)] = filled((size_t)(r >> 12) % (960 * TU_KiB) + 64 * TU_KiB, r);
    }
    return NULL;
}

/* The spans a thread's mcache may keep after it freed objects of every
 * class up to SMALL_MAX (one-page spans). */
static size_t cached_spans_bytes(void) {
    size_t classes = gcm_size_class(SMALL_MAX);
    for (unsigned c = 1; c <= classes; c++)
        CHILD_CHECK(gcm_class_npages[c] == 1, 93, "class %u has %u-page spans", c, gcm_class_npages[c]);
    size_t spans = 0;
    for (unsigned c = 1; c <= classes; c++) spans += mcache_retired_slots(gcm_span_class(c, false)) + 1u;
    return spans * GCM_PAGE_SIZE;
}

static void free_heap_then_idle(void *arg) {
    bool worker = arg != NULL;
    uint64_t rng = 7;
    size_t live_n = build_live(&rng);
    if (worker) {
        pthread_t t;
        CHILD_CHECK(pthread_create(&t, NULL, build_heap, &rng) == 0, 94, "pthread_create");
        pthread_join(t, NULL);
    } else {
        build_heap(&rng);
    }
    size_t peak = gct_rss();
    for (size_t i = 0; i < SMALL_N; i++) {
        free(small[i]);
        if (large_turn(i))
            free(large[i / (SMALL_N / LARGE_N)]);
    }
    /* Idle: sleep and read /proc only. */
    size_t at[11];
    for (int k = 0; k <= 10; k++) {
        at[k] = gct_rss();
        if (k < 10)
            tu_sleep_ms(100);
    }
    malloc_trim(0);
    struct gcm_stats st;
    gcm_get_stats(&st);
    size_t keep = st.allocated_bytes / 8 > 4 * TU_MiB ? st.allocated_bytes / 8 : 4 * TU_MiB;
    size_t floor = gct_rss() + keep, allowed = floor + floor / 10 + (worker ? 0 : cached_spans_bytes());
    CHILD_CHECK(peak > floor + 200 * TU_MiB, 91, "the transient heap was not built: peak RSS %zu MiB, floor %zu MiB",
                peak >> 20, floor >> 20);
    dprintf(2, "peak %zu MiB, floor %zu KiB (live %zu MiB), allowed %zu KiB; RSS after the frees %zu KiB, 0.5 s %zu KiB, 1 s %zu KiB\n",
            peak >> 20, floor >> 10, st.allocated_bytes >> 20, allowed >> 10, at[0] >> 10, at[5] >> 10, at[10] >> 10);
    CHILD_CHECK(at[10] <= allowed, 92,
                "1 s after freeing its heap the idle program holds %zu KiB, more than its floor %zu KiB allows (%zu KiB); "
                "right after the frees %zu KiB",
                at[10] >> 10, floor >> 10, allowed >> 10, at[0] >> 10);
    for (size_t i = 0; i < live_n; i++)
        free(live[i]);
}

Test(rss_after_free, a_heap_built_by_a_worker_thread) {
    cr_log_info("%s", gct_run_child_err(free_heap_then_idle, "worker", 120, "free_heap_then_idle"));
}

Test(rss_after_free, a_single_thread) {
    cr_log_info("%s", gct_run_child_err(free_heap_then_idle, NULL, 120, "free_heap_then_idle"));
}
