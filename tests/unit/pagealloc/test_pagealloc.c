/*
 * test_pagealloc.c - the page allocator against a reference model.
 *
 * Each test builds a private pageAlloc over fake heapArenas: the structs are
 * real (mmap'd, so untouched spans[] cost nothing) but their bases are made-up
 * 64 MiB-aligned addresses; the page allocator never touches page memory. The
 * model is one byte per page (used, scavenged) plus the arena bases, with a
 * first fit that scans linearly and breaks runs at every arena boundary whose
 * bases are not adjacent (tests/pagealloc_model.h, shared with the fuzzer).
 * Summaries are checked against a bit-by-bit recomputation from the bitmaps.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>

#define PM_MAX_ARENAS 64
#define PM_FAIL(...) cr_assert_fail(__VA_ARGS__)
#include "tests/pagealloc_model.h"

static void h_grow(uintptr_t base) { pm_grow(xmap(sizeof(heapArena)), base); }

/* ---- random sequences ---- */
static uint64_t rng_state;
static uint64_t rnd(void) { /* splitmix64 */
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
static uint64_t rnd_in(uint64_t lo, uint64_t hi) { return lo + rnd() % (hi - lo + 1); } /* [lo, hi] */

static uint64_t rnd_size(void) {
    uint64_t r = rnd() % 100;
    if (r < 50) return rnd_in(1, 16);
    if (r < 75) return rnd_in(1, 600);
    if (r < 88) return rnd_in(512, 4096);
    return rnd_in(1, 20000);
}

typedef struct { uint64_t p, n; } block;

/* `bases` in arena units of ABASE; arenas[0..ninit) at start, the rest added
 * one by one at evenly spaced points of the sequence. */
static void random_sequence(uint64_t seed, const unsigned *bases, unsigned ninit, unsigned nall, int nops) {
    pm_init();
    rng_state = seed;
    for (unsigned k = 0; k < ninit; k++) h_grow(ABASE(bases[k]));
    check_all("init");
    block *blk = xmap(sizeof(block) * 200000);
    size_t nblk = 0;
    char when[96];
    int grow_every = nops / (int)(nall - ninit + 1);
    bool drain = false;
    for (int op = 0; op < nops; op++) {
        snprintf(when, sizeof when, "seed %lu op %d", (unsigned long)seed, op);
        if (op > 0 && op % grow_every == 0 && H.pa.narenas < nall) h_grow(ABASE(bases[H.pa.narenas]));
        /* Alternate filling and draining phases, so that the heap cycles
         * between nearly full (fragmentation) and nearly empty (long runs,
         * multi-arena allocations). */
        if (H.nfree < H.npages / 8) drain = true;
        if (H.nfree > H.npages * 9 / 10) drain = false;
        uint64_t r = rnd() % 100, n = 0;
        enum { FIT, AT, FREE, SCAV, RFREE } kind =
            r < 5 ? SCAV : r < 8 ? RFREE : r < (drain ? 28 : 78) ? (r % 8 == 0 ? AT : FIT) : FREE;
        if (kind == FIT) { /* first-fit allocation */
            n = !drain && rnd() % 4 == 0 ? rnd_in(1000, 20000) : rnd_size();
            uint64_t p = pa_find(&H.pa, n);
            cr_assert_eq(p, m_find(n), "%s: find(%lu) before alloc", when, (unsigned long)n);
            if (p != PA_NONE) {
                cr_assert(pa_range_free(&H.pa, p, n), "%s: found range not free", when);
                do_alloc(p, n, when);
                blk[nblk++] = (block){p, n};
            }
        } else if (kind == AT) { /* allocation at a random free page */
            uint64_t q = rnd() % H.npages, m = m_run_from(q);
            if (m) {
                cr_assert(pa_range_free(&H.pa, q, m), "%s: range_free(%lu,%lu)", when, (unsigned long)q, (unsigned long)m);
                cr_assert(!pa_range_free(&H.pa, q, m + 1), "%s: range_free(%lu,%lu+1)", when, (unsigned long)q, (unsigned long)m);
                n = rnd_in(1, m < 64 || rnd() % 4 == 0 ? m : 64);
                do_alloc(q, n, when);
                blk[nblk++] = (block){q, n};
            }
        } else if (kind == FREE) { /* free a block, or a piece of one */
            if (nblk) {
                size_t i = rnd() % nblk;
                block b = blk[i];
                if (rnd() % 3 == 0 && b.n > 1) {
                    uint64_t off = rnd() % b.n, len = rnd_in(1, b.n - off);
                    do_free(b.p + off, len);
                    blk[i] = (block){b.p, off};
                    if (off + len < b.n) blk[nblk++] = (block){b.p + off + len, b.n - off - len};
                    if (off == 0) blk[i] = blk[--nblk];
                } else {
                    do_free(b.p, b.n);
                    blk[i] = blk[--nblk];
                }
            }
        } else if (kind == SCAV) {
            uint64_t unscav = H.nfree - H.nfree_scav;
            do_scavenge(rnd() % 4 ? rnd_in(0, unscav) : rnd_in(0, unscav / 8 + 1), when);
        } else { /* pa_range_free at random places */
            for (int t = 0; t < 8; t++) {
                uint64_t p = rnd() % (H.npages + 2), len = rnd_size();
                if (t == 0) len = 1;
                cr_assert_eq(pa_range_free(&H.pa, p, len), m_range_free(p, len), "%s: range_free(%lu,%lu)",
                             when, (unsigned long)p, (unsigned long)len);
            }
        }
        check_counters(when);
        uint64_t sz[8] = {1, 2, rnd_in(1, 64), rnd_in(1, 512), rnd_in(400, 4200), rnd_in(1, 20000),
                          n ? n : 3, rnd_in(8000, 17000)};
        check_finds(sz, 8, when);
        if (op % 211 == 0) check_all(when);
    }
    check_all("end");
    /* free everything: one run per contiguous group of arenas */
    for (size_t i = 0; i < nblk; i++) do_free(blk[i].p, blk[i].n);
    check_all("all freed");
    uint64_t sz[1] = {1};
    check_finds(sz, 1, "all freed");
    do_scavenge(0, "all freed");
    check_all("all scavenged");
}

/* Arena units: some adjacent, a gap, one below its predecessor (adjacent to
 * an earlier arena that is not its ordinal neighbour), then adjacent again. */
static const unsigned layout_mixed[] = {0, 1, 2, 5, 6, 3, 4, 10};
static const unsigned layout_gaps[] = {0, 2, 4, 6, 8, 10};
static const unsigned layout_contig[] = {0, 1, 2, 3, 4, 5};

Test(pagealloc_random, mixed_layout, .timeout = 120) {
    random_sequence(1, layout_mixed, 3, 8, 30000);
}
Test(pagealloc_random, no_arena_contiguous, .timeout = 120) {
    random_sequence(2, layout_gaps, 2, 6, 20000);
}
Test(pagealloc_random, all_contiguous, .timeout = 120) {
    random_sequence(3, layout_contig, 1, 6, 30000);
}

/* ---- targeted tests ---- */

Test(pagealloc, empty_and_fresh_arenas) {
    pm_init();
    cr_assert_eq(pa_find(&H.pa, 1), PA_NONE);
    cr_assert_eq(H.pa.free_pages, 0);
    h_grow(ABASE(0));
    check_all("one arena");
    cr_assert_eq(pa_find(&H.pa, 1), 0);
    cr_assert_eq(pa_find(&H.pa, PPA), 0);
    cr_assert_eq(pa_find(&H.pa, PPA + 1), PA_NONE);
    h_grow(ABASE(7)); /* not contiguous */
    cr_assert_eq(pa_find(&H.pa, PPA + 1), PA_NONE);
    do_alloc(0, 1, "first page");
    cr_assert_eq(pa_find(&H.pa, PPA), PPA, "whole second arena");
    h_grow(ABASE(8)); /* contiguous with the previous */
    cr_assert_eq(pa_find(&H.pa, 2 * PPA), PPA);
    cr_assert_eq(pa_find(&H.pa, 2 * PPA + 1), PA_NONE);
    cr_assert_eq(pa_page_addr(&H.pa, PPA + 3), ABASE(7) + 3 * GCM_PAGE_SIZE);
    cr_assert_eq(pa_addr_page(H.pa.arenas[2], ABASE(8) + 5 * GCM_PAGE_SIZE), 2 * PPA + 5);
    check_all("three arenas");
}

Test(pagealloc, chunk_level_first_fit) {
    pm_init();
    h_grow(ABASE(0));
    do_alloc(0, PPA, "fill");
    /* holes of 3 at 100, 70 at 200 (crosses a word), 600 at 1000 (crosses a chunk) */
    do_free(100, 3);
    do_free(200, 70);
    do_free(1000, 600);
    do_free(PPA - 1, 1);
    uint64_t sz[8] = {1, 3, 4, 64, 70, 71, 512, 600};
    check_finds(sz, 8, "holes");
    cr_assert_eq(pa_find(&H.pa, 4), 200);
    cr_assert_eq(pa_find(&H.pa, 71), 1000);
    cr_assert_eq(pa_find(&H.pa, 601), PA_NONE);
    check_all("holes");
}

Test(pagealloc, scavenge_runs_and_counts) {
    pm_init();
    nrel = 0;
    h_grow(ABASE(0));
    h_grow(ABASE(1)); /* contiguous */
    h_grow(ABASE(9)); /* not */
    cr_assert_eq(H.pa.free_scav_pages, 3 * PPA, "fresh arenas are scavenged");
    do_alloc(0, 3 * PPA, "all"); /* returns 3*PPA scavenged, checked inside */
    cr_assert_eq(pa_scavenge(&H.pa, 0), 0);
    cr_assert_eq(nrel, 0, "nothing free: no release");
    do_free(100, 100);
    do_free(300, PPA + 50 - 300);     /* crosses the contiguous boundary */
    do_free(2 * PPA - 10, 10);        /* top of arena 1 ... */
    do_free(2 * PPA, 10);             /* ... and bottom of arena 2: not adjacent */
    cr_assert_eq(H.pa.free_scav_pages, 0);
    nrel = 0;
    cr_assert_eq(pa_scavenge(&H.pa, 0), 100 + (PPA + 50 - 300) + 20);
    cr_assert_eq(nrel, 4);
    cr_assert_eq(rel[0].addr, ABASE(9));
    cr_assert_eq(rel[0].len, 10 * GCM_PAGE_SIZE);
    cr_assert_eq(rel[1].addr, ABASE(1) + (PPA - 10) * GCM_PAGE_SIZE);
    cr_assert_eq(rel[1].len, 10 * GCM_PAGE_SIZE);
    cr_assert_eq(rel[2].addr, ABASE(0) + 300 * GCM_PAGE_SIZE, "one call across adjacent arenas");
    cr_assert_eq(rel[2].len, (PPA + 50 - 300) * GCM_PAGE_SIZE);
    cr_assert_eq(rel[3].addr, ABASE(0) + 100 * GCM_PAGE_SIZE);
    cr_assert_eq(rel[3].len, 100 * GCM_PAGE_SIZE);
    cr_assert_eq(H.pa.free_scav_pages, H.pa.free_pages);
    for (uint64_t q = 100; q < 200; q++) H.scav[q] = 1;
    for (uint64_t q = 300; q < PPA + 50; q++) H.scav[q] = 1;
    for (uint64_t q = 2 * PPA - 10; q < 2 * PPA + 10; q++) H.scav[q] = 1;
    H.nfree_scav = H.nfree;
    check_all("scavenged");
    nrel = 0;
    cr_assert_eq(pa_scavenge(&H.pa, 0), 0, "already scavenged");
    cr_assert_eq(nrel, 0);

    /* allocated pages report how many were scavenged; freed pages are not */
    do_alloc(150, 50, "scavenged run"); /* do_alloc checks the count (50) */
    do_free(150, 50);
    cr_assert_eq(pa_alloc_range(&H.pa, 120, 80), 30, "120..149 scavenged, 150..199 not");
    for (uint64_t q = 120; q < 200; q++) H.used[q] = 1, H.scav[q] = 0;
    H.nfree -= 80, H.nfree_scav -= 30;
    check_all("mixed");
}

Test(pagealloc, scavenge_partial_keep) {
    pm_init();
    h_grow(ABASE(0));
    do_alloc(0, PPA, "all");
    do_free(10, 20);
    do_free(100, 50);
    do_free(1000, 5);
    cr_assert_eq(H.pa.free_pages - H.pa.free_scav_pages, 75);
    nrel = 0;
    /* keep 30: release the run at 1000 and the top 40 of [100,150) */
    cr_assert_eq(pa_scavenge(&H.pa, 30), 45);
    cr_assert_eq(nrel, 2);
    cr_assert_eq(rel[0].addr, ABASE(0) + 1000 * GCM_PAGE_SIZE);
    cr_assert_eq(rel[0].len, 5 * GCM_PAGE_SIZE);
    cr_assert_eq(rel[1].addr, ABASE(0) + 110 * GCM_PAGE_SIZE);
    cr_assert_eq(rel[1].len, 40 * GCM_PAGE_SIZE);
    cr_assert_eq(H.pa.free_pages - H.pa.free_scav_pages, 30);
    nrel = 0;
    cr_assert_eq(pa_scavenge(&H.pa, 30), 0);
    cr_assert_eq(pa_scavenge(&H.pa, 1000), 0);
    cr_assert_eq(nrel, 0);
    for (uint64_t q = 1000; q < 1005; q++) H.scav[q] = 1;
    for (uint64_t q = 110; q < 150; q++) H.scav[q] = 1;
    H.nfree_scav = 45;
    check_all("partial");
    /* scavenged count of an allocation spanning scavenged and unscavenged pages */
    cr_assert_eq(pa_alloc_range(&H.pa, 105, 10), 5);
    for (uint64_t q = 105; q < 115; q++) H.used[q] = 1, H.scav[q] = 0;
    H.nfree -= 10, H.nfree_scav -= 5;
    check_all("mixed alloc");
    do_free(105, 10);
    cr_assert_eq(pa_alloc_range(&H.pa, 105, 10), 0, "freed pages are not scavenged");
    for (uint64_t q = 105; q < 115; q++) H.used[q] = 1;
    H.nfree -= 10;
    check_all("realloc");
    /* release == NULL is allowed */
    H.pa.release = NULL;
    cr_assert_eq(pa_scavenge(&H.pa, 0), 20 + 5, "[10,30) and [100,105)");
    cr_assert_eq(H.pa.free_pages, H.pa.free_scav_pages);
}

Test(pagealloc, range_free_edges) {
    pm_init();
    h_grow(ABASE(0));
    h_grow(ABASE(1)); /* contiguous */
    h_grow(ABASE(5)); /* not */
    cr_assert(!pa_range_free(&H.pa, 0, 3 * PPA), "crosses the gap");
    cr_assert(pa_range_free(&H.pa, 0, 2 * PPA));
    cr_assert(pa_range_free(&H.pa, PPA - 1, 2), "across the contiguous boundary");
    cr_assert(!pa_range_free(&H.pa, 2 * PPA - 1, 2), "across the gap");
    cr_assert(pa_range_free(&H.pa, 2 * PPA, PPA));
    cr_assert(!pa_range_free(&H.pa, 2 * PPA, PPA + 1), "past the last arena");
    cr_assert(!pa_range_free(&H.pa, 3 * PPA, 1), "first page past the end");
    cr_assert(!pa_range_free(&H.pa, 5, SIZE_MAX), "overflow");
    cr_assert(!pa_range_free(&H.pa, PA_NONE, 1), "PA_NONE");
    do_alloc(PPA + 7, 1, "one page");
    cr_assert(!pa_range_free(&H.pa, PPA + 7, 1));
    cr_assert(!pa_range_free(&H.pa, 0, PPA + 8));
    cr_assert(pa_range_free(&H.pa, 0, PPA + 7));
    cr_assert(pa_range_free(&H.pa, PPA + 8, PPA - 8));
    cr_assert(!pa_range_free(&H.pa, PPA + 6, 2));
    do_alloc(63, 2, "across a word");
    cr_assert(!pa_range_free(&H.pa, 64, 1));
    cr_assert(!pa_range_free(&H.pa, 0, 64));
    cr_assert(pa_range_free(&H.pa, 0, 63));
    cr_assert(pa_range_free(&H.pa, 65, 100));
    check_all("range_free");
}

/* Many arenas: runs that cross level-0 entries (256 arenas each), gaps, and
 * the PA_MAX_ARENAS limit. */
Test(pagealloc, grow_many_arenas, .timeout = 120) {
    static pageAlloc pa;
    cr_assert(pa_init(&pa));
    heapArena *ar = xmap(sizeof(heapArena) * PA_MAX_ARENAS);
    uint64_t total = 0;
    for (size_t k = 0; k < PA_MAX_ARENAS; k++) {
        /* a gap before arena 600 and before 9000; the rest adjacent */
        ar[k].base = ABASE(k + (k >= 600) + (k >= 9000));
        cr_assert(pa_grow(&pa, &ar[k]), "grow %zu", k);
        cr_assert_eq(ar[k].contig_prev, k != 0 && k != 600 && k != 9000, "contig_prev %zu", k);
        total += PPA;
        if (k == 599) {
            cr_assert_eq(pa_find(&pa, 600 * PPA), 0, "one run over 3 level-0 entries");
            cr_assert_eq(pa_find(&pa, 600 * PPA + 1), PA_NONE);
        }
    }
    heapArena extra = {.base = ABASE(PA_MAX_ARENAS + 10)};
    cr_assert(!pa_grow(&pa, &extra), "PA_MAX_ARENAS reached");
    cr_assert_eq(pa.narenas, PA_MAX_ARENAS);
    cr_assert_eq(pa.free_pages, total);
    cr_assert_eq(pa.free_scav_pages, total);
    cr_assert_eq(pa_find(&pa, 1), 0);
    cr_assert_eq(pa_find(&pa, 600 * PPA), 0);
    cr_assert_eq(pa_find(&pa, 600 * PPA + 1), 600 * PPA);
    cr_assert_eq(pa_find(&pa, 8400 * PPA), 600 * PPA);
    cr_assert_eq(pa_find(&pa, 8400 * PPA + 1), PA_NONE);
    cr_assert_eq(pa_alloc_range(&pa, 5000 * PPA, 1), 1); /* split [600, 9000) at 5000 */
    cr_assert_eq(pa_find(&pa, 4400 * PPA), 600 * PPA);
    cr_assert_eq(pa_find(&pa, 4400 * PPA + 1), 9000 * PPA);
    cr_assert_eq(pa_find(&pa, (PA_MAX_ARENAS - 9000) * PPA), 9000 * PPA);
    cr_assert_eq(pa_find(&pa, (PA_MAX_ARENAS - 9000) * PPA + 1), PA_NONE);
    pa_free_range(&pa, 5000 * PPA, 1);
    cr_assert_eq(pa_find(&pa, 8400 * PPA), 600 * PPA);
    /* a page in use at the end of arena 255 splits the first run at the
     * level-0 boundary; a run from 256 on is found in the second entry */
    cr_assert_eq(pa_alloc_range(&pa, 256 * PPA - 1, 1), 1);
    cr_assert_eq(pa_find(&pa, 256 * PPA - 1), 0);
    cr_assert_eq(pa_find(&pa, 256 * PPA), 256 * PPA);
    cr_assert_eq(pa_find(&pa, 344 * PPA), 256 * PPA);
    cr_assert_eq(pa_find(&pa, 344 * PPA + 1), 600 * PPA);
    /* a run crossing a level-0 boundary from the middle of an entry */
    cr_assert_eq(pa_alloc_range(&pa, 0, 256 * PPA - 1), 256 * PPA - 1);
    cr_assert_eq(pa_alloc_range(&pa, 256 * PPA + 100, 1), 1);
    pa_free_range(&pa, 256 * PPA - 1, 1);
    pa_free_range(&pa, 200 * PPA + 3, 56 * PPA - 4);
    cr_assert_eq(pa_find(&pa, 56 * PPA - 4), 200 * PPA + 3);
    cr_assert_eq(pa_find(&pa, 56 * PPA + 100 - 3), 200 * PPA + 3);
    cr_assert_eq(pa_find(&pa, 56 * PPA + 100 - 2), 256 * PPA + 101);
    cr_assert_eq(pa_find(&pa, 1), 200 * PPA + 3);
    /* the last page of the heap */
    cr_assert_eq(pa_alloc_range(&pa, 200 * PPA + 3, 56 * PPA + 97), 100, "only 256*PPA.. +100 never used");
    cr_assert_eq(pa_alloc_range(&pa, 256 * PPA + 101, total - 256 * PPA - 102), total - 256 * PPA - 102 - 1,
                 "all scavenged but page 5000*PPA");
    cr_assert_eq(pa_find(&pa, 1), total - 1);
    cr_assert_eq(pa_find(&pa, 2), PA_NONE);
    cr_assert(pa_range_free(&pa, total - 1, 1));
    cr_assert_eq(pa.free_pages, 1);
    cr_assert_eq(pa.free_scav_pages, 1);
}

/* Misuse aborts instead of corrupting the summaries. */
Test(pagealloc, double_alloc_aborts, .signal = SIGABRT) {
    pm_init();
    h_grow(ABASE(0));
    pa_alloc_range(&H.pa, 10, 5);
    pa_alloc_range(&H.pa, 14, 1);
}
Test(pagealloc, double_free_aborts, .signal = SIGABRT) {
    pm_init();
    h_grow(ABASE(0));
    pa_alloc_range(&H.pa, 10, 5);
    pa_free_range(&H.pa, 10, 6);
}
