/*
 * pagealloc.c - the page allocator: Go's radix tree of free-run summaries
 * (runtime/mpagealloc.go), over the per-arena palloc/scav bitmaps.
 *
 * Why a tree of summaries: a first-fit search over a bitmap is a linear walk,
 * and free lists lose address order (first fit is what keeps the heap compact
 * and lets the scavenger find whole free arenas at the top). A summary of
 * (free at start, longest free run, free at end) is enough to answer "is
 * there a run of n pages in here, or one that starts in my left neighbour and
 * ends in me", so a search reads 8 summaries per level and one chunk of
 * bitmap, whatever the heap size.
 *
 * Geometry. A chunk is 512 pages: 8 bitmap words, one cache line. sum[4] has
 * one summary per chunk; an entry of sum[L] folds 8 entries of sum[L+1], so it
 * covers 512 << 3*(4-L) pages: half an arena at level 3, 4 arenas at level 2,
 * 32 at level 1, 256 (16 GiB) at level 0. The arrays are reserved once for
 * PA_MAX_ARENAS (about 3.6 MiB of address space, of which a small heap
 * touches a few pages) so that growth never moves them. A summary of a chunk
 * that has no arena yet is zero, which reads as "all in use": growing needs no
 * initialisation beyond the new arena's own chunks and their ancestors, and a
 * search cannot produce a page past the last arena.
 *
 * Arena boundaries. Ordinals are dense but addresses need not be: a free run
 * may cross from ordinal k-1 into k only when arena k has contig_prev, or it
 * would hand out pages that are not adjacent in memory. pa_joins() is the one
 * place that rule lives, and run_push() is the one fold that applies it:
 * building a parent from its children, summarising a chunk from its words,
 * scanning a level in pa_find and (through pa_joins) the scavenger's runs all
 * use them. Boundaries below arena granularity always join. Because a
 * non-joining boundary breaks every run, "end == width" means the entry is
 * one free run, and that is how the fold recognises a fully free child.
 *
 * pa_init zeroes the whole pageAlloc (release included): set release after.
 * Misuse (allocating an allocated page, freeing a free one, a range outside
 * the heap) is fatal rather than silently corrupting the summaries.
 *
 * Invariants (every function runs under mheap.lock):
 *  - sum[4][c] summarises chunk c's palloc bits; sum[L][i] is the fold of
 *    sum[L+1][8i .. 8i+7]. Each mutator restores this before it returns.
 *  - A chunk lies inside one arena and a bitmap word inside one chunk, so a
 *    chunk's words are 8 consecutive words of one arena's palloc.
 *  - scav bits are set only on free pages: alloc clears them, free leaves
 *    them clear. Hence free_scav_pages is simply the number of set scav bits.
 *  - free_pages counts zero palloc bits of existing arenas.
 *
 * What we leave out of Go's version: the searchAddr hint (the root level has
 * at most 64 entries, and the mheap's large requests are rare), and the
 * scavenge index (pa_scavenge walks chunks downward, skipping fully allocated
 * ones by their summary; the mheap calls it off the fast path).
 */
#include "pagealloc.h"
#include "os.h"

#define CHUNKS_PER_ARENA (GCM_PAGES_PER_ARENA / PA_CHUNK_PAGES) /* 16 */
#define MAX_CHUNKS (PA_MAX_ARENAS * CHUNKS_PER_ARENA)
#define CHUNK_WORDS (PA_CHUNK_PAGES / 64)
#define LEAF (PA_LEVELS - 1)

_Static_assert(PA_CHUNK_PAGES == 512 && PA_FANOUT == 8, "geometry");
_Static_assert(GCM_PAGES_PER_ARENA % PA_CHUNK_PAGES == 0, "chunks tile arenas");
_Static_assert(MAX_CHUNKS % (1u << 3 * LEAF) == 0, "level 0 tiles the chunks");
_Static_assert(((uint64_t)PA_CHUNK_PAGES << 3 * LEAF) <= UINT32_MAX, "pa_sum width");

