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
    uint64_t *marks;  /* the span's gcmarkBits */
    uintptr_t basesc; /* the span's base | its span class (a base is page-aligned) */
} pagedesc;

/* What resolving a word needs of its span class, from the size-class tables,
 * in one record: one address and loads from one line, where the three
 * tables cost an address each. Filled by the first gcm_mark_begin. */
typedef struct classdesc {
    uint32_t divmul; /* gcm_class_divmul */
    uint32_t nelems; /* gcm_class_nelems */
    uint32_t size;   /* gcm_class_size */
    uint32_t scan;   /* size, or 0 in a noscan span class */
} classdesc;

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
    classdesc classes[GCM_NUM_SPAN_CLASSES];
    /* The candidates: fifo[head % FIFO_LEN] is the oldest; tail - head <=
     * FIFO_LEN. The newest is not in the FIFO but here (0: none; its page's
     * descriptor in newest_desc), and enters the FIFO when the next one
     * comes. Resolved when the stack and the FIFO are empty - on a list,
     * every node is - it is at hand in a register, with no store and load
     * between the word's discovery and the scan of its object. All empty
     * when a pass begins and after gcm_mark_drain. */
    cand fifo[FIFO_LEN];
    size_t head, tail;
    uintptr_t newest;
    const pagedesc *newest_desc;
} ms;

/* The scalars of ms that every word or candidate uses, copied into a local
 * for the length of one call so that they stay in registers: the stores into
 * the mark stack, the FIFO and the bitmaps could otherwise alias them and
 * would force a reload after each. The rest is used once per object at most
 * and stays in ms. */
typedef struct marker {
    size_t top;
    size_t head, tail;
    uintptr_t newest;
    const pagedesc *newest_desc;
} marker;

GCM_INLINE marker marker_load(void) {
    return (marker){ms.top, ms.head, ms.tail, ms.newest, ms.newest_desc};
}

GCM_INLINE void marker_store(const marker *m) {
    ms.top = m->top;
    ms.head = m->head, ms.tail = m->tail;
    ms.newest = m->newest, ms.newest_desc = m->newest_desc;
}

uintptr_t gcm_mark_state_lo(void) { return (uintptr_t)&ms; }
uintptr_t gcm_mark_state_hi(void) { return (uintptr_t)(&ms + 1); }

GCM_INLINE pagedesc *desc_of(pagedesc *pages, const heapArena *a, uintptr_t addr) {
    return &pages[((size_t)a->ordinal << (GCM_ARENA_SHIFT - GCM_PAGE_SHIFT)) |
                  ((addr >> GCM_PAGE_SHIFT) & (GCM_PAGES_PER_ARENA - 1))];
}

/* Each span, once per pass: two kinds of objects start marked, and so do
 * the free slots; a small span's pages get their descriptors.
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
 *    during it, so it is marked through that thread.
 *  - The free slots (~allocBits): a word that points at one finds it marked
 *    already and marks nothing, with no look at allocBits, so resolving a
 *    word tests one bitmap. Every reader of the marks asks for allocated
 *    objects (allocated & ~marked, marked & allocated), to which these bits
 *    add nothing. They are set after the remote-free bits, whose walk stops
 *    at a bit already set (a list that loops). */
static void prepare_span(mspan *s, void *ctx) {
    for (size_t w = 0; w < s->nwords; w++) GCM_STORE(&s->gcmarkBits[w], 0);
    if (mspan_is_large(s)) return;
    if (s->owner) GCM_STORE(&s->gcmarkBits[s->cacheWord - s->allocBits], mspan_cached(s));
    mspan_remote_bits(s, s->gcmarkBits);
    for (size_t w = 0; w < s->nwords; w++) s->gcmarkBits[w] |= ~s->allocBits[w];
    pagedesc d = {s->gcmarkBits, s->base | s->spanclass};
    for (size_t i = 0; i < s->npages; i++) {
        uintptr_t addr = s->base + (i << GCM_PAGE_SHIFT); /* a span may cross into the next arena */
        *desc_of(ms.pages, gcm_arena_index[addr >> GCM_ARENA_SHIFT], addr) = d;
    }
}

