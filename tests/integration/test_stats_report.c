/*
 * Statistics reports: GCMALLOC_STATS=1 (text) and GCMALLOC_STATS=json at
 * exit, on stderr, even when the program closed stderr first; the JSON parsed
 * by python3; gcm_print_stats(fd), malloc_stats() and mallinfo2() in process.
 *
 * The exit reports come from this test binary re-run as a helper (it is
 * linked with gcmalloc): with GCM_STATS_HELPER set, a constructor allocates
 * a known set of blocks, keeps them, and exits before Criterion starts.
 */
#include <criterion/criterion.h>
#include <gcmalloc.h>
#include <limits.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

enum { N_SMALL = 1000, SMALL = 100, N_LARGE = 20, LARGE = 100000 };

__attribute__((constructor)) static void helper(void) {
    const char *mode = getenv("GCM_STATS_HELPER");
    if (!mode) return;
    static void *keep[N_SMALL + N_LARGE];
    for (int i = 0; i < N_SMALL; i++) keep[i] = malloc(SMALL);
    for (int i = 0; i < N_LARGE; i++) keep[N_SMALL + i] = malloc(LARGE);
    __asm__ volatile("" : : "r"(keep) : "memory"); /* the blocks stay allocated */
    if (strcmp(mode, "close-stderr") == 0) close(2);
    exit(0);
}

static void run_helper(const char *mode, const char *stats, struct run_result *r) {
    char self[PATH_MAX], m[64], st[64];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    cr_assert_gt(n, 0);
    self[n] = 0;
    snprintf(m, sizeof m, "GCM_STATS_HELPER=%s", mode);
    const char *env[] = {m, stats, NULL};
    const char *argv[] = {self, NULL};
    cr_assert_eq(run_cmd(argv, NULL, env, NULL, 60, r), 0, "helper timed out");
    cr_assert(WIFEXITED(r->status) && WEXITSTATUS(r->status) == 0, "helper: %s; stderr: %.2000s",
              status_str(r->status, st, sizeof st), r->err);
}

static void check_text(const char *err) {
    const char *want[] = {"gcmalloc: heap mapped ", ", in use ", ", released to the OS ", ", peak mapped ",
                          "gcmalloc: allocated ", " objects; large objects ",
                          "gcmalloc:  class     size    spans    objects        bytes  frag%\n"};
    for (size_t i = 0; i < sizeof want / sizeof *want; i++)
        cr_assert_not_null(strstr(err, want[i]), "no '%s' in the report:\n%s", want[i], err);
    /* 100-byte blocks are class 8 (112 bytes); 100000-byte ones are large. */
    const char *c8 = strstr(err, "gcmalloc:      8      112 ");
    cr_assert_not_null(c8, "no line for class 8:\n%s", err);
    size_t spans, objs, bytes;
    double frag;
    cr_assert_eq(sscanf(c8 + 26, "%zu %zu %zu %lf", &spans, &objs, &bytes, &frag), 4, "%s", c8);
    cr_assert_geq(objs, N_SMALL, "%s", c8);
    cr_assert_eq(bytes, objs * 112);
    cr_assert(frag >= 0 && frag < 100, "%s", c8);
    const char *lg = strstr(err, "gcmalloc:  large     >32K ");
    cr_assert_not_null(lg, "no line for large objects:\n%s", err);
    cr_assert_eq(sscanf(lg + 26, "%zu %zu %zu", &spans, &objs, &bytes), 3, "%s", lg);
    cr_assert_geq(objs, N_LARGE);
    cr_assert_geq(bytes, (size_t)N_LARGE * LARGE);
}

Test(stats_report, text_at_exit) {
    struct run_result r;
    run_helper("keep", "GCMALLOC_STATS=1", &r);
    check_text(r.err);
    run_result_free(&r);
}

Test(stats_report, text_at_exit_after_the_program_closed_stderr) {
    struct run_result r;
    run_helper("close-stderr", "GCMALLOC_STATS=1", &r);
    check_text(r.err);
    run_result_free(&r);
}

Test(stats_report, nothing_without_the_option) {
    struct run_result r;
    run_helper("keep", "GCMALLOC_STATS=0", &r);
    cr_assert_str_empty(r.err);
    run_result_free(&r);
}

