/*
 * posix_memalign, aligned_alloc, memalign, valloc, pvalloc (glibc 2.36).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>

#include <gcmalloc.h>
#include "testutil.h"

#define IS_ALIGNED(p, a) (((uintptr_t)(p) & ((a)-1)) == 0)

Test(memalign, posix_memalign_einval) {
    static const size_t bad[] = {0, 1, 2, 3, 4, 5, 7, 12, 24, 48, 96, 4097, 3 << 20, (size_t)-1,
                                 ((size_t)1 << 63) + 8};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        void *sentinel = (void *)0xdeadbeef, *p = sentinel;
        int r = posix_memalign(&p, bad[i], 100);
        cr_expect_eq(r, EINVAL, "posix_memalign(alignment %zu) returned %d, expected EINVAL", bad[i],
                     r);
        cr_expect_eq(p, sentinel, "posix_memalign(alignment %zu) changed *p to %p", bad[i], p);
    }
}

Test(memalign, posix_memalign_einval_does_not_change_errno_state) {
    /* The error is the return value; the allocator still works afterwards. */
    void *p = NULL;
    cr_assert_eq(posix_memalign(&p, 24, 10), EINVAL);
    cr_assert_eq(posix_memalign(&p, 64, 10), 0);
    cr_assert_not_null(p);
    cr_assert(IS_ALIGNED(p, 64));
    free(p);
}

/* Each alignment from 8 to 4 MiB with a few sizes, several blocks live at
 * once: aligned, usable >= size, every usable byte writable. */
static void check_aligned_fn(int which) {
    static const char *names[] = {"posix_memalign", "aligned_alloc", "memalign", "__libc_memalign"};
    for (size_t a = 8; a <= ((size_t)4 << 20); a *= 2) {
        if (a > (1 << 20) && a != ((size_t)4 << 20))
            continue;
        size_t sizes[] = {1, 8, 100, a - 1 > 0 ? a - 1 : 1, a, a + 1, 3 * a + 5, 40000};
        enum { NS = sizeof sizes / sizeof *sizes, REP = 3 };
        void *live[NS * REP];
        int k = 0;
        for (int rep = 0; rep < REP; rep++) {
            for (int i = 0; i < NS; i++) {
                size_t n = sizes[i];
                void *p = NULL;
                switch (which) {
                case 0:
                    cr_assert_eq(posix_memalign(&p, a, n), 0, "posix_memalign(%zu, %zu) failed", a, n);
                    break;
                case 1:
                    p = aligned_alloc(a, n);
                    break;
                case 2:
                    p = memalign(a, n);
                    break;
                default:
                    p = __libc_memalign(a, n);
                    break;
                }
                cr_assert_not_null(p, "%s(%zu, %zu) failed", names[which], a, n);
                cr_assert(IS_ALIGNED(p, a), "%s(%zu, %zu) = %p is misaligned", names[which], a, n, p);
                size_t u = malloc_usable_size(p);
                cr_assert_geq(u, n, "%s(%zu, %zu): usable size %zu", names[which], a, n, u);
                memset(p, 0xa5, u);
                live[k++] = p;
            }
        }
        /* Interleave with plain mallocs so the next round starts elsewhere. */
        void *spacer = malloc(a / 2 + 24);
        for (int i = 0; i < k; i++)
            free(live[i]);
        free(spacer);
    }
}

Test(memalign, posix_memalign_8_to_4mib) { check_aligned_fn(0); }
Test(memalign, aligned_alloc_8_to_4mib) { check_aligned_fn(1); }
Test(memalign, memalign_8_to_4mib) { check_aligned_fn(2); }
Test(memalign, libc_memalign_8_to_4mib) { check_aligned_fn(3); }

/* Aligned blocks between many small blocks: alignment inside spans. */
Test(memalign, aligned_blocks_among_small_blocks) {
    enum { K = 3000 };
    void **v = calloc(2 * K, sizeof *v);
    cr_assert_not_null(v);
    for (int i = 0; i < K; i++) {
        size_t a = (size_t)32 << (i % 8); /* 32 .. 4096 */
        v[2 * i] = malloc((size_t)(i % 200) + 1);
        cr_assert_not_null(v[2 * i]);
        cr_assert_eq(posix_memalign(&v[2 * i + 1], a, (size_t)(i % 300) + 1), 0);
        cr_assert(IS_ALIGNED(v[2 * i + 1], a), "posix_memalign(%zu) = %p", a, v[2 * i + 1]);
        pat_fill(v[2 * i + 1], (size_t)(i % 300) + 1, 4);
    }
    for (int i = 0; i < K; i++) {
        cr_assert_eq(pat_check(v[2 * i + 1], (size_t)(i % 300) + 1, 4), -1, "aligned block %d changed", i);
        free(v[2 * i]);
        free(v[2 * i + 1]);
    }
    free(v);
}

