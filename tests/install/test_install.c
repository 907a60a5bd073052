/*
 * Install and link: `cmake --install` into a temporary prefix, then a program
 * outside the tree (tests/install/consumer) is built against the installed
 * copy with pkg-config and with find_package(gcmalloc), shared and static,
 * and run: its malloc must be gcmalloc's (the consumer checks that itself and
 * prints which object defines malloc). The installed run command is tried too.
 */
#include <criterion/criterion.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

static char tmp[64], prefix[128], pcpath[200], consumer_src[PATH_MAX];

static void run_ok(const char *what, const char *const argv[], const char *const *env, struct run_result *r) {
    char st[64];
    cr_assert_eq(run_cmd(argv, NULL, env, NULL, 120, r), 0, "%s timed out", what);
    cr_assert(WIFEXITED(r->status) && WEXITSTATUS(r->status) == 0, "%s: %s\nstdout: %.3000s\nstderr: %.3000s",
              what, status_str(r->status, st, sizeof st), r->out, r->err);
}

static void sh_ok(const char *what, const char *script, struct run_result *r) {
    const char *argv[] = {"/bin/sh", "-c", script, NULL};
    const char *env[] = {pcpath, NULL};
    run_ok(what, argv, env, r);
}

static void install_prefix(void) {
    snprintf(tmp, sizeof tmp, "/tmp/gcm_install_XXXXXX");
    cr_assert_not_null(mkdtemp(tmp));
    snprintf(prefix, sizeof prefix, "%s/prefix", tmp);
    snprintf(pcpath, sizeof pcpath, "PKG_CONFIG_PATH=%s/lib/pkgconfig", prefix);
    snprintf(consumer_src, sizeof consumer_src, "%s/tests/install/consumer", GCM_SOURCE_DIR);
    const char *argv[] = {"cmake", "--install", GCM_BUILD_DIR, "--prefix", prefix, NULL};
    struct run_result r;
    run_ok("cmake --install", argv, NULL, &r);
    run_result_free(&r);
}

static void remove_prefix(void) {
    if (!tmp[0]) return;
    const char *argv[] = {"rm", "-rf", tmp, NULL};
    struct run_result r;
    run_cmd(argv, NULL, NULL, NULL, 60, &r);
    run_result_free(&r);
}

TestSuite(install, .init = install_prefix, .fini = remove_prefix, .timeout = 240);

static void path_in(char *out, const char *rel) { snprintf(out, PATH_MAX, "%s/%s", prefix, rel); }

/* The consumer ran, said "ok", and its malloc is defined by `want`
 * (compared after resolving symlinks and ".."). */
static void check_consumer(const char *exe, const char *want) {
    const char *argv[] = {exe, NULL};
    struct run_result r;
    run_ok(exe, argv, NULL, &r);
    cr_assert_not_null(strstr(r.out, "\nok\n"), "%s did not finish: %s", exe, r.out);
    char got[PATH_MAX], gotreal[PATH_MAX], wantreal[PATH_MAX];
    cr_assert_eq(sscanf(r.out, "malloc: %4095s", got), 1, "%s: no 'malloc:' line: %s", exe, r.out);
    cr_assert_not_null(realpath(got, gotreal), "%s: malloc defined in %s, which does not exist", exe, got);
    cr_assert_not_null(realpath(want, wantreal), "%s does not exist", want);
    cr_assert_str_eq(gotreal, wantreal, "%s: malloc comes from %s, not from %s", exe, gotreal, wantreal);
    run_result_free(&r);
}

Test(install, files_and_soname) {
    const char *files[] = {"include/gcmalloc.h",      "lib/libgcmalloc.a",
                           "lib/libgcmalloc.so",      "lib/libgcmalloc.so.0",
                           "lib/libgcmalloc.so.0.1.0", "lib/pkgconfig/gcmalloc.pc",
                           "lib/cmake/gcmalloc/gcmallocConfig.cmake",
                           "lib/cmake/gcmalloc/gcmallocConfigVersion.cmake",
                           "lib/cmake/gcmalloc/gcmallocTargets.cmake", "bin/gcmalloc"};
    char p[PATH_MAX];
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        path_in(p, files[i]);
        cr_assert_eq(access(p, R_OK), 0, "not installed: %s", files[i]);
    }
    path_in(p, "bin/gcmalloc");
    cr_assert_eq(access(p, X_OK), 0, "bin/gcmalloc is not executable");
    char link[PATH_MAX];
    path_in(p, "lib/libgcmalloc.so.0");
    ssize_t n = readlink(p, link, sizeof link - 1);
    cr_assert_gt(n, 0, "lib/libgcmalloc.so.0 is not a symlink");
    link[n] = 0;
    cr_assert_str_eq(link, "libgcmalloc.so.0.1.0");
    struct run_result r;
    path_in(p, "lib/libgcmalloc.so.0.1.0");
    const char *argv[] = {"readelf", "-d", p, NULL};
    run_ok("readelf -d", argv, NULL, &r);
    cr_assert_not_null(strstr(r.out, "Library soname: [libgcmalloc.so.0]"), "no soname: %s", r.out);
    run_result_free(&r);
}