/* log2 of the pages covered by one entry of level l. */
static inline unsigned lvl_log(int l) { return 9 + 3 * (LEAF - l); }
/* Entries of level l reserved. */
static inline size_t lvl_len(int l) { return MAX_CHUNKS >> 3 * (LEAF - l); }

static inline uint64_t total_pages(const pageAlloc *pa) {
    return (uint64_t)pa->narenas * GCM_PAGES_PER_ARENA;
}

/* Does a free run ending just below page q continue at q? */
static inline bool pa_joins(const pageAlloc *pa, uint64_t q) {
    if (q % GCM_PAGES_PER_ARENA) return true;
    uint64_t ord = q / GCM_PAGES_PER_ARENA;
    return ord < pa->narenas && pa->arenas[ord]->contig_prev;
}

/*
 * A run accumulator: the summary of everything folded in so far (len pages).
 * run_push folds summary s of the next `width` pages, starting at page
 * `first`, onto its right. It returns the length of the free run that ends at
 * s's first in-use page (s.start plus the left neighbour's tail if the
 * boundary joins): pa_find's "run crossing into this entry".
 */
typedef struct { uint64_t start, max, end, len; } pa_run;

static inline uint64_t run_push(const pageAlloc *pa, pa_run *r, pa_sum s,
                                uint64_t width, uint64_t first) {
    /* end == 0 makes the boundary irrelevant; skip the arena lookup. */
    bool join = r->end != 0 && pa_joins(pa, first);
    uint64_t cross = (join ? r->end : 0) + s.start;
    if (r->start == r->len && (join || r->len == 0)) r->start = r->len + s.start;
    if (cross > r->max) r->max = cross;
    if (s.max > r->max) r->max = s.max;
    r->end = s.end == width ? cross : s.end; /* fully free: cross == tail + width */
    r->len += width;
    return cross;
}

static inline pa_sum run_sum(const pa_run *r) {
    return (pa_sum){(uint32_t)r->start, (uint32_t)r->max, (uint32_t)r->end};
}

/* Longest run of ones in x. */
static unsigned ones_max(uint64_t x) {
    if (x == ~(uint64_t)0) return 64;
    unsigned m = 0;
    while (x) { /* x has a zero bit somewhere, so ~x never becomes 0 here */
        x >>= __builtin_ctzll(x);
        unsigned len = __builtin_ctzll(~x);
        if (len > m) m = len;
        x >>= len;
    }
    return m;
}

/* Summary of one bitmap word given its free bits (1 = free). max only when asked. */
static inline pa_sum word_sum(uint64_t fr, bool want_max) {
    if (fr == ~(uint64_t)0) return (pa_sum){64, 64, 64};
    return (pa_sum){(uint32_t)__builtin_ctzll(~fr), want_max ? ones_max(fr) : 0,
                    (uint32_t)__builtin_clzll(~fr)};
}

static inline const uint64_t *chunk_bits(const pageAlloc *pa, uint64_t c) {
    return &pa->arenas[c / CHUNKS_PER_ARENA]->palloc[(c % CHUNKS_PER_ARENA) * CHUNK_WORDS];
}

static pa_sum chunk_sum(const pageAlloc *pa, uint64_t c) {
    const uint64_t *w = chunk_bits(pa, c);
    pa_run r = {0};
    for (int i = 0; i < CHUNK_WORDS; i++)
        run_push(pa, &r, word_sum(~w[i], true), 64, c * PA_CHUNK_PAGES + 64 * i);
    return run_sum(&r);
}

static inline bool sum_set(pa_sum *at, pa_sum v) {
    bool changed = at->start != v.start || at->max != v.max || at->end != v.end;
    *at = v;
    return changed;
}

/* Recompute entry i of level l (< LEAF) from its children; true if it changed. */
static bool refold(pageAlloc *pa, int l, uint64_t i) {
    const pa_sum *kids = &pa->sum[l + 1][i * PA_FANOUT];
    uint64_t width = (uint64_t)1 << lvl_log(l + 1);
    pa_run r = {0};
    for (int k = 0; k < PA_FANOUT; k++)
        run_push(pa, &r, kids[k], width, (i * PA_FANOUT + k) * width);
    return sum_set(&pa->sum[l][i], run_sum(&r));
}

