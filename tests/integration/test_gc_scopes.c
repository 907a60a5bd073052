/*
 * Collect mode: scopes and escapes, realloc, explicit free, fork.
 *
 *  - gcm_scope_exit frees every scoped object of the scope at once, even
 *    those still pointed to; allocated_bytes is exact right after it;
 *  - gcm_escape keeps an object past its scope; it then is an ordinary
 *    object (kept while reachable, reclaimed when not);
 *  - exiting a scope exits the scopes opened inside it; escaping from an
 *    inner scope survives the outer one;
 *  - scopes are per thread;
 *  - a scoped object reachable inside its scope survives collections;
 *  - realloc (in place, moving, small to large, large to small) keeps the
 *    contents, the new block is a live object, the old one is gone;
 *  - free() frees at once in collect mode; a dangling pointer to a freed
 *    block does not confuse the collector;
 *  - fork: the child can allocate and collect (also when the parent had
 *    other threads, and a scope open).
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "gcutil.h"

#define N 100
#define SZ 200
static void *g_obj[N];

/* ------------------------------------------------------------------ scope exit frees */

GCT_NOINLINE static size_t scoped_fill(int escape_even) {
    size_t escaped = 0;
    for (int i = 0; i < N; i++) {
        g_obj[i] = gcm_malloc_scoped(SZ);
        if (!g_obj[i])
            CHILD_FAIL(91, "gcm_malloc_scoped(%d) failed", SZ);
        pat_fill(g_obj[i], SZ, (uint64_t)i);
        if (escape_even && i % 2 == 0) {
            gcm_escape(g_obj[i]);
            escaped += gcm_usable_size(g_obj[i]);
        }
    }
    return escaped;
}

static void scope_exit_child(void *arg) {
    int escape_even = arg != NULL;
    gct_collect_mode(-1);
    size_t base = gct_allocated_after_collect();
    size_t tok = gcm_scope_enter();
    CHILD_CHECK(tok != 0, 10, "gcm_scope_enter returned 0");
    size_t escaped = scoped_fill(escape_even);
    struct gcm_stats s;
    gcm_scope_exit(tok);
    gcm_get_stats(&s);
    /* g_obj still points to all of them: scope exit frees regardless. */
    CHILD_CHECK(s.allocated_bytes == base + escaped, 11,
                "right after gcm_scope_exit: allocated_bytes %zu, want %zu (+%zu escaped)", s.allocated_bytes,
                base + escaped, escaped);
    for (int i = 0; i < N; i += 7) {
        int want = escape_even && i % 2 == 0;
        int got = gct_probe_allocated(g_obj[i]);
        CHILD_CHECK(got == want, 12, "scoped object %d (%s): after scope exit the allocator says %s", i,
                    want ? "escaped" : "not escaped", got == 1 ? "allocated" : got == 0 ? "freed" : "(probe failed)");
        if (want)
            CHILD_CHECK(pat_check(g_obj[i], SZ, (uint64_t)i) < 0, 13, "escaped object %d changed", i);
    }
    if (!escape_even)
        return;
    /* Escaped objects are ordinary: they survive collections while
     * reachable (g_obj)... */
    gct_collect_mode(10);
    gct_garbage(20000, SZ);
    gct_clobber_stack();
    gcm_collect();
    for (int i = 0; i < N; i += 2)
        CHILD_CHECK(pat_check(g_obj[i], SZ, (uint64_t)i) < 0, 14, "escaped, reachable object %d was collected", i);
    /* ...and are reclaimed when not. */
    gcm_set_gc_percent(-1);
    size_t a = gct_allocated_after_collect();
    memset(g_obj, 0, sizeof g_obj);
    size_t b = gct_allocated_after_collect();
    CHILD_CHECK(a - b >= escaped - 4 * SZ, 15, "dropped escaped objects (%zu bytes) were not reclaimed: %zu -> %zu",
                escaped, a, b);
}

Test(gc_scopes, scope_exit_frees_even_reachable_objects, .timeout = 60) {
    gct_run_child(scope_exit_child, NULL, 50);
}

Test(gc_scopes, escaped_objects_survive_then_are_ordinary, .timeout = 60) {
    gct_run_child(scope_exit_child, (void *)1, 50);
}

/* ------------------------------------------------------------------ nesting */

static void *g_a1, *g_b1, *g_c1, *g_d1, *g_x;

GCT_NOINLINE static void *scoped(size_t n, uint64_t salt) {
    void *p = gcm_malloc_scoped(n);
    if (!p)
        CHILD_FAIL(91, "gcm_malloc_scoped(%zu) failed", n);
    pat_fill(p, n, salt);
    return p;
}

