/*
 * The RSS floor (issue #5): what gcmalloc keeps resident in a program that
 * barely allocates, and per thread.
 *
 *  - libgcc_s (the unwinder for GCMALLOC_LEAKCHECK_STACKS=1) is not mapped
 *    unless stacks are on: it was linked, and its pages (76-112 KiB) were
 *    resident in every program. With stacks on it is loaded (dlopen) before
 *    main, and the leak report still names the leaking function.
 *  - A thread's exit does not fault in its mcache's retired slots of classes
 *    it never used (34 KiB per mcache; on this kernel even a read of a fresh
 *    anonymous page costs a page: mincore says which were touched).
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "gcutil.h"
#include "alloc/mcache.h"
#include "alloc/sizeclass.h"

/* Prints whether libgcc_s is mapped, and leaks one object from leak_here. */
static const char maps_src[] =
    "#include <stdio.h>\n"
    "#include <stdlib.h>\n"
    "#include <string.h>\n"
    "void *keep;\n"
    "__attribute__((noinline)) void leak_here(void) { keep = malloc(4000); keep = 0; }\n"
    "int main(void) {\n"
    "    leak_here();\n"
    "    FILE *f = fopen(\"/proc/self/maps\", \"r\");\n"
    "    char line[512];\n"
    "    int gcc_s = 0;\n"
    "    while (f && fgets(line, sizeof line, f)) gcc_s |= strstr(line, \"libgcc_s\") != NULL;\n"
    "    printf(\"libgcc_s %s\\n\", gcc_s ? \"mapped\" : \"not mapped\");\n"
    "    return 0;\n"
    "}\n";

static struct run_result run_maps(const char *const *env) {
    return gct_run_ok(gct_compile("rss_floor_maps", maps_src, 0, "-rdynamic"), env);
}

Test(rss_floor, no_unwinder_unless_stacks_are_on, .timeout = 120) {
    const char *off[] = {NULL};
    struct run_result r = run_maps(off);
    cr_assert_str_eq(r.out, "libgcc_s not mapped\n", "GCMALLOC_GC=off: %s", r.out);
    run_result_free(&r);
    const char *leakcheck[] = {"GCMALLOC_GC=leakcheck", NULL};
    r = run_maps(leakcheck);
    cr_assert_str_eq(r.out, "libgcc_s not mapped\n", "leakcheck without stacks: %s", r.out);
    run_result_free(&r);
}

Test(rss_floor, stacks_load_the_unwinder_before_main, .timeout = 120) {
    const char *env[] = {"GCMALLOC_GC=leakcheck", "GCMALLOC_LEAKCHECK_STACKS=1", NULL};
    struct run_result r = run_maps(env);
    cr_assert_str_eq(r.out, "libgcc_s mapped\n", "%s", r.out);
    cr_assert_not_null(strstr(r.err, "#0 "), "no stack in the report:\n%s", r.err);
    cr_assert_not_null(strstr(r.err, " leak_here+0x"), "the leak's stack does not name leak_here:\n%s", r.err);
    run_result_free(&r);
}

/* ---- a thread's exit and its mcache ---- */

struct thread_view {
    mcache *c;
    bool used[GCM_NUM_SPAN_CLASSES]; /* classes with a current span at exit */
};

static void *one_small_object(void *arg) {
    struct thread_view *v = arg;
    free(opaque(malloc(16)));
    v->c = gcm_tls_own;
    for (unsigned i = 0; i < GCM_NUM_SPAN_CLASSES; i++) v->used[i] = v->c->alloc[i] != &gcm_empty_span;
    return NULL;
}

Test(rss_floor, thread_exit_leaves_unused_slots_untouched) {
    struct thread_view v;
    memset(&v, 0, sizeof v);
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, one_small_object, &v), 0);
    cr_assert_eq(pthread_join(t, NULL), 0);
    cr_assert_not_null(v.c);
    /* The slots live after the mcache (fixalloc memory: still mapped after
     * its free). Check every page that holds only rows of unused classes. */
    const size_t row = sizeof(mspan *[MCACHE_RETIRED]), page = (size_t)sysconf(_SC_PAGESIZE);
    uintptr_t rows = (uintptr_t)(v.c + 1);
    size_t checked = 0;
    for (uintptr_t p = (rows + page - 1) & ~(page - 1); p + page <= rows + GCM_NUM_SPAN_CLASSES * row; p += page) {
        size_t first = (p - rows) / row, last = (p + page - 1 - rows) / row;
        bool unused = true;
        for (size_t i = first; i <= last && i < GCM_NUM_SPAN_CLASSES; i++) unused &= !v.used[i];
        if (!unused) continue;
        unsigned char in_core = 1;
        cr_assert_eq(mincore((void *)p, page, &in_core), 0);
        cr_assert_eq(in_core & 1, 0, "page %#lx (slots of classes %zu-%zu, unused) was faulted in by the thread's exit",
                     (unsigned long)p, first, last);
        checked++;
    }
    cr_assert_geq(checked, 4, "only %zu pages of slots checked", checked);
}
