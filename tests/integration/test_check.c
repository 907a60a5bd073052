/*
 * GCMALLOC_CHECK=1, the checking mode (alloc/check.c).
 *
 * Options are read when the process starts, so each case runs in a fresh
 * process: this test executable (linked with libgcmalloc.a, so gcmalloc is
 * its malloc) runs itself again with GCMALLOC_CHECK=1 and GCM_CHECK_CASE=<case>
 * in its environment; a constructor runs the case before Criterion's main and
 * exits. A case that expects a report writes the pointer it will misuse on
 * stdout first; the parent requires SIGABRT and exactly one line on stderr:
 *
 *   gcmalloc: heap overflow at 0x... (object of 24 bytes): the canary ... byte at offset 24 is 0x41 not 0xca, seen by free()
 *   gcmalloc: use after free at 0x... (object of 24 bytes): ... byte at offset 3 is 0x1 not 0xdf, seen as it left the quarantine
 *   gcmalloc: double free at 0x... (object of 24 bytes): freed already, seen by free()
 *
 * The clean cases (threads, realloc, every aligned form, calloc, fork, C++
 * operator new, leak checks, python3) must exit 0 with nothing on stderr;
 * without GCMALLOC_CHECK the faulty programs run silently (the cost of the
 * mode is opt-in, the default is unchanged).
 */
#include <criterion/criterion.h>
#include <ctype.h>
#include <dlfcn.h>
#include <malloc.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <gcmalloc.h>
#include "gc/stw.h"
#include "testutil.h"

/* ---------------------------------------------------------------- the cases (child side) */

/* The pointer the parent must find in the report, written at once (stdio
 * would lose it at the abort). */
static void announce(const void *p) {
    char b[32];
    int n = snprintf(b, sizeof b, "0x%lx\n", (unsigned long)(uintptr_t)p);
    if (write(1, b, (size_t)n) != n)
        _exit(5);
}

/* The size a case works on: GCM_CHECK_SIZE, default 24. */
static size_t case_size(void) {
    const char *s = getenv("GCM_CHECK_SIZE");
    return s ? strtoul(s, NULL, 10) : 24;
}

/* Frees enough objects to push anything out of the default quarantine
 * (65536 objects). */
static void cycle_quarantine(void) {
    for (int i = 0; i < 70000; i++)
        free(opaque(malloc(40)));
}

static void overflow_at_free(void) {
    size_t n = case_size();
    char *p = malloc(n);
    memset(p, 1, n);
    announce(p);
    p[n] = 'A'; /* one byte past the requested size */
    free(p);
}

static void overflow_at_realloc(void) {
    size_t n = case_size();
    char *p = malloc(n);
    announce(p);
    p[n + 1] = 'B';
    p = realloc(p, 2 * n);
    free(p);
}

static void overflow_of_calloc(void) {
    char *p = opaque(calloc(5, 7));
    announce(p);
    p[35] = 'C';
    free(p);
}

static void overflow_of_aligned(void) {
    char *p = opaque(aligned_alloc(64, 100));
    announce(p);
    p[100] = 'D';
    free(p);
}

/* operator new[] and delete[] from libstdc++, which calls malloc and free. */
static void overflow_of_cxx_new(void) {
    void *lib = dlopen("libstdc++.so.6", RTLD_NOW);
    if (!lib)
        _exit(6);
    void *(*new_arr)(size_t) = (void *(*)(size_t))dlsym(lib, "_Znam");
    void (*delete_arr)(void *) = (void (*)(void *))dlsym(lib, "_ZdaPv");
    if (!new_arr || !delete_arr)
        _exit(7);
    char *p = new_arr(10);
    announce(p);
    p[10] = 'E';
    delete_arr(p);
}

static void write_after_free(void) {
    size_t n = case_size();
    char *p = malloc(n);
    announce(p);
    free(p);
    ((volatile char *)opaque(p))[3] = 1;
    cycle_quarantine();
}

/* The object is still in the quarantine when the program exits. */
static void write_after_free_then_exit(void) {
    char *p = malloc(24);
    announce(p);
    free(p);
    ((volatile char *)opaque(p))[5] = 2;
    exit(0);
}

/* GCMALLOC_CHECK_QUARANTINE bounds the bytes held: with 64 KiB, 100 frees of
 * 1000-byte objects push the first one out. */
static void write_after_free_small_quarantine(void) {
    char *p = malloc(1000);
    announce(p);
    free(p);
    ((volatile char *)opaque(p))[999] = 3;
    for (int i = 0; i < 100; i++)
        free(opaque(malloc(1000)));
    _exit(0);
}

