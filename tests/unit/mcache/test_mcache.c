/* mcache and mcentral under 8 threads: every object handed out once, remote
 * frees merged, spans filed on the right list, thread exit returns spans. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <malloc.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "alloc/mcache.h"
#include "alloc/mheap.h"
#include "alloc/sizeclass.h"
#include "alloc/stats.h"
#include "include/gcmalloc.h"

#define THREADS 8
#define LIVE 512
#define ROUNDS 60000

/* A mailbox per thread: others drop objects in, the owner frees them. */
static struct box {
    pthread_mutex_t m;
    void *items[4096];
    int n;
} boxes[THREADS];

static void check(void *p, size_t size) {
    uintptr_t *w = p;
    cr_assert_eq(w[0], (uintptr_t)p ^ 0x5a5a5a5a, "object %p was handed out twice or overwritten", p);
    cr_assert_eq(w[1], size);
}

static void *worker(void *arg) {
    long id = (long)arg;
    unsigned r = (unsigned)id * 2654435761u + 1;
    void *live[LIVE] = { 0 };
    size_t sizes[LIVE];
    for (int i = 0; i < ROUNDS; i++) {
        r = r * 1103515245u + 12345u;
        int k = (r >> 8) % LIVE;
        if (live[k]) {
            check(live[k], sizes[k]);
            int to = (r >> 20) % THREADS;
            struct box *b = &boxes[to];
            pthread_mutex_lock(&b->m);
            if (to != id && b->n < 4096) {
                b->items[b->n++] = live[k]; /* someone else frees it */
                live[k] = NULL;
            }
            pthread_mutex_unlock(&b->m);
            if (live[k]) free(live[k]);
        }
        size_t size = 16 + (r >> 4) % 4000;
        live[k] = malloc(size);
        sizes[k] = size;
        ((uintptr_t *)live[k])[0] = (uintptr_t)live[k] ^ 0x5a5a5a5a;
        ((uintptr_t *)live[k])[1] = size;
        if ((i & 255) == 0) {
            struct box *b = &boxes[id];
            pthread_mutex_lock(&b->m);
            for (int j = 0; j < b->n; j++) {
                ((uintptr_t *)b->items[j])[0] = 0;
                free(b->items[j]);
            }
            b->n = 0;
            pthread_mutex_unlock(&b->m);
        }
    }
    for (int k = 0; k < LIVE; k++)
        if (live[k]) free(live[k]);
    return NULL;
}

static void check_lists(void) {
    for (unsigned i = 2; i < GCM_NUM_SPAN_CLASSES; i++) {
        mcentral *c = &gcm_heap.central[i];
        gcm_lock_acquire(&c->lock);
        size_t n = 0;
        for (mspan *s = c->partial.first; s; s = s->next, n++) {
            cr_assert_null(s->owner);
            cr_assert_eq(s->list, SPAN_LIST_PARTIAL);
            cr_assert(s->allocCount > 0 && s->allocCount < s->nelems, "class %u partial span with %u/%u", i,
                      s->allocCount, s->nelems);
        }
        cr_assert_eq(n, c->partial.n);
        n = 0;
        for (mspan *s = c->full.first; s; s = s->next, n++) {
            cr_assert_null(s->owner);
            cr_assert_eq(s->list, SPAN_LIST_FULL);
        }
        cr_assert_eq(n, c->full.n);
        n = 0;
        for (mspan *s = c->empty.first; s; s = s->next, n++) {
            cr_assert_null(s->owner);
            cr_assert_eq(s->list, SPAN_LIST_EMPTY);
            cr_assert_eq(s->allocCount, 0, "class %u empty-list span with %u objects", i, s->allocCount);
        }
        cr_assert_eq(n, c->empty.n);
        cr_assert_leq(n, c->empty_max);
        gcm_lock_release(&c->lock);
    }
}

