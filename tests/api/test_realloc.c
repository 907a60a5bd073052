/*
 * realloc (glibc 2.36 semantics): realloc(p, 0) frees p and returns NULL
 * with errno unchanged; realloc(NULL, n) is malloc(n); a shrink, or a growth
 * within malloc_usable_size, returns p itself; contents are kept.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>

#include <gcmalloc.h>
#include "testutil.h"

Test(realloc, realloc_0_frees_and_returns_null_errno_unchanged) {
    static const size_t sizes[] = {1, 100, 4000, 32768, 40000, 1 << 20, 32 << 20};
    volatile size_t zero = 0;
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        char *p = malloc(sizes[i]);
        cr_assert_not_null(p);
        memset(p, 7, sizes[i]);
        errno = 777;
        void *q = realloc(p, zero);
        cr_assert_null(q, "realloc(p, 0) of a %zu-byte block returned %p", sizes[i], q);
        cr_assert_eq(errno, 777, "realloc(p, 0) changed errno to %d", errno);
    }
}

Test(realloc, realloc_0_really_frees) {
    /* 32 MiB blocks: 400 rounds would hold 12.8 GiB if realloc(p, 0) leaked. */
    struct gcm_stats a, b;
    gcm_get_stats(&a);
    volatile size_t zero = 0;
    for (int i = 0; i < 400; i++) {
        char *p = malloc(32 << 20);
        cr_assert_not_null(p);
        p[0] = p[(32 << 20) - 1] = 1;
        cr_assert_null(realloc(p, zero));
    }
    for (int i = 0; i < 1000; i++) {
        char *p = malloc(1000);
        cr_assert_not_null(p);
        cr_assert_null(realloc(p, zero));
    }
    gcm_get_stats(&b);
    cr_assert_lt(b.allocated_bytes, a.allocated_bytes + (1 << 20), "allocated %zu -> %zu",
                 a.allocated_bytes, b.allocated_bytes);
}

Test(realloc, realloc_null_is_malloc) {
    for (size_t n = 0; n < 5000000; n = n * 3 + 1) {
        char *p = realloc(NULL, n);
        cr_assert_not_null(p, "realloc(NULL, %zu) failed", n);
        cr_assert_eq((uintptr_t)p % 16, 0);
        cr_assert_geq(malloc_usable_size(p), n);
        memset(p, 0x11, n);
        free(p);
    }
    volatile size_t zero = 0;
    void *a = realloc(NULL, zero), *b = realloc(NULL, zero);
    cr_assert_not_null(a, "realloc(NULL, 0) must behave like malloc(0)");
    cr_assert_not_null(b);
    cr_assert_neq(a, b);
    free(a);
    free(b);
}

Test(realloc, shrink_returns_same_pointer) {
    static const size_t pairs[][2] = {
        {16, 1},           {100, 50},         {1000, 10},          {1000, 999},
        {8192, 4000},      {32768, 16},       {40000, 33000},      {40000, 20000},
        {100000, 50000},   {1 << 20, 512 << 10}, {1 << 20, (1 << 20) - 1}, {8 << 20, 3 << 20},
        {64 << 20, 1 << 20}};
    for (size_t i = 0; i < sizeof pairs / sizeof *pairs; i++) {
        char *p = malloc(pairs[i][0]);
        cr_assert_not_null(p);
        pat_fill(p, pairs[i][0], 5);
        uintptr_t op = addr_of(p);
        char *q = realloc(p, pairs[i][1]);
        cr_assert_eq((uintptr_t)q, op, "realloc(%zu -> %zu) moved the block (%p -> %p)", pairs[i][0], pairs[i][1],
                     (void *)op, q);
        cr_assert_eq(pat_check_key(q, pairs[i][1], op, pairs[i][0], 5), -1);
        cr_assert_geq(malloc_usable_size(q), pairs[i][1]);
        free(q);
    }
}

/* A large block shrunk to a small size still returns p (glibc keeps it). */
Test(realloc, shrink_large_to_small_returns_same_pointer) {
    char *p = malloc(1 << 20);
    cr_assert_not_null(p);
    memcpy(p, "hello, world", 13);
    uintptr_t op = addr_of(p);
    char *q = realloc(p, 100);
    cr_assert_eq((uintptr_t)q, op, "realloc(1 MiB -> 100) moved the block");
    cr_assert_str_eq(q, "hello, world");
    free(q);
}

