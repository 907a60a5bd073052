/*
 * Everyday programs under LD_PRELOAD=libgcmalloc.so: `ls -la /usr/bin`,
 * `sort` on 200 000 lines, `gcc --version`, and gcc compiling a generated C
 * file (cc1 and as inherit the preload). Output, stderr and exit status must
 * be byte-for-byte those of the runs without it.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

static const char *const c_locale[] = {"LC_ALL=C", NULL};

Test(tools, ls_la_usr_bin, .timeout = 120) {
    REQUIRE_PROGRAM("/bin/ls");
    const char *argv[] = {"/bin/ls", "-la", "/usr/bin", NULL};
    char *out = compare_runs(argv, c_locale, NULL, 60, 0);
    cr_assert_gt(strlen(out), 1000, "ls printed too little");
    free(out);
    /* And in the default locale (UTF-8 collation allocates more). */
    const char *utf8[] = {"LC_ALL=C.UTF-8", NULL};
    out = compare_runs(argv, utf8, NULL, 60, 0);
    free(out);
}

static char tmpdir[64];

static const char *make_input(const char *name, size_t lines, char *path, size_t pathlen) {
    if (!tmpdir[0]) {
        snprintf(tmpdir, sizeof tmpdir, "/tmp/gcm_tools_XXXXXX");
        cr_assert_not_null(mkdtemp(tmpdir));
    }
    snprintf(path, pathlen, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    uint64_t rng = 0x243f6a8885a308d3ULL;
    for (size_t i = 0; i < lines; i++) {
        uint64_t r = tu_rand(&rng);
        int len = (int)(r % 60) + 1;
        fprintf(f, "%08lu ", (unsigned long)(r >> 20) % 100000000);
        for (int k = 0; k < len; k++)
            fputc('a' + (int)((r >> (k % 50)) + (uint64_t)k * 7) % 26, f);
        fputc('\n', f);
    }
    cr_assert_eq(fclose(f), 0);
    return path;
}

static void cleanup(void) {
    if (tmpdir[0]) {
        char p[128];
        snprintf(p, sizeof p, "%s/lines.txt", tmpdir);
        unlink(p);
        snprintf(p, sizeof p, "%s/gen.c", tmpdir);
        unlink(p);
        rmdir(tmpdir);
        tmpdir[0] = 0;
    }
}

TestSuite(tools, .fini = cleanup);

Test(tools, sort_200000_lines, .timeout = 200) {
    REQUIRE_PROGRAM("/usr/bin/sort");
    char path[128];
    make_input("lines.txt", 200000, path, sizeof path);
    const char *argv[] = {"/usr/bin/sort", NULL};
    char *out = compare_runs(argv, c_locale, path, 90, 0);
    cr_assert_gt(strlen(out), 200000 * 10);
    free(out);
    const char *argv2[] = {"/usr/bin/sort", "-k2", "-r", "--parallel=2", "-S", "8M", path, NULL};
    out = compare_runs(argv2, c_locale, NULL, 90, 0);
    free(out);
    const char *argv3[] = {"/usr/bin/sort", "-n", "-u", path, NULL};
    out = compare_runs(argv3, NULL, NULL, 90, 0);
    free(out);
}

Test(tools, gcc_version, .timeout = 60) {
    REQUIRE_PROGRAM("/usr/bin/gcc");
    const char *argv[] = {"/usr/bin/gcc", "--version", NULL};
    char *out = compare_runs(argv, c_locale, NULL, 30, 0);
    cr_assert_not_null(strstr(out, "gcc"), "unexpected gcc --version output: %s", out);
    free(out);
}

Test(tools, gcc_compiles_a_file, .timeout = 200) {
    REQUIRE_PROGRAM("/usr/bin/gcc");
    char path[128];
    if (!tmpdir[0]) {
        snprintf(tmpdir, sizeof tmpdir, "/tmp/gcm_tools_XXXXXX");
        cr_assert_not_null(mkdtemp(tmpdir));
    }
    snprintf(path, sizeof path, "%s/gen.c", tmpdir);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fprintf(f, "#include <stdio.h>\n#include <stdlib.h>\n#include <string.h>\n");
    for (int i = 0; i < 400; i++) {
        fprintf(f, "struct s%d { int a[%d]; double d; char name[%d]; };\n", i, i % 17 + 1, i % 23 + 1);
        fprintf(f,
                "int f%d(int x, const char *s) {\n"
                "    struct s%d v; memset(&v, 0, sizeof v);\n"
                "    for (int i = 0; i < %d; i++) v.a[i %% %d] += x * i + (int)strlen(s);\n"
                "    v.d = x / 3.0; snprintf(v.name, sizeof v.name, \"%%d\", x);\n"
                "    switch (x %% 5) { case 0: return v.a[0]; case 1: return (int)v.d; case 2: return v.name[0];\n"
                "    default: return f%d(x - 1, s) + 1; }\n"
                "}\n",
                i, i, i % 50 + 1, i % 17 + 1, i > 0 ? i - 1 : 0);
    }
    cr_assert_eq(fclose(f), 0);
    const char *argv[] = {"/usr/bin/gcc", "-O2", "-S", "-o", "-", path, NULL};
    char *out = compare_runs(argv, c_locale, NULL, 180, 0);
    cr_assert_not_null(strstr(out, "f399"), "no assembly for f399");
    free(out);
}
