/*
 * mheap.c - spans from pages, pages from arenas, and the scavenger.
 *
 * Allocation: find the first fit for n pages in the page allocator; when none
 * exists, reserve enough new 64 MiB arenas (right after the last one when the
 * OS allows, so runs can cross them) and search again. A span records its
 * pages in heapArena.spans[] for every page it covers, so that any address
 * inside it, interior ones included, leads back to it. Freed large spans of
 * up to 128 KiB skip the page allocator: a per-thread stash (lstash.c) and
 * the large-span cache (below, at LCACHE_CAP_PAGES) keep them whole for the
 * next object of their length.
 *
 * Scavenging (returning memory). Free pages stay resident while the program
 * is likely to take them again, and go back to the OS (madvise DONTNEED,
 * highest pages first) once it is not. The retained budget is the floor plus
 * the decay, or the goal when that is larger:
 *  - the floor, max(SCAV_RETAIN_MIN, in-use / 8);
 *  - decay: the pages that were in use in the last one or two SCAV_DECAY_MS
 *    windows and are free now (peak - in-use), but no more than the program
 *    took again after frees in those windows (its regrowth: how far in-use
 *    rose above its lowest point, up to what the window had freed), and at
 *    most max(SCAV_DECAY_MIN, in-use). A churn of large blocks reuses the
 *    pages it freed a moment ago instead of releasing and faulting them in
 *    again on every cycle (as jemalloc's dirty decay, but over 0.4-0.8 s
 *    instead of 10 s); a program that only shrinks has no regrowth, and
 *    keeps the floor;
 *  - collect mode, while the program allocates: the pacer's heap goal x 1.1
 *    minus in-use, as Go's scavenger keeps. After a collection the heap grows
 *    back to the goal anyway; releasing the freed pages would only fault them
 *    in again.
 * There is no background thread: the budget is checked whenever the heap is
 * entered (a span taken, freed or resized), which is also when the windows
 * move on. The excess over the budget is released once SCAV_DELAY_MS has
 * passed since the last release, or at once: when it passes SCAV_BURST; when
 * an allocation had to fault in released pages (the resident heap never
 * grows past in-use + budget, which is what bounds peak RSS); and when the
 * program shrinks - the run of frees since its last allocation is longer than
 * its regrowth - and the excess reaches max(SCAV_SHRINK_MIN, in-use / 8). The
 * last rule is what brings an idle program back near its floor: the frees
 * that shrink its heap are the last heap entries it makes, so they release,
 * leaving at most that much above the budget. (Releasing every MiB as it
 * appears cost frag 7 500 madvise calls: a shrinking heap frees a span at a
 * time, scattered; in-use / 8 makes it 1 550, against 380 for one release at
 * the end.) malloc_trim(0) releases everything and forgets the recent peaks
 * and regrowth.
 * Released pages read as zero, which calloc uses (mspan.needzero).
 */
#include "mheap.h"
#include "mcache.h"
#include "os.h"
#include "sizeclass.h"

#include <cpuid.h>
#include <errno.h>
#include <string.h>

#define SCAV_RETAIN_MIN_PAGES ((size_t)(4u << 20) >> GCM_PAGE_SHIFT) /* 4 MiB */
#define SCAV_BURST_PAGES ((size_t)(64u << 20) >> GCM_PAGE_SHIFT)     /* 64 MiB */
#define SCAV_SHRINK_MIN_PAGES ((size_t)(1u << 20) >> GCM_PAGE_SHIFT) /* 1 MiB */
#define SCAV_DELAY_MS 100
#define SCAV_DECAY_MS 400
#define SCAV_DECAY_MIN_PAGES ((size_t)(32u << 20) >> GCM_PAGE_SHIFT) /* 32 MiB */