#define PROBE_STR(r) ((r) == 1 ? "allocated" : (r) == 0 ? "freed" : "probe failed")
#define ALIVE(p, what)                                                                                        \
    do {                                                                                                      \
        int r_ = gct_probe_allocated(p);                                                                      \
        CHILD_CHECK(r_ == 1, 20, "%s (%p): should be allocated; the allocator says %s", what, (void *)(p),   \
                    PROBE_STR(r_));                                                                           \
    } while (0)
#define FREED(p, what)                                                                                        \
    do {                                                                                                      \
        int r_ = gct_probe_allocated(p);                                                                      \
        CHILD_CHECK(r_ == 0, 21, "%s (%p): should be freed; the allocator says %s", what, (void *)(p),        \
                    PROBE_STR(r_));                                                                           \
    } while (0)

static void nested_child(void *arg) {
    gct_collect_mode(-1);
    size_t base = gct_allocated_after_collect();
    size_t A = gcm_scope_enter();
    g_a1 = scoped(100, 1);
    size_t B = gcm_scope_enter();
    CHILD_CHECK(A != 0 && B != 0 && A != B, 22, "tokens %zu %zu", A, B);
    g_b1 = scoped(300, 2);
    gcm_scope_exit(B);
    FREED(g_b1, "object of inner scope B after exiting B");
    ALIVE(g_a1, "object of outer scope A after exiting B");
    CHILD_CHECK(pat_check(g_a1, 100, 1) < 0, 23, "a1 changed");
    size_t C = gcm_scope_enter();
    g_c1 = scoped(5000, 3);
    size_t D = gcm_scope_enter();
    g_d1 = scoped(70000, 4);
    g_x = scoped(40, 5);
    gcm_escape(g_x);
    (void)C;
    (void)D;
    /* Exit A: C and D, opened inside it and still open, are exited too. */
    gcm_scope_exit(A);
    FREED(g_a1, "object of A after exiting A");
    FREED(g_c1, "object of C (opened inside A, not exited) after exiting A");
    FREED(g_d1, "large object of D (opened inside C) after exiting A");
    ALIVE(g_x, "object escaped from D after exiting A");
    CHILD_CHECK(pat_check(g_x, 40, 5) < 0, 24, "escaped x changed");
    struct gcm_stats s;
    gcm_get_stats(&s);
    size_t want = base + gcm_usable_size(g_x);
    CHILD_CHECK(s.allocated_bytes == want, 25, "after the outer scope exit: allocated_bytes %zu, want %zu",
                s.allocated_bytes, want);
    /* A new scope after that works as the first did. */
    size_t E = gcm_scope_enter();
    CHILD_CHECK(E != 0, 26, "token 0");
    g_a1 = scoped(100, 6);
    gcm_scope_exit(E);
    FREED(g_a1, "object of a scope entered after the others ended");
}

Test(gc_scopes, nested_scopes_and_escape_from_inner, .timeout = 60) {
    gct_run_child(nested_child, NULL, 50);
}

/* ------------------------------------------------------------------ per thread */

static int p_ready[2], p_go[2], p_done[2];
static void *g_t1;

static void *scope_thread(void *arg) {
    size_t t = gcm_scope_enter();
    g_t1 = scoped(64, 7);
    char ch = 1;
    if (write(p_ready[1], &ch, 1) != 1 || read(p_go[0], &ch, 1) != 1)
        _exit(70);
    gcm_scope_exit(t);
    if (write(p_done[1], &ch, 1) != 1)
        _exit(70);
    if (read(p_go[0], &ch, 1) != 1)
        _exit(70);
    return NULL;
}

static void per_thread_child(void *arg) {
    gct_collect_mode(-1);
    if (pipe(p_ready) || pipe(p_go) || pipe(p_done))
        CHILD_FAIL(93, "pipe");
    size_t m = gcm_scope_enter();
    g_a1 = scoped(64, 8);
    pthread_t th;
    if (pthread_create(&th, NULL, scope_thread, NULL))
        CHILD_FAIL(94, "pthread_create");
    char ch = 0;
    if (read(p_ready[0], &ch, 1) != 1)
        CHILD_FAIL(95, "read");
    /* The thread's scoped object was not put in the main thread's scope. */
    gcm_scope_exit(m);
    FREED(g_a1, "main thread's scoped object after its scope exit");
    ALIVE(g_t1, "other thread's scoped object after the MAIN thread's scope exit");
    CHILD_CHECK(pat_check(g_t1, 64, 7) < 0, 30, "the other thread's scoped object changed");
    if (write(p_go[1], &ch, 1) != 1 || read(p_done[0], &ch, 1) != 1)
        CHILD_FAIL(95, "pipe");
    FREED(g_t1, "other thread's scoped object after its own scope exit");
    if (write(p_go[1], &ch, 1) != 1)
        CHILD_FAIL(95, "pipe");
    pthread_join(th, NULL);
}

