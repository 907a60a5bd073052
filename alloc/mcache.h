/*
 * mcache.h - the per-thread cache: one current span per span class.
 *
 * A thread allocates small objects from the spans its mcache holds without
 * any lock or atomic read-modify-write (mspan_alloc_fast), and frees into
 * them the same way. Per span class the mcache holds the current span and up
 * to MCACHE_RETIRED retired ones: spans it used up and still owns, so that the
 * thread's own frees into them stay local (a ring or stack of live objects
 * spans several spans). When the current span's cache runs dry the refill
 * looks, in order, for free objects inside the current span, in a retired
 * span that had local frees (hasfree: one bit per retired slot, set by free),
 * in a retired span with remote frees, and only then trades at the mcentral,
 * retiring the full span (and returning the oldest retired one when all slots
 * are taken).
 *
 * gcm_tls_mcache is the thread's mcache. It starts as &gcm_empty_mcache,
 * whose every slot is gcm_empty_span (which never has a free object), so the
 * fast path needs no "is this thread set up" test: the first allocation falls
 * into the slow path, which attaches a real mcache. A thread that has exited
 * (its mcache released) stays on the empty mcache and allocates through the
 * shared orphan mcache, under its lock.
 *
 * Thread-local state is one pointer and one byte (initial-exec TLS), so the
 * library can also be dlopen'ed.
 */
#ifndef GCM_MCACHE_H
#define GCM_MCACHE_H

#include "mheap.h"
#include "mspan.h"

#define MCACHE_RETIRED 32

typedef struct mcache {
    /* Owner thread only. */
    mspan *alloc[GCM_NUM_SPAN_CLASSES];    /* current span per span class */
    uint32_t hasfree[GCM_NUM_SPAN_CLASSES]; /* retired slots freed into since last looked at */
    uint8_t evict[GCM_NUM_SPAN_CLASSES];    /* next retired slot to give back when all are taken */
    uint32_t hasfree_sink; /* where frees into a current span write (a per-thread line, never shared) */
    uint32_t sweep_seen;   /* the last gcm_heap.gc_sweep_epoch this mcache swept for */
    size_t alloc_bytes;    /* pacing: bytes loaded into caches, not yet added to gc_alloc_since */
    /* Owned, used up; NULL = free slot. The slots live outside the struct
     * (after it, for mcaches from mheap.cachealloc): gcm_empty_mcache needs
     * a static initializer and so sits in .data, where 35 KB of empty slots
     * it never uses would be paged in at start-up (NULL here). Row i is
     * all NULL while alloc[i] is gcm_empty_span: walks skip such rows
     * without reading them (a read faults a page in too). */
    mspan *(*retired)[MCACHE_RETIRED];
    struct mcache *next, *prev; /* mheap.allcaches; mheap.lock */
} mcache;

/* An mcache with its retired slots, as mheap.cachealloc hands them out. */
#define GCM_MCACHE_ALLOC_SIZE (sizeof(mcache) + GCM_NUM_SPAN_CLASSES * sizeof(mspan *[MCACHE_RETIRED]))

enum { GCM_THREAD_NEW = 0, GCM_THREAD_ATTACHED = 1, GCM_THREAD_EXITED = 2 };

extern mcache gcm_empty_mcache;
extern GCM_TLS mcache *gcm_tls_mcache;
extern GCM_TLS uint8_t gcm_tls_state;
/* The thread's own mcache, also while it is detoured: in leakcheck mode a
 * thread runs on gcm_empty_mcache so that every allocation takes the slow
 * path (which records the requested size), and frees find their span's owner
 * here. NULL before the thread attaches and after it exits. */
extern GCM_TLS mcache *gcm_tls_own;

/* A new mcache, registered with the heap, or NULL on ENOMEM. */
mcache *gcm_mcache_create(void);
/* Give every span back to its mcentral, unregister and free c. */
void gcm_mcache_destroy(mcache *c);
/* Give every span back to its mcentral (c stays usable). */
void gcm_mcache_flush(mcache *c);
/* Fork child: c belonged to a thread that does not exist here and may have
 * stopped in the middle of a lock-free span operation. Give its spans back
 * after making each one consistent again, then free c. */
