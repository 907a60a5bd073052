/*
 * Leak check mode: programs compiled at test time, run under
 * LD_PRELOAD=libgcmalloc.so with GCMALLOC_GC=leakcheck. At exit the first
 * line on stderr must be exactly
 *     gcmalloc: leaks: <N> objects, <B> bytes
 * with B the sum of the REQUESTED sizes of the leaked objects, followed by
 * the largest groups. A program that frees everything or keeps it reachable
 * (globals, __thread, interior pointers, stdio buffers, a joined thread's
 * allocations) reports no leak (no report, or N = 0); nor do objects another
 * thread freed that still wait to be merged into their span.
 * gcm_leakcheck(fd) gives the same report on demand and returns N; in
 * leakcheck mode nothing is reclaimed.
 */
#include <criterion/criterion.h>
#include <pthread.h>
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

/* Objects another thread freed wait on their span's remote-free list until
 * the owner (here the main thread, which allocates nothing meanwhile) merges
 * them. They are freed, not leaked: nothing points to them any more. */
#define LC_REMOTE 40
static void *lc_remote[LC_REMOTE];

static void *lc_free_all(void *arg) {
    for (int i = 0; i < LC_REMOTE; i++)
        free(lc_remote[i]);
    return arg;
}

static size_t lc_count_after_freer(int devnull) {
    pthread_t t;
    if (pthread_create(&t, NULL, lc_free_all, NULL) || pthread_join(t, NULL))
        CHILD_FAIL(93, "pthread_create");
    memset(lc_remote, 0, sizeof lc_remote);
    gct_clobber_stack();
    return gcm_leakcheck(devnull);
}

static void remote_child(void *arg) {
    if (gcm_set_gc_mode(GCM_GC_LEAKCHECK) < 0)
        CHILD_FAIL(92, "set leakcheck");
    int devnull = open("/dev/null", O_WRONLY);
    size_t n0 = lc_count_after_freer(devnull); /* the thread's own allocations, if any, counted once */
    for (int i = 0; i < LC_REMOTE; i++)
        lc_remote[i] = malloc(700);
    size_t n1 = lc_count_after_freer(devnull);
    CHILD_CHECK(n1 == n0, 13, "gcm_leakcheck: %zu, then %zu after another thread freed %d objects", n0, n1,
                LC_REMOTE);
}

Test(gc_leakcheck, objects_freed_by_another_thread_are_not_leaks, .timeout = 60) {
    gct_run_child(remote_child, NULL, 50);
}

/* ---- GCMALLOC_LEAKCHECK_STACKS=1: groups by allocation stack ----
 * Built with -rdynamic so that dladdr names the program's functions. Leaks:
 *   leak_alpha  3 x malloc(100)                     300
 *   leak_beta   5 x calloc(1, 2000)               10000
 *   leak_gamma  1 x realloc(malloc(10), 100000)  100000 (a large span)
 *   leak_thread 4 x malloc(48), in a joined thread  192
 *   on_signal   2 x malloc(777), in a signal handler 1554
 *   15 objects, 112046 bytes */
static const char stacks_src[] =
    PROLOGUE
    "#include <signal.h>\n"
    "NOINLINE void leak_alpha(void) { for (int i = 0; i < 3; i++) { char *p = malloc(100); memset(p, 1, 100); USE(p); } }\n"
    "NOINLINE void leak_beta(void) { for (int i = 0; i < 5; i++) { char *p = calloc(1, 2000); USE(p); } }\n"
    "NOINLINE void leak_gamma(void) { char *q = malloc(10); q = realloc(q, 100000); memset(q, 2, 100); USE(q); }\n"
    "NOINLINE void *leak_thread(void *a) { for (int i = 0; i < 4; i++) { char *p = malloc(48); USE(p); } return a; }\n"
    "static volatile int two = 2; /* not a constant: one call site, not a peeled loop */\n"
    "NOINLINE void on_signal(int sig) { for (int i = 0; i < two; i++) { char *p = malloc(777); USE(p); } }\n"
    "NOINLINE void raise_it(void) { signal(SIGUSR1, on_signal); raise(SIGUSR1); }\n"
    "int main(void) {\n"
    "    printf(\"hello\\n\");\n"
    "    leak_alpha(); leak_beta(); leak_gamma();\n"
    "    pthread_t t; pthread_create(&t, NULL, leak_thread, NULL); pthread_join(t, NULL);\n"
    "    raise_it();\n"
    "    clobber();\n"
    "    return 0;\n"
    "}\n";

/* The header line of the group in report whose frame `frame` (-1: any)
 * names fn ("    #k 0x... fn+0x..."), malloc'ed; NULL if none. */