/*
 * Restore the summaries after the bits of [p, p+n) changed. Chunks strictly
 * inside the range are uniformly `inner`; only the two end chunks need their
 * bitmap read. Then each level up refolds the (few) parents of what changed,
 * and stops at a level where nothing did: an entry depends on its children
 * only. Most span allocations and frees leave their chunk's (start, max, end)
 * as it was - a longer free run elsewhere in the chunk sets its max - and then
 * no level above is read at all.
 */
static void update(pageAlloc *pa, uint64_t p, uint64_t n, pa_sum inner) {
    uint64_t c0 = p / PA_CHUNK_PAGES, c1 = (p + n - 1) / PA_CHUNK_PAGES;
    bool changed = sum_set(&pa->sum[LEAF][c0], chunk_sum(pa, c0));
    for (uint64_t c = c0 + 1; c < c1; c++) changed |= sum_set(&pa->sum[LEAF][c], inner);
    if (c1 != c0) changed |= sum_set(&pa->sum[LEAF][c1], chunk_sum(pa, c1));
    for (int l = LEAF - 1; l >= 0 && changed; l--) {
        c0 /= PA_FANOUT, c1 /= PA_FANOUT;
        changed = false;
        for (uint64_t i = c0; i <= c1; i++) changed |= refold(pa, l, i);
    }
}

/* Walk [q, end) one bitmap word at a time: sets *a, *wi and *mask for the word
 * holding q and returns the first page after it. Words never straddle arenas. */
static inline uint64_t word_step(const pageAlloc *pa, uint64_t q, uint64_t end,
                                 heapArena **a, unsigned *wi, uint64_t *mask) {
    unsigned bit = q & 63;
    uint64_t cnt = 64 - bit;
    if (cnt > end - q) cnt = end - q;
    *a = pa->arenas[q / GCM_PAGES_PER_ARENA];
    *wi = (q % GCM_PAGES_PER_ARENA) / 64;
    *mask = (cnt == 64 ? ~(uint64_t)0 : (((uint64_t)1 << cnt) - 1)) << bit;
    return q + cnt;
}

bool pa_init(pageAlloc *pa) {
    *pa = (pageAlloc){0};
    size_t bytes = 0;
    for (int l = 0; l < PA_LEVELS; l++) bytes += lvl_len(l) * sizeof(pa_sum);
    bytes = gcm_align_up(bytes, 64);
    char *m = gcm_os_map(NULL, bytes + PA_MAX_ARENAS * sizeof(heapArena *));
    if (m == NULL) return false;
    pa->arenas = (heapArena **)(void *)(m + bytes);
    for (int l = 0; l < PA_LEVELS; l++) {
        pa->sum[l] = (pa_sum *)(void *)m;
        m += lvl_len(l) * sizeof(pa_sum);
    }
    return true;
}

bool pa_grow(pageAlloc *pa, heapArena *a) {
    uint32_t ord = pa->narenas;
    if (ord >= PA_MAX_ARENAS) return false;
    a->ordinal = ord;
    a->contig_prev = ord > 0 && pa->arenas[ord - 1]->base + GCM_ARENA_SIZE == a->base;
    for (size_t i = 0; i < GCM_ARENA_BITMAP_WORDS; i++) {
        a->palloc[i] = 0;
        a->scav[i] = ~(uint64_t)0;
    }
    pa->arenas[ord] = a;
    pa->narenas = ord + 1; /* before update: pa_joins must see the new arena */
    pa->free_pages += GCM_PAGES_PER_ARENA;
    pa->free_scav_pages += GCM_PAGES_PER_ARENA;
    update(pa, (uint64_t)ord * GCM_PAGES_PER_ARENA, GCM_PAGES_PER_ARENA,
           (pa_sum){PA_CHUNK_PAGES, PA_CHUNK_PAGES, PA_CHUNK_PAGES});
    return true;
}

