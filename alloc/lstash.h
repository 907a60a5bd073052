/*
 * lstash.h - the per-thread stash of freed large spans (see lstash.c).
 */
#ifndef GCM_LSTASH_H
#define GCM_LSTASH_H

#include "mcache.h"
#include "mheap.h"

#define LSTASH_MAX_PAGES (4 * LCACHE_MAX_PAGES) /* 512 KiB */

/* lstash_n = n, with the stores around it kept on their side (x86 makes
 * them visible in program order: see lstash.c on fork). */
GCM_INLINE void gcm_lstash_set_count(mcache *c, unsigned n) {
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    GCM_STORE(&c->lstash_n, (uint8_t)n);
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
}

/* The object of free large span s, allocated (it left the stash). */
GCM_INLINE void *gcm_lstash_hand_out(mspan *s, size_t size, size_t npages) {
    /* The object's address is in a register before its alloc bit is set:
     * a collection that stops the thread in between finds it there (as
     * gcm_mheap_alloc_large). */
    void *p = (void *)s->base;
    __asm__ volatile("" : "+r"(p)::"memory");
    s->needzero = 1; /* the pages hold the last object's data */
    mspan_reuse_large(s, size);
    if (GCM_UNLIKELY(GCM_LOAD(&gcm_heap.gc_pacing))) gcm_mheap_note_alloc(npages << GCM_PAGE_SHIFT);
    return p;
}

/* The object of the span in slot k of the n stashed, which leaves the stash
 * (the slots above it move down, hidden meanwhile). For the newest
 * (k = n - 1) nothing moves, and the count drops once. */
GCM_INLINE void *gcm_lstash_take_slot(mcache *c, unsigned k, unsigned n, size_t size, size_t npages) {
    mspan *s = c->lstash[k];
    if (k + 1 < n) {
        gcm_lstash_set_count(c, k);
        for (unsigned j = k; j + 1 < n; j++) GCM_STORE(&c->lstash[j], c->lstash[j + 1]);
    }
    gcm_lstash_set_count(c, n - 1);
    c->lstash_pages = (uint16_t)(c->lstash_pages - npages);
    return gcm_lstash_hand_out(s, size, npages);
}

/* gcm_lstash_take when the newest stashed span does not serve. */
GCM_NOINLINE void *gcm_lstash_take_other(mcache *c, size_t npages, unsigned spanclass, size_t size);

/* A large object of `size` bytes from a span c's thread stashed, or from a
 * batch the large-span cache hands over; NULL when neither has a span of
 * that length and class (the caller asks the mheap). Owner thread only.
 * Inline for the common case, the newest span (the one freed last): a
 * malloc+free of 64 KiB in a loop spent 37 instructions of its ~190 in the
 * call, where tcmalloc's whole pair runs 91. */
GCM_INLINE void *gcm_lstash_take(mcache *c, size_t size, bool noscan) {
    if (size > ((size_t)LCACHE_MAX_PAGES << GCM_PAGE_SHIFT)) return NULL; /* never stashed (and npages cannot wrap) */
    size_t npages = (size + GCM_PAGE_SIZE - 1) >> GCM_PAGE_SHIFT;
    unsigned spanclass = noscan ? 1 : 0, n = c->lstash_n;
    mspan *s;
    if (!n || (s = c->lstash[n - 1])->npages != npages || s->spanclass != spanclass)
        return gcm_lstash_take_other(c, npages, spanclass, size);
    return gcm_lstash_take_slot(c, n - 1, n, size, npages);
}

/* gcm_lstash_put with the stash full: the older half goes to the
 * large-span cache, more while `need` pages would not fit beside the rest. */
GCM_NOINLINE void gcm_lstash_give_oldest(mcache *c, size_t need);

/* Keep the freed large span s (its alloc bit already cleared) in c; false
 * when s does not qualify (too long, or c is the empty mcache). */
GCM_INLINE bool gcm_lstash_put(mcache *c, mspan *s) {
    size_t npages = s->npages;
    if (npages > LCACHE_MAX_PAGES || c == &gcm_empty_mcache) return false;
    GCM_STORE(&s->allocCount, 0);
    if (c->lstash_n == MCACHE_LSTASH || c->lstash_pages + npages > LSTASH_MAX_PAGES) gcm_lstash_give_oldest(c, npages);
    unsigned n = c->lstash_n;
    GCM_STORE(&c->lstash[n], s);
    gcm_lstash_set_count(c, n + 1);
    c->lstash_pages = (uint16_t)(c->lstash_pages + npages);
    return true;
}

/* Every stashed span to the large-span cache. */
void gcm_lstash_flush(mcache *c);

#endif
