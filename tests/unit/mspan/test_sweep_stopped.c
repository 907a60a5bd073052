/*
 * A collection that stops an owner halfway through sweeping a span. This
 * file compiles alloc/mspan.c itself with GCMALLOC_FAULT_INJECTION defined
 * (libgcmalloc.a's mspan.o is never pulled in), for its hook
 * gcm_sweep_word_hook, called after each word of a sweep pass: there the
 * test does what a collection does to the span with the world stopped -
 * records the garbage of allocated, unmarked objects in gcmarkBits and bumps
 * sweep_gen (gc/sweep.c).
 *
 * The owner's sweep must end with every piece of garbage of both
 * collections freed once, and the span swept for the newer one. Were it
 * left marked as swept for the older one, its next sweep would free the
 * newer garbage again - in slots handed out meanwhile, to live objects (the
 * lost nodes of stress_test_gc_threads' trees_while_collecting).
 */
#define GCMALLOC_FAULT_INJECTION 1
#include "alloc/mspan.c"

#include <criterion/criterion.h>
#include <signal.h>
#include <stdlib.h>

#include "alloc/mheap.h"

static void setup(void) {
    free(malloc(1)); /* the heap exists */
}

/* The collection that stops the owner: after word stop_at, once. */
static size_t stop_at;
static int collections;
/* Objects it finds dropped since the first collection: one below the stop, one above. */
static size_t dropped[2];

static void collect_here(mspan *s, size_t w) {
    if (w != stop_at || collections) return;
    collections++;
    for (size_t k = 0; k < s->nwords; k++) {
        uint64_t live = 0xaaaaaaaaaaaaaaaaull; /* the odd objects */
        for (int d = 0; d < 2; d++)
            if (dropped[d] / 64 == k) live &= ~((uint64_t)1 << (dropped[d] % 64));
        s->gcmarkBits[k] = s->allocBits[k] & ~live;
    }
    s->sweep_gen++;
}

/* Allocate every free object of s; how many. */
static size_t take_all(mspan *s) {
    size_t n = 0;
    for (;;) {
        if (mspan_alloc_fast(s)) n++;
        else if (!mspan_refill_cache(s)) return n;
    }
}

/* A full span of 8-byte objects (16 bitmap words), its cache empty. */
static mspan *full_span(void) {
    mspan *s = gcm_mheap_alloc_small(gcm_span_class(1, true) /* 8 B */);
    cr_assert_not_null(s);
    cr_assert_eq(take_all(s), s->nelems);
    cr_assert_eq(s->nwords, 16);
    return s;
}

static void stopped_after(size_t word) {
    mspan *s = full_span();
    stop_at = word;
    collections = 0;
    dropped[0] = 2 * 64 + 1;  /* below the stop: still to sweep after it */
    dropped[1] = 14 * 64 + 1; /* above it: the rest of the pass frees it */
    for (size_t k = 0; k < s->nwords; k++) s->gcmarkBits[k] = 0x5555555555555555ull; /* the even ones */
    s->sweep_gen = s->swept_gen + 1;

    gcm_sweep_word_hook = collect_here;
    size_t freed = mspan_sweep(s);
    gcm_sweep_word_hook = NULL;
    cr_assert_eq(collections, 1);
    cr_assert_eq(freed, s->nelems / 2 + 2, "freed %zu: the even objects and the two dropped since", freed);
    cr_assert_not(mspan_needs_sweep(s), "swept for generation %u, the span holds %u's garbage", s->swept_gen,
                  s->sweep_gen);
    cr_assert_eq(s->allocCount, s->nelems / 2 - 2);

    /* Hand the freed slots out again: they are live objects now, and no
     * sweep may take them. */
    size_t handed = take_all(s);
    cr_assert_eq(handed, s->nelems / 2 + 2);
    cr_assert_eq(s->allocCount, s->nelems);
    cr_assert_not(mspan_needs_sweep(s));
    cr_assert_not(mspan_refill_cache(s), "the owner's next refill swept live objects");
    cr_assert_eq(s->allocCount, s->nelems);
    for (size_t k = 0; k < s->nwords; k++) s->allocBits[k] = 0;
    s->allocCount = 0;
    gcm_mheap_free_span(s);
}

Test(sweep_stopped, by_a_collection_halfway, .init = setup) { stopped_after(7); }
Test(sweep_stopped, by_a_collection_after_the_first_word, .init = setup) { stopped_after(0); }
Test(sweep_stopped, by_a_collection_after_the_last_word, .init = setup) { stopped_after(15); }

/* While the collector marks, gcmarkBits hold marks: a sweep then would free
 * the live objects, and aborts instead. */
Test(sweep_stopped, a_sweep_while_the_collector_marks_aborts, .init = setup, .signal = SIGABRT) {
    mspan *s = full_span();
    s->gcmarkBits[0] = 1;
    s->sweep_gen = s->swept_gen + 1;
    gcm_sweep_barred = true;
    mspan_sweep(s);
}
