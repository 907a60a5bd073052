/*
 * mcache.c - creating, refilling and releasing per-thread caches.
 */
#include "mcache.h"
#include "lstash.h"
#include "mheap.h"

#include <errno.h>

/* MCACHE_RETIRED_PAGES (times the factor when single-threaded) / np spans,
 * MCACHE_RETIRED_MIN to MCACHE_RETIRED of them. */
#define SLOTS(pages, np) \
    ((pages) / (np) < MCACHE_RETIRED_MIN ? MCACHE_RETIRED_MIN : (pages) / (np) > MCACHE_RETIRED ? MCACHE_RETIRED : (pages) / (np))
#define SLOTS_ROW(pages)                                                                                        \
    { 0, SLOTS(pages, 1), SLOTS(pages, 2), SLOTS(pages, 3), SLOTS(pages, 4), SLOTS(pages, 5),                   \
      SLOTS(pages, 6), SLOTS(pages, 7), SLOTS(pages, 8), SLOTS(pages, 9), SLOTS(pages, 10) }
_Static_assert(MCACHE_SPAN_PAGES_MAX == 10, "SLOTS_ROW lists every span length");
const uint8_t gcm_mcache_retired_slots[2][MCACHE_SPAN_PAGES_MAX + 1] = {
    SLOTS_ROW(MCACHE_RETIRED_PAGES),
    SLOTS_ROW(MCACHE_RETIRED_PAGES * MCACHE_RETIRED_ALONE_FACTOR),
};

mcache gcm_empty_mcache = { .alloc = { [0 ... GCM_NUM_SPAN_CLASSES - 1] = &gcm_empty_span } };
GCM_TLS mcache *gcm_tls_mcache = &gcm_empty_mcache;
GCM_TLS uint8_t gcm_tls_state;
GCM_TLS mcache *gcm_tls_own;

/* Orphan allocations: one shared mcache, set up at its first use (in .bss,
 * like its slots: see mcache.retired); orphan_lock guards all of it. */
static gcm_lock orphan_lock = GCM_LOCK_INIT;
static mcache orphan;
static mspan *orphan_retired[GCM_NUM_SPAN_CLASSES][MCACHE_RETIRED];
static uint8_t orphan_xhint[GCM_NUM_SPAN_CLASSES];

static void register_cache(mcache *c) {
    mheap *h = &gcm_heap;
    c->prev = NULL;
    c->next = h->allcaches;
    if (h->allcaches) h->allcaches->prev = c;
    h->allcaches = c;
}

mcache *gcm_mcache_create(void) {
    mheap *h = &gcm_heap;
    gcm_lock_acquire(&h->lock);
    mcache *c = gcm_fixalloc_alloc(&h->cachealloc); /* zeroed, slots included */
    if (c) {
        for (unsigned i = 0; i < GCM_NUM_SPAN_CLASSES; i++) c->alloc[i] = &gcm_empty_span;
        c->retired = (void *)(c + 1);
        c->xhint = (uint8_t *)(c->retired + GCM_NUM_SPAN_CLASSES);
        for (unsigned i = 0; i < GCM_NUM_SPAN_CLASSES; i++) __atomic_store_n(&c->xhint[i], 0, __ATOMIC_RELAXED);
        c->sweep_seen = GCM_LOAD(&h->gc_sweep_epoch);
        register_cache(c);
    }
    gcm_lock_release(&h->lock);
    return c;
}

/* s leaves the mcache's slots: frees into it tell no slot from now on. */
static void detach(mspan *s) {
    s->slotbit = 0;
    GCM_STORE(&s->fastowner, NULL);
}

static void give_back(unsigned spc, mspan *s) {
    detach(s);
    mcentral_uncache_span(&gcm_heap.central[spc], s);
}

/* Walks over the retired slots skip every class whose current span is the
 * empty one: retiring needs a current span, and only give_back_all empties
 * it, emptying the row with it. The rows of classes a thread never used are
 * pages nobody touched (34 KiB of slots per mcache), and on this kernel even
 * reading them faults them in: tight-thread-8 held 280 KiB of mcaches at
 * exit (of 2.6 MiB) when each exiting thread looked at all its rows.
 *
 * Give back every span c holds (current and retired) and empty its slots.
 * `repair`: c's thread vanished in a fork and may have stopped mid-operation,
 * so each span is recounted first, and a span an interrupted swap left in two
 * slots is given back once (giving back clears owner). */
