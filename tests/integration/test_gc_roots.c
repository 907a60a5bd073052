/*
 * The collector's roots, one test per kind (collect mode, in a forked
 * child): an object reachable only from
 *   - a global (.data, .bss, deep inside a big .bss array),
 *   - a deep stack frame (the pointer deep in the stack, and at its top
 *     while the collection runs deep down),
 *   - another thread's stack, that thread blocked in read() and never having
 *     allocated (and one spinning, never making a system call),
 *   - another thread's register (x86-64: the thread spins in asm with the
 *     pointer in r13 and nowhere in memory),
 *   - a __thread variable (of the main thread; of another thread that never
 *     allocated),
 *   - an mmap'ed range registered with gcm_add_roots (and, after
 *     gcm_remove_roots, the object is reclaimed),
 *   - an interior pointer (small object, last byte; a large object's later
 *     page),
 *   - a global and a __thread variable of a shared object dlopen'ed after the
 *     collector started,
 * survives many collections while lots of same-sized garbage is allocated
 * and scribbled on (see tests/gcutil.h: a wrongly freed object is
 * overwritten, or gcm_usable_size aborts on it). And the negative ones:
 * pointers inside a gcm_malloc_noscan object keep nothing alive; a pointer
 * one past the end of an object does not keep it alive; a pointer to a slot
 * reserved in its owner's cache, or to a free slot, does not make the slot's
 * contents a root. And an object known by an interior pointer is scanned
 * whole.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "gcutil.h"

#define ROUNDS 30
#define NGARBAGE 20000
#define WSIZE 64

/* ------------------------------------------------------------------ globals */

static void *g_bss_root;
static void *g_data_root = (void *)&g_bss_root; /* initialised: lives in .data */
static void *g_big_bss[200000];                 /* 1.6 MB of .bss */

GCT_NOINLINE static void global_child_setup(struct gct_witness *w) {
    g_bss_root = gct_witness_new(&w[0], WSIZE, 1, 0, "witness in .bss");
    g_data_root = gct_witness_new(&w[1], WSIZE, 2, 0, "witness in .data");
    g_big_bss[177777] = gct_witness_new(&w[2], WSIZE, 3, 0, "witness deep in a .bss array");
}

static void global_child(void *arg) {
    gct_collect_mode(10);
    static struct gct_witness w[3];
    global_child_setup(w);
    gct_clobber_stack();
    struct gct_root roots[3] = {
        {&w[0], (void *const volatile *)&g_bss_root, 0},
        {&w[1], (void *const volatile *)&g_data_root, 0},
        {&w[2], (void *const volatile *)&g_big_bss[177777], 0},
    };
    gct_churn(roots, 3, ROUNDS, NGARBAGE, WSIZE);
}

Test(gc_roots, global_variables, .timeout = 60) {
    gct_run_child(global_child, NULL, 50);
}

/* ------------------------------------------------------------------ deep stack */

#define DEPTH 2500

struct deep_ctx {
    struct gct_witness w[2];
    void *const volatile *top_slot;
};

/* At the bottom: the second witness lives in this (deep) frame; the first in
 * the frame at the top of the recursion. */
GCT_NOINLINE static void deep_bottom(struct deep_ctx *c) {
    void *volatile slot = gct_witness_new(&c->w[1], WSIZE, 12, 0, "witness in a frame ~1.5 MB deep");
    gct_clobber_stack();
    struct gct_root roots[2] = {
        {&c->w[0], c->top_slot, 0},
        {&c->w[1], (void *const volatile *)&slot, 0},
    };
    gct_churn(roots, 2, ROUNDS, NGARBAGE, WSIZE);
    slot = NULL;
}

GCT_NOINLINE static int deep_recurse(struct deep_ctx *c, int depth) {
    char pad[512];
    memset(pad, depth & 0x7f, sizeof pad);
    __asm__ volatile("" : : "r"(pad) : "memory");
    if (depth == 0)
        deep_bottom(c);
    else
        deep_recurse(c, depth - 1);
    __asm__ volatile("" : : "r"(pad) : "memory");
    return pad[depth % 512];
}