/* The large-span cache (mheap.h: lcache). Without it a large object's
 * malloc+free pair costs a page-allocator search and two summary updates
 * (five levels each), a span and a bitmap from the fixallocs, the scavenger's
 * bookkeeping and a spans[] store per page: pairs/65536 spent 70% of its
 * ~200 ns in the page allocator. A freed large span of up to
 * LCACHE_MAX_PAGES pages is kept whole instead, still published (a large
 * span whose object is free, as in a thread's stash: no spans[] stores
 * either way), and the next large malloc of the same length takes it back
 * (exact length, LIFO: the pages most recently touched), as tcmalloc keeps
 * free spans in per-length lists. Threads take and give them in batches
 * (gcm_mheap_lcache_take/give), one trip to mheap.lock for several. Longer
 * spans are not kept: for them the page work is small next to touching the
 * pages, and with lengths that rarely repeat exactly the cached
 * pages only take the place of free ones the scavenger would have kept for
 * any length (caching up to 1 MiB raised `large alloc 200`'s page faults
 * from 25 600 to 36 400). At most LCACHE_CAP_PAGES are cached. For the
 * scavenger the cached pages are free, not in use, and every release puts
 * them back into the page allocator first (lcache_flush, which unpublishes
 * them), so they stay resident no longer than free pages would; so does a
 * search that found no free run, before the heap grows, and an in-place
 * growth they block. */
#define LCACHE_CAP_PAGES ((size_t)(16u << 20) >> GCM_PAGE_SHIFT) /* 16 MiB */

/* Zero-initialised (in .bss, not paged in at start-up as .data would be):
 * a zero mutex is a valid plain one, and gcm_mheap_init makes it adaptive
 * before the heap is ready, which is before anyone takes it. */
mheap gcm_heap;

bool gcm_mheap_init(void) {
    mheap *h = &gcm_heap;
    if (h->ready) return true;
    unsigned eax, ebx, ecx = 0, edx;
    if (__get_cpuid(1, &eax, &ebx, &ecx, &edx)) gcm_cpu_popcnt = (ecx & bit_POPCNT) != 0;
    gcm_lock_init(&h->lock);
    if (!pa_init(&h->pages)) return false;
    h->pages.release = gcm_os_release;
    gcm_fixalloc_init(&h->spanalloc, sizeof(mspan));
    gcm_fixalloc_init(&h->cachealloc, GCM_MCACHE_ALLOC_SIZE);
    gcm_fixalloc_set_dirty(&h->cachealloc, sizeof(mcache)); /* its retired slots come back NULL */
    for (int i = 0; i < GCM_BITS_POOLS; i++)
        gcm_fixalloc_init(&h->bitsalloc[i], 3 * sizeof(uint64_t) << i);
    for (int i = 0; i < GCM_REQSIZE_POOLS; i++) gcm_fixalloc_init(&h->reqalloc[i], (size_t)64 << i);
    for (unsigned i = 0; i < GCM_NUM_SPAN_CLASSES; i++) mcentral_init(&h->central[i], i);
    __atomic_store_n(&h->ready, true, __ATOMIC_RELEASE);
    return true;
}

size_t gcm_mheap_mapped_locked(void) {
    const pageAlloc *pa = &gcm_heap.pages;
    size_t pages = (size_t)pa->narenas * GCM_PAGES_PER_ARENA - pa->free_scav_pages;
    size_t meta = (size_t)pa->narenas * GCM_ARENA_META_SIZE + gcm_heap.spanalloc.mapped +
                  gcm_heap.cachealloc.mapped;
    for (int i = 0; i < GCM_BITS_POOLS; i++) meta += gcm_heap.bitsalloc[i].mapped;
    for (int i = 0; i < GCM_REQSIZE_POOLS; i++) meta += gcm_heap.reqalloc[i].mapped;
    return (pages << GCM_PAGE_SHIFT) + meta;
}

/* Reserve arenas for at least npages more pages. mheap.lock held. */
static bool heap_grow(size_t npages) {
    mheap *h = &gcm_heap;
    size_t n = (npages + GCM_PAGES_PER_ARENA - 1) / GCM_PAGES_PER_ARENA;
    if (n > PA_MAX_ARENAS - h->pages.narenas) return false;
    heapArena *first = gcm_arena_reserve(n, h->arena_end);
    if (!first) return false;
    for (size_t i = 0; i < n; i++) {
        heapArena *a = gcm_arena_nth(first, i);
        gcm_arena_index_set(a);
        if (!pa_grow(&h->pages, a)) return false;
    }
    h->arena_end = gcm_arena_nth(first, n - 1)->base + GCM_ARENA_SIZE;
    return true;
}