static void double_free(void) {
    size_t n = case_size();
    char *p = malloc(n);
    announce(p);
    free(p);
    free(opaque(p));
}

static void *free_it(void *p) {
    free(p);
    return NULL;
}
static void double_free_other_thread(void) {
    char *p = malloc(64);
    announce(p);
    free(p);
    pthread_t t;
    if (pthread_create(&t, NULL, free_it, opaque(p)))
        _exit(4);
    pthread_join(t, NULL);
}

/* The second free after the object left the quarantine. */
static void double_free_after_quarantine(void) {
    char *p = malloc(48);
    announce(p);
    free(p);
    cycle_quarantine();
    free(opaque(p));
}

static void realloc_of_freed(void) {
    char *p = malloc(48);
    announce(p);
    free(p);
    p = realloc(opaque(p), 100);
}

/* ---- clean programs */

#define SLOTS 64
static void *shared[SLOTS]; /* blocks handed between threads (atomic exchange) */

/* A block of n bytes from one of the allocation functions, filled with a
 * pattern; malloc_usable_size must be n exactly in check mode. */
static void *any_alloc(uint64_t *seed, size_t n) {
    void *p = NULL;
    switch (tu_rand(seed) % 8) {
    case 0: p = calloc(1, n); break;
    case 1: p = aligned_alloc(64, n); break;
    case 2: if (posix_memalign(&p, 256, n)) p = NULL; break;
    case 3: p = memalign(4096, n); break;
    case 4: p = realloc(NULL, n); break;
    case 5: p = gcm_malloc_noscan(n); break;
    default: p = malloc(n); break;
    }
    if (!p)
        CHILD_FAIL(20, "allocation of %zu bytes failed", n);
    if (malloc_usable_size(p) != n)
        CHILD_FAIL(21, "malloc_usable_size = %zu for a request of %zu", malloc_usable_size(p), n);
    pat_fill(p, n, 7);
    return p;
}

static void verify(void *p) {
    size_t n = malloc_usable_size(p);
    if (pat_check(p, n, 7) >= 0)
        CHILD_FAIL(22, "block %p of %zu bytes corrupted at %ld", p, n, pat_check(p, n, 7));
}

static void *clean_worker(void *arg) {
    uint64_t seed = (uintptr_t)arg * 0x9e3779b97f4a7c15ull + 1;
    void *mine[32] = {0};
    for (int i = 0; i < 20000; i++) {
        int k = (int)(tu_rand(&seed) % 32);
        uint64_t r = tu_rand(&seed);
        size_t n = r % 100 == 0 ? 33000 + r % 200000 : r % 3000;
        if (!mine[k]) {
            mine[k] = any_alloc(&seed, n);
        } else if (r % 3 == 0) { /* grow or shrink: contents kept up to the smaller size */
            verify(mine[k]);
            size_t old = malloc_usable_size(mine[k]);
            uintptr_t was = addr_of(mine[k]);
            char *q = realloc(mine[k], n + 1);
            if (!q || pat_check_key(q, old < n + 1 ? old : n + 1, was, old, 7) >= 0)
                CHILD_FAIL(23, "realloc lost the contents");
            mine[k] = q;
            pat_fill(q, n + 1, 7);
        } else { /* hand it to another thread, free what it handed us */
            verify(mine[k]);
            void *got = __atomic_exchange_n(&shared[r % SLOTS], mine[k], __ATOMIC_ACQ_REL);
            mine[k] = NULL;
            if (got) {
                verify(got);
                free(got);
            }
        }
    }
    for (int k = 0; k < 32; k++)
        free(mine[k]);
    return NULL;
}

