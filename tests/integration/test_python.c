/*
 * /usr/bin/python3 under LD_PRELOAD=libgcmalloc.so on a dict / list / json
 * workload: the output must be byte-for-byte the output without it.
 * (PYTHONMALLOC=malloc makes CPython use malloc for every object instead of
 * its own small-object arenas, so the allocator sees all the traffic; one
 * run also keeps pymalloc.)
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#define PYTHON "/usr/bin/python3"

static const char workload[] =
    "import hashlib, json, random, sys\n"
    "random.seed(20240601)\n"
    "N = 200000\n"
    "d = {}\n"
    "for i in range(N):\n"
    "    d['key%07d' % i] = [i, str(i * 7919), {'x': i % 97, 'y': [i, i + 1, 'z' * (i % 13)]}]\n"
    "lst = [random.random() for _ in range(N)]\n"
    "words = ['w%d' % random.randrange(50000) for _ in range(N)]\n"
    "counts = {}\n"
    "for w in words:\n"
    "    counts[w] = counts.get(w, 0) + 1\n"
    "top = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:10]\n"
    "s = json.dumps(d, sort_keys=True)\n"
    "d2 = json.loads(s)\n"
    "assert d2 == d\n"
    "lst.sort()\n"
    "strs = sorted(str(x) for x in lst[:100000])\n"
    "big = [random.randbytes(64) for _ in range(20000)]\n"
    "joined = b''.join(sorted(big))\n"
    "sets = set(range(0, N, 3)) ^ set(range(0, N, 5))\n"
    "del d2\n"
    "print(len(d), len(s), hashlib.sha256(s.encode()).hexdigest())\n"
    "print('%.12f %.12f %.12f' % (lst[0], lst[N // 2], lst[-1]))\n"
    "print(top)\n"
    "print(hashlib.sha256(''.join(strs).encode()).hexdigest())\n"
    "print(len(joined), hashlib.md5(joined).hexdigest())\n"
    "print(len(sets), sum(sets) % 1000003)\n"
    "print('bye', file=sys.stderr)\n";

Test(python, dict_list_json_workload_pymalloc_off, .timeout = 280) {
    REQUIRE_PROGRAM(PYTHON);
    const char *argv[] = {PYTHON, "-c", workload, NULL};
    const char *env[] = {"PYTHONHASHSEED=0", "PYTHONMALLOC=malloc", "LC_ALL=C.UTF-8", NULL};
    char *out = compare_runs(argv, env, NULL, 240, 0);
    cr_assert_gt(strlen(out), 100, "python printed too little: %s", out);
    cr_assert_not_null(strstr(out, "200000 "), "unexpected output: %s", out);
    free(out);
}

Test(python, dict_list_json_workload_default_allocator, .timeout = 280) {
    REQUIRE_PROGRAM(PYTHON);
    const char *argv[] = {PYTHON, "-c", workload, NULL};
    const char *env[] = {"PYTHONHASHSEED=0", "LC_ALL=C.UTF-8", NULL};
    char *out = compare_runs(argv, env, NULL, 240, 0);
    cr_assert_not_null(strstr(out, "200000 "), "unexpected output: %s", out);
    free(out);
}

/* The preloaded interpreter really runs on gcmalloc. */
Test(python, runs_on_gcmalloc) {
    REQUIRE_PROGRAM(PYTHON);
    const char *argv[] = {PYTHON, "-c",
                          "import ctypes\n"
                          "lib = ctypes.CDLL(None)\n"
                          "print(hasattr(lib, 'gcm_malloc'))\n",
                          NULL};
    struct run_result r;
    cr_assert_eq(run_cmd(argv, GCM_LIB, NULL, NULL, 60, &r), 0);
    cr_assert(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0, "python failed: %s", r.err);
    cr_assert_str_eq(r.out, "True\n", "gcm_malloc not found in the preloaded python: %s / %s", r.out, r.err);
    run_result_free(&r);
}
