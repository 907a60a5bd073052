/*
 * mark.c - see mark.h.
 */
#include "mark.h"
#include "alloc/arena.h"
#include "alloc/mheap.h"
#include "alloc/os.h"


typedef struct work {
    uintptr_t p;
    size_t n;
} work;

/* Candidates in flight: a word that may point into the heap waits here
 * FIFO_LEN words before it is resolved, while its object's first line and
 * its spans[] entry come in (prefetched when it is found). A power of two. */
#define FIFO_LEN 32

typedef struct cand {
    uintptr_t v;             /* the word */
    mspan *const *span_slot; /* &heapArena.spans[its page] */
} cand;

/* All of the marker's state in one object, which the roots leave out (it
 * holds heap addresses that are not references). */
static struct {
    work *stack;       /* the mark stack: OS memory, kept between cycles */
    size_t top, cap;   /* entries used / mapped */
    uintptr_t heap_lo, heap_len; /* every arena lies in [heap_lo, heap_lo + heap_len) */
    size_t live_bytes, live_objects;
    /* fifo[head % FIFO_LEN] is the oldest candidate; tail - head <= FIFO_LEN.
     * Empty when a pass begins and after gcm_mark_drain. */
    cand fifo[FIFO_LEN];
    size_t head, tail;
} ms;

/* ms's scalars, copied into a local for the length of one call so that they
 * stay in registers: the stores into the mark stack and the FIFO could
 * otherwise alias them, and would force a reload after each. */
typedef struct marker {
    work *stack;
    size_t top, cap;
    uintptr_t heap_lo, heap_len;
    size_t live_bytes, live_objects;
    size_t head, tail;
} marker;

GCM_INLINE marker marker_load(void) {
    return (marker){ms.stack, ms.top, ms.cap, ms.heap_lo, ms.heap_len, ms.live_bytes, ms.live_objects, ms.head, ms.tail};
}

GCM_INLINE void marker_store(const marker *m) {
    ms.stack = m->stack, ms.top = m->top, ms.cap = m->cap;
    ms.live_bytes = m->live_bytes, ms.live_objects = m->live_objects;
    ms.head = m->head, ms.tail = m->tail;
}

uintptr_t gcm_mark_state_lo(void) { return (uintptr_t)&ms; }
uintptr_t gcm_mark_state_hi(void) { return (uintptr_t)(&ms + 1); }

static void clear_marks(mspan *s, void *ctx) {
    for (size_t w = 0; w < s->nwords; w++) GCM_STORE(&s->gcmarkBits[w], 0);
}

bool gcm_mark_begin(void) {
    if (!ms.stack) {
        ms.cap = ((size_t)1 << 20) / sizeof(work);
        ms.stack = gcm_os_map(NULL, ms.cap * sizeof(work));
        if (!ms.stack) return false;
    }
    ms.top = ms.head = ms.tail = 0;
    ms.live_bytes = ms.live_objects = 0;
    uintptr_t lo = UINTPTR_MAX, hi = 0;
    const pageAlloc *pa = &gcm_heap.pages;
    for (uint32_t i = 0; i < pa->narenas; i++) {
        uintptr_t b = pa->arenas[i]->base;
        if (b < lo) lo = b;
        if (b + GCM_ARENA_SIZE > hi) hi = b + GCM_ARENA_SIZE;
    }
    ms.heap_lo = lo;
    ms.heap_len = hi > lo ? hi - lo : 0;
    gcm_mheap_each_span(clear_marks, NULL);
    return true;
}

/* Out of stack: double it (the old entries move with it). If the OS
 * refuses, an object would stay marked but unscanned, and what only it
 * reaches would be freed: stop instead. */
static GCM_NOINLINE work *grow(work *stack, size_t cap) {
    void *p = gcm_os_remap(stack, cap * sizeof(work), 2 * cap * sizeof(work));
    if (!p) gcm_fatal("gc: out of memory for the mark stack");
    return p;
}