static char *group_naming(const char *report, const char *fn, int frame) {
    const char *header = NULL;
    char want[128];
    snprintf(want, sizeof want, " %s+0x", fn);
    for (const char *l = report; *l;) {
        const char *nl = strchr(l, '\n');
        size_t len = nl ? (size_t)(nl - l) + 1 : strlen(l);
        if (strncmp(l, "gcmalloc:   ", 12) == 0)
            header = l;
        int k;
        if (header && sscanf(l, "    #%d ", &k) == 1 && (frame < 0 || k == frame)) {
            const char *hit = strstr(l, want);
            if (hit && hit < l + len)
                return first_line(header);
        }
        l += len;
    }
    return NULL;
}

static void expect_group(const char *report, const char *fn, int frame, const char *header) {
    char *h = group_naming(report, fn, frame);
    cr_assert_not_null(h, "no group whose frame #%d names %s:\n%s", frame, fn, report);
    cr_assert_str_eq(h, header, "the group of %s:\n  %s\nwant:\n  %s\nwhole stderr:\n%s", fn, h, header, report);
    free(h);
}

static struct run_result run_stacks(const char *prog, const char *stacks) {
    const char *env[] = {"GCMALLOC_GC=leakcheck", stacks, NULL};
    return gct_run_ok(prog, env);
}

Test(gc_leakcheck, stacks_name_the_leaking_functions, .timeout = 120) {
    const char *prog = gct_compile("gct_stacks", stacks_src, 0, "-rdynamic");
    struct run_result r = run_stacks(prog, "GCMALLOC_LEAKCHECK_STACKS=1");
    cr_assert_str_eq(r.out, "hello\n");
    char *l = first_line(r.err);
    cr_assert_str_eq(l, "gcmalloc: leaks: 15 objects, 112046 bytes", "first line: %s\nwhole:\n%s", l, r.err);
    free(l);
    /* Frame #0 is the program's function: gcmalloc's own frames are left out. */
    expect_group(r.err, "leak_alpha", 0, "gcmalloc:   300 bytes in 3 objects allocated from:");
    expect_group(r.err, "leak_beta", 0, "gcmalloc:   10000 bytes in 5 objects allocated from:");
    expect_group(r.err, "leak_gamma", 0, "gcmalloc:   100000 bytes in 1 objects allocated from:");
    expect_group(r.err, "leak_thread", 0, "gcmalloc:   192 bytes in 4 objects allocated from:");
    expect_group(r.err, "on_signal", 0, "gcmalloc:   1554 bytes in 2 objects allocated from:");
    /* The stacks go on past the callee: to main, and through the signal frame. */
    const char *alpha = strstr(r.err, " leak_alpha+0x"), *next = alpha ? strchr(alpha, '\n') : NULL;
    cr_assert(next && strncmp(next + 1, "    #1 ", 7) == 0 && strstr(next, " main+0x") &&
                  strstr(next, " main+0x") < strchr(next + 1, '\n'),
              "leak_alpha's frame #1 is not main:\n%s", r.err);
    expect_group(r.err, "raise_it", -1, "gcmalloc:   1554 bytes in 2 objects allocated from:");
    run_result_free(&r);
}

Test(gc_leakcheck, stacks_off_groups_by_size_as_before, .timeout = 120) {
    const char *prog = gct_compile("gct_stacks_off", stacks_src, 0, "-rdynamic");
    struct run_result r = run_stacks(prog, "GCMALLOC_LEAKCHECK_STACKS=0");
    cr_assert_null(strstr(r.err, "warning"), "%s", r.err);
    char *l = first_line(r.err);
    cr_assert_str_eq(l, "gcmalloc: leaks: 15 objects, 112046 bytes", "first line: %s\nwhole:\n%s", l, r.err);
    free(l);
    cr_assert_not_null(strstr(r.err, "\ngcmalloc:   300 bytes in 3 objects of 100 bytes\n"), "%s", r.err);
    cr_assert_not_null(strstr(r.err, "\ngcmalloc:   100000 bytes in 1 objects of 100000 bytes\n"), "%s", r.err);
    cr_assert_null(strstr(r.err, "#0"), "stacks printed with GCMALLOC_LEAKCHECK_STACKS=0:\n%s", r.err);
    run_result_free(&r);
}

/* Forks while another thread allocates (and captures stacks): each child
 * leaks 6 x 321 bytes and reports on stdout. A lock in the capture path that
 * the other thread held at the fork would hang the child. */
