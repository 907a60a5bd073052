/*
 * Start-up and shutdown around gcmalloc, in programs compiled at test time
 * (C and C++, with cc and g++) and run under LD_PRELOAD=libgcmalloc.so and
 * linked with libgcmalloc.a:
 *  - dlopen / dlclose, 100 times and from 2 threads at once, of a C library
 *    whose constructor allocates (malloc, strdup, realloc) and whose
 *    destructor checks and frees, and of a C++ library with static
 *    std::string / std::map / std::vector objects built at load and
 *    destroyed at unload;
 *  - atexit handlers (registered before and after threads ran, one from a
 *    thread) that allocate and free, and free blocks that exited threads
 *    allocated; a destructor function that allocates after main returns;
 *  - C++ thread_local objects whose destructors allocate and free (a
 *    std::string, a std::vector, a std::map) and pthread key destructors
 *    created after the thread's first allocation, which glibc runs after
 *    gcmalloc's own thread-exit destructor; 200 threads.
 * Each program prints a fixed line and exits 0; a crash, abort or hang
 * fails the test. (A program whose first malloc comes from a thread:
 * test_first_malloc_thread.c; C-level thread-exit destructors:
 * test_thread_dtors.c.)
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

static const char lib_c_src[] =
    "#include <stdlib.h>\n"
    "#include <string.h>\n"
    "static char *tab[500];\n"
    "static char *big;\n"
    "__attribute__((constructor)) static void init(void) {\n"
    "    for (int i = 0; i < 500; i++) {\n"
    "        char buf[64]; int n = 1 + i % 50; memset(buf, 'a' + i % 26, n); buf[n] = 0;\n"
    "        tab[i] = strdup(buf);\n"
    "        if (i % 7 == 0) tab[i] = realloc(tab[i], 200 + i);\n"
    "    }\n"
    "    big = malloc(1 << 20); memset(big, 3, 1 << 20);\n"
    "}\n"
    "__attribute__((destructor)) static void fini(void) {\n"
    "    for (int i = 0; i < 500; i++) {\n"
    "        if (tab[i][0] != 'a' + i % 26) abort();\n"
    "        free(tab[i]);\n"
    "    }\n"
    "    if (big[12345] != 3) abort();\n"
    "    free(big);\n"
    "}\n"
    "int lib_c_count(void) { return 500; }\n";

static const char lib_cxx_src[] =
    "#include <map>\n"
    "#include <string>\n"
    "#include <vector>\n"
    "#include <cstdlib>\n"
    "struct Holder {\n"
    "    std::map<int, std::string> m; std::vector<std::string> v; std::string s;\n"
    "    Holder() { for (int i = 0; i < 300; i++) { m[i] = std::string(i % 100 + 1, 'x'); v.push_back(std::to_string(i)); } s.assign(5000, 'q'); }\n"
    "    ~Holder() { if (m.size() != 300 || v[299] != \"299\" || s.size() != 5000) std::abort(); std::string t(3000, 'z'); v.clear(); m.clear(); }\n"
    "};\n"
    "static Holder holder;\n"
    "static std::string global_string(100000, 'g');\n"
    "extern \"C\" int lib_cxx_count(void) { return (int)holder.m.size() + (global_string.size() == 100000); }\n";

static const char main_src[] =
    "#include <dlfcn.h>\n"
    "#include <pthread.h>\n"
    "#include <cstdio>\n"
    "#include <cstdlib>\n"
    "#include <cstring>\n"
    "#include <map>\n"
    "#include <string>\n"
    "#include <vector>\n"
    "static const char *lib_c, *lib_cxx;\n"
    "static void *left_by_threads[200];\n"
    "static void cycle(int n) {\n"
    "    for (int i = 0; i < n; i++) {\n"
    "        void *h = dlopen(lib_c, RTLD_NOW | RTLD_LOCAL);\n"
    "        void *g = dlopen(lib_cxx, RTLD_NOW | RTLD_LOCAL);\n"
    "        if (!h || !g) { std::printf(\"dlopen: %s\\n\", dlerror()); std::exit(1); }\n"
    "        int (*fc)(void) = (int (*)(void))dlsym(h, \"lib_c_count\");\n"
    "        int (*fx)(void) = (int (*)(void))dlsym(g, \"lib_cxx_count\");\n"
    "        if (!fc || !fx || fc() != 500 || fx() != 301) { std::puts(\"library state\"); std::exit(1); }\n"
    "        if (dlclose(g) || dlclose(h)) { std::puts(\"dlclose\"); std::exit(1); }\n"
    "    }\n"
    "}\n"
    "static void *dl_thread(void *) { cycle(50); return nullptr; }\n"
    "struct TLObj {\n"
    "    std::vector<std::string> v; std::map<int, int> m;\n"
    "    TLObj() { for (int i = 0; i < 50; i++) { v.push_back(std::string(i * 10 + 1, 'v')); m[i] = i; } }\n"
    "    ~TLObj() {\n"
    "        if (v.size() != 50 || m.size() != 50) std::abort();\n"
    "        std::string late(4000, 'l'); std::vector<int> w(1000, 1); late += std::to_string(w[999]);\n"
    "        void *p = std::malloc(70000); std::memset(p, 1, 70000); std::free(p);\n"
    "    }\n"
    "};\n"
    "thread_local TLObj tl_obj;\n"
    "thread_local std::string tl_str(300, 's');\n"
    "static pthread_key_t late_key;\n"
    "static void late_key_dtor(void *v) {\n"
    "    std::free(v);\n"
    "    for (int i = 0; i < 20; i++) { void *p = std::malloc(i * 100 + 1); std::memset(p, 2, i * 100 + 1); std::free(p); }\n"
    "    std::string s(2000, 'k');\n"
    "}\n"
    "static void *tl_thread(void *arg) {\n"
    "    long id = (long)arg;\n"
    "    tl_obj.v.push_back(\"more\"); tl_obj.v.pop_back(); tl_str += 'x';\n"
    "    pthread_setspecific(late_key, std::malloc(100));\n"
    "    left_by_threads[id] = std::malloc(id * 50 + 1);\n"
    "    std::memset(left_by_threads[id], 7, id * 50 + 1);\n"
    "    return nullptr;\n"
    "}\n"
    "static void at_exit_early() {\n"
    "    for (int i = 0; i < 200; i++) { if (((unsigned char *)left_by_threads[i])[0] != 7) std::abort(); std::free(left_by_threads[i]); }\n"
    "    std::vector<std::string> v(1000, std::string(100, 'e'));\n"
    "}\n"
    "static void at_exit_late() { std::map<int, std::string> m; for (int i = 0; i < 500; i++) m[i] = std::to_string(i); }\n"
    "static void at_exit_from_thread() { void *p = std::calloc(1000, 100); std::free(p); }\n"
    "static void *reg_thread(void *) { std::atexit(at_exit_from_thread); return nullptr; }\n"
    "__attribute__((destructor)) static void after_main() { char *p = (char *)std::malloc(12345); std::memset(p, 9, 12345); std::free(p); }\n"
    "int main(int argc, char **argv) {\n"
    "    lib_c = argv[1]; lib_cxx = argv[2];\n"
    "    std::atexit(at_exit_early);\n"
    "    cycle(50);\n"
    "    pthread_t a, b;\n"
    "    pthread_create(&a, nullptr, dl_thread, nullptr); pthread_create(&b, nullptr, dl_thread, nullptr);\n"
    "    pthread_join(a, nullptr); pthread_join(b, nullptr);\n"
    "    pthread_key_create(&late_key, late_key_dtor);\n"
    "    for (long i = 0; i < 200; i += 8) {\n"
    "        pthread_t t[8];\n"
    "        for (long j = 0; j < 8; j++) pthread_create(&t[j], nullptr, tl_thread, (void *)(i + j));\n"
    "        for (long j = 0; j < 8; j++) pthread_join(t[j], nullptr);\n"
    "    }\n"
    "    pthread_t r; pthread_create(&r, nullptr, reg_thread, nullptr); pthread_join(r, nullptr);\n"
    "    std::atexit(at_exit_late);\n"
    "    std::puts(\"lifecycle ok\");\n"
    "    return 0;\n"
    "}\n";

static void compile(const char *const *argv) {
    struct run_result r;
    cr_assert_eq(run_cmd(argv, NULL, NULL, NULL, 180, &r), 0, "%s timed out", argv[0]);
    cr_assert(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0, "%s failed: %s", argv[0], r.err);
    run_result_free(&r);
}

static char lib_c[512], lib_cxx[512];

static void build_libs(void) {
    char src[512];
    snprintf(src, sizeof src, "%s/lifecycle_lib_c.c", GCM_BUILD_DIR);
    cr_assert_eq(write_file_all(src, lib_c_src, strlen(lib_c_src)), 0);
    snprintf(lib_c, sizeof lib_c, "%s/liblifecycle_c.so", GCM_BUILD_DIR);
    const char *cc[] = {"cc", "-O1", "-shared", "-fPIC", "-o", lib_c, src, NULL};
    compile(cc);
    snprintf(src, sizeof src, "%s/lifecycle_lib_cxx.cpp", GCM_BUILD_DIR);
    cr_assert_eq(write_file_all(src, lib_cxx_src, strlen(lib_cxx_src)), 0);
    snprintf(lib_cxx, sizeof lib_cxx, "%s/liblifecycle_cxx.so", GCM_BUILD_DIR);
    const char *cxx[] = {"g++", "-O1", "-shared", "-fPIC", "-o", lib_cxx, src, NULL};
    compile(cxx);
}

static void build_main(const char *bin, int linked) {
    char src[512], lib[512];
    snprintf(src, sizeof src, "%s/lifecycle_main.cpp", GCM_BUILD_DIR);
    snprintf(lib, sizeof lib, "%s/libgcmalloc.a", GCM_BUILD_DIR);
    cr_assert_eq(write_file_all(src, main_src, strlen(main_src)), 0);
    const char *pre[] = {"g++", "-O1", "-pthread", "-o", bin, src, "-ldl", NULL};
    const char *lnk[] = {"g++", "-O1", "-pthread", "-rdynamic", "-o", bin, src, lib, "-Wl,-u,malloc", "-ldl", NULL};
    compile(linked ? lnk : pre);
}

static void run(const char *bin, const char *preload) {
    const char *argv[] = {bin, lib_c, lib_cxx, NULL};
    struct run_result r;
    cr_assert_eq(run_cmd(argv, preload, NULL, NULL, 200, &r), 0, "timed out; stderr: %s", r.err);
    char s[64];
    cr_assert(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0, "ended with %s; stdout: %s stderr: %.2000s",
              status_str(r.status, s, sizeof s), r.out, r.err);
    cr_assert_str_eq(r.out, "lifecycle ok\n", "stdout: %s stderr: %s", r.out, r.err);
    cr_assert_str_eq(r.err, "", "stderr: %s", r.err);
    run_result_free(&r);
}

Test(lifecycle, dlopen_atexit_thread_local_under_preload, .timeout = 280) {
    build_libs();
    char bin[512];
    snprintf(bin, sizeof bin, "%s/lifecycle_preload", GCM_BUILD_DIR);
    build_main(bin, 0);
    run(bin, GCM_LIB);
}

Test(lifecycle, dlopen_atexit_thread_local_linked, .timeout = 280) {
    build_libs();
    char bin[512];
    snprintf(bin, sizeof bin, "%s/lifecycle_linked", GCM_BUILD_DIR);
    build_main(bin, 1);
    run(bin, NULL);
}
