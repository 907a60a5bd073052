/*
 * Requests that cannot be met return NULL with errno == ENOMEM
 * (posix_memalign returns ENOMEM); a failed realloc leaves the old block
 * intact and freeable; the allocator keeps working afterwards.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <gcmalloc.h>
#include "testutil.h"

/* volatile: keep gcc from reasoning about (and warning on) the huge sizes. */
static volatile size_t vSIZE_MAX = SIZE_MAX;
static volatile size_t vPTRDIFF_MAX = PTRDIFF_MAX;
static volatile size_t v2_32 = (size_t)1 << 32;

#define EXPECT_ENOMEM(call)                                                                       \
    do {                                                                                          \
        errno = 0;                                                                                \
        void *r_ = (call);                                                                        \
        int e_ = errno;                                                                           \
        cr_expect_null(r_, "%s returned %p, expected NULL", #call, r_);                          \
        cr_expect_eq(e_, ENOMEM, "%s set errno %d, expected ENOMEM", #call, e_);                 \
        if (r_)                                                                                   \
            free(r_);                                                                             \
    } while (0)

Test(enomem, malloc_size_max) {
    EXPECT_ENOMEM(malloc(vSIZE_MAX));
    EXPECT_ENOMEM(malloc(vSIZE_MAX - 1));
    EXPECT_ENOMEM(malloc(vSIZE_MAX - 4096));
    EXPECT_ENOMEM(malloc(vSIZE_MAX - (64 << 20)));
    EXPECT_ENOMEM(gcm_malloc(vSIZE_MAX));
    EXPECT_ENOMEM(__libc_malloc(vSIZE_MAX));
    EXPECT_ENOMEM(gcm_malloc_noscan(vSIZE_MAX));
}

Test(enomem, malloc_ptrdiff_max_plus_1) {
    EXPECT_ENOMEM(malloc(vPTRDIFF_MAX + 1));
    EXPECT_ENOMEM(malloc(vPTRDIFF_MAX));
    EXPECT_ENOMEM(malloc(vPTRDIFF_MAX - 15));
    EXPECT_ENOMEM(malloc((size_t)1 << 62));
    /* Larger than the 48-bit address space: can never be mapped. */
    EXPECT_ENOMEM(malloc((size_t)1 << 48));
}

Test(enomem, calloc_overflow) {
    size_t half = vSIZE_MAX / 2 + 1;
    EXPECT_ENOMEM(calloc(half, 2));
    EXPECT_ENOMEM(calloc(2, half));
    EXPECT_ENOMEM(calloc(v2_32, v2_32));
    EXPECT_ENOMEM(calloc(vSIZE_MAX, vSIZE_MAX));
    EXPECT_ENOMEM(calloc(vSIZE_MAX, 1));
    EXPECT_ENOMEM(calloc(1, vSIZE_MAX));
    EXPECT_ENOMEM(calloc(vPTRDIFF_MAX / 8 + 1, 16)); /* no overflow, too big */
    EXPECT_ENOMEM(gcm_calloc(half, 2));
    EXPECT_ENOMEM(__libc_calloc(half, 2));
    /* (2^32 + 1)^2 wraps to 2^33 + 1: an unchecked multiplication would
     * allocate 8 GiB and succeed. */
    EXPECT_ENOMEM(calloc(v2_32 + 1, (v2_32) + 1));
}

Test(enomem, failed_malloc_then_malloc_works) {
    for (int i = 0; i < 100; i++) {
        EXPECT_ENOMEM(malloc(vSIZE_MAX - (size_t)i));
        void *p = malloc(100 + (size_t)i);
        cr_assert_not_null(p);
        memset(p, 1, 100 + (size_t)i);
        free(p);
        p = malloc(1 << 20);
        cr_assert_not_null(p);
        free(p);
    }
}

static void check_failed_realloc(size_t n, size_t to, int use_gcm) {
    char *p = malloc(n);
    cr_assert_not_null(p);
    pat_fill(p, n, 0x5151);
    size_t u = malloc_usable_size(p);
    errno = 0;
    void *q = use_gcm ? gcm_realloc(opaque(p), to) : realloc(opaque(p), to);
    int e = errno;
    cr_expect_null(q, "realloc(%zu-byte block, %zu) returned %p", n, to, q);
    cr_expect_eq(e, ENOMEM, "realloc(%zu-byte block, %zu): errno %d", n, to, e);
    if (q)
        return;
    long bad = pat_check(p, n, 0x5151);
    cr_assert_eq(bad, -1, "failed realloc changed the old %zu-byte block at offset %ld", n, bad);
    cr_assert_eq(malloc_usable_size(p), u, "failed realloc changed the usable size");
    /* Still usable: grow it for real, then free it. */
    uintptr_t op = addr_of(p);
    char *r = realloc(p, n + 1000);
    cr_assert_not_null(r);
    cr_assert_eq(pat_check_key(r, n, op, n, 0x5151), -1);
    free(r);
}

Test(enomem, realloc_to_size_max_keeps_old_block) {
    static const size_t sizes[] = {1, 100, 5000, 32768, 40000, 1 << 20, 20 << 20};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        check_failed_realloc(sizes[i], vSIZE_MAX, 0);
        check_failed_realloc(sizes[i], vSIZE_MAX - 64, 0);
        check_failed_realloc(sizes[i], vPTRDIFF_MAX + 1, 0);
        check_failed_realloc(sizes[i], (size_t)1 << 48, 0);
        check_failed_realloc(sizes[i], vSIZE_MAX, 1);
    }
}

Test(enomem, realloc_null_size_max) {
    EXPECT_ENOMEM(realloc(NULL, vSIZE_MAX));
    EXPECT_ENOMEM(__libc_realloc(NULL, vSIZE_MAX));
}

Test(enomem, reallocarray_overflow) {
    size_t half = vSIZE_MAX / 2 + 1;
    EXPECT_ENOMEM(reallocarray(NULL, half, 2));
    EXPECT_ENOMEM(reallocarray(NULL, v2_32, v2_32));
    char *p = malloc(300);
    cr_assert_not_null(p);
    pat_fill(p, 300, 8);
    errno = 0;
    void *q = reallocarray(opaque(p), half, 4);
    int e = errno;
    cr_expect_null(q);
    cr_expect_eq(e, ENOMEM, "reallocarray overflow: errno %d", e);
    if (q)
        return;
    cr_assert_eq(pat_check(p, 300, 8), -1, "failed reallocarray changed the old block");
    errno = 0;
    q = reallocarray(opaque(p), vSIZE_MAX, vSIZE_MAX);
    e = errno;
    cr_expect_null(q);
    cr_expect_eq(e, ENOMEM);
    if (q)
        return;
    cr_assert_eq(pat_check(p, 300, 8), -1);
    free(p);
}

Test(enomem, huge_aligned_requests) {
    void *sentinel = (void *)0x1234, *p = sentinel;
    int r = posix_memalign(&p, 64, vSIZE_MAX);
    cr_expect_eq(r, ENOMEM, "posix_memalign(64, SIZE_MAX) returned %d", r);
    cr_expect_eq(p, sentinel, "failed posix_memalign changed *p");
    p = sentinel;
    r = posix_memalign(&p, 4096, vSIZE_MAX - 4095);
    cr_expect_eq(r, ENOMEM, "posix_memalign(4096, SIZE_MAX-4095) returned %d", r);
    p = sentinel;
    r = posix_memalign(&p, 1 << 20, vPTRDIFF_MAX);
    cr_expect_eq(r, ENOMEM, "posix_memalign(1 MiB, PTRDIFF_MAX) returned %d", r);
    p = sentinel;
    r = posix_memalign(&p, 16, vSIZE_MAX - 8);
    cr_expect_eq(r, ENOMEM, "posix_memalign(16, SIZE_MAX-8) returned %d", r);

    EXPECT_ENOMEM(aligned_alloc(64, vSIZE_MAX));
    EXPECT_ENOMEM(aligned_alloc(4096, vSIZE_MAX - 4095));
    EXPECT_ENOMEM(aligned_alloc(1 << 20, vPTRDIFF_MAX + 1));
    EXPECT_ENOMEM(memalign(64, vSIZE_MAX));
    EXPECT_ENOMEM(memalign(1 << 20, vSIZE_MAX - 100));
    EXPECT_ENOMEM(memalign(4096, vPTRDIFF_MAX));
    EXPECT_ENOMEM(__libc_memalign(64, vSIZE_MAX));
    EXPECT_ENOMEM(valloc(vSIZE_MAX));
    EXPECT_ENOMEM(valloc(vSIZE_MAX - 4096));
    EXPECT_ENOMEM(pvalloc(vSIZE_MAX));       /* rounding up to pages overflows */
    EXPECT_ENOMEM(pvalloc(vSIZE_MAX - 4000));
    EXPECT_ENOMEM(pvalloc(vPTRDIFF_MAX));

    /* The allocator still works. */
    r = posix_memalign(&p, 64, 1000);
    cr_assert_eq(r, 0);
    cr_assert_eq((uintptr_t)p % 64, 0);
    free(p);
}
