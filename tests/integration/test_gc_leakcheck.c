/*
 * Leak check mode: programs compiled at test time, run under
 * LD_PRELOAD=libgcmalloc.so with GCMALLOC_GC=leakcheck. At exit the first
 * line on stderr must be exactly
 *     gcmalloc: leaks: <N> objects, <B> bytes
 * with B the sum of the REQUESTED sizes of the leaked objects, followed by
 * the largest groups. A program that frees everything or keeps it reachable
 * (globals, __thread, interior pointers, stdio buffers, a joined thread's
 * allocations) reports no leak (no report, or N = 0). gcm_leakcheck(fd) gives
 * the same report on demand and returns N; in leakcheck mode nothing is
 * reclaimed.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "gcutil.h"

/* Shared prologue of the programs: the gcm_ functions through dlsym (the
 * library is preloaded), a stack clobber. */
#define PROLOGUE                                                                                              \
    "#include <dlfcn.h>\n"                                                                                    \
    "#include <pthread.h>\n"                                                                                  \
    "#include <stdio.h>\n"                                                                                    \
    "#include <stdlib.h>\n"                                                                                   \
    "#include <string.h>\n"                                                                                   \
    "#include <unistd.h>\n"                                                                                   \
    "#define NOINLINE __attribute__((noinline))\n"                                                            \
    "NOINLINE static void clobber(void) { char b[128 * 1024]; memset(b, 0, sizeof b);\n"                      \
    "    __asm__ volatile(\"\" : : \"r\"(b) : \"memory\"); }\n"                                               \
    "static void *fn(const char *n) { void *f = dlsym(RTLD_DEFAULT, n); if (!f) { write(2, \"no gcm\\n\", 7);" \
    " _exit(9); } return f; }\n"                                                                              \
    "#define USE(p) __asm__ volatile(\"\" : : \"r\"(p) : \"memory\")\n"

/* Known leaks:
 *   10 x malloc(100)             1000
 *    5 x malloc(3000)           15000
 *    1 x calloc(3, 7)              21
 *    1 x realloc(malloc(10), 50000)   50000
 *    4 x malloc(40), a chain       160
 *    1 x malloc(1 MiB)        1048576
 *    1 x malloc(33), pointed to only from a (reachable) noscan object   33
 *    1 x aligned_alloc(256, 768)  768
 *   24 objects, 1115558 bytes
 * Reachable, not leaks: a global, a __thread variable, an interior pointer,
 * the noscan object, stdout's buffer; freed: the rest. */
static const char leaky_src[] =
    PROLOGUE
    "void *keep_global;\n"
    "static __thread void *keep_tls;\n"
    "void *keep_interior, *keep_noscan;\n"
    "struct node { struct node *next; char pad[32]; };\n"
    "NOINLINE static void leak(void) {\n"
    "    void *(*noscan)(size_t) = (void *(*)(size_t))fn(\"gcm_malloc_noscan\");\n"
    "    for (int i = 0; i < 10; i++) { char *p = malloc(100); memset(p, 1, 100); USE(p); }\n"
    "    for (int i = 0; i < 5; i++) { char *p = malloc(3000); memset(p, 2, 3000); USE(p); }\n"
    "    char *c = calloc(3, 7); USE(c);\n"
    "    char *q = malloc(10); q = realloc(q, 50000); memset(q, 3, 50000); USE(q);\n"
    "    struct node *head = NULL;\n"
    "    for (int i = 0; i < 4; i++) { struct node *n = malloc(sizeof *n); n->next = head; head = n; }\n"
    "    USE(head);\n"
    "    char *big = malloc(1 << 20); memset(big, 4, 4096); USE(big);\n"
    "    void **ns = noscan(64); ns[0] = malloc(33); keep_noscan = ns;\n"
    "    char *al = aligned_alloc(256, 768); USE(al);\n"
    "    keep_global = malloc(500);\n"
    "    keep_tls = malloc(600);\n"
    "    keep_interior = (char *)malloc(700) + 350;\n"
    "    void *f = malloc(77); free(f);\n"
    "    f = calloc(10, 10); f = realloc(f, 20000); free(f);\n"
    "}\n"
    "int main(void) {\n"
    "    printf(\"hello\\n\");\n"
    "    leak();\n"
    "    clobber();\n"
    "    return keep_tls == NULL;\n"
    "}\n";

#define LEAKY_FIRST_LINE "gcmalloc: leaks: 24 objects, 1115558 bytes"