Test(memalign, memalign_rounds_non_power_of_two_up) {
    static const size_t cases[][2] = {{48, 64}, {100, 128}, {3000, 4096}, {5000, 8192}, {24, 32},
                                      {65537, 131072}};
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        void *v[50];
        for (int i = 0; i < 50; i++) {
            v[i] = memalign(cases[c][0], (size_t)i * 37 + 1);
            cr_assert_not_null(v[i], "memalign(%zu) failed", cases[c][0]);
            cr_assert(IS_ALIGNED(v[i], cases[c][1]), "memalign(%zu, ..) = %p is not %zu-aligned",
                      cases[c][0], v[i], cases[c][1]);
        }
        for (int i = 0; i < 50; i++)
            free(v[i]);
    }
}

Test(memalign, memalign_small_alignments_are_malloc) {
    static const size_t al[] = {0, 1, 2, 3, 4, 8, 16};
    for (size_t i = 0; i < sizeof al / sizeof *al; i++) {
        void *p = memalign(al[i], 100);
        cr_assert_not_null(p, "memalign(%zu, 100) failed", al[i]);
        cr_assert(IS_ALIGNED(p, 16), "memalign(%zu, 100) = %p", al[i], p);
        cr_assert_geq(malloc_usable_size(p), 100);
        free(p);
    }
}

/* glibc 2.36's aligned_alloc is memalign: a non-power-of-two alignment is
 * rounded up rather than rejected. */
Test(memalign, aligned_alloc_non_power_of_two_like_glibc_2_36) {
    void *p = aligned_alloc(48, 100);
    cr_assert_not_null(p, "aligned_alloc(48, 100) failed");
    cr_assert(IS_ALIGNED(p, 64), "aligned_alloc(48, 100) = %p is not 64-aligned", p);
    free(p);
}

Test(memalign, valloc_is_page_aligned) {
    for (size_t n = 0; n < 3000000; n = n * 2 + 1) {
        void *v[8];
        for (int i = 0; i < 8; i++) {
            v[i] = valloc(n);
            cr_assert_not_null(v[i], "valloc(%zu) failed", n);
            cr_assert(IS_ALIGNED(v[i], 4096), "valloc(%zu) = %p is not page-aligned", n, v[i]);
            size_t u = malloc_usable_size(v[i]);
            cr_assert_geq(u, n);
            memset(v[i], 1, u);
        }
        for (int i = 0; i < 8; i++)
            free(v[i]);
    }
}

Test(memalign, pvalloc_is_page_aligned_and_page_sized) {
    void *p = pvalloc(1);
    cr_assert_not_null(p);
    cr_assert(IS_ALIGNED(p, 4096), "pvalloc(1) = %p", p);
    cr_assert_geq(malloc_usable_size(p), 4096, "pvalloc(1): usable size %zu", malloc_usable_size(p));
    memset(p, 2, 4096);
    free(p);
    for (size_t n = 1; n < 3000000; n = n * 3 + 7) {
        p = pvalloc(n);
        cr_assert_not_null(p, "pvalloc(%zu) failed", n);
        cr_assert(IS_ALIGNED(p, 4096), "pvalloc(%zu) = %p is not page-aligned", n, p);
        size_t want = (n + 4095) & ~(size_t)4095;
        size_t u = malloc_usable_size(p);
        cr_assert_geq(u, want, "pvalloc(%zu): usable size %zu < %zu", n, u, want);
        memset(p, 3, u);
        free(p);
    }
    p = pvalloc(0);
    cr_assert_not_null(p, "pvalloc(0) failed");
    cr_assert(IS_ALIGNED(p, 4096));
    free(p);
}

/* Aligned blocks can be reallocated (the result need only be 16-aligned)
 * and keep their contents. */
Test(memalign, realloc_of_aligned_block) {
    void *p = NULL;
    cr_assert_eq(posix_memalign(&p, 4096, 1000), 0);
    pat_fill(p, 1000, 6);
    uintptr_t op = addr_of(p);
    char *q = realloc(p, 100000);
    cr_assert_not_null(q);
    cr_assert_eq(pat_check_key(q, 1000, op, 1000, 6), -1);
    free(q);
    q = memalign(1 << 20, 5000);
    cr_assert_not_null(q);
    pat_fill(q, 5000, 6);
    op = addr_of(q);
    char *r = realloc(q, 10);
    cr_assert_not_null(r);
    cr_assert_eq(pat_check_key(r, 10, op, 5000, 6), -1);
    free(r);
}
