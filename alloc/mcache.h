/*
 * mcache.h - the per-thread cache: one current span per span class.
 *
 * A thread allocates small objects from the spans its mcache holds without
 * any lock or atomic read-modify-write (mspan_alloc_fast), and frees into
 * them the same way. Per span class the mcache holds the current span and up
 * to mcache_retired_slots(class) retired ones: spans it
 * used up and still owns, so that the thread's own frees into them stay local
 * (a ring or stack of live objects spans several spans). When the current
 * span's cache runs dry the refill looks for free objects inside the current
 * span, in the retired spans that had local frees (hasfree: one bit per
 * retired slot, set by free) and in those with remote frees, and takes the
 * first span that offers at least mcache_refill_want objects. When none does,
 * a new span from the mcentral is worth more than a few objects (see
 * mcache_refill_want) while a retired slot is free; once all are taken, the
 * first span with any.
 * Taking a span from the mcentral retires the current one, and returns the
 * oldest retired one when all slots are taken, in the same trip to the
 * mcentral's lock (mcentral_exchange).
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
#include "sizeclass.h"

/* Retired slots per class: 32 pages' worth of spans, 8 to 32 of them
 * (mcache_retired_slots). A bound in pages
 * rather than spans keeps what a thread holds the same when spans are
 * longer: with 32 slots for the 4-page spans too, larson-8's peak RSS grew
 * 34 % (24.7 -> 33.2 MiB); with 8 it stayed within 2 %. */
#define MCACHE_RETIRED 32 /* the most: the slot masks are 32 bits wide */
#define MCACHE_RETIRED_PAGES 32
#define MCACHE_RETIRED_MIN 8
/* In a single-threaded process, twice the pages (up to MCACHE_RETIRED): the
 * bound keeps threads from holding spans the others could use, and there
 * are no others. A queue of 1 000 blocks of 512 B (32 two-page spans) or a
 * burst of 100 of 4 KiB (13 four-page spans) then fits the slots, and the
 * thread's frees stay its own: instructions per malloc+free, fifo/512
 * 141.1 -> 106.8, lifo/4096 180.4 -> 100.3. Once a second thread starts,
 * the refill fills and evicts only the slots below the smaller bound; those
 * a thread had filled above it stay in use (a swap puts the current span in
 * the slot it takes from), so it holds no more than it did. */
#define MCACHE_RETIRED_ALONE_FACTOR 2
_Static_assert(MCACHE_RETIRED_MIN >= 1 && MCACHE_RETIRED <= 32, "retired slots are tracked in 32-bit masks");
#define MCACHE_LSTASH 8 /* freed large spans a thread keeps (lstash.c) */

typedef struct mcache {
    /* Owner thread only. */
    mspan *alloc[GCM_NUM_SPAN_CLASSES];    /* current span per span class */
    uint32_t hasfree[GCM_NUM_SPAN_CLASSES]; /* retired slots freed into since last looked at */
    uint32_t occupied[GCM_NUM_SPAN_CLASSES]; /* retired slots holding a span: bit k iff retired[.][k] */
    uint8_t evict[GCM_NUM_SPAN_CLASSES];    /* next retired slot to give back when all are taken */
    uint8_t seek[GCM_NUM_SPAN_CLASSES];     /* the quick refill looks for hasfree slots from here on */
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
    /* Owner thread only: the stash (lstash.c), spans of large objects (up
     * to LCACHE_MAX_PAGES) this thread freed or took from the large-span
     * cache, still published but free, for its next large mallocs of the
     * same length and span class. lstash[0, lstash_n) oldest first;
     * lstash_pages: their pages. A fork child reads lstash_n and the slots
     * below it of a vanished thread's mcache (lstash.c says in which order
     * they are written). */
    mspan *lstash[MCACHE_LSTASH];
    uint8_t lstash_n;
    uint16_t lstash_pages;
    /* Written by other threads, atomically: xhint[spc] != 0 when a remote
     * free may have gone into a retired span of class spc since the refill
     * last looked (mcache_note_remote; the owner sets it too, when it
     * retires a span with remote frees). The refill scans the retired spans
     * for remote frees only then: a thread that is the only one to free its
     * objects (a queue of 4 KiB blocks, two to a one-page span, refilled
     * every second malloc) paid ~230 instructions per refill loading 32
     * spans' xfree words for nothing. The bytes live after the retired
     * slots, away from what the fast path reads and outside what
     * mheap.cachealloc clears with plain stores when it hands the memory out
     * again: a free that read its span's holder just before that holder's
     * thread exited may still write here (a stray hint costs one needless
     * scan). */
    uint8_t *xhint;
} mcache;

/* An mcache with its retired slots and hint bytes, as mheap.cachealloc
 * hands them out. */