static void deep_stack_child(void *arg) {
    gct_collect_mode(10);
    static struct deep_ctx c;
    void *volatile top = gct_witness_new(&c.w[0], WSIZE, 11, 0, "witness at the top of a deep stack");
    c.top_slot = (void *const volatile *)&top;
    gct_clobber_stack();
    deep_recurse(&c, DEPTH);
    top = NULL;
}

Test(gc_roots, deep_stack_frame, .timeout = 60) {
    gct_run_child(deep_stack_child, NULL, 50);
}

/* ------------------------------------------------------------------ other threads */

static uintptr_t thr_hidden;
static void *const volatile *thr_slot;
static int thr_ready[2], thr_go[2];
static atomic_int thr_stop;

/* Never allocates: un-hides the pointer into a stack slot, reports, blocks
 * in read() until told to finish. */
static void *blocked_holder(void *arg) {
    void *volatile slot = gct_unhide(thr_hidden);
    thr_slot = (void *const volatile *)&slot;
    char ch = 1;
    if (write(thr_ready[1], &ch, 1) != 1)
        _exit(70);
    if (read(thr_go[0], &ch, 1) != 1)
        _exit(71);
    slot = NULL;
    return NULL;
}

/* Never allocates, never makes a system call while the collections run. */
static void *spinning_holder(void *arg) {
    void *volatile slot = gct_unhide(thr_hidden);
    thr_slot = (void *const volatile *)&slot;
    char ch = 1;
    if (write(thr_ready[1], &ch, 1) != 1)
        _exit(70);
    while (!atomic_load_explicit(&thr_stop, memory_order_relaxed))
        __asm__ volatile("pause" ::: "memory");
    slot = NULL;
    return NULL;
}

/* Start holder thread fn with a fresh witness hidden in thr_hidden (the
 * thread un-hides it into the place under test), and wait until it holds it. */
static pthread_t start_holder(struct gct_witness *w, int seed, const char *what, void *(*fn)(void *)) {
    if (pipe(thr_ready) || pipe(thr_go))
        CHILD_FAIL(93, "pipe");
    gct_witness_new(w, WSIZE, seed, 0, what);
    thr_hidden = w->hidden;
    gct_clobber_stack();
    pthread_t t;
    if (pthread_create(&t, NULL, fn, NULL))
        CHILD_FAIL(94, "pthread_create");
    char ch;
    if (read(thr_ready[0], &ch, 1) != 1)
        CHILD_FAIL(95, "read");
    return t;
}

/* Let the holder go (whether it spins or waits on thr_go) and join it. */
static void finish_holder(pthread_t t) {
    char ch = 0;
    atomic_store(&thr_stop, 1);
    if (write(thr_go[1], &ch, 1) != 1)
        CHILD_FAIL(96, "write");
    pthread_join(t, NULL);
}

static void thread_stack_child(void *arg) {
    void *(*fn)(void *) = arg;
    gct_collect_mode(10);
    static struct gct_witness w;
    pthread_t t = start_holder(&w, 21, "witness on another thread's stack", fn);
    thr_hidden = 0;
    gct_clobber_stack();
    struct gct_root roots[1] = {{&w, thr_slot, 0}};
    gct_churn(roots, 1, ROUNDS, NGARBAGE, WSIZE);
    finish_holder(t);
}

Test(gc_roots, blocked_thread_stack_never_allocated, .timeout = 60) {
    gct_run_child(thread_stack_child, (void *)blocked_holder, 50);
}

Test(gc_roots, running_thread_stack_never_allocated, .timeout = 60) {
    gct_run_child(thread_stack_child, (void *)spinning_holder, 50);
}

/* ------------------------------------------------------------------ registers */
#if defined(__x86_64__)
static volatile uintptr_t reg_seen;