Test(gc_scopes, scopes_are_per_thread, .timeout = 60) {
    gct_run_child(per_thread_child, NULL, 50);
}

/* A scoped object reachable (from the stack) inside its scope survives
 * collections; the scope exit then frees it. */
static void scoped_survives_child(void *arg) {
    gct_collect_mode(10);
    size_t t = gcm_scope_enter();
    static struct gct_witness w;
    void *volatile slot = NULL;
    {
        void *p = gcm_malloc_scoped(64);
        if (!p)
            CHILD_FAIL(91, "gcm_malloc_scoped");
        pat_fill(p, 64, 9);
        w.hidden = gct_hide(p);
        w.size = 64;
        w.salt = 9;
        w.what = "scoped object reachable from the stack inside its scope";
        slot = p;
    }
    gct_clobber_stack();
    struct gct_root roots[1] = {{&w, (void *const volatile *)&slot, 0}};
    gct_churn(roots, 1, 20, 20000, 64);
    gcm_scope_exit(t);
    FREED(gct_unhide(w.hidden), "scoped object after its scope exit");
    slot = NULL;
}

Test(gc_scopes, scoped_object_survives_collections_inside_its_scope, .timeout = 60) {
    gct_run_child(scoped_survives_child, NULL, 50);
}

/* ------------------------------------------------------------------ realloc */

static void *g_re;

GCT_NOINLINE static void re_step(struct gct_witness *w, size_t newsize, uint64_t salt) {
    void *old = gct_unhide(w->hidden);
    size_t keep = w->size < newsize ? w->size : newsize;
    void *p = realloc(old, newsize);
    if (!p)
        CHILD_FAIL(91, "realloc(%zu)", newsize);
    long bad = pat_check_key(p, keep, (uintptr_t)old, w->size, w->salt);
    CHILD_CHECK(bad < 0, 40, "realloc %zu -> %zu lost the contents at offset %ld", w->size, newsize, bad);
    pat_fill(p, newsize, salt);
    w->hidden = gct_hide(p);
    w->size = newsize;
    w->salt = salt;
    g_re = p;
}

static void realloc_child(void *arg) {
    gct_collect_mode(10);
    size_t base = gct_allocated_after_collect();
    static struct gct_witness w;
    g_re = gct_witness_new(&w, 64, 1, 0, "realloc'ed object in a global");
    static const size_t sizes[] = {100, 5000, 5001, 200000, 300000, 50000, 3000, 24, 64};
    struct gct_root roots[1] = {{&w, (void *const volatile *)&g_re, 0}};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        re_step(&w, sizes[i], 100 + i);
        gct_clobber_stack();
        gct_churn(roots, 1, 5, 5000, sizes[i] < 32768 ? sizes[i] : 64);
    }
    gcm_set_gc_percent(-1);
    size_t after = gct_allocated_after_collect();
    /* The old blocks are gone (a stale word may keep a small garbage
     * object or two: 16 KiB of slack, less than any of the old blocks
     * of 200000 and 300000 bytes). */
    size_t final = gcm_usable_size(g_re);
    CHILD_CHECK(after >= base + final && after <= base + final + 16384, 41,
                "after the reallocs and a collection: allocated_bytes %zu, want %zu + %zu (the final block)", after,
                base, final);
    /* realloc(NULL) and realloc of a block only a stack slot knows. */
    void *volatile q = realloc(NULL, 1000);
    CHILD_CHECK(q != NULL, 42, "realloc(NULL, 1000)");
    memset(q, 3, 1000);
    gct_clobber_stack();
    gcm_collect();
    q = realloc(q, 100000);
    CHILD_CHECK(q != NULL && ((unsigned char *)q)[999] == 3, 43, "realloc of a stack-rooted block");
    free(q);
}

Test(gc_scopes, realloc_in_collect_mode, .timeout = 60) {
    gct_run_child(realloc_child, NULL, 50);
}

/* ------------------------------------------------------------------ explicit free */

static void *g_dangling, *g_dangling_large;