/* Point spans[] of every page in [base, base + npages pages) at s. */
static void set_spans(uintptr_t base, size_t npages, mspan *s) {
    for (size_t i = 0; i < npages;) {
        uintptr_t addr = base + (i << GCM_PAGE_SHIFT);
        heapArena *a = gcm_arena_of(addr);
        size_t first = (addr - a->base) >> GCM_PAGE_SHIFT;
        size_t n = GCM_PAGES_PER_ARENA - first;
        if (n > npages - i) n = npages - i;
        for (size_t j = 0; j < n; j++) GCM_STORE(&a->spans[first + j], s);
        i += n;
    }
}

/* s's first page in page_in_use (on) and page_noscan (on and noscan). */
static void mark_first_page(mspan *s, bool on, bool noscan) {
    heapArena *a = gcm_arena_of(s->base);
    size_t pg = (s->base - a->base) >> GCM_PAGE_SHIFT;
    if (on) gcm_bitmap_set(a->page_in_use, pg);
    else gcm_bitmap_clear(a->page_in_use, pg);
    if (on && noscan) gcm_bitmap_set(a->page_noscan, pg);
    else gcm_bitmap_clear(a->page_noscan, pg);
}

static int bits_pool(size_t nwords) {
    int k = 0;
    while (((size_t)1 << k) < nwords) k++;
    return k;
}

static int reqsize_pool(size_t nelems) {
    int k = 0;
    while (((size_t)64 << k) < nelems * sizeof(uint32_t)) k++;
    return k;
}

/* Make s, whose base and npages are set, a live span of spanclass. */
static void span_publish(mspan *s, unsigned spanclass, size_t reqsize) {
    s->state = SPAN_IN_USE;
    if (spanclass <= 1) mspan_init_large(s, spanclass, reqsize);
    else mspan_init_small(s, spanclass);
    set_spans(s->base, s->npages, s); /* published initialised */
    mark_first_page(s, true, spanclass & 1);
}

/* Undo span_publish: no address leads to s any more. Its per-object arrays
 * go too (a reused span starts without). */
static void span_unpublish(mspan *s) {
    mheap *h = &gcm_heap;
    set_spans(s->base, s->npages, NULL);
    mark_first_page(s, false, false);
    s->state = SPAN_DEAD;
    if (s->reqsizes) gcm_fixalloc_free(&h->reqalloc[reqsize_pool(s->nelems)], s->reqsizes);
    if (s->stackids) gcm_fixalloc_free(&h->reqalloc[reqsize_pool(s->nelems)], s->stackids);
    s->reqsizes = s->stackids = NULL;
}

/* Free an unpublished span's pages, bitmaps and struct. */
static void span_destroy(mspan *s) {
    mheap *h = &gcm_heap;
    pa_free_range(&h->pages, pa_addr_page(gcm_arena_of(s->base), s->base), s->npages);
    gcm_fixalloc_free(&h->bitsalloc[bits_pool(s->nwords)], s->allocBits);
    gcm_fixalloc_free(&h->spanalloc, s);
}

/* Large span s, published, takes spanclass (0 or 1): page_noscan follows. */
static void span_set_large_class(mspan *s, unsigned spanclass) {
    if (s->spanclass == spanclass) return;
    mark_first_page(s, true, spanclass & 1);
    s->spanclass = (uint8_t)spanclass;
}

/* The large-span cache (see LCACHE_CAP_PAGES). mheap.lock held. */
static mspan *lcache_take(size_t npages) {
    mheap *h = &gcm_heap;
    mspan *s = npages <= LCACHE_MAX_PAGES ? h->lcache[npages] : NULL;
    if (!s) return NULL;
    GCM_STORE(&h->lcache[npages], s->next); /* peeked at without the lock (lstash.c) */
    s->next = NULL;
    h->lcache_pages -= npages;
    return s;
}

/* s: a published large span whose object is free (alloc bit clear). */
static bool lcache_put(mspan *s) {
    mheap *h = &gcm_heap;
    if (s->npages > LCACHE_MAX_PAGES || h->lcache_pages + s->npages > LCACHE_CAP_PAGES) return false;
    GCM_STORE(&s->allocCount, 0);
    s->next = h->lcache[s->npages];
    GCM_STORE(&h->lcache[s->npages], s);
    h->lcache_pages += s->npages;
    return true;
}

