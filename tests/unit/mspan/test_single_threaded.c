/*
 * test_single_threaded.c - gcm_xchg and gcm_cas (alloc/common.h), and the
 * remote-free path built on them, in a single-threaded process and again
 * once a second thread has been created.
 *
 * In a single-threaded process the two are a relaxed load and store; glibc
 * clears __libc_single_threaded before a second thread runs, and from then on
 * they are the lock-prefixed instructions. Both ways must give the same
 * results: the compare-and-swap reports the value it found, the exchange the
 * one it replaced, and every object freed through the remote path is merged
 * back exactly once.
 *
 * Criterion's test processes are forks of a multi-threaded runner, where the
 * flag stays clear, so the scenario runs in this program executed afresh
 * (GCM_SINGLE_CHILD set: a constructor runs it before Criterion starts and
 * exits with its result).
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/single_threaded.h>

#include "alloc/mcache.h"
#include "alloc/mheap.h"
#include "alloc/sizeclass.h"
#include "testutil.h"

static void check_primitives(void) {
    uintptr_t v = 5, expect = 4;
    CHILD_CHECK(!gcm_cas(&v, &expect, 9), 70, "a compare-and-swap against the wrong value succeeded");
    CHILD_CHECK(expect == 5 && v == 5, 71, "a failed compare-and-swap did not report the value found");
    CHILD_CHECK(gcm_cas(&v, &expect, 9) && v == 9, 72, "a compare-and-swap against the right value failed");
    CHILD_CHECK(gcm_xchg(&v, 3) == 9 && v == 3, 73, "the exchange did not return the old value");
}

/* Objects of one-page spans, allocated, their spans given back to the
 * mcentral, freed, and merged. With a second thread every free takes the
 * remote path (a push on xfree, an announcement per span, the drain's
 * exchange); a single thread frees straight into the bitmap
 * (mspan_free_alone) and announces each span once, so no list is left to
 * merge. Either way each span must be found empty - back in the heap, or
 * kept empty by its mcentral (up to empty_max) - which it is only if no free
 * was lost (a push merged twice aborts as a double free). */
static void remote_round(const char *when, bool alone) {
    enum { SIZE = 256, SPANS = 64, PER_SPAN = GCM_PAGE_SIZE / SIZE, N = SPANS * PER_SPAN };
    static void *p[N];
    CHILD_CHECK(gcm_class_npages[gcm_size_class(SIZE)] == 1, 74, "256 B spans are not one page");
    for (int i = 0; i < N; i++) p[i] = malloc(SIZE);
    gcm_mcache_flush(gcm_tls_mcache);
    for (int i = 0; i < N; i++) free(p[i]);
    /* The last span was announced (and drained) at its first free: its
     * other objects wait on its list unless they went straight in. */
    size_t listed = 0;
    for (int i = 0; i < N; i += PER_SPAN) {
        mspan *s = gcm_span_of((uintptr_t)p[i]); /* NULL: emptied and returned to the heap */
        listed += s && mspan_has_remote(s);
    }
    CHILD_CHECK(alone ? listed == 0 : listed > 0, 80, "%s: %zu of %d spans hold remote-free lists", when, listed,
                SPANS);
    gcm_mheap_flush_pending();
    size_t kept = 0, kept_max = gcm_heap.central[gcm_span_class(gcm_size_class(SIZE), false)].empty_max;
    static mspan *seen[N];
    for (int i = 0; i < N; i++) {
        mspan *s = gcm_span_of((uintptr_t)p[i]);
        CHILD_CHECK(!s || s->allocCount == 0, 75, "%s: object %d's span holds %u objects", when, i,
                    s ? s->allocCount : 0);
        bool counted = !s;
        for (size_t j = 0; j < kept && !counted; j++) counted = seen[j] == s;
        if (!counted) seen[kept++] = s;
    }
    CHILD_CHECK(kept <= kept_max, 76, "%s: %zu of %d emptied spans did not go back to the heap (at most %zu kept)",
                when, kept, SPANS, kept_max);
}

/* The retired slots' bound (mcache.h): twice the pages while the process
 * is single-threaded. A burst of 100 blocks of 4 KiB (13 four-page spans)
 * then stays in the thread's spans, which it would otherwise give back from
 * the ninth on. With a second thread, no slot past the smaller bound is
 * filled again by a FIFO of those blocks. */