static void give_back_all(mcache *c, bool repair) {
    for (unsigned i = 0; i < GCM_NUM_SPAN_CLASSES; i++) {
        if (c->alloc[i] == &gcm_empty_span) continue; /* no retired spans either (above) */
        for (unsigned k = 0; k <= MCACHE_RETIRED; k++) {
            mspan *s = k < MCACHE_RETIRED ? c->retired[i][k] : c->alloc[i];
            if (!s || s == &gcm_empty_span || s->owner != c) continue;
            if (repair) mspan_repair_orphaned(s);
            give_back(i, s);
        }
        c->alloc[i] = &gcm_empty_span;
        for (unsigned k = 0; k < MCACHE_RETIRED; k++) c->retired[i][k] = NULL;
        c->hasfree[i] = 0;
        c->occupied[i] = 0;
        c->evict[i] = 0;
    }
    gcm_lstash_flush(c);
}

void gcm_mcache_flush(mcache *c) { give_back_all(c, false); }

void gcm_mcache_abandon(mcache *c) {
    give_back_all(c, true);
    gcm_mcache_destroy(c);
}

void gcm_mcache_destroy(mcache *c) {
    mheap *h = &gcm_heap;
    gcm_mcache_flush(c);
    gcm_lock_acquire(&h->lock);
    if (c->prev) c->prev->next = c->next;
    else h->allcaches = c->next;
    if (c->next) c->next->prev = c->prev;
    gcm_fixalloc_free(&h->cachealloc, c);
    gcm_lock_release(&h->lock);
}

/* Put s in retired slot k; its hasfree bit says whether it has free objects. */
static void retire(mcache *c, unsigned spc, unsigned k, mspan *s) {
    mcache_make_retired(c, spc, k, s);
    if (mcache_has_frees(s)) c->hasfree[spc] |= 1u << k;
    else c->hasfree[spc] &= ~(1u << k);
}

void gcm_mcache_sweep(mcache *c) {
    c->sweep_seen = GCM_LOAD(&gcm_heap.gc_sweep_epoch);
    for (unsigned i = 0; i < GCM_NUM_SPAN_CLASSES; i++) {
        if (c->alloc[i] == &gcm_empty_span) continue;
        for (unsigned k = 0; k <= MCACHE_RETIRED; k++) {
            mspan *s = k < MCACHE_RETIRED ? c->retired[i][k] : c->alloc[i];
            if (!s || s == &gcm_empty_span || !mspan_needs_sweep(s)) continue;
            uint16_t before = s->allocCount;
            mspan_sweep_owned(s);
            if (k < MCACHE_RETIRED && s->allocCount < before) c->hasfree[i] |= 1u << k;
        }
    }
}

/* The refill's result: the next object of s, whose cache was just loaded
 * (counted for the collector's pacing). */
GCM_INLINE void *take_loaded(mcache *c, mspan *s) {
    if (GCM_UNLIKELY(GCM_LOAD(&gcm_heap.gc_pacing))) {
        c->alloc_bytes += (size_t)gcm_popcount64(s->allocCache) * s->elemsize;
        if (c->alloc_bytes >= ((size_t)64 << 10)) {
            gcm_mheap_note_alloc(c->alloc_bytes);
            c->alloc_bytes = 0;
        }
    }
    return mspan_alloc_fast(s);
}

/* Owner: merge s's remote frees and sweep it; its free objects then. */
static unsigned settle(mspan *s) {
    if (mspan_has_remote(s)) mspan_take_remote(s);
    if (mspan_needs_sweep(s)) mspan_sweep_owned(s);
    return (unsigned)(s->nelems - s->allocCount) + gcm_popcount64(mspan_cached(s));
}

/* The whole refill policy (mcache.h): the current span, the retired spans
 * with local frees in slot order from seek, then those with remote frees,
 * each settled first so that its count is exact. The first that offers
 * mcache_refill_want objects is taken, else a new span while a retired slot
 * is free; with every slot taken, the first with any. (Weighing all of them
 * for the one with most settled up to 32 spans per refill: larson-2 502 ->
 * 662 instructions per step.) */
