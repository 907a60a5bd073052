/*
 * mark.c - see mark.h.
 */
#include "mark.h"
#include "alloc/arena.h"
#include "alloc/mheap.h"
#include "alloc/os.h"
#include "alloc/sizeclass.h"

#include <string.h>


typedef struct work {
    uintptr_t p;
    size_t n;
} work;

/* What the marker needs of the small span a page belongs to, in 16 bytes
 * that the page's address finds through the arena index and the arena's
 * ordinal (both in cache), with no miss before it: resolving a word
 * through it costs the descriptor and the bitmap line, where the span
 * lookup costs spans[], then the mspan's lines, then the bitmap. Rebuilt by
 * gcm_mark_begin, when the world is stopped; no span changes until the
 * marking ends. marks == NULL: no small span here (a free page, or a large
 * span, which is resolved through spans[]). */
typedef struct pagedesc {
    uint64_t *marks;    /* the span's gcmarkBits */
    int32_t alloc_off;  /* its allocBits - gcmarkBits, in words */
    uint16_t pgoff;     /* this page's index in the span */
    uint8_t spanclass;
    uint8_t unused;
} pagedesc;

/* Candidates in flight: a word that may point into the heap waits here
 * FIFO_LEN words before it is resolved, while its object's first line and
 * its page descriptor come in (prefetched when it is found). A power of two. */
#define FIFO_LEN 32

typedef struct cand {
    uintptr_t v;          /* the word */
    const pagedesc *desc; /* its page's */
} cand;

/* All of the marker's state in one object, which the roots leave out (it
 * holds heap addresses that are not references). */
static struct {
    work *stack;       /* the mark stack: OS memory, kept between cycles */
    size_t top, cap;   /* entries used / mapped */
    uintptr_t heap_lo, heap_len; /* every arena lies in [heap_lo, heap_lo + heap_len) */
    size_t live_bytes;
    /* Page descriptors: arena ordinal << 13 | page in the arena. OS memory. */
    pagedesc *pages;
    size_t pages_cap;
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
    size_t live_bytes;
    pagedesc *pages;
    size_t head, tail;
} marker;

GCM_INLINE marker marker_load(void) {
    return (marker){ms.stack, ms.top, ms.cap, ms.heap_lo, ms.heap_len, ms.live_bytes, ms.pages, ms.head, ms.tail};
}

GCM_INLINE void marker_store(const marker *m) {
    ms.stack = m->stack, ms.top = m->top, ms.cap = m->cap;
    ms.live_bytes = m->live_bytes;
    ms.head = m->head, ms.tail = m->tail;
}

uintptr_t gcm_mark_state_lo(void) { return (uintptr_t)&ms; }
uintptr_t gcm_mark_state_hi(void) { return (uintptr_t)(&ms + 1); }

GCM_INLINE pagedesc *desc_of(pagedesc *pages, const heapArena *a, uintptr_t addr) {
    return &pages[((size_t)a->ordinal << (GCM_ARENA_SHIFT - GCM_PAGE_SHIFT)) |
                  ((addr >> GCM_PAGE_SHIFT) & (GCM_PAGES_PER_ARENA - 1))];
}

/* Each span, once per pass: no marks, but two kinds of objects start marked,
 * and a small span's pages get their descriptors.
 *  - The objects reserved in its owner's cache (allocated in allocBits, not
 *    handed out): a word pointing at one neither marks nor scans it, and the
 *    garbage and leaks (allocated & ~marked, where allocated leaves them
 *    out) are unchanged.
 *  - The objects on its remote-free list (xfree). The program freed them
 *    already and nothing points to them; the merge that clears their bits is
 *    their one free. Unmarked, they would be garbage, and the owner's sweep
 *    could free them first: it merges the list and then sweeps, and a
 *    collection that stops it in between, after other threads pushed more
 *    frees, counted those as garbage. The sweep freed them, their slots were
 *    handed out again, and the merge that followed freed the new, live
 *    objects or reported a double free (the lost objects of #4). Marked, a
 *    freed object is neither garbage nor a leak, whenever it is merged. An
 *    object pushed after this stop was still held by the freeing thread
 *    during it, so it is marked through that thread. */
