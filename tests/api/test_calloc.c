/*
 * calloc returns zeroed memory: fresh, reused (after the same size was
 * filled with 0xff and freed), small and large.
 */
#include <criterion/criterion.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>

#include <gcmalloc.h>
#include "testutil.h"

Test(calloc, fresh_memory_is_zero) {
    static const size_t dims[][2] = {{1, 1},     {3, 7},       {1, 16},      {16, 1},
                                     {100, 10},  {1000, 1000}, {1, 32768},   {1, 32769},
                                     {7, 12345}, {1, 1 << 20}, {256, 65536}, {1, 64 << 20}};
    for (size_t i = 0; i < sizeof dims / sizeof *dims; i++) {
        size_t n = dims[i][0] * dims[i][1];
        char *p = calloc(dims[i][0], dims[i][1]);
        cr_assert_not_null(p, "calloc(%zu, %zu) failed", dims[i][0], dims[i][1]);
        long nz = first_nonzero(p, n);
        cr_assert_eq(nz, -1, "calloc(%zu, %zu): byte %ld is not zero", dims[i][0], dims[i][1], nz);
        free(p);
    }
}

/* For each size: K blocks malloc'd, filled with 0xff over their usable size,
 * freed, then K callocs of the same size must be zero. */
static void check_reuse(size_t n, int k, void *(*callocf)(size_t, size_t)) {
    char **v = malloc((size_t)k * sizeof *v);
    cr_assert_not_null(v);
    for (int i = 0; i < k; i++) {
        v[i] = malloc(n);
        cr_assert_not_null(v[i]);
        memset(v[i], 0xff, malloc_usable_size(v[i]));
    }
    for (int i = 0; i < k; i++)
        free(v[i]);
    for (int i = 0; i < k; i++) {
        v[i] = callocf(1, n);
        cr_assert_not_null(v[i]);
        long nz = first_nonzero(v[i], n);
        cr_assert_eq(nz, -1, "calloc(1, %zu) #%d of reused memory: byte %ld is 0x%02x", n, i, nz,
                     nz >= 0 ? (unsigned char)v[i][nz] : 0);
    }
    for (int i = 0; i < k; i++)
        free(v[i]);
    free(v);
}

Test(calloc, reused_small_memory_is_zero) {
    for (size_t n = 1; n <= 32768; n = n < 64 ? n + 1 : n + n / 5)
        check_reuse(n, 300, calloc);
}

Test(calloc, reused_large_memory_is_zero) {
    static const size_t sizes[] = {32769, 40000, 65536, 100000, 1 << 20, (3 << 20) + 7, 16 << 20, 48 << 20};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++)
        check_reuse(sizes[i], 4, calloc);
}

Test(calloc, reused_memory_is_zero_gcm_and_libc_names) {
    check_reuse(100, 500, gcm_calloc);
    check_reuse(5000, 50, __libc_calloc);
    check_reuse(1 << 20, 3, gcm_calloc);
}

/* A large block freed and a calloc of a different (smaller) size that may be
 * carved from it. */
Test(calloc, reused_memory_of_other_sizes_is_zero) {
    for (int round = 0; round < 20; round++) {
        char *p = malloc(8 << 20);
        cr_assert_not_null(p);
        memset(p, 0xff, 8 << 20);
        free(p);
        size_t n = (size_t)(round + 1) * 123457;
        char *q = calloc(n, 1);
        cr_assert_not_null(q);
        cr_assert_eq(first_nonzero(q, n), -1, "calloc(%zu) after free of 8 MiB of 0xff", n);
        char *smalls[200];
        for (int i = 0; i < 200; i++) {
            smalls[i] = calloc(1, (size_t)i * 40 + 8);
            cr_assert_not_null(smalls[i]);
            cr_assert_eq(first_nonzero(smalls[i], (size_t)i * 40 + 8), -1);
        }
        for (int i = 0; i < 200; i++)
            free(smalls[i]);
        free(q);
    }
}

/* calloc after realloc shrink/free traffic in the same size class. */
Test(calloc, zero_after_realloc_traffic) {
    for (int i = 0; i < 2000; i++) {
        char *p = malloc(200);
        cr_assert_not_null(p);
        memset(p, 0xee, 200);
        p = realloc(p, 150);
        cr_assert_not_null(p);
        memset(p, 0xdd, malloc_usable_size(p));
        free(p);
        char *q = calloc(10, 20);
        cr_assert_not_null(q);
        cr_assert_eq(first_nonzero(q, 200), -1, "round %d", i);
        free(q);
    }
}
