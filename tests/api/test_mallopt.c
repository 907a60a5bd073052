/*
 * The glibc extras: mallopt, malloc_trim, malloc_info, mallinfo, mallinfo2,
 * malloc_stats.
 */
#include <criterion/criterion.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gcmalloc.h>
#include "testutil.h"

Test(mallopt, known_parameters_return_1) {
    static const struct {
        int param, value;
        const char *name;
    } opts[] = {
        {M_MMAP_THRESHOLD, 256 * 1024, "M_MMAP_THRESHOLD"},
        {M_TRIM_THRESHOLD, 512 * 1024, "M_TRIM_THRESHOLD"},
        {M_TOP_PAD, 64 * 1024, "M_TOP_PAD"},
        {M_MMAP_MAX, 65536, "M_MMAP_MAX"},
        {M_ARENA_MAX, 8, "M_ARENA_MAX"},
        {M_ARENA_TEST, 8, "M_ARENA_TEST"},
        {M_MXFAST, 64, "M_MXFAST"},
    };
    for (size_t i = 0; i < sizeof opts / sizeof *opts; i++) {
        int r = mallopt(opts[i].param, opts[i].value);
        cr_expect_eq(r, 1, "mallopt(%s, %d) returned %d", opts[i].name, opts[i].value, r);
    }
    /* malloc still works after the settings. */
    for (size_t n = 1; n < (8 << 20); n *= 3) {
        void *p = malloc(n);
        cr_assert_not_null(p);
        memset(p, 1, n);
        free(p);
    }
}

Test(mallopt, malloc_trim_returns_0_or_1) {
    int r = malloc_trim(0);
    cr_assert(r == 0 || r == 1, "malloc_trim(0) returned %d", r);
    r = malloc_trim(1 << 20);
    cr_assert(r == 0 || r == 1, "malloc_trim(1 MiB) returned %d", r);
}

/* After freeing 200 MiB held in blocks of `n` bytes, malloc_trim(0) has
 * something to release and returns 1. */
static void trim_after(size_t n) {
    size_t count = (200u << 20) / n;
    void **v = malloc(count * sizeof *v);
    cr_assert_not_null(v);
    for (size_t i = 0; i < count; i++) {
        v[i] = malloc(n);
        cr_assert_not_null(v[i]);
        memset(v[i], 0x42, n);
    }
    for (size_t i = 0; i < count; i++)
        free(v[i]);
    free(v);
    struct gcm_stats before, after;
    gcm_get_stats(&before);
    int r = malloc_trim(0);
    gcm_get_stats(&after);
    cr_assert_eq(r, 1, "malloc_trim(0) after freeing 200 MiB of %zu-byte blocks returned %d", n, r);
    /* Returning 1 means memory was released: the figures must show it. */
    cr_assert(after.mapped_bytes < before.mapped_bytes || after.released_bytes > before.released_bytes,
              "malloc_trim(0) returned 1 but mapped_bytes %zu -> %zu, released_bytes %zu -> %zu",
              before.mapped_bytes, after.mapped_bytes, before.released_bytes, after.released_bytes);
}

Test(mallopt, malloc_trim_after_freeing_200mib_of_1mib_blocks) { trim_after(1 << 20); }
Test(mallopt, malloc_trim_after_freeing_200mib_of_100b_blocks) { trim_after(100); }

static char *info_text(size_t *len) {
    char *buf = NULL;
    FILE *f = open_memstream(&buf, len);
    cr_assert_not_null(f);
    int r = malloc_info(0, f);
    cr_assert_eq(r, 0, "malloc_info(0, f) returned %d", r);
    cr_assert_eq(fclose(f), 0);
    cr_assert_not_null(buf);
    return buf;
}

