/*
 * Real programs under LD_PRELOAD=libgcmalloc.so in collect mode
 * (GCMALLOC_GC=collect, a small GCMALLOC_GC_PERCENT so that collections
 * really happen): python3 and sqlite3 print the same as without gcmalloc;
 * a program that leaks everything it allocates runs in bounded RSS (and,
 * as controls, does not in off mode or with GCMALLOC_GC_PERCENT=-1).
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gcutil.h"

#define PYTHON "/usr/bin/python3"
#define SQLITE "/usr/bin/sqlite3"

/* A smaller version of test_python.c's workload (the collector runs many
 * times during it). */
static const char py_workload[] =
    "import hashlib, json, random, sys, gc\n"
    "random.seed(20240601)\n"
    "N = 60000\n"
    "d = {}\n"
    "for i in range(N):\n"
    "    d['key%07d' % i] = [i, str(i * 7919), {'x': i % 97, 'y': [i, i + 1, 'z' * (i % 13)]}]\n"
    "lst = [random.random() for _ in range(N)]\n"
    "words = ['w%d' % random.randrange(20000) for _ in range(N)]\n"
    "counts = {}\n"
    "for w in words:\n"
    "    counts[w] = counts.get(w, 0) + 1\n"
    "top = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:10]\n"
    "s = json.dumps(d, sort_keys=True)\n"
    "d2 = json.loads(s)\n"
    "assert d2 == d\n"
    "lst.sort()\n"
    "strs = sorted(str(x) for x in lst[:30000])\n"
    "big = [random.randbytes(64) for _ in range(20000)]\n"
    "joined = b''.join(sorted(big))\n"
    "sets = set(range(0, N, 3)) ^ set(range(0, N, 5))\n"
    "for k in range(30):\n"
    "    tmp = [bytearray(1000 + k) for _ in range(2000)]\n"
    "    tmp2 = {i: str(i) * 10 for i in range(3000)}\n"
    "del d2, tmp, tmp2\n"
    "gc.collect()\n"
    "print(len(d), len(s), hashlib.sha256(s.encode()).hexdigest())\n"
    "print('%.12f %.12f %.12f' % (lst[0], lst[N // 2], lst[-1]))\n"
    "print(top)\n"
    "print(hashlib.sha256(''.join(strs).encode()).hexdigest())\n"
    "print(len(joined), hashlib.md5(joined).hexdigest())\n"
    "print(len(sets), sum(sets) % 1000003)\n"
    "print('bye', file=sys.stderr)\n";

/* Appended for one more run under gcmalloc: the collections happened. */
static const char py_stats[] =
    "import ctypes\n"
    "class S(ctypes.Structure):\n"
    "    _fields_ = [(n, ctypes.c_size_t) for n in ('mapped', 'alloc', 'released', 'peak', 'large', 'objs')] + \\\n"
    "               [(n, ctypes.c_uint64) for n in ('cycles', 'ptotal', 'pmax')] + \\\n"
    "               [(n, ctypes.c_size_t) for n in ('live', 'fbytes', 'fobjs')]\n"
    "st = S()\n"
    "ctypes.CDLL(None).gcm_get_stats(ctypes.byref(st))\n"
    "print('GCSTATS', st.cycles, st.fbytes, st.fobjs, file=sys.stderr)\n";

static void python_collect(const char *pymalloc) {
    REQUIRE_PROGRAM(PYTHON);
    const char *argv[] = {PYTHON, "-c", py_workload, NULL};
    const char *env[] = {"PYTHONHASHSEED=0", "LC_ALL=C.UTF-8", "GCMALLOC_GC=collect", "GCMALLOC_GC_PERCENT=25",
                         pymalloc, NULL};
    char *out = compare_runs(argv, env, NULL, 120, 0);
    cr_assert_not_null(strstr(out, "60000 "), "unexpected output: %s", out);
    free(out);
    /* Once more with the statistics printed: collections ran and reclaimed. */
    size_t n = strlen(py_workload) + strlen(py_stats) + 1;
    char *src = malloc(n);
    snprintf(src, n, "%s%s", py_workload, py_stats);
    const char *argv2[] = {PYTHON, "-c", src, NULL};
    struct run_result r;
    cr_assert_eq(run_cmd(argv2, GCM_LIB, env, NULL, 120, &r), 0, "timed out");
    char s[64];
    cr_assert(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0, "python ended with %s: %.2000s",
              status_str(r.status, s, sizeof s), r.err);
    const char *g = strstr(r.err, "GCSTATS ");
    cr_assert_not_null(g, "no statistics: %s", r.err);
    unsigned long cycles = 0, fbytes = 0, fobjs = 0;
    cr_assert_eq(sscanf(g, "GCSTATS %lu %lu %lu", &cycles, &fbytes, &fobjs), 3);
    cr_assert_geq(cycles, 3, "only %lu collections ran during the python workload", cycles);
    /* (CPython frees its objects itself - reference counts - so the
     * collections need not find any garbage: fobjs may be 0.) */
    run_result_free(&r);
    free(src);
}

