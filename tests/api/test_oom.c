/*
 * Out of memory for real: in a forked child, RLIMIT_AS is set to what the
 * process uses plus a little, then the child allocates until the kernel
 * refuses. Every kind of request must then fail with NULL and errno ENOMEM
 * (posix_memalign: ENOMEM returned), never crash or abort; a failed realloc
 * leaves its block intact; after freeing, the same allocations succeed
 * again, and every block kept its contents. Also with 4 threads running out
 * of memory at once.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <gcmalloc.h>
#include "testutil.h"

#define HEADROOM ((size_t)192 << 20) /* address space allowed above what the child already has */
#define MAXBLK 200000

static size_t vm_size(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long pages = 0;
    if (f) {
        if (fscanf(f, "%lu", &pages) != 1)
            pages = 0;
        fclose(f);
    }
    return (size_t)pages * 4096;
}


static void limit_as(size_t extra) {
    struct rlimit rl;
    rl.rlim_cur = rl.rlim_max = vm_size() + extra;
    CHILD_CHECK(setrlimit(RLIMIT_AS, &rl) == 0, 1, "setrlimit: %s", strerror(errno));
}

static void *blk[MAXBLK];
static size_t blk_n[MAXBLK];

/* Allocate blocks of `size` until NULL; returns how many succeeded. */
static size_t fill(size_t first, size_t size, size_t salt) {
    size_t i = first;
    for (; i < MAXBLK; i++) {
        errno = 0;
        void *p = malloc(size);
        if (!p) {
            CHILD_CHECK(errno == ENOMEM, 1, "malloc(%zu) returned NULL with errno %d after %zu blocks", size, errno,
                        i - first);
            break;
        }
        size_t n = size < 256 ? size : 256;
        pat_fill(p, n, salt);
        blk[i] = p;
        blk_n[i] = n;
    }
    CHILD_CHECK(i < MAXBLK, 1, "malloc(%zu) never failed: %zu blocks under RLIMIT_AS", size, i - first);
    return i;
}

static void check_and_free(size_t from, size_t to, size_t salt) {
    for (size_t i = from; i < to; i++) {
        CHILD_CHECK(pat_check(blk[i], blk_n[i], salt) < 0, 1, "block %zu (%p) lost its contents", i, blk[i]);
        free(blk[i]);
        blk[i] = NULL;
    }
}

static void expect_enomem_everywhere(void) {
    errno = 0;
    void *p = malloc(64 << 20);
    CHILD_CHECK(!p && errno == ENOMEM, 1, "malloc(64 MiB) = %p errno %d", p, errno);
    errno = 0;
    p = calloc(1, 64 << 20);
    CHILD_CHECK(!p && errno == ENOMEM, 1, "calloc(1, 64 MiB) = %p errno %d", p, errno);
    errno = 0;
    p = aligned_alloc(1 << 20, 64 << 20);
    CHILD_CHECK(!p && errno == ENOMEM, 1, "aligned_alloc(1 MiB, 64 MiB) = %p errno %d", p, errno);
    p = (void *)1;
    int r = posix_memalign(&p, 4096, 64 << 20);
    CHILD_CHECK(r == ENOMEM && p == (void *)1, 1, "posix_memalign(4096, 64 MiB) returned %d", r);
    errno = 0;
    p = gcm_malloc(64 << 20);
    CHILD_CHECK(!p && errno == ENOMEM, 1, "gcm_malloc(64 MiB) = %p errno %d", p, errno);
    /* A failed realloc keeps the block. */
    char *q = blk[0];
    errno = 0;
    void *g = realloc(opaque(q), 64 << 20);
    CHILD_CHECK(!g && errno == ENOMEM, 1, "realloc(p, 64 MiB) = %p errno %d", g, errno);
    CHILD_CHECK(pat_check(q, blk_n[0], 1) < 0, 1, "a failed realloc changed its block");
}

