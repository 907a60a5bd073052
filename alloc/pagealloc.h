/*
 * pagealloc.h - the page allocator: Go's radix tree of free-run summaries.
 *
 * Pages are numbered in a "page space": arena ordinal * 8192 + page within the
 * arena. Arenas get consecutive ordinals in the order they are added. Two
 * neighbouring ordinals are adjacent memory only when the later arena has
 * contig_prev set; free runs never cross a boundary where it is not set.
 *
 * The bottom of the tree is one bit per page (heapArena.palloc, 1 = in use),
 * grouped into chunks of 512 pages. Above it, PA_LEVELS levels of summaries
 * with 8 children per entry: level PA_LEVELS-1 has one summary per chunk,
 * level 0 has one per 8^4 chunks (16 GiB). A summary holds three counts in
 * pages: free pages at the start of its range, the longest free run inside,
 * and free pages at the end. A search for n pages scans level 0 left to right
 * and descends only into entries whose longest run (or a run crossing into
 * them) can hold n pages, so finding pages costs O(levels * 8), not a walk
 * over free lists. The first fit (lowest page) is returned.
 *
 * Scavenged pages: heapArena.scav has a bit per page set when the page was
 * returned to the OS (madvise DONTNEED) or was never touched; such pages read
 * as zero. New arenas start fully scavenged.
 *
 * Invariants: every function requires mheap.lock (or exclusive use of a
 * private pageAlloc in tests). Summaries always equal what the bitmaps say.
 */
#ifndef GCM_PAGEALLOC_H
#define GCM_PAGEALLOC_H

#include "common.h"
#include "arena.h"

#define PA_CHUNK_PAGES 512
#define PA_LEVELS 5
#define PA_FANOUT 8
#define PA_MAX_ARENAS ((size_t)1 << 14) /* 1 TiB of heap */
#define PA_NONE UINT64_MAX

typedef struct pa_sum {
    uint32_t start, max, end;
} pa_sum;

typedef struct pageAlloc {
    pa_sum *sum[PA_LEVELS];   /* level 0 = root side; sized for PA_MAX_ARENAS */
    heapArena **arenas;       /* by ordinal; PA_MAX_ARENAS entries */
    uint32_t narenas;
    size_t free_pages;        /* pages with palloc bit 0 */
    size_t free_scav_pages;   /* free pages that are also scavenged */
    /* Called to return [addr, addr+len) to the OS; may be NULL (tests). */
    void (*release)(uintptr_t addr, size_t len);
} pageAlloc;

/* Reserve the summary arrays (untouched until used). False on ENOMEM. */
bool pa_init(pageAlloc *pa);

/* Add arena a at the next ordinal: sets a->ordinal and a->contig_prev (from
 * the previous arena's base), marks all its pages free and scavenged.
 * False when PA_MAX_ARENAS is reached. */
bool pa_grow(pageAlloc *pa, heapArena *a);

/* First page p such that [p, p+npages) is free and address-contiguous, or
 * PA_NONE. npages >= 1. Does not change anything. */
uint64_t pa_find(const pageAlloc *pa, size_t npages);

/* Mark [p, p+n) allocated (all must be free). Returns how many of those pages
 * were scavenged (they read as zero); clears their scav bits. */
size_t pa_alloc_range(pageAlloc *pa, uint64_t p, size_t n);

/* Mark [p, p+n) free (all must be allocated). Scav bits stay clear. */
void pa_free_range(pageAlloc *pa, uint64_t p, size_t n);

/* True when [p, p+n) is free and address-contiguous (for in-place growth). */
bool pa_range_free(const pageAlloc *pa, uint64_t p, size_t n);

/* Return free, unscavenged pages to the OS, highest pages first, until at
 * most `keep` such pages remain. Returns the number of pages released. */
size_t pa_scavenge(pageAlloc *pa, size_t keep);

/* Page number <-> address. */
GCM_INLINE uintptr_t pa_page_addr(const pageAlloc *pa, uint64_t p) {
    return pa->arenas[p / GCM_PAGES_PER_ARENA]->base +
           ((uintptr_t)(p % GCM_PAGES_PER_ARENA) << GCM_PAGE_SHIFT);
}
GCM_INLINE uint64_t pa_addr_page(const heapArena *a, uintptr_t addr) {
    return (uint64_t)a->ordinal * GCM_PAGES_PER_ARENA +
           ((addr - a->base) >> GCM_PAGE_SHIFT);
}

#endif