/* Every cached span's pages back to the page allocator. */
static void lcache_flush(void) {
    if (!gcm_heap.lcache_pages) return;
    for (size_t n = 1; n <= LCACHE_MAX_PAGES; n++)
        for (mspan *s; (s = lcache_take(n)) != NULL;) {
            span_unpublish(s);
            span_destroy(s);
        }
}

uint32_t *gcm_mheap_per_object(mspan *s, uint32_t **field) {
    uint32_t *r = __atomic_load_n(field, __ATOMIC_ACQUIRE);
    if (r) return r;
    gcm_lock_acquire(&gcm_heap.lock);
    r = *field;
    if (!r) {
        r = gcm_fixalloc_alloc(&gcm_heap.reqalloc[reqsize_pool(s->nelems)]);
        __atomic_store_n(field, r, __ATOMIC_RELEASE);
    }
    gcm_lock_release(&gcm_heap.lock);
    return r;
}

/* Pages in use, as the scavenger's policy counts them: cached large spans
 * are free. */
static size_t inuse_pages(const pageAlloc *pa) {
    return (size_t)pa->narenas * GCM_PAGES_PER_ARENA - pa->free_pages - gcm_heap.lcache_pages;
}

/* Move the decay windows on to `now`. The previous window's peak is kept
 * for one more window even after a long pause: a program that was only
 * descheduled (a loaded machine) has not stopped using its pages, and one
 * that is idle releases them at its second heap entry after SCAV_DECAY_MS. */
static void scav_rotate(uint64_t now, size_t inuse) {
    mheap *h = &gcm_heap;
    if (now - h->scav.window_ms < SCAV_DECAY_MS) return;
    h->scav.peak[1] = h->scav.peak[0];
    h->scav.regrow[1] = h->scav.regrow[0];
    h->scav.allocated[1] = h->scav.allocated[0];
    h->scav.peak[0] = inuse;
    h->scav.regrow[0] = 0;
    h->scav.trough[1] = h->scav.trough[0];
    h->scav.fallen[1] = h->scav.fallen[0];
    h->scav.fallen[0] = 0;
    h->scav.allocated[0] = false;
    h->scav.window_ms = now;
}

/* What the program took again after frees in the last one or two windows. */
static size_t scav_regrow(void) {
    const mheap *h = &gcm_heap;
    return h->scav.regrow[0] > h->scav.regrow[1] ? h->scav.regrow[0] : h->scav.regrow[1];
}

/* Note a heap entry's change of in-use: frees lower the windows' troughs,
 * and an allocation rises from the lower one. The rise, up to what the
 * windows have freed (a program that grows after a small free is not taking
 * freed pages again), is the regrowth. Returns true when the program
 * shrinks: the run of frees since its last allocation is longer than
 * anything it took again lately. */
static bool scav_note(bool allocated, size_t inuse) {
    mheap *h = &gcm_heap;
    size_t last = h->scav.last;
    h->scav.last = inuse;
    if (allocated) {
        size_t fallen = h->scav.fallen[0] + h->scav.fallen[1], low = inuse;
        for (int i = 0; i < 2; i++)
            if (h->scav.fallen[i] && h->scav.trough[i] < low) low = h->scav.trough[i];
        size_t again = inuse - low < fallen ? inuse - low : fallen;
        if (again > h->scav.regrow[0]) h->scav.regrow[0] = again;
        h->scav.run_top = inuse;
        return false;
    }
    if (last <= inuse) return false;
    if (!h->scav.fallen[0] || inuse < h->scav.trough[0]) h->scav.trough[0] = inuse;
    h->scav.fallen[0] += last - inuse;
    return h->scav.run_top > inuse && h->scav.run_top - inuse > scav_regrow();
}

