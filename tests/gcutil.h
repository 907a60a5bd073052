/*
 * gcutil.h - helpers shared by the garbage collector's tests
 * (tests/integration/test_gc_*.c, tests/stress/test_gc_*.c).
 *
 * The collector runs in forked children (Criterion keeps its own bookkeeping
 * in the heap, which a collect-mode test process must not disturb): the child
 * switches to collect mode, does the work, and reports by its exit status and
 * one line on stderr; the parent asserts (gct_run_child).
 *
 * Proving an object was NOT wrongly collected: the test keeps its address
 * only hidden (XORed with a key: struct gct_witness), fills it with a pattern,
 * then allocates many objects of the same size, scribbles on them and drops
 * them, with collections in between (gct_churn). A wrongly freed witness gets
 * its slot handed to a garbage object and overwritten, so the pattern check
 * fails; if its slot was not reused, gcm_usable_size() aborts on the freed
 * pointer (the child dies with SIGABRT). The churn also checks that the
 * collections really ran and reclaimed the garbage (gc_cycles,
 * gc_freed_objects), so a collector that frees nothing cannot pass.
 *
 * Stale stack words: garbage is made in noinline functions, and the stack
 * below the current frame is zeroed (gct_clobber_stack) before each
 * collection, so that a dead copy of a pointer does not keep its object.
 */
#ifndef GCM_GCUTIL_H
#define GCM_GCUTIL_H

#include <dlfcn.h>
#include <gcmalloc.h>
#include <pthread.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "testutil.h"

#define GCT_NOINLINE __attribute__((noinline, noclone, unused))
#define GCT_FN static __attribute__((unused))

/* ---------------------------------------------------------------- child side */


#define GCT_KEY ((uintptr_t)0x5a5aa5a5c3c3e1e1ULL)
static inline uintptr_t gct_hide(const void *p) {
    uintptr_t h = (uintptr_t)p ^ GCT_KEY;
    __asm__ volatile("" : "+r"(h));
    return h;
}
static inline void *gct_unhide(uintptr_t h) {
    __asm__ volatile("" : "+r"(h));
    return (void *)(h ^ GCT_KEY);
}

/* Zero 256 KiB of stack below the caller's frame: dead copies of pointers
 * left there by earlier calls are gone. */
GCT_NOINLINE static void gct_clobber_stack(void) {
    char buf[256 * 1024];
    memset(buf, 0, sizeof buf);
    __asm__ volatile("" : : "r"(buf) : "memory");
}

/* n objects of sz bytes, every byte written (0xdb), each pointing to the
 * previous one (chains of 32: garbage that has pointers in it), dropped. */
GCT_NOINLINE static void gct_garbage(size_t n, size_t sz) {
    void *prev = NULL;
    for (size_t i = 0; i < n; i++) {
        unsigned char *p = malloc(sz);
        if (!p)
            CHILD_FAIL(90, "garbage: malloc(%zu) failed", sz);
        memset(p, 0xdb, sz);
        if (sz >= sizeof(void *) && i % 32 != 0)
            memcpy(p, &prev, sizeof prev);
        prev = p;
        __asm__ volatile("" : : "r"(p) : "memory");
    }
    prev = NULL;
    __asm__ volatile("" : : "r"(prev) : "memory");
}

/* The witness: a live object known only by its hidden address. */
struct gct_witness {
    uintptr_t hidden;
    size_t size;
    uint64_t salt;
    const char *what;
};

/* Allocate the witness (malloc, or gcm_malloc_noscan when noscan), fill it
 * with its pattern; returns its address (the caller stores it in the root
 * under test and nowhere else). */
GCT_NOINLINE static void *gct_witness_new(struct gct_witness *w, size_t size, uint64_t salt, int noscan,
                                          const char *what) {
    void *p = noscan ? gcm_malloc_noscan(size) : malloc(size);
    if (!p)
        CHILD_FAIL(91, "witness: malloc(%zu) failed", size);
    pat_fill(p, size, salt);
    w->hidden = gct_hide(p);
    w->size = size;
    w->salt = salt;
    w->what = what;
    return p;
}

/* Check the witness: the root still holds root_value (compared to the
 * hidden address + offset), the pattern is intact, the allocator still
 * knows the block (gcm_usable_size aborts on a freed one). */