GCM_INLINE void push(marker *m, uintptr_t p, size_t n) {
    if (GCM_UNLIKELY(m->top == m->cap)) {
        m->stack = grow(m->stack, m->cap);
        m->cap *= 2;
    }
    m->stack[m->top].p = p;
    m->stack[m->top].n = n;
    m->top++;
}

/* Mark the object candidate c points into, if any, and queue it for
 * scanning. */
GCM_INLINE void resolve(marker *m, const cand *c) {
    mspan *s = *c->span_slot;
    if (!s) return;
    uintptr_t v = c->v;
    size_t idx;
    uintptr_t obj;
    if (mspan_is_large(s)) {
        if (!(s->allocBits[0] & 1)) return; /* freed, pages not yet returned */
        idx = 0;
        obj = s->base;
    } else {
        idx = mspan_obj_index(s, v);
        if (idx >= s->nelems) return; /* the span's tail */
        uint64_t *w = &s->allocBits[idx >> 6], bit = (uint64_t)1 << (idx & 63);
        if (!(*w & bit)) return; /* a free slot */
        if (s->owner && s->cacheWord == w && (mspan_cached(s) & bit)) return; /* reserved, not handed out */
        obj = s->base + idx * s->elemsize;
    }
    uint64_t *mw = &s->gcmarkBits[idx >> 6], mbit = (uint64_t)1 << (idx & 63);
    if (*mw & mbit) return;
    *mw |= mbit;
    m->live_bytes += s->elemsize;
    m->live_objects++;
    if (!(s->spanclass & 1)) push(m, obj, s->elemsize);
}

/* The cheap filter, then into the FIFO: a word outside the heap's address
 * range or outside every arena costs a compare or one load of the arena
 * index (in cache), and no miss. */
GCM_INLINE void consider(marker *m, uintptr_t v) {
    if (v - m->heap_lo >= m->heap_len) return;
    heapArena *a = gcm_arena_index[v >> GCM_ARENA_SHIFT];
    if (!a) return;
    mspan *const *slot = &a->spans[(v >> GCM_PAGE_SHIFT) & (GCM_PAGES_PER_ARENA - 1)];
    __builtin_prefetch(slot);
    __builtin_prefetch((const void *)v);
    if (m->tail - m->head == FIFO_LEN) resolve(m, &ms.fifo[m->head++ % FIFO_LEN]);
    cand *c = &ms.fifo[m->tail++ % FIFO_LEN];
    c->v = v;
    c->span_slot = slot;
}

GCM_INLINE void scan(marker *m, uintptr_t lo, uintptr_t hi) {
    for (uintptr_t p = gcm_align_up(lo, sizeof(uintptr_t)); p + sizeof(uintptr_t) <= hi; p += sizeof(uintptr_t))
        consider(m, *(const uintptr_t *)p);
}

void gcm_mark_range(uintptr_t lo, uintptr_t hi) {
    marker m = marker_load();
    scan(&m, lo, hi);
    marker_store(&m);
}

void gcm_mark_ptr(uintptr_t p) {
    marker m = marker_load();
    consider(&m, p);
    marker_store(&m);
}

/* Scan what is on the stack first (each scan feeds the FIFO and, once it is
 * full, resolves its oldest candidate); resolve the FIFO's rest only when
 * the stack runs dry. */
void gcm_mark_drain(void) {
    marker m = marker_load();
    for (;;) {
        if (m.top) {
            work w = m.stack[--m.top];
            scan(&m, w.p, w.p + w.n);
        } else if (m.head != m.tail) {
            resolve(&m, &ms.fifo[m.head++ % FIFO_LEN]);
        } else {
            break;
        }
    }
    marker_store(&m);
}

size_t gcm_mark_live_bytes(void) { return ms.live_bytes; }
size_t gcm_mark_live_objects(void) { return ms.live_objects; }
