/*
 * C++: every form of operator new / delete goes through gcmalloc, and a
 * failing operator new throws std::bad_alloc. A C++ program compiled at test
 * time with g++ -std=c++17 (sized and aligned deallocation on) is run under
 * LD_PRELOAD=libgcmalloc.so and linked with libgcmalloc.a.
 *
 * For each form - new T, new T[n], nothrow, aligned (alignas types and
 * explicit std::align_val_t, 32 B .. 64 KiB), aligned arrays, aligned
 * nothrow, and the matching deletes: plain, sized, aligned, sized+aligned,
 * nothrow - it checks with gcm_get_stats that the allocation added exactly
 * one object of at least the requested size to gcmalloc's heap and that the
 * delete took it away again, plus the alignment. Then: new of an impossible
 * size throws std::bad_alloc (arrays too, aligned too), nothrow forms return
 * nullptr, a new_handler is called before the throw; and under RLIMIT_AS,
 * new in a loop ends in std::bad_alloc, after which freeing makes new work
 * again.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

static const char prog_src[] =
    "#include <dlfcn.h>\n"
    "#include <sys/resource.h>\n"
    "#include <cstdint>\n"
    "#include <cstdio>\n"
    "#include <cstdlib>\n"
    "#include <new>\n"
    "#include <vector>\n"
    "#include <gcmalloc.h>\n"
    "#ifdef LINKED\n"
    "static void (*get_stats)(gcm_stats *) = gcm_get_stats;\n"
    "#else\n"
    "static void (*get_stats)(gcm_stats *);\n"
    "#endif\n"
    "static int failures;\n"
    "#define CHECK(c, what) do { if (!(c)) { std::printf(\"FAIL %s: %s (line %d)\\n\", what, #c, __LINE__); failures++; } } while (0)\n"
    "static gcm_stats before, mid, after;\n"
    "static void snap(gcm_stats *s) { get_stats(s); }\n"
    "/* one object of >= n bytes appeared, aligned to a; then went away */\n"
    "static void check_new(const char *what, const void *p, size_t n, size_t a) {\n"
    "    CHECK(p != nullptr, what);\n"
    "    CHECK(mid.allocated_objects == before.allocated_objects + 1, what);\n"
    "    CHECK(mid.allocated_bytes >= before.allocated_bytes + n, what);\n"
    "    CHECK(((uintptr_t)p & (a - 1)) == 0, what);\n"
    "}\n"
    "static void check_delete(const char *what) {\n"
    "    CHECK(after.allocated_objects == before.allocated_objects, what);\n"
    "    CHECK(after.allocated_bytes == before.allocated_bytes, what);\n"
    "}\n"
    "struct Plain { char b[100]; };\n"
    "struct alignas(64) A64 { char b[200]; };\n"
    "struct alignas(4096) A4K { char b[5000]; };\n"
    "#define FORM(what, n, a, NEW, DELETE) do { snap(&before); auto p = NEW; snap(&mid); check_new(what, p, n, a); DELETE; snap(&after); check_delete(what); } while (0)\n"
    "static int handler_calls;\n"
    "static void handler() { handler_calls++; std::set_new_handler(nullptr); }\n"
    "int main() {\n"
    "#ifndef LINKED\n"
    "    get_stats = (void (*)(gcm_stats *))dlsym(RTLD_DEFAULT, \"gcm_get_stats\");\n"
    "    if (!get_stats) { std::puts(\"not on gcmalloc\"); return 1; }\n"
    "#endif\n"
    "    FORM(\"new T\", sizeof(Plain), 16, new Plain, delete p);\n"
    "    FORM(\"new T[]\", 1000, 16, new char[1000], delete[] p);\n"
    "    FORM(\"new T[] large\", 100000, 16, new char[100000], delete[] p);\n"
    "    FORM(\"nothrow new\", sizeof(Plain), 16, new (std::nothrow) Plain, delete p);\n"
    "    FORM(\"nothrow new[]\", 5000, 16, new (std::nothrow) char[5000], delete[] p);\n"
    "    FORM(\"operator new\", 777, 16, ::operator new(777), ::operator delete(p));\n"
    "    FORM(\"operator new sized delete\", 777, 16, ::operator new(777), ::operator delete(p, 777));\n"
    "    FORM(\"operator new[] sized delete[]\", 4000, 16, ::operator new[](4000), ::operator delete[](p, 4000));\n"
    "    FORM(\"operator new nothrow delete nothrow\", 300, 16, ::operator new(300, std::nothrow), ::operator delete(p, std::nothrow));\n"
    "    FORM(\"new alignas(64)\", sizeof(A64), 64, new A64, delete p);\n"
    "    FORM(\"new alignas(4096)\", sizeof(A4K), 4096, new A4K, delete p);\n"
    "    FORM(\"new alignas(64)[]\", 10 * sizeof(A64), 64, new A64[10], delete[] p);\n"
    "    FORM(\"nothrow new alignas(4096)\", sizeof(A4K), 4096, new (std::nothrow) A4K, delete p);\n"
    "    for (size_t a = 32; a <= 65536; a *= 2) {\n"
    "        FORM(\"operator new aligned\", 100, a, ::operator new(100, std::align_val_t(a)), ::operator delete(p, std::align_val_t(a)));\n"
    "        FORM(\"operator new aligned sized\", 3000, a, ::operator new(3000, std::align_val_t(a)), ::operator delete(p, 3000, std::align_val_t(a)));\n"
    "        FORM(\"operator new[] aligned\", 50000, a, ::operator new[](50000, std::align_val_t(a)), ::operator delete[](p, std::align_val_t(a)));\n"
    "        FORM(\"operator new[] aligned sized\", 64, a, ::operator new[](64, std::align_val_t(a)), ::operator delete[](p, 64, std::align_val_t(a)));\n"
    "        FORM(\"operator new aligned nothrow\", 10, a, ::operator new(10, std::align_val_t(a), std::nothrow), ::operator delete(p, std::align_val_t(a), std::nothrow));\n"
    "        FORM(\"operator new[] aligned nothrow\", 10, a, ::operator new[](10, std::align_val_t(a), std::nothrow), ::operator delete[](p, std::align_val_t(a), std::nothrow));\n"
    "    }\n"
    "    { std::vector<std::vector<int>> v(1000, std::vector<int>(100, 7)); snap(&mid); CHECK(mid.allocated_objects >= 1001, \"vector\"); }\n"
    "    volatile size_t huge = SIZE_MAX / 2;\n"
    "    int thrown = 0;\n"
    "    try { char *p = new char[huge]; p[0] = 1; } catch (const std::bad_alloc &) { thrown++; }\n"
    "    try { void *p = ::operator new(huge); ::operator delete(p); } catch (const std::bad_alloc &) { thrown++; }\n"
    "    try { void *p = ::operator new(huge, std::align_val_t(4096)); ::operator delete(p, std::align_val_t(4096)); } catch (const std::bad_alloc &) { thrown++; }\n"
    "    try { void *p = ::operator new[](huge, std::align_val_t(64)); ::operator delete[](p, std::align_val_t(64)); } catch (const std::bad_alloc &) { thrown++; }\n"
    "    CHECK(thrown == 4, \"bad_alloc\");\n"
    "    CHECK(::operator new(huge, std::nothrow) == nullptr, \"nothrow huge\");\n"
    "    CHECK(::operator new[](huge, std::align_val_t(256), std::nothrow) == nullptr, \"aligned nothrow huge\");\n"
    "    std::set_new_handler(handler);\n"
    "    try { void *p = ::operator new(huge); ::operator delete(p); } catch (const std::bad_alloc &) { thrown++; }\n"
    "    CHECK(handler_calls == 1 && thrown == 5, \"new_handler\");\n"
    "    /* Out of address space for real. */\n"
    "    struct rlimit rl; getrlimit(RLIMIT_AS, &rl);\n"
    "    FILE *f = std::fopen(\"/proc/self/statm\", \"r\"); unsigned long pages = 0;\n"
    "    if (!f || std::fscanf(f, \"%lu\", &pages) != 1) return 2;\n"
    "    std::fclose(f);\n"
    "    rl.rlim_cur = pages * 4096 + (256ul << 20); setrlimit(RLIMIT_AS, &rl);\n"
    "    std::vector<char *> blocks; blocks.reserve(100000);\n"
    "    bool caught = false;\n"
    "    try { for (int i = 0; i < 100000; i++) { blocks.push_back(new char[1 << 20]); blocks.back()[0] = 1; } } catch (const std::bad_alloc &) { caught = true; }\n"
    "    CHECK(caught && blocks.size() > 10, \"bad_alloc under RLIMIT_AS\");\n"
    "    size_t got = blocks.size();\n"
    "    for (char *b : blocks) delete[] b;\n"
    "    blocks.clear();\n"
    "    try { for (size_t i = 0; i < got; i++) blocks.push_back(new char[1 << 20]); } catch (const std::bad_alloc &) { CHECK(false, \"new after freeing\"); }\n"
    "    for (char *b : blocks) delete[] b;\n"
    "    if (failures) return 1;\n"
    "    std::puts(\"c++ ok\");\n"
    "    return 0;\n"
    "}\n";