Test(realloc, growth_within_usable_size_returns_same_pointer) {
    for (size_t n = 1; n < 3000000; n = n + n / 3 + 1) {
        char *p = malloc(n);
        cr_assert_not_null(p);
        size_t u = malloc_usable_size(p);
        cr_assert_geq(u, n);
        pat_fill(p, n, 9);
        uintptr_t op = addr_of(p);
        char *q = realloc(p, u);
        cr_assert_eq((uintptr_t)q, op, "realloc(%zu-byte block, usable size %zu) moved it", n, u);
        cr_assert_eq(pat_check_key(q, n, op, n, 9), -1);
        if (u > n + 1) {
            q = realloc(q, n + 1);
            cr_assert_eq((uintptr_t)q, op, "realloc(%zu-byte block, %zu) moved it (usable %zu)", n, n + 1, u);
        }
        q = realloc(q, n);
        cr_assert_eq((uintptr_t)q, op);
        cr_assert_eq(malloc_usable_size(q), u, "usable size changed by in-place realloc");
        free(q);
    }
}

/* Move a block of `from` bytes to `to` bytes with other allocations in
 * between (so growing in place is usually impossible), check the contents. */
static void check_move(size_t from, size_t to) {
    char *p = malloc(from);
    cr_assert_not_null(p, "malloc(%zu)", from);
    pat_fill(p, from, 0xabc);
    uintptr_t op = addr_of(p);
    void *blockers[4];
    for (int i = 0; i < 4; i++) {
        blockers[i] = malloc(from);
        cr_assert_not_null(blockers[i]);
    }
    char *q = realloc(p, to);
    cr_assert_not_null(q, "realloc(%zu -> %zu) failed", from, to);
    cr_assert_eq((uintptr_t)q % 16, 0);
    cr_assert_geq(malloc_usable_size(q), to);
    size_t keep = from < to ? from : to;
    long bad = pat_check_key(q, keep, op, from, 0xabc);
    cr_assert_eq(bad, -1, "realloc(%zu -> %zu) lost the contents at offset %ld", from, to, bad);
    memset(q, 0x77, to);
    for (int i = 0; i < 4; i++)
        free(blockers[i]);
    free(q);
}

Test(realloc, keeps_contents_small_to_small) {
    for (size_t a = 1; a < 32768; a = a * 2 + 3)
        for (size_t b = 1; b < 32768; b = b * 3 + 1)
            check_move(a, b);
}

Test(realloc, keeps_contents_small_to_large) {
    check_move(100, 40000);
    check_move(4000, 1 << 20);
    check_move(32768, 32769);
    check_move(20000, 50 << 20);
}

Test(realloc, keeps_contents_large_to_large) {
    check_move(40000, 80000);
    check_move(1 << 20, 8 << 20);
    check_move(8 << 20, 3 << 20);
    check_move(3 << 20, (3 << 20) + 1);
    check_move(64 << 20, 65 << 20);
    check_move(65 << 20, 10 << 20);
}

Test(realloc, keeps_contents_large_to_small) {
    check_move(40000, 100);
    check_move(1 << 20, 32768);
    check_move(16 << 20, 1);
}

/* A chain of random reallocs of one block, contents checked at every step. */
Test(realloc, random_chain_keeps_contents) {
    uint64_t s = 42;
    size_t n = 10;
    char *p = malloc(n);
    cr_assert_not_null(p);
    pat_fill(p, n, 1);
    for (int step = 0; step < 3000; step++) {
        size_t m;
        uint64_t r = tu_rand(&s);
        if (r % 50 == 0)
            m = (size_t)(r >> 16) % (4 << 20) + 1;
        else
            m = (size_t)(r >> 16) % 5000 + 1;
        uintptr_t op = addr_of(p);
        char *q = realloc(p, m);
        cr_assert_not_null(q);
        size_t keep = n < m ? n : m;
        long bad = pat_check_key(q, keep, op, n, 1);
        cr_assert_eq(bad, -1, "step %d: %zu -> %zu lost contents at %ld", step, n, m, bad);
        pat_fill(q, m, 1);
        p = q;
        n = m;
    }
    free(p);
}

Test(realloc, reallocarray_works) {
    char *p = reallocarray(NULL, 10, 8);
    cr_assert_not_null(p);
    cr_assert_geq(malloc_usable_size(p), 80);
    pat_fill(p, 80, 3);
    uintptr_t op = addr_of(p);
    char *q = reallocarray(p, 1000, 1000);
    cr_assert_not_null(q);
    cr_assert_geq(malloc_usable_size(q), 1000000);
    cr_assert_eq(pat_check_key(q, 80, op, 80, 3), -1);
    free(q);
}