Test(gc_programs, python_collect_mode_pymalloc_off, .timeout = 280) {
    python_collect("PYTHONMALLOC=malloc");
}

/* With CPython's own small-object allocator, small objects live in arenas
 * pymalloc mmaps itself (not gcmalloc's heap, not a root): the bigger blocks
 * they point to (list and dict tables) are malloc'ed. */
Test(gc_programs, python_collect_mode_default_pymalloc, .timeout = 280) {
    python_collect("PYTHONMALLOC=pymalloc");
}

static const char sql_script[] =
    "CREATE TABLE item(id INTEGER PRIMARY KEY, grp INTEGER, name TEXT, val REAL, blob BLOB);\n"
    "CREATE TABLE grp(id INTEGER PRIMARY KEY, label TEXT);\n"
    "BEGIN;\n"
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 100000)\n"
    "INSERT INTO item SELECT x, x % 1000, printf('name-%08d', (x * 7919) % 100003),\n"
    "       (x * 37 % 1001) / 7.0, zeroblob(x % 50) FROM c;\n"
    "WITH RECURSIVE c(x) AS (SELECT 0 UNION ALL SELECT x + 1 FROM c WHERE x < 999)\n"
    "INSERT INTO grp SELECT x, 'group-' || (x % 37) FROM c;\n"
    "COMMIT;\n"
    "CREATE INDEX item_name ON item(name);\n"
    "CREATE INDEX item_grp_val ON item(grp, val);\n"
    "SELECT count(*), sum(length(blob)), total(val) FROM item;\n"
    "SELECT g.label, count(*), printf('%.4f', sum(i.val)), min(i.name), max(i.name)\n"
    "  FROM item i JOIN grp g ON i.grp = g.id GROUP BY g.label ORDER BY g.label;\n"
    "SELECT count(DISTINCT name) FROM item;\n"
    "SELECT name, id FROM item WHERE name > 'name-00050000' ORDER BY name LIMIT 5;\n"
    "UPDATE item SET name = upper(name) WHERE id % 3 = 0;\n"
    "DELETE FROM item WHERE id % 5 = 0;\n"
    "SELECT count(*), count(DISTINCT substr(name, 1, 6)) FROM item;\n"
    "SELECT group_concat(name, ',') FROM (SELECT name FROM item ORDER BY id DESC LIMIT 20);\n"
    "PRAGMA integrity_check;\n";

static void sqlite_collect(const char *db_kind) {
    REQUIRE_PROGRAM(SQLITE);
    const char *dir = gct_tmpdir();
    char sql[256], db[256], journal[300];
    snprintf(sql, sizeof sql, "%s/script.sql", dir);
    cr_assert_eq(write_file_all(sql, sql_script, sizeof sql_script - 1), 0);
    if (strcmp(db_kind, "file") == 0)
        snprintf(db, sizeof db, "%s/test.db", dir);
    else
        snprintf(db, sizeof db, ":memory:");
    snprintf(journal, sizeof journal, "%s-journal", db);
    const char *argv[] = {SQLITE, "-batch", "-bail", db, NULL};
    const char *env[] = {"GCMALLOC_GC=collect", "GCMALLOC_GC_PERCENT=20", NULL};
    struct run_result plain, pre;
    cr_assert_eq(run_cmd(argv, NULL, env, sql, 120, &plain), 0, "sqlite3 timed out");
    unlink(db);
    unlink(journal);
    cr_assert_eq(run_cmd(argv, GCM_LIB, env, sql, 120, &pre), 0, "sqlite3 under gcmalloc timed out");
    unlink(db);
    unlink(journal);
    char s1[64], s2[64];
    cr_assert(WIFEXITED(plain.status) && WEXITSTATUS(plain.status) == 0, "sqlite3 failed (%s): %s",
              status_str(plain.status, s1, sizeof s1), plain.err);
    cr_assert(WIFEXITED(pre.status) && WEXITSTATUS(pre.status) == 0,
              "sqlite3 under gcmalloc (collect mode) ended with %s; stderr: %.2000s",
              status_str(pre.status, s2, sizeof s2), pre.err);
    long d = first_diff(plain.out, plain.out_len, pre.out, pre.out_len);
    cr_assert_eq(d, -1, "stdout differs at byte %ld: without: %.200s / with: %.200s", d, d >= 0 ? plain.out + d : "",
                 d >= 0 ? pre.out + d : "");
    cr_assert_str_eq(pre.err, plain.err);
    cr_assert_not_null(strstr(plain.out, "100000|"), "unexpected output: %.300s", plain.out);
    cr_assert_not_null(strstr(plain.out, "\nok\n"), "integrity_check: %.300s", plain.out);
    run_result_free(&plain);
    run_result_free(&pre);
}

Test(gc_programs, sqlite_collect_mode_in_memory, .timeout = 280) {
    sqlite_collect("memory");
}

Test(gc_programs, sqlite_collect_mode_file, .timeout = 280) {
    sqlite_collect("file");
}

/* ------------------------------------------------------------------ leak everything */