#define GCM_MCACHE_ALLOC_SIZE \
    (sizeof(mcache) + GCM_NUM_SPAN_CLASSES * sizeof(mspan *[MCACHE_RETIRED]) + GCM_NUM_SPAN_CLASSES)

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

/* After a remote free pushed the first object onto the list of a span of
 * class spc that `holder` held (read before the push: once the object is on
 * the list, the span may be emptied and freed): tell the holder's refill.
 * Sequentially consistent with the push's CAS and the refill's exchange of
 * the hint, so that a hint found already set (no store here) is cleared only
 * by an exchange whose scan sees the push. A holder that gave the span away
 * meanwhile gets a hint it does not need; the new holder learns of the push
 * when it retires the span (mcache_make_retired). */
GCM_INLINE void mcache_note_remote(mcache *holder, unsigned spc) {
    if (holder && !__atomic_load_n(&holder->xhint[spc], __ATOMIC_SEQ_CST))
        __atomic_store_n(&holder->xhint[spc], 1, __ATOMIC_SEQ_CST);
}

/* Slow path of a small allocation from c (gcm_mcache_refill). */
void *gcm_mcache_refill_slow(mcache *c, unsigned spc);

/* Retired slots of span class spc (a single-threaded process gets more, see
 * MCACHE_RETIRED_ALONE_FACTOR), and the mask of them. */
#define MCACHE_SPAN_PAGES_MAX 10 /* the longest small span (sizeclass.c) */
/* [single-threaded][pages per span]: the rule above, worked out at compile
 * time (a division at each refill: fifo/512 7.0 -> 7.5 ns, 4 interleaved
 * rounds). */
extern const uint8_t gcm_mcache_retired_slots[2][MCACHE_SPAN_PAGES_MAX + 1];
GCM_INLINE unsigned mcache_retired_slots(unsigned spc) {
    return gcm_mcache_retired_slots[__libc_single_threaded != 0][gcm_class_npages[spc >> 1]];
}
GCM_INLINE uint32_t mcache_all_retired(unsigned spc) {
    return ~(uint32_t)0 >> (32 - mcache_retired_slots(spc));
}
/* The retired slots of class spc that c may still fill. */
GCM_INLINE uint32_t mcache_open_slots(const mcache *c, unsigned spc) {
    return ~c->occupied[spc] & mcache_all_retired(spc);
}

/* s becomes current: frees into it need tell nobody (free's fast path
 * tests fastowner alone). */
GCM_INLINE void mcache_make_current(mcache *c, unsigned spc, mspan *s) {
    s->slotbit = 0;
    GCM_STORE(&s->fastowner, c);
    c->alloc[spc] = s;
}

/* s retires into slot k. Remote frees already on its list are the retired
 * spans' to look at, whoever pushed them: a pusher that read an older holder
 * told that one (mcache_note_remote), so the hint is set here. */
GCM_INLINE void mcache_make_retired(mcache *c, unsigned spc, unsigned k, mspan *s) {
    c->retired[spc][k] = s;
    c->occupied[spc] |= 1u << k;
    s->slotbit = (1u << k);
    GCM_STORE(&s->fastowner, NULL); /* the next free tells the refill (mcache_note_free) */
    if (mspan_has_remote(s)) __atomic_store_n(&c->xhint[spc], 1, __ATOMIC_SEQ_CST);
}

/* The owner c freed an object into its span s, off free's fast path: a
 * retired span's hasfree bit is set, and its later frees take the fast path
 * (fastowner) until the refill has looked at it and cleared the bit
 * (mcache_looked_at). So the fast path writes nothing but the free itself:
 * marking the slot there cost every free 3 instructions and a store. */
GCM_INLINE void mcache_note_free(mcache *c, mspan *s) {
    if (!s->slotbit) return; /* current: fastowner is c already, or c is detoured */
    c->hasfree[s->spanclass] |= s->slotbit;
    GCM_STORE(&s->fastowner, c);
}

/* The refill found no free object in retired slot k: its hasfree bit is
 * cleared, and the next free into it takes the slow path to set it again. */
GCM_INLINE void mcache_looked_at(mcache *c, unsigned spc, unsigned k) {
    c->hasfree[spc] &= ~(1u << k);
    GCM_STORE(&c->retired[spc][k]->fastowner, NULL);
}

/* Retired slot k is empty again. */
GCM_INLINE void mcache_free_slot(mcache *c, unsigned spc, unsigned k) {
    c->retired[spc][k] = NULL;
    c->occupied[spc] &= ~(1u << k);
    c->hasfree[spc] &= ~(1u << k);
}

/* Free objects in s, whose cache ran dry: the refill may pass a few over
 * for a fuller span (mcache_refill_want), and a span it retires keeps them
 * in view through its hasfree bit. */