Test(mcache, eight_threads_cross_frees) {
    struct gcm_stats before, after;
    for (int i = 0; i < THREADS; i++) pthread_mutex_init(&boxes[i].m, NULL);
    gcm_get_stats(&before);
    pthread_t th[THREADS];
    for (long i = 0; i < THREADS; i++) pthread_create(&th[i], NULL, worker, (void *)i);
    for (int i = 0; i < THREADS; i++) pthread_join(th[i], NULL);
    for (int i = 0; i < THREADS; i++) {
        for (int j = 0; j < boxes[i].n; j++) free(boxes[i].items[j]);
        boxes[i].n = 0;
    }
    gcm_get_stats(&after);
    /* The workers are gone: their spans went back to the mcentrals, and no
     * object of theirs is still counted. The main thread's own mcache may hold
     * a few objects of Criterion's. */
    cr_assert_leq(after.allocated_objects, before.allocated_objects + 64, "before %zu after %zu",
                  before.allocated_objects, after.allocated_objects);
    check_lists();
}

static void *attach_only(void *arg) {
    void *p = malloc(100);
    *(mcache **)arg = gcm_tls_mcache;
    free(p);
    return NULL;
}

Test(mcache, thread_exit_releases_the_mcache) {
    mcache *c = NULL;
    pthread_t t;
    pthread_create(&t, NULL, attach_only, &c);
    pthread_join(t, NULL);
    cr_assert_not_null(c);
    gcm_lock_acquire(&gcm_heap.lock);
    bool found = false;
    for (mcache *m = gcm_heap.allcaches; m; m = m->next) found |= m == c;
    gcm_lock_release(&gcm_heap.lock);
    cr_assert_not(found, "an exited thread's mcache is still registered");
}

Test(mcache, fresh_thread_starts_on_the_empty_mcache) {
    cr_assert_eq(gcm_empty_mcache.alloc[7], &gcm_empty_span);
    cr_assert_null(mspan_alloc_fast(&gcm_empty_span));
}

static size_t free_pages(void) {
    gcm_lock_acquire(&gcm_heap.lock);
    size_t n = gcm_heap.pages.free_pages;
    gcm_lock_release(&gcm_heap.lock);
    return n;
}

/* A thread that frees what it allocated long ago frees into spans its mcache
 * has given back (it keeps MCACHE_RETIRED + 1 per class): those frees take
 * the remote path and announce the span to its mcentral. Spans they empty
 * must go back to the heap then, not when the next refill of that class
 * happens to drain the announcements (a program that frees its heap may never
 * allocate that class again). One-page spans of 256 B objects. */
Test(mcache, spans_emptied_by_frees_go_back_without_a_refill) {
    enum { SPANS = 400, PER_SPAN = GCM_PAGE_SIZE / 256, N = SPANS * PER_SPAN };
    static void *p[N];
    for (int i = 0; i < N; i++) p[i] = malloc(256);
    size_t before = free_pages();
    for (int i = 0; i < N; i++) free(p[i]);
    size_t back = free_pages() - before;
    /* All but the spans the mcache still holds and a few announcements not
     * yet drained. */
    cr_assert_geq(back, SPANS - (MCACHE_RETIRED + 1) - 16, "%zu of %d emptied spans went back to the heap", back,
                  SPANS);
}

/* Allocate objects of class spc until the current span is no longer `s`;
 * returns how many were added to p. */
static size_t fill_until_not_current(mcache *c, unsigned spc, mspan *s, void **p, size_t n, size_t max, size_t size) {
    while (n < max && c->alloc[spc] == s) p[n++] = malloc(size);
    return n;
}

/* The quick refill (gcm_mcache_refill_quick): when the current span's cache
 * runs dry, the objects this thread freed into a retired span come back
 * first, by swapping that span in - not a span from the mcentral, nor the
 * current span's objects never handed out (mspan_hand_out). A class nothing
 * else in the test process uses, so the first span is fresh. */