static const char leak_all_src[] =
    "#include <stdio.h>\n"
    "#include <stdlib.h>\n"
    "#include <string.h>\n"
    "#include <fcntl.h>\n"
    "#include <unistd.h>\n"
    "static size_t rss(void) {\n"
    "    char b[128]; int fd = open(\"/proc/self/statm\", O_RDONLY); ssize_t n = read(fd, b, 127); close(fd);\n"
    "    if (n <= 0) return 0; b[n] = 0; unsigned long s, r; sscanf(b, \"%lu %lu\", &s, &r);\n"
    "    return r * 4096; }\n"
    "static size_t hwm(void) {\n"
    "    FILE *f = fopen(\"/proc/self/status\", \"r\"); char l[256]; size_t kb = 0;\n"
    "    while (fgets(l, sizeof l, f)) if (!strncmp(l, \"VmHWM:\", 6)) kb = strtoul(l + 6, 0, 10);\n"
    "    fclose(f); return kb << 10; }\n"
    "int main(int argc, char **argv) {\n"
    "    size_t total = strtoull(argv[1], 0, 10) << 20, limit = strtoull(argv[2], 0, 10) << 20, made = 0;\n"
    "    unsigned long r = 88172645463325252UL;\n"
    "    while (made < total) {\n"
    "        r ^= r << 13; r ^= r >> 7; r ^= r << 17;\n"
    "        unsigned c = r % 100;\n"
    "        size_t n = c < 70 ? (r >> 8) % 256 + 16 : c < 95 ? (r >> 8) % 8192 + 256 : (r >> 8) % 262144 + "
    "32769;\n"
    "        char *p = malloc(n);\n"
    "        if (!p) { printf(\"malloc failed after %zu MiB\\n\", made >> 20); return 4; }\n"
    "        memset(p, (int)r, n);\n"
    "        if (((made + n) >> 24) != (made >> 24) && rss() > limit) {\n"
    "            printf(\"rss %zu MiB after %zu MiB\\n\", rss() >> 20, made >> 20); return 3; }\n"
    "        made += n;\n"
    "    }\n"
    "    printf(\"peak rss %zu MiB after %zu MiB\\n\", hwm() >> 20, made >> 20);\n"
    "    return 0;\n"
    "}\n";

static struct run_result run_leak_all(const char *prog, const char *total_mb, const char *limit_mb,
                                      const char *const *env) {
    const char *argv[] = {prog, total_mb, limit_mb, NULL};
    struct run_result r;
    cr_assert_eq(run_cmd(argv, GCM_LIB, env, NULL, 120, &r), 0, "the leaking program timed out");
    return r;
}

Test(gc_programs, leak_everything_bounded_rss, .timeout = 200) {
    const char *prog = gct_compile("gct_leak_all", leak_all_src, 0, NULL);
    const char *env[] = {"GCMALLOC_GC=collect", NULL};
    /* 4 GiB leaked, 200 MiB allowed. */
    struct run_result r = run_leak_all(prog, "4096", "200", env);
    char s[64];
    cr_assert(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0,
              "a program leaking 4 GiB under GCMALLOC_GC=collect: %s; stdout: %s stderr: %.2000s",
              status_str(r.status, s, sizeof s), r.out, r.err);
    unsigned long peak = 0;
    cr_assert_eq(sscanf(r.out, "peak rss %lu", &peak), 1, "output: %s", r.out);
    cr_assert_lt(peak, 200, "peak RSS %lu MiB", peak);
    run_result_free(&r);
}

/* Controls: off mode, and collect mode with automatic collection turned off,
 * do grow (the program stops at 200 MiB RSS with exit status 3). */
Test(gc_programs, leak_everything_grows_in_off_mode, .timeout = 200) {
    const char *prog = gct_compile("gct_leak_all2", leak_all_src, 0, NULL);
    const char *env[] = {"GCMALLOC_GC=off", NULL};
    struct run_result r = run_leak_all(prog, "400", "200", env);
    cr_assert(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 3, "off mode: %s %s", r.out, r.err);
    run_result_free(&r);
    const char *env2[] = {"GCMALLOC_GC=collect", "GCMALLOC_GC_PERCENT=-1", NULL};
    r = run_leak_all(prog, "400", "200", env2);
    cr_assert(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 3, "GCMALLOC_GC_PERCENT=-1: %s %s", r.out, r.err);
    run_result_free(&r);
}

/* The run command's --gc=collect does the same. */
Test(gc_programs, run_command_gc_collect, .timeout = 200) {
    char cmd[512];
    snprintf(cmd, sizeof cmd, "%s/gcmalloc", GCM_BUILD_DIR);
    if (access(cmd, X_OK) != 0)
        cr_skip_test("no run command at %s", cmd);
    const char *prog = gct_compile("gct_leak_all3", leak_all_src, 0, NULL);
    const char *argv[] = {cmd, "--gc=collect", "--", prog, "2048", "200", NULL};
    struct run_result r;
    cr_assert_eq(run_cmd(argv, NULL, NULL, NULL, 120, &r), 0, "timed out");
    cr_assert(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0, "gcmalloc --gc=collect: %s %s", r.out, r.err);
    run_result_free(&r);
}
