/* The arena index: O(1) lookups anywhere in the 48-bit address space. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "alloc/arena.h"
#include "alloc/mspan.h"

static heapArena fake[3];

/* Fake arenas at a low, a middle and the highest 64 MiB of the user address
 * space: the index covers them without any memory being mapped there. */
static const uintptr_t bases[3] = {
    (uintptr_t)1 << GCM_ARENA_SHIFT,                 /* 64 MiB */
    (uintptr_t)0x00004a0000000000ull,                /* middle */
    ((uintptr_t)1 << GCM_ADDR_BITS) - GCM_ARENA_SIZE /* last arena below 2^48 */
};

static void setup(void) {
    for (int i = 0; i < 3; i++) {
        fake[i].base = bases[i];
        gcm_arena_index_set(&fake[i]);
    }
}
static void teardown(void) {
    for (int i = 0; i < 3; i++) gcm_arena_index[bases[i] >> GCM_ARENA_SHIFT] = NULL;
}

Test(arena, lookups_at_low_middle_and_high_addresses, .init = setup, .fini = teardown) {
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(gcm_arena_of(bases[i]), &fake[i]);
        cr_assert_eq(gcm_arena_of(bases[i] + GCM_ARENA_SIZE - 1), &fake[i]);
        cr_assert_eq(gcm_arena_of(bases[i] + 12345), &fake[i]);
    }
    cr_assert_neq(gcm_arena_of(bases[0] - 1), &fake[0]);
    cr_assert_neq(gcm_arena_of(bases[0] + GCM_ARENA_SIZE), &fake[0]);
}

Test(arena, addresses_beyond_48_bits_are_never_heap, .init = setup, .fini = teardown) {
    cr_assert_null(gcm_arena_of((uintptr_t)1 << GCM_ADDR_BITS));
    cr_assert_null(gcm_arena_of(~(uintptr_t)0));
    cr_assert_null(gcm_arena_of(((uintptr_t)1 << 63) | bases[1]), "high bits must not alias arena 1");
}

Test(arena, span_lookup_maps_pages_to_spans, .init = setup, .fini = teardown) {
    mspan s = { .base = bases[1] + 5 * GCM_PAGE_SIZE, .npages = 3 };
    for (int i = 5; i < 8; i++) fake[1].spans[i] = &s;
    cr_assert_eq(gcm_span_of(bases[1] + 5 * GCM_PAGE_SIZE), &s);
    cr_assert_eq(gcm_span_of(bases[1] + 8 * GCM_PAGE_SIZE - 1), &s);
    cr_assert_null(gcm_span_of(bases[1] + 8 * GCM_PAGE_SIZE));
    cr_assert_null(gcm_span_of(bases[1] + 5 * GCM_PAGE_SIZE - 1));
    for (int i = 5; i < 8; i++) fake[1].spans[i] = NULL;
}

Test(arena, reserve_gives_aligned_contiguous_arenas) {
    heapArena *first = gcm_arena_reserve(3, 0);
    cr_assert_not_null(first);
    for (int i = 0; i < 3; i++) {
        heapArena *a = gcm_arena_nth(first, i);
        cr_assert_eq(a->base & (GCM_ARENA_SIZE - 1), 0);
        cr_assert_eq(a->base, first->base + i * GCM_ARENA_SIZE);
        ((volatile char *)a->base)[GCM_ARENA_SIZE - 1] = 1; /* mapped and writable */
    }
    munmap((void *)first->base, 3 * GCM_ARENA_SIZE);
}

Test(arena, heap_memory_is_found_through_the_index) {
    void *p = malloc(100), *q = malloc(1 << 20);
    cr_assert_not_null(gcm_arena_of((uintptr_t)p));
    cr_assert_not_null(gcm_arena_of((uintptr_t)q));
    cr_assert_not_null(gcm_span_of((uintptr_t)p));
    int local;
    cr_assert_null(gcm_span_of((uintptr_t)&local), "a stack address is not heap");
    free(p);
    free(q);
}
