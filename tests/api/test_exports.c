/*
 * The shared library exports the whole malloc API (and gcmalloc's own names),
 * and every entry point is one and the same allocator.
 */
#include <criterion/criterion.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>

#include <gcmalloc.h>
#include "testutil.h"

static const char *const exported[] = {
    "malloc", "free", "calloc", "realloc", "reallocarray", "posix_memalign", "aligned_alloc",
    "memalign", "valloc", "pvalloc", "malloc_usable_size", "free_sized", "free_aligned_sized",
    "cfree", "mallinfo", "mallinfo2", "malloc_trim", "malloc_stats", "malloc_info", "mallopt",
    "__libc_malloc", "__libc_free", "__libc_calloc", "__libc_realloc", "__libc_memalign",
    "gcm_malloc", "gcm_calloc", "gcm_realloc", "gcm_free", "gcm_usable_size",
    "gcm_malloc_noscan", "gcm_get_stats", "gcm_print_stats", NULL};

/* Is `name` a defined function in the output of `nm -D --defined-only`? */
static int nm_has(const char *nm_out, const char *name) {
    const char *line = nm_out;
    while (line && *line) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        /* "0000000000012340 T name" (maybe "name@@VERSION") */
        const char *sym = memrchr(line, ' ', len);
        if (sym && sym - line >= 2) {
            char type = sym[-1];
            sym++;
            size_t sl = len - (size_t)(sym - line);
            size_t nl = strlen(name);
            if ((type == 'T' || type == 'W' || type == 'i') && sl >= nl && memcmp(sym, name, nl) == 0 &&
                (sl == nl || sym[nl] == '@'))
                return 1;
        }
        line = end ? end + 1 : NULL;
    }
    return 0;
}

Test(exports, shared_library_exports_the_malloc_api) {
    if (access(GCM_LIB, R_OK) != 0)
        cr_assert_fail("%s does not exist", GCM_LIB);
    const char *argv[] = {"nm", "-D", "--defined-only", GCM_LIB, NULL};
    struct run_result r;
    cr_assert_eq(run_cmd(argv, NULL, NULL, NULL, 60, &r), 0, "nm timed out");
    cr_assert(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0, "nm failed: %s", r.err);
    for (int i = 0; exported[i]; i++)
        cr_expect(nm_has(r.out, exported[i]), "%s does not export %s", GCM_LIB, exported[i]);
    run_result_free(&r);
}

/* Blocks from one family are accepted by every other family's functions. */
Test(exports, gcm_names_are_the_same_allocator) {
    for (size_t n = 1; n <= 4 * TU_MiB; n = n * 3 + 1) {
        char *p = malloc(n);
        cr_assert_not_null(p);
        cr_assert_eq(gcm_usable_size(p), malloc_usable_size(p), "size %zu", n);
        pat_fill(p, n, 1);
        uintptr_t old = addr_of(p);
        p = gcm_realloc(p, n + 100);
        cr_assert_not_null(p);
        cr_assert_eq(pat_check_key(p, n, old, n, 1), -1, "gcm_realloc lost malloc'd contents (size %zu)", n);
        gcm_free(p);

        char *q = gcm_malloc(n);
        cr_assert_not_null(q);
        cr_assert_geq(malloc_usable_size(q), n);
        cr_assert_eq(gcm_usable_size(q), malloc_usable_size(q));
        q = realloc(q, n / 2 + 1);
        cr_assert_not_null(q);
        free(q);

        q = gcm_calloc(1, n);
        cr_assert_not_null(q);
        cr_assert_eq(first_nonzero(q, n), -1);
        free(q);
    }
}

Test(exports, realloc_keeps_contents_across_families) {
    char *p = malloc(1000);
    cr_assert_not_null(p);
    pat_fill(p, 1000, 7);
    uintptr_t op = addr_of(p);
    char *q = gcm_realloc(p, 50000);
    cr_assert_not_null(q);
    cr_assert_eq(pat_check_key(q, 1000, op, 1000, 7), -1);
    char *r = realloc(q, 300);
    cr_assert_not_null(r);
    cr_assert_eq(pat_check_key(r, 300, op, 1000, 7), -1);
    gcm_free(r);
}

Test(exports, libc_aliases_are_the_same_allocator) {
    char *p = __libc_malloc(100);
    cr_assert_not_null(p);
    cr_assert_eq(gcm_usable_size(p), malloc_usable_size(p));
    cr_assert_geq(gcm_usable_size(p), 100);
    pat_fill(p, 100, 3);
    uintptr_t op = addr_of(p);
    char *q = __libc_realloc(p, 100000);
    cr_assert_not_null(q);
    cr_assert_eq(pat_check_key(q, 100, op, 100, 3), -1);
    cr_assert_geq(gcm_usable_size(q), 100000);
    free(q);

    q = __libc_calloc(10, 1000);
    cr_assert_not_null(q);
    cr_assert_eq(first_nonzero(q, 10000), -1);
    cr_assert_eq(gcm_usable_size(q), malloc_usable_size(q));
    gcm_free(q);

    q = __libc_memalign(4096, 5000);
    cr_assert_not_null(q);
    cr_assert_eq((uintptr_t)q % 4096, 0);
    cr_assert_geq(gcm_usable_size(q), 5000);
    __libc_free(q);

    q = malloc(77);
    cr_assert_not_null(q);
    __libc_free(q);
    q = gcm_malloc(77);
    cr_assert_not_null(q);
    __libc_free(q);
}

