/*
 * consumer.c - a program linked with an installed gcmalloc (shared or static)
 * that checks its malloc family is gcmalloc's: blocks from malloc, from libc's
 * own allocations (strdup, stdio) and from C++-free realloc/calloc are all
 * known to gcm_usable_size (which aborts on a pointer gcmalloc did not hand
 * out), gcm_get_stats counts them, and the glibc heap (brk) never grows.
 * Prints "malloc: <object that defines malloc>" and "ok", exit 0.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <gcmalloc.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int fail(const char *what) {
    fprintf(stderr, "consumer: FAIL: %s\n", what);
    return 1;
}

int main(void) {
    void *brk0 = sbrk(0);
    struct gcm_stats a, b, c;
    gcm_get_stats(&a);
    enum { N = 64, SIZE = 100000 };
    void *v[N];
    for (int i = 0; i < N; i++) {
        v[i] = malloc(SIZE);
        if (!v[i]) return fail("malloc returned NULL");
        memset(v[i], i, SIZE);
    }
    gcm_get_stats(&b);
    if (b.allocated_objects < a.allocated_objects + N) return fail("gcm_get_stats does not see malloc's blocks");
    if (b.large_bytes < a.large_bytes + (size_t)N * SIZE) return fail("large bytes not counted");
    for (int i = 0; i < N; i++) {
        if (malloc_usable_size(v[i]) != gcm_usable_size(v[i])) return fail("malloc_usable_size differs");
        free(v[i]);
    }
    gcm_get_stats(&c);
    if (c.allocated_objects + N > b.allocated_objects) return fail("free does not reach gcmalloc");

    /* libc's own allocations go to gcmalloc too. */
    char *s = strdup("a string from strdup");
    void *z = calloc(10, 10), *r = realloc(NULL, 50);
    if (!s || !z || !r) return fail("strdup/calloc/realloc returned NULL");
    if (gcm_usable_size(s) < 21 || gcm_usable_size(z) < 100 || gcm_usable_size(r) < 50)
        return fail("gcm_usable_size too small");
    char *a2 = gcm_malloc(10);
    free(a2); /* gcm_malloc's blocks and malloc's are the same heap */
    gcm_free(s);
    free(z);
    free(r);
    struct mallinfo2 mi = mallinfo2();
    if (mi.arena == 0 || mi.arena < mi.uordblks) return fail("mallinfo2 is not gcmalloc's");

    Dl_info info;
    if (!dladdr((void *)malloc, &info) || !info.dli_fname) return fail("dladdr(malloc)");
    printf("malloc: %s\n", info.dli_fname);
    fflush(stdout); /* stdio's buffer came from malloc as well */
    if (sbrk(0) != brk0) return fail("the glibc heap (brk) grew");
    printf("ok\n");
    return 0;
}
