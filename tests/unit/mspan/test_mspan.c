/* mspan: bitmap, allocCache and remote-free operations on real spans. */
#include <criterion/criterion.h>
#include <cpuid.h>
#include <signal.h>
#include <stdlib.h>

#include "alloc/mheap.h"
#include "alloc/mspan.h"
#include "alloc/sizeclass.h"

static void setup(void) {
    free(malloc(1)); /* the heap exists */
}

/* Take every object of a fresh span through its allocCache. */
static size_t drain(mspan *s, void **out) {
    size_t n = 0;
    for (;;) {
        void *p = mspan_alloc_fast(s);
        if (!p) {
            if (!mspan_refill_cache(s)) break;
            continue;
        }
        out[n++] = p;
    }
    return n;
}

Test(mspan, fresh_span_hands_out_every_object_once_in_order, .init = setup) {
    for (unsigned c = 1; c < GCM_NUM_SIZE_CLASSES; c++) {
        mspan *s = gcm_mheap_alloc_small(gcm_span_class(c, c == 1));
        cr_assert_not_null(s);
        void **objs = malloc(sizeof(void *) * gcm_class_nelems[c]);
        size_t n = drain(s, objs);
        cr_assert_eq(n, gcm_class_nelems[c], "class %u: %zu of %u objects", c, n, gcm_class_nelems[c]);
        for (size_t i = 0; i < n; i++)
            cr_assert_eq((uintptr_t)objs[i], s->base + i * gcm_class_size[c], "class %u object %zu", c, i);
        cr_assert_eq(s->allocCount, s->nelems);
        cr_assert_not(mspan_refill_cache(s), "a full span refills");
        for (size_t i = 0; i < n; i++) mspan_free_local(s, i, "test");
        cr_assert_eq(s->allocCount, 0);
        free(objs);
        gcm_mheap_free_span(s);
    }
}

Test(mspan, object_index_is_exact_for_every_byte, .init = setup) {
    for (unsigned c = 1; c < GCM_NUM_SIZE_CLASSES; c++) {
        mspan *s = gcm_mheap_alloc_small(gcm_span_class(c, false));
        size_t bytes = s->npages * GCM_PAGE_SIZE;
        for (size_t off = 0; off < bytes; off++) {
            bool exact;
            size_t idx = mspan_obj_index_exact(s, s->base + off, &exact);
            if (idx != off / s->elemsize || exact != (off % s->elemsize == 0))
                cr_assert_fail("class %u off %zu: index %zu exact %d", c, off, idx, exact);
        }
        gcm_mheap_free_span(s);
    }
}

Test(mspan, freed_slots_are_reused_and_cache_tracks_bits, .init = setup) {
    unsigned c = gcm_size_class(64);
    mspan *s = gcm_mheap_alloc_small(gcm_span_class(c, false));
    void *objs[128];
    size_t n = drain(s, objs);
    cr_assert_eq(n, 128);
    /* Free objects 3 (first word) and 70 (second word): both come back. */
    mspan_free_local(s, 3, "test");
    mspan_free_local(s, 70, "test");
    cr_assert_eq(s->allocCount, 126);
    cr_assert_null(mspan_alloc_fast(s), "freed objects wait for the next cache load");
    cr_assert(mspan_refill_cache(s));
    cr_assert_eq(s->allocCount, 127, "loading the cache reserves its word's free object");
    void *a = mspan_alloc_fast(s);
    if (!a) { cr_assert(mspan_refill_cache(s)); a = mspan_alloc_fast(s); }
    void *b = mspan_alloc_fast(s);
    if (!b) { cr_assert(mspan_refill_cache(s)); b = mspan_alloc_fast(s); }
    cr_assert(a == objs[3] || a == objs[70]);
    cr_assert(b == objs[3] || b == objs[70]);
    cr_assert_neq(a, b);
    /* The invariant of mspan.h: cached objects are reserved in allocBits. */
    cr_assert_eq(s->allocCache & ~*s->cacheWord, 0);
    for (size_t i = 0; i < 128; i++) mspan_free_local(s, i, "test");
    gcm_mheap_free_span(s);
}

Test(mspan, padding_bits_past_nelems_read_as_allocated, .init = setup) {
    unsigned c = gcm_size_class(48); /* 170 objects: 3 words, 22 used bits in the last */
    mspan *s = gcm_mheap_alloc_small(gcm_span_class(c, false));
    cr_assert_eq(s->nelems, 170);
    cr_assert_eq(s->nwords, 3);
    cr_assert_eq(s->allocBits[2], ~(uint64_t)0 << (170 - 128));
    gcm_mheap_free_span(s);
}

