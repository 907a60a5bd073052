/*
 * malloc_usable_size: >= the request, the same for the block's whole life,
 * and every usable byte writable without touching another block - for
 * blocks from every allocating function.
 */
#include <criterion/criterion.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>

#include <gcmalloc.h>
#include "testutil.h"

Test(usable, null_is_zero) {
    cr_assert_eq(malloc_usable_size(NULL), 0);
    cr_assert_eq(gcm_usable_size(NULL), 0);
}

enum {
    F_MALLOC, F_CALLOC, F_REALLOC_NULL, F_REALLOC_GROW, F_REALLOC_SHRINK, F_REALLOCARRAY,
    F_POSIX_MEMALIGN, F_ALIGNED_ALLOC, F_MEMALIGN, F_VALLOC, F_PVALLOC, F_LIBC_MALLOC,
    F_LIBC_CALLOC, F_LIBC_REALLOC, F_LIBC_MEMALIGN, F_GCM_MALLOC, F_GCM_CALLOC, F_GCM_REALLOC,
    F_GCM_NOSCAN, F_COUNT
};
static const char *const fnames[F_COUNT] = {
    "malloc", "calloc", "realloc(NULL)", "realloc(grow)", "realloc(shrink)", "reallocarray",
    "posix_memalign", "aligned_alloc", "memalign", "valloc", "pvalloc", "__libc_malloc",
    "__libc_calloc", "__libc_realloc", "__libc_memalign", "gcm_malloc", "gcm_calloc",
    "gcm_realloc", "gcm_malloc_noscan"};

static void *alloc_with(int f, size_t n) {
    void *p = NULL;
    switch (f) {
    case F_MALLOC: return malloc(n);
    case F_CALLOC: return calloc(n, 1);
    case F_REALLOC_NULL: return realloc(NULL, n);
    case F_REALLOC_GROW: p = malloc(n / 2); return p ? realloc(p, n) : NULL;
    case F_REALLOC_SHRINK: p = malloc(2 * n + 1); return p ? realloc(p, n) : NULL;
    case F_REALLOCARRAY: return reallocarray(NULL, n, 1);
    case F_POSIX_MEMALIGN: return posix_memalign(&p, 256, n) == 0 ? p : NULL;
    case F_ALIGNED_ALLOC: return aligned_alloc(64, n);
    case F_MEMALIGN: return memalign(8192, n);
    case F_VALLOC: return valloc(n);
    case F_PVALLOC: return pvalloc(n);
    case F_LIBC_MALLOC: return __libc_malloc(n);
    case F_LIBC_CALLOC: return __libc_calloc(1, n);
    case F_LIBC_REALLOC: p = __libc_malloc(n / 3); return p ? __libc_realloc(p, n) : NULL;
    case F_LIBC_MEMALIGN: return __libc_memalign(128, n);
    case F_GCM_MALLOC: return gcm_malloc(n);
    case F_GCM_CALLOC: return gcm_calloc(1, n);
    case F_GCM_REALLOC: p = gcm_malloc(n + 100); return p ? gcm_realloc(p, n) : NULL;
    case F_GCM_NOSCAN: return gcm_malloc_noscan(n);
    }
    return NULL;
}

static const size_t sizes[] = {0,     1,     7,      8,      9,       15,      16,      17,
                               24,    100,   1000,   1024,   4095,    4096,    8192,    10000,
                               32767, 32768, 32769,  40000,  65536,   100000,  131072,  1 << 20,
                               (1 << 20) + 1, 3 << 20, 9000000};

/* For each function and size: K blocks live at once, each filled over its
 * whole usable size with its own byte; then all re-checked (an overstated
 * usable size would make neighbours overwrite each other). */
static void check_fn(int f) {
    enum { K = 12 };
    for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
        size_t n = sizes[s];
        /* realloc(p, 0) frees p: no block to check. */
        if (n == 0 && (f == F_REALLOC_GROW || f == F_REALLOC_SHRINK || f == F_LIBC_REALLOC ||
                       f == F_GCM_REALLOC))
            continue;
        unsigned char *v[K];
        size_t us[K];
        for (int i = 0; i < K; i++) {
            v[i] = alloc_with(f, n);
            cr_assert_not_null(v[i], "%s(%zu) failed", fnames[f], n);
            us[i] = malloc_usable_size(v[i]);
            cr_assert_geq(us[i], n, "%s(%zu): usable size %zu < request", fnames[f], n, us[i]);
            cr_assert_eq(gcm_usable_size(v[i]), us[i], "%s(%zu): gcm_usable_size differs", fnames[f], n);
            memset(v[i], 0x30 + i, us[i]);
        }
        /* Some unrelated traffic in between. */
        for (int j = 0; j < 50; j++)
            free(malloc((size_t)j * 100 + n / 4));
        for (int i = 0; i < K; i++) {
            cr_assert_eq(malloc_usable_size(v[i]), us[i], "%s(%zu): usable size changed %zu -> %zu",
                         fnames[f], n, us[i], malloc_usable_size(v[i]));
            for (size_t b = 0; b < us[i]; b++)
                if (v[i][b] != (unsigned char)(0x30 + i))
                    cr_assert_fail("%s(%zu): block %d (usable %zu) overwritten at offset %zu", fnames[f],
                                   n, i, us[i], b);
        }
        for (int i = 0; i < K; i++)
            free(v[i]);
    }
}

Test(usable, malloc) { check_fn(F_MALLOC); }
Test(usable, calloc) { check_fn(F_CALLOC); }
Test(usable, realloc_null) { check_fn(F_REALLOC_NULL); }
Test(usable, realloc_grow) { check_fn(F_REALLOC_GROW); }
Test(usable, realloc_shrink) { check_fn(F_REALLOC_SHRINK); }
Test(usable, reallocarray) { check_fn(F_REALLOCARRAY); }
Test(usable, posix_memalign) { check_fn(F_POSIX_MEMALIGN); }
Test(usable, aligned_alloc) { check_fn(F_ALIGNED_ALLOC); }
Test(usable, memalign) { check_fn(F_MEMALIGN); }
Test(usable, valloc) { check_fn(F_VALLOC); }
Test(usable, pvalloc) { check_fn(F_PVALLOC); }
Test(usable, libc_malloc) { check_fn(F_LIBC_MALLOC); }
Test(usable, libc_calloc) { check_fn(F_LIBC_CALLOC); }
Test(usable, libc_realloc) { check_fn(F_LIBC_REALLOC); }
Test(usable, libc_memalign) { check_fn(F_LIBC_MEMALIGN); }
Test(usable, gcm_malloc) { check_fn(F_GCM_MALLOC); }
Test(usable, gcm_calloc) { check_fn(F_GCM_CALLOC); }
Test(usable, gcm_realloc) { check_fn(F_GCM_REALLOC); }
Test(usable, gcm_malloc_noscan) { check_fn(F_GCM_NOSCAN); }

/* Every size 1..33000: usable size >= request and not absurdly larger
 * (Go's size classes waste at most ~19%; allow n + n/4 + 32). */
Test(usable, every_small_size) {
    for (size_t n = 1; n <= 33000; n++) {
        void *p = malloc(n);
        cr_assert_not_null(p);
        size_t u = malloc_usable_size(p);
        cr_assert_geq(u, n, "malloc(%zu): usable %zu", n, u);
        cr_assert_leq(u, n + n / 4 + 32, "malloc(%zu): usable %zu", n, u);
        free(p);
    }
}