/* Everything freed or reachable. */
static const char clean_src[] =
    PROLOGUE
    "void *keep_global[100];\n"
    "static __thread void *keep_tls;\n"
    "void *keep_interior;\n"
    "struct node { struct node *next; char pad[32]; };\n"
    "struct node *list;\n"
    "static void *thr(void *a) {\n"
    "    for (int i = 0; i < 1000; i++) free(malloc(i + 1));\n"
    "    void *p = malloc(123); free(p); return NULL;\n"
    "}\n"
    "NOINLINE static void work(void) {\n"
    "    for (int i = 0; i < 100; i++) keep_global[i] = malloc(i * 37 + 1);\n"
    "    keep_tls = malloc(600);\n"
    "    keep_interior = (char *)malloc(1 << 20) + 500000;\n"
    "    for (int i = 0; i < 50; i++) { struct node *n = malloc(sizeof *n); n->next = list; list = n; }\n"
    "    for (int i = 0; i < 10000; i++) { void *p = malloc(i % 3000 + 1); free(p); }\n"
    "    void *r = NULL; for (int i = 1; i < 50; i++) r = realloc(r, i * 1000); free(r);\n"
    "#ifdef WITH_THREAD\n"
    "    pthread_t t; pthread_create(&t, NULL, thr, NULL); pthread_join(t, NULL);\n"
    "#else\n"
    "    thr(NULL);\n"
    "#endif\n"
    "    char *s = strdup(\"a string\"); free(s);\n"
    "    FILE *f = fopen(\"/proc/self/status\", \"r\"); char line[256];\n"
    "    while (fgets(line, sizeof line, f)) {} fclose(f);\n"
    "}\n"
    "int main(void) {\n"
    "    printf(\"hello\\n\");\n"
    "    work();\n"
    "    clobber();\n"
    "    return keep_tls == NULL;\n"
    "}\n";

/* gcm_leakcheck on demand: 3 leaks of 1000 bytes; then a 4th. */
static const char ondemand_src[] =
    PROLOGUE
    "NOINLINE static void leak(int n) { for (int i = 0; i < n; i++) { void *p = malloc(1000); USE(p); } }\n"
    "int main(void) {\n"
    "    size_t (*lc)(int) = (size_t (*)(int))fn(\"gcm_leakcheck\");\n"
    "    leak(3); clobber();\n"
    "    size_t n = lc(2);\n"
    "    leak(1); clobber();\n"
    "    size_t m = lc(2);\n"
    "    dprintf(1, \"%zu %zu\\n\", n, m);\n"
    "    return 0;\n"
    "}\n";

/* Lots of garbage in leakcheck mode, with a small GC percent: nothing is
 * reclaimed, all of it is reported. 20000 x 64 + 100 x 50000. */
static const char garbage_src[] =
    PROLOGUE
    "NOINLINE static void garbage(void) {\n"
    "    for (int i = 0; i < 20000; i++) { char *p = malloc(64); memset(p, 0xdb, 64); USE(p); }\n"
    "    for (int i = 0; i < 100; i++) { char *p = malloc(50000); memset(p, 0xdb, 100); USE(p); }\n"
    "}\n"
    "int main(void) {\n"
    "    void (*collect)(void) = (void (*)(void))fn(\"gcm_collect\");\n"
    "    garbage(); clobber(); collect(); collect();\n"
    "    return 0;\n"
    "}\n";

static struct run_result run_leakcheck(const char *prog, const char *extra) {
    const char *argv[] = {prog, NULL};
    const char *env[] = {"GCMALLOC_GC=leakcheck", extra, NULL};
    struct run_result r;
    cr_assert_eq(run_cmd(argv, GCM_LIB, env, NULL, 60, &r), 0, "%s timed out", prog);
    return r;
}

static char *first_line(const char *s) {
    const char *nl = strchr(s, '\n');
    size_t n = nl ? (size_t)(nl - s) : strlen(s);
    char *l = malloc(n + 1);
    memcpy(l, s, n);
    l[n] = 0;
    return l;
}

Test(gc_leakcheck, exact_count_and_requested_bytes, .timeout = 120) {
    const char *prog = gct_compile("gct_leaky", leaky_src, 0, NULL);
    /* Without gcmalloc the program runs and prints nothing on stderr. */
    struct run_result r = run_leakcheck(prog, NULL);
    char s[64];
    cr_assert(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0, "the program ended with %s: %s",
              status_str(r.status, s, sizeof s), r.err);
    cr_assert_str_eq(r.out, "hello\n");
    char *l = first_line(r.err);
    cr_assert_str_eq(l, LEAKY_FIRST_LINE, "first stderr line:\n  %s\nwant:\n  %s\nwhole stderr:\n%s", l,
                     LEAKY_FIRST_LINE, r.err);
    /* Followed by the groups. */
    const char *rest = strchr(r.err, '\n');
    cr_assert(rest && rest[1], "no groups after the first line:\n%s", r.err);
    free(l);
    run_result_free(&r);
}