/* First run of n (<= 512) free pages inside chunk c, whose summary says there
 * is one. Words fold like summaries; a run inside one word is Go's
 * findBitRange64: shrink every run of ones by n-1 from the top, in doubling
 * steps, and the lowest surviving bit is where the first long-enough run starts. */
static uint64_t chunk_find(const pageAlloc *pa, uint64_t c, uint64_t n) {
    const uint64_t *w = chunk_bits(pa, c);
    pa_run r = {0};
    for (int i = 0; i < CHUNK_WORDS; i++) {
        uint64_t fr = ~w[i], first = c * PA_CHUNK_PAGES + 64 * i;
        pa_sum s = word_sum(fr, false); /* max unused: r only feeds `cross` */
        uint64_t cross = run_push(pa, &r, s, 64, first);
        if (cross >= n) return first - (cross - s.start);
        if (n <= 64 && fr) {
            uint64_t x = fr;
            unsigned p = (unsigned)n - 1, k = 1;
            while (p > 0 && x) {
                unsigned sh = p <= k ? p : k;
                x &= x >> sh;
                p -= sh;
                k *= 2;
            }
            if (x) return first + __builtin_ctzll(x);
        }
    }
    gcm_fatal("pagealloc: chunk summary disagrees with its bitmap");
}

uint64_t pa_find(const pageAlloc *pa, size_t npages) {
    uint64_t n = npages ? npages : 1;
    if (n > total_pages(pa)) return PA_NONE;
    /* Level 0: only the entries some arena reaches. */
    uint64_t lo = 0, hi = (total_pages(pa) + ((uint64_t)1 << lvl_log(0)) - 1) >> lvl_log(0);
    for (int l = 0; l < PA_LEVELS; l++) {
        uint64_t width = (uint64_t)1 << lvl_log(l), i;
        pa_run r = {0};
        /* A run that crosses into entry i starts below anything inside i, and
         * earlier entries have max < n; so the first of the two that fits wins.
         * Descending drops the pending tail: it plus i's start is < n, and
         * i's first child starts no later than i does. */
        for (i = lo; i < hi; i++) {
            pa_sum s = pa->sum[l][i];
            uint64_t cross = run_push(pa, &r, s, width, i * width);
            if (cross >= n) return i * width - (cross - s.start);
            if (s.max >= n) break;
        }
        if (i == hi) {
            if (l == 0) return PA_NONE;
            gcm_fatal("pagealloc: summary disagrees with its children");
        }
        if (l == LEAF) return chunk_find(pa, i, n);
        lo = i * PA_FANOUT, hi = lo + PA_FANOUT;
    }
    return PA_NONE; /* not reached */
}

size_t pa_alloc_range(pageAlloc *pa, uint64_t p, size_t n) {
    if (n == 0) return 0;
    uint64_t end = p + n;
    if (p >= total_pages(pa) || n > total_pages(pa) - p)
        gcm_fatal("pagealloc: pa_alloc_range outside the heap");
    size_t scav = 0;
    for (uint64_t q = p; q < end;) {
        heapArena *a; unsigned wi; uint64_t m;
        q = word_step(pa, q, end, &a, &wi, &m);
        if (a->palloc[wi] & m) gcm_fatal("pagealloc: allocating an allocated page");
        a->palloc[wi] |= m;
        scav += __builtin_popcountll(a->scav[wi] & m);
        a->scav[wi] &= ~m;
    }
    pa->free_pages -= n;
    pa->free_scav_pages -= scav;
    update(pa, p, n, (pa_sum){0, 0, 0});
    return scav;
}