Test(mcache, refill_swaps_in_the_retired_span_the_thread_freed_into) {
    enum { SIZE = 6000, MAX = 256 };
    unsigned spc = gcm_span_class(gcm_size_class(SIZE), false);
    static void *p[MAX];
    size_t n = 0;
    p[n++] = malloc(SIZE);
    mcache *c = gcm_tls_mcache;
    mspan *first = c->alloc[spc];
    cr_assert_eq(gcm_span_of((uintptr_t)p[0]), first);
    while (n < MAX && c->retired[spc][0] != first) p[n++] = malloc(SIZE);
    cr_assert_eq(c->retired[spc][0], first, "the first span was not retired after %zu allocations", n);
    free(p[0]);
    cr_assert_eq(c->hasfree[spc], 1, "a free into retired slot 0 sets its hasfree bit");
    mspan *second = c->alloc[spc];
    n = fill_until_not_current(c, spc, second, p, n, MAX, SIZE);
    cr_assert_eq(c->alloc[spc], first, "the retired span was not swapped in");
    cr_assert_eq(p[n - 1], p[0], "the refill did not reuse the object freed into the retired span");
    cr_assert_eq(c->retired[spc][0], second, "the current span did not take the slot");
    cr_assert_eq(c->hasfree[spc], mcache_has_frees(second) ? 1u : 0u, "the slot's hasfree bit is not the span's");
}

static void *free_it(void *p) {
    free(p);
    return NULL;
}

/* A span with remote frees is not refilled the quick way, even when its
 * owner freed into it too: its remote-free list must be merged first (the
 * order mspan_refill_cache keeps for the collector). Again a class of its
 * own, so that no retired span of the class has frees to offer first. */
Test(mcache, remote_frees_send_the_refill_the_slow_way) {
    enum { SIZE = 10000, MAX = 64 };
    unsigned spc = gcm_span_class(gcm_size_class(SIZE), false);
    void *mine = malloc(SIZE), *theirs = malloc(SIZE);
    mcache *c = gcm_tls_mcache;
    mspan *s = c->alloc[spc];
    cr_assert_eq(gcm_span_of((uintptr_t)theirs), s);
    free(mine); /* into the cache word: freedCache */
    cr_assert_neq(s->freedCache, 0);
    pthread_t t;
    pthread_create(&t, NULL, free_it, theirs);
    pthread_join(t, NULL);
    cr_assert(mspan_has_remote(s));
    static void *keep[MAX];
    size_t n = 0;
    while (s->allocCache && n < MAX) keep[n++] = malloc(SIZE);
    cr_assert_eq(c->alloc[spc], s);
    cr_assert_eq(c->hasfree[spc], 0);
    void *q = malloc(SIZE);
    cr_assert(q == mine || q == theirs);
    cr_assert_not(mspan_has_remote(s), "the refill left the remote frees unmerged");
    for (size_t i = 0; i < n; i++) free(keep[i]);
    free(q);
}

/* A span emptied while its mcentral holds it stays there, for the next span
 * the class needs, instead of going back to the heap (a queue of 4 KiB
 * objects, eight to a span, would trade a span with the heap every eighth
 * malloc); malloc_trim returns it. */
Test(mcache, emptied_spans_are_kept_for_reuse_until_trim) {
    enum { N = 64, SIZE = 4096 };
    void *p[N];
    for (int i = 0; i < N; i++) p[i] = malloc(SIZE);
    gcm_mcache_flush(gcm_tls_mcache); /* every span to the mcentral: the frees below are remote */
    for (int i = 0; i < N; i++) free(p[i]);
    gcm_mheap_flush_pending();
    int kept = 0;
    for (int i = 0; i < N; i++) kept += gcm_span_of((uintptr_t)p[i]) != NULL;
    mcentral *c = &gcm_heap.central[gcm_span_class(gcm_size_class(SIZE), false)];
    int per_span = (int)gcm_class_nelems[gcm_size_class(SIZE)];
    cr_assert_eq(kept, per_span * (int)c->empty_max, "%d of %d freed objects still lie in a span", kept, N);
    check_lists();
    void *q = malloc(SIZE);
    bool reused = false;
    for (int i = 0; i < N; i++) reused |= gcm_span_of((uintptr_t)p[i]) == gcm_span_of((uintptr_t)q);
    cr_assert(reused, "the next span of the class was not a kept one");
    free(q);
    malloc_trim(0);
    for (int i = 0; i < N; i++) cr_assert_null(gcm_span_of((uintptr_t)p[i]), "malloc_trim left a span kept");
}

/* The refill passes over a retired span that offers fewer than
 * mcache_refill_want objects while a retired slot is free: it takes a new
 * span, and comes back to the retired one once enough frees wait there.
 * Chasing the few objects just freed is what made a FIFO ring refill every
 * six mallocs. 3 KiB objects: 8 to a span, so two frees are wanted; a class
 * nothing else in the test process uses. */
