/*
 * fuzz_pagealloc.c - libFuzzer harness for the page allocator
 * (alloc/pagealloc.h) against a reference model.
 *
 * Each input builds a private pageAlloc (pa_init) over up to 8 fake arenas
 * (real heapArena structs, made-up 64 MiB-aligned bases - the page allocator
 * never touches page memory), added with pa_grow at bases the input chooses:
 * right after the previous one (contig_prev), with a gap, or adjacent to an
 * earlier arena that is not its ordinal neighbour. The input is then a
 * sequence of pa_find + pa_alloc_range (first fit), pa_alloc_range at a chosen
 * free page, pa_free_range of whole blocks or pieces, pa_scavenge(keep),
 * pa_range_free queries and more pa_grow calls.
 *
 * The model is one byte per page (in use, scavenged), with a linear first
 * fit that breaks runs at arena boundaries that are not contiguous. After
 * every operation: the free counters, pa_find for several sizes (including
 * the longest run and one more) and the scavenged-page count of each
 * allocation; the release calls of pa_scavenge (highest first, maximal runs,
 * exactly the pages needed); every 32 operations and at the end, every bitmap
 * bit and every summary of every level recomputed from the bitmaps.
 *
 * Built with clang -fsanitize=fuzzer (tests/fuzz/CMakeLists.txt) and, with a
 * corpus-replaying main, in the normal test run (test_replay_pagealloc.c).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "alloc/pagealloc.h"

#define FP_MAXA 8
#define FP_UNITS 64 /* arena bases are ABASE(0 .. FP_UNITS-1) */
#define FP_MAX_BLOCKS 8192
#define FP_MAX_OPS 2048

static unsigned long long fp_inputs, fp_ops_total;

static __attribute__((noreturn, format(printf, 1, 2))) void fp_fail(const char *fmt, ...) {
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    fprintf(stderr, "fuzz_pagealloc: input %llu: %s\n", fp_inputs, buf);
    abort();
}
#define PM_MAX_ARENAS FP_MAXA
#define PM_FAIL fp_fail
#include "tests/pagealloc_model.h"
#define FP_CHECK PM_CHECK

/* The fuzzer's own state beside the model: fake arena structs reused across
 * inputs, which arena bases are taken, and the allocated blocks. */
static struct {
    heapArena *pool[FP_MAXA];
    bool unit_used[FP_UNITS];
    struct { uint64_t p, n; } blk[FP_MAX_BLOCKS];
    size_t nblk;
} F;

static void grow(unsigned unit) {
    if (H.pa.narenas >= FP_MAXA)
        return;
    unit %= FP_UNITS;
    while (F.unit_used[unit])
        unit = (unit + 1) % FP_UNITS;
    F.unit_used[unit] = true;
    pm_grow(F.pool[H.pa.narenas], ABASE(unit));
}

/* do_alloc, remembering the block for later frees. */
static void alloc_block(uint64_t p, uint64_t n, const char *when) {
    do_alloc(p, n, when);
    if (F.nblk < FP_MAX_BLOCKS) {
        F.blk[F.nblk].p = p;
        F.blk[F.nblk].n = n;
        F.nblk++;
    } else { /* no room to remember it: give it back at once */
        do_free(p, n);
    }
}

/* ---- input decoding ---- */
typedef struct {
    const uint8_t *d;
    size_t n, i;
} fp_in;
static unsigned in_byte(fp_in *in) { return in->i < in->n ? in->d[in->i++] : 0; }
static unsigned in_u16(fp_in *in) { return in_byte(in) | in_byte(in) << 8; }

static uint64_t in_npages(fp_in *in) {
    unsigned b = in_byte(in), v = in_u16(in);
    switch (b & 7) {
    case 0: case 1: return b >> 3 & 15 ? (b >> 3 & 15) : 1;    /* 1 .. 15 */
    case 2: case 3: return v % 600 + 1;                          /* chunk-sized */
    case 4: return v % 4096 + 1;
    case 5: return 512 * ((b >> 3 & 31) + 1) + (v % 3) - 1;     /* chunk multiples +-1 */
    case 6: return PPA * ((b >> 3) % 3 + 1) + (v % 3) - 1;      /* arena multiples +-1 */
    default: return v % 20000 + 1;
    }
}

static void fp_init_pool(void) {
    if (!F.pool[0])
        for (int k = 0; k < FP_MAXA; k++)
            F.pool[k] = xmap(sizeof(heapArena));
}