Test(install, pkg_config_shared) {
    struct run_result r;
    sh_ok("pkg-config --cflags --libs", "pkg-config --cflags --libs gcmalloc && pkg-config --modversion gcmalloc", &r);
    cr_assert_not_null(strstr(r.out, "-lgcmalloc"), "%s", r.out);
    cr_assert_not_null(strstr(r.out, "0.1.0"), "%s", r.out);
    run_result_free(&r);
    char script[4 * PATH_MAX];
    snprintf(script, sizeof script,
             "cc -Wall -Werror -o %s/pc_shared %s/consumer.c $(pkg-config --cflags --libs gcmalloc) "
             "-Wl,-rpath,$(pkg-config --variable=libdir gcmalloc)",
             tmp, consumer_src);
    sh_ok("cc with pkg-config (shared)", script, &r);
    run_result_free(&r);
    char exe[PATH_MAX], lib[PATH_MAX];
    snprintf(exe, sizeof exe, "%s/pc_shared", tmp);
    path_in(lib, "lib/libgcmalloc.so.0.1.0");
    check_consumer(exe, lib);
}

Test(install, pkg_config_static) {
    struct run_result r;
    char script[4 * PATH_MAX];
    snprintf(script, sizeof script,
             "cc -Wall -Werror -o %s/pc_static %s/consumer.c $(pkg-config --cflags gcmalloc) "
             "\"$(pkg-config --variable=libdir gcmalloc)/libgcmalloc.a\" $(pkg-config --static --libs-only-other gcmalloc)",
             tmp, consumer_src);
    sh_ok("cc with pkg-config (static)", script, &r);
    run_result_free(&r);
    char exe[PATH_MAX];
    snprintf(exe, sizeof exe, "%s/pc_static", tmp);
    check_consumer(exe, exe);
}

Test(install, find_package_shared_and_static) {
    char bdir[PATH_MAX], pp[PATH_MAX + 32];
    snprintf(bdir, sizeof bdir, "%s/cmake_consumer", tmp);
    snprintf(pp, sizeof pp, "-DCMAKE_PREFIX_PATH=%s", prefix);
    struct run_result r;
    const char *conf[] = {"cmake", "-S", consumer_src, "-B", bdir, pp, "-DCMAKE_BUILD_TYPE=Release", NULL};
    run_ok("cmake (consumer configure)", conf, NULL, &r);
    run_result_free(&r);
    const char *build[] = {"cmake", "--build", bdir, "-j2", NULL};
    run_ok("cmake --build (consumer)", build, NULL, &r);
    run_result_free(&r);
    char exe[PATH_MAX + 32], lib[PATH_MAX];
    path_in(lib, "lib/libgcmalloc.so.0.1.0");
    snprintf(exe, sizeof exe, "%s/consumer_shared", bdir);
    check_consumer(exe, lib);
    snprintf(exe, sizeof exe, "%s/consumer_static", bdir);
    check_consumer(exe, exe);
}

Test(install, installed_run_command_uses_installed_library) {
    char cmd[PATH_MAX], lib[PATH_MAX], libreal[PATH_MAX];
    path_in(cmd, "bin/gcmalloc");
    path_in(lib, "lib/libgcmalloc.so.0");
    cr_assert_not_null(realpath(lib, libreal));
    const char *argv[] = {cmd, "--", "/bin/sh", "-c", "echo \"$LD_PRELOAD\"", NULL};
    struct run_result r;
    run_ok("installed gcmalloc", argv, NULL, &r);
    char got[PATH_MAX], gotreal[PATH_MAX];
    cr_assert_eq(sscanf(r.out, "%4095s", got), 1, "%s", r.out);
    cr_assert_not_null(realpath(got, gotreal), "LD_PRELOAD=%s does not exist", got);
    cr_assert_str_eq(gotreal, libreal);
    run_result_free(&r);
}
