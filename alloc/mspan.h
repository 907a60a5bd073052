/*
 * mspan.h - a span: a run of pages holding objects of one span class.
 *
 * A small span (span class = size class << 1 | noscan, size class 1..66)
 * holds nelems objects of elemsize bytes at base + i * elemsize. A large span
 * (span class 0 or 1) holds one object of npages pages.
 *
 * Which objects are allocated is recorded in allocBits (1 = allocated). The
 * bits past nelems in the last word are set too, so "free" is simply a zero
 * bit. allocCache holds the free objects of one allocBits word (the word at
 * freeindex / 64), as in Go: the next free object is one count-trailing-zeros
 * away. Unlike Go's, loading the cache *reserves* its objects: their bits are
 * set in allocBits and counted in allocCount at that moment, so malloc's fast
 * path touches allocCache alone. That matters: free writes allocBits and
 * allocCount, and a malloc that read them would wait for free's whole lookup
 * chain (arena index, spans[], multiply) before it could start - the
 * malloc+free pair would run at the latency of that chain. An object the
 * owner frees in the cached word goes into freedCache (mspan_free_owned), a
 * word beside allocCache that malloc does not read: it stays reserved, and
 * when allocCache runs dry the refill moves it back without a bitmap search.
 * (Freeing straight into allocCache would let the next malloc reuse the
 * object at once, but that malloc would then wait for the free's whole
 * lookup chain: malloc+free of one class in a loop ran 1.5x slower.) Any
 * other object becomes allocatable again when its word is next loaded.
 *
 *   allocated(i) = allocBits[i] && !(i in the cached word && cached[i])
 *   cached       = allocCache | freedCache (mspan_cached)
 *   allocCount   = allocated objects + objects reserved in the cache
 *
 * Frees come two ways:
 *  - by the thread whose mcache holds the span (owner): plain stores, no
 *    atomic read-modify-write;
 *  - by any other thread: the object is pushed on xfree, a lock-free list
 *    threaded through the freed objects themselves (mimalloc's thread-free
 *    list). The low 3 bits of xfree carry the span's XFREE_* state, so that
 *    publishing the object and noticing "this span needs its mcentral's
 *    attention" is one compare-and-swap. Remote frees are merged into
 *    allocBits by the owner when its cache runs dry, or by the mcentral.
 *    In a single-threaded process a free into a span its mcentral holds
 *    clears the bit itself (mspan_free_alone).
 *
 * Ownership (who may write allocBits, allocCache, allocCount):
 *   owner != NULL: only that mcache's thread;
 *   owner == NULL: only with the span's mcentral.lock held, or by the only
 *   thread of the process, outside the mcentral (mspan_free_alone).
 * Other threads read allocBits/allocCount with relaxed loads (double-free
 * checks, statistics).
 */
#ifndef GCM_MSPAN_H
#define GCM_MSPAN_H

#include "common.h"
#include "os.h"

struct mcache;

enum { SPAN_DEAD = 0, SPAN_IN_USE = 1 };
enum { SPAN_LIST_NONE = 0, SPAN_LIST_PARTIAL = 1, SPAN_LIST_FULL = 2, SPAN_LIST_EMPTY = 3 };

/* xfree states (low bits of mspan.xfree). */
#define XFREE_OWNED 0    /* held by an mcache: remote frees only push */
#define XFREE_NOTIFY 1   /* in its mcentral: the next remote free announces the span */
#define XFREE_NOTIFIED 2 /* announced: on the mcentral's pending stack, or about to be */
#define XFREE_STATE 7

