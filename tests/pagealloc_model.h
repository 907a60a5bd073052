/*
 * pagealloc_model.h - a reference model of the page allocator (alloc/pagealloc.h),
 * shared by its unit test (tests/unit/pagealloc) and its fuzzer (tests/fuzz).
 *
 * A private pageAlloc over fake arenas (real heapArena structs, made-up
 * 64 MiB-aligned bases: the page allocator never touches page memory), and
 * beside it one byte per page (in use, scavenged) with a linear first fit
 * that breaks runs at arena boundaries that are not contiguous. The check_*
 * functions compare the two: counters, every bitmap bit, every summary of
 * every level, pa_find for several sizes, and pa_scavenge's release calls.
 *
 * The includer defines PM_MAX_ARENAS and PM_FAIL(fmt, ...) (reports and does
 * not return), and calls pm_init() before each sequence.
 */
#ifndef GCM_TESTS_PAGEALLOC_MODEL_H
#define GCM_TESTS_PAGEALLOC_MODEL_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#include "alloc/pagealloc.h"

#define PPA ((uint64_t)GCM_PAGES_PER_ARENA)
#define ABASE(k) ((uintptr_t)(0x100 + (k)) << GCM_ARENA_SHIFT) /* a fake arena base */
#define PM_CHECK(cond, ...)                                                                                  \
    do {                                                                                                     \
        if (!(cond))                                                                                         \
            PM_FAIL(__VA_ARGS__);                                                                            \
    } while (0)

static void *xmap(size_t len) {
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED)
        PM_FAIL("mmap %zu failed", len);
    return p;
}

/* ---- release() recorder ---- */
#define MAX_REL 65536
static struct { uintptr_t addr; size_t len; } rel[MAX_REL];
static size_t nrel;
static void record_release(uintptr_t addr, size_t len) {
    PM_CHECK(nrel < MAX_REL, "too many release calls");
    rel[nrel].addr = addr;
    rel[nrel].len = len;
    nrel++;
}

/* ---- allocator + model ---- */
static struct {
    pageAlloc pa;
    uintptr_t base[PM_MAX_ARENAS];
    bool contig[PM_MAX_ARENAS]; /* the model's own idea of contig_prev */
    uint8_t *used, *scav;       /* one byte per page */
    uint64_t npages, nfree, nfree_scav;
} H;

/* A fresh allocator and an empty model. */
static void pm_init(void) {
    static uint8_t *used, *scav;
    if (!used) {
        used = xmap(PM_MAX_ARENAS * PPA);
        scav = xmap(PM_MAX_ARENAS * PPA);
    }
    memset(&H, 0, sizeof H);
    H.used = used;
    H.scav = scav;
    PM_CHECK(pa_init(&H.pa), "pa_init failed");
    H.pa.release = record_release;
    nrel = 0;
}

/* pa_grow(a) at base, checked, and the model grown with it. */
static void pm_grow(heapArena *a, uintptr_t base) {
    uint32_t k = H.pa.narenas;
    PM_CHECK(k < PM_MAX_ARENAS, "more than %d arenas", PM_MAX_ARENAS);
    a->base = base;
    memset(a->palloc, 0xa5, sizeof a->palloc); /* garbage: pa_grow must initialise */
    memset(a->scav, 0x5a, sizeof a->scav);
    PM_CHECK(pa_grow(&H.pa, a), "pa_grow failed");
    H.base[k] = base;
    H.contig[k] = k > 0 && H.base[k - 1] + GCM_ARENA_SIZE == H.base[k];
    PM_CHECK(a->ordinal == k, "arena ordinal %u, want %u", a->ordinal, k);
    PM_CHECK(a->contig_prev == H.contig[k], "arena %u contig_prev %d, want %d", k, a->contig_prev, H.contig[k]);
    PM_CHECK(H.pa.narenas == k + 1 && H.pa.arenas[k] == a, "pa_grow bookkeeping");
    memset(H.used + k * PPA, 0, PPA);
    memset(H.scav + k * PPA, 1, PPA);
    H.npages += PPA;
    H.nfree += PPA;
    H.nfree_scav += PPA;
}

static bool m_joins(uint64_t q) { return q % PPA || H.contig[q / PPA]; }