Test(mcache, refill_passes_over_a_span_with_few_frees_for_a_new_one) {
    enum { SIZE = 3000, MAX = 64 };
    unsigned spc = gcm_span_class(gcm_size_class(SIZE), false);
    static void *p[MAX];
    size_t n = 0;
    p[n++] = malloc(SIZE);
    mcache *c = gcm_tls_mcache;
    mspan *a = c->alloc[spc];
    cr_assert_eq(mcache_refill_want(a), 2);
    n = fill_until_not_current(c, spc, a, p, n, MAX, SIZE); /* a retired, b current */
    mspan *b = c->alloc[spc];
    cr_assert_eq(gcm_span_of((uintptr_t)p[0]), a);
    free(p[0]); /* one object waits in a: fewer than wanted */
    n = fill_until_not_current(c, spc, b, p, n, MAX, SIZE);
    mspan *fresh = c->alloc[spc];
    cr_assert(fresh != a && fresh != b, "the refill swapped in a span with one free object instead of a new span");
    cr_assert_neq(gcm_span_of((uintptr_t)p[n - 1]), a);
    free(p[1]); /* now two */
    cr_assert_eq(gcm_span_of((uintptr_t)p[1]), a);
    n = fill_until_not_current(c, spc, fresh, p, n, MAX, SIZE);
    cr_assert_eq(c->alloc[spc], a, "the refill did not come back to the span with two frees");
    cr_assert(p[n - 1] == p[0] || p[n - 1] == p[1]);
}

/* With every retired slot taken, a new span would cost the oldest retired
 * one (and the frees into it would turn remote): the refill then takes the
 * retired span with frees, however few. */
Test(mcache, refill_takes_few_frees_when_every_slot_is_taken) {
    enum { SIZE = 3000, MAX = (MCACHE_RETIRED + 2) * 8 };
    unsigned spc = gcm_span_class(gcm_size_class(SIZE), false);
    static void *p[MAX];
    size_t n = 0;
    p[n++] = malloc(SIZE);
    mcache *c = gcm_tls_mcache;
    while (n < MAX && c->occupied[spc] != mcache_all_retired(spc)) p[n++] = malloc(SIZE);
    cr_assert_eq(c->occupied[spc], mcache_all_retired(spc), "the retired slots did not fill up");
    mspan *s = c->alloc[spc];
    mspan *a = gcm_span_of((uintptr_t)p[0]);
    free(p[0]);
    n = fill_until_not_current(c, spc, s, p, n, MAX, SIZE);
    cr_assert_eq(c->alloc[spc], a, "with no slot free, the span with one free object was not swapped in");
    cr_assert_eq(p[n - 1], p[0]);
}

/* The refill looks for remote frees in the retired spans only when a remote
 * free has told the mcache (mcache.xhint): the first push onto the list of a
 * span an mcache holds sets the hint for its class, and the refill that
 * finds it set takes that span. 24 000 bytes: one object to a span, a class
 * nothing else here uses. */
Test(mcache, a_remote_free_into_a_retired_span_tells_the_refill) {
    enum { SIZE = 24000 };
    unsigned spc = gcm_span_class(gcm_size_class(SIZE), false);
    void *first = malloc(SIZE), *second = malloc(SIZE);
    mcache *c = gcm_tls_mcache;
    mspan *a = gcm_span_of((uintptr_t)first);
    cr_assert_eq(a->nelems, 1);
    cr_assert_eq(c->alloc[spc], gcm_span_of((uintptr_t)second));
    cr_assert(c->occupied[spc] != 0 && a->owner == c, "the first span was not retired");
    cr_assert_eq(c->xhint[spc], 0);
    pthread_t t;
    pthread_create(&t, NULL, free_it, first);
    pthread_join(t, NULL);
    cr_assert(mspan_has_remote(a));
    cr_assert_eq(c->xhint[spc], 1, "the remote free did not tell the mcache");
    void *q = malloc(SIZE);
    cr_assert_eq(q, first, "the refill did not take the retired span with the remote free");
    cr_assert_eq(c->alloc[spc], a);
    cr_assert_eq(c->xhint[spc], 0);
    free(q);
    free(second);
}