Test(mspan, remote_frees_announce_once_and_merge, .init = setup) {
    unsigned c = gcm_size_class(128);
    mspan *s = gcm_mheap_alloc_small(gcm_span_class(c, false));
    void *objs[64];
    cr_assert_eq(drain(s, objs), 64);
    /* Owned: pushes never announce; the first onto an empty list says so
     * (the holder's mcache is told). */
    cr_assert_eq(mspan_free_remote(s, objs[1], "test"), XPUSH_FIRST);
    cr_assert_eq(mspan_free_remote(s, objs[2], "test"), 0);
    /* Unowned and waiting for news: only the first push announces. */
    uintptr_t x = __atomic_exchange_n(&s->xfree, XFREE_NOTIFY, __ATOMIC_ACQUIRE);
    cr_assert_eq(mspan_free_remote(s, objs[5], "test"), XPUSH_ANNOUNCE);
    cr_assert_eq(mspan_free_remote(s, objs[6], "test"), 0);
    cr_assert_eq(s->xfree & XFREE_STATE, XFREE_NOTIFIED);
    cr_assert_eq(s->allocCount, 64, "remote frees wait to be merged");
    mspan_merge_remote(s, x & ~(uintptr_t)XFREE_STATE);
    uintptr_t y = __atomic_exchange_n(&s->xfree, XFREE_OWNED, __ATOMIC_ACQUIRE);
    mspan_merge_remote(s, y & ~(uintptr_t)XFREE_STATE);
    cr_assert_eq(s->allocCount, 60);
    cr_assert_not(mspan_is_allocated(s, 1, true));
    cr_assert_not(mspan_is_allocated(s, 6, true));
    cr_assert(mspan_is_allocated(s, 3, true));
    for (size_t i = 0; i < 64; i++)
        if (mspan_is_allocated(s, i, true)) mspan_free_local(s, i, "test");
    cr_assert_eq(s->allocCount, 0);
    gcm_mheap_free_span(s);
}

/* Free object 0 of a fresh span twice with `free_fn`: must abort. */
static void double_free(void (*free_fn)(mspan *, size_t, const char *)) {
    unsigned c = gcm_size_class(32);
    mspan *s = gcm_mheap_alloc_small(gcm_span_class(c, false));
    cr_assert(mspan_refill_cache(s));
    cr_assert_not_null(mspan_alloc_fast(s));
    free_fn(s, 0, "test");
    free_fn(s, 0, "test");
}

Test(mspan, double_free_is_caught_by_the_bitmap, .init = setup, .signal = SIGABRT) {
    double_free(mspan_free_local);
}

Test(mspan, freeing_a_reserved_object_is_a_double_free, .init = setup, .signal = SIGABRT) {
    unsigned c = gcm_size_class(32);
    mspan *s = gcm_mheap_alloc_small(gcm_span_class(c, false));
    cr_assert(mspan_refill_cache(s));
    void *p = mspan_alloc_fast(s);
    mspan_free_local(s, 0, "test");
    mspan_release_cache(s);
    cr_assert(mspan_refill_cache(s)); /* object 0 is reserved again */
    cr_assert_not(mspan_is_allocated(s, 0, true));
    mspan_free_local(s, 0, "test"); /* p freed twice */
    (void)p;
}

Test(mspan, release_cache_unreserves, .init = setup) {
    unsigned c = gcm_size_class(16);
    mspan *s = gcm_mheap_alloc_small(gcm_span_class(c, false));
    cr_assert(mspan_refill_cache(s));
    cr_assert_eq(s->allocCount, 64);
    cr_assert_not_null(mspan_alloc_fast(s));
    mspan_release_cache(s);
    cr_assert_eq(s->allocCount, 1);
    cr_assert_eq(s->allocBits[0], 1);
    mspan_free_local(s, 0, "test");
    gcm_mheap_free_span(s);
}

/* An owner free into the cached word reserves the object again in
 * freedCache (allocCount keeps counting it); when allocCache runs dry the
 * refill hands it out again without searching the bitmap. */
Test(mspan, owner_free_into_the_cached_word_is_reserved_again, .init = setup) {
    unsigned c = gcm_size_class(96);
    mspan *s = gcm_mheap_alloc_small(gcm_span_class(c, false));
    cr_assert(mspan_refill_cache(s));
    void *a = mspan_alloc_fast(s), *b = mspan_alloc_fast(s);
    uint16_t count = s->allocCount;
    mspan_free_owned(s, mspan_obj_index(s, (uintptr_t)b), "test");
    mspan_free_owned(s, mspan_obj_index(s, (uintptr_t)a), "test");
    cr_assert_eq(s->allocCount, count, "freed into the cache: reserved, still counted");
    cr_assert_eq(s->freedCache, 3);
    cr_assert_not(mspan_is_allocated(s, 0, true));
    cr_assert_eq(mspan_cached(s) & ~*s->cacheWord, 0, "cached objects are reserved in allocBits");
    /* The rest of the word first, then the freed pair, then the next word. */
    void *objs[128];
    size_t n = 0;
    while ((objs[n] = mspan_alloc_fast(s)) != NULL) n++;
    cr_assert_eq(n, 62);
    cr_assert(mspan_refill_cache(s));
    cr_assert_eq(s->cacheWord, &s->allocBits[0], "the freed objects come back before the next word");
    cr_assert_eq(mspan_alloc_fast(s), a);
    cr_assert_eq(mspan_alloc_fast(s), b);
    cr_assert_eq(s->freedCache, 0);
    n = 2 + 62 + drain(s, objs);
    cr_assert_eq(n, s->nelems);
    /* An object outside the cached word is cleared in allocBits instead. */
    size_t last = s->nelems - 1, first = 0;
    mspan_free_owned(s, first, "test"); /* the cache now holds the last word */
    cr_assert_neq(s->cacheWord, &s->allocBits[0]);
    cr_assert_eq(s->allocBits[0] & 1, 0);
    mspan_free_owned(s, last, "test");
    cr_assert_eq(s->freedCache, (uint64_t)1 << (last & 63));
    for (size_t i = 1; i < last; i++) mspan_free_local(s, i, "test");
    mspan_release_cache(s);
    cr_assert_eq(s->allocCount, 0);
    gcm_mheap_free_span(s);
}

