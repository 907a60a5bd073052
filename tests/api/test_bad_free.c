/*
 * Bad input is reported and aborts: each case runs in a child process whose
 * stderr goes to a pipe. The child must die of SIGABRT after writing exactly
 * one line containing "gcmalloc", the pointer as 0x%lx and the problem:
 *
 *   gcmalloc: free(): double free 0x55...
 *   gcmalloc: free(): invalid pointer 0x... (then text)
 *   gcmalloc: free(): interior pointer 0x... (inside the object at 0x... of N bytes)
 *
 * and "realloc()" instead of "free()" for realloc.
 */
#include <criterion/criterion.h>
#include <ctype.h>
#include <malloc.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <gcmalloc.h>
#include "testutil.h"

/* What the child reports back: the pointers to look for in the message
 * (the child computes them; the parent sees them through shared memory). */
struct shared {
    uintptr_t bad;  /* the pointer passed to free/realloc */
    uintptr_t base; /* the object's start, for interior pointers */
};
static struct shared *sh;

static void init_shared(void) {
    sh = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    cr_assert_neq(sh, MAP_FAILED);
    memset(sh, 0, sizeof *sh);
}

TestSuite(bad_free, .init = init_shared);

/* After the bad call: give a lazy detector its chance - a few thousand
 * blocks of the size, all live at once (so the thread's cache runs dry and
 * goes back to the shared lists, where deferred frees are merged), then
 * freed; several rounds. Then exit 0 (which the parent treats as "not
 * detected"). */
static void churn(size_t n) {
    enum { K = 3000 };
    static void *v[K];
    int k = n > 100000 ? 20 : n > 10000 ? 300 : K;
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < k; i++)
            v[i] = malloc(n);
        for (int i = 0; i < k; i++)
            free(v[i]);
    }
}

static void check_report(const struct child_result *r, const char *fn, const char *word, int want_base) {
    char st[64], hb[32], hbase[32];
    cr_assert(!r->timed_out, "child hung (timeout); stderr: %s", r->err);
    cr_assert(WIFSIGNALED(r->status) && WTERMSIG(r->status) == SIGABRT,
              "child was not killed by SIGABRT but ended with %s; stderr: \"%s\"",
              status_str(r->status, st, sizeof st), r->err);
    ptr_hex((void *)sh->bad, hb);
    const char *nl = memchr(r->err, '\n', r->err_len);
    cr_assert(r->err_len > 0 && nl == r->err + r->err_len - 1,
              "stderr is not exactly one line: \"%s\"", r->err);
    cr_assert_not_null(strstr(r->err, "gcmalloc"), "no \"gcmalloc\" in \"%s\"", r->err);
    cr_assert_not_null(strstr(r->err, word), "no \"%s\" in \"%s\"", word, r->err);
    if (fn)
        cr_assert_not_null(strstr(r->err, fn), "no \"%s\" in \"%s\"", fn, r->err);
    /* The pointer, as a whole hex number (not a prefix of a longer one). */
    const char *at = strstr(r->err, hb);
    while (at && isxdigit((unsigned char)at[strlen(hb)]))
        at = strstr(at + 1, hb);
    cr_assert_not_null(at, "pointer %s not in \"%s\"", hb, r->err);
    if (want_base) {
        ptr_hex((void *)sh->base, hbase);
        const char *b = strstr(r->err, hbase);
        while (b && isxdigit((unsigned char)b[strlen(hbase)]))
            b = strstr(b + 1, hbase);
        cr_assert_not_null(b, "object start %s not in \"%s\"", hbase, r->err);
    }
}

static void run_case(void (*fn)(void *), void *arg, const char *fname, const char *word, int want_base) {
    struct child_result r;
    run_in_child(fn, arg, 60, &r);
    check_report(&r, fname, word, want_base);
}

/* ---- invalid pointers */

static void free_stack(void *arg) {
    char buf[64];
    char *volatile p = buf;
    memset(buf, 0, sizeof buf);
    sh->bad = (uintptr_t)p;
    free(p);
    churn(64);
}
Test(bad_free, free_of_stack_address) { run_case(free_stack, NULL, "free()", "invalid pointer", 0); }