static void free_child(void *arg) {
    gct_collect_mode(-1);
    struct gcm_stats a, b, c;
    gct_clobber_stack();
    gcm_collect();
    g_dangling = malloc(100);
    g_dangling_large = malloc(1 << 20);
    CHILD_CHECK(g_dangling && g_dangling_large, 91, "malloc");
    gcm_get_stats(&a);
    free(g_dangling);
    free(g_dangling_large);
    gcm_get_stats(&b);
    /* At once: no collection in between. */
    CHILD_CHECK(b.gc_cycles == a.gc_cycles, 50, "free() ran a collection");
    CHILD_CHECK(a.large_bytes - b.large_bytes >= (1 << 20), 51, "free() of a 1 MiB block: large_bytes %zu -> %zu",
                a.large_bytes, b.large_bytes);
    FREED(g_dangling, "a block freed with free() in collect mode, before any collection");
    FREED(g_dangling_large, "a large block freed with free() in collect mode");
    /* The globals still point to the freed blocks: the collector must not
     * resurrect, count or free them again. */
    gct_clobber_stack();
    gcm_collect();
    gcm_get_stats(&c);
    CHILD_CHECK(c.gc_freed_objects == b.gc_freed_objects, 52,
                "the collection after explicit frees reclaimed %zu objects (the freed ones again?)",
                c.gc_freed_objects - b.gc_freed_objects);
    FREED(g_dangling, "a freed block after a collection (a global still points to it)");
    /* The slot is reused normally. */
    void *p[64];
    int reused = 0;
    for (int i = 0; i < 64; i++) {
        p[i] = malloc(100);
        memset(p[i], 9, 100);
        reused |= p[i] == g_dangling;
    }
    for (int i = 0; i < 64; i++)
        free(p[i]);
    (void)reused;
    /* Freeing twice is still an error. */
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open("/dev/null", O_WRONLY);
        dup2(fd, 2);
        struct rlimit rl = {0, 0};
        setrlimit(RLIMIT_CORE, &rl);
        void *x = malloc(100);
        free(x);
        free(opaque(x));
        _exit(0);
    }
    int st;
    CHILD_CHECK(wait_timeout(pid, 20000, &st) == 0 && WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT, 53,
                "a double free in collect mode did not abort");
}

Test(gc_scopes, explicit_free_frees_at_once, .timeout = 60) {
    gct_run_child(free_child, NULL, 50);
}

/* ------------------------------------------------------------------ fork */

static int f_ready[2], f_go[2];
static void *g_fork_root;

static void *fork_blocked_thread(void *arg) {
    void *volatile mine = malloc(100); /* this one allocates */
    char ch = 1;
    if (write(f_ready[1], &ch, 1) != 1 || read(f_go[0], &ch, 1) != 1)
        _exit(70);
    free(mine);
    return NULL;
}

static void fork_child(void *arg) {
    gct_collect_mode(10);
    if (pipe(f_ready) || pipe(f_go))
        CHILD_FAIL(93, "pipe");
    static struct gct_witness w;
    g_fork_root = gct_witness_new(&w, 64, 77, 0, "global witness across fork");
    pthread_t th;
    if (pthread_create(&th, NULL, fork_blocked_thread, NULL))
        CHILD_FAIL(94, "pthread_create");
    char ch;
    if (read(f_ready[0], &ch, 1) != 1)
        CHILD_FAIL(95, "read");
    gct_garbage(20000, 64);
    gcm_collect();
    size_t tok = gcm_scope_enter();
    void *sc = gcm_malloc_scoped(5000);
    CHILD_CHECK(sc != NULL, 91, "scoped");
    struct gct_root roots[1] = {{&w, (void *const volatile *)&g_fork_root, 0}};
    for (int i = 0; i < 3; i++) {
        pid_t pid = fork();
        if (pid < 0)
            CHILD_FAIL(96, "fork");
        if (pid == 0) {
            alarm(25);
            /* The child: its parent's other thread does not exist here. */
            gct_churn(roots, 1, 10, 20000, 64);
            gcm_scope_exit(tok);
            CHILD_CHECK(gct_probe_allocated(sc) == 0, 60, "the scoped object survived its scope exit in the child");
            void *p = malloc(1 << 20);
            CHILD_CHECK(p != NULL, 61, "malloc in the child");
            free(p);
            _exit(0);
        }
        int st;
        char s[64];
        if (wait_timeout(pid, 30000, &st) != 0)
            CHILD_FAIL(62, "fork %d: the child hung (collecting in a child forked from a 2-thread process)", i);
        CHILD_CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, 63, "fork %d: the child ended with %s", i,
                    status_str(st, s, sizeof s));
        /* The parent goes on collecting with its thread. */
        gct_churn(roots, 1, 3, 20000, 64);
    }
    CHILD_CHECK(gct_probe_allocated(sc) == 1, 64, "the parent's scoped object was freed by the child's scope exit");
    gcm_scope_exit(tok);
    if (write(f_go[1], &ch, 1) != 1)
        CHILD_FAIL(95, "write");
    pthread_join(th, NULL);
}

Test(gc_scopes, fork_child_allocates_and_collects, .timeout = 120) {
    gct_run_child(fork_child, NULL, 100);
}