typedef struct mspan {
    /* Cache line 0: all that free's fast path reads, and malloc's allocCache
     * (spans are 64-byte aligned, alloc/fixalloc.c). A free by the owner
     * touches this line of the span and nothing else of it; a free into the
     * cached word touches no bitmap either. */
    uintptr_t base;       /* constant while in use (set under mheap.lock) */
    uint32_t divmul;      /* constant: (off * divmul) >> 32 == off / elemsize */
    uint32_t divlimit;    /* constant: off is a multiple of elemsize iff (uint32)(off * divmul) <= divlimit */
    struct mcache *owner; /* relaxed; changes under mcentral.lock */
    /* Owner's (see the header comment). */
    uint64_t allocCache;  /* reserved free objects of allocBits[freeindex / 64] */
    uint64_t freedCache;  /* reserved too: objects of that word the owner freed since, and
                           * fresh ones not handed out yet (mspan_hand_out) */
    /* Relaxed; what free's fast path compares with the thread's mcache: the
     * owner for its current span and for retired spans whose hasfree bit is
     * set (mcache_note_free), NULL otherwise - never a mcache that does not
     * own the span. */
    struct mcache *fastowner;
    uint32_t slotbit;     /* the owner's retired slot (mcache.hasfree bit); 0 if current */
    uint16_t freeindex;   /* first object of the cached word (a multiple of 64) */
    uint16_t allocCount;  /* allocated + reserved objects; relaxed reads by others */
    uint8_t scoped;       /* scopeBits was ever written since the span was set up; atomic */
    uint8_t spanclass;    /* constant */
    uint8_t state;        /* SPAN_*; mheap.lock */
    uint8_t list;         /* SPAN_LIST_*; mcentral.lock */

    /* Cache line 1: the rest of malloc's fast path, and the bitmaps. */
    uintptr_t cacheBase;  /* owner's: address of object freeindex */
    size_t elemsize;      /* constant: object size; npages * page for large spans */
    uint64_t *cacheWord;  /* owner's: &allocBits[freeindex / 64] */
    uint64_t *allocBits;
    /* The collector's bits (gc/mark.c, gc/sweep.c). While the world is
     * stopped they are mark bits; when it restarts, each span's gcmarkBits
     * hold its *garbage*: objects that were allocated and unmarked. The
     * garbage is freed before the span hands out objects again, by whoever
     * may write allocBits (the owner, or mcentral.lock holder when unowned):
     * sweep_gen != swept_gen says it is still to do (mspan_sweep). The
     * collector writes gcmarkBits and sweep_gen only with the world stopped,
     * and never writes an owned span's allocation state: a stopped owner may
     * be halfway through a free or a cache load. */
    uint64_t *gcmarkBits;
    uint64_t *scopeBits;  /* gcm_malloc_scoped objects not yet freed or escaped (gc/scope.c); atomic */
    size_t npages;        /* constant */
    uint16_t nelems;      /* constant */
    uint16_t nwords;      /* constant: words in allocBits and gcmarkBits */
    uint8_t needzero;     /* large spans: pages may hold old data */
    uint16_t fresh;       /* owner's: objects from here on were never handed out (mspan_hand_out) */

    /* Cache line 2: what other threads write - remote frees and the
     * mcentral's links - kept off the owner's lines. */
    uintptr_t xfree __attribute__((aligned(64))); /* atomic: remote-free list | XFREE_* */
    struct mspan *pending_next; /* link on mcentral.pending */
    struct mspan *next, *prev;  /* mcentral partial/full list; mcentral.lock */
    uint32_t sweep_gen;   /* the collection whose garbage gcmarkBits hold */
    uint32_t swept_gen;   /* the last collection swept; owner (or mcentral.lock) */
    uint32_t *reqsizes;   /* requested size per object, recorded in leakcheck and check modes; NULL if none.
                           * Check mode: top bit set by the free that took the object (alloc/check.c) */
    size_t reqsize;       /* large spans: the requested size (statistics); top bit as reqsizes' */
    /* Allocation stack ids (gc/stacks.h), recorded with reqsizes when
     * GCMALLOC_LEAKCHECK_STACKS is on: per object for a small span (NULL if
     * none), stackid for a large one; 0 = none. */
    uint32_t *stackids;
    uint32_t stackid;
} mspan;
_Static_assert(__builtin_offsetof(mspan, cacheBase) == 64, "free's fields fill cache line 0 exactly");