static char a_global[256];
static void free_global(void *arg) {
    char *volatile p = a_global + 32;
    sh->bad = (uintptr_t)p;
    free(p);
    churn(64);
}
Test(bad_free, free_of_global_address) { run_case(free_global, NULL, "free()", "invalid pointer", 0); }

static void free_mmap(void *arg) {
    char *m = mmap(NULL, 1 << 16, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        _exit(3);
    m[0] = 1;
    sh->bad = (uintptr_t)m;
    free(m);
    churn(64);
}
Test(bad_free, free_of_mmap_pointer) { run_case(free_mmap, NULL, "free()", "invalid pointer", 0); }

static void realloc_stack(void *arg) {
    char buf[64];
    char *volatile p = buf;
    memset(buf, 0, sizeof buf);
    sh->bad = (uintptr_t)p;
    void *q = realloc(p, 100);
    (void)q;
    churn(64);
}
Test(bad_free, realloc_of_invalid_pointer) {
    run_case(realloc_stack, NULL, "realloc()", "invalid pointer", 0);
}

static void realloc_mmap(void *arg) {
    char *m = mmap(NULL, 1 << 16, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        _exit(3);
    sh->bad = (uintptr_t)m;
    void *q = realloc(m, 100000);
    (void)q;
    churn(64);
}
Test(bad_free, realloc_of_mmap_pointer) {
    run_case(realloc_mmap, NULL, "realloc()", "invalid pointer", 0);
}

/* ---- interior pointers */

static void free_interior(void *arg) {
    size_t n = *(size_t *)arg, off = ((size_t *)arg)[1];
    char *p = malloc(n);
    if (!p)
        _exit(3);
    memset(p, 0, n);
    sh->base = (uintptr_t)p;
    sh->bad = (uintptr_t)(p + off);
    free(p + off);
    churn(n);
}
Test(bad_free, free_of_interior_pointer_small) {
    size_t arg[2] = {64, 16};
    run_case(free_interior, arg, "free()", "interior pointer", 1);
}
Test(bad_free, free_of_interior_pointer_small_unaligned) {
    size_t arg[2] = {1000, 501};
    run_case(free_interior, arg, "free()", "interior pointer", 1);
}
Test(bad_free, free_of_interior_pointer_large) {
    size_t arg[2] = {1 << 20, 3 * 4096 + 16};
    run_case(free_interior, arg, "free()", "interior pointer", 1);
}
Test(bad_free, free_of_interior_pointer_large_first_page) {
    size_t arg[2] = {100000, 48};
    run_case(free_interior, arg, "free()", "interior pointer", 1);
}

static void realloc_interior(void *arg) {
    char *p = malloc(256);
    if (!p)
        _exit(3);
    sh->base = (uintptr_t)p;
    sh->bad = (uintptr_t)(p + 32);
    void *q = realloc(opaque(p + 32), 1000);
    (void)q;
    churn(256);
}
Test(bad_free, realloc_of_interior_pointer) {
    run_case(realloc_interior, NULL, "realloc()", "interior pointer", 1);
}

/* ---- double frees */

static void double_free(void *arg) {
    size_t n = *(size_t *)arg;
    char *p = malloc(n);
    if (!p)
        _exit(3);
    memset(p, 0, n);
    sh->bad = (uintptr_t)p;
    free(p);
    free(opaque(p));
    churn(n);
}
Test(bad_free, double_free_small) {
    size_t n = 48;
    run_case(double_free, &n, NULL, "double free", 0);
}
Test(bad_free, double_free_medium) {
    size_t n = 20000;
    run_case(double_free, &n, NULL, "double free", 0);
}
Test(bad_free, double_free_of_a_block_its_thread_keeps) {
    size_t n = 64 << 10; /* a large block whose span the freeing thread keeps (alloc/mheap.c) */
    run_case(double_free, &n, NULL, "double free", 0);
}
Test(bad_free, double_free_large) {
    size_t n = 1 << 20;
    run_case(double_free, &n, NULL, "double free", 0);
}

/* A double free with other live blocks of the class around (the freed
 * slot is not the only one in its span). */
static void double_free_crowded(void *arg) {
    void *v[100];
    for (int i = 0; i < 100; i++)
        v[i] = malloc(32);
    char *p = v[50];
    sh->bad = (uintptr_t)p;
    free(p);
    free(v[49]);
    free(opaque(p));
    churn(32);
}
Test(bad_free, double_free_among_live_blocks) {
    run_case(double_free_crowded, NULL, NULL, "double free", 0);
}

/* The second free comes from another thread than the first. */
struct xthread {
    char *p;
    size_t n;
};
static void *second_free_thread(void *arg) {
    struct xthread *x = arg;
    free(opaque(x->p));
    churn(x->n);
    return NULL;
}
static void double_free_other_thread(void *arg) {
    struct xthread x = {.n = *(size_t *)arg};
    x.p = malloc(x.n);
    if (!x.p)
        _exit(3);
    sh->bad = (uintptr_t)x.p;
    free(x.p); /* first free: this thread */
    pthread_t t;
    if (pthread_create(&t, NULL, second_free_thread, &x))
        _exit(4);
    pthread_join(t, NULL);
    churn(x.n);
}
Test(bad_free, double_free_second_free_in_other_thread_small) {
    size_t n = 64;
    run_case(double_free_other_thread, &n, NULL, "double free", 0);
}
Test(bad_free, double_free_second_free_in_other_thread_large) {
    size_t n = 200000;
    run_case(double_free_other_thread, &n, NULL, "double free", 0);
}

/* x->p = a new block of x->n bytes (the pointer the report must name), then
 * fn(x) in another thread, joined. */
static void block_to_other_thread(struct xthread *x, void *(*fn)(void *)) {
    x->p = malloc(x->n);
    if (!x->p)
        _exit(3);
    sh->bad = (uintptr_t)x->p;
    pthread_t t;
    if (pthread_create(&t, NULL, fn, x))
        _exit(4);
    pthread_join(t, NULL);
}

static void *first_free_thread(void *arg) {
    struct xthread *x = arg;
    free(x->p);
    return NULL;
}
static void double_free_first_in_other_thread(void *arg) {
    struct xthread x = {.n = *(size_t *)arg};
    block_to_other_thread(&x, first_free_thread);
    free(opaque(x.p)); /* second free: this thread */
    churn(x.n);
}
Test(bad_free, double_free_first_free_in_other_thread_small) {
    size_t n = 64;
    run_case(double_free_first_in_other_thread, &n, NULL, "double free", 0);
}
Test(bad_free, double_free_first_free_in_other_thread_large) {
    size_t n = 200000;
    run_case(double_free_first_in_other_thread, &n, NULL, "double free", 0);
}

/* Both frees from another thread, before the owner merged the first: the
 * span's remote-free list then loops through the object. A collection walks
 * that list (its objects count as marked, gc/mark.c): it must stop at the
 * loop, not spin with the world stopped; the merge reports the double free. */
static void *free_twice_thread(void *arg) {
    struct xthread *x = arg;
    free(x->p);
    free(opaque(x->p));
    return NULL;
}
static void double_free_twice_in_other_thread_then_collect(void *arg) {
    struct xthread x = {.n = 64};
    block_to_other_thread(&x, free_twice_thread);
    if (gcm_set_gc_mode(GCM_GC_COLLECT) < 0)
        _exit(5);
    gcm_collect();
    churn(x.n);
}
Test(bad_free, double_free_twice_in_other_thread_then_collect) {
    run_case(double_free_twice_in_other_thread_then_collect, NULL, NULL, "double free", 0);
}

/* The allocator is not fooled by the bad calls it survives: a legal program
 * in a child exits 0 with nothing on stderr (so the checks above are not
 * passing by accident). */
static void legal(void *arg) {
    for (int i = 0; i < 1000; i++) {
        char *p = malloc((size_t)i * 10 + 1);
        p = realloc(p, (size_t)i * 20 + 1);
        free(p);
    }
    churn(64);
}
Test(bad_free, legal_program_exits_cleanly) {
    struct child_result r;
    run_in_child(legal, NULL, 60, &r);
    char st[64];
    cr_assert(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0, "legal child ended with %s: %s",
              status_str(r.status, st, sizeof st), r.err);
    cr_assert_eq(r.err_len, 0, "legal child wrote on stderr: %s", r.err);
}
