/*
 * mheap.h - the page heap: spans come from here, and go back here.
 *
 * The mheap owns the page allocator (pagealloc.h), the heap arenas and the
 * metadata allocators, and the mcentral of every span class. It hands out
 * runs of pages as spans: small spans to mcentrals, and a span of its own to
 * every object over 32 KiB. Freed spans' pages become free pages again; pages
 * that stay free are returned to the OS by the scavenger (see mheap.c).
 *
 * Lock order: mcentral.lock, then mheap.lock. Everything in struct mheap
 * except central[] is protected by mheap.lock.
 */
#ifndef GCM_MHEAP_H
#define GCM_MHEAP_H

#include "fixalloc.h"
#include "lock.h"
#include "mcentral.h"
#include "pagealloc.h"

#define GCM_BITS_POOLS 5    /* span bitmaps (alloc, mark, scope) of 1, 2, 4, 8, 16 words */
#define GCM_REQSIZE_POOLS 7 /* per-object arrays (requested sizes, stack ids) of 64 B .. 4 KiB */
#define LCACHE_MAX_PAGES 16 /* large spans up to 128 KiB are cached on free (mheap.c) */

typedef struct mheap {
    gcm_lock lock;
    bool ready;
    pageAlloc pages;
    fixalloc spanalloc;
    fixalloc cachealloc;
    fixalloc bitsalloc[GCM_BITS_POOLS];
    fixalloc reqalloc[GCM_REQSIZE_POOLS];
    struct mcache *allcaches; /* every mcache, for fork and statistics */
    uintptr_t arena_end;      /* end of the last reserved arena: the next hint */
    /* Freed large spans of up to LCACHE_MAX_PAGES pages kept whole for the
     * next large malloc of the same length (mheap.c, "the large-span
     * cache"): lcache[n] is a stack of n-page spans linked through
     * mspan.next. Their pages stay allocated in the page allocator, but the
     * scavenger's policy counts them as free (lcache_pages), and they go
     * back to it before any release. Cached spans stay published, as large
     * spans whose object is free (alloc bit clear, allocCount 0): a free()
     * of one is a double free, the collector neither marks nor sweeps them;
     * lcache_flush unpublishes them when their pages go back. */
    mspan *lcache[LCACHE_MAX_PAGES + 1];
    size_t lcache_pages;
    size_t peak_mapped;
    /* The scavenger's memory of recent demand (mheap.c explains the policy).
     * Decay windows of SCAV_DECAY_MS: [0] is the current one, which began at
     * window_ms, [1] the one before. peak[i] is the highest in-use page count
     * seen in window i, allocated[i] whether pages were taken in it,
     * fallen[i] the pages freed in it and trough[i] its lowest in-use after
     * a free (valid if fallen[i]), regrow[i] the most in-use rose in it above
     * the lower trough, counting no more than both windows had freed: pages
     * the program took again. The windows move at heap entries only. */
    struct {
        size_t peak[2];
        size_t regrow[2];
        size_t trough[2];
        size_t fallen[2];
        size_t last;          /* in-use at the last heap entry */
        size_t run_top;       /* in-use at the last allocation: the frees since are one run */
        bool allocated[2];
        uint64_t window_ms;
        uint64_t last_ms;     /* when pages were last released */
    } scav;
    /* The collector's hooks into allocation (set by gc/; read without locks).
     * An mcache that has not seen gc_sweep_epoch sweeps its spans at its
     * next refill. With gc_pacing on, every cache load and large object adds
     * its bytes to gc_alloc_since (per mcache, in batches); passing
     * gc_trigger sets gc_due, and the shim starts a collection. */
    uint32_t gc_sweep_epoch;
    bool gc_pacing;
    bool gc_due;
    size_t gc_alloc_since;    /* atomic */
    size_t gc_trigger;
    /* The heap size the pacer lets the program reach before the next
     * collection (last live + trigger), 0 without pacing: the scavenger keeps
     * free pages up to 1.1x of it while the program allocates, as Go does. */
    size_t gc_goal;
    mcentral central[GCM_NUM_SPAN_CLASSES];
} mheap;

extern mheap gcm_heap;

/* Set up the heap (idempotent, not thread-safe: the caller serialises). */
bool gcm_mheap_init(void);

/* A new small span of the given span class, initialised, unowned. */
mspan *gcm_mheap_alloc_small(unsigned spanclass);
/* One object of `size` bytes (> 32 KiB or over-aligned) in a span of its own,
 * aligned to `align` (0 or a power of two); NULL with errno ENOMEM. It returns
 * the object, not the span: the collector must find a pointer to the object
 * in the allocating thread from the moment the span exists (a span pointer
 * alone would leave it garbage to a collection that stops the thread right
 * after mheap.lock is released). */
void *gcm_mheap_alloc_large(size_t size, size_t align, bool noscan);
/* Return a span's pages to the heap. Takes mheap.lock. */
void gcm_mheap_free_span(mspan *s);
/* Free a large object's span (its alloc bit cleared): kept in the
 * large-span cache when it fits, else its pages go back. Takes mheap.lock. */
void gcm_mheap_free_large(mspan *s);
/* The large-span cache in batches, one trip to mheap.lock each (the
 * per-thread stash's supply, lstash.c). Take: up to max spans of npages
 * pages from the cache into out[], set to spanclass, published, their
 * objects free (alloc bit clear, allocCount 0); returns how many. Give: n
 * such spans back, as gcm_mheap_free_large. */
size_t gcm_mheap_lcache_take(size_t npages, unsigned spanclass, mspan **out, size_t max);
void gcm_mheap_lcache_give(mspan *const *spans, size_t n);
/* Resize a large span in place to hold `size` bytes (shrinking frees the tail
 * pages; growing needs the following pages free). False if it cannot. */
bool gcm_mheap_resize_large(mspan *s, size_t size);
/* Let every mcentral merge its announced remote frees (spans they empty go
 * back to the heap). Takes each mcentral.lock in turn. */
void gcm_mheap_flush_pending(void);
/* Return the empty spans every mcentral keeps for reuse to the heap
 * (malloc_trim). Takes each mcentral.lock in turn. */
void gcm_mheap_release_empty(void);
/* A per-object uint32_t array of small span s - field is &s->reqsizes or
 * &s->stackids - allocated on first use (NULL when the OS has no memory).
 * Takes mheap.lock the first time. */
uint32_t *gcm_mheap_per_object(mspan *s, uint32_t **field);
/* Call fn for every in-use span (small and large). mheap.lock held. */
void gcm_mheap_each_span(void (*fn)(mspan *s, void *ctx), void *ctx);
/* Pacing: count `bytes` handed out (see gc_pacing). */
void gcm_mheap_note_alloc(size_t bytes);
/* Return every free page to the OS (cached large spans included); bytes
 * released. */
size_t gcm_mheap_scavenge_all(void);

/* Memory the heap holds from the OS and has not released. mheap.lock. */
size_t gcm_mheap_mapped_locked(void);

/* Fork: take / drop / reset every heap lock (mcentrals then the heap). */
void gcm_mheap_lock_all(void);
void gcm_mheap_unlock_all(void);
void gcm_mheap_reinit_locks(void);

#endif