/* The pointer is only in r13 while the thread spins (the hidden value is
 * XORed into r13 inside the asm; nothing is written to memory until the
 * flag is set). Then it writes r13 to reg_seen so the main thread can
 * check the register still held the pointer. */
static void *register_holder(void *arg) {
    uintptr_t h = thr_hidden, key = GCT_KEY;
    char ch = 1;
    if (write(thr_ready[1], &ch, 1) != 1)
        _exit(70);
    __asm__ volatile("mov %[h], %%r13\n\t"
                     "xor %[k], %%r13\n\t"
                     "xor %[h], %[h]\n\t"
                     "xor %[k], %[k]\n\t"
                     "1: pause\n\t"
                     "cmpl $0, %[stop]\n\t"
                     "je 1b\n\t"
                     "mov %%r13, %[seen]\n\t"
                     "xor %%r13, %%r13\n\t"
                     : [h] "+r"(h), [k] "+r"(key), [seen] "=m"(reg_seen)
                     : [stop] "m"(thr_stop)
                     : "r13", "memory", "cc");
    return NULL;
}

static void register_child(void *arg) {
    gct_collect_mode(10);
    static struct gct_witness w;
    pthread_t t = start_holder(&w, 31, "witness in another thread's register", register_holder);
    tu_sleep_ms(20); /* let it enter the loop */
    gct_clobber_stack();
    /* The register cannot be read from here: churn, and check the witness
     * once the thread has stopped and stored r13. */
    struct gcm_stats s0, s1;
    gcm_get_stats(&s0);
    for (int r = 0; r < ROUNDS; r++) {
        gct_garbage(NGARBAGE, WSIZE);
        gct_clobber_stack();
        gcm_collect();
    }
    gcm_get_stats(&s1);
    finish_holder(t);
    CHILD_CHECK(s1.gc_freed_objects - s0.gc_freed_objects >= (size_t)ROUNDS * NGARBAGE / 2, 84,
                "the collections reclaimed only %zu garbage objects", s1.gc_freed_objects - s0.gc_freed_objects);
    gct_witness_check(&w, reg_seen, 0, "(held in r13 of a spinning thread during 30 collections)");
}

Test(gc_roots, running_thread_register, .timeout = 60) {
    gct_run_child(register_child, NULL, 50);
}
#endif

/* ------------------------------------------------------------------ __thread */

static __thread void *tls_root;
static __thread char tls_pad[4096] __attribute__((unused));
static __thread void *tls_root2;

GCT_NOINLINE static void tls_main_setup(struct gct_witness *w) {
    tls_root = gct_witness_new(&w[0], WSIZE, 41, 0, "witness in the main thread's __thread variable");
    tls_root2 = gct_witness_new(&w[1], WSIZE, 42, 0, "witness in a second __thread variable");
}

static void tls_main_child(void *arg) {
    gct_collect_mode(10);
    static struct gct_witness w[2];
    tls_main_setup(w);
    gct_clobber_stack();
    struct gct_root roots[2] = {
        {&w[0], (void *const volatile *)&tls_root, 0},
        {&w[1], (void *const volatile *)&tls_root2, 0},
    };
    gct_churn(roots, 2, ROUNDS, NGARBAGE, WSIZE);
}

Test(gc_roots, thread_local_main_thread, .timeout = 60) {
    gct_run_child(tls_main_child, NULL, 50);
}

/* Never allocates: moves the pointer into its __thread variable (nothing on
 * its stack), blocks. */
static void *tls_holder(void *arg) {
    tls_root = gct_unhide(thr_hidden);
    thr_slot = (void *const volatile *)&tls_root;
    char ch = 1;
    if (write(thr_ready[1], &ch, 1) != 1)
        _exit(70);
    if (read(thr_go[0], &ch, 1) != 1)
        _exit(71);
    tls_root = NULL;
    return NULL;
}

static void tls_thread_child(void *arg) {
    gct_collect_mode(10);
    static struct gct_witness w;
    pthread_t t = start_holder(&w, 43, "witness in another thread's __thread variable", tls_holder);
    thr_hidden = 0;
    gct_clobber_stack();
    struct gct_root roots[1] = {{&w, thr_slot, 0}};
    gct_churn(roots, 1, ROUNDS, NGARBAGE, WSIZE);
    finish_holder(t);
}

