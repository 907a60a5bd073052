/*
 * Several threads build and check binary trees while collections run
 * (collect mode, in a forked child): automatic collections (small GC
 * percent) from any thread's malloc, plus a thread calling gcm_collect()
 * every few milliseconds, plus short-lived threads started and joined
 * throughout. Each worker keeps a long-lived tree - its root in a stack
 * slot, a __thread variable, a global, or only a local the compiler keeps
 * where it likes - mutates it (replacing subtrees: the old ones become
 * garbage), and builds short-lived trees that it either drops or frees
 * explicitly. Leaves carry a noscan payload with a pattern. Every node is
 * checked (key derived from its position, checksum, payload): a node
 * reclaimed while reachable is overwritten by another thread's allocation.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "gcutil.h"

#define NWORK 4
#define RUN_MS 8000
#define PAYLOAD 40

struct node {
    struct node *l, *r;
    uint64_t key;
    uint64_t sum; /* tu_mix(key ^ seed) */
    unsigned char *payload; /* leaves: a noscan block */
};

static atomic_int g_stop;
static atomic_ulong g_checked, g_built;
static struct node *g_global_root;
static __thread struct node *t_tls_root;

static struct node *build(uint64_t seed, uint64_t key, int depth) {
    struct node *n = malloc(sizeof *n);
    if (!n)
        CHILD_FAIL(91, "malloc(node)");
    n->key = key;
    n->sum = tu_mix(key ^ seed);
    n->payload = NULL;
    if (depth == 0) {
        n->l = n->r = NULL;
        n->payload = gcm_malloc_noscan(PAYLOAD);
        if (!n->payload)
            CHILD_FAIL(91, "gcm_malloc_noscan");
        pat_fill(n->payload, PAYLOAD, key ^ seed);
    } else {
        n->l = build(seed, key * 2, depth - 1);
        n->r = build(seed, key * 2 + 1, depth - 1);
    }
    atomic_fetch_add_explicit(&g_built, 1, memory_order_relaxed);
    return n;
}

static size_t check(const struct node *n, uint64_t seed, uint64_t key, int depth, const char *what) {
    if (!n)
        CHILD_FAIL(20, "%s: a NULL child at depth %d", what, depth);
    if (n->key != key || n->sum != tu_mix(key ^ seed))
        CHILD_FAIL(21,
                   "%s: node %p at key %lu holds key %lu sum %#lx (want %#lx): a reachable node was reclaimed "
                   "and reused",
                   what, (void *)n, (unsigned long)key, (unsigned long)n->key, (unsigned long)n->sum,
                   (unsigned long)tu_mix(key ^ seed));
    if (depth == 0) {
        if (n->l || n->r || !n->payload)
            CHILD_FAIL(22, "%s: leaf %p corrupt", what, (void *)n);
        long bad = pat_check(n->payload, PAYLOAD, key ^ seed);
        if (bad >= 0)
            CHILD_FAIL(23, "%s: the noscan payload %p of leaf %lu was overwritten at %ld", what, (void *)n->payload,
                       (unsigned long)key, bad);
        return 1;
    }
    if (n->payload)
        CHILD_FAIL(22, "%s: inner node %p has a payload", what, (void *)n);
    return 1 + check(n->l, seed, key * 2, depth - 1, what) + check(n->r, seed, key * 2 + 1, depth - 1, what);
}

static void free_tree(struct node *n) {
    if (!n)
        return;
    free_tree(n->l);
    free_tree(n->r);
    free(n->payload);
    free(n);
}

#define LONG_DEPTH 13
#define SHORT_DEPTH 9

/* Replace the subtree at (key, depth) of the long tree with a fresh one. */
static void replace_subtree(struct node *root, uint64_t seed, uint64_t *rng) {
    struct node *n = root;
    uint64_t key = 1;
    int depth = LONG_DEPTH;
    int steps = 3 + (int)(tu_rand(rng) % 6);
    for (int i = 0; i < steps - 1; i++) {
        int right = (int)(tu_rand(rng) & 1);
        n = right ? n->r : n->l;
        key = key * 2 + (uint64_t)right;
        depth--;
    }
    int right = (int)(tu_rand(rng) & 1);
    struct node *fresh = build(seed, key * 2 + (uint64_t)right, depth - 1);
    if (right)
        n->r = fresh; /* the old subtree is garbage now */
    else
        n->l = fresh;
}

