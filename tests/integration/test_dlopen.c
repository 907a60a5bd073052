/* libgcmalloc.so loaded with dlopen into a program that keeps glibc's malloc:
 * the library loads (its TLS is small and initial-exec), and its gcm_ API
 * allocates from gcmalloc's heap, not from the program's malloc. */
#include <criterion/criterion.h>
#include <string.h>

#include "testutil.h"

static const char probe_src[] =
    "#include <dlfcn.h>\n"
    "#include <stdio.h>\n"
    "#include <stdlib.h>\n"
    "#include <string.h>\n"
    "#include <pthread.h>\n"
    "struct st { size_t mapped, allocated, released, peak, large, objects; unsigned long long c[3]; size_t l; };\n"
    "static void *(*gm)(size_t); static void (*gf)(void *); static size_t (*gus)(const void *);\n"
    "static void *thr(void *a) { for (int i = 0; i < 10000; i++) gf(gm(i % 3000 + 1)); return a; }\n"
    "int main(int argc, char **argv) {\n"
    "  void *h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);\n"
    "  if (!h) { printf(\"dlopen failed: %s\\n\", dlerror()); return 1; }\n"
    "  gm = dlsym(h, \"gcm_malloc\"); gf = dlsym(h, \"gcm_free\"); gus = dlsym(h, \"gcm_usable_size\");\n"
    "  void (*gs)(struct st *) = dlsym(h, \"gcm_get_stats\");\n"
    "  if (!gm || !gf || !gus || !gs) { puts(\"missing symbols\"); return 1; }\n"
    "  struct st a, b; gs(&a);\n"
    "  char *p = gm(1 << 20); memset(p, 7, 1 << 20);\n"
    "  gs(&b);\n"
    "  if (b.allocated < a.allocated + (1 << 20)) { puts(\"gcm_malloc did not use gcmalloc's heap\"); return 1; }\n"
    "  if (gus(p) < (1 << 20)) { puts(\"usable size\"); return 1; }\n"
    "  gf(p);\n"
    "  char *q = malloc(100); free(q); /* the program's own malloc still works */\n"
    "  pthread_t t[4]; for (int i = 0; i < 4; i++) pthread_create(&t[i], 0, thr, 0);\n"
    "  for (int i = 0; i < 4; i++) pthread_join(t[i], 0);\n"
    "  puts(\"dlopen ok\"); return 0;\n"
    "}\n";

Test(dlopen, gcm_api_works_in_a_dlopened_library) {
    char src[512], bin[512];
    snprintf(src, sizeof src, "%s/dlopen_probe.c", GCM_BUILD_DIR);
    snprintf(bin, sizeof bin, "%s/dlopen_probe", GCM_BUILD_DIR);
    cr_assert_eq(write_file_all(src, probe_src, strlen(probe_src)), 0);
    const char *cc[] = { "cc", "-O1", "-pthread", "-o", bin, src, "-ldl", NULL };
    struct run_result r;
    cr_assert_eq(run_cmd(cc, NULL, NULL, NULL, 120, &r), 0);
    cr_assert(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0, "cc failed: %s", r.err);
    run_result_free(&r);
    const char *run[] = { bin, GCM_LIB, NULL };
    cr_assert_eq(run_cmd(run, NULL, NULL, NULL, 60, &r), 0);
    cr_assert_str_eq(r.out, "dlopen ok\n", "stdout: %s stderr: %s", r.out, r.err);
    cr_assert(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0);
    run_result_free(&r);
}
