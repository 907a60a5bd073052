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

/* All of the marker's state in one object, which the roots leave out (it
 * holds heap addresses that are not references). */
static struct {
    work *stack;       /* the mark stack: OS memory, kept between cycles */
    size_t top, cap;   /* entries used / mapped */
    uintptr_t heap_lo, heap_len; /* every arena lies in [heap_lo, heap_lo + heap_len) */
    size_t live_bytes, live_objects;
} ms;
#define stack ms.stack
#define top ms.top
#define cap ms.cap
#define heap_lo ms.heap_lo
#define heap_len ms.heap_len
#define live_bytes ms.live_bytes
#define live_objects ms.live_objects

uintptr_t gcm_mark_state_lo(void) { return (uintptr_t)&ms; }
uintptr_t gcm_mark_state_hi(void) { return (uintptr_t)(&ms + 1); }

/* Every object starts unmarked except those on the span's remote-free list
 * (xfree). The program freed them already and nothing points to them; the
 * merge that clears their bits is their one free. Unmarked, they would be
 * garbage, and the owner's sweep could free them first: it merges the list
 * and then sweeps, and a collection that stops it in between, after other
 * threads pushed more frees, counted those as garbage. The sweep freed them,
 * their slots were handed out again, and the merge that followed freed the
 * new, live objects or reported a double free (the lost objects of #4).
 * Marked, a freed object is neither garbage nor a leak, whenever it is
 * merged. An object pushed after this stop was still held by the freeing
 * thread during it, so it is marked through that thread. */
static void start_marks(mspan *s, void *ctx) {
    for (size_t w = 0; w < s->nwords; w++) GCM_STORE(&s->gcmarkBits[w], 0);
    mspan_remote_bits(s, s->gcmarkBits);
}

bool gcm_mark_begin(void) {
    if (!stack) {
        cap = ((size_t)1 << 20) / sizeof(work);
        stack = gcm_os_map(NULL, cap * sizeof(work));
        if (!stack) return false;
    }
    top = 0;
    live_bytes = live_objects = 0;
    uintptr_t lo = UINTPTR_MAX, hi = 0;
    const pageAlloc *pa = &gcm_heap.pages;
    for (uint32_t i = 0; i < pa->narenas; i++) {
        uintptr_t b = pa->arenas[i]->base;
        if (b < lo) lo = b;
        if (b + GCM_ARENA_SIZE > hi) hi = b + GCM_ARENA_SIZE;
    }
    heap_lo = lo;
    heap_len = hi > lo ? hi - lo : 0;
    gcm_mheap_each_span(start_marks, NULL);
    return true;
}

/* Out of stack: grow it (the old entries move with it). If the OS refuses,
 * drop the entry - the object stays marked but unscanned, so what only it
 * reaches could be freed: that would be a bug, so stop instead. */
static void grow(void) {
    size_t ncap = cap * 2;
    void *p = gcm_os_remap(stack, cap * sizeof(work), ncap * sizeof(work));
    if (!p) gcm_fatal("gc: out of memory for the mark stack");
    stack = p;
    cap = ncap;
}

GCM_INLINE void push(uintptr_t p, size_t n) {
    if (GCM_UNLIKELY(top == cap)) grow();
    stack[top].p = p;
    stack[top].n = n;
    top++;
}

GCM_INLINE void mark_word(uintptr_t v) {
    if (v - heap_lo >= heap_len) return;
    heapArena *a = gcm_arena_index[v >> GCM_ARENA_SHIFT];
    if (!a) return;
    mspan *s = a->spans[(v >> GCM_PAGE_SHIFT) & (GCM_PAGES_PER_ARENA - 1)];
    if (!s) return;
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
    uint64_t *m = &s->gcmarkBits[idx >> 6], mbit = (uint64_t)1 << (idx & 63);
    if (*m & mbit) return;
    *m |= mbit;
    live_bytes += s->elemsize;
    live_objects++;
    if (!(s->spanclass & 1)) push(obj, s->elemsize);
}

static void scan(uintptr_t lo, uintptr_t hi) {
    lo = gcm_align_up(lo, sizeof(uintptr_t));
    for (uintptr_t p = lo; p + sizeof(uintptr_t) <= hi; p += sizeof(uintptr_t)) mark_word(*(const uintptr_t *)p);
}

void gcm_mark_range(uintptr_t lo, uintptr_t hi) {
    if (lo < hi) scan(lo, hi);
}

void gcm_mark_ptr(uintptr_t p) { mark_word(p); }

void gcm_mark_drain(void) {
    while (top) {
        work w = stack[--top];
        scan(w.p, w.p + w.n);
    }
}

size_t gcm_mark_live_bytes(void) { return live_bytes; }
size_t gcm_mark_live_objects(void) { return live_objects; }