/* Objects never handed out wait while a handed-out one is free
 * (mspan_hand_out): a thread that mallocs and frees one block of a class
 * stays in the first objects of its span (a page's worth, at least
 * MSPAN_FRESH_MIN), and the span's last pages are not touched; a thread that
 * keeps what it mallocs still gets every object of the span before the next
 * span. 1400 B: 23 objects in 4 pages, a class
 * nothing else here uses. No assertion inside the loops: Criterion's
 * bookkeeping of each one mallocs. */
Test(mcache, malloc_free_stays_in_the_pages_already_handed_out) {
    enum { SIZE = 1400, MAX = 64 };
    unsigned spc = gcm_span_class(gcm_size_class(SIZE), false);
    static void *p[MAX];
    size_t n = 0;
    p[n++] = malloc(SIZE);
    mspan *s = gcm_span_of((uintptr_t)p[0]);
    cr_assert_eq(s->npages, 4);
    uintptr_t furthest = 0;
    bool same_span = true;
    for (int i = 0; i < 1000; i++) {
        void *q = malloc(SIZE);
        same_span &= gcm_span_of((uintptr_t)q) == s;
        if ((uintptr_t)q - s->base > furthest) furthest = (uintptr_t)q - s->base;
        free(q);
    }
    cr_assert(same_span, "malloc+free left the first span");
    size_t bound = MSPAN_FRESH_MIN * s->elemsize; /* more than a page: the minimum handed out */
    cr_assert_lt(bound, s->npages * GCM_PAGE_SIZE);
    cr_assert_lt(furthest, bound, "malloc+free went on to offset %zu", (size_t)furthest);
    n = fill_until_not_current(gcm_tls_mcache, spc, s, p, n, MAX, SIZE);
    cr_assert_eq(s->allocCount, s->nelems, "%u of %u objects allocated", s->allocCount, s->nelems);
    cr_assert_eq(mspan_cached(s), 0, "objects left waiting in the caches of a span used up");
    for (size_t i = 0; i < n; i++) free(p[i]);
}

/* free's fast path trusts mspan.fastowner alone: it must equal this thread's
 * mcache only for the current span of a class and for retired spans whose
 * hasfree bit is set (a free into any other retired span takes the slow path,
 * which sets the bit), and never for a span the mcache does not own. Checked
 * over every span holding a live object after a random churn of sizes up to
 * 4 KiB, which retires, swaps in, looks at and gives back spans. */
Test(mcache, fastowner_only_where_a_free_needs_no_note) {
    enum { CHURN_LIVE = 3000, CHURN_STEPS = 200000 };
    static void *live[CHURN_LIVE];
    unsigned r = 12345;
    for (int i = 0; i < CHURN_STEPS; i++) {
        r = r * 1103515245u + 12345u;
        int k = (r >> 8) % CHURN_LIVE;
        free(live[k]);
        live[k] = malloc(16 + (r >> 12) % 4080);
    }
    mcache *c = gcm_tls_mcache;
    size_t bad = 0, fast = 0, first = CHURN_LIVE;
    for (int i = 0; i < CHURN_LIVE; i++) {
        mspan *s = gcm_span_of((uintptr_t)live[i]);
        if (!s || GCM_LOAD(&s->fastowner) != c) continue;
        fast++;
        unsigned spc = s->spanclass;
        bool current = c->alloc[spc] == s, retired_noted = false;
        for (unsigned k = 0; k < MCACHE_RETIRED; k++)
            if (c->retired[spc][k] == s) retired_noted = (c->hasfree[spc] >> k) & 1;
        if (s->owner != c || !(current || retired_noted)) {
            bad++;
            if (first == CHURN_LIVE) first = (size_t)i;
        }
    }
    cr_assert_eq(bad, 0, "%zu of %zu live objects lie in spans marked fast for this thread that are not its current "
                 "or noted retired ones "
                 "(first: object %zu)", bad, fast, first);
    cr_assert_gt(fast, 0, "no span marked fast: the check saw nothing");
    for (int i = 0; i < CHURN_LIVE; i++) free(live[i]);
}