static void clean_threads_and_fork(void) {
    pthread_t t[8];
    for (uintptr_t i = 0; i < 8; i++)
        if (pthread_create(&t[i], NULL, clean_worker, (void *)(i + 1)))
            CHILD_FAIL(24, "pthread_create");
    for (int f = 0; f < 5; f++) { /* fork while the threads allocate */
        pid_t pid = fork();
        if (pid == 0) {
            clean_worker((void *)100);
            cycle_quarantine();
            _exit(0);
        }
        int st;
        if (pid < 0 || wait_timeout(pid, 60000, &st) != 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
            CHILD_FAIL(25, "fork %d: the child failed", f);
    }
    for (int i = 0; i < 8; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < SLOTS; i++)
        free(shared[i]);
    void *lib = dlopen("libstdc++.so.6", RTLD_NOW); /* aligned operator new / delete */
    void *(*new_al)(size_t, size_t) = lib ? (void *(*)(size_t, size_t))dlsym(lib, "_ZnwmSt11align_val_t") : NULL;
    void (*del_al)(void *, size_t) = lib ? (void (*)(void *, size_t))dlsym(lib, "_ZdlPvSt11align_val_t") : NULL;
    if (!new_al || !del_al)
        CHILD_FAIL(26, "no aligned operator new in libstdc++");
    for (size_t a = 32; a <= 65536; a *= 2) {
        char *p = new_al(a + 3, a);
        if ((uintptr_t)p % a)
            CHILD_FAIL(27, "operator new(%zu, align %zu) = %p", a + 3, a, p);
        memset(p, 9, a + 3);
        del_al(p, a);
    }
}

/* Freed objects wait in the quarantine, still allocated as far as the heap
 * is concerned: a collection must not free them, a leak check must not count
 * them. */
static void clean_with_collector(void) {
    int devnull = open("/dev/null", O_WRONLY);
    size_t before = gcm_leakcheck(devnull);
    for (int i = 0; i < 1000; i++)
        free(opaque(malloc(100)));
    gcm_collect();
    gcm_collect();
    size_t after = gcm_leakcheck(devnull);
    if (after != before)
        CHILD_FAIL(30, "leak check: %zu objects before 1000 malloc/free pairs, %zu after", before, after);
    cycle_quarantine();
}

/* The collector's modes under check mode: collect is refused, leakcheck and
 * back leaves check mode working. */
static void gc_modes(void) {
    errno = 0;
    if (gcm_set_gc_mode(GCM_GC_COLLECT) != -1 || errno != EINVAL)
        CHILD_FAIL(40, "gcm_set_gc_mode(collect) accepted in check mode");
    if (gcm_set_gc_mode(GCM_GC_LEAKCHECK) != GCM_GC_OFF || gcm_set_gc_mode(GCM_GC_OFF) != GCM_GC_LEAKCHECK)
        CHILD_FAIL(41, "gcm_set_gc_mode(leakcheck / off) failed");
    for (int i = 0; i < 1000; i++) {
        char *p = malloc(24);
        if (malloc_usable_size(p) != 24)
            CHILD_FAIL(42, "check mode lost after leakcheck mode: usable size %zu", malloc_usable_size(p));
        free(p);
    }
}

/* Whether check mode is on, as the program sees it. */
static void usable_of_24(void) {
    char b[32];
    int n = snprintf(b, sizeof b, "%zu\n", malloc_usable_size(opaque(malloc(24))));
    if (write(1, b, (size_t)n) != n)
        _exit(5);
}

static const struct {
    const char *name;
    void (*fn)(void);
} cases[] = {
    {"overflow_at_free", overflow_at_free},
    {"overflow_at_realloc", overflow_at_realloc},
    {"overflow_of_calloc", overflow_of_calloc},
    {"overflow_of_aligned", overflow_of_aligned},
    {"overflow_of_cxx_new", overflow_of_cxx_new},
    {"write_after_free", write_after_free},
    {"write_after_free_then_exit", write_after_free_then_exit},
    {"write_after_free_small_quarantine", write_after_free_small_quarantine},
    {"double_free", double_free},
    {"double_free_other_thread", double_free_other_thread},
    {"double_free_after_quarantine", double_free_after_quarantine},
    {"realloc_of_freed", realloc_of_freed},
    {"clean_threads_and_fork", clean_threads_and_fork},
    {"clean_with_collector", clean_with_collector},
    {"gc_modes", gc_modes},
    {"usable_of_24", usable_of_24},
};

__attribute__((constructor)) static void run_case(void) {
    const char *name = getenv("GCM_CHECK_CASE");
    if (!name)
        return;
    /* This may run before gcmalloc's own constructor, which registers the
     * main thread with the collector (idempotent): do it now. */
    gcm_stw_init_main();
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        if (strcmp(cases[i].name, name) == 0) {
            cases[i].fn();
            _exit(0);
        }
    _exit(99);
}

/* ---------------------------------------------------------------- the parent */

/* Run case `name` in a fresh process with env (GCMALLOC_CHECK=1 unless
 * `off`), plus `extra` (may be NULL). */
static struct run_result run_case_process(const char *name, const char *extra, bool off) {
    char c[96];
    snprintf(c, sizeof c, "GCM_CHECK_CASE=%s", name);
    const char *argv[] = {"/proc/self/exe", NULL};
    const char *env[] = {c, off ? "GCMALLOC_CHECK=0" : "GCMALLOC_CHECK=1", extra, NULL};
    struct run_result r;
    cr_assert_eq(run_cmd(argv, NULL, env, NULL, 120, &r), 0, "case %s timed out", name);
    return r;
}

/* The case must die of SIGABRT after one line on stderr:
 * "gcmalloc: <problem> at <its pointer> (object of <size> bytes): ..."
 * containing `detail` (NULL: anything). size 0: any. */
static void expect_report(const char *name, const char *extra, const char *problem, size_t size,
                          const char *detail) {
    struct run_result r = run_case_process(name, extra, false);
    char st[64], want[160];
    cr_assert(WIFSIGNALED(r.status) && WTERMSIG(r.status) == SIGABRT,
              "%s: not killed by SIGABRT but ended with %s; stderr: \"%s\"", name,
              status_str(r.status, st, sizeof st), r.err);
    const char *nl = memchr(r.err, '\n', r.err_len);
    cr_assert(r.err_len > 0 && nl == r.err + r.err_len - 1, "%s: stderr is not one line: \"%s\"", name, r.err);
    cr_assert(r.out_len > 3 && r.out[r.out_len - 1] == '\n', "%s: no pointer on stdout", name);
    r.out[r.out_len - 1] = 0;
    if (size)
        snprintf(want, sizeof want, "gcmalloc: %s at %s (object of %zu bytes): ", problem, r.out, size);
    else
        snprintf(want, sizeof want, "gcmalloc: %s at %s (object of ", problem, r.out);
    cr_assert(strncmp(r.err, want, strlen(want)) == 0, "%s: the report\n  %s\ndoes not start with\n  %s", name,
              r.err, want);
    if (detail)
        cr_assert_not_null(strstr(r.err, detail), "%s: no \"%s\" in \"%s\"", name, detail, r.err);
    run_result_free(&r);
}

static void expect_clean(const char *name, const char *extra, bool off) {
    struct run_result r = run_case_process(name, extra, off);
    char st[64];
    cr_assert(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0, "%s: ended with %s; stderr: %s", name,
              status_str(r.status, st, sizeof st), r.err);
    cr_assert_eq(r.err_len, 0, "%s wrote on stderr: %s", name, r.err);
    run_result_free(&r);
}

TestSuite(check, .timeout = 240);

Test(check, overflow_by_one_byte_caught_at_free) {
    expect_report("overflow_at_free", NULL, "heap overflow", 24,
                  "byte at offset 24 is 0x41 not 0xca, seen by free()");
    /* every object size: no slack (32), the largest small class, large objects */
    static const char *sizes[] = {"GCM_CHECK_SIZE=0", "GCM_CHECK_SIZE=32", "GCM_CHECK_SIZE=32752",
                                  "GCM_CHECK_SIZE=32768", "GCM_CHECK_SIZE=100000"};
    static const size_t n[] = {0, 32, 32752, 32768, 100000};
    for (int i = 0; i < 5; i++) {
        char d[64];
        snprintf(d, sizeof d, "byte at offset %zu is 0x41 not 0xca", n[i]);
        expect_report("overflow_at_free", sizes[i], "heap overflow", n[i], d);
    }
}

Test(check, overflow_caught_at_realloc) {
    expect_report("overflow_at_realloc", NULL, "heap overflow", 24, "byte at offset 25 is 0x42 not 0xca, seen by realloc()");
    expect_report("overflow_at_realloc", "GCM_CHECK_SIZE=50000", "heap overflow", 50000, "seen by realloc()");
}

Test(check, overflow_of_calloc_aligned_and_cxx_new) {
    expect_report("overflow_of_calloc", NULL, "heap overflow", 35, "byte at offset 35 is 0x43 not 0xca");
    expect_report("overflow_of_aligned", NULL, "heap overflow", 100, "byte at offset 100 is 0x44 not 0xca");
    expect_report("overflow_of_cxx_new", NULL, "heap overflow", 10, "byte at offset 10 is 0x45 not 0xca");
}

Test(check, write_after_free_caught_when_leaving_the_quarantine) {
    expect_report("write_after_free", NULL, "use after free", 24,
                  "byte at offset 3 is 0x1 not 0xdf, seen as it left the quarantine");
    expect_report("write_after_free", "GCM_CHECK_SIZE=200000", "use after free", 200000, "byte at offset 3 is 0x1");
    expect_report("write_after_free_small_quarantine", "GCMALLOC_CHECK_QUARANTINE=65536", "use after free", 1000,
                  "byte at offset 999 is 0x3 not 0xdf");
}

Test(check, write_after_free_caught_at_exit) {
    expect_report("write_after_free_then_exit", NULL, "use after free", 24, "byte at offset 5 is 0x2 not 0xdf");
}

Test(check, double_free_caught) {
    expect_report("double_free", NULL, "double free", 24, "freed already, seen by free()");
    expect_report("double_free", "GCM_CHECK_SIZE=300000", "double free", 300000, "freed already");
    expect_report("double_free_other_thread", NULL, "double free", 64, "freed already");
    expect_report("realloc_of_freed", NULL, "double free", 48, "seen by realloc()");
}

/* Out of the quarantine the object is free again: the second free is still a
 * double free (the check's or the heap's own report). */
Test(check, double_free_after_the_quarantine) {
    struct run_result r = run_case_process("double_free_after_quarantine", NULL, false);
    cr_assert(WIFSIGNALED(r.status) && WTERMSIG(r.status) == SIGABRT, "not aborted; stderr: %s", r.err);
    r.out[r.out_len ? r.out_len - 1 : 0] = 0;
    cr_assert_not_null(strstr(r.err, "double free"), "%s", r.err);
    cr_assert_not_null(strstr(r.err, r.out), "pointer %s not in %s", r.out, r.err);
    run_result_free(&r);
}

Test(check, clean_program_with_threads_realloc_aligned_and_fork) {
    expect_clean("clean_threads_and_fork", NULL, false);
}

Test(check, quarantined_objects_are_not_leaks) {
    expect_clean("clean_with_collector", NULL, false);
}

/* GCMALLOC_GC=collect turns check mode off with one warning line;
 * gcm_set_gc_mode refuses collect in check mode. */
Test(check, collect_mode_is_refused) {
    struct run_result r = run_case_process("usable_of_24", "GCMALLOC_GC=collect", false);
    cr_assert(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0, "stderr: %s", r.err);
    cr_assert_str_eq(r.err, "gcmalloc: warning: GCMALLOC_CHECK=1 does not go with GCMALLOC_GC=collect (the "
                            "collector frees objects behind the checks' back); check mode off\n");
    cr_assert_str_eq(r.out, "32\n", "check mode is still on: usable size %s", r.out);
    run_result_free(&r);
    r = run_case_process("usable_of_24", NULL, false);
    cr_assert_str_eq(r.out, "24\n", "check mode is off: usable size %s", r.out);
    run_result_free(&r);
    expect_clean("gc_modes", NULL, false);
}

/* Off (the default): the same faulty programs run to their end in silence. */
Test(check, off_mode_unchanged) {
    expect_clean("overflow_at_free", NULL, true);
    expect_clean("write_after_free", NULL, true);
    struct run_result r = run_case_process("overflow_at_free", "GCMALLOC_CHECK_QUARANTINE=1000", true);
    cr_assert(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0 && r.err_len == 0, "%s", r.err);
    run_result_free(&r);
}

/* A real program: python3 with its own allocator off (every object is a
 * malloc), dicts, lists, json, threads, a subprocess. */
Test(check, python3_runs_clean) {
    REQUIRE_PROGRAM("/usr/bin/python3");
    const char *argv[] = {"/usr/bin/python3", "-c",
                          "import json, threading, subprocess\n"
                          "d = {str(i): [i] * (i % 7) for i in range(50000)}\n"
                          "assert json.loads(json.dumps(d)) == d\n"
                          "def work(k):\n"
                          "    l = [bytes(i % 500) + str(k).encode() for i in range(20000)]\n"
                          "    s = b''.join(l); l.sort(); return len(s)\n"
                          "ts = [threading.Thread(target=work, args=(k,)) for k in range(4)]\n"
                          "[t.start() for t in ts]; [t.join() for t in ts]\n"
                          "print(subprocess.run(['/bin/echo', 'child'], capture_output=True).stdout.decode().strip())\n"
                          "print(sum(len(v) for v in d.values()))\n",
                          NULL};
    const char *env[] = {"GCMALLOC_CHECK=1", "PYTHONMALLOC=malloc", NULL};
    struct run_result r;
    cr_assert_eq(run_cmd(argv, GCM_LIB, env, NULL, 200, &r), 0, "python3 timed out");
    char st[64];
    cr_assert(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0, "python3 ended with %s: %s",
              status_str(r.status, st, sizeof st), r.err);
    cr_assert_eq(r.err_len, 0, "stderr: %s", r.err);
    cr_assert_str_eq(r.out, "child\n149997\n");
    run_result_free(&r);
}
