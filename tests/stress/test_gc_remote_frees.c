/*
 * Frees from other threads while the collector runs (issue #4: the "lost
 * live object" of collect mode).
 *
 * An object freed by a thread that does not own its span waits on the span's
 * remote-free list until the owner merges it; nothing points to it
 * meanwhile. The owner's sweep merges that list and then frees the garbage
 * of the last collection. A collection that stopped the owner between the
 * two, after other threads had pushed more frees, once counted those objects
 * as garbage: the sweep freed them, their slots were handed out again, and
 * the merge that followed freed the new, live objects ("double free", or a
 * block whose contents changed under its holder). Marking now starts with
 * the objects on remote-free lists marked (gc/mark.c).
 *
 * The workload is the one that found it: 8 threads hand blocks of 0-3000 B
 * (1% of 33-233 KB) to each other through a global array with atomic
 * exchanges, so nearly every free is a remote one, and check each block's
 * contents and usable size when they take it and before they free it; a
 * ninth thread collects back to back. Each worker holds up to MINE blocks,
 * so that its blocks spread over many spans and each of its sweeps after a
 * collection merges many remote-free lists: the window is wide. Nothing is
 * ever garbage here: every object the collector frees is a lost one.
 *
 * Before the fix, 16 runs of 16 failed ("double free"), each within 0.3-8.4 s
 * (load average 20-30 on the 2-core machine; docs/reliability.md).
 */
#include <criterion/criterion.h>
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "gcutil.h"

#define WORKERS 8
#define SLOTS 512 /* the global array */
#define MINE 256  /* blocks a worker holds: spread over many spans, each with remote frees pending */
#define SALT 7
#define RUN_MS 10000

static void *volatile g_shared[SLOTS]; /* blocks in transit between workers */
static atomic_int g_stop;
static atomic_ulong g_handed;

/* Contents intact and still allocated (malloc_usable_size aborts on a block
 * the collector freed). */
static void check_block(void *p, const char *when) {
    size_t n = malloc_usable_size(p);
    long bad = pat_check(p, n, SALT);
    CHILD_CHECK(bad < 0, 60, "block %p of %zu bytes %s: overwritten at offset %ld (collected while live)", p, n,
                when, bad);
}

static void *new_block(uint64_t *rng) {
    uint64_t r = tu_rand(rng);
    size_t n = r % 100 == 0 ? 33000 + r % 200000 : r % 3000;
    void *p = malloc(n);
    if (!p)
        CHILD_FAIL(61, "malloc(%zu) failed", n);
    pat_fill(p, malloc_usable_size(p), SALT);
    return p;
}

static void *worker(void *arg) {
    uint64_t rng = (uintptr_t)arg * 0x9e3779b97f4a7c15ull + 1;
    void *mine[MINE] = {0};
    while (!atomic_load_explicit(&g_stop, memory_order_relaxed)) {
        int k = (int)(tu_rand(&rng) % MINE);
        if (!mine[k]) {
            mine[k] = new_block(&rng);
            continue;
        }
        check_block(mine[k], "before handing it on");
        void *got = __atomic_exchange_n(&g_shared[tu_rand(&rng) % SLOTS], mine[k], __ATOMIC_ACQ_REL);
        mine[k] = NULL;
        if (got) {
            check_block(got, "taken from another thread");
            free(got);
            atomic_fetch_add_explicit(&g_handed, 1, memory_order_relaxed);
        }
    }
    for (int k = 0; k < MINE; k++)
        if (mine[k]) {
            check_block(mine[k], "at the end");
            free(mine[k]);
        }
    return NULL;
}

static void remote_frees_child(void *arg) {
    gct_collect_mode(-1); /* the collecting thread's collections only */
    pthread_t w[WORKERS];
    for (uintptr_t i = 0; i < WORKERS; i++)
        if (pthread_create(&w[i], NULL, worker, (void *)(i + 1)))
            CHILD_FAIL(62, "pthread_create");
    struct gct_collector c;
    gct_collector_start(&c, -1);
    /* By the clock: a sleep restarted after each stop signal does not count
     * the time the thread spent stopped. */
    for (uint64_t t0 = tu_now_ms(); tu_now_ms() - t0 < RUN_MS;)
        tu_sleep_ms(100);
    atomic_store(&g_stop, 1);
    for (int i = 0; i < WORKERS; i++)
        pthread_join(w[i], NULL);
    unsigned long collections = gct_collector_stop(&c);
    for (int i = 0; i < SLOTS; i++)
        if (g_shared[i]) {
            check_block(g_shared[i], "left in the array");
            free(g_shared[i]);
        }
    struct gcm_stats st;
    gcm_get_stats(&st);
    CHILD_CHECK(collections >= 100, 63, "only %lu collections", collections);
    CHILD_CHECK(atomic_load(&g_handed) >= 100000, 64, "only %lu blocks handed between threads",
                atomic_load(&g_handed));
    CHILD_CHECK(st.gc_freed_objects == 0, 65, "the collector freed %lu objects of a program that drops none",
                (unsigned long)st.gc_freed_objects);
    dprintf(2, "gc_remote_frees: %lu collections, %lu blocks freed by another thread\n", collections,
            atomic_load(&g_handed));
}

Test(gc_remote_frees, handed_between_threads_while_collecting, .timeout = 120) {
    const char *err = gct_run_child_err(remote_frees_child, NULL, 110, "remote_frees_child");
    cr_log_info("%s", err);
}
