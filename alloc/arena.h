/*
 * arena.h - heap arenas and the arena index.
 *
 * The heap's address space is reserved from the OS in heapArenas of 64 MiB,
 * each aligned to 64 MiB. Each arena carries the metadata for its 8192 pages:
 * spans[] (page -> mspan), the page bitmaps the collector and the page
 * allocator use, and its place (ordinal) in the page allocator's page space.
 *
 * The arena index maps any address to its heapArena in O(1): a flat array of
 * 2^22 pointers, one per 64 MiB of the 48-bit address space. It is a static
 * (.bss) array: 32 MiB of address space that costs memory only where arenas
 * exist, needs no set-up (free() of a foreign pointer before the first malloc
 * still finds "not ours"), and is one RIP-relative load away. free() and the
 * collector's pointer test both go address -> arena -> span -> object.
 *
 * Invariants:
 *  - An arena is never unmapped once created; its index entry never changes.
 *  - spans[], pageInUse, pageNoscan, palloc and scav are written only with
 *    mheap.lock held. spans[] is read without the lock (free, the marker):
 *    an entry is published before any pointer into the span escapes.
 */
#ifndef GCM_ARENA_H
#define GCM_ARENA_H

#include "common.h"

struct mspan;

typedef struct heapArena {
    /* page -> span, for every page of every in-use span; NULL for free pages.
     * Written with mheap.lock; read locklessly. First, so that free()'s
     * lookup indexes the arena pointer directly. */
    struct mspan *spans[GCM_PAGES_PER_ARENA];
    uintptr_t base;     /* 64 MiB aligned */
    uint32_t ordinal;   /* index in the page allocator's arena list */
    bool contig_prev;   /* base == base of ordinal-1 + 64 MiB: free runs may span both */
    /* One bit per page; must hold mheap.lock to write. */
    uint64_t page_in_use[GCM_ARENA_BITMAP_WORDS]; /* first page of each in-use span */
    uint64_t page_marks[GCM_ARENA_BITMAP_WORDS];  /* first page of spans with marked objects (gc) */
    uint64_t page_noscan[GCM_ARENA_BITMAP_WORDS]; /* first page of each noscan span */
    /* Owned by the page allocator (pagealloc.c); mheap.lock. */
    uint64_t palloc[GCM_ARENA_BITMAP_WORDS]; /* 1 = page allocated */
    uint64_t scav[GCM_ARENA_BITMAP_WORDS];   /* 1 = page released to the OS (reads as zero) */
} heapArena;

extern heapArena *gcm_arena_index[GCM_ARENA_INDEX_LEN];

/* The arena holding addr, or NULL. Safe without locks. */
GCM_INLINE heapArena *gcm_arena_of(uintptr_t addr) {
    uintptr_t i = addr >> GCM_ARENA_SHIFT; /* one shift serves the bound check and the index */
    if (GCM_UNLIKELY(i >= ((uintptr_t)1 << (GCM_ADDR_BITS - GCM_ARENA_SHIFT)))) return NULL;
    return GCM_LOAD(&gcm_arena_index[i]);
}

/* The span holding addr, or NULL (not heap memory, or a free page). */
GCM_INLINE struct mspan *gcm_span_of(uintptr_t addr) {
    heapArena *a = gcm_arena_of(addr);
    if (GCM_UNLIKELY(a == NULL)) return NULL;
    return GCM_LOAD(&a->spans[(addr >> GCM_PAGE_SHIFT) & (GCM_PAGES_PER_ARENA - 1)]);
}

/* Publish arena a (a->base set) in the index. Must hold mheap.lock. */
void gcm_arena_index_set(heapArena *a);

/* Reserve `n` contiguous new arenas from the OS (address space + metadata),
 * at `hint` when that address is free (0: anywhere). Returns the first
 * heapArena, base set, not yet published; arena i is gcm_arena_nth(first, i).
 * NULL on ENOMEM. */
heapArena *gcm_arena_reserve(size_t n, uintptr_t hint);
#define GCM_ARENA_META_SIZE ((sizeof(heapArena) + GCM_PAGE_SIZE - 1) & ~(GCM_PAGE_SIZE - 1))
GCM_INLINE heapArena *gcm_arena_nth(heapArena *first, size_t i) {
    return (heapArena *)((char *)first + i * GCM_ARENA_META_SIZE);
}

GCM_INLINE void gcm_bitmap_set(uint64_t *bm, size_t i) { bm[i >> 6] |= (uint64_t)1 << (i & 63); }
GCM_INLINE void gcm_bitmap_clear(uint64_t *bm, size_t i) { bm[i >> 6] &= ~((uint64_t)1 << (i & 63)); }
GCM_INLINE bool gcm_bitmap_get(const uint64_t *bm, size_t i) { return (bm[i >> 6] >> (i & 63)) & 1; }

#endif