Test(mallopt, malloc_info_writes_xml) {
    void *keep[100];
    for (int i = 0; i < 100; i++)
        keep[i] = malloc((size_t)i * 500 + 1);
    size_t len = 0;
    char *buf = info_text(&len);
    const char *s = buf;
    while (*s == ' ' || *s == '\n' || *s == '\t')
        s++;
    if (strncmp(s, "<?xml", 5) == 0) {
        s = strstr(s, "?>");
        cr_assert_not_null(s);
        s += 2;
        while (*s == ' ' || *s == '\n' || *s == '\t')
            s++;
    }
    cr_assert_eq(strncmp(s, "<malloc", 7), 0, "malloc_info output does not start with <malloc: %.80s", buf);
    cr_assert_not_null(strstr(buf, "</malloc>"), "malloc_info output is not closed by </malloc>: %s", buf);
    free(buf);
    for (int i = 0; i < 100; i++)
        free(keep[i]);
}

Test(mallopt, malloc_info_to_a_file) {
    FILE *f = tmpfile();
    cr_assert_not_null(f);
    cr_assert_eq(malloc_info(0, f), 0);
    long n = ftell(f);
    cr_assert_gt(n, 7, "malloc_info wrote %ld bytes", n);
    fclose(f);
}

Test(mallopt, mallinfo2_counts_allocated_memory) {
    const size_t N = 10 << 20;
    size_t count = N / 1000 + 1;
    void **v = malloc(count * sizeof *v);
    cr_assert_not_null(v);
    for (size_t i = 0; i < count; i++) {
        v[i] = malloc(1000);
        cr_assert_not_null(v[i]);
        memset(v[i], 1, 1000);
    }
    struct mallinfo2 m = mallinfo2();
    cr_assert_geq(m.uordblks, N, "mallinfo2().uordblks = %zu after allocating 10 MiB", m.uordblks);
    cr_assert_geq(m.arena, m.uordblks, "mallinfo2(): arena %zu < uordblks %zu", m.arena, m.uordblks);
    for (size_t i = 0; i < count; i++)
        free(v[i]);
    free(v);
    struct mallinfo2 m2 = mallinfo2();
    cr_assert_lt(m2.uordblks, m.uordblks, "mallinfo2().uordblks did not fall after freeing");
}

Test(mallopt, mallinfo2_counts_large_blocks) {
    void *v[10];
    for (int i = 0; i < 10; i++) {
        v[i] = malloc(1 << 20);
        cr_assert_not_null(v[i]);
        memset(v[i], 1, 1 << 20);
    }
    struct mallinfo2 m = mallinfo2();
    /* glibc counts mmap'd blocks in hblkhd, others in uordblks. */
    cr_assert_geq(m.uordblks + m.hblkhd, (size_t)10 << 20, "uordblks %zu + hblkhd %zu < 10 MiB",
                  m.uordblks, m.hblkhd);
    for (int i = 0; i < 10; i++)
        free(v[i]);
}

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
Test(mallopt, mallinfo_counts_allocated_memory) {
    size_t count = (10 << 20) / 2000 + 1;
    void **v = malloc(count * sizeof *v);
    cr_assert_not_null(v);
    for (size_t i = 0; i < count; i++) {
        v[i] = malloc(2000);
        cr_assert_not_null(v[i]);
    }
    struct mallinfo m = mallinfo();
    cr_assert_geq((size_t)(unsigned)m.uordblks, (size_t)10 << 20, "mallinfo().uordblks = %d", m.uordblks);
    cr_assert_geq((unsigned)m.arena, (unsigned)m.uordblks);
    for (size_t i = 0; i < count; i++)
        free(v[i]);
    free(v);
}
#pragma GCC diagnostic pop

static void call_malloc_stats(void *arg) {
    void *p = malloc(12345);
    malloc_stats();
    free(p);
}

Test(mallopt, malloc_stats_prints_on_stderr) {
    struct child_result r;
    cr_assert_eq(run_in_child(call_malloc_stats, NULL, 30, &r), 0, "child timed out");
    char st[64];
    cr_assert(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0, "child ended with %s",
              status_str(r.status, st, sizeof st));
    cr_assert_gt(r.err_len, 0, "malloc_stats() printed nothing on stderr");
}