/* A span with no free objects that belongs to nobody: every slot of an
 * unused mcache points here, so the fast path needs no NULL check. */
extern mspan gcm_empty_span;

/* A large span: one object of its own (span class 0, or 1 when noscan). */
GCM_INLINE bool mspan_is_large(const mspan *s) { return s->spanclass <= 1; }

/* Object index of address p inside small span s (no divide). */
GCM_INLINE size_t mspan_obj_index(const mspan *s, uintptr_t p) {
    return (size_t)(((uint64_t)(p - s->base) * s->divmul) >> 32);
}

/* Index of the object at p, and whether p is its first byte, from one
 * multiply: for an offset that is an exact multiple of elemsize the low 32
 * bits of off * divmul stay small (<= divlimit), for any other they exceed
 * it. tests/unit/mspan checks this for every offset of every class. Large
 * spans (divmul 0) always pass; their callers check p == base. */
GCM_INLINE size_t mspan_obj_index_exact(const mspan *s, uintptr_t p, bool *exact) {
    uint64_t m = (uint64_t)(p - s->base) * s->divmul;
    *exact = (uint32_t)m <= s->divlimit;
    return (size_t)(m >> 32);
}

/* The CPU has POPCNT (CPUID leaf 1, ECX bit 23). Set once by gcm_mheap_init,
 * before the first span exists; read on every count. */
extern bool gcm_cpu_popcnt;

/* Count of set bits. Baseline x86-64 lacks POPCNT, and without it GCC's
 * builtin is a call into libgcc; the portable count is 12 instructions, so
 * the refill, the sweep and the remote-free merge test the flag (one
 * predicted branch) and use the instruction. The xor breaks the false
 * dependency some CPUs give the destination. */
GCM_INLINE unsigned gcm_popcount64(uint64_t x) {
    if (GCM_LIKELY(gcm_cpu_popcnt)) {
        uint64_t n;
        __asm__("xor %k0, %k0\n\tpopcnt %1, %0" : "=&r"(n) : "r"(x) : "cc");
        return (unsigned)n;
    }
    x = x - ((x >> 1) & 0x5555555555555555ull);
    x = (x & 0x3333333333333333ull) + ((x >> 2) & 0x3333333333333333ull);
    x = (x + (x >> 4)) & 0x0f0f0f0f0f0f0f0full;
    return (unsigned)((x * 0x0101010101010101ull) >> 56);
}

/* Index of the lowest set bit of x != 0, as a 64-bit value. __builtin_ctzll
 * returns an int that GCC then sign-extends (one more instruction on
 * malloc's fast path). TZCNT is encoded as REP BSF, which CPUs without BMI1
 * run as BSF: the same result for x != 0. The xor breaks the false
 * dependency some CPUs give the destination. */
GCM_INLINE uint64_t gcm_ctz64_nonzero(uint64_t x) {
    uint64_t i;
    __asm__("xor %k0, %k0\n\trep bsf %1, %0" : "=&r"(i) : "r"(x) : "cc");
    return i;
}

/* Bit i % 64 of x; x with it set; x with it clear. BT, BTS and BTR take the
 * bit number mod 64 themselves, where C's 1 << (i & 63) costs free's fast
 * path the mask, the 1 and the shift (GCC keeps all three): 3 instructions
 * per free (callgrind, pairs). */
GCM_INLINE bool gcm_bit_test(uint64_t x, uint64_t i) {
    bool set;
    __asm__("bt %2, %1" : "=@ccc"(set) : "r"(x), "r"(i));
    return set;
}
GCM_INLINE uint64_t gcm_bit_set(uint64_t x, uint64_t i) {
    __asm__("bts %1, %0" : "+r"(x) : "r"(i) : "cc");
    return x;
}
GCM_INLINE uint64_t gcm_bit_clear(uint64_t x, uint64_t i) {
    __asm__("btr %1, %0" : "+r"(x) : "r"(i) : "cc");
    return x;
}

