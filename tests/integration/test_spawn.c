/*
 * Programs that start other programs while their threads allocate: a C
 * program, compiled at test time, runs 8 allocating threads and meanwhile
 * starts 150 children each through posix_spawn, posix_spawnp, vfork + execve,
 * fork + execve, popen and system(). The children are the same program in
 * "child" mode: it allocates, checks and frees a few thousand blocks, checks
 * that it runs on gcmalloc, and exits 0. Run twice: under
 * LD_PRELOAD=libgcmalloc.so (the children inherit it) and linked with
 * libgcmalloc.a. (tests/integration/test_fork_signal.c spawns /bin/true from
 * the test process itself; fork storms are in tests/stress/test_fork_storm.c.)
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

static const char prog_src[] =
    "#define _GNU_SOURCE\n"
    "#include <dlfcn.h>\n"
    "#include <pthread.h>\n"
    "#include <spawn.h>\n"
    "#include <stdatomic.h>\n"
    "#include <stdint.h>\n"
    "#include <stdio.h>\n"
    "#include <stdlib.h>\n"
    "#include <string.h>\n"
    "#include <sys/wait.h>\n"
    "#include <unistd.h>\n"
    "extern char **environ;\n"
    "#ifdef LINKED\n"
    "void *gcm_malloc(size_t);\n"
    "#define ON_GCMALLOC() (gcm_malloc != 0)\n"
    "#else\n"
    "#define ON_GCMALLOC() (dlsym(RTLD_DEFAULT, \"gcm_malloc\") != 0)\n"
    "#endif\n"
    "static int child(void) {\n"
    "    if (!ON_GCMALLOC()) return 9;\n"
    "    static void *v[3000];\n"
    "    for (int r = 0; r < 3; r++) {\n"
    "        for (int i = 0; i < 3000; i++) {\n"
    "            size_t n = (size_t)(i * 37 % 2000) + 1 + (i % 500 == 0 ? 100000 : 0);\n"
    "            v[i] = malloc(n);\n"
    "            if (!v[i]) return 3;\n"
    "            memset(v[i], i & 0xff, n < 32 ? n : 32);\n"
    "        }\n"
    "        for (int i = 0; i < 3000; i++) {\n"
    "            if (((unsigned char *)v[i])[0] != (i & 0xff)) return 4;\n"
    "            free(v[i]);\n"
    "        }\n"
    "    }\n"
    "    return 0;\n"
    "}\n"
    "static atomic_int stop;\n"
    "static atomic_ulong ops;\n"
    "static void *busy(void *arg) {\n"
    "    uint64_t x = 88172645463325252ull + (uintptr_t)arg;\n"
    "    void *v[256] = {0};\n"
    "    while (!atomic_load(&stop)) {\n"
    "        x ^= x << 13; x ^= x >> 7; x ^= x << 17;\n"
    "        unsigned k = x % 256;\n"
    "        if (v[k]) { free(v[k]); v[k] = 0; }\n"
    "        else { v[k] = malloc(x >> 40 & 1 ? (x >> 20) % 4000 + 1 : (x >> 20) % 300000 + 1); if (!v[k]) abort(); }\n"
    "        if ((atomic_fetch_add(&ops, 1) & 255) == 0) usleep(20);\n"
    "    }\n"
    "    for (int k = 0; k < 256; k++) free(v[k]);\n"
    "    return 0;\n"
    "}\n"
    "static int waitok(pid_t pid, const char *how) {\n"
    "    int st;\n"
    "    if (pid < 0) { printf(\"%s: could not start\\n\", how); return 1; }\n"
    "    if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {\n"
    "        printf(\"%s: child failed (status 0x%x)\\n\", how, st); return 1;\n"
    "    }\n"
    "    return 0;\n"
    "}\n"
    "int main(int argc, char **argv) {\n"
    "    if (argc > 1 && strcmp(argv[1], \"child\") == 0) return child();\n"
    "    if (!ON_GCMALLOC()) { puts(\"not on gcmalloc\"); return 1; }\n"
    "    char *cargv[] = {argv[0], \"child\", 0};\n"
    "    char *targv[] = {\"true\", 0};\n"
    "    pthread_t t[8];\n"
    "    for (int i = 0; i < 8; i++) pthread_create(&t[i], 0, busy, (void *)(uintptr_t)i);\n"
    "    while (atomic_load(&ops) < 10000) usleep(1000);\n"
    "    int bad = 0, n = 0;\n"
    "    for (int i = 0; i < 25 && !bad; i++) {\n"
    "        pid_t pid;\n"
    "        bad |= posix_spawn(&pid, argv[0], 0, 0, cargv, environ) ? 1 : waitok(pid, \"posix_spawn\");\n"
    "        posix_spawn_file_actions_t fa; posix_spawn_file_actions_init(&fa);\n"
    "        posix_spawn_file_actions_addopen(&fa, 1, \"/dev/null\", 1, 0);\n"
    "        bad |= posix_spawnp(&pid, \"true\", &fa, 0, targv, environ) ? 1 : waitok(pid, \"posix_spawnp\");\n"
    "        posix_spawn_file_actions_destroy(&fa);\n"
    "        pid = vfork();\n"
    "        if (pid == 0) { execve(argv[0], cargv, environ); _exit(127); }\n"
    "        bad |= waitok(pid, \"vfork\");\n"
    "        pid = fork();\n"
    "        if (pid == 0) { execve(argv[0], cargv, environ); _exit(127); }\n"
    "        bad |= waitok(pid, \"fork+exec\");\n"
    "        char cmd[4200]; snprintf(cmd, sizeof cmd, \"'%s' child && echo child-ok\", argv[0]);\n"
    "        FILE *f = popen(cmd, \"r\"); char line[64] = \"\";\n"
    "        if (!f || !fgets(line, sizeof line, f) || strcmp(line, \"child-ok\\n\") || pclose(f) != 0) { printf(\"popen failed\\n\"); bad = 1; }\n"
    "        snprintf(cmd, sizeof cmd, \"'%s' child\", argv[0]);\n"
    "        if (system(cmd) != 0) { printf(\"system failed\\n\"); bad = 1; }\n"
    "        n += 6;\n"
    "    }\n"
    "    atomic_store(&stop, 1);\n"
    "    for (int i = 0; i < 8; i++) pthread_join(t[i], 0);\n"
    "    if (bad) return 1;\n"
    "    printf(\"spawned %d ok\\n\", n);\n"
    "    return 0;\n"
    "}\n";

static void build(const char *bin, int linked) {
    char src[512], lib[512];
    snprintf(src, sizeof src, "%s/spawn_probe.c", GCM_BUILD_DIR);
    snprintf(lib, sizeof lib, "%s/libgcmalloc.a", GCM_BUILD_DIR);
    cr_assert_eq(write_file_all(src, prog_src, strlen(prog_src)), 0);
    const char *cc_pre[] = {"cc", "-O1", "-pthread", "-o", bin, src, "-ldl", NULL};
    const char *cc_lnk[] = {"cc", "-O1", "-pthread", "-DLINKED", "-o", bin, src, lib, "-Wl,-u,malloc", "-ldl", NULL};
    struct run_result r;
    cr_assert_eq(run_cmd(linked ? cc_lnk : cc_pre, NULL, NULL, NULL, 120, &r), 0);
    cr_assert(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0, "cc failed: %s", r.err);
    run_result_free(&r);
}

static void run(const char *bin, const char *preload) {
    const char *argv[] = {bin, NULL};
    struct run_result r;
    cr_assert_eq(run_cmd(argv, preload, NULL, NULL, 240, &r), 0, "timed out; stdout: %s stderr: %s", r.out, r.err);
    char s[64];
    cr_assert(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0, "ended with %s; stdout: %s stderr: %.2000s",
              status_str(r.status, s, sizeof s), r.out, r.err);
    cr_assert_str_eq(r.out, "spawned 150 ok\n", "stdout: %s stderr: %s", r.out, r.err);
    cr_assert_str_eq(r.err, "", "stderr: %s", r.err);
    run_result_free(&r);
}

Test(spawn_programs, spawn_vfork_fork_popen_system_under_preload, .timeout = 280) {
    char bin[512];
    snprintf(bin, sizeof bin, "%s/spawn_probe_preload", GCM_BUILD_DIR);
    build(bin, 0);
    run(bin, GCM_LIB);
}

Test(spawn_programs, spawn_vfork_fork_popen_system_linked, .timeout = 280) {
    char bin[512];
    snprintf(bin, sizeof bin, "%s/spawn_probe_linked", GCM_BUILD_DIR);
    build(bin, 1);
    run(bin, NULL);
}