void pa_free_range(pageAlloc *pa, uint64_t p, size_t n) {
    if (n == 0) return;
    uint64_t end = p + n;
    if (p >= total_pages(pa) || n > total_pages(pa) - p)
        gcm_fatal("pagealloc: pa_free_range outside the heap");
    for (uint64_t q = p; q < end;) {
        heapArena *a; unsigned wi; uint64_t m;
        q = word_step(pa, q, end, &a, &wi, &m);
        if ((a->palloc[wi] & m) != m) gcm_fatal("pagealloc: freeing a free page");
        a->palloc[wi] &= ~m;
    }
    pa->free_pages += n;
    update(pa, p, n, (pa_sum){PA_CHUNK_PAGES, PA_CHUNK_PAGES, PA_CHUNK_PAGES});
}

bool pa_range_free(const pageAlloc *pa, uint64_t p, size_t n) {
    uint64_t total = total_pages(pa), end = p + n;
    if (p > total || n > total - p) return false;
    for (uint64_t q = p; q < end;) {
        if (q != p && !pa_joins(pa, q)) return false;
        heapArena *a; unsigned wi; uint64_t m;
        q = word_step(pa, q, end, &a, &wi, &m);
        if (a->palloc[wi] & m) return false;
    }
    return true;
}

/* The scavenger's current run, [lo, hi), grown downward. */
typedef struct { uint64_t lo, hi, need; size_t done; } scav_run;

static void scav_flush(pageAlloc *pa, scav_run *s) {
    if (s->lo == s->hi) return;
    uint64_t n = s->hi - s->lo;
    for (uint64_t q = s->lo; q < s->hi;) {
        heapArena *a; unsigned wi; uint64_t m;
        q = word_step(pa, q, s->hi, &a, &wi, &m);
        a->scav[wi] |= m;
    }
    if (pa->release) pa->release(pa_page_addr(pa, s->lo), (size_t)n << GCM_PAGE_SHIFT);
    pa->free_scav_pages += n;
    s->done += n;
    s->need -= n;
    s->hi = s->lo;
}

/*
 * Walk words from the top of page space down, growing a run of free,
 * unscavenged pages and releasing it (one release call) when a used or
 * scavenged page, an empty chunk or a non-joining arena boundary ends it. The
 * last run is cut to the `need` highest pages, so exactly the highest
 * candidates are released and `keep` is met with equality.
 */
size_t pa_scavenge(pageAlloc *pa, size_t keep) {
    size_t unscav = pa->free_pages - pa->free_scav_pages;
    if (unscav <= keep) return 0;
    scav_run s = {0, 0, unscav - keep, 0};
    for (uint64_t c = (uint64_t)pa->narenas * CHUNKS_PER_ARENA; c-- > 0 && s.need;) {
        if (pa->sum[LEAF][c].max == 0) { /* nothing free in this chunk */
            scav_flush(pa, &s);
            continue;
        }
        heapArena *a = pa->arenas[c / CHUNKS_PER_ARENA];
        for (int i = CHUNK_WORDS - 1; i >= 0 && s.need; i--) {
            unsigned wi = (c % CHUNKS_PER_ARENA) * CHUNK_WORDS + i;
            uint64_t first = c * PA_CHUNK_PAGES + 64 * i;
            uint64_t x = ~a->palloc[wi] & ~a->scav[wi];
            if (s.lo != s.hi && !pa_joins(pa, first + 64)) scav_flush(pa, &s);
            while (x) {
                unsigned top = 63 - __builtin_clzll(x);
                if (s.lo != first + top + 1) scav_flush(pa, &s); /* gap above */
                if (s.lo == s.hi) s.lo = s.hi = first + top + 1;
                /* Bits top .. bot are candidates; bot - 1 (if any) is not. */
                uint64_t below = ~x & ((((uint64_t)2) << top) - 1);
                unsigned bot = below ? 64 - __builtin_clzll(below) : 0;
                s.lo = first + bot;
                x &= bot ? (((uint64_t)1 << bot) - 1) : 0;
                if (s.hi - s.lo >= s.need) {
                    s.lo = s.hi - s.need;
                    scav_flush(pa, &s);
                    return s.done;
                }
                if (bot) scav_flush(pa, &s); /* run ends inside this word */
            }
        }
    }
    scav_flush(pa, &s);
    return s.done;
}
