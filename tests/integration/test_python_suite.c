/*
 * CPython's own regression tests under LD_PRELOAD=libgcmalloc.so, in the
 * default mode (pymalloc on, as a user would run it): test_dict test_list
 * test_set test_str test_bytes test_json test_threading test_gc test_mmap
 * test_subprocess, with `python3 -m test -j2` (worker processes inherit the
 * preload). In Python 3.11 the str tests are test_unicode (renamed test_str
 * in 3.13): whichever exists is run. Needs Debian's
 * libpython3.11-testsuite (scripts/deps.sh installs it); skipped when it is
 * missing.
 *
 *   GCM_PYTHON_SUITE=quick  leave out test_subprocess (the slow one: ~40 s)
 *   GCM_PYTHON_SUITE=full   one test file at a time (-j1), as by hand
 * CI runs the default: all ten, -j2, about 50 s on 2 cores.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#define PYTHON "/usr/bin/python3"
#define TESTDIR "/usr/lib/python3.11/test"

Test(python_suite, regression_tests_under_gcmalloc, .timeout = 900) {
    REQUIRE_PROGRAM(PYTHON);
    if (access(TESTDIR "/test_dict.py", R_OK) != 0)
        cr_skip_test("CPython's test suite is not installed (apt-get install libpython3.11-testsuite)");
    const char *mode = getenv("GCM_PYTHON_SUITE");
    int quick = mode && strcmp(mode, "quick") == 0, full = mode && strcmp(mode, "full") == 0;
    const char *str_test = access(TESTDIR "/test_str.py", R_OK) == 0 ? "test_str" : "test_unicode";
    const char *argv[24];
    int n = 0;
    argv[n++] = PYTHON;
    argv[n++] = "-m";
    argv[n++] = "test";
    argv[n++] = full ? "-j1" : "-j2";
    argv[n++] = "--timeout=600";
    static const char *const tests[] = {"test_dict", "test_list", "test_set", NULL, "test_bytes", "test_json",
                                        "test_threading", "test_gc", "test_mmap", "test_subprocess"};
    for (size_t i = 0; i < sizeof tests / sizeof *tests; i++) {
        if (quick && strcmp(tests[i] ? tests[i] : "", "test_subprocess") == 0)
            continue;
        argv[n++] = tests[i] ? tests[i] : str_test;
    }
    argv[n] = NULL;
    /* The preload must be in effect (libgcmalloc's own symbol is visible). */
    const char *probe[] = {PYTHON, "-c", "import ctypes; ctypes.CDLL(None).gcm_malloc; print('on gcmalloc')", NULL};
    struct run_result r;
    cr_assert_eq(run_cmd(probe, GCM_LIB, NULL, NULL, 60, &r), 0);
    cr_assert_str_eq(r.out, "on gcmalloc\n", "stderr: %s", r.err);
    run_result_free(&r);

    uint64_t t0 = tu_now_ms();
    int rc = run_cmd(argv, GCM_LIB, NULL, NULL, 880, &r);
    double took = (double)(tu_now_ms() - t0) / 1000;
    cr_assert_eq(rc, 0, "python3 -m test timed out; output:\n%.4000s", r.out);
    char s[64];
    size_t len = strlen(r.out);
    cr_assert(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0,
              "python3 -m test under gcmalloc ended with %s; end of its output:\n%s\nstderr: %.2000s",
              status_str(r.status, s, sizeof s), r.out + (len > 6000 ? len - 6000 : 0), r.err);
    cr_assert(strstr(r.out, "Tests result: SUCCESS"), "output:\n%s", r.out + (len > 6000 ? len - 6000 : 0));
    fprintf(stderr, "python_suite: %d test files passed under gcmalloc in %.0f s\n", n - 5, took);
    run_result_free(&r);
}
