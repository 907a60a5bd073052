/*
 * A program whose first malloc comes from a thread other than main (four
 * threads make their first allocations at once), compiled at test time with
 * `cc` and run under LD_PRELOAD=libgcmalloc.so. It must print the expected
 * output, and it must run on gcmalloc (it looks up gcm_malloc).
 *
 * (glibc's pthread_create itself may allocate the new thread's DTV through
 * calloc; the program's own first malloc is in a thread.)
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
    "#include <stdint.h>\n"
    "#include <stdio.h>\n"
    "#include <stdlib.h>\n"
    "#include <string.h>\n"
    "#include <unistd.h>\n"
    "static pthread_barrier_t go;\n"
    "static void *worker(void *arg) {\n"
    "    uintptr_t id = (uintptr_t)arg;\n"
    "    pthread_barrier_wait(&go);\n"
    "    /* The first allocations of the process, from 4 threads at once. */\n"
    "    unsigned long sum = 0;\n"
    "    char *v[1000];\n"
    "    for (int i = 0; i < 1000; i++) {\n"
    "        size_t n = (size_t)(i % 37) * 29 + 1 + id;\n"
    "        v[i] = malloc(n);\n"
    "        if (!v[i] || ((uintptr_t)v[i] & 15)) return (void *)1;\n"
    "        memset(v[i], (int)(i & 0xff), n);\n"
    "    }\n"
    "    for (int i = 0; i < 1000; i++) {\n"
    "        size_t n = (size_t)(i % 37) * 29 + 1 + id;\n"
    "        for (size_t k = 0; k < n; k++)\n"
    "            if ((unsigned char)v[i][k] != (unsigned char)(i & 0xff)) return (void *)2;\n"
    "        sum += n;\n"
    "        free(v[i]);\n"
    "    }\n"
    "    char *big = malloc(5 << 20);\n"
    "    if (!big) return (void *)3;\n"
    "    memset(big, 1, 5 << 20);\n"
    "    free(big);\n"
    "    return (void *)(sum == 522478 + 1000 * id ? 0 : 4);\n"
    "}\n"
    "int main(void) {\n"
    "    pthread_t t[4];\n"
    "    pthread_barrier_init(&go, NULL, 4);\n"
    "    for (uintptr_t i = 0; i < 4; i++)\n"
    "        if (pthread_create(&t[i], NULL, worker, (void *)i)) return 10;\n"
    "    int bad = 0;\n"
    "    for (int i = 0; i < 4; i++) {\n"
    "        void *r;\n"
    "        pthread_join(t[i], &r);\n"
    "        if (r) bad++;\n"
    "    }\n"
    "    /* Now main allocates too (printf's buffer, among others). */\n"
    "    char *s = malloc(64);\n"
    "    if (!s) return 11;\n"
    "    snprintf(s, 64, \"threads ok: %d of 4\", 4 - bad);\n"
    "    printf(\"%s\\n\", s);\n"
    "    free(s);\n"
    "    printf(\"gcmalloc loaded: %s\\n\", dlsym(RTLD_DEFAULT, \"gcm_malloc\") ? \"yes\" : \"no\");\n"
    "    return bad;\n"
    "}\n";

static const char expected[] = "threads ok: 4 of 4\ngcmalloc loaded: yes\n";

Test(first_malloc_thread, program_whose_first_malloc_is_in_a_thread, .timeout = 120) {
    char src[512], exe[512];
    snprintf(src, sizeof src, "%s/first_malloc_thread_prog_%d.c", GCM_BUILD_DIR, (int)getpid());
    snprintf(exe, sizeof exe, "%s/first_malloc_thread_prog_%d", GCM_BUILD_DIR, (int)getpid());
    cr_assert_eq(write_file_all(src, prog_src, sizeof prog_src - 1), 0, "cannot write %s", src);
    const char *cc[] = {"cc", "-O2", "-pthread", "-o", exe, src, NULL};
    struct run_result r;
    int rc = run_cmd(cc, NULL, NULL, NULL, 100, &r);
    unlink(src);
    cr_assert_eq(rc, 0, "cc timed out");
    cr_assert(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0, "cc failed: %s", r.err);
    run_result_free(&r);

    for (int run = 0; run < 20; run++) {
        const char *argv[] = {exe, NULL};
        rc = run_cmd(argv, GCM_LIB, NULL, NULL, 60, &r);
        cr_assert_eq(rc, 0, "run %d timed out", run);
        char st[64];
        cr_assert(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0, "run %d ended with %s; stderr: %s", run,
                  status_str(r.status, st, sizeof st), r.err);
        cr_assert_str_eq(r.out, expected, "run %d printed \"%s\"", run, r.out);
        cr_assert_eq(r.err_len, 0, "run %d wrote on stderr: %s", run, r.err);
        run_result_free(&r);
    }
    unlink(exe);
}
