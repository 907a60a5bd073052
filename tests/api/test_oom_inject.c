/*
 * Injected mmap failures while the heap grows. This file compiles
 * alloc/os.c itself with GCMALLOC_FAULT_INJECTION defined, so the test
 * executable gets os.c's functions from here (libgcmalloc.a's os.o is never
 * pulled in) and with them the hook gcm_os_fail_after: after that many more
 * successful mappings, every gcm_os_map fails (-1: never).
 *
 * Each scenario runs in a forked child (its own heap). With failures armed
 * after k = 0, 1, 2, ... successful mappings - so that each mapping of a
 * growth fails in turn: the arena's address space, its metadata, the span
 * and bitmap chunks - the child allocates (large blocks that need new arenas;
 * small blocks of every class until the heap must grow) until a request
 * fails. Every failure must be NULL with errno ENOMEM (never a crash, an
 * abort or a hang); blocks freed while mappings still fail must be reusable;
 * and once mappings work again, every structure must be consistent: all
 * earlier blocks keep their contents, the same requests succeed, everything
 * frees, and allocated_bytes / allocated_objects return to where they were.
 */
#define GCMALLOC_FAULT_INJECTION 1
#include "alloc/os.c"

#include <criterion/criterion.h>
#include <errno.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>

#include <gcmalloc.h>
#include "testutil.h"


#define MAXBLK 400000
static void *blk[MAXBLK];
static size_t blk_n[MAXBLK];
static size_t nblk;

static void keep(void *p, size_t size, uint64_t salt) {
    CHILD_CHECK(nblk < MAXBLK, 1, "too many blocks");
    size_t n = size < 64 ? size : 64;
    pat_fill(p, n, salt);
    blk[nblk] = p;
    blk_n[nblk] = n;
    nblk++;
}

static void check_all_and_free(uint64_t salt, const char *when) {
    for (size_t i = 0; i < nblk; i++) {
        CHILD_CHECK(pat_check(blk[i], blk_n[i], salt) < 0, 1, "%s: block %zu (%p) lost its contents", when, i, blk[i]);
        free(blk[i]);
    }
    nblk = 0;
}

/* Allocate `size` until it fails (at most `cap` bytes); returns the count. */
static size_t until_failure(size_t size, size_t cap, uint64_t salt, const char *when) {
    size_t n = 0;
    for (size_t total = 0; total < cap; total += size) {
        errno = 0;
        void *p = (n & 1) ? calloc(1, size) : malloc(size);
        if (!p) {
            CHILD_CHECK(errno == ENOMEM, 1, "%s: allocation of %zu bytes failed with errno %d", when, size, errno);
            return n;
        }
        keep(p, size, salt);
        n++;
    }
    return n;
}

/* After failures: mappings work again and everything is consistent. */
static void recover(const struct gcm_stats *base, uint64_t salt, const char *when) {
    gcm_os_fail_after = -1;
    /* The requests that failed now succeed. */
    for (int i = 0; i < 4; i++) {
        void *p = malloc((size_t)100 << 20);
        CHILD_CHECK(p, 1, "%s: malloc(100 MiB) after recovery failed", when);
        keep(p, 100 << 20, salt);
    }
    static const size_t sizes[] = {8, 16, 48, 128, 512, 1024, 4096, 8192, 16384, 32768, 40000, 300000};
    for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++)
        for (int i = 0; i < 700; i++) {
            void *p = malloc(sizes[s]);
            CHILD_CHECK(p, 1, "%s: malloc(%zu) after recovery failed", when, sizes[s]);
            keep(p, sizes[s], salt);
        }
    check_all_and_free(salt, when);
    struct gcm_stats st;
    gcm_get_stats(&st);
    CHILD_CHECK(st.allocated_objects == base->allocated_objects && st.allocated_bytes == base->allocated_bytes, 1,
                "%s: %zu objects / %zu bytes allocated after freeing everything, %zu / %zu before", when,
                st.allocated_objects, st.allocated_bytes, base->allocated_objects, base->allocated_bytes);
}

/* Large blocks: each new one needs new arenas (address space, metadata)
 * and a span. */