static const char check_py[] =
    "import json, sys\n"
    "text = sys.stdin.read()\n"
    "d = json.loads(text)\n"
    "assert text.count('\\n') == 1 and text.endswith('}\\n'), 'not one line'\n"
    "h, a, l, cs = d['heap'], d['allocated'], d['large'], d['classes']\n"
    "assert h['mapped'] > 0 and h['peak_mapped'] >= h['mapped'] and h['in_use'] <= h['mapped'], h\n"
    "assert h['released'] >= 0\n"
    "assert a['objects'] == l['objects'] + sum(c['objects'] for c in cs), 'objects do not add up'\n"
    "assert a['bytes'] == l['bytes'] + sum(c['bytes'] for c in cs), 'bytes do not add up'\n"
    "assert h['in_use'] == l['span_bytes'] + sum(c['span_bytes'] for c in cs), 'in_use does not add up'\n"
    "assert l['objects'] >= 20 and l['bytes'] >= 20 * 100000, l\n"
    "c8 = [c for c in cs if c['class'] == 8][0]\n"
    "assert c8['size'] == 112 and c8['objects'] >= 1000 and c8['bytes'] == 112 * c8['objects'], c8\n"
    "for c in cs:\n"
    "    assert c['spans'] > 0 and 0 <= c['frag_pct'] <= 100, c\n"
    "    assert abs(c['frag_pct'] - 100 * (c['span_bytes'] - c['bytes']) / c['span_bytes']) < 0.06, c\n"
    "print('json ok', len(cs))\n";

Test(stats_report, json_at_exit_parses) {
    REQUIRE_PROGRAM("/usr/bin/python3");
    struct run_result r;
    run_helper("keep", "GCMALLOC_STATS=json", &r);
    char path[] = "/tmp/gcm_stats_json_XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, r.err, r.err_len), (ssize_t)r.err_len);
    close(fd);
    const char *argv[] = {"/usr/bin/python3", "-c", check_py, NULL};
    struct run_result p;
    char st[64];
    cr_assert_eq(run_cmd(argv, NULL, NULL, path, 60, &p), 0);
    unlink(path);
    cr_assert(WIFEXITED(p.status) && WEXITSTATUS(p.status) == 0, "python3: %s\n%s\nthe report:\n%.3000s",
              status_str(p.status, st, sizeof st), p.err, r.err);
    cr_assert_not_null(strstr(p.out, "json ok"));
    run_result_free(&p);
    run_result_free(&r);
}

/* Everything written on fd while fn runs. */
static char *capture(void (*fn)(int fd), int fd_is_stderr) {
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    int saved = -1;
    if (fd_is_stderr) {
        saved = dup(2);
        dup2(fds[1], 2);
    }
    fn(fds[1]);
    if (fd_is_stderr) {
        dup2(saved, 2);
        close(saved);
    }
    close(fds[1]);
    static char buf[65536];
    size_t len = 0;
    ssize_t n;
    while ((n = read(fds[0], buf + len, sizeof buf - 1 - len)) > 0) len += (size_t)n;
    buf[len] = 0;
    close(fds[0]);
    return buf;
}

static void print_on(int fd) { gcm_print_stats(fd); }
static void call_malloc_stats(int fd) { malloc_stats(); }

Test(stats_report, print_stats_and_malloc_stats_on_demand) {
    void *keep[N_SMALL + N_LARGE];
    for (int i = 0; i < N_SMALL; i++) keep[i] = malloc(SMALL);
    for (int i = 0; i < N_LARGE; i++) keep[N_SMALL + i] = malloc(LARGE);
    check_text(capture(print_on, 0));
    check_text(capture(call_malloc_stats, 1));
    struct mallinfo2 mi = mallinfo2();
    struct gcm_stats st;
    gcm_get_stats(&st);
    cr_assert_geq(mi.uordblks, (size_t)N_SMALL * 112 + (size_t)N_LARGE * LARGE);
    cr_assert_geq(mi.hblkhd, (size_t)N_LARGE * LARGE);
    cr_assert_geq(mi.ordblks, N_SMALL + N_LARGE);
    cr_assert_eq(mi.arena, st.mapped_bytes);
    for (int i = 0; i < N_SMALL + N_LARGE; i++) free(keep[i]);
}