/* Fast path: the next free object of s, or NULL when the cache is used up.
 * Owner only. Reads allocCache alone, which only the owner's frees into the
 * cached word write. */
GCM_INLINE void *mspan_take(mspan *s, uint64_t c) { /* c = s->allocCache != 0 */
    void *p = (void *)(s->cacheBase + gcm_ctz64_nonzero(c) * s->elemsize);
    /* p exists, in a register, before the object leaves the cache: a
     * collector that stops this thread right after the store below finds p
     * in its saved registers. The other order would leave an allocated
     * object no word points to, and the collector would free it. */
    __asm__ volatile("" : "+r"(p)::"memory");
    GCM_STORE(&s->allocCache, c & (c - 1)); /* statistics read it from other threads */
    return p;
}
GCM_INLINE void *mspan_alloc_fast(mspan *s) {
    uint64_t c = s->allocCache;
    return GCM_LIKELY(c != 0) ? mspan_take(s, c) : NULL;
}

/* The objects reserved in s's cache: free, not handed out. */
GCM_INLINE uint64_t mspan_cached(const mspan *s) {
    return GCM_LOAD(&s->allocCache) | GCM_LOAD(&s->freedCache);
}

/* Is object idx reserved in s's cache? */
GCM_INLINE bool mspan_in_cache(const mspan *s, const uint64_t *w, uint64_t bit) {
    return w == GCM_LOAD(&s->cacheWord) && (mspan_cached(s) & bit);
}

/* Report a double free of object idx, and abort. Declared as returning,
 * unlike gcm_fatal_ptr: free's fast path then leaves by a jump to it, in tail
 * position, and needs no stack frame (with frame pointers, a call that is
 * not a tail call costs free a frame's setup and teardown). The span comes
 * last, as in every call free's fast path makes (gcm_dealloc): the first
 * argument register then holds free's p throughout, not the span, and free
 * needs no copy of p. */
__attribute__((cold, noinline)) void mspan_double_free(size_t idx, const char *fn, const mspan *s);

/* Clear object idx's bit in allocBits. `maybe_cached`: idx may lie in the
 * cached word, where a set bit can also mean "reserved" (a double free);
 * callers that already know it does not pass false and skip that test. */
GCM_INLINE void mspan_clear_allocated(mspan *s, size_t idx, const char *fn, bool maybe_cached) {
    uint64_t *w = &s->allocBits[idx >> 6];
    uint64_t v = GCM_LOAD(w);
    if (GCM_UNLIKELY(!gcm_bit_test(v, idx) || (maybe_cached && mspan_in_cache(s, w, (uint64_t)1 << (idx & 63))))) {
        mspan_double_free(idx, fn, s);
        return;
    }
    GCM_STORE(w, gcm_bit_clear(v, idx));
    GCM_STORE(&s->allocCount, (uint16_t)(s->allocCount - 1));
}

/* Free object idx by the span's owner (or with mcentral.lock when unowned). */
GCM_INLINE void mspan_free_local(mspan *s, size_t idx, const char *fn) { mspan_clear_allocated(s, idx, fn, true); }

/* Objects `bits` of bitmap word `word` are no longer scoped objects
 * (gc/scope.c): they were freed, or are being handed out again. */
GCM_INLINE void mspan_unscope(mspan *s, size_t word, uint64_t bits) {
    uint64_t *scoped = &s->scopeBits[word];
    if (GCM_UNLIKELY(GCM_LOAD(scoped) & bits)) __atomic_fetch_and(scoped, ~bits, __ATOMIC_RELAXED);
}

/* Free object idx by the span's owner thread. An object of the cached word
 * (idx and freeindex share their high bits: one xor, no address) goes into
 * freedCache (reserved again, so allocCount stays; see the header comment),
 * any other is cleared in allocBits. The reserved slot's scope bit is
 * dropped now: its allocBits bit stays set, so to another thread closing a
 * scope (which cannot read the owner's cache) the object would still look
 * allocated and scoped. Only spans that ever held a scoped object look at
 * the scope bitmap (s->scoped). */