static void large_growth(void *arg) {
    long k = (long)(intptr_t)arg;
    free(malloc(100));
    struct gcm_stats base;
    gcm_get_stats(&base);
    gcm_os_fail_after = k;
    size_t n = until_failure((size_t)96 << 20, (size_t)64 << 30, 1, "large");
    CHILD_CHECK(n < 600, 1, "mappings never failed (k = %ld)", k);
    /* While mappings still fail: free one block, the same request fits again. */
    if (n > 0) {
        nblk--;
        free(blk[nblk]);
        void *p = malloc((size_t)96 << 20);
        CHILD_CHECK(p, 1, "large: a freed 96 MiB block could not be reused while mappings fail");
        keep(p, 96 << 20, 1);
    }
    recover(&base, 1, "large");
    fprintf(stderr, "k=%ld: %zu large blocks before the failure\n", k, n);
}

/* Small blocks: a span of each class comes from the heap; after the current
 * arenas are full the heap must grow (arena, metadata), and every 256 KiB of
 * span structs or bitmaps needs a new chunk. */
static void small_growth(void *arg) {
    long k = (long)(intptr_t)arg;
    free(malloc(100));
    struct gcm_stats base;
    gcm_get_stats(&base);
    gcm_os_fail_after = k;
    static const size_t sizes[] = {28672, 8192, 4096, 1024, 256, 16};
    size_t total = 0, n = 0;
    for (size_t s = 0; s < sizeof sizes / sizeof *sizes && !n; s++) {
        size_t got = until_failure(sizes[s], (size_t)80 << 20, 2, "small");
        total += got;
        n = got * sizes[s] < ((size_t)80 << 20) - sizes[s]; /* this size failed */
    }
    CHILD_CHECK(n, 1, "small: mappings never failed (k = %ld, %zu blocks)", k, total);
    /* Free every other block and ask for the same size again: the freed
     * slots are reused without any mapping. */
    for (size_t i = 0; i < nblk; i += 2) {
        CHILD_CHECK(pat_check(blk[i], blk_n[i], 2) < 0, 1, "small: block %zu lost its contents", i);
        size_t sz = malloc_usable_size(blk[i]);
        free(blk[i]);
        errno = 0;
        blk[i] = malloc(sz);
        CHILD_CHECK(blk[i], 1, "small: malloc(%zu) failed (errno %d) right after a free of that size while mappings fail",
                    sz, errno);
        blk_n[i] = sz < 64 ? sz : 64;
        pat_fill(blk[i], blk_n[i], 2);
    }
    recover(&base, 2, "small");
    fprintf(stderr, "k=%ld: %zu small blocks before the failure\n", k, total);
}

static void run_scenario(void (*fn)(void *), long k, const char *name) {
    struct child_result r;
    int rc = run_in_child(fn, (void *)(intptr_t)k, 100, &r);
    cr_assert_eq(rc, 0, "%s, k = %ld: timed out", name, k);
    char s[64];
    cr_assert(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0, "%s, k = %ld: child ended with %s: %s", name, k,
              status_str(r.status, s, sizeof s), r.err);
    fputs(r.err, stderr); /* the figures */
}

Test(oom_inject, the_hook_is_live) {
    /* The test would prove nothing if the allocator did not go through this
     * copy of gcm_os_map. */
    long before = gcm_os_fail_after;
    cr_assert_eq(before, -1);
    gcm_os_fail_after = 1000000;
    void *p = malloc((size_t)200 << 20);
    cr_assert_not_null(p);
    free(p);
    long after = gcm_os_fail_after;
    gcm_os_fail_after = -1;
    cr_assert_lt(after, 1000000, "a 200 MiB malloc made no mapping through the hooked gcm_os_map");
}

Test(oom_inject, large_blocks_each_mapping_fails_in_turn, .timeout = 200) {
    for (long k = 0; k <= 8; k++)
        run_scenario(large_growth, k, "large");
}

Test(oom_inject, small_blocks_each_mapping_fails_in_turn, .timeout = 200) {
    for (long k = 0; k <= 8; k++)
        run_scenario(small_growth, k, "small");
}