static void fp_report(void) {
    if (getenv("FUZZ_PAGEALLOC_STATS"))
        fprintf(stderr, "fuzz_pagealloc: %llu inputs, %llu operations\n", fp_inputs, fp_ops_total);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static int started;
    if (!started) {
        started = 1;
        atexit(fp_report);
    }
    fp_init_pool();
    memset(F.unit_used, 0, sizeof F.unit_used);
    F.nblk = 0;
    pm_init();
    fp_inputs++;

    fp_in in = {data, size, 0};
    unsigned first = in_byte(&in);
    grow(first); /* at least one arena */
    char when[64];
    int op = 0;
    for (; in.i < in.n && op < FP_MAX_OPS; op++) {
        snprintf(when, sizeof when, "op %d", op);
        unsigned b = in_byte(&in);
        uint64_t n = 0;
        switch (b % 8) {
        case 0: { /* grow: adjacent to the last, a gap, or anywhere */
            unsigned a = in_byte(&in), last = (unsigned)((H.base[H.pa.narenas - 1] >> GCM_ARENA_SHIFT) - 0x100);
            grow(a < 128 ? last + 1 : a < 192 ? last + 2 + a % 3 : a);
            break;
        }
        case 1: case 7: { /* first fit */
            n = in_npages(&in);
            uint64_t p = pa_find(&H.pa, n), m = m_find(n);
            FP_CHECK(p == m, "%s: pa_find(%lu) = %lu before alloc, model %lu", when, (unsigned long)n,
                     (unsigned long)p, (unsigned long)m);
            if (p != PA_NONE) {
                FP_CHECK(pa_range_free(&H.pa, p, n), "%s: found range not free", when);
                alloc_block(p, n, when);
            }
            break;
        }
        case 2: { /* at a chosen free page */
            uint64_t q = (uint64_t)in_u16(&in) * H.npages / 65536, m = m_run_from(q);
            unsigned len = in_u16(&in);
            if (m) {
                FP_CHECK(pa_range_free(&H.pa, q, m), "%s: range_free(%lu,%lu)", when, (unsigned long)q,
                         (unsigned long)m);
                FP_CHECK(!pa_range_free(&H.pa, q, m + 1), "%s: range_free(%lu,%lu+1)", when, (unsigned long)q,
                         (unsigned long)m);
                n = len % m + 1;
                alloc_block(q, n, when);
            }
            break;
        }
        case 3: case 6: { /* free a block or a piece of one */
            unsigned x = in_u16(&in), y = in_u16(&in), z = in_byte(&in);
            if (F.nblk) {
                size_t i = x % F.nblk;
                uint64_t bp = F.blk[i].p, bn = F.blk[i].n;
                if (z & 1 && bn > 1) {
                    uint64_t off = y % bn, len = (z >> 1) % (bn - off) + 1;
                    do_free(bp + off, len);
                    F.blk[i].n = off;
                    if (off + len < bn && F.nblk < FP_MAX_BLOCKS) {
                        F.blk[F.nblk].p = bp + off + len;
                        F.blk[F.nblk].n = bn - off - len;
                        F.nblk++;
                    } else if (off + len < bn) {
                        do_free(bp + off + len, bn - off - len);
                    }
                    if (off == 0)
                        F.blk[i] = F.blk[--F.nblk];
                } else {
                    do_free(bp, bn);
                    F.blk[i] = F.blk[--F.nblk];
                }
            }
            break;
        }
        case 4: { /* scavenge */
            unsigned k = in_u16(&in);
            uint64_t unscav = H.nfree - H.nfree_scav;
            do_scavenge(k & 1 ? 0 : k % 4 == 2 ? unscav * (k >> 2) / 16384 : (uint64_t)(k >> 2), when);
            break;
        }
        default: { /* pa_range_free anywhere, including past the end */
            uint64_t p = (uint64_t)in_u16(&in) * (H.npages + 2) / 65536, len = in_npages(&in);
            bool got = pa_range_free(&H.pa, p, len), want = m_range_free(p, len);
            FP_CHECK(got == want, "%s: pa_range_free(%lu, %lu) = %d, model %d", when, (unsigned long)p,
                     (unsigned long)len, got, want);
            break;
        }
        }
        check_counters(when);
        uint64_t sz[6] = {1, 2, 511, 513, n ? n : 3, (b * 97) % 9000 + 1};
        check_finds(sz, 6, when);
        if (op % 32 == 31)
            check_all(when);
    }
    fp_ops_total += (unsigned long long)op;
    check_all("end");
    for (size_t i = 0; i < F.nblk; i++)
        do_free(F.blk[i].p, F.blk[i].n);
    F.nblk = 0;
    check_counters("all freed");
    uint64_t one[1] = {1};
    check_finds(one, 1, "all freed");
    do_scavenge(0, "all freed");
    check_all("all scavenged");
    /* pa_init's one mapping: the summaries, then the arena pointers. */
    munmap(H.pa.sum[0], (size_t)((char *)H.pa.arenas - (char *)H.pa.sum[0]) + PA_MAX_ARENAS * sizeof(heapArena *));
    return 0;
}