GCM_INLINE void mspan_free_owned(mspan *s, size_t idx, const char *fn) {
    if ((idx ^ s->freeindex) >= 64) {
        mspan_clear_allocated(s, idx, fn, false);
        return;
    }
    uint64_t f = s->freedCache;
    if (GCM_UNLIKELY(gcm_bit_test(s->allocCache | f, idx))) {
        mspan_double_free(idx, fn, s);
        return;
    }
    GCM_STORE(&s->freedCache, gcm_bit_set(f, idx));
    if (GCM_UNLIKELY(s->scoped)) mspan_unscope(s, idx >> 6, (uint64_t)1 << (idx & 63));
}

/* Is object idx allocated? `owner`: the caller is the span's owner thread
 * (or holds its mcentral's lock while it is unowned). Only then is the
 * answer exact: another thread cannot read cacheWord and allocCache as one
 * pair while the owner reloads them (it could see the old word with the new
 * cache), so for it an object reserved in the owner's cache reads as
 * allocated. A double free from another thread is then caught when the owner
 * merges the remote-free list. */
GCM_INLINE bool mspan_is_allocated(const mspan *s, size_t idx, bool owner) {
    const uint64_t *w = &s->allocBits[idx >> 6];
    uint64_t bit = (uint64_t)1 << (idx & 63);
    return (GCM_LOAD(w) & bit) && !(owner && mspan_in_cache(s, w, bit));
}

/* Objects of bitmap word w of small span s that are allocated - set in
 * allocBits, not reserved in the owner's cache, not past nelems - as the
 * collector sees them with the world stopped (or under mcentral.lock). */
GCM_INLINE uint64_t mspan_allocated_word(const mspan *s, size_t w) {
    uint64_t alloc = GCM_LOAD(&s->allocBits[w]);
    if (s->owner && s->cacheWord == &s->allocBits[w]) alloc &= ~mspan_cached(s);
    if (w + 1 == s->nwords && (s->nelems & 63)) alloc &= ((uint64_t)1 << (s->nelems & 63)) - 1;
    return alloc;
}

/* Set up a fresh small span's bitmaps and cache (mheap, at creation). */
void mspan_init_small(mspan *s, unsigned spanclass);
/* Set up a large span: one object. */
void mspan_init_large(mspan *s, unsigned spanclass, size_t reqsize);
/* Large span s, published, its object free (a thread's stash, the
 * large-span cache), holds a new object of reqsize bytes: what the last
 * object changed is reset, the alloc bit last, with atomic stores -
 * statistics read these fields under mheap.lock, which the stash's owner
 * does not hold. Its length and span class stay as they are. */
GCM_INLINE void mspan_reuse_large(mspan *s, size_t reqsize) {
    GCM_STORE(&s->gcmarkBits[0], 0);
    GCM_STORE(&s->scopeBits[0], 0);
    GCM_STORE(&s->scoped, 0);
    GCM_STORE(&s->stackid, 0);
    GCM_STORE(&s->reqsize, reqsize);
    GCM_STORE(&s->allocCount, 1);
    GCM_STORE(&s->allocBits[0], ~(uint64_t)0);
}

/* Push object p (already validated) on s's remote-free list. Returns
 * XPUSH_ANNOUNCE when this push announced the span (XFREE_NOTIFY ->
 * NOTIFIED): the caller must then hand s to its mcentral's pending stack;
 * XPUSH_FIRST when p is the first object on the list of a span an mcache
 * holds: the caller must tell the holder (mcache_note_remote; the pushes
 * after it find the list non-empty, and whoever pushed first has told, or
 * is about to); else 0. */
enum { XPUSH_ANNOUNCE = 1, XPUSH_FIRST = 2 };
int mspan_free_remote(mspan *s, void *p, const char *fn);

