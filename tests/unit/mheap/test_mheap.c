/* mheap: large spans, alignment, in-place resize, zeroed pages, scavenging. */
#include <criterion/criterion.h>
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "testutil.h"
#include "alloc/malloc.h"
#include "alloc/arena.h"
#include "alloc/mheap.h"
#include "include/gcmalloc.h"

static void setup(void) { free(malloc(1)); }

static size_t rss_bytes(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    long pages = 0, res = 0;
    cr_assert_eq(fscanf(f, "%ld %ld", &pages, &res), 2);
    fclose(f);
    return (size_t)res * (size_t)sysconf(_SC_PAGESIZE);
}

Test(mheap, large_spans_honour_alignment, .init = setup) {
    for (size_t align = GCM_PAGE_SIZE; align <= ((size_t)32 << 20); align <<= 1) {
        mspan *s = gcm_span_of((uintptr_t)gcm_mheap_alloc_large(100000, align, false));
        cr_assert_not_null(s, "align %zu", align);
        cr_assert_eq(s->base & (align - 1), 0, "align %zu base %#lx", align, s->base);
        for (uintptr_t a = s->base; a < s->base + s->npages * GCM_PAGE_SIZE; a += GCM_PAGE_SIZE)
            cr_assert_eq(gcm_span_of(a), s);
        gcm_mheap_free_span(s);
    }
}

Test(mheap, objects_bigger_than_an_arena, .init = setup) {
    size_t size = 3 * GCM_ARENA_SIZE + 12345;
    mspan *s = gcm_span_of((uintptr_t)gcm_mheap_alloc_large(size, 0, false));
    cr_assert_not_null(s);
    cr_assert_geq(s->elemsize, size);
    cr_assert_eq(gcm_span_of(s->base + size - 1), s, "the last byte maps to the span");
    memset((void *)(s->base + size - 4096), 1, 4096);
    gcm_mheap_free_span(s);
    cr_assert_null(gcm_span_of(s->base));
}

Test(mheap, resize_in_place_shrinks_and_grows, .init = setup) {
    mspan *s = gcm_span_of((uintptr_t)gcm_mheap_alloc_large(40 * GCM_PAGE_SIZE, 0, false));
    uintptr_t base = s->base;
    cr_assert(gcm_mheap_resize_large(s, 10 * GCM_PAGE_SIZE));
    cr_assert_eq(s->npages, 10);
    cr_assert_null(gcm_span_of(base + 10 * GCM_PAGE_SIZE), "tail pages are free again");
    cr_assert(gcm_mheap_resize_large(s, 30 * GCM_PAGE_SIZE), "the freed tail is still free");
    cr_assert_eq(s->npages, 30);
    cr_assert_eq(s->base, base);
    cr_assert_eq(gcm_span_of(base + 29 * GCM_PAGE_SIZE), s);
    /* Block the next page: growth must fail and change nothing. */
    mspan *t = gcm_span_of((uintptr_t)gcm_mheap_alloc_large(GCM_PAGE_SIZE, 0, false));
    if (t->base == base + 30 * GCM_PAGE_SIZE) {
        cr_assert_not(gcm_mheap_resize_large(s, 31 * GCM_PAGE_SIZE));
        cr_assert_eq(s->npages, 30);
    }
    gcm_mheap_free_span(t);
    gcm_mheap_free_span(s);
}

Test(mheap, fresh_pages_need_no_zeroing_reused_ones_do, .init = setup) {
    gcm_mheap_scavenge_all();
    mspan *s = gcm_span_of((uintptr_t)gcm_mheap_alloc_large((size_t)8 << 20, 0, false));
    cr_assert_eq(s->needzero, 0, "released or never-touched pages read as zero");
    memset((void *)s->base, 0xab, (size_t)8 << 20);
    uintptr_t base = s->base;
    gcm_mheap_free_span(s); /* within the retained budget: stays resident */
    mspan *t = gcm_span_of((uintptr_t)gcm_mheap_alloc_large((size_t)8 << 20, 0, false));
    if (t->base == base && t->needzero == 0)
        cr_assert_eq(*(unsigned char *)t->base, 0, "a span claimed zero but holds old data");
    void *z = calloc(1, (size_t)8 << 20);
    for (size_t i = 0; i < ((size_t)8 << 20); i += 4096) cr_assert_eq(((unsigned char *)z)[i], 0);
    free(z);
    gcm_mheap_free_span(t);
}