Test(gc_leakcheck, same_with_collections_during_the_run, .timeout = 120) {
    /* A small GC percent: leakcheck mode must still reclaim nothing. */
    const char *prog = gct_compile("gct_leaky2", leaky_src, 0, NULL);
    struct run_result r = run_leakcheck(prog, "GCMALLOC_GC_PERCENT=1");
    char *l = first_line(r.err);
    cr_assert_str_eq(l, LEAKY_FIRST_LINE, "first stderr line:\n  %s\nwant:\n  %s\nwhole stderr:\n%s", l,
                     LEAKY_FIRST_LINE, r.err);
    free(l);
    run_result_free(&r);
}

static void check_clean(const char *prog) {
    struct run_result r = run_leakcheck(prog, NULL);
    char s[64];
    cr_assert(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0, "the program ended with %s: %s",
              status_str(r.status, s, sizeof s), r.err);
    cr_assert_str_eq(r.out, "hello\n");
    cr_assert(r.err_len == 0 || strcmp(r.err, "gcmalloc: leaks: 0 objects, 0 bytes\n") == 0 ||
                  strncmp(r.err, "gcmalloc: leaks: 0 objects, 0 bytes\n", 36) == 0,
              "a program without leaks got:\n%s", r.err);
    run_result_free(&r);
}

Test(gc_leakcheck, no_leaks_reported_for_a_clean_program, .timeout = 120) {
    check_clean(gct_compile("gct_clean", clean_src, 0, NULL));
}

/* The same with a thread that allocated, exited and was joined (glibc keeps
 * its descriptor, and the descriptor's malloc'ed DTV, in its stack cache). */
Test(gc_leakcheck, no_leaks_reported_for_a_clean_program_with_a_joined_thread, .timeout = 120) {
    check_clean(gct_compile("gct_clean_thr", clean_src, 0, "-DWITH_THREAD"));
}

Test(gc_leakcheck, garbage_is_not_reclaimed_but_reported, .timeout = 120) {
    const char *prog = gct_compile("gct_garbage", garbage_src, 0, NULL);
    struct run_result r = run_leakcheck(prog, "GCMALLOC_GC_PERCENT=1");
    char *l = first_line(r.err);
    cr_assert_str_eq(l, "gcmalloc: leaks: 20100 objects, 6280000 bytes", "first stderr line: %s\nwhole:\n%s", l,
                     r.err);
    free(l);
    run_result_free(&r);
}

Test(gc_leakcheck, gcm_leakcheck_on_demand, .timeout = 120) {
    const char *prog = gct_compile("gct_ondemand", ondemand_src, 0, NULL);
    struct run_result r = run_leakcheck(prog, NULL);
    char s[64];
    cr_assert(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0, "the program ended with %s: %s",
              status_str(r.status, s, sizeof s), r.err);
    cr_assert_str_eq(r.out, "3 4\n", "gcm_leakcheck returned %s (want 3 then 4); stderr:\n%s", r.out, r.err);
    /* Reports: the first on demand (3), the second (4), then at exit (4). */
    char *l = first_line(r.err);
    cr_assert_str_eq(l, "gcmalloc: leaks: 3 objects, 3000 bytes", "first report: %s\nwhole:\n%s", l, r.err);
    free(l);
    cr_assert_not_null(strstr(r.err, "\ngcmalloc: leaks: 4 objects, 4000 bytes\n"), "no second report:\n%s",
                       r.err);
    run_result_free(&r);
}

/* In a forked child of this (statically linked) test: gcm_leakcheck counts
 * the leaks made since a first call. */
static int lc_pipe[2];

GCT_NOINLINE static void lc_leak(int n, size_t sz) {
    for (int i = 0; i < n; i++) {
        void *p = malloc(sz);
        if (!p)
            CHILD_FAIL(91, "malloc");
        memset(p, 1, sz);
        __asm__ volatile("" : : "r"(p) : "memory");
    }
}

static void ondemand_child(void *arg) {
    if (gcm_set_gc_mode(GCM_GC_LEAKCHECK) < 0)
        CHILD_FAIL(92, "set leakcheck");
    int devnull = open("/dev/null", O_WRONLY);
    gct_clobber_stack();
    size_t n0 = gcm_leakcheck(devnull);
    lc_leak(17, 300);
    gct_clobber_stack();
    size_t n1 = gcm_leakcheck(devnull);
    CHILD_CHECK(n1 == n0 + 17, 10, "gcm_leakcheck: %zu before, %zu after 17 leaks", n0, n1);
    struct gcm_stats a, b;
    gcm_get_stats(&a);
    gcm_collect();
    gcm_get_stats(&b);
    CHILD_CHECK(b.allocated_bytes == a.allocated_bytes && b.gc_freed_objects == a.gc_freed_objects, 11,
                "a collection in leakcheck mode reclaimed something");
    size_t n2 = gcm_leakcheck(devnull);
    CHILD_CHECK(n2 == n1, 12, "gcm_leakcheck: %zu then %zu with nothing done", n1, n2);
}

Test(gc_leakcheck, gcm_leakcheck_in_process, .timeout = 60) {
    (void)lc_pipe;
    gct_run_child(ondemand_child, NULL, 50);
}