static void retired_round(const char *when, bool alone) {
    enum { SIZE = 4096, BURST = 100, QUEUE = 1000, STEPS = 5000 };
    static void *p[QUEUE];
    unsigned spc = gcm_span_class(gcm_size_class(SIZE), false);
    CHILD_CHECK(gcm_class_npages[spc >> 1] == 4, 86, "4 KiB spans are not 4 pages");
    unsigned want = MCACHE_RETIRED_PAGES * (alone ? MCACHE_RETIRED_ALONE_FACTOR : 1) / 4;
    CHILD_CHECK(mcache_retired_slots(spc) == want, 82, "%s: %u retired slots for 4 KiB, not %u", when,
                mcache_retired_slots(spc), want);
    mcache *c = gcm_tls_mcache;
    if (alone) {
        for (int i = 0; i < BURST; i++) p[i] = malloc(SIZE);
        int given = 0;
        for (int i = 0; i < BURST; i++) given += GCM_LOAD(&gcm_span_of((uintptr_t)p[i])->owner) != c;
        CHILD_CHECK(given == 0, 83, "%s: %d of a burst of %d blocks of 4 KiB sit in spans given back", when, given,
                    BURST);
        for (int i = BURST; i-- > 0;) free(p[i]);
        return;
    }
    uint32_t above = c->occupied[spc] & ~mcache_all_retired(spc);
    for (int i = 0; i < QUEUE; i++) p[i] = malloc(SIZE);
    for (int i = 0; i < STEPS; i++) {
        free(p[i % QUEUE]);
        p[i % QUEUE] = malloc(SIZE);
        CHILD_CHECK(p[i % QUEUE], 84, "%s: malloc failed", when);
    }
    CHILD_CHECK(!(c->occupied[spc] & ~mcache_all_retired(spc) & ~above), 85,
                "%s: slots past the bound filled again (occupied %#x, bound %#x, before %#x)", when,
                c->occupied[spc], mcache_all_retired(spc), above);
    for (int i = 0; i < QUEUE; i++) free(p[i]);
}

static void *nothing(void *arg) { return arg; }

/* A double free into a span the mcentral holds, by the only thread: the
 * bitmap free (mspan_free_alone) must catch it at the second free, with no
 * merge to catch it later. Writes the pointer on stdout, then aborts. */
static void double_free_alone(void) {
    enum { SIZE = 256, N = 2 * GCM_PAGE_SIZE / SIZE };
    static void *p[N];
    CHILD_CHECK(__libc_single_threaded, 81, "a fresh process is not marked single-threaded");
    for (int i = 0; i < N; i++) p[i] = malloc(SIZE);
    gcm_mcache_flush(gcm_tls_mcache);
    free(p[1]); /* the span stays partial: p[0]'s free finds it in the mcentral */
    dprintf(1, "%p\n", p[0]);
    free(p[0]);
    free(p[0]);
    _exit(0);
}

__attribute__((constructor)) static void single_child(void) {
    const char *mode = getenv("GCM_SINGLE_CHILD");
    if (!mode) return;
    if (strcmp(mode, "double") == 0) double_free_alone();
    CHILD_CHECK(__libc_single_threaded, 77, "a fresh process is not marked single-threaded");
    check_primitives();
    remote_round("single-threaded", true);
    retired_round("single-threaded", true);
    pthread_t t;
    CHILD_CHECK(pthread_create(&t, NULL, nothing, NULL) == 0 && pthread_join(t, NULL) == 0, 78, "pthread_create");
    CHILD_CHECK(!__libc_single_threaded, 79, "a second thread left the process marked single-threaded");
    check_primitives();
    remote_round("after a second thread", false);
    retired_round("after a second thread", false);
    _exit(0);
}

Test(single_threaded, both_ways_give_the_same_results) {
    const char *argv[] = {"/proc/self/exe", NULL};
    const char *env[] = {"GCM_SINGLE_CHILD=1", NULL};
    struct run_result r;
    cr_assert_eq(run_cmd(argv, NULL, env, NULL, 60, &r), 0, "the child timed out");
    cr_assert(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0, "child: status %#x, %s", r.status, r.err);
    run_result_free(&r);
}

Test(single_threaded, a_double_free_into_a_span_given_back_aborts) {
    const char *argv[] = {"/proc/self/exe", NULL};
    const char *env[] = {"GCM_SINGLE_CHILD=double", NULL};
    struct run_result r;
    cr_assert_eq(run_cmd(argv, NULL, env, NULL, 60, &r), 0, "the child timed out");
    char ptr[32];
    cr_assert(sscanf(r.out, "%31s", ptr) == 1, "the child wrote no pointer; stderr: %s", r.err);
    cr_assert(WIFSIGNALED(r.status) && WTERMSIG(r.status) == SIGABRT, "child: status %#x, stderr: %s", r.status,
              r.err);
    cr_assert(strstr(r.err, "double free") && strstr(r.err, ptr), "stderr: %s (pointer %s)", r.err, ptr);
    run_result_free(&r);
}
