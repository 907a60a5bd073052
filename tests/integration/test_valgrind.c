/*
 * GCMALLOC_VALGRIND: memcheck sees gcmalloc's blocks through client requests
 * (alloc/vg.h). programs/vg_app.c, linked with a GCMALLOC_VALGRIND build of
 * the library, runs under valgrind: a read of a freed block is an invalid
 * read in the program, lost blocks are "definitely lost" with their requested
 * sizes, and a clean multi-threaded program (calloc, realloc, aligned
 * allocations, frees from other threads, writes up to malloc_usable_size)
 * has no error and no leak: gcmalloc's own accesses to freed memory are not
 * reported. The collector, which memcheck cannot follow, stays off with a
 * warning.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "testutil.h"

#define VG_ERROR_EXIT 99

static void run_vg_env(const char *scenario, const char *const *env, struct run_result *r) {
    const char *argv[] = {"valgrind", "--soname-synonyms=somalloc=nouseroverride", "--error-exitcode=99", "--leak-check=full",
                          "--errors-for-leak-kinds=definite,possible", "--show-leak-kinds=definite,possible",
                          GCM_VG_APP, scenario, NULL};
    cr_assert_eq(run_cmd(argv, NULL, env, NULL, 240, r), 0, "valgrind %s timed out", scenario);
    cr_assert(!r->exec_failed, "valgrind not found (scripts/deps.sh test installs it)");
    cr_assert(strstr(r->out, "malloc_lib=") && strstr(r->out, "libgcmalloc"),
              "malloc is not gcmalloc's in vg_app:\n%s", r->out);
}

static void run_vg(const char *scenario, struct run_result *r) { run_vg_env(scenario, NULL, r); }

static int exit_code(const struct run_result *r) { return WIFEXITED(r->status) ? WEXITSTATUS(r->status) : -1; }

Test(valgrind, use_after_free_is_an_invalid_read, .timeout = 300) {
    struct run_result r;
    run_vg("uaf", &r);
    cr_assert_eq(exit_code(&r), VG_ERROR_EXIT, "no memcheck error:\n%s", r.err);
    const char *e = strstr(r.err, "Invalid read of size 1");
    cr_assert_not_null(e, "no invalid read reported:\n%s", r.err);
    const char *end = strstr(e, "\n==") ? strstr(e, "\n==") : e + strlen(e);
    const char *where = strstr(e, "(vg_app.c:");
    cr_assert(where && where < end + 200, "the invalid read is not placed in vg_app.c:\n%s", e);
    cr_assert_not_null(strstr(e, "inside a block of size 40 free'd"), "the freed block is not named:\n%s", e);
    cr_assert_not_null(strstr(r.err, "ERROR SUMMARY: 1 errors"), "%s", r.err);
    run_result_free(&r);
}

Test(valgrind, lost_blocks_are_definitely_lost, .timeout = 300) {
    struct run_result r;
    run_vg("leak", &r);
    cr_assert_eq(exit_code(&r), VG_ERROR_EXIT, "the leaks were not errors:\n%s", r.err);
    cr_assert_not_null(strstr(r.err, "1,234 bytes in 1 blocks are definitely lost"), "%s", r.err);
    cr_assert_not_null(strstr(r.err, "100,000 bytes in 1 blocks are definitely lost"), "%s", r.err);
    cr_assert_not_null(strstr(r.err, "definitely lost: 101,234 bytes in 2 blocks"), "%s", r.err);
    cr_assert_null(strstr(r.err, "Invalid "), "%s", r.err);
    run_result_free(&r);
}

Test(valgrind, clean_threaded_program_has_no_error, .timeout = 300) {
    struct run_result r;
    run_vg("clean", &r);
    cr_assert_eq(exit_code(&r), 0, "exit %d:\n%s%s", exit_code(&r), r.out, r.err);
    cr_assert_not_null(strstr(r.err, "ERROR SUMMARY: 0 errors"), "%s", r.err);
    cr_assert_null(strstr(r.err, "are definitely lost"), "%s", r.err);
    cr_assert_null(strstr(r.err, "are possibly lost"), "%s", r.err);
    run_result_free(&r);
}

Test(valgrind, collector_stays_off_with_a_warning, .timeout = 300) {
    const char *env[] = {"GCMALLOC_GC=collect", NULL};
    struct run_result r;
    run_vg_env("clean", env, &r);
    cr_assert_not_null(strstr(r.err, "gcmalloc: warning: GCMALLOC_GC is not supported under valgrind"), "%s", r.err);
    cr_assert_eq(exit_code(&r), 0, "exit %d:\n%s", exit_code(&r), r.err);
    cr_assert_not_null(strstr(r.err, "ERROR SUMMARY: 0 errors"), "%s", r.err);
    run_result_free(&r);
}