Test(mspan, owner_double_free_into_the_cache_is_caught, .init = setup, .signal = SIGABRT) {
    double_free(mspan_free_owned);
}

/* The reused slot must not stay scoped (gc/scope.c), and a sweep must not
 * free an object the owner already put back into the cache. */
Test(mspan, reused_slot_drops_its_scope_bit_and_is_not_swept_again, .init = setup) {
    unsigned c = gcm_size_class(64);
    mspan *s = gcm_mheap_alloc_small(gcm_span_class(c, false));
    cr_assert(mspan_refill_cache(s));
    cr_assert_not_null(mspan_alloc_fast(s));
    cr_assert_not_null(mspan_alloc_fast(s));
    s->scoped = 1; /* as gcm_scope_track marks the span */
    s->scopeBits[0] = 1;
    s->gcmarkBits[0] = 3;  /* garbage from a collection: objects 0 and 1 */
    s->sweep_gen = s->swept_gen + 1;
    mspan_free_owned(s, 0, "test"); /* the program freed garbage before the sweep */
    cr_assert_eq(s->scopeBits[0], 0);
    uint16_t count = s->allocCount;
    cr_assert_eq(mspan_sweep(s), 1, "only object 1 is garbage still to free");
    cr_assert_eq(s->allocCount, count - 1);
    cr_assert_not(mspan_is_allocated(s, 1, true));
    cr_assert_eq(s->freedCache & 1, 1, "object 0 stays in the cache");
    mspan_release_cache(s);
    cr_assert_eq(s->allocCount, 0);
    gcm_mheap_free_span(s);
}

/* Fork child: a vanished owner's cache, freed objects included, is free. */
Test(mspan, repair_gives_the_cache_back, .init = setup) {
    unsigned c = gcm_size_class(64);
    mspan *s = gcm_mheap_alloc_small(gcm_span_class(c, false));
    cr_assert(mspan_refill_cache(s));
    void *a = mspan_alloc_fast(s);
    cr_assert_not_null(mspan_alloc_fast(s));
    mspan_free_owned(s, mspan_obj_index(s, (uintptr_t)a), "test");
    mspan_repair_orphaned(s);
    cr_assert_eq(mspan_cached(s), 0);
    cr_assert_eq(s->allocCount, 1);
    cr_assert_not(mspan_is_allocated(s, 0, true));
    cr_assert(mspan_is_allocated(s, 1, true));
    mspan_free_local(s, 1, "test");
    gcm_mheap_free_span(s);
}

Test(mspan, large_span_is_one_object, .init = setup) {
    mspan *s = gcm_span_of((uintptr_t)gcm_mheap_alloc_large(100000, 0, false));
    cr_assert_eq(s->nelems, 1);
    cr_assert_eq(s->npages, (100000 + GCM_PAGE_SIZE - 1) / GCM_PAGE_SIZE);
    cr_assert_eq(s->elemsize, s->npages * GCM_PAGE_SIZE);
    cr_assert(mspan_is_allocated(s, 0, true));
    cr_assert_eq(mspan_obj_index(s, s->base + 99999), 0);
    cr_assert_eq(gcm_span_of(s->base + 99999), s);
    gcm_mheap_free_span(s);
}

/* Both ways of counting bits agree with a bit-by-bit count, and the heap
 * chose POPCNT where the CPU has it. */
Test(mspan, popcount_is_exact_with_and_without_popcnt, .init = setup) {
    unsigned eax, ebx, ecx = 0, edx;
    __get_cpuid(1, &eax, &ebx, &ecx, &edx);
    cr_assert_eq(gcm_cpu_popcnt, (ecx & bit_POPCNT) != 0);
    bool saved = gcm_cpu_popcnt;
    uint64_t x = 0x9e3779b97f4a7c15ull;
    for (int i = 0; i < 10000; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        uint64_t v = i < 65 ? (i == 64 ? ~(uint64_t)0 : ((uint64_t)1 << i) - 1) : x & (x >> (i % 7));
        unsigned want = 0;
        for (int b = 0; b < 64; b++) want += (v >> b) & 1;
        for (int way = 0; way < 2; way++) {
            if (way == 1 && !saved) break;
            gcm_cpu_popcnt = way == 1;
            unsigned got = gcm_popcount64(v);
            gcm_cpu_popcnt = saved;
            cr_assert_eq(got, want, "%s: %#lx has %u bits, counted %u", way ? "popcnt" : "portable",
                         (unsigned long)v, want, got);
        }
    }
}