/* Free pages to keep resident (see the file comment). */
static size_t scav_budget(size_t inuse) {
    const mheap *h = &gcm_heap;
    size_t keep = inuse / 8 > SCAV_RETAIN_MIN_PAGES ? inuse / 8 : SCAV_RETAIN_MIN_PAGES;
    size_t peak = h->scav.peak[0] > h->scav.peak[1] ? h->scav.peak[0] : h->scav.peak[1];
    if (peak > inuse) {
        size_t cap = inuse > SCAV_DECAY_MIN_PAGES ? inuse : SCAV_DECAY_MIN_PAGES;
        size_t recent = peak - inuse;
        if (recent > scav_regrow()) recent = scav_regrow();
        keep += recent < cap ? recent : cap;
    }
    size_t goal = GCM_LOAD(&h->gc_goal);
    if (goal && (h->scav.allocated[0] || h->scav.allocated[1])) {
        size_t g = (goal + goal / 10) >> GCM_PAGE_SHIFT;
        if (g > inuse && g - inuse > keep) keep = g - inuse;
    }
    return keep;
}

/* Every heap entry ends here: note the demand (`allocated`: pages were just
 * taken; `faulted`: some of them had been released), move the windows on,
 * and release what exceeds the budget. mheap.lock held. */
static void scavenge_maybe(bool allocated, bool faulted) {
    mheap *h = &gcm_heap;
    pageAlloc *pa = &h->pages;
    size_t inuse = inuse_pages(pa);
    uint64_t now = gcm_os_now_ms();
    scav_rotate(now, inuse);
    bool shrinking = scav_note(allocated, inuse);
    if (allocated) {
        if (inuse > h->scav.peak[0]) h->scav.peak[0] = inuse;
        h->scav.allocated[0] = true;
    }
    size_t retained = pa->free_pages - pa->free_scav_pages + h->lcache_pages;
    size_t budget = scav_budget(inuse);
    if (retained <= budget) return;
    size_t excess = retained - budget;
    bool shrunk = shrinking && excess >= SCAV_SHRINK_MIN_PAGES && excess >= inuse / 8;
    if (!faulted && !shrunk && excess < SCAV_BURST_PAGES && now - h->scav.last_ms < SCAV_DELAY_MS) return;
    lcache_flush();
    pa_scavenge(pa, budget);
    h->scav.last_ms = now;
}

/* Take npages pages aligned to align_pages and wrap them in a span.
 * mheap.lock held. */
static mspan *heap_alloc_locked(size_t npages, size_t align_pages, unsigned spanclass, size_t reqsize) {
    mheap *h = &gcm_heap;
    bool large = spanclass <= 1;
    size_t nwords = large ? 1 : (gcm_class_nelems[spanclass >> 1] + 63) / 64;
    size_t want = npages + align_pages - 1;
    if (want < npages) return NULL;
    uint64_t p = pa_find(&h->pages, want);
    if (p == PA_NONE && h->lcache_pages) {
        lcache_flush();
        p = pa_find(&h->pages, want);
    }
    if (p == PA_NONE) {
        if (!heap_grow(want) || (p = pa_find(&h->pages, want)) == PA_NONE) return NULL;
    }
    uintptr_t addr = pa_page_addr(&h->pages, p);
    if (align_pages > 1) {
        uintptr_t aligned = gcm_align_up(addr, align_pages << GCM_PAGE_SHIFT);
        p += (aligned - addr) >> GCM_PAGE_SHIFT;
        addr = aligned;
    }
    mspan *s = gcm_fixalloc_alloc(&h->spanalloc);
    uint64_t *bits = gcm_fixalloc_alloc(&h->bitsalloc[bits_pool(nwords)]);
    if (!s || !bits) {
        if (s) gcm_fixalloc_free(&h->spanalloc, s);
        if (bits) gcm_fixalloc_free(&h->bitsalloc[bits_pool(nwords)], bits);
        return NULL;
    }
    size_t nscav = pa_alloc_range(&h->pages, p, npages);
    s->base = addr;
    s->npages = npages;
    s->nwords = (uint16_t)nwords;
    s->allocBits = bits;
    s->gcmarkBits = bits + nwords;
    s->scopeBits = bits + 2 * nwords;
    s->needzero = nscav != npages;
    span_publish(s, spanclass, reqsize);
    size_t mapped = gcm_mheap_mapped_locked();
    if (mapped > h->peak_mapped) h->peak_mapped = mapped;
    scavenge_maybe(true, nscav != 0);
    return s;
}