Test(mheap, freeing_a_large_heap_returns_memory_to_the_os, .init = setup) {
    enum { N = 200 };
    void *p[N];
    size_t before = rss_bytes();
    for (int i = 0; i < N; i++) {
        p[i] = malloc(1 << 20);
        memset(p[i], i, 1 << 20);
    }
    size_t peak = rss_bytes();
    cr_assert_geq(peak, before + ((size_t)150 << 20));
    for (int i = 0; i < N; i++) free(p[i]);
    size_t after = rss_bytes();
    /* Freeing more than was ever taken again is a shrink: released at once. */
    cr_assert_leq(after, before + ((size_t)80 << 20), "before %zu peak %zu after %zu", before, peak, after);
    cr_assert_eq(malloc_trim(0), 1);
    size_t trimmed = rss_bytes();
    cr_assert_leq(trimmed, before + ((size_t)8 << 20), "before %zu after trim %zu", before, trimmed);
    struct gcm_stats st;
    gcm_get_stats(&st);
    cr_assert_geq(st.released_bytes, (size_t)190 << 20);
}

static long minor_faults(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_minflt;
}

static void touch(char *p, size_t len) {
    for (size_t i = 0; i < len; i += 4096) p[i] = 1;
}

static size_t released(void) {
    struct gcm_stats st;
    gcm_get_stats(&st);
    return st.released_bytes;
}

/* Freeing one block of a steady working set and allocating it again must
 * reuse resident pages: releasing them and faulting them back each cycle is
 * what the decay rule avoids (the excess over in-use/8 used to go every
 * 100 ms: 6 000+ faults here). Run long enough for several of those 100 ms
 * periods. The bound allows one block's worth: a test process starved of CPU
 * for a whole decay window (a loaded machine) is idle as far as the decay
 * can tell. */
Test(mheap, a_churn_of_large_blocks_keeps_its_pages, .init = setup) {
    enum { LIVE = 4, BLOCK = 8 << 20 };
    char *p[LIVE];
    for (int i = 0; i < LIVE; i++) touch(p[i] = malloc(BLOCK), BLOCK);
    long f0 = minor_faults();
    uint64_t t0 = tu_now_ms();
    unsigned cycles = 0;
    for (; cycles < 20 || tu_now_ms() - t0 < 600; cycles++) {
        unsigned k = cycles % LIVE;
        free(p[k]);
        touch(p[k] = malloc(BLOCK), BLOCK);
    }
    long faults = minor_faults() - f0;
    for (int i = 0; i < LIVE; i++) free(p[i]);
    cr_assert_lt(faults, BLOCK / 4096, "%ld page faults in %u cycles of free + malloc of %d MiB",
                 faults, cycles, BLOCK >> 20);
}

static void light_calls_for_1s(void) {
    uint64_t t0 = tu_now_ms();
    while (tu_now_ms() - t0 < 1000) {
        free(malloc(1 << 20));
        tu_sleep_ms(10);
    }
}

/* A program that frees more, in one run of frees, than it took again lately
 * is shrinking: the pages go back at once, with no later heap call (an idle
 * program would make none). */
Test(mheap, a_shrink_is_released_at_once, .init = setup) {
    enum { N = 48, MIB = 1 << 20 };
    char *p[N];
    for (int i = 0; i < N; i++) touch(p[i] = malloc(MIB), MIB);
    size_t r0 = released();
    for (int i = 0; i < N / 2; i++) free(p[i]);
    size_t r1 = released();
    cr_assert_geq(r1 - r0, (size_t)16 << 20, "right after freeing %d MiB only %zu bytes were released", N / 2,
                  r1 - r0);
    for (int i = N / 2; i < N; i++) free(p[i]);
}