/* First fit for ascending sizes sz[0..k); returns the longest run. */
static uint64_t m_scan(const uint64_t *sz, int k, uint64_t *out) {
    uint64_t run = 0, start = 0, best = 0;
    int idx = 0;
    for (int i = 0; i < k; i++)
        out[i] = PA_NONE;
    for (uint64_t q = 0; q < H.npages; q++) {
        if (!m_joins(q))
            run = 0;
        if (q % 8 == 0 && q + 8 <= H.npages) { /* 8 pages at once (arena boundaries are multiples of 8) */
            uint64_t w;
            memcpy(&w, H.used + q, 8);
            if (w == 0x0101010101010101ull) {
                run = 0;
                q += 7;
                continue;
            }
            if (w == 0) {
                if (run == 0)
                    start = q;
                run += 8;
                if (run > best)
                    best = run;
                while (idx < k && run >= sz[idx])
                    out[idx++] = start;
                q += 7;
                continue;
            }
        }
        if (H.used[q]) {
            run = 0;
            continue;
        }
        if (run++ == 0)
            start = q;
        if (run > best)
            best = run;
        while (idx < k && run >= sz[idx])
            out[idx++] = start;
    }
    return best;
}

static uint64_t m_find(uint64_t n) {
    uint64_t r;
    m_scan(&n, 1, &r);
    return r;
}

static uint64_t m_run_from(uint64_t q) {
    uint64_t n = 0;
    while (q + n < H.npages && !H.used[q + n] && (n == 0 || m_joins(q + n)))
        n++;
    return n;
}

static bool m_range_free(uint64_t p, uint64_t n) {
    if (p > H.npages || n > H.npages - p)
        return false;
    for (uint64_t q = p; q < p + n; q++)
        if (H.used[q] || (q != p && !m_joins(q)))
            return false;
    return true;
}

static bool bit(const uint64_t *bm, uint64_t q) { return (bm[q / 64] >> (q % 64)) & 1; }

static void check_counters(const char *when) {
    PM_CHECK(H.pa.free_pages == H.nfree, "%s: free_pages %zu, model %lu", when, H.pa.free_pages,
             (unsigned long)H.nfree);
    PM_CHECK(H.pa.free_scav_pages == H.nfree_scav, "%s: free_scav_pages %zu, model %lu", when,
             H.pa.free_scav_pages, (unsigned long)H.nfree_scav);
}

static void check_bitmaps(const char *when) {
    for (uint64_t q = 0; q < H.npages; q++) {
        heapArena *a = H.pa.arenas[q / PPA];
        if (bit(a->palloc, q % PPA) != H.used[q] || bit(a->scav, q % PPA) != H.scav[q])
            PM_FAIL("%s: page %lu palloc %d (model %d) scav %d (model %d)", when, (unsigned long)q,
                    bit(a->palloc, q % PPA), H.used[q], bit(a->scav, q % PPA), H.scav[q]);
    }
}

/* Every summary equals a bit-by-bit recomputation from the bitmaps (and the
 * model's idea of contiguity); entries past the last arena must be zero. */
static void check_summaries(const char *when) {
    const pageAlloc *pa = &H.pa;
    uint64_t total = H.npages;
    for (int l = 0; l < PA_LEVELS; l++) {
        uint64_t width = (uint64_t)PA_CHUNK_PAGES << 3 * (PA_LEVELS - 1 - l);
        uint64_t len = PA_MAX_ARENAS * (PPA / PA_CHUNK_PAGES) >> 3 * (PA_LEVELS - 1 - l); /* entries */
        uint64_t nent = (total + width - 1) / width + 2;
        if (nent > len)
            nent = len;
        for (uint64_t i = 0; i < nent; i++) {
            uint64_t start = 0, max = 0, run = 0;
            bool open = true;
            for (uint64_t q = i * width; q < (i + 1) * width; q++) {
                bool fr = q < total && !bit(pa->arenas[q / PPA]->palloc, q % PPA);
                if (q > i * width && q < total && q % PPA == 0 && !H.contig[q / PPA])
                    run = 0, open = false;
                if (!fr) {
                    open = false;
                    run = 0;
                    if (q >= total)
                        break;
                    continue;
                }
                run++;
                if (open)
                    start++;
                if (run > max)
                    max = run;
            }
            pa_sum s = pa->sum[l][i];
            if (s.start != start || s.max != max || s.end != run)
                PM_FAIL("%s: sum[%d][%lu] = (%u,%u,%u), want (%lu,%lu,%lu)", when, l, (unsigned long)i, s.start,
                        s.max, s.end, (unsigned long)start, (unsigned long)max, (unsigned long)run);
        }
    }
}

static void check_all(const char *when) {
    check_counters(when);
    check_bitmaps(when);
    check_summaries(when);
}

