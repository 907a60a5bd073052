/*
 * The run command (build/gcmalloc, from scripts/gcmalloc.in): runs a program
 * with LD_PRELOAD set to the library next to it, passes the arguments and the
 * exit status through, sets GCMALLOC_STATS / GCMALLOC_GC / GCMALLOC_CHECK from its flags,
 * explains itself with --help and fails clearly on a missing program or a
 * bad flag.
 */
#include <criterion/criterion.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#define CMD GCM_BUILD_DIR "/gcmalloc"

static void run(const char *const argv[], const char *const *env, int want_status, struct run_result *r) {
    char st[64];
    cr_assert_eq(run_cmd(argv, NULL, env, NULL, 60, r), 0, "%s timed out", argv[1]);
    cr_assert(WIFEXITED(r->status) && WEXITSTATUS(r->status) == want_status,
              "gcmalloc %s: %s, wanted exit %d\nstdout: %.2000s\nstderr: %.2000s", argv[1],
              status_str(r->status, st, sizeof st), want_status, r->out, r->err);
}

Test(run_command, help) {
    const char *argv[] = {CMD, "--help", NULL};
    struct run_result r;
    run(argv, NULL, 0, &r);
    cr_assert_not_null(strstr(r.out, "Usage: gcmalloc [--stats[=json]] [--gc=collect|leakcheck] [--] PROGRAM"),
                       "%s", r.out);
    cr_assert_not_null(strstr(r.out, "leakcheck reports it at exit"), "--help must explain the GC modes: %s", r.out);
    cr_assert_str_empty(r.err);
    run_result_free(&r);
}

Test(run_command, preloads_the_library_next_to_it_and_passes_arguments) {
    const char *argv[] = {CMD, "--", "/bin/sh", "-c", "echo \"$LD_PRELOAD|$0|$1\"", "zero", "one two", NULL};
    struct run_result r;
    run(argv, NULL, 0, &r);
    char *bar = strchr(r.out, '|');
    cr_assert_not_null(bar, "%s", r.out);
    *bar = 0;
    char got[PATH_MAX], want[PATH_MAX];
    cr_assert_not_null(realpath(r.out, got), "LD_PRELOAD=%s does not exist", r.out);
    cr_assert_not_null(realpath(GCM_BUILD_DIR "/libgcmalloc.so", want));
    cr_assert_str_eq(got, want);
    cr_assert_str_eq(bar + 1, "zero|one two\n");
    cr_assert_str_empty(r.err);
    run_result_free(&r);
}

Test(run_command, keeps_an_existing_preload_after_its_own) {
    const char *env[] = {"LD_PRELOAD=", NULL};
    const char *argv[] = {CMD, "/bin/sh", "-c", "echo \"$LD_PRELOAD\"", NULL};
    struct run_result r;
    run(argv, env, 0, &r);
    cr_assert_null(strchr(r.out, ':'), "an empty LD_PRELOAD must not leave a ':' : %s", r.out);
    run_result_free(&r);
    /* A library that is already preloaded stays, after gcmalloc. */
    char pre[PATH_MAX + 16];
    snprintf(pre, sizeof pre, "LD_PRELOAD=%s", GCM_LIB);
    const char *env2[] = {pre, NULL};
    run(argv, env2, 0, &r);
    char want[PATH_MAX + 2];
    snprintf(want, sizeof want, ":%s\n", GCM_LIB);
    size_t lo = strlen(r.out), lw = strlen(want);
    cr_assert(lo > lw && strcmp(r.out + lo - lw, want) == 0, "LD_PRELOAD=%s", r.out);
    run_result_free(&r);
}

Test(run_command, exit_status_and_path_lookup) {
    const char *argv[] = {CMD, "sh", "-c", "exit 7", NULL};
    struct run_result r;
    run(argv, NULL, 7, &r);
    run_result_free(&r);
    /* A name that is also a shell builtin still runs the program. */
    const char *argv2[] = {CMD, "true", NULL};
    run(argv2, NULL, 0, &r);
    cr_assert_str_empty(r.err);
    run_result_free(&r);
    const char *argv3[] = {CMD, "/tmp", NULL};
    run(argv3, NULL, 126, &r);
    cr_assert_str_eq(r.err, "gcmalloc: /tmp: not an executable program\n");
    run_result_free(&r);
}

Test(run_command, stats_flag_prints_the_report_at_exit) {
    const char *argv[] = {CMD, "--stats", "/bin/ls", "/", NULL};
    struct run_result r;
    run(argv, NULL, 0, &r);
    cr_assert_not_null(strstr(r.out, "usr"), "ls / printed %s", r.out);
    cr_assert_not_null(strstr(r.err, "gcmalloc: heap mapped"), "no report on stderr: %s", r.err);
    run_result_free(&r);
}

Test(run_command, gc_leakcheck_reports_at_exit) {
    /* (not sh: dash leaves with _exit, and no exit handler runs) */
    const char *argv[] = {CMD, "--gc=leakcheck", "/bin/echo", "ran", NULL};
    struct run_result r;
    run(argv, NULL, 0, &r);
    cr_assert_str_eq(r.out, "ran\n");
    cr_assert(strncmp(r.err, "gcmalloc: leaks: ", 17) == 0, "no leak report first on stderr: %s", r.err);
    run_result_free(&r);
}

Test(run_command, check_flag_turns_check_mode_on) {
    const char *argv[] = {CMD, "--check", "--verbose", "/bin/ls", "/", NULL};
    struct run_result r;
    run(argv, NULL, 0, &r);
    cr_assert_not_null(strstr(r.out, "usr"), "ls / printed %s", r.out);
    cr_assert_not_null(strstr(r.err, "gcmalloc: GCMALLOC_CHECK=1\n"), "check mode not on: %s", r.err);
    run_result_free(&r);
}

Test(run_command, missing_program) {
    const char *argv[] = {CMD, "gcm-no-such-program", "x", NULL};
    struct run_result r;
    run(argv, NULL, 127, &r);
    cr_assert_str_eq(r.err, "gcmalloc: gcm-no-such-program: program not found\n");
    run_result_free(&r);
    const char *argv2[] = {CMD, "/nonexistent/prog", NULL};
    run(argv2, NULL, 127, &r);
    cr_assert_str_eq(r.err, "gcmalloc: /nonexistent/prog: program not found\n");
    run_result_free(&r);
}

Test(run_command, bad_usage) {
    struct run_result r;
    const char *a1[] = {CMD, "--gc=bogus", "/bin/true", NULL};
    run(a1, NULL, 2, &r);
    cr_assert_not_null(strstr(r.err, "bad value for --gc: 'bogus' (accepted: collect, leakcheck)"), "%s", r.err);
    run_result_free(&r);
    const char *a2[] = {CMD, NULL};
    run(a2, NULL, 2, &r);
    cr_assert_not_null(strstr(r.err, "no program to run"), "%s", r.err);
    run_result_free(&r);
    const char *a3[] = {CMD, "--frobnicate", "/bin/true", NULL};
    run(a3, NULL, 2, &r);
    cr_assert_not_null(strstr(r.err, "unknown option '--frobnicate'"), "%s", r.err);
    run_result_free(&r);
}