void gcm_mheap_note_alloc(size_t bytes) {
    mheap *h = &gcm_heap;
    size_t total = __atomic_add_fetch(&h->gc_alloc_since, bytes, __ATOMIC_RELAXED);
    if (total >= GCM_LOAD(&h->gc_trigger) && !GCM_LOAD(&h->gc_due)) GCM_STORE(&h->gc_due, true);
}

mspan *gcm_mheap_alloc_small(unsigned spanclass) {
    gcm_lock_acquire(&gcm_heap.lock);
    mspan *s = heap_alloc_locked(gcm_class_npages[spanclass >> 1], 1, spanclass, 0);
    gcm_lock_release(&gcm_heap.lock);
    return s;
}

void *gcm_mheap_alloc_large(size_t size, size_t align, bool noscan) {
    /* Anything near the address-space size cannot be met: refuse early so the
     * page arithmetic below cannot overflow. */
    if (size > ((size_t)1 << (GCM_ADDR_BITS - 1)) || align > ((size_t)1 << (GCM_ADDR_BITS - 2))) {
        errno = ENOMEM;
        return NULL;
    }
    size_t npages = (size + GCM_PAGE_SIZE - 1) >> GCM_PAGE_SHIFT;
    if (npages == 0) npages = 1;
    size_t align_pages = align > GCM_PAGE_SIZE ? align >> GCM_PAGE_SHIFT : 1;
    gcm_lock_acquire(&gcm_heap.lock);
    mspan *s = align_pages == 1 ? lcache_take(npages) : NULL;
    if (s) {
        s->needzero = 1;
        span_set_large_class(s, noscan ? 1 : 0);
        mspan_reuse_large(s, size);
        scavenge_maybe(true, false);
    } else {
        s = heap_alloc_locked(npages, align_pages, noscan ? 1 : 0, size);
    }
    /* The object's address exists, in a register, before the lock that keeps
     * collections out is released (see mheap.h; mspan_take does the same). */
    void *p = s ? (void *)s->base : NULL;
    __asm__ volatile("" : "+r"(p)::"memory");
    gcm_lock_release(&gcm_heap.lock);
    if (!p) errno = ENOMEM;
    else if (GCM_UNLIKELY(GCM_LOAD(&gcm_heap.gc_pacing))) gcm_mheap_note_alloc(npages << GCM_PAGE_SHIFT);
    return p;
}

void gcm_mheap_free_span(mspan *s) {
    gcm_lock_acquire(&gcm_heap.lock);
    span_unpublish(s);
    span_destroy(s);
    scavenge_maybe(false, false);
    gcm_lock_release(&gcm_heap.lock);
}

size_t gcm_mheap_lcache_take(size_t npages, unsigned spanclass, mspan **out, size_t max) {
    size_t n = 0;
    gcm_lock_acquire(&gcm_heap.lock);
    for (mspan *s; n < max && (s = lcache_take(npages)) != NULL; n++) {
        span_set_large_class(s, spanclass);
        out[n] = s;
    }
    if (n) scavenge_maybe(true, false);
    gcm_lock_release(&gcm_heap.lock);
    return n;
}

void gcm_mheap_lcache_give(mspan *const *spans, size_t n) {
    gcm_lock_acquire(&gcm_heap.lock);
    for (size_t i = 0; i < n; i++) {
        if (lcache_put(spans[i])) continue;
        span_unpublish(spans[i]);
        span_destroy(spans[i]);
    }
    scavenge_maybe(false, false);
    gcm_lock_release(&gcm_heap.lock);
}

void gcm_mheap_free_large(mspan *s) { gcm_mheap_lcache_give(&s, 1); }

/* Whether large span s can grow in place by the n pages from page `end` on:
 * they are free, and they follow s in memory. Page numbers run on from one
 * arena to the next by ordinal, and the next arena need not be the one above
 * (pa_range_free checks that the run is contiguous within itself, not that
 * it joins the page before it). mheap.lock held. */
static bool grows_into(const mspan *s, uint64_t end, size_t n) {
    return pa_range_free(&gcm_heap.pages, end, n) &&
           pa_page_addr(&gcm_heap.pages, end) == s->base + (s->npages << GCM_PAGE_SHIFT);
}