static void *worker(void *arg) {
    int id = (int)(uintptr_t)arg;
    uint64_t rng = 0x1234567 + (uint64_t)id * 77;
    uint64_t seed = tu_mix((uint64_t)id + 1);
    char what[64];
    snprintf(what, sizeof what, "worker %d's long-lived tree", id);
    struct node *volatile stack_root = NULL;
    struct node *local_root = NULL;
    struct node *t = build(seed, 1, LONG_DEPTH);
    switch (id % 4) {
    case 0:
        stack_root = t;
        break;
    case 1:
        t_tls_root = t;
        break;
    case 2:
        g_global_root = t;
        break;
    default:
        local_root = t;
        break;
    }
    t = NULL;
#define ROOT (id % 4 == 0 ? stack_root : id % 4 == 1 ? t_tls_root : id % 4 == 2 ? g_global_root : local_root)
    unsigned long iter = 0;
    while (!atomic_load_explicit(&g_stop, memory_order_relaxed)) {
        uint64_t sseed = tu_rand(&rng);
        struct node *s = build(sseed, 1, SHORT_DEPTH);
        check(s, sseed, 1, SHORT_DEPTH, "a short-lived tree");
        if (iter % 2)
            free_tree(s);
        s = NULL;
        if (iter % 8 == 0)
            replace_subtree(ROOT, seed, &rng);
        if (iter % 16 == 0) {
            size_t n = check(ROOT, seed, 1, LONG_DEPTH, what);
            if (n != (2u << LONG_DEPTH) - 1)
                CHILD_FAIL(24, "%s has %zu nodes", what, n);
            atomic_fetch_add_explicit(&g_checked, 1, memory_order_relaxed);
        }
        iter++;
    }
    check(ROOT, seed, 1, LONG_DEPTH, what);
    __asm__ volatile("" : : "r"(local_root) : "memory");
    return NULL;
}

static void *collector(void *arg) {
    while (!atomic_load_explicit(&g_stop, memory_order_relaxed)) {
        gcm_collect();
        tu_sleep_ms(3);
    }
    return NULL;
}

static void *short_lived(void *arg) {
    uint64_t seed = (uint64_t)(uintptr_t)arg;
    struct node *t = build(seed, 1, 8);
    tu_sleep_ms(1);
    check(t, seed, 1, 8, "a short-lived thread's tree");
    return NULL;
}

static void trees_child(void *arg) {
    gct_collect_mode(20);
    pthread_t w[NWORK], c;
    for (int i = 0; i < NWORK; i++)
        if (pthread_create(&w[i], NULL, worker, (void *)(uintptr_t)i))
            CHILD_FAIL(94, "pthread_create");
    if (pthread_create(&c, NULL, collector, NULL))
        CHILD_FAIL(94, "pthread_create");
    uint64_t t0 = tu_now_ms();
    unsigned long threads = 0;
    while (tu_now_ms() - t0 < RUN_MS) {
        pthread_t s;
        if (pthread_create(&s, NULL, short_lived, (void *)(uintptr_t)(threads + 99)))
            CHILD_FAIL(94, "pthread_create");
        pthread_join(s, NULL);
        threads++;
        tu_sleep_ms(10);
    }
    atomic_store(&g_stop, 1);
    for (int i = 0; i < NWORK; i++)
        pthread_join(w[i], NULL);
    pthread_join(c, NULL);
    struct gcm_stats st;
    gcm_get_stats(&st);
    dprintf(2, "%lu nodes built, %lu long-tree checks, %lu threads, %lu collections, %zu objects reclaimed\n",
            atomic_load(&g_built), atomic_load(&g_checked), threads, (unsigned long)st.gc_cycles,
            st.gc_freed_objects);
    CHILD_CHECK(st.gc_cycles >= 50, 30, "only %lu collections", (unsigned long)st.gc_cycles);
    CHILD_CHECK(st.gc_freed_objects >= 100000, 31, "only %zu objects reclaimed", st.gc_freed_objects);
    CHILD_CHECK(atomic_load(&g_checked) >= NWORK, 32, "the long trees were checked %lu times",
                atomic_load(&g_checked));
}

Test(gc_threads, trees_while_collecting, .timeout = 120) {
    gct_run_child(trees_child, NULL, 90);
}
