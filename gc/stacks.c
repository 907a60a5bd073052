/*
 * stacks.c - see stacks.h.
 *
 * The table is one mapping made when capture is turned on (never from an
 * allocation): STACK_SLOTS hash slots, then STACK_MAX records. It is
 * lock-free, so that a capture in a signal handler, in a forked child whose
 * parent had other threads, or in a thread the collector stopped mid-insert
 * never waits:
 *  - a record is reserved with one fetch-add on `used` and written by its
 *    reserver alone; it is published by the compare-and-swap that fills a
 *    slot with (hash tag << 32 | id) (release; readers load slots acquire), so
 *    a published record is complete and never changes;
 *  - slots are never emptied, so linear probing finds a stack before any empty
 *    slot: reaching an empty slot proves the stack is new;
 *  - two threads inserting the same new stack race for a slot; the loser sees
 *    the winner's record, uses its id, and gives its own reservation back when
 *    nobody reserved after it (else that record stays unused: the table is
 *    bounded, not exact).
 * When STACK_MAX records are used, new stacks get id 0. There is no lock, so
 * fork needs no handler: a record half-written by a thread that did not
 * survive the fork was never published.
 *
 * The unwinder may allocate on its first use in a thread, and a signal handler
 * may allocate while a capture runs: a per-thread flag makes those nested
 * allocations record no stack instead of recursing into the unwinder.
 *
 * The unwinder is libgcc_s's, dlopen'ed by gcm_stacks_load_unwinder and not
 * linked: a program that never captures stacks does not pay for the library
 * (76-112 KiB of resident pages, a third of a small program's excess over
 * glibc's malloc). dlopen allocates, so it runs outside any allocation (a
 * constructor, gcm_set_gc_mode); a capture before that records no stack.
 */
#include "stacks.h"
#include "alloc/os.h"

#include <dlfcn.h>
#include <errno.h>
#include <unwind.h>

/* libgcc_s's entry points; backtrace_fn is stored last (release), so a
 * capture that sees it sees get_ip_info too. NULL until loaded. */
typedef _Unwind_Reason_Code (*backtrace_fn_t)(_Unwind_Trace_Fn, void *);
typedef _Unwind_Ptr (*get_ip_info_fn_t)(struct _Unwind_Context *, int *);
static backtrace_fn_t backtrace_fn;
static get_ip_info_fn_t get_ip_info;

#define STACK_MAX ((uint32_t)1 << 16)   /* distinct stacks (ids 1 .. STACK_MAX - 1) */
#define STACK_SLOTS ((size_t)STACK_MAX * 2) /* load factor at most 1/2 */

typedef struct stack_rec {
    uint32_t depth;
    uintptr_t pc[GCM_STACK_DEPTH];
} stack_rec;

/* The mapping: slots[STACK_SLOTS], then recs[STACK_MAX]. NULL until enabled;
 * set once (compare-and-swap), never unmapped. */
static char *table;
static uint32_t used; /* records reserved; atomic */
bool gcm_stacks_on;

static GCM_TLS bool in_capture;

/* Bounds of the GCM_STACK_SKIP section (the linker defines them). */
extern const char __start_gcm_alloc_entry[] GCM_HIDDEN;
extern const char __stop_gcm_alloc_entry[] GCM_HIDDEN;

#define TABLE_BYTES (STACK_SLOTS * sizeof(uint64_t) + (size_t)STACK_MAX * sizeof(stack_rec))

static uint64_t *slots(char *t) { return (uint64_t *)t; }
static stack_rec *recs(char *t) { return (stack_rec *)(t + STACK_SLOTS * sizeof(uint64_t)); }