bool gcm_mheap_resize_large(mspan *s, size_t size) {
    mheap *h = &gcm_heap;
    if (size > ((size_t)1 << (GCM_ADDR_BITS - 1))) return false;
    size_t npages = (size + GCM_PAGE_SIZE - 1) >> GCM_PAGE_SHIFT;
    if (npages == 0) npages = 1;
    bool ok = true;
    size_t nscav = 0; /* released pages the growth takes */
    gcm_lock_acquire(&h->lock);
    uint64_t first = pa_addr_page(gcm_arena_of(s->base), s->base);
    if (npages < s->npages) {
        uintptr_t tail = s->base + (npages << GCM_PAGE_SHIFT);
        set_spans(tail, s->npages - npages, NULL);
        pa_free_range(&h->pages, first + npages, s->npages - npages);
    } else if (npages > s->npages) {
        uint64_t end = first + s->npages;
        ok = grows_into(s, end, npages - s->npages);
        if (!ok && h->lcache_pages) { /* cached spans may sit right after s */
            lcache_flush();
            ok = grows_into(s, end, npages - s->npages);
        }
        if (ok) {
            nscav = pa_alloc_range(&h->pages, end, npages - s->npages);
            if (nscav != npages - s->npages) s->needzero = 1;
            set_spans(s->base + (s->npages << GCM_PAGE_SHIFT), npages - s->npages, s);
        }
    }
    if (ok) {
        bool grew = npages > s->npages;
        s->npages = npages;
        s->elemsize = npages << GCM_PAGE_SHIFT;
        s->reqsize = size;
        size_t mapped = gcm_mheap_mapped_locked();
        if (mapped > h->peak_mapped) h->peak_mapped = mapped;
        scavenge_maybe(grew, nscav != 0);
    }
    gcm_lock_release(&h->lock);
    return ok;
}

void gcm_mheap_each_span(void (*fn)(mspan *s, void *ctx), void *ctx) {
    const pageAlloc *pa = &gcm_heap.pages;
    for (uint32_t ai = 0; ai < pa->narenas; ai++) {
        heapArena *a = pa->arenas[ai];
        for (size_t w = 0; w < GCM_ARENA_BITMAP_WORDS; w++)
            for (uint64_t bits = a->page_in_use[w]; bits; bits &= bits - 1)
                fn(a->spans[w * 64 + (size_t)__builtin_ctzll(bits)], ctx);
    }
}

void gcm_mheap_flush_pending(void) {
    for (unsigned i = 0; i < GCM_NUM_SPAN_CLASSES; i++) mcentral_flush_pending(&gcm_heap.central[i]);
}

void gcm_mheap_release_empty(void) {
    for (unsigned i = 0; i < GCM_NUM_SPAN_CLASSES; i++) mcentral_release_empty(&gcm_heap.central[i]);
}

size_t gcm_mheap_scavenge_all(void) {
    gcm_lock_acquire(&gcm_heap.lock);
    lcache_flush();
    size_t n = gcm_heap.ready ? pa_scavenge(&gcm_heap.pages, 0) : 0;
    /* The program said it shrank: what it frees next is not kept for a peak
     * it had before. */
    gcm_heap.scav.peak[0] = gcm_heap.scav.peak[1] = inuse_pages(&gcm_heap.pages);
    gcm_heap.scav.regrow[0] = gcm_heap.scav.regrow[1] = 0;
    gcm_heap.scav.last_ms = gcm_os_now_ms();
    gcm_lock_release(&gcm_heap.lock);
    return n << GCM_PAGE_SHIFT;
}

void gcm_mheap_lock_all(void) {
    for (unsigned i = 0; i < GCM_NUM_SPAN_CLASSES; i++) gcm_lock_acquire(&gcm_heap.central[i].lock);
    gcm_lock_acquire(&gcm_heap.lock);
}

void gcm_mheap_unlock_all(void) {
    gcm_lock_release(&gcm_heap.lock);
    for (unsigned i = GCM_NUM_SPAN_CLASSES; i-- > 0;) gcm_lock_release(&gcm_heap.central[i].lock);
}

void gcm_mheap_reinit_locks(void) {
    gcm_lock_reinit(&gcm_heap.lock);
    for (unsigned i = 0; i < GCM_NUM_SPAN_CLASSES; i++) gcm_lock_reinit(&gcm_heap.central[i].lock);
}