/* Pages a program frees and has not taken again lately are not kept for
 * it: they go at the first heap entry past the 100 ms delay. */
Test(mheap, freed_pages_not_taken_again_go_after_the_delay, .init = setup) {
    enum { N = 48, MIB = 1 << 20 };
    char *p[N];
    for (int i = 0; i < N; i++) touch(p[i] = malloc(MIB), MIB);
    tu_sleep_ms(150);
    size_t r0 = released();
    for (int i = 0; i < N / 2; i++) free(p[i]);
    tu_sleep_ms(150);
    free(malloc(MIB));
    size_t r1 = released();
    cr_assert_geq(r1 - r0, (size_t)16 << 20, "150 ms after freeing %d MiB only %zu bytes were released", N / 2,
                  r1 - r0);
    for (int i = N / 2; i < N; i++) free(p[i]);
}

/* Pages a program frees and takes again are kept while it does (its churn),
 * and go back within about a second of heap calls once it stops. */
Test(mheap, pages_taken_again_are_kept_then_released, .init = setup) {
    enum { N = 48, MIB = 1 << 20 };
    char *p[N];
    for (int i = 0; i < N; i++) touch(p[i] = malloc(MIB), MIB);
    for (int i = 0; i < N / 2; i++) free(p[i]);
    for (int i = 0; i < N / 2; i++) touch(p[i] = malloc(MIB), MIB);
    size_t r0 = released();
    for (int i = 0; i < N / 2; i++) free(p[i]);
    free(malloc(MIB));
    size_t r1 = released();
    cr_assert_lt(r1 - r0, (size_t)4 << 20, "%zu bytes released although the program took them again before",
                 r1 - r0);
    light_calls_for_1s(); /* a program still running, lightly */
    size_t r2 = released();
    cr_assert_geq(r2 - r0, (size_t)16 << 20, "after 1 s only %zu bytes of the %d MiB freed were released",
                  r2 - r0, N / 2);
    for (int i = N / 2; i < N; i++) free(p[i]);
}

/* Collect mode: while the program allocates, free pages are kept up to 1.1x
 * the pacer's heap goal (the heap grows back to it before the next
 * collection), past the decay; without a goal they go. */
Test(mheap, free_pages_up_to_the_heap_goal_are_kept_while_allocating, .init = setup) {
    enum { N = 48, MIB = 1 << 20 };
    char *p[N];
    for (int i = 0; i < N; i++) touch(p[i] = malloc(MIB), MIB);
    /* As the pacer sets it after a collection that found N/2 MiB live. */
    GCM_STORE(&gcm_heap.gc_goal, (size_t)N * MIB);
    size_t r0 = released();
    for (int i = 0; i < N / 2; i++) free(p[i]);
    light_calls_for_1s();
    size_t r1 = released();
    cr_assert_lt(r1 - r0, (size_t)4 << 20, "%zu bytes released under the heap goal", r1 - r0);
    GCM_STORE(&gcm_heap.gc_goal, 0);
    light_calls_for_1s();
    size_t r2 = released();
    cr_assert_geq(r2 - r0, (size_t)16 << 20, "without a goal only %zu bytes were released in 1 s", r2 - r0);
    for (int i = N / 2; i < N; i++) free(p[i]);
}

/* Is s in the mheap's large-span cache? */
static bool in_lcache(const mspan *s) {
    for (const mspan *t = gcm_heap.lcache[s->npages]; t; t = t->next)
        if (t == s) return true;
    return false;
}

/* A large span of up to 128 KiB given back to the mheap is kept whole -
 * still published, its object free, its pages still taken in the page
 * allocator - and the next large span of its length is that one;
 * malloc_trim gives the pages back. */