bool gcm_stacks_enable(void) {
    if (!__atomic_load_n(&table, __ATOMIC_ACQUIRE)) {
        char *m = gcm_os_map(NULL, TABLE_BYTES), *expect = NULL;
        if (!m) return false;
        if (!__atomic_compare_exchange_n(&table, &expect, m, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
            gcm_os_unmap(m, TABLE_BYTES);
    }
    __atomic_store_n(&gcm_stacks_on, true, __ATOMIC_RELEASE);
    return true;
}

void gcm_stacks_load_unwinder(void) {
    if (!__atomic_load_n(&gcm_stacks_on, __ATOMIC_ACQUIRE) || __atomic_load_n(&backtrace_fn, __ATOMIC_ACQUIRE))
        return;
    void *lib = dlopen("libgcc_s.so.1", RTLD_NOW);
    void *bt = lib ? dlsym(lib, "_Unwind_Backtrace") : NULL;
    void *ip = lib ? dlsym(lib, "_Unwind_GetIPInfo") : NULL;
    if (!bt || !ip) {
        static const char msg[] = "gcmalloc: GCMALLOC_LEAKCHECK_STACKS: cannot load the unwinder "
                                  "(libgcc_s.so.1): no stacks recorded\n";
        gcm_os_write(2, msg, sizeof msg - 1);
        return;
    }
    get_ip_info = (get_ip_info_fn_t)ip;
    __atomic_store_n(&backtrace_fn, (backtrace_fn_t)bt, __ATOMIC_RELEASE);
}

static uint64_t stack_hash(const uintptr_t *pc, uint32_t depth) {
    uint64_t h = depth;
    for (uint32_t i = 0; i < depth; i++) {
        h = (h ^ pc[i]) * 0xff51afd7ed558ccdull;
        h ^= h >> 29;
    }
    return h;
}

static bool same_stack(const stack_rec *r, const uintptr_t *pc, uint32_t depth) {
    if (r->depth != depth) return false;
    for (uint32_t i = 0; i < depth; i++)
        if (r->pc[i] != pc[i]) return false;
    return true;
}

static uint32_t intern(char *t, const uintptr_t *pc, uint32_t depth) {
    uint64_t h = stack_hash(pc, depth), tag = h >> 32;
    uint32_t mine = 0; /* our reserved record, once we needed one */
    size_t i = h & (STACK_SLOTS - 1);
    for (size_t probes = 0; probes < STACK_SLOTS; probes++, i = (i + 1) & (STACK_SLOTS - 1)) {
        uint64_t v = __atomic_load_n(&slots(t)[i], __ATOMIC_ACQUIRE);
        if (v == 0) {
            if (!mine) {
                if (__atomic_load_n(&used, __ATOMIC_RELAXED) >= STACK_MAX - 1) return 0;
                mine = __atomic_add_fetch(&used, 1, __ATOMIC_RELAXED);
                if (mine >= STACK_MAX) return 0;
                stack_rec *r = &recs(t)[mine];
                r->depth = depth;
                for (uint32_t k = 0; k < depth; k++) r->pc[k] = pc[k];
            }
            if (__atomic_compare_exchange_n(&slots(t)[i], &v, tag << 32 | mine, false, __ATOMIC_RELEASE,
                                            __ATOMIC_ACQUIRE))
                return mine;
            /* Lost the slot: v is the winner's; maybe our very stack. */
        }
        uint32_t id = (uint32_t)v;
        if (v >> 32 == tag && same_stack(&recs(t)[id], pc, depth)) {
            uint32_t expect = mine;
            if (mine)
                __atomic_compare_exchange_n(&used, &expect, mine - 1, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED);
            return id;
        }
    }
    return 0;
}

typedef struct walk {
    uintptr_t pc[GCM_STACK_DEPTH];
    uint32_t n;
    bool program; /* past gcmalloc's own frames */
} walk;

static _Unwind_Reason_Code walk_frame(struct _Unwind_Context *ctx, void *arg) {
    walk *w = arg;
    int exact = 0; /* 1 for a signal frame: ip is the interrupted instruction */
    uintptr_t ip = get_ip_info(ctx, &exact);
    if (ip == 0) return _URC_END_OF_STACK;
    if (!w->program) {
        if (ip - (uintptr_t)__start_gcm_alloc_entry < (uintptr_t)(__stop_gcm_alloc_entry - __start_gcm_alloc_entry))
            return _URC_NO_REASON;
        w->program = true;
    }
    /* A return address points after its call, possibly into the next
     * function; keep an address inside the call instruction. */
    w->pc[w->n++] = exact ? ip : ip - 1;
    return w->n == GCM_STACK_DEPTH ? _URC_END_OF_STACK : _URC_NO_REASON;
}

GCM_STACK_SKIP GCM_NOINLINE uint32_t gcm_stack_capture(void) {
    char *t = __atomic_load_n(&table, __ATOMIC_ACQUIRE);
    backtrace_fn_t backtrace = __atomic_load_n(&backtrace_fn, __ATOMIC_ACQUIRE);
    if (!t || !backtrace || in_capture) return 0;
    in_capture = true;
    int saved = errno;
    walk w;
    w.n = 0;
    w.program = false;
    backtrace(walk_frame, &w);
    uint32_t id = w.n ? intern(t, w.pc, w.n) : 0;
    errno = saved;
    in_capture = false;
    return id;
}

size_t gcm_stack_frames(uint32_t id, const uintptr_t **pcs) {
    char *t = __atomic_load_n(&table, __ATOMIC_ACQUIRE);
    if (!t || id == 0 || id >= STACK_MAX) return 0;
    const stack_rec *r = &recs(t)[id];
    *pcs = r->pc;
    return r->depth;
}