GCT_NOINLINE static void gct_witness_check(const struct gct_witness *w, uintptr_t root_value, size_t offset,
                                           const char *when) {
    uintptr_t want = (uintptr_t)gct_unhide(w->hidden) + offset;
    CHILD_CHECK(root_value == want, 80, "%s: the root changed (%#lx, want %#lx) %s", w->what,
                (unsigned long)root_value, (unsigned long)want, when);
    const void *p = gct_unhide(w->hidden);
    long bad = pat_check(p, w->size, w->salt);
    CHILD_CHECK(bad < 0, 81,
                "%s: live object %p (%zu bytes) was overwritten at offset %ld %s: "
                "it was collected while reachable",
                w->what, p, w->size, bad, when);
    size_t us = gcm_usable_size(p);
    CHILD_CHECK(us >= w->size, 82, "%s: usable size %zu < %zu %s", w->what, us, w->size, when);
}

/* A root value read through a volatile location, as an integer (the caller
 * passes the slot's address so that the pointer is loaded here, in a frame
 * that is gone before the next collection). */
GCT_NOINLINE static uintptr_t gct_load(void *const volatile *slot) {
    return (uintptr_t)*slot;
}

/* rounds x (garbage of n objects of sz bytes; clobber; gcm_collect; check
 * every witness through its slot). Then require that the collections ran and
 * reclaimed most of the garbage. */
struct gct_root {
    const struct gct_witness *w;
    void *const volatile *slot; /* where the root lives */
    size_t offset;              /* the root holds witness + offset */
};

GCT_NOINLINE static void gct_churn(const struct gct_root *roots, int nroots, int rounds, size_t n, size_t sz) {
    struct gcm_stats a, b;
    gcm_get_stats(&a);
    char when[64];
    for (int r = 0; r < rounds; r++) {
        gct_garbage(n, sz);
        gct_clobber_stack();
        gcm_collect();
        snprintf(when, sizeof when, "after collection %d", r + 1);
        for (int i = 0; i < nroots; i++)
            gct_witness_check(roots[i].w, gct_load(roots[i].slot), roots[i].offset, when);
        gct_clobber_stack();
    }
    gcm_get_stats(&b);
    CHILD_CHECK(b.gc_cycles >= a.gc_cycles + (uint64_t)rounds, 83, "gc_cycles went from %lu to %lu in %d rounds",
                (unsigned long)a.gc_cycles, (unsigned long)b.gc_cycles, rounds);
    size_t freed = b.gc_freed_objects - a.gc_freed_objects;
    /* The last round's garbage is reclaimed by its own collection too. */
    CHILD_CHECK(freed >= (size_t)rounds * n / 2, 84,
                "the collections reclaimed %zu objects of the %zu garbage objects made", freed,
                (size_t)rounds * n);
}

/* Is p allocated? Asked in a forked grandchild (gcm_usable_size aborts on a
 * freed block). 1: allocated, 0: freed, -1: the probe failed otherwise. */
GCT_FN int gct_probe_allocated(const void *p) {
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        struct rlimit rl = {0, 0};
        setrlimit(RLIMIT_CORE, &rl);
        int fd = open("/dev/null", O_WRONLY);
        dup2(fd, 2);
        alarm(20);
        size_t u = gcm_usable_size(p);
        _exit(u > 0 ? 0 : 3);
    }
    int st;
    if (wait_timeout(pid, 30000, &st) != 0)
        return -1;
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
        return 1;
    if (WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT)
        return 0;
    return -1;
}

/* A thread that collects until stopped, pausing `ms` milliseconds between
 * collections (a few ms let threads that wait for the heap locks in; 0:
 * back to back, yielding in between; -1: back to back, not even yielding,
 * so that the world is stopped as often as it can be). */
struct gct_collector {
    pthread_t th;
    int ms;
    atomic_int stop;
    atomic_ulong collections;
};

GCT_FN void *gct_collector_main(void *arg) {
    struct gct_collector *c = arg;
    while (!atomic_load(&c->stop)) {
        gcm_collect();
        atomic_fetch_add(&c->collections, 1);
        if (c->ms > 0)
            tu_sleep_ms((unsigned)c->ms);
        else if (c->ms == 0)
            sched_yield();
    }
    return NULL;
}

GCT_FN void gct_collector_start(struct gct_collector *c, int ms) {
    c->ms = ms;
    atomic_store(&c->stop, 0);
    atomic_store(&c->collections, 0);
    if (pthread_create(&c->th, NULL, gct_collector_main, c))
        CHILD_FAIL(94, "pthread_create");
}

/* Stop the thread; returns the collections it made. */
GCT_FN unsigned long gct_collector_stop(struct gct_collector *c) {
    atomic_store(&c->stop, 1);
    pthread_join(c->th, NULL);
    return atomic_load(&c->collections);
}

/* Switch the child to collect mode; automatic collections at percent
 * (negative: explicit gcm_collect only). */