static void prepare_span(mspan *s, void *ctx) {
    for (size_t w = 0; w < s->nwords; w++) GCM_STORE(&s->gcmarkBits[w], 0);
    if (mspan_is_large(s)) return;
    if (s->owner) GCM_STORE(&s->gcmarkBits[s->cacheWord - s->allocBits], mspan_cached(s));
    mspan_remote_bits(s, s->gcmarkBits);
    pagedesc d = {s->gcmarkBits, (int32_t)(s->allocBits - s->gcmarkBits), 0, s->spanclass, 0};
    for (size_t i = 0; i < s->npages; i++) {
        uintptr_t addr = s->base + (i << GCM_PAGE_SHIFT); /* a span may cross into the next arena */
        d.pgoff = (uint16_t)i;
        *desc_of(ms.pages, gcm_arena_index[addr >> GCM_ARENA_SHIFT], addr) = d;
    }
}

bool gcm_mark_begin(void) {
    if (!ms.stack) {
        ms.cap = ((size_t)1 << 20) / sizeof(work);
        ms.stack = gcm_os_map(NULL, ms.cap * sizeof(work));
        if (!ms.stack) return false;
    }
    const pageAlloc *pa = &gcm_heap.pages;
    size_t npages = (size_t)pa->narenas * GCM_PAGES_PER_ARENA;
    if (!gcm_os_grow((void **)&ms.pages, &ms.pages_cap, npages, sizeof(pagedesc), GCM_PAGES_PER_ARENA)) return false;
    memset(ms.pages, 0, npages * sizeof(pagedesc));
    ms.top = ms.head = ms.tail = 0;
    ms.live_bytes = 0;
    uintptr_t lo = UINTPTR_MAX, hi = 0;
    for (uint32_t i = 0; i < pa->narenas; i++) {
        uintptr_t b = pa->arenas[i]->base;
        if (b < lo) lo = b;
        if (b + GCM_ARENA_SIZE > hi) hi = b + GCM_ARENA_SIZE;
    }
    ms.heap_lo = lo;
    ms.heap_len = hi > lo ? hi - lo : 0;
    gcm_mheap_each_span(prepare_span, NULL);
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

GCM_INLINE void mark_object(marker *m, uint64_t *word, uint64_t bit, uintptr_t obj, size_t size, bool noscan) {
    if (*word & bit) return;
    *word |= bit;
    m->live_bytes += size;
    if (!noscan) push(m, obj, size);
}

/* A word on a page without a small span: the large object's span, or NULL
 * (a free page; a large object freed, its pages not yet returned). Out of
 * line, without the marker: a pointer to it would keep it out of registers. */
static GCM_NOINLINE mspan *large_span_of(uintptr_t v) {
    mspan *s = gcm_span_of(v);
    return s && (s->allocBits[0] & 1) ? s : NULL;
}

/* Mark the object candidate c points into, if it is allocated, and queue it
 * for scanning. */
GCM_INLINE void resolve(marker *m, const cand *c) {
    const pagedesc *d = c->desc;
    uintptr_t v = c->v;
    uint64_t *marks = d->marks;
    if (GCM_UNLIKELY(!marks)) {
        mspan *s = large_span_of(v);
        if (s) mark_object(m, &s->gcmarkBits[0], 1, s->base, s->elemsize, s->spanclass & 1);
        return;
    }
    unsigned cls = d->spanclass >> 1;
    uintptr_t base = (v & ~(GCM_PAGE_SIZE - 1)) - ((uintptr_t)d->pgoff << GCM_PAGE_SHIFT);
    size_t idx = (size_t)(((uint64_t)(v - base) * gcm_class_divmul[cls]) >> 32);
    if (idx >= gcm_class_nelems[cls]) return; /* the span's tail */
    size_t w = idx >> 6;
    uint64_t bit = (uint64_t)1 << (idx & 63);
    if (!(marks[w + d->alloc_off] & bit)) return; /* a free slot */
    size_t size = gcm_class_size[cls];
    mark_object(m, &marks[w], bit, base + idx * size, size, d->spanclass & 1);
}

/* The cheap filter, then into the FIFO: a word outside the heap's address
 * range or outside every arena costs a compare or one load of the arena
 * index (in cache), and no miss. */
GCM_INLINE void consider(marker *m, uintptr_t v) {
    if (v - m->heap_lo >= m->heap_len) return;
    const heapArena *a = gcm_arena_index[v >> GCM_ARENA_SHIFT];
    if (!a) return;
    const pagedesc *d = desc_of(m->pages, a, v);
    __builtin_prefetch(d);
    __builtin_prefetch((const void *)v);
    if (m->tail - m->head == FIFO_LEN) resolve(m, &ms.fifo[m->head++ % FIFO_LEN]);
    cand *c = &ms.fifo[m->tail++ % FIFO_LEN];
    c->v = v;
    c->desc = d;
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
