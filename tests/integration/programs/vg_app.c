/*
 * vg_app.c - a program linked with a GCMALLOC_VALGRIND build of gcmalloc,
 * run under valgrind by tests/integration/test_valgrind.c. One scenario per
 * run (argv[1]):
 *   uaf    reads a byte of a freed block (memcheck: invalid read in main);
 *   leak   loses a small and a large block (memcheck: definitely lost);
 *   clean  threads doing malloc, calloc, realloc in place and moving, aligned
 *          allocations, writes up to malloc_usable_size, and frees of each
 *          other's blocks; everything freed (memcheck: no error, no leak).
 * It prints the allocator that serves malloc (malloc_lib=...), so the test
 * knows the client requests came from gcmalloc.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define THREADS 3
#define ROUNDS 300
#define SLOTS 64

static void *volatile keep; /* defeats dead-store elimination */

static int uaf(void) {
    char *p = malloc(40);
    strcpy(p, "gcmalloc");
    free(p);
    return ((volatile char *)p)[3] == 'm' ? 1 : 2;
}

static int leak(void) {
    keep = malloc(1234);
    memset(keep, 1, 1234);
    keep = malloc(100000); /* the first block's only pointer is gone */
    memset(keep, 2, 100000);
    keep = NULL;
    return 0;
}

/* Each thread hands every other of its blocks to the next thread to free. */
static void *_Atomic handoff[THREADS][SLOTS];

static int fail(const char *what) {
    fprintf(stderr, "vg_app: %s\n", what);
    exit(3);
}

static void *worker(void *arg) {
    unsigned id = (unsigned)(uintptr_t)arg, seed = id * 2654435761u + 1;
    void *mine[SLOTS] = {0};
    for (int r = 0; r < ROUNDS; r++) {
        seed = seed * 1103515245u + 12345u;
        unsigned k = (seed >> 8) % SLOTS;
        size_t n = (seed >> 4) % 4 == 0 ? 40000 + (seed >> 16) % 60000 : 1 + (seed >> 16) % 3000;
        free(mine[k]);
        switch ((seed >> 20) % 5) {
        case 0: {
            unsigned char *z = calloc(n, 1);
            for (size_t i = 0; i < n; i++)
                if (z[i]) fail("calloc block not zero");
            mine[k] = z;
            break;
        }
        case 1: {
            void *a = NULL;
            if (posix_memalign(&a, 64 << (seed % 4), n) || ((uintptr_t)a & 63)) fail("posix_memalign");
            mine[k] = a;
            break;
        }
        case 2:
            mine[k] = aligned_alloc(4096, 4096 * (1 + n / 4096));
            break;
        default:
            mine[k] = malloc(n);
        }
        if (!mine[k]) fail("allocation failed");
        size_t usable = malloc_usable_size(mine[k]);
        memset(mine[k], (int)k, usable);
        /* realloc: shrink in place, then grow (in place or moved); the
         * first bytes must survive. */
        char *q = realloc(mine[k], usable / 2 + 1);
        q = realloc(q, usable * 2 + 100);
        if (!q || q[0] != (char)k) fail("realloc lost the contents");
        mine[k] = q;
        void *give = atomic_exchange(&handoff[(id + 1) % THREADS][k], mine[k]);
        mine[k] = NULL;
        free(give);
        free(atomic_exchange(&handoff[id][(k + 1) % SLOTS], NULL));
    }
    for (int k = 0; k < SLOTS; k++) free(mine[k]);
    return NULL;
}

static int clean(void) {
    pthread_t t[THREADS];
    for (unsigned i = 0; i < THREADS; i++)
        if (pthread_create(&t[i], NULL, worker, (void *)(uintptr_t)i)) fail("pthread_create");
    for (unsigned i = 0; i < THREADS; i++) pthread_join(t[i], NULL);
    for (unsigned i = 0; i < THREADS; i++)
        for (int k = 0; k < SLOTS; k++) free(atomic_exchange(&handoff[i][k], NULL));
    return 0;
}

int main(int argc, char **argv) {
    Dl_info info;
    if (dladdr((void *)malloc, &info)) printf("malloc_lib=%s\n", info.dli_fname);
    fflush(stdout);
    if (argc == 2 && !strcmp(argv[1], "uaf")) return uaf();
    if (argc == 2 && !strcmp(argv[1], "leak")) return leak();
    if (argc == 2 && !strcmp(argv[1], "clean")) return clean();
    fprintf(stderr, "usage: vg_app uaf|leak|clean\n");
    return 2;
}
