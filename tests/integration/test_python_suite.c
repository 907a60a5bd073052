/*
 * CPython's own regression tests under LD_PRELOAD=libgcmalloc.so: test_dict
 * test_list test_set test_str test_bytes test_json test_threading test_gc
 * test_mmap test_subprocess, with `python3 -m test -j2` (worker processes
 * inherit the preload and the environment). In Python 3.11 the str tests are
 * test_unicode (renamed test_str in 3.13): whichever exists is run. Needs
 * Debian's libpython3.11-testsuite (scripts/deps.sh installs it); skipped
 * when it is missing.
 *
 * Two modes:
 *  - default: the collector off, pymalloc on, as a user would run it;
 *  - collect: GCMALLOC_GC=collect with PYTHONMALLOC=malloc, so that every
 *    Python object is in gcmalloc's heap and found only through what the
 *    collector scans (pymalloc's arenas are mmap'd by CPython itself: with it
 *    on, the heap hardly grows and hardly any collection runs). A probe first
 *    shows that collections do run in that setting.
 *
 *   GCM_PYTHON_SUITE=quick  leave out test_subprocess (the slow one: ~40 s)
 *   GCM_PYTHON_SUITE=full   one test file at a time (-j1), as by hand
 * CI runs the default: all ten, -j2, in each mode (about 45 s and 60 s on 2
 * cores).
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#define PYTHON "/usr/bin/python3"
#define TESTDIR "/usr/lib/python3.11/test"

static const char *const collect_env[] = {"GCMALLOC_GC=collect", "PYTHONMALLOC=malloc", NULL};

/* Run the ten test files under gcmalloc with extra_env; require success. */
static void run_suite(const char *const *extra_env, const char *mode_name) {
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
    cr_assert_eq(run_cmd(probe, GCM_LIB, extra_env, NULL, 60, &r), 0);
    cr_assert_str_eq(r.out, "on gcmalloc\n", "stderr: %s", r.err);
    run_result_free(&r);

    uint64_t t0 = tu_now_ms();
    int rc = run_cmd(argv, GCM_LIB, extra_env, NULL, 880, &r);
    double took = (double)(tu_now_ms() - t0) / 1000;
    cr_assert_eq(rc, 0, "python3 -m test (%s mode) timed out; output:\n%.4000s", mode_name, r.out);
    char s[64];
    size_t len = strlen(r.out);
    cr_assert(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0,
              "python3 -m test under gcmalloc (%s mode) ended with %s; end of its output:\n%s\nstderr: %.2000s",
              mode_name, status_str(r.status, s, sizeof s), r.out + (len > 6000 ? len - 6000 : 0), r.err);
    cr_assert(strstr(r.out, "Tests result: SUCCESS"), "output:\n%s", r.out + (len > 6000 ? len - 6000 : 0));
    fprintf(stderr, "python_suite: %d test files passed under gcmalloc (%s mode) in %.0f s\n", n - 5, mode_name,
            took);
    run_result_free(&r);
}

Test(python_suite, regression_tests_under_gcmalloc, .timeout = 900) {
    run_suite(NULL, "default");
}

Test(python_suite, regression_tests_in_collect_mode, .timeout = 900) {
    REQUIRE_PROGRAM(PYTHON);
    /* Collections run and reclaim in this setting: blocks the program gets
     * from malloc through ctypes and drops (their addresses truncated to C
     * ints, so no trace of them is left) are found garbage, while every
     * Python object stays alive. */
    const char *env[] = {"GCMALLOC_GC=collect", "PYTHONMALLOC=malloc", "GCMALLOC_STATS=1", NULL};
    const char *probe[] = {PYTHON, "-c",
                           "import ctypes\n"
                           "m = ctypes.CDLL(None).malloc\n"
                           "keep = []\n"
                           "for i in range(200000):\n"
                           "    m(200); keep.append(str(i) * 3)\n"
                           "assert all(keep[i] == str(i) * 3 for i in range(200000))\n",
                           NULL};
    struct run_result r;
    cr_assert_eq(run_cmd(probe, GCM_LIB, env, NULL, 120, &r), 0);
    const char *gc = strstr(r.err, "gcmalloc: gc ");
    unsigned long cycles = 0, freed = 0;
    cr_assert(gc && sscanf(gc, "gcmalloc: gc %lu cycles", &cycles) == 1, "no gc line in stderr: %s", r.err);
    const char *f = strstr(gc, "freed ");
    cr_assert(f && strstr(f, " in ") && sscanf(strstr(f, " in ") + 4, "%lu objects", &freed) == 1, "stderr: %s",
              r.err);
    cr_assert(cycles >= 3 && freed >= 100000, "the probe ran %lu collections that reclaimed %lu objects; stderr: %s",
              cycles, freed, r.err);
    run_result_free(&r);
    run_suite(collect_env, "collect");
}