/* Free object idx of s, which its mcentral holds (owner NULL, xfree state
 * NOTIFY or NOTIFIED, no garbage to sweep), in a single-threaded process:
 * straight into allocBits, as the drain would, with no list push and no
 * merge later. Only one thread exists, and it is not inside the mcentral
 * (nothing there frees), so nobody else reads or writes s meanwhile: the
 * ownership rule's lock is not needed. The first such free since the
 * mcentral last looked still announces s (returns XPUSH_ANNOUNCE), so that
 * the drain moves it from full to partial, or to the mheap once empty. */
GCM_INLINE int mspan_free_alone(mspan *s, size_t idx, const char *fn) {
    mspan_clear_allocated(s, idx, fn, false); /* an unowned span caches nothing (mspan_release_cache) */
    if (GCM_LOAD(&s->xfree) != XFREE_NOTIFY) return 0; /* NOTIFIED: on the pending stack already */
    GCM_STORE(&s->xfree, XFREE_NOTIFIED);
    return XPUSH_ANNOUNCE;
}

/* Merge a remote-free list (already detached from xfree) into allocBits.
 * Same ownership rule as mspan_free_local. */
void mspan_merge_remote(mspan *s, uintptr_t list);

GCM_INLINE bool mspan_has_remote(const mspan *s) {
    return GCM_LOAD(&s->xfree) & ~(uintptr_t)XFREE_STATE;
}
/* Owner: merge the remote-free list into allocBits. */
void mspan_take_remote(mspan *s);
/* The collector, world stopped: set in `bits` (nwords words, clear for the
 * listed objects) every object on s's remote-free list. Nothing detaches the
 * list meanwhile (owners are stopped, the collector holds the mcentral
 * locks), and a push publishes an object already linked, so the walk is safe
 * even against a push from a thread the collector no longer stops (an
 * exiting one). An object freed twice before its merge makes the list loop:
 * the walk stops at the first object it meets again, and the merge reports
 * the double free. */
void mspan_remote_bits(const mspan *s, uint64_t *bits);

/* The objects of `free` (of the cached word) that start in the page where
 * its lowest one does, at least MSPAN_FRESH_MIN of them, and the fresh mark
 * moved past them. Apart from mspan_hand_out's common case. The minimum
 * bounds the refills of a malloc+free loop: a page holds two 4 KiB objects,
 * and a refill every second malloc took pairs/4096 from 6.8 to 9.8 ns
 * (16: 7.0); with 8, pairs-random ran 3.3 more instructions per
 * malloc+free than with no split, with 16, 2.2. */
#define MSPAN_FRESH_MIN 16
GCM_NOINLINE uint64_t mspan_fresh_page(mspan *s, uint64_t free);

/* Of `free` (objects of the cached word, nonzero), those the cache hands out
 * now; the rest wait in freedCache. Objects from s->fresh on were never
 * handed out since the span was set up, so their pages may be untouched:
 * while an object before the mark is free, those go first, and the fresh
 * ones come a page (at least MSPAN_FRESH_MIN) at a time. A thread that
 * mallocs and frees one block of a class (malloc takes the lowest object)
 * then stays in the first page or two of a 4-page span of 32 objects
 * instead of touching all four. Once the whole span has
 * been handed out, this is one compare. (Splitting at pages whether fresh
 * or not cost larson-1 18 % more instructions: a refill per page.) */
GCM_INLINE uint64_t mspan_hand_out(mspan *s, uint64_t free) {
    int64_t n = (int64_t)s->fresh - (int64_t)s->freeindex; /* of the word's objects, not fresh */
    if (GCM_LIKELY(n >= 64)) return free;
    uint64_t old = n > 0 ? free & (((uint64_t)1 << n) - 1) : 0;
    return old ? old : mspan_fresh_page(s, free);
}

