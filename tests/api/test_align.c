/*
 * Every block is 16-byte aligned (x86-64 ABI: max_align_t), whatever its size
 * and whichever function returned it.
 */
#include <criterion/criterion.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>

#include <gcmalloc.h>
#include "testutil.h"

#define ALIGNED16(p) (((uintptr_t)(p) & 15) == 0)

Test(align, malloc_1_is_16_aligned) {
    enum { K = 4096 };
    void **v = malloc(K * sizeof *v);
    cr_assert_not_null(v);
    for (int i = 0; i < K; i++) {
        v[i] = malloc(1);
        cr_assert_not_null(v[i]);
        cr_assert(ALIGNED16(v[i]), "malloc(1) #%d = %p is not 16-byte aligned", i, v[i]);
        *(char *)v[i] = (char)i;
    }
    for (int i = 0; i < K; i++) {
        cr_assert_eq(*(char *)v[i], (char)i, "malloc(1) block %d overwritten", i);
        free(v[i]);
    }
    free(v);
}

/* Every size from 0 to 40000: each block 16-aligned. A window of recent
 * blocks stays live so that consecutive blocks are not all the same slot. */
Test(align, malloc_every_size_0_to_40000) {
    enum { W = 64 };
    void *win[W] = {0};
    for (size_t n = 0; n <= 40000; n++) {
        size_t k = n % W;
        free(win[k]);
        void *p = malloc(n);
        cr_assert_not_null(p, "malloc(%zu) failed", n);
        cr_assert(ALIGNED16(p), "malloc(%zu) = %p is not 16-byte aligned", n, p);
        if (n) {
            ((char *)p)[0] = 1;
            ((char *)p)[n - 1] = 2;
        }
        win[k] = p;
    }
    for (int k = 0; k < W; k++)
        free(win[k]);
}

Test(align, calloc_and_realloc_every_size_0_to_40000) {
    void *r = NULL;
    for (size_t n = 0; n <= 40000; n += 7) {
        void *p = calloc(1, n);
        cr_assert_not_null(p, "calloc(1, %zu) failed", n);
        cr_assert(ALIGNED16(p), "calloc(1, %zu) = %p is not 16-byte aligned", n, p);
        free(p);
        p = calloc(n, 1);
        cr_assert_not_null(p);
        cr_assert(ALIGNED16(p), "calloc(%zu, 1) = %p", n, p);
        free(p);
        void *q = realloc(r, n + 1);
        cr_assert_not_null(q, "realloc to %zu failed", n + 1);
        cr_assert(ALIGNED16(q), "realloc(.., %zu) = %p is not 16-byte aligned", n + 1, q);
        r = q;
    }
    free(r);
}

Test(align, big_sizes) {
    static const size_t sizes[] = {32768,        32769,         65535,        65536,
                                   65537,        100000,        131071,       131072,
                                   131073,       262145,        1048575,      1048576,
                                   1048577,      3 * 1048576 + 5, 16 * 1048576, 16 * 1048576 + 1,
                                   64 * 1048576 + 17, 100 * 1048576 + 1, 300 * 1048576 + 3};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        size_t n = sizes[i];
        char *p = malloc(n);
        cr_assert_not_null(p, "malloc(%zu) failed", n);
        cr_assert(ALIGNED16(p), "malloc(%zu) = %p is not 16-byte aligned", n, p);
        p[0] = 1;
        p[n / 2] = 2;
        p[n - 1] = 3;
        char *q = calloc(1, n);
        cr_assert_not_null(q, "calloc(1, %zu) failed", n);
        cr_assert(ALIGNED16(q), "calloc(1, %zu) = %p is not 16-byte aligned", n, q);
        free(p);
        free(q);
    }
}

Test(align, libc_and_gcm_names_are_16_aligned) {
    for (size_t n = 0; n < 70000; n = n * 2 + 1) {
        void *a = __libc_malloc(n), *b = __libc_calloc(1, n), *c = gcm_malloc(n), *d = gcm_calloc(n, 1);
        void *e = __libc_realloc(NULL, n), *f = gcm_realloc(NULL, n), *g = reallocarray(NULL, n, 1);
        void *v[] = {a, b, c, d, e, f, g};
        for (int i = 0; i < 7; i++) {
            cr_assert_not_null(v[i], "function #%d failed for size %zu", i, n);
            cr_assert(ALIGNED16(v[i]), "function #%d, size %zu: %p is not 16-byte aligned", i, n, v[i]);
        }
        for (int i = 0; i < 7; i++)
            free(v[i]);
    }
}

/* Interleaved sizes with many live blocks (so blocks come from many spans). */
Test(align, many_live_mixed_sizes) {
    enum { K = 20000 };
    void **v = calloc(K, sizeof *v);
    cr_assert_not_null(v);
    uint64_t s = 88172645463325252ULL;
    for (int i = 0; i < K; i++) {
        size_t n = (size_t)(tu_rand(&s) % (i % 100 == 0 ? 200000 : 2048));
        v[i] = malloc(n);
        cr_assert_not_null(v[i]);
        cr_assert(ALIGNED16(v[i]), "malloc(%zu) = %p is not 16-byte aligned", n, v[i]);
        if (i % 3 == 0) {
            free(v[i / 2]);
            v[i / 2] = NULL;
        }
    }
    for (int i = 0; i < K; i++)
        free(v[i]);
    free(v);
}