static void single_thread(void *arg) {
    /* Warm up: the heap and stdio exist before the limit. */
    free(malloc(100));
    limit_as(HEADROOM);
    size_t n1 = fill(0, 1 << 20, 1);              /* 1 MiB blocks until the limit */
    size_t n2 = fill(n1, 32 << 10, 1);            /* then 32 KiB */
    size_t n3 = fill(n2, 100, 1);                 /* then small blocks */
    CHILD_CHECK(n1 > 10, 1, "only %zu 1 MiB blocks fit in %zu MiB", n1, HEADROOM >> 20);
    expect_enomem_everywhere();
    /* Free the big blocks: the same requests succeed again, from the heap's
     * own free pages (no new address space). */
    check_and_free(0, n1, 1);
    for (size_t i = 0; i < n1; i++) {
        blk[i] = malloc(1 << 20);
        CHILD_CHECK(blk[i], 1, "malloc(1 MiB) #%zu failed after freeing %zu of them", i, n1);
        blk_n[i] = 256;
        pat_fill(blk[i], 256, 2);
    }
    check_and_free(0, n1, 2);
    check_and_free(n1, n3, 1);
    /* Everything back: small and large requests work. */
    for (int i = 0; i < 1000; i++) {
        void *p = malloc((size_t)(i % 50) * 100 + 1);
        CHILD_CHECK(p, 1, "small malloc after recovery failed");
        free(p);
    }
    void *big = calloc(1, 32 << 20);
    CHILD_CHECK(big && first_nonzero(big, 32 << 20) < 0, 1, "calloc(32 MiB) after recovery");
    free(big);
    fprintf(stderr, "oom: %zu x 1 MiB + %zu x 32 KiB + %zu x 100 B fit in %zu MiB of address space\n", n1,
            n2 - n1, n3 - n2, HEADROOM >> 20);
}

Test(oom, rlimit_as_fail_free_succeed, .timeout = 120) {
    struct child_result r;
    cr_assert_eq(run_in_child(single_thread, NULL, 100, &r), 0, "timed out");
    char s[64];
    cr_assert(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0, "child ended with %s: %s",
              status_str(r.status, s, sizeof s), r.err);
    cr_assert(strstr(r.err, "oom: "), "stderr: %s", r.err);
    fputs(r.err, stderr); /* the figures */
}

/* ---- four threads at once ---- */
#define NT 4
struct tres {
    size_t got, failed_ok, bad;
    char msg[160];
};
static pthread_barrier_t bar;

static void *thr(void *arg) {
    struct tres *t = arg;
    enum { K = 20000 };
    void **v = calloc(K, sizeof *v);
    if (!v) {
        snprintf(t->msg, sizeof t->msg, "calloc of the table failed");
        t->bad++;
        return NULL;
    }
    pthread_barrier_wait(&bar);
    size_t n = 0;
    for (int round = 0; round < 3; round++) {
        n = 0;
        for (int i = 0; i < K; i++) {
            size_t sz = i % 7 == 0 ? 256 << 10 : (size_t)(i % 300) * 16 + 16;
            errno = 0;
            void *p = malloc(sz);
            if (!p) {
                if (errno != ENOMEM) {
                    snprintf(t->msg, sizeof t->msg, "malloc(%zu) NULL with errno %d", sz, errno);
                    t->bad++;
                }
                t->failed_ok++;
                continue;
            }
            memset(p, 0x5c, sz < 64 ? sz : 64);
            v[n++] = p;
        }
        t->got += n;
        pthread_barrier_wait(&bar); /* all threads hit the limit in this round */
        for (size_t i = 0; i < n; i++) {
            if (((unsigned char *)v[i])[0] != 0x5c) {
                snprintf(t->msg, sizeof t->msg, "block lost its contents");
                t->bad++;
            }
            free(v[i]);
        }
        pthread_barrier_wait(&bar);
    }
    free(v);
    return NULL;
}

static void four_threads(void *arg) {
    free(malloc(100));
    pthread_barrier_init(&bar, NULL, NT);
    limit_as(HEADROOM + (NT * ((size_t)8 << 20))); /* room for the threads' stacks */
    pthread_t t[NT];
    static struct tres res[NT];
    for (int i = 0; i < NT; i++)
        CHILD_CHECK(pthread_create(&t[i], NULL, thr, &res[i]) == 0, 1, "pthread_create");
    for (int i = 0; i < NT; i++)
        pthread_join(t[i], NULL);
    size_t got = 0, failed = 0;
    for (int i = 0; i < NT; i++) {
        CHILD_CHECK(res[i].bad == 0, 1, "thread %d: %s", i, res[i].msg);
        got += res[i].got;
        failed += res[i].failed_ok;
    }
    CHILD_CHECK(failed > 0, 1, "no allocation ever failed (%zu succeeded)", got);
    void *p = malloc(1 << 20);
    CHILD_CHECK(p, 1, "malloc(1 MiB) after the threads freed everything");
    free(p);
    fprintf(stderr, "oom threads: %zu allocations succeeded, %zu failed with ENOMEM, over 3 rounds\n", got, failed);
}

Test(oom, four_threads_hit_the_limit_free_and_retry, .timeout = 120) {
    struct child_result r;
    cr_assert_eq(run_in_child(four_threads, NULL, 100, &r), 0, "timed out");
    char s[64];
    cr_assert(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0, "child ended with %s: %s",
              status_str(r.status, s, sizeof s), r.err);
    fputs(r.err, stderr);
}