/* Load the cache from allocBits[word] (both caches empty), reserving its
 * free objects: in allocCache what mspan_hand_out chooses, the rest in
 * freedCache. The
 * cache is written before the bitmap word: a collector that stops the owner
 * in between sees the objects free either way (bit clear, or bit set and
 * cached), never allocated. */
GCM_INLINE void mspan_set_cache(mspan *s, size_t word) {
    uint64_t *w = &s->allocBits[word];
    uint64_t free = ~GCM_LOAD(w);
    s->freeindex = (uint16_t)(word * 64);
    s->cacheBase = s->base + (size_t)s->freeindex * s->elemsize;
    GCM_STORE(&s->cacheWord, w);
    uint64_t now = mspan_hand_out(s, free);
    GCM_STORE(&s->allocCache, now);
    GCM_STORE(&s->freedCache, free & ~now);
    GCM_STORE(w, ~(uint64_t)0);
    GCM_STORE(&s->allocCount, (uint16_t)(s->allocCount + gcm_popcount64(free)));
    mspan_unscope(s, word, free); /* new objects (the scoped ones that held the slots were freed) */
}

/* Owner, allocCache empty: the objects freed into the cached word (f, the
 * nonzero freedCache) become the cache again, as mspan_hand_out chooses;
 * returns the new cache. allocCache is written first, so the objects stay
 * cached throughout. */
GCM_INLINE uint64_t mspan_reuse_freed(mspan *s, uint64_t f) {
    uint64_t now = mspan_hand_out(s, f);
    GCM_STORE(&s->allocCache, now);
    GCM_STORE(&s->freedCache, f & ~now);
    return now;
}

GCM_INLINE bool mspan_needs_sweep(const mspan *s) {
    return GCM_LOAD(&s->sweep_gen) != s->swept_gen;
}
/* Free the garbage the last collection found in s (owner, or mcentral.lock
 * with s unowned; remote frees already merged). Returns objects freed. */
size_t mspan_sweep(mspan *s);
/* Set by the collector from the stop until the garbage is recorded, when
 * gcmarkBits hold marks: a sweep then would free every marked - live -
 * object, so mspan_sweep aborts instead. Every thread that may sweep is
 * stopped then, or waits for a lock the collector holds: this catches a
 * collector bug (a thread it failed to stop), not a program's. */
extern bool gcm_sweep_barred;
/* Owner: merge remote frees, then sweep. */
void mspan_sweep_owned(mspan *s);

/* Owner: take remote frees and pending garbage, then refill the cache: from
 * freedCache, else from the first word with free objects, starting at the
 * current one. False when the span is full.
 *
 * A collection may stop the owner anywhere in here, between a merge and the
 * sweep too: the garbage it records never includes an object on the xfree
 * list (they start marked, gc/mark.c), so a sweep never frees what a merge
 * will free, and a merge never frees a slot handed out again. */
GCM_INLINE bool mspan_refill_cache(mspan *s) {
    if (GCM_UNLIKELY(mspan_has_remote(s))) mspan_take_remote(s);
    if (GCM_UNLIKELY(mspan_needs_sweep(s))) mspan_sweep_owned(s);
    if (s->allocCache) return true;
    uint64_t f = s->freedCache;
    if (f) {
        mspan_reuse_freed(s, f);
        return true;
    }
    if (s->allocCount >= s->nelems) return false;
    size_t w = s->freeindex / 64, n = s->nwords;
    for (size_t k = 0; k < n; k++) {
        if (~GCM_LOAD(&s->allocBits[w])) {
            mspan_set_cache(s, w);
            return true;
        }
        if (++w == n) w = 0;
    }
    return false;
}
/* Owner, giving the span up: un-reserve what is left in the cache. */
void mspan_release_cache(mspan *s);
/* Fork child, for a span whose owner vanished mid-operation: give the
 * cache's objects back, keep every other set bit as allocated (an object the
 * owner was halfway through freeing leaks), and recount allocCount from
 * allocBits. */
void mspan_repair_orphaned(mspan *s);

#endif