void *gcm_mcache_refill_slow(mcache *c, unsigned spc) {
    if (GCM_UNLIKELY(c->sweep_seen != GCM_LOAD(&gcm_heap.gc_sweep_epoch))) gcm_mcache_sweep(c);
    mspan *s = c->alloc[spc];
    unsigned least = mcache_open_slots(c, spc) ? mcache_refill_want(s) : 0;
    if (least == 0) least = 1;
    if (s != &gcm_empty_span && settle(s) >= least) goto refill;
    /* Retired spans the thread freed into, then those others freed into. */
    uint32_t rest = c->occupied[spc] & ~c->hasfree[spc];
    for (uint32_t r = c->hasfree[spc]; r;) {
        unsigned k = mcache_next_slot(c, spc, r), n = settle(c->retired[spc][k]);
        r &= ~(1u << k);
        if (n >= least) {
            s = mcache_swap_in(c, spc, k);
            goto refill;
        }
        if (n == 0) mcache_looked_at(c, spc, k);
    }
    /* Spans with remote frees: only when a remote free has said so since
     * the last look (mcache.xhint). The fence orders the exchange before the
     * scan's loads of xfree; a scan that stops early leaves the hint set for
     * the spans it did not look at. */
    if (GCM_LOAD(&c->xhint[spc]) && __atomic_exchange_n(&c->xhint[spc], 0, __ATOMIC_SEQ_CST)) {
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
        for (uint32_t r = rest; r; r &= r - 1) {
            unsigned k = (unsigned)__builtin_ctz(r);
            mspan *t = c->retired[spc][k];
            if (!mspan_has_remote(t)) continue;
            unsigned n = settle(t);
            if (n > 0) c->hasfree[spc] |= 1u << k;
            if (n >= least) {
                if (r & (r - 1)) GCM_STORE(&c->xhint[spc], 1);
                s = mcache_swap_in(c, spc, k);
                goto refill;
            }
        }
    }
    goto central;
refill:
    if (!mspan_refill_cache(s)) gcm_fatal("mcache: a span counted free objects and has none");
    return take_loaded(c, s);
central:;
    /* The current span retires into a free slot. With every slot taken, the
     * oldest one's span goes back to make room, in the same trip to the
     * mcentral's lock that takes the next span (a queue of 4 KiB objects, eight
     * to a span, needs that trip for every eighth malloc).
     * It stays in its slot until the current span replaces it: a fork child
     * that finds it there still owned gives it back (gcm_mcache_abandon),
     * and skips it once the mcentral has it. */
    uint32_t open = mcache_open_slots(c, spc);
    unsigned n = mcache_retired_slots(spc);
    unsigned k = open ? (unsigned)__builtin_ctz(open) : c->evict[spc] % n; /* evict may be past a smaller bound */
    mspan *give = NULL;
    if (s != &gcm_empty_span && !open) {
        c->evict[spc] = (uint8_t)((k + 1) % n);
        give = c->retired[spc][k];
        detach(give);
    }
    mspan *t = mcentral_exchange(&gcm_heap.central[spc], c, give);
    if (!t && (t = gcm_mheap_alloc_small(spc)) != NULL) GCM_STORE(&t->owner, c); /* the mcentral's come owned */
    if (!t) {
        if (give) mcache_free_slot(c, spc, k); /* given back: the slot is free now */
        errno = ENOMEM;
        return NULL;
    }
    if (!mspan_refill_cache(t)) gcm_fatal("mcentral: a partial span has no free object");
    if (s != &gcm_empty_span) retire(c, spc, k, s);
    mcache_make_current(c, spc, t);
    return take_loaded(c, t);
}

void *gcm_mcache_orphan_alloc(unsigned spc) {
    gcm_lock_acquire(&orphan_lock);
    if (GCM_UNLIKELY(!orphan.retired)) {
        for (unsigned i = 0; i < GCM_NUM_SPAN_CLASSES; i++) orphan.alloc[i] = &gcm_empty_span;
        orphan.xhint = orphan_xhint;
        orphan.retired = orphan_retired;
    }
    void *p = mspan_alloc_fast(orphan.alloc[spc]);
    if (!p) p = gcm_mcache_refill(&orphan, spc);
    gcm_lock_release(&orphan_lock);
    return p;
}

void gcm_mcache_orphan_lock(void) { gcm_lock_acquire(&orphan_lock); }
void gcm_mcache_orphan_unlock(void) { gcm_lock_release(&orphan_lock); }
void gcm_mcache_orphan_reinit(void) { gcm_lock_reinit(&orphan_lock); }