static const char stacks_fork_src[] =
    PROLOGUE
    "#include <sys/wait.h>\n"
    "static volatile int stop;\n"
    "static void *churn(void *a) { while (!stop) free(malloc(rand() % 600 + 1)); return a; }\n"
    "NOINLINE void leak_child(void) { for (int i = 0; i < 6; i++) { char *p = malloc(321); USE(p); } }\n"
    "int main(void) {\n"
    "    size_t (*lc)(int) = (size_t (*)(int))fn(\"gcm_leakcheck\");\n"
    "    pthread_t t; pthread_create(&t, NULL, churn, NULL);\n"
    "    for (int k = 0; k < 5; k++) {\n"
    "        pid_t pid = fork();\n"
    "        if (pid == 0) { leak_child(); clobber(); lc(1); _exit(0); }\n"
    "        int st; if (waitpid(pid, &st, 0) != pid || st != 0) return 1;\n"
    "    }\n"
    "    stop = 1; pthread_join(t, NULL);\n"
    "    return 0;\n"
    "}\n";

Test(gc_leakcheck, stacks_in_forked_children, .timeout = 120) {
    const char *prog = gct_compile("gct_stacks_fork", stacks_fork_src, 0, "-rdynamic");
    struct run_result r = run_stacks(prog, "GCMALLOC_LEAKCHECK_STACKS=1");
    int groups = 0;
    for (const char *p = r.out; (p = strstr(p, "gcmalloc:   1926 bytes in 6 objects allocated from:\n    #0 "));
         p++) {
        const char *nl = strchr(strchr(p, '\n') + 1, '\n');
        const char *hit = strstr(p, " leak_child+0x");
        cr_assert(hit && nl && hit < nl, "the group's frame #0 is not leak_child:\n%s", r.out);
        groups++;
    }
    cr_assert_eq(groups, 5, "%d children reported their leak_child group (want 5):\n%s", groups, r.out);
    run_result_free(&r);
}

/* python3 (no frame pointers) leaks 7 x malloc(4242) through ctypes: the
 * report is well formed, and that group's stack runs through libffi. */
Test(gc_leakcheck, stacks_of_python3, .timeout = 120) {
    if (access("/usr/bin/python3", X_OK) != 0)
        cr_skip_test("no /usr/bin/python3");
    const char *argv[] = {"/usr/bin/python3", "-c",
                          "import ctypes\n"
                          "libc = ctypes.CDLL(None)\n"
                          "libc.malloc.restype = ctypes.c_void_p\n"
                          "for i in range(7): libc.malloc(4242)\n"
                          "print('done')\n",
                          NULL};
    const char *env[] = {"GCMALLOC_GC=leakcheck", "GCMALLOC_LEAKCHECK_STACKS=1", NULL};
    struct run_result r;
    cr_assert_eq(run_cmd(argv, GCM_LIB, env, NULL, 100, &r), 0, "python3 timed out");
    cr_assert_str_eq(r.out, "done\n", "stderr:\n%s", r.err);
    /* Every line: the first, a group header, or a frame numbered in order. */
    size_t objects, bytes, sum = 0;
    cr_assert_eq(sscanf(r.err, "gcmalloc: leaks: %zu objects, %zu bytes\n", &objects, &bytes), 2, "%s", r.err);
    int next = -1;
    for (const char *l = strchr(r.err, '\n') + 1; *l; l = strchr(l, '\n') + 1) {
        size_t b, n;
        int k, used = 0;
        char tail[64];
        if (sscanf(l, "gcmalloc:   %zu bytes in %zu objects %63[a-z :]%n", &b, &n, tail, &used) == 3 &&
            l[used] == '\n') {
            cr_assert(strcmp(tail, "allocated from:") == 0 || strcmp(tail, "with no recorded stack") == 0 ||
                          strcmp(tail, "of other stacks") == 0,
                      "bad header: %.200s", l);
            sum += b;
            next = strcmp(tail, "allocated from:") == 0 ? 0 : -1;
        } else if (sscanf(l, "    #%d 0x%*[0-9a-f] %n", &k, &used) == 1 && used > 0) {
            cr_assert(next >= 0 && k == next, "frame #%d out of place: %.200s\nwhole:\n%s", k, l, r.err);
            const char *end = strchr(l, '\n');
            cr_assert(end && end[-1] == ')' && memchr(l + used, '(', (size_t)(end - l) - used),
                      "bad frame line: %.200s", l);
            next++;
        } else {
            cr_assert_fail("unexpected line: %.200s\nwhole:\n%s", l, r.err);
        }
    }
    cr_assert(sum <= bytes, "the groups add up to %zu bytes, more than the %zu leaked", sum, bytes);
    char *h = group_naming(r.err, "ffi_call", -1);
    cr_assert_not_null(h, "no group through ffi_call:\n%s", r.err);
    size_t n = 0, b = 0;
    cr_assert_eq(sscanf(h, "gcmalloc:   %zu bytes in %zu objects", &b, &n), 2);
    cr_assert(n >= 5 && n <= 7 && b == n * 4242, "the ctypes group: %s\nwhole:\n%s", h, r.err);
    free(h);
    run_result_free(&r);
}
