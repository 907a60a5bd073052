/*
 * malloc(0) / calloc(0, 0), free(NULL), errno across free, and that live
 * blocks never overlap.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>

#include <gcmalloc.h>
#include "testutil.h"

static int cmp_ptr(const void *a, const void *b) {
    uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;
    return x < y ? -1 : x > y;
}

/* n pointers all non-NULL and pairwise distinct? Returns the index of a
 * duplicate or NULL, or -1. */
static long check_unique(void **v, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!v[i])
            return (long)i;
    void **s = malloc(n * sizeof *s);
    memcpy(s, v, n * sizeof *s);
    qsort(s, n, sizeof *s, cmp_ptr);
    long bad = -1;
    for (size_t i = 1; i < n; i++)
        if (s[i] == s[i - 1])
            bad = (long)i;
    free(s);
    return bad;
}

Test(basic, malloc_0_returns_unique_non_null) {
    enum { K = 5000 };
    void **v = malloc(K * sizeof *v);
    cr_assert_not_null(v);
    volatile size_t zero = 0;
    for (int i = 0; i < K; i++)
        v[i] = malloc(zero);
    cr_assert_eq(check_unique(v, K), -1, "malloc(0) returned NULL or a pointer twice");
    for (int i = 0; i < K; i++)
        free(v[i]);
    free(v);
}

Test(basic, calloc_0_0_returns_unique_non_null) {
    enum { K = 3000 };
    void **v = malloc(3 * K * sizeof *v);
    cr_assert_not_null(v);
    volatile size_t zero = 0, five = 5;
    for (int i = 0; i < K; i++) {
        v[3 * i] = calloc(zero, zero);
        v[3 * i + 1] = calloc(zero, five);
        v[3 * i + 2] = calloc(five, zero);
    }
    cr_assert_eq(check_unique(v, 3 * K), -1, "calloc(0, x) returned NULL or a pointer twice");
    for (int i = 0; i < 3 * K; i++)
        free(v[i]);
    free(v);
}

Test(basic, malloc_0_is_freeable_and_reusable) {
    for (int i = 0; i < 100000; i++) {
        void *p = malloc(0);
        cr_assert_not_null(p);
        free(p);
    }
    void *p = malloc(0);
    cr_assert_not_null(p);
    cr_assert_geq(malloc_usable_size(p), 0);
    void *q = realloc(p, 100);
    cr_assert_not_null(q);
    memset(q, 1, 100);
    free(q);
}

Test(basic, free_null_does_nothing) {
    struct gcm_stats a, b;
    gcm_get_stats(&a);
    errno = 4242;
    for (int i = 0; i < 1000; i++)
        free(NULL);
    cr_assert_eq(errno, 4242, "free(NULL) changed errno to %d", errno);
    gcm_free(NULL);
    cfree(NULL);
    __libc_free(NULL);
    free_sized(NULL, 0);
    free_aligned_sized(NULL, 64, 0);
    cr_assert_eq(errno, 4242);
    gcm_get_stats(&b);
    cr_assert_eq(a.allocated_bytes, b.allocated_bytes);
    void *p = malloc(10);
    cr_assert_not_null(p);
    free(p);
}

Test(basic, free_preserves_errno) {
    static const size_t sizes[] = {1, 16, 100, 1000, 8192, 32768, 32769, 100000, 1 << 20, 64 << 20};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        for (int rep = 0; rep < 50; rep++) {
            char *p = malloc(sizes[i]);
            cr_assert_not_null(p);
            memset(p, 3, sizes[i] < 4096 ? sizes[i] : 4096);
            errno = EILSEQ;
            free(p);
            cr_assert_eq(errno, EILSEQ, "free of a %zu-byte block changed errno to %d", sizes[i], errno);
        }
    }
    /* Also when the free releases memory to the OS (big blocks, then trim). */
    void *big[16];
    for (int i = 0; i < 16; i++) {
        big[i] = malloc(8 << 20);
        cr_assert_not_null(big[i]);
        memset(big[i], 1, 8 << 20);
    }
    for (int i = 0; i < 16; i++) {
        errno = ERANGE;
        free(big[i]);
        cr_assert_eq(errno, ERANGE, "free of an 8 MiB block changed errno to %d", errno);
    }
    errno = ERANGE;
    free(NULL);
    cr_assert_eq(errno, ERANGE);
}

/* Blocks of many sizes, all live at once, each filled with its own pattern:
 * no block's contents change when others are written. */
Test(basic, live_blocks_do_not_overlap) {
    enum { K = 6000 };
    char **v = malloc(K * sizeof *v);
    size_t *sz = malloc(K * sizeof *sz);
    cr_assert(v && sz);
    uint64_t s = 0x1234567;
    for (int i = 0; i < K; i++) {
        size_t n = (size_t)(tu_rand(&s) % 3000);
        if (i % 500 == 0)
            n = 40000 + (size_t)(tu_rand(&s) % 300000);
        v[i] = malloc(n);
        sz[i] = n;
        cr_assert_not_null(v[i]);
        pat_fill(v[i], n, 99);
    }
    for (int i = 0; i < K; i++) {
        long bad = pat_check(v[i], sz[i], 99);
        cr_assert_eq(bad, -1, "block %d (%p, %zu bytes) changed at offset %ld", i, v[i], sz[i], bad);
    }
    /* Free every other block, allocate again, re-check everything. */
    for (int i = 0; i < K; i += 2) {
        free(v[i]);
        sz[i] = (size_t)(tu_rand(&s) % 5000);
        v[i] = malloc(sz[i]);
        cr_assert_not_null(v[i]);
        pat_fill(v[i], sz[i], 99);
    }
    for (int i = 0; i < K; i++) {
        long bad = pat_check(v[i], sz[i], 99);
        cr_assert_eq(bad, -1, "block %d (%p, %zu bytes) changed at offset %ld", i, v[i], sz[i], bad);
        free(v[i]);
    }
    free(v);
    free(sz);
}

/* A freed block is reused: a malloc/free loop does not grow the heap. */
Test(basic, free_makes_memory_reusable) {
    struct gcm_stats a, b;
    void *warm = malloc(1000);
    free(warm);
    gcm_get_stats(&a);
    for (int i = 0; i < 200000; i++) {
        void *p = malloc((size_t)(i % 50) * 40 + 1);
        cr_assert_not_null(p);
        free(p);
    }
    for (int i = 0; i < 500; i++) {
        void *p = malloc(2 << 20);
        cr_assert_not_null(p);
        free(p);
    }
    gcm_get_stats(&b);
    cr_assert_lt(b.mapped_bytes, a.mapped_bytes + (16 << 20), "mapped %zu -> %zu", a.mapped_bytes,
                 b.mapped_bytes);
}