void gcm_mcache_abandon(mcache *c);

/* Owner: free the garbage the last collection found in c's spans. */
void gcm_mcache_sweep(mcache *c);

/* Slow path of a small allocation from c (gcm_mcache_refill). */
void *gcm_mcache_refill_slow(mcache *c, unsigned spc);

/* s becomes current: frees into it need tell nobody, and write their zero
 * bit into this thread's own sink (a shared one would bounce between cores). */
GCM_INLINE void mcache_make_current(mcache *c, unsigned spc, mspan *s) {
    s->slotbit = 0;
    s->hasfree = &c->hasfree_sink;
    c->alloc[spc] = s;
}

GCM_INLINE void mcache_make_retired(mcache *c, unsigned spc, unsigned k, mspan *s) {
    c->retired[spc][k] = s;
    s->slotbit = (1u << k);
    s->hasfree = &c->hasfree[spc];
}

/* Make retired slot k's span current; the used-up current span (if any)
 * takes its slot. */
GCM_INLINE mspan *mcache_swap_in(mcache *c, unsigned spc, unsigned k) {
    mspan *t = c->retired[spc][k], *s = c->alloc[spc];
    if (s != &gcm_empty_span) mcache_make_retired(c, spc, k, s);
    else c->retired[spc][k] = NULL;
    mcache_make_current(c, spc, t);
    return t;
}

/* Nothing but the owner's own frees to look at in s: no remote frees to
 * merge, no garbage to sweep (mspan_refill_cache's order matters otherwise). */
GCM_INLINE bool mcache_span_quiet(const mspan *s) {
    return !mspan_has_remote(s) && !mspan_needs_sweep(s);
}

/* The refill's common cases, inline in the caller: the objects the thread
 * freed into the cached word (freedCache) of its current span, or else of
 * the retired span it freed into first (hasfree), become the cache again,
 * when the collector's pacing is off (it counts what caches load). The slow
 * path's prologue alone costs more than this: a malloc/free ring of 1000
 * objects of mixed sizes refills once per six mallocs, larson's churn once
 * per two. The span used must have no remote frees and no garbage to sweep
 * (mspan_refill_cache's order matters then); the mcache's other spans are
 * swept at its next slow refill (sweep_seen), which a span needing a sweep
 * leads to. NULL: take gcm_mcache_refill. */
GCM_INLINE void *gcm_mcache_refill_quick(mcache *c, unsigned spc) {
    if (GCM_UNLIKELY(GCM_LOAD(&gcm_heap.gc_pacing))) return NULL;
    mspan *s = c->alloc[spc];
    uint64_t f = s->freedCache;
    if (f == 0) {
        uint32_t m = c->hasfree[spc];
        if (m == 0) return NULL;
        unsigned k = (unsigned)__builtin_ctz(m);
        s = c->retired[spc][k];
        if (!s || (f = s->freedCache) == 0 || !mcache_span_quiet(s)) return NULL;
        c->hasfree[spc] = m & (m - 1);
        mcache_swap_in(c, spc, k);
    } else if (!mcache_span_quiet(s)) {
        return NULL;
    }
    mspan_reuse_freed(s, f);
    return mspan_take(s, f);
}

/* Refill span class spc of c and allocate: the quick cases above, else the
 * slow path. NULL (errno ENOMEM) when the heap cannot grow. */
GCM_INLINE void *gcm_mcache_refill(mcache *c, unsigned spc) {
    void *p = gcm_mcache_refill_quick(c, spc);
    return p ? p : gcm_mcache_refill_slow(c, spc);
}

/* Small allocation for a thread without an mcache (exited, or its mcache
 * could not be created): the shared orphan mcache, locked. */
void *gcm_mcache_orphan_alloc(unsigned spc);
void gcm_mcache_orphan_lock(void);
void gcm_mcache_orphan_unlock(void);
void gcm_mcache_orphan_reinit(void);

#endif