bool gcm_mark_begin(void) {
    if (!ms.stack) {
        ms.cap = ((size_t)1 << 20) / sizeof(work);
        ms.stack = gcm_os_map(NULL, ms.cap * sizeof(work));
        if (!ms.stack) return false;
        for (unsigned sc = 2; sc < GCM_NUM_SPAN_CLASSES; sc++) {
            unsigned c = sc >> 1;
            ms.classes[sc] = (classdesc){gcm_class_divmul[c], gcm_class_nelems[c], gcm_class_size[c],
                                         sc & 1 ? 0 : gcm_class_size[c]};
        }
    }
    const pageAlloc *pa = &gcm_heap.pages;
    size_t npages = (size_t)pa->narenas * GCM_PAGES_PER_ARENA;
    if (!gcm_os_grow((void **)&ms.pages, &ms.pages_cap, npages, sizeof(pagedesc), GCM_PAGES_PER_ARENA)) return false;
    memset(ms.pages, 0, npages * sizeof(pagedesc));
    ms.top = ms.head = ms.tail = 0;
    ms.live_bytes = 0;
    ms.newest = 0;
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
static GCM_NOINLINE void grow(void) {
    void *p = gcm_os_remap(ms.stack, ms.cap * sizeof(work), 2 * ms.cap * sizeof(work));
    if (!p) gcm_fatal("gc: out of memory for the mark stack");
    ms.stack = p;
    ms.cap *= 2;
}

GCM_INLINE void push(marker *m, work w) {
    if (GCM_UNLIKELY(m->top == ms.cap)) grow();
    ms.stack[m->top++] = w;
}

/* Set an object's mark bit and count it live; false if it was set already. */
GCM_INLINE bool mark(uint64_t *word, uint64_t bit, size_t size) {
    if (*word & bit) return false;
    *word |= bit;
    ms.live_bytes += size;
    return true;
}

/* A word on a page without a small span: mark the large object it points
 * into, if there is one (not: a free page; a large object freed, its pages
 * not yet returned); as resolve. */
static GCM_NOINLINE work resolve_large(uintptr_t v) {
    mspan *s = gcm_span_of(v);
    if (!s || !(s->allocBits[0] & 1) || !mark(&s->gcmarkBits[0], 1, s->elemsize)) return (work){0, 0};
    return (work){s->base, s->spanclass & 1 ? 0 : s->elemsize};
}

/* Mark the object the word v (on the page d describes) points into, if it
 * is allocated; the object, to be scanned, if it is newly marked and may
 * hold pointers. A free slot starts the pass marked (prepare_span). */
GCM_INLINE work resolve(uintptr_t v, const pagedesc *d) {
    uint64_t *marks = d->marks;
    if (GCM_UNLIKELY(!marks)) return resolve_large(v);
    unsigned sc = (unsigned)(d->basesc & (GCM_PAGE_SIZE - 1));
    uintptr_t base = d->basesc - sc;
    const classdesc *k = &ms.classes[sc];
    uint64_t x = (uint64_t)(v - base) * k->divmul;
    size_t idx = (size_t)(x >> 32);
    if (idx >= k->nelems) return (work){0, 0}; /* the span's tail */
    if (!mark(&marks[idx >> 6], (uint64_t)1 << (idx & 63), k->size)) return (work){0, 0};
    /* v is the object's first byte (the low half of the product stays below
     * divmul: mspan_obj_index_exact), as a word mostly is: the scan starts
     * from v itself, and the loads of the object's words - on a list, the
     * next node's address - wait for no multiply. A branch, not a select:
     * the CPU runs on while the test is pending. */
    if (GCM_LIKELY((uint32_t)x < k->divmul)) return (work){v, k->scan};
    return (work){base + idx * k->size, k->scan};
}

/* The cheap filter, then in line: a word outside the heap's address range
 * or outside every arena costs a compare or one load of the arena index (in
 * cache), and no miss. A candidate's descriptor and its object's first line
 * are prefetched; it becomes the newest, the one before it goes into the
 * FIFO, and when that is full, the oldest comes out and is resolved. */
GCM_INLINE void consider(marker *m, uintptr_t v) {
    if (v - ms.heap_lo >= ms.heap_len) return;
    const heapArena *a = gcm_arena_index[v >> GCM_ARENA_SHIFT];
    if (!a) return;
    const pagedesc *d = desc_of(ms.pages, a, v);
    __builtin_prefetch(d);
    __builtin_prefetch((const void *)v);
    if (m->newest) {
        if (m->tail - m->head == FIFO_LEN) {
            cand *c = &ms.fifo[m->head++ % FIFO_LEN];
            work w = resolve(c->v, c->desc);
            if (w.n) push(m, w);
        }
        cand *c = &ms.fifo[m->tail++ % FIFO_LEN];
        c->v = m->newest;
        c->desc = m->newest_desc;
    }
    m->newest = v;
    m->newest_desc = d;
}

void gcm_mark_range(uintptr_t lo, uintptr_t hi) {
    marker m = marker_load();
    for (uintptr_t p = gcm_align_up(lo, sizeof(uintptr_t)); p + sizeof(uintptr_t) <= hi; p += sizeof(uintptr_t))
        consider(&m, *(const uintptr_t *)p);
    marker_store(&m);
}

void gcm_mark_ptr(uintptr_t p) {
    marker m = marker_load();
    consider(&m, p);
    marker_store(&m);
}

/* Scan what is on the stack first (each scan feeds the candidates and, once
 * the FIFO is full, resolves its oldest); resolve the FIFO's rest, then the
 * newest candidate, only when the stack runs dry. An object marked then is
 * scanned at once, without the trip through the stack: on a list, every
 * node takes that way. Objects are aligned and a whole number of words. */
void gcm_mark_drain(void) {
    marker m = marker_load();
    uintptr_t p = 0, end = 0; /* what is left to scan of the current object */
    for (;;) {
        for (; p < end; p += sizeof(uintptr_t)) consider(&m, *(const uintptr_t *)p);
        work w;
        if (m.top) {
            w = ms.stack[--m.top];
        } else if (m.head != m.tail) {
            const cand *c = &ms.fifo[m.head++ % FIFO_LEN];
            w = resolve(c->v, c->desc);
        } else if (m.newest) {
            w = resolve(m.newest, m.newest_desc);
            m.newest = 0;
        } else {
            break;
        }
        p = w.p;
        end = w.p + w.n;
    }
    marker_store(&m);
}

size_t gcm_mark_live_bytes(void) { return ms.live_bytes; }