static void build(const char *bin, int linked) {
    char src[512], lib[512];
    snprintf(src, sizeof src, "%s/cxx_probe.cpp", GCM_BUILD_DIR);
    snprintf(lib, sizeof lib, "%s/libgcmalloc.a", GCM_BUILD_DIR);
    cr_assert_eq(write_file_all(src, prog_src, strlen(prog_src)), 0);
    const char *inc = "-I" GCM_SOURCE_DIR "/include";
    const char *pre[] = {"g++", "-std=c++17", "-O1", "-fsized-deallocation", inc, "-o", bin, src, "-ldl", NULL};
    const char *lnk[] = {"g++", "-std=c++17", "-O1", "-fsized-deallocation", inc, "-DLINKED", "-o", bin, src, lib,
                         "-Wl,-u,malloc", "-pthread", "-ldl", NULL};
    struct run_result r;
    cr_assert_eq(run_cmd(linked ? lnk : pre, NULL, NULL, NULL, 180, &r), 0);
    cr_assert(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0, "g++ failed: %s", r.err);
    run_result_free(&r);
}

static void run(const char *bin, const char *preload) {
    const char *argv[] = {bin, NULL};
    struct run_result r;
    cr_assert_eq(run_cmd(argv, preload, NULL, NULL, 120, &r), 0, "timed out");
    char s[64];
    cr_assert(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0, "ended with %s; stdout: %s stderr: %.2000s",
              status_str(r.status, s, sizeof s), r.out, r.err);
    cr_assert_str_eq(r.out, "c++ ok\n", "stdout: %s", r.out);
    run_result_free(&r);
}

Test(cxx, every_operator_new_form_under_preload, .timeout = 200) {
    char bin[512];
    snprintf(bin, sizeof bin, "%s/cxx_probe_preload", GCM_BUILD_DIR);
    build(bin, 0);
    run(bin, GCM_LIB);
}

Test(cxx, every_operator_new_form_linked, .timeout = 200) {
    char bin[512];
    snprintf(bin, sizeof bin, "%s/cxx_probe_linked", GCM_BUILD_DIR);
    build(bin, 1);
    run(bin, NULL);
}

Test(cxx, the_check_fails_without_gcmalloc) {
    /* The same program on glibc's malloc must not pass (it cannot find
     * gcm_get_stats): the test can tell. */
    char bin[512];
    snprintf(bin, sizeof bin, "%s/cxx_probe_plain", GCM_BUILD_DIR);
    build(bin, 0);
    const char *argv[] = {bin, NULL};
    struct run_result r;
    cr_assert_eq(run_cmd(argv, NULL, NULL, NULL, 60, &r), 0);
    cr_assert_str_eq(r.out, "not on gcmalloc\n");
    run_result_free(&r);
}