GCT_FN void gct_collect_mode(int percent) {
    if (gcm_set_gc_mode(GCM_GC_COLLECT) < 0)
        CHILD_FAIL(92, "gcm_set_gc_mode(GCM_GC_COLLECT) failed");
    if (gcm_get_gc_mode() != GCM_GC_COLLECT)
        CHILD_FAIL(92, "gcm_get_gc_mode() = %d after setting collect", gcm_get_gc_mode());
    gcm_set_gc_percent(percent);
}

GCT_FN size_t gct_allocated_after_collect(void) {
    gct_clobber_stack();
    gcm_collect();
    struct gcm_stats s;
    gcm_get_stats(&s);
    return s.allocated_bytes;
}

/* Resident set size of this process, bytes (/proc/self/statm). */
GCT_FN size_t gct_rss(void) {
    int fd = open("/proc/self/statm", O_RDONLY);
    if (fd < 0)
        return 0;
    char buf[128];
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = 0;
    unsigned long size = 0, res = 0;
    if (sscanf(buf, "%lu %lu", &size, &res) != 2)
        return 0;
    return (size_t)res * (size_t)sysconf(_SC_PAGESIZE);
}

/* ---------------------------------------------------------------- parent side */
#ifdef CRITERION_H_

/* Run fn(arg) in a forked child (run_in_child) and require exit 0; returns
 * what the child wrote on stderr (static storage, until the next call). */
GCT_FN const char *gct_run_child_err(void (*fn)(void *), void *arg, unsigned timeout, const char *name) {
    static struct child_result cr;
    char s[64];
    int r = run_in_child(fn, arg, timeout, &cr);
    cr_assert_eq(r, 0, "%s: the child timed out after %u s; stderr: %s", name, timeout, cr.err);
    cr_assert(WIFEXITED(cr.status) && WEXITSTATUS(cr.status) == 0, "%s: the child ended with %s: %s", name,
              status_str(cr.status, s, sizeof s), cr.err);
    return cr.err;
}
#define gct_run_child(fn, arg, timeout) ((void)gct_run_child_err((fn), (arg), (timeout), #fn))

/* A fresh temporary directory for compiled helpers (removed by nobody: the
 * files are small; /tmp). */
GCT_FN const char *gct_tmpdir(void) {
    static char dir[64];
    if (!dir[0]) {
        strcpy(dir, "/tmp/gcm_gctest_XXXXXX");
        cr_assert_not_null(mkdtemp(dir), "mkdtemp failed");
    }
    return dir;
}

/* Compile C source src with the system compiler into dir/name (an
 * executable, or a shared object when shared). Skips the test when there is
 * no compiler. Returns the path (static storage per call site: copy it). */
GCT_FN const char *gct_compile(const char *name, const char *src, int shared, const char *extra) {
    if (access("/usr/bin/cc", X_OK) != 0)
        cr_skip_test("no C compiler (/usr/bin/cc)");
    static char out[8][256];
    static int k;
    char *path = out[k++ % 8];
    char srcpath[300];
    const char *dir = gct_tmpdir();
    snprintf(srcpath, sizeof srcpath, "%s/%s.c", dir, name);
    snprintf(path, 256, "%s/%s", dir, name);
    cr_assert_eq(write_file_all(srcpath, src, strlen(src)), 0);
    char inc[512];
    snprintf(inc, sizeof inc, "-I%s/include", GCM_SOURCE_DIR);
    const char *argv[16];
    int a = 0;
    argv[a++] = "/usr/bin/cc";
    argv[a++] = "-O1";
    argv[a++] = "-g";
    argv[a++] = "-fno-builtin-malloc";
    argv[a++] = "-fno-builtin-free";
    argv[a++] = inc;
    if (shared) {
        argv[a++] = "-shared";
        argv[a++] = "-fPIC";
    }
    argv[a++] = "-o";
    argv[a++] = path;
    argv[a++] = srcpath;
    if (extra)
        argv[a++] = extra;
    argv[a++] = "-lpthread";
    argv[a++] = "-ldl";
    argv[a] = NULL;
    struct run_result r;
    cr_assert_eq(run_cmd(argv, NULL, NULL, NULL, 120, &r), 0, "cc timed out");
    cr_assert(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0, "cc %s failed: %s%s", name, r.out, r.err);
    run_result_free(&r);
    return path;
}

/* Run prog with gcmalloc preloaded and extra_env; it must exit with 0.
 * Returns its output (run_result_free it). */
GCT_FN struct run_result gct_run_ok(const char *prog, const char *const *extra_env) {
    const char *argv[] = {prog, NULL};
    struct run_result r;
    cr_assert_eq(run_cmd(argv, GCM_LIB, extra_env, NULL, 60, &r), 0, "%s timed out", prog);
    char s[64];
    cr_assert(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0, "%s ended with %s: %s", prog,
              status_str(r.status, s, sizeof s), r.err);
    return r;
}

#endif /* CRITERION_H_ */

#endif