static void check_finds(uint64_t *sz, int k, const char *when) {
    uint64_t want[16];
    for (int i = 1; i < k; i++)
        for (int j = i; j > 0 && sz[j] < sz[j - 1]; j--) {
            uint64_t t = sz[j];
            sz[j] = sz[j - 1];
            sz[j - 1] = t;
        }
    uint64_t best = m_scan(sz, k, want);
    for (int i = 0; i < k; i++) {
        uint64_t got = pa_find(&H.pa, sz[i]);
        PM_CHECK(got == want[i], "%s: pa_find(%lu) = %lu, model %lu", when, (unsigned long)sz[i],
                 (unsigned long)got, (unsigned long)want[i]);
    }
    if (best)
        PM_CHECK(pa_find(&H.pa, best) == m_find(best), "%s: pa_find(longest %lu)", when, (unsigned long)best);
    PM_CHECK(pa_find(&H.pa, best + 1) == PA_NONE, "%s: pa_find(longest+1 = %lu) found a run", when,
             (unsigned long)best + 1);
}

static void do_alloc(uint64_t p, uint64_t n, const char *when) {
    uint64_t sc = 0;
    for (uint64_t q = p; q < p + n; q++) {
        PM_CHECK(!H.used[q], "%s: model page %lu not free", when, (unsigned long)q);
        sc += H.scav[q];
        H.used[q] = 1;
        H.scav[q] = 0;
    }
    size_t got = pa_alloc_range(&H.pa, p, n);
    PM_CHECK(got == sc, "%s: pa_alloc_range(%lu, %lu) says %zu scavenged, model %lu", when, (unsigned long)p,
             (unsigned long)n, got, (unsigned long)sc);
    H.nfree -= n;
    H.nfree_scav -= sc;
}

static void do_free(uint64_t p, uint64_t n) {
    for (uint64_t q = p; q < p + n; q++)
        H.used[q] = 0;
    pa_free_range(&H.pa, p, n);
    H.nfree += n;
}

static uint64_t addr_page(uintptr_t addr) {
    for (uint32_t k = 0; k < H.pa.narenas; k++)
        if (addr >= H.base[k] && addr < H.base[k] + GCM_ARENA_SIZE)
            return k * PPA + ((addr - H.base[k]) >> GCM_PAGE_SHIFT);
    PM_FAIL("release of %#lx: not in any arena", (unsigned long)addr);
    return 0;
}

/* pa_scavenge(keep): the release calls are maximal runs of free unscavenged
 * pages, highest first, only the last may be cut short at its low end;
 * together exactly the `need` highest such pages. */
static void do_scavenge(uint64_t keep, const char *when) {
    uint64_t unscav = H.nfree - H.nfree_scav, need = unscav > keep ? unscav - keep : 0;
    nrel = 0;
    size_t got = pa_scavenge(&H.pa, keep);
    PM_CHECK(got == need, "%s: pa_scavenge(%lu) returned %zu, want %lu", when, (unsigned long)keep, got,
             (unsigned long)need);
    uint64_t prev_lo = UINT64_MAX, sum = 0;
    for (size_t i = 0; i < nrel; i++) {
        PM_CHECK(rel[i].len > 0 && rel[i].len % GCM_PAGE_SIZE == 0, "%s: release length %zu", when, rel[i].len);
        uint64_t lo = addr_page(rel[i].addr), n = rel[i].len / GCM_PAGE_SIZE, hi = lo + n;
        PM_CHECK(hi <= prev_lo, "%s: release %zu not below the previous one", when, i);
        for (uint64_t q = lo; q < hi; q++) {
            PM_CHECK(!H.used[q] && !H.scav[q], "%s: release %zu covers page %lu (used %d scav %d)", when, i,
                     (unsigned long)q, H.used[q], H.scav[q]);
            PM_CHECK(q == lo || m_joins(q), "%s: release %zu crosses a gap at %lu", when, i, (unsigned long)q);
            H.scav[q] = 1;
        }
        if (hi < H.npages && m_joins(hi))
            PM_CHECK(H.used[hi] || H.scav[hi], "%s: release %zu not maximal above", when, i);
        if (i + 1 < nrel && lo > 0 && m_joins(lo))
            PM_CHECK(H.used[lo - 1] || H.scav[lo - 1], "%s: release %zu not maximal below", when, i);
        prev_lo = lo;
        sum += n;
    }
    PM_CHECK(sum == need, "%s: released %lu pages, want %lu", when, (unsigned long)sum, (unsigned long)need);
    uint64_t lowest = nrel ? addr_page(rel[nrel - 1].addr) : H.npages;
    for (uint64_t q = lowest; q < H.npages; q++)
        PM_CHECK(H.used[q] || H.scav[q], "%s: candidate page %lu above the released ones", when, (unsigned long)q);
    H.nfree_scav += need;
}

#endif