Test(gc_roots, thread_local_other_thread_never_allocated, .timeout = 60) {
    gct_run_child(tls_thread_child, NULL, 50);
}

/* ------------------------------------------------------------------ gcm_add_roots */

#define REGION (1 << 20)
static uintptr_t region_hidden_slot;

GCT_NOINLINE static void *region_setup(struct gct_witness *w, char *region) {
    void **slot = (void **)(region + REGION / 2 + 8);
    *slot = gct_witness_new(w, WSIZE, 51, 0, "witness in a gcm_add_roots range");
    return slot;
}

static void add_roots_child(void *arg) {
    gct_collect_mode(10);
    char *region = mmap(NULL, REGION, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (region == MAP_FAILED)
        CHILD_FAIL(93, "mmap");
    gcm_add_roots(region, REGION);
    static struct gct_witness w;
    void *slot = region_setup(&w, region);
    gct_clobber_stack();
    struct gct_root roots[1] = {{&w, (void *const volatile *)slot, 0}};
    gct_churn(roots, 1, ROUNDS, NGARBAGE, WSIZE);
    gcm_remove_roots(region);
    munmap(region, REGION);
}

Test(gc_roots, registered_mmap_range, .timeout = 60) {
    gct_run_child(add_roots_child, NULL, 50);
}

/* After gcm_remove_roots the range is not scanned: a large object known
 * only from it is reclaimed by the next collection. */
GCT_NOINLINE static void region_setup_large(char *region, size_t n) {
    void *p = malloc(n);
    if (!p)
        CHILD_FAIL(91, "malloc");
    memset(p, 0x5c, n);
    *(void **)(region + 4096) = p;
    region_hidden_slot = gct_hide(p);
}

GCT_NOINLINE static int region_object_intact(void) {
    return memcmp(gct_unhide(region_hidden_slot), "\x5c\x5c\x5c\x5c", 4) == 0;
}

static void remove_roots_child(void *arg) {
    gct_collect_mode(-1);
    char *region = mmap(NULL, REGION, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (region == MAP_FAILED)
        CHILD_FAIL(93, "mmap");
    gcm_add_roots(region, REGION);
    const size_t big = 3 << 20;
    region_setup_large(region, big);
    size_t a = gct_allocated_after_collect();
    size_t b = gct_allocated_after_collect();
    CHILD_CHECK(b == a, 60, "allocated_bytes moved from %zu to %zu between two collections with nothing done", a,
                b);
    CHILD_CHECK(region_object_intact(), 61, "the registered object changed");
    gct_clobber_stack();
    gcm_remove_roots(region);
    size_t c = gct_allocated_after_collect();
    CHILD_CHECK(a - c >= big, 62,
                "after gcm_remove_roots, the %zu-byte object known only from the range was not reclaimed "
                "(allocated_bytes %zu -> %zu)",
                big, a, c);
    munmap(region, REGION);
}

Test(gc_roots, removed_range_no_longer_a_root, .timeout = 60) {
    gct_run_child(remove_roots_child, NULL, 50);
}

/* ------------------------------------------------------------------ interior pointers */

#define LARGE_W (200 * 1024)
static void *g_interior[3];

GCT_NOINLINE static void interior_setup(struct gct_witness *w) {
    g_interior[0] = (char *)gct_witness_new(&w[0], WSIZE, 61, 0, "witness known by a pointer to its middle") + 24;
    g_interior[1] = (char *)gct_witness_new(&w[1], WSIZE, 62, 0, "witness known by a pointer to its last byte") +
                    WSIZE - 1;
    g_interior[2] = (char *)gct_witness_new(&w[2], LARGE_W, 63, 0,
                                            "large witness known by a pointer into its 20th page") +
                    20 * 8192 + 8;
}

static void interior_child(void *arg) {
    gct_collect_mode(10);
    static struct gct_witness w[3];
    interior_setup(w);
    gct_clobber_stack();
    struct gct_root roots[3] = {
        {&w[0], (void *const volatile *)&g_interior[0], 24},
        {&w[1], (void *const volatile *)&g_interior[1], WSIZE - 1},
        {&w[2], (void *const volatile *)&g_interior[2], 20 * 8192 + 8},
    };
    gct_churn(roots, 3, ROUNDS, NGARBAGE, WSIZE);
    /* Large garbage too, so the large witness's pages would be reused. */
    gct_churn(roots, 3, 10, 200, LARGE_W);
}

Test(gc_roots, interior_pointers, .timeout = 60) {
    gct_run_child(interior_child, NULL, 50);
}

/* ------------------------------------------------------------------ dlopen'ed library */

static const char dl_src[] = "void *dl_global;\n"
                             "static __thread void *dl_tls;\n"
                             "void **dl_tls_addr(void) { return &dl_tls; }\n"
                             "int dl_pad[100000];\n";

static const char *dl_path;

static void dlopen_child(void *arg) {
    gct_collect_mode(10);
    /* The collector has run before the library is loaded. */
    gct_garbage(NGARBAGE, WSIZE);
    gcm_collect();
    void *h = dlopen(dl_path, RTLD_NOW | RTLD_LOCAL);
    if (!h)
        CHILD_FAIL(93, "dlopen %s: %s", dl_path, dlerror());
    void **glob = dlsym(h, "dl_global");
    void **(*tls_addr)(void) = (void **(*)(void))dlsym(h, "dl_tls_addr");
    if (!glob || !tls_addr)
        CHILD_FAIL(93, "dlsym");
    void **tls = tls_addr();
    static struct gct_witness w[2];
    *glob = gct_witness_new(&w[0], WSIZE, 71, 0, "witness in a global of a dlopen'ed library");
    *tls = gct_witness_new(&w[1], WSIZE, 72, 0, "witness in a __thread variable of a dlopen'ed library");
    gct_clobber_stack();
    struct gct_root roots[2] = {
        {&w[0], (void *const volatile *)glob, 0},
        {&w[1], (void *const volatile *)tls, 0},
    };
    gct_churn(roots, 2, ROUNDS, NGARBAGE, WSIZE);
}

Test(gc_roots, dlopened_library_global_and_thread_local, .timeout = 120) {
    dl_path = gct_compile("libgct_dl.so", dl_src, 1, NULL);
    gct_run_child(dlopen_child, NULL, 60);
}

/* ------------------------------------------------------------------ noscan */

#define NPTR 4000
#define PSIZE 256
static void *g_holder;

/* The holder (noscan or not) points to NPTR objects of PSIZE bytes. */
GCT_NOINLINE static void holder_setup(int noscan) {
    void **h = noscan ? gcm_malloc_noscan(NPTR * sizeof(void *)) : malloc(NPTR * sizeof(void *));
    if (!h)
        CHILD_FAIL(91, "malloc");
    for (int i = 0; i < NPTR; i++) {
        h[i] = malloc(PSIZE);
        if (!h[i])
            CHILD_FAIL(91, "malloc");
        memset(h[i], 0x11, PSIZE);
    }
    g_holder = h;
}

static void noscan_child(void *arg) {
    int noscan = arg != NULL;
    gct_collect_mode(-1);
    size_t a = gct_allocated_after_collect();
    holder_setup(noscan);
    gct_clobber_stack();
    size_t b = gct_allocated_after_collect();
    size_t held = (size_t)NPTR * PSIZE;
    if (noscan) {
        CHILD_CHECK(b - a < held / 10, 63,
                    "the %d objects (%zu bytes) pointed to only from a noscan object were kept alive: "
                    "allocated_bytes %zu -> %zu",
                    NPTR, held, a, b);
        /* The noscan object itself is alive and unchanged. */
        CHILD_CHECK(gct_probe_allocated(g_holder) == 1, 64, "the rooted noscan object was freed");
    } else {
        CHILD_CHECK(b - a >= held, 65,
                    "control: %d objects pointed to from a (scanned) malloc object were reclaimed: "
                    "allocated_bytes %zu -> %zu",
                    NPTR, a, b);
        void **h = g_holder;
        for (int i = 0; i < NPTR; i++)
            CHILD_CHECK(((unsigned char *)h[i])[PSIZE - 1] == 0x11, 66, "object %d changed", i);
    }
}

Test(gc_roots, noscan_object_keeps_nothing_alive, .timeout = 60) {
    gct_run_child(noscan_child, (void *)1, 50);
}

Test(gc_roots, scanned_object_keeps_its_targets_alive, .timeout = 60) {
    gct_run_child(noscan_child, NULL, 50);
}

/* A noscan witness, rooted in a global, survives like any other object
 * (its own contents are not scanned, but it is marked). */
static void *g_noscan_root;
GCT_NOINLINE static void noscan_witness_setup(struct gct_witness *w) {
    g_noscan_root = gct_witness_new(w, WSIZE, 81, 1, "noscan witness in a global");
}
static void noscan_alive_child(void *arg) {
    gct_collect_mode(10);
    static struct gct_witness w;
    noscan_witness_setup(&w);
    gct_clobber_stack();
    struct gct_root roots[1] = {{&w, (void *const volatile *)&g_noscan_root, 0}};
    gct_churn(roots, 1, ROUNDS, NGARBAGE, WSIZE);
}

Test(gc_roots, noscan_object_itself_survives, .timeout = 60) {
    gct_run_child(noscan_alive_child, NULL, 50);
}

/* ------------------------------------------------------------------ one past the end */

#define NPAIR 1000
#define ESIZE 48
static void *g_end_ptrs[NPAIR];

/* 2 * NPAIR consecutive objects; for each pair (a, b) keep only a + ESIZE -
 * one past the end of a, which is b's first byte when b follows a in its
 * span. So the b's may live, the a's must die. */
GCT_NOINLINE static void end_setup(void) {
    for (int i = 0; i < NPAIR; i++) {
        char *a = malloc(ESIZE), *b = malloc(ESIZE);
        if (!a || !b)
            CHILD_FAIL(91, "malloc");
        memset(a, 0x22, ESIZE);
        memset(b, 0x33, ESIZE);
        g_end_ptrs[i] = a + ESIZE;
        __asm__ volatile("" : : "r"(b) : "memory");
    }
}

static void one_past_end_child(void *arg) {
    gct_collect_mode(-1);
    size_t a = gct_allocated_after_collect();
    end_setup();
    gct_clobber_stack();
    size_t b = gct_allocated_after_collect();
    size_t kept = b > a ? b - a : 0;
    /* Correct: at most the NPAIR b's live (each is pointed to at its start).
     * Wrong: the a's too (2 * NPAIR objects). */
    CHILD_CHECK(kept <= (size_t)NPAIR * ESIZE * 11 / 10, 67,
                "pointers one past the end kept their objects alive: %zu bytes stayed allocated "
                "(at most %zu expected: the following objects only)",
                kept, (size_t)NPAIR * ESIZE);
    memset(g_end_ptrs, 0, sizeof g_end_ptrs);
    size_t c = gct_allocated_after_collect();
    CHILD_CHECK(c <= a + 10 * ESIZE, 68, "after clearing the pointers %zu bytes are still allocated (%zu before)",
                c, a);
}

Test(gc_roots, one_past_the_end_does_not_keep_alive, .timeout = 60) {
    gct_run_child(one_past_end_child, NULL, 50);
}

/* ------------------------------------------------------------------ a reserved slot */

/* A word pointing at a slot reserved in its owner's cache (allocated in
 * allocBits, never handed out) marks nothing, so the slot's contents are not
 * scanned: a large object that only a pointer written into the reserved
 * slot refers to is reclaimed, though a global points at the slot. RSIZE's class has two objects per span, and
 * when the first is handed out the second is reserved. */
#define RSIZE 28672
#define RWITNESS ((size_t)1 << 20)
static char *g_first_of_span, *g_reserved;

GCT_NOINLINE static void reserved_setup(void) {
    for (int i = 0; i < 8 && (!g_first_of_span || ((uintptr_t)g_first_of_span & 8191)); i++)
        g_first_of_span = malloc(RSIZE); /* until one starts a span: slot 0 */
    char *w = malloc(RWITNESS);
    if (!g_first_of_span || !w)
        CHILD_FAIL(91, "malloc");
    memset(w, 0x44, RWITNESS);
    g_reserved = g_first_of_span + RSIZE; /* slot 1, reserved */
    *(char **)g_reserved = w;
}

static void reserved_slot_child(void *arg) {
    gct_collect_mode(-1);
    size_t a = gct_allocated_after_collect();
    reserved_setup();
    CHILD_CHECK(((uintptr_t)g_first_of_span & 8191) == 0, 66, "no %d-byte object started a span", RSIZE);
    size_t b = gct_allocated_after_collect();
    CHILD_CHECK(b < a + RWITNESS, 67,
                "a %zu-byte object referred to only from a reserved (never handed out) slot stayed allocated: "
                "%zu bytes before, %zu after",
                RWITNESS, a, b);
}

Test(gc_roots, reserved_slot_keeps_nothing_alive, .timeout = 60) {
    gct_run_child(reserved_slot_child, NULL, 50);
}

/* ------------------------------------------------------------------ a free slot */

/* A word pointing at a free slot (freed, its allocBits bit clear: the
 * marker starts it marked) marks nothing, so the slot's stale contents are
 * not scanned: a large object that only a pointer left in the freed slot
 * refers to is reclaimed, though a global points at the slot. The slot is
 * the first of a span that FSPAN objects allocated in a row filled from its
 * start to its end: its cache moved on to its last word before the free,
 * which therefore clears the slot's bit instead of returning the slot to
 * the owner's cache. */
#define FSIZE 48  /* FSPAN objects in a span of one page */
#define FSPAN 170
#define FCOUNT 2048
static char *g_fobjs[FCOUNT], *volatile g_free_slot; /* volatile: stored, never read */

GCT_NOINLINE static void free_slot_setup(void) {
    for (int i = 0; i < FCOUNT; i++)
        if (!(g_fobjs[i] = malloc(FSIZE)))
            CHILD_FAIL(91, "malloc");
    int k = 0;
    while (k < FCOUNT - FSPAN &&
           (((uintptr_t)g_fobjs[k] & 8191) || g_fobjs[k + FSPAN - 1] != g_fobjs[k] + (FSPAN - 1) * FSIZE))
        k++;
    CHILD_CHECK(k < FCOUNT - FSPAN, 66, "no span was filled by %d %d-byte objects in a row", FSPAN, FSIZE);
    char *w = malloc(RWITNESS);
    if (!w)
        CHILD_FAIL(91, "malloc");
    memset(w, 0x45, RWITNESS);
    char *slot = g_fobjs[k];
    *(char **)slot = w;
    free(slot);
    g_free_slot = slot;
    g_fobjs[k] = NULL;
}

static void free_slot_child(void *arg) {
    gct_collect_mode(-1);
    size_t a = gct_allocated_after_collect();
    free_slot_setup();
    size_t b = gct_allocated_after_collect();
    CHILD_CHECK(b < a + RWITNESS, 67,
                "a %zu-byte object referred to only from a freed slot stayed allocated: %zu bytes before, %zu after",
                RWITNESS, a, b);
    CHILD_CHECK(b >= a + (FCOUNT - 1) * FSIZE, 68, "the %d live %d-byte objects were not all kept: %zu bytes before, %zu after",
                FCOUNT - 1, FSIZE, a, b);
}

Test(gc_roots, free_slot_keeps_nothing_alive, .timeout = 60) {
    gct_run_child(free_slot_child, NULL, 50);
}

/* ------------------------------------------------------------------ an interior pointer's object, scanned */

/* An object known only by a pointer to its last word is scanned from its
 * start, not from the pointer: the large object its first word points to
 * stays allocated. */
#define HSIZE 48
static char *volatile g_holder_last_word; /* volatile: stored, never read */

GCT_NOINLINE static void interior_holder_setup(void) {
    char **h = malloc(HSIZE), *w = malloc(RWITNESS);
    if (!h || !w)
        CHILD_FAIL(91, "malloc");
    memset(w, 0x46, RWITNESS);
    memset(h, 0, HSIZE);
    h[0] = w;
    g_holder_last_word = (char *)h + HSIZE - sizeof(char *);
}

static void interior_holder_child(void *arg) {
    gct_collect_mode(-1);
    size_t a = gct_allocated_after_collect();
    interior_holder_setup();
    size_t b = gct_allocated_after_collect();
    CHILD_CHECK(b >= a + RWITNESS, 67,
                "a %zu-byte object referred to only from the first word of an object known by a pointer to its "
                "last word was reclaimed: %zu bytes before, %zu after",
                RWITNESS, a, b);
}

Test(gc_roots, interior_pointer_object_scanned_whole, .timeout = 60) {
    gct_run_child(interior_holder_child, NULL, 50);
}

/* ------------------------------------------------------------------ a joined thread's DTV */

/* glibc keeps a joined thread's descriptor in its stack cache (memory
 * mapped by glibc, not a root), and with it the thread's DTV, which glibc
 * calloc'ed. The next pthread_create reuses the cached stack AND that DTV. So
 * the DTV must not be reclaimed: if it is, the slot goes to another object,
 * which the new thread's TLS set-up overwrites (or glibc frees a pointer read
 * from it). */
static __thread long dtv_tls[4];
static void *dtv_thread(void *arg) {
    dtv_tls[0] = (long)(uintptr_t)arg;
    return (void *)(uintptr_t)dtv_tls[0];
}

#define DTV_SIZES 64
#define DTV_PER 300
static unsigned char *dtv_keep[DTV_SIZES * DTV_PER];

static void joined_thread_child(void *arg) {
    gct_collect_mode(-1);
    pthread_t t;
    void *ret;
    if (pthread_create(&t, NULL, dtv_thread, (void *)1) || pthread_join(t, &ret) || ret != (void *)1)
        CHILD_FAIL(94, "the first thread");
    gct_clobber_stack();
    gcm_collect();
    /* Objects of every size up to 1 KiB: one of them gets the slot of the
     * DTV if it was reclaimed. */
    for (int s = 0; s < DTV_SIZES; s++)
        for (int i = 0; i < DTV_PER; i++) {
            size_t n = (size_t)(s + 1) * 16;
            unsigned char *p = malloc(n);
            if (!p)
                CHILD_FAIL(91, "malloc");
            memset(p, 0x5a, n);
            dtv_keep[s * DTV_PER + i] = p;
        }
    /* Reuses the cached stack, and its DTV. */
    if (pthread_create(&t, NULL, dtv_thread, (void *)2) || pthread_join(t, &ret) || ret != (void *)2)
        CHILD_FAIL(94, "the second thread");
    for (int s = 0; s < DTV_SIZES; s++)
        for (int i = 0; i < DTV_PER; i++) {
            size_t n = (size_t)(s + 1) * 16;
            const unsigned char *p = dtv_keep[s * DTV_PER + i];
            for (size_t j = 0; j < n; j++)
                CHILD_CHECK(p[j] == 0x5a, 70,
                            "object %p (%zu bytes) was overwritten at byte %zu when a new thread reused a joined "
                            "thread's cached stack: the collector reclaimed that thread's DTV",
                            (void *)p, n, j);
        }
}

Test(gc_roots, joined_thread_dtv_not_reclaimed, .timeout = 60) {
    gct_run_child(joined_thread_child, NULL, 50);
}
