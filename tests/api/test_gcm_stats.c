/*
 * gcm_get_stats: allocated_bytes follows live objects; mapped_bytes covers
 * them; gcm_print_stats prints.
 */
#include <criterion/criterion.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>

#include <gcmalloc.h>
#include "testutil.h"

static void check_consistent(const struct gcm_stats *s, const char *when) {
    cr_assert_geq(s->mapped_bytes, s->allocated_bytes, "%s: mapped %zu < allocated %zu", when,
                  s->mapped_bytes, s->allocated_bytes);
    cr_assert_geq(s->peak_mapped_bytes, s->mapped_bytes, "%s: peak_mapped %zu < mapped %zu", when,
                  s->peak_mapped_bytes, s->mapped_bytes);
    cr_assert_leq(s->large_bytes, s->allocated_bytes, "%s: large %zu > allocated %zu", when,
                  s->large_bytes, s->allocated_bytes);
}

/* Allocate `total` bytes in blocks of `n`, check the growth, free, check the
 * fall. */
static void grow_and_fall(size_t n, size_t total) {
    struct gcm_stats a, b, c;
    size_t count = total / n + 1;
    void **v = malloc(count * sizeof *v);
    cr_assert_not_null(v);
    gcm_get_stats(&a);
    check_consistent(&a, "before");
    size_t usable = 0;
    for (size_t i = 0; i < count; i++) {
        v[i] = malloc(n);
        cr_assert_not_null(v[i]);
        memset(v[i], 1, n);
        usable += malloc_usable_size(v[i]);
    }
    gcm_get_stats(&b);
    check_consistent(&b, "with the blocks live");
    cr_assert_geq(b.allocated_bytes - a.allocated_bytes, count * n,
                  "%zu blocks of %zu bytes: allocated_bytes grew by %zu only", count, n,
                  b.allocated_bytes - a.allocated_bytes);
    cr_assert_geq(b.allocated_bytes - a.allocated_bytes, usable,
                  "allocated_bytes grew by %zu, less than the %zu usable bytes handed out",
                  b.allocated_bytes - a.allocated_bytes, usable);
    cr_assert_geq(b.allocated_objects - a.allocated_objects, count, "allocated_objects grew by %zu, want %zu",
                  b.allocated_objects - a.allocated_objects, count);
    if (n > 32768)
        cr_assert_geq(b.large_bytes - a.large_bytes, count * n, "large_bytes grew by %zu",
                      b.large_bytes - a.large_bytes);
    for (size_t i = 0; i < count; i++)
        free(v[i]);
    gcm_get_stats(&c);
    check_consistent(&c, "after freeing");
    size_t slack = 1 << 20;
    cr_assert_leq(c.allocated_bytes, a.allocated_bytes + slack,
                  "allocated_bytes %zu after freeing, %zu before (blocks of %zu)", c.allocated_bytes,
                  a.allocated_bytes, n);
    cr_assert_leq(c.allocated_objects, a.allocated_objects + 1000,
                  "allocated_objects %zu after freeing, %zu before", c.allocated_objects,
                  a.allocated_objects);
    free(v);
}

Test(gcm_stats, small_blocks) { grow_and_fall(100, 16 << 20); }
Test(gcm_stats, medium_blocks) { grow_and_fall(8000, 16 << 20); }
Test(gcm_stats, large_blocks) { grow_and_fall(1 << 20, 16 << 20); }
Test(gcm_stats, huge_blocks) { grow_and_fall(40 << 20, 120 << 20); }

Test(gcm_stats, calloc_and_aligned_blocks_counted) {
    struct gcm_stats a, b;
    gcm_get_stats(&a);
    void *p = calloc(1, 5 << 20), *q = aligned_alloc(1 << 20, 5 << 20), *r = NULL;
    cr_assert_eq(posix_memalign(&r, 4096, 5 << 20), 0);
    cr_assert(p && q && r);
    gcm_get_stats(&b);
    cr_assert_geq(b.allocated_bytes - a.allocated_bytes, (size_t)15 << 20);
    check_consistent(&b, "aligned");
    free(p);
    free(q);
    free(r);
    gcm_get_stats(&b);
    cr_assert_leq(b.allocated_bytes, a.allocated_bytes + (1 << 20));
}

Test(gcm_stats, realloc_moves_the_count) {
    struct gcm_stats a, b;
    gcm_get_stats(&a);
    char *p = malloc(100);
    cr_assert_not_null(p);
    p = realloc(p, 20 << 20);
    cr_assert_not_null(p);
    gcm_get_stats(&b);
    cr_assert_geq(b.allocated_bytes - a.allocated_bytes, (size_t)20 << 20);
    p = realloc(p, 100);
    cr_assert_not_null(p);
    free(p);
    gcm_get_stats(&b);
    cr_assert_leq(b.allocated_bytes, a.allocated_bytes + (1 << 20));
}

Test(gcm_stats, print_stats_writes_to_fd) {
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    void *p = malloc(1000);
    gcm_print_stats(fds[1]);
    close(fds[1]);
    char buf[4096];
    ssize_t n = read(fds[0], buf, sizeof buf);
    close(fds[0]);
    free(p);
    cr_assert_gt(n, 0, "gcm_print_stats wrote nothing");
}