/* The allocated figure of gcm_get_stats sees blocks from every entry point. */
Test(exports, stats_see_blocks_of_every_entry_point) {
    struct gcm_stats a, b;
    const size_t N = 4 * TU_MiB;
    void *blocks[8];
    gcm_get_stats(&a);
    blocks[0] = malloc(N);
    blocks[1] = calloc(1, N);
    blocks[2] = realloc(NULL, N);
    blocks[3] = aligned_alloc(4096, N);
    blocks[4] = memalign(64, N);
    blocks[5] = __libc_malloc(N);
    blocks[6] = gcm_malloc(N);
    blocks[7] = valloc(N);
    for (int i = 0; i < 8; i++) {
        cr_assert_not_null(blocks[i]);
        memset(blocks[i], 0x5a, N);
    }
    gcm_get_stats(&b);
    cr_assert_geq(b.allocated_bytes - a.allocated_bytes, 8 * N, "allocated grew by %zu, want >= %zu",
                  b.allocated_bytes - a.allocated_bytes, 8 * N);
    free(blocks[0]);
    free_sized(blocks[1], N);
    cfree(blocks[2]);
    free_aligned_sized(blocks[3], 4096, N);
    free(blocks[4]);
    __libc_free(blocks[5]);
    gcm_free(blocks[6]);
    free(blocks[7]);
    gcm_get_stats(&b);
    cr_assert_lt(b.allocated_bytes, a.allocated_bytes + N,
                 "allocated %zu after freeing, was %zu before", b.allocated_bytes, a.allocated_bytes);
}

Test(exports, free_sized_and_free_aligned_sized_release_blocks) {
    /* Many rounds: if these did not free, the heap would grow by ~2 GiB. */
    struct gcm_stats a, b;
    gcm_get_stats(&a);
    for (int round = 0; round < 200; round++) {
        size_t n = 10 * TU_KiB + (size_t)round * 48;
        void *p = malloc(n);
        cr_assert_not_null(p);
        memset(p, 1, n);
        free_sized(p, n);
        void *q = aligned_alloc(256, 5 * TU_MiB);
        cr_assert_not_null(q);
        memset(q, 2, 5 * TU_MiB);
        free_aligned_sized(q, 256, 5 * TU_MiB);
        void *s = malloc(48);
        cr_assert_not_null(s);
        cfree(s);
    }
    gcm_get_stats(&b);
    cr_assert_lt(b.allocated_bytes, a.allocated_bytes + TU_MiB, "allocated %zu after, %zu before",
                 b.allocated_bytes, a.allocated_bytes);
}

Test(exports, malloc_noscan) {
    for (size_t n = 0; n <= 8; n++) {
        void *p = gcm_malloc_noscan(n);
        cr_assert_not_null(p);
        cr_assert_eq((uintptr_t)p % 8, 0, "noscan(%zu) = %p", n, p);
        cr_assert_geq(gcm_usable_size(p), n);
        cr_assert_eq(gcm_usable_size(p), malloc_usable_size(p));
        memset(p, 0xee, gcm_usable_size(p));
        free(p);
    }
    for (size_t n = 9; n < 200000; n = n * 2 + 3) {
        void *p = gcm_malloc_noscan(n);
        cr_assert_not_null(p);
        cr_assert_eq((uintptr_t)p % 16, 0, "noscan(%zu) = %p", n, p);
        cr_assert_geq(gcm_usable_size(p), n);
        memset(p, 0xee, gcm_usable_size(p));
        gcm_free(p);
    }
    /* Small noscan objects stay distinct and keep their contents. */
    enum { K = 2000 };
    char **v = malloc(K * sizeof *v);
    cr_assert_not_null(v);
    for (int i = 0; i < K; i++) {
        v[i] = gcm_malloc_noscan(8);
        cr_assert_not_null(v[i]);
        memcpy(v[i], &i, sizeof i);
        memcpy(v[i] + 4, &i, sizeof i);
    }
    for (int i = 0; i < K; i++) {
        int a, b;
        memcpy(&a, v[i], 4);
        memcpy(&b, v[i] + 4, 4);
        cr_assert(a == i && b == i, "noscan block %d overwritten", i);
        free(v[i]);
    }
    free(v);
}