Test(mheap, freed_large_spans_are_kept_for_their_length, .init = setup) {
    enum { SIZE = 64 << 10 };
    void *p = gcm_mheap_alloc_large(SIZE, 0, false);
    size_t free_pages = gcm_heap.pages.free_pages;
    mspan *s = gcm_span_of((uintptr_t)p);
    s->allocBits[0] = ~(uint64_t)1; /* free() clears the alloc bit first */
    gcm_mheap_free_large(s);
    cr_assert_eq(gcm_heap.pages.free_pages, free_pages, "the freed span's pages went back to the page allocator");
    cr_assert_eq(gcm_span_of((uintptr_t)p), s, "a kept span no longer maps its pages");
    cr_assert(in_lcache(s), "the freed span is not in the large-span cache");
    cr_assert_eq(s->allocCount, 0);
    void *q = gcm_mheap_alloc_large(SIZE, 0, false);
    cr_assert_eq(q, p, "the next span of the same length was not the kept one");
    cr_assert(gcm_span_of((uintptr_t)q)->needzero, "a kept span's pages hold old data");
    s->allocBits[0] = ~(uint64_t)1;
    gcm_mheap_free_large(s);
    malloc_trim(0);
    cr_assert_null(gcm_span_of((uintptr_t)p), "malloc_trim left the span published");
    cr_assert_geq(gcm_heap.pages.free_pages, free_pages + SIZE / GCM_PAGE_SIZE, "malloc_trim left the span kept");
}

/* A thread keeps the span of a large block it freed, published but free,
 * for its next malloc of that length; a second free of the block is still a
 * double free (tests/api/test_bad_free.c), and the thread's exit hands the
 * span to the mheap. */
static void *free_then_exit(void *arg) {
    char *p = malloc(64 << 10);
    free(p);
    mspan *s = gcm_span_of((uintptr_t)p);
    cr_assert_not_null(s, "the freed block's span was not kept by the thread");
    cr_assert_eq(s->allocBits[0] & 1, 0, "a kept span's object reads as allocated");
    cr_assert_eq(s->allocCount, 0);
    char *q = malloc(64 << 10);
    cr_assert_eq(q, p, "the next malloc of the same length did not take the kept span");
    cr_assert(s->needzero && (s->allocBits[0] & 1) && s->allocCount == 1);
    free(q);
    *(char **)arg = p;
    return NULL;
}

Test(mheap, a_thread_keeps_its_freed_large_spans_until_it_exits, .init = setup) {
    char *p;
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, free_then_exit, &p), 0);
    pthread_join(t, NULL);
    mspan *s = gcm_span_of((uintptr_t)p);
    cr_assert(s && in_lcache(s), "the exited thread's kept span did not go to the large-span cache");
}

/* The stash holds at most 512 KiB; a free into a full stash gives its older
 * half to the large-span cache in one trip, and a malloc the stash cannot
 * serve takes a batch of spans of its length back. */
Test(mheap, the_stash_trades_spans_with_the_cache_in_batches, .init = setup) {
    enum { N = 20, SIZE = 64 << 10, PAGES = SIZE / GCM_PAGE_SIZE };
    mcache *c = gcm_tls_mcache;
    malloc_trim(0); /* empty stash, empty cache */
    cr_assert_eq(c->lstash_n, 0);
    cr_assert_eq(gcm_heap.lcache_pages, 0);
    char *p[N];
    for (int i = 0; i < N; i++) p[i] = malloc(SIZE);
    for (int i = 0; i < N; i++) free(p[i]);
    /* 8 stashed (64 pages); frees 9, 13 and 17 each gave 4 to the cache. */
    cr_assert_eq(c->lstash_n, 8);
    cr_assert_eq(c->lstash_pages, 8 * PAGES);
    cr_assert_eq(gcm_heap.lcache_pages, 12 * PAGES);
    for (int i = N - 1; i >= N - 8; i--)
        cr_assert_eq(malloc(SIZE), p[i], "the stash hands out its newest span first");
    cr_assert_eq(gcm_heap.lcache_pages, 12 * PAGES, "the stash was not used up first");
    char *q = malloc(SIZE);
    cr_assert_eq(c->lstash_n, 7, "one batch: the block, and 7 more spans for the stash");
    cr_assert_eq(gcm_heap.lcache_pages, 4 * PAGES);
    bool ours = false;
    for (int i = 0; i < N; i++) ours |= q == p[i];
    cr_assert(ours, "the batch's block is not one the program freed");
    cr_assert_eq(gcm_span_of((uintptr_t)q)->allocCount, 1);
    for (unsigned k = 0; k < c->lstash_n; k++)
        cr_assert_eq(c->lstash[k]->allocBits[0] & 1, 0, "a stashed span's object reads as allocated");
}