GCM_INLINE bool mcache_has_frees(const mspan *s) { return s->freedCache || s->allocCount < s->nelems; }

/* The first slot of m (a set of retired slots) in slot order from the one
 * after the slot last swapped in: the span left alone longest. */
GCM_INLINE unsigned mcache_next_slot(const mcache *c, unsigned spc, uint32_t m) {
    uint32_t after = m & (~(uint32_t)0 << c->seek[spc]);
    return (unsigned)__builtin_ctz(after ? after : m);
}

/* Make retired slot k's span current; the current span (if any) takes its
 * slot, and the slot's hasfree bit. */
GCM_INLINE mspan *mcache_swap_in(mcache *c, unsigned spc, unsigned k) {
    mspan *t = c->retired[spc][k], *s = c->alloc[spc];
    uint32_t bit = 1u << k;
    if (s != &gcm_empty_span) {
        mcache_make_retired(c, spc, k, s);
        if (!mcache_has_frees(s)) c->hasfree[spc] &= ~bit;
    } else {
        mcache_free_slot(c, spc, k);
    }
    mcache_make_current(c, spc, t);
    c->seek[spc] = (uint8_t)((k + 1) % MCACHE_RETIRED);
    return t;
}

/* Nothing but the owner's own frees to look at in s: no remote frees to
 * merge, no garbage to sweep (mspan_refill_cache's order matters otherwise). */
GCM_INLINE bool mcache_span_quiet(const mspan *s) {
    return !mspan_has_remote(s) && !mspan_needs_sweep(s);
}

/* How many free objects make a span worth a refill of class spc: a quarter
 * of its objects (of its cached word, for spans of more than 64). A refill
 * costs a mispredicted branch in malloc and a few more in itself, so it
 * should bring many objects; but a FIFO or random churn left alone brings
 * few: when the current span runs dry, the span being freed into holds the
 * frees since the last refill, and taking it chases the free front (ring-1k:
 * 5.9 mallocs per refill against the 14.6 a whole span would give; larson-1
 * 1.7 objects per swap). Passing such a span over for a new one gives the
 * class slack, and the fully freed spans the slack makes are the ones taken
 * from then on. A quarter bounds what the slack can cost: a span is passed
 * over only while three quarters of it are live. Empty span (nelems 0): 0. */
GCM_INLINE unsigned mcache_refill_want(const mspan *s) {
    unsigned n = s->nelems;
    return (n < 64 ? n : 64) >> 2;
}

/* The refill's common cases, inline in the caller, without merging remote
 * frees or sweeping: objects the thread freed into the cached word
 * (freedCache) of a span it holds become the cache again. When no retired
 * span has frees, the current span's (pairs: nothing to choose, no popcount).
 * Else the next retired span with frees in slot order, from the slot after
 * the last one swapped in (seek): the span left alone longest, which had the
 * longest time to gather frees - a FIFO frees its spans in the order they
 * were used up, a random churn everywhere at once - when it offers
 * mcache_refill_want objects or every retired slot is taken (a new span
 * would then give one back, and turn the frees into it remote). Its objects
 * come without a scan or a popcount per candidate: ring-1k refills once per
 * 13.9 mallocs (ideal 14.6, before 5.9), larson-1 takes 4.1 objects per swap
 * (1.7). The current span is swapped out with what it holds and keeps its
 * hasfree bit. Not with the collector's pacing on (it counts what caches
 * load). The span used must have no remote frees and no garbage to sweep
 * (mspan_refill_cache's order matters then); the mcache's other spans are
 * swept at its next slow refill (sweep_seen), which a span needing a sweep
 * leads to. NULL: take gcm_mcache_refill_slow, which weighs every span. */
GCM_INLINE void *gcm_mcache_refill_quick(mcache *c, unsigned spc) {
    if (GCM_UNLIKELY(GCM_LOAD(&gcm_heap.gc_pacing))) return NULL;
    mspan *s = c->alloc[spc];
    uint64_t f = s->freedCache;
    uint32_t m = c->hasfree[spc];
    if (GCM_LIKELY(m == 0)) {
        if (f == 0 || !mcache_span_quiet(s)) return NULL;
        return mspan_take(s, mspan_reuse_freed(s, f));
    }
    unsigned k = mcache_next_slot(c, spc, m);
    mspan *t = c->retired[spc][k];
    uint64_t g = t->freedCache;
    if (g == 0 || (mcache_open_slots(c, spc) && gcm_popcount64(g) < mcache_refill_want(t)))
        return NULL; /* a new span beats the few objects on offer, while a slot is free */
    if (!mcache_span_quiet(t)) return NULL;
    s = mcache_swap_in(c, spc, k);
    return mspan_take(s, mspan_reuse_freed(s, g));
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
