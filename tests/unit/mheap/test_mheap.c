/* mheap: large spans, alignment, in-place resize, zeroed pages, scavenging. */
#include <criterion/criterion.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alloc/malloc.h"
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
        mspan *s = gcm_mheap_alloc_large(100000, align, false);
        cr_assert_not_null(s, "align %zu", align);
        cr_assert_eq(s->base & (align - 1), 0, "align %zu base %#lx", align, s->base);
        for (uintptr_t a = s->base; a < s->base + s->npages * GCM_PAGE_SIZE; a += GCM_PAGE_SIZE)
            cr_assert_eq(gcm_span_of(a), s);
        gcm_mheap_free_span(s);
    }
}

Test(mheap, objects_bigger_than_an_arena, .init = setup) {
    size_t size = 3 * GCM_ARENA_SIZE + 12345;
    mspan *s = gcm_mheap_alloc_large(size, 0, false);
    cr_assert_not_null(s);
    cr_assert_geq(s->elemsize, size);
    cr_assert_eq(gcm_span_of(s->base + size - 1), s, "the last byte maps to the span");
    memset((void *)(s->base + size - 4096), 1, 4096);
    gcm_mheap_free_span(s);
    cr_assert_null(gcm_span_of(s->base));
}

Test(mheap, resize_in_place_shrinks_and_grows, .init = setup) {
    mspan *s = gcm_mheap_alloc_large(40 * GCM_PAGE_SIZE, 0, false);
    uintptr_t base = s->base;
    cr_assert(gcm_mheap_resize_large(s, 10 * GCM_PAGE_SIZE));
    cr_assert_eq(s->npages, 10);
    cr_assert_null(gcm_span_of(base + 10 * GCM_PAGE_SIZE), "tail pages are free again");
    cr_assert(gcm_mheap_resize_large(s, 30 * GCM_PAGE_SIZE), "the freed tail is still free");
    cr_assert_eq(s->npages, 30);
    cr_assert_eq(s->base, base);
    cr_assert_eq(gcm_span_of(base + 29 * GCM_PAGE_SIZE), s);
    /* Block the next page: growth must fail and change nothing. */
    mspan *t = gcm_mheap_alloc_large(GCM_PAGE_SIZE, 0, false);
    if (t->base == base + 30 * GCM_PAGE_SIZE) {
        cr_assert_not(gcm_mheap_resize_large(s, 31 * GCM_PAGE_SIZE));
        cr_assert_eq(s->npages, 30);
    }
    gcm_mheap_free_span(t);
    gcm_mheap_free_span(s);
}

Test(mheap, fresh_pages_need_no_zeroing_reused_ones_do, .init = setup) {
    gcm_mheap_scavenge_all();
    mspan *s = gcm_mheap_alloc_large((size_t)8 << 20, 0, false);
    cr_assert_eq(s->needzero, 0, "released or never-touched pages read as zero");
    memset((void *)s->base, 0xab, (size_t)8 << 20);
    uintptr_t base = s->base;
    gcm_mheap_free_span(s); /* within the retained budget: stays resident */
    mspan *t = gcm_mheap_alloc_large((size_t)8 << 20, 0, false);
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
    /* Beyond the retained budget, frees release at once (burst rule). */
    cr_assert_leq(after, before + ((size_t)80 << 20), "before %zu peak %zu after %zu", before, peak, after);
    cr_assert_eq(malloc_trim(0), 1);
    size_t trimmed = rss_bytes();
    cr_assert_leq(trimmed, before + ((size_t)8 << 20), "before %zu after trim %zu", before, trimmed);
    struct gcm_stats st;
    gcm_get_stats(&st);
    cr_assert_geq(st.released_bytes, (size_t)190 << 20);
}

Test(mheap, impossible_requests_fail_cleanly, .init = setup) {
    cr_assert_null(gcm_mheap_alloc_large((size_t)1 << 60, 0, false));
    cr_assert_null(gcm_mheap_alloc_large(4096, (size_t)1 << 62, false));
    cr_assert_null(gcm_mheap_alloc_large((size_t)1 << 46, 0, false), "64 TiB cannot be reserved");
    void *p = malloc(100);
    cr_assert_not_null(p, "the heap still works");
    free(p);
}