/* A kept span right after a large block does not stop the block from
 * growing in place. */
Test(mheap, kept_spans_do_not_block_growth_in_place, .init = setup) {
    enum { SIZE = 64 << 10 };
    char *a = malloc(SIZE), *b = malloc(SIZE);
    cr_assert_eq(b, a + SIZE, "the test needs two adjacent blocks");
    uintptr_t was = (uintptr_t)a;
    free(b);
    char *r = realloc(a, 2 * SIZE);
    cr_assert_eq((uintptr_t)r, was, "the block moved instead of growing over the kept span");
    free(r);
}

/* Page numbers run on from one arena to the next by ordinal, but the next
 * arena may lie anywhere: a span that ends at its arena's end must not grow
 * "in place" into the next arena's first pages (the growth wrote spans[] for
 * the address after its arena - no arena there: a crash in the soak test;
 * another arena there: its span map overwritten). */
Test(mheap, growth_in_place_stops_at_an_arena_that_does_not_follow, .init = setup) {
    const pageAlloc *pa = &gcm_heap.pages;
    cr_assert_eq(pa->narenas, 1, "the test needs a heap of one arena");
    uintptr_t end0 = pa->arenas[0]->base + GCM_ARENA_SIZE;
    /* Keep the next arena from being reserved right after the first. */
    void *block = mmap((void *)end0, GCM_ARENA_SIZE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE,
                       -1, 0);
    /* A span that ends at the first arena's last page: first fit puts a
     * 32 MiB request at the start of the free top of the arena. */
    mspan *s = gcm_span_of((uintptr_t)gcm_mheap_alloc_large((size_t)32 << 20, 0, false));
    cr_assert_not_null(s);
    cr_assert(gcm_mheap_resize_large(s, end0 - s->base), "growing to the arena's end");
    cr_assert_eq(s->base + s->npages * GCM_PAGE_SIZE, end0);
    /* A second arena, elsewhere, its pages free again. */
    mspan *t = gcm_span_of((uintptr_t)gcm_mheap_alloc_large((size_t)1 << 20, 0, false));
    cr_assert_not_null(t);
    cr_assert_eq(pa->narenas, 2);
    cr_assert_neq(pa->arenas[1]->base, end0, "the second arena follows the first");
    gcm_mheap_free_span(t);
    malloc_trim(0); /* the freed span leaves the large-span cache: its pages are free */
    size_t npages = s->npages;
    cr_assert_not(gcm_mheap_resize_large(s, end0 - s->base + GCM_PAGE_SIZE), "grew into another arena");
    cr_assert_eq(s->npages, npages);
    cr_assert_null(gcm_arena_of(end0));
    /* The second arena's first pages are still free: a span of a whole arena
     * still fits there. */
    void *big = gcm_mheap_alloc_large(GCM_ARENA_SIZE, 0, false);
    cr_assert_not_null(big);
    cr_assert_eq((uintptr_t)big, pa->arenas[1]->base);
    gcm_mheap_free_span(gcm_span_of((uintptr_t)big));
    gcm_mheap_free_span(s);
    if (block != MAP_FAILED) munmap(block, GCM_ARENA_SIZE);
}

Test(mheap, impossible_requests_fail_cleanly, .init = setup) {
    cr_assert_null(gcm_mheap_alloc_large((size_t)1 << 60, 0, false));
    cr_assert_null(gcm_mheap_alloc_large(4096, (size_t)1 << 62, false));
    cr_assert_null(gcm_mheap_alloc_large((size_t)1 << 46, 0, false), "64 TiB cannot be reserved");
    void *p = malloc(100);
    cr_assert_not_null(p, "the heap still works");
    free(p);
}
