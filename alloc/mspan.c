/*
 * mspan.c - span bitmap operations off the fast path. See mspan.h for the
 * ownership rules and the xfree protocol.
 */
#include "mspan.h"
#include "sizeclass.h"
#include "vg.h"

#include <string.h>

mspan gcm_empty_span; /* allocCache == 0, owner == NULL: never allocates */
uint64_t gcm_sweep_freed_objects, gcm_sweep_freed_bytes; /* atomic: totals for statistics */
bool gcm_cpu_popcnt;
bool gcm_sweep_barred;

void mspan_release_cache(mspan *s) {
    uint64_t c = mspan_cached(s);
    if (!c) return;
    GCM_STORE(&s->allocCache, 0);
    GCM_STORE(&s->freedCache, 0);
    GCM_STORE(s->cacheWord, GCM_LOAD(s->cacheWord) & ~c);
    GCM_STORE(&s->allocCount, (uint16_t)(s->allocCount - gcm_popcount64(c)));
}

void mspan_init_small(mspan *s, unsigned spanclass) {
    unsigned c = spanclass >> 1;
    s->spanclass = (uint8_t)spanclass;
    s->elemsize = gcm_class_size[c];
    s->divmul = gcm_class_divmul[c];
    s->divlimit = s->divmul - 1;
    s->nelems = (uint16_t)gcm_class_nelems[c];
    memset(s->allocBits, 0, s->nwords * sizeof(uint64_t));
    memset(s->gcmarkBits, 0, s->nwords * sizeof(uint64_t));
    memset(s->scopeBits, 0, s->nwords * sizeof(uint64_t));
    s->scoped = 0;
    s->sweep_gen = s->swept_gen = 0;
    s->reqsizes = s->stackids = NULL;
    if (s->nelems & 63) /* the bits past nelems read as allocated */
        s->allocBits[s->nwords - 1] = ~(uint64_t)0 << (s->nelems & 63);
    s->allocCount = 0;
    s->xfree = XFREE_OWNED;
    s->allocCache = s->freedCache = 0; /* loaded by the mcache that takes the span */
    s->cacheWord = &s->allocBits[0];
    s->freeindex = 0;
    s->fresh = 0; /* every object: the pages may be untouched */
    s->fastowner = NULL;
    s->cacheBase = s->base;
}

uint64_t mspan_fresh_page(mspan *s, uint64_t free) {
    uint64_t first = s->freeindex + gcm_ctz64_nonzero(free);
    uint64_t last_byte = (first * s->elemsize) | (GCM_PAGE_SIZE - 1); /* of the page, from base */
    uint64_t end = ((last_byte * s->divmul) >> 32) + 1;               /* objects starting up to it */
    if (end < first + MSPAN_FRESH_MIN) end = first + MSPAN_FRESH_MIN;
    if (end > s->nelems) end = s->nelems;
    s->fresh = (uint16_t)end;
    end -= s->freeindex;
    return end >= 64 ? free : free & (((uint64_t)1 << end) - 1);
}

void mspan_init_large(mspan *s, unsigned spanclass, size_t reqsize) {
    s->spanclass = (uint8_t)spanclass;
    s->elemsize = s->npages << GCM_PAGE_SHIFT;
    s->divmul = 0; /* index is always 0 */
    s->divlimit = UINT32_MAX;
    s->nelems = 1;
    s->fastowner = NULL; /* no mcache frees a large object on its fast path */
    s->sweep_gen = s->swept_gen = 0;
    s->reqsizes = s->stackids = NULL;
    s->xfree = XFREE_OWNED;
    s->cacheWord = &s->allocBits[0];
    s->allocCache = s->freedCache = 0;
    mspan_reuse_large(s, reqsize); /* the object's state; allocBits[0]: the one object, and padding */
}

void mspan_repair_orphaned(mspan *s) {
    /* The cache is loaded only when empty, and every store to it is whole,
     * so whatever the owner left cached are free objects of the word
     * cacheWord names: either their bits are set (reserved) or the owner
     * stopped before setting them. Either way they are free here. */
    *s->cacheWord &= ~mspan_cached(s);
    size_t n = 0;
    for (size_t w = 0; w < s->nwords; w++) n += gcm_popcount64(s->allocBits[w]);
    if (s->nelems & 63) n -= 64 - (s->nelems & 63); /* padding bits */
    s->allocCache = s->freedCache = 0;
    s->allocCount = (uint16_t)n;
}

int mspan_free_remote(mspan *s, void *p, const char *fn) {
    size_t idx = mspan_obj_index(s, (uintptr_t)p);
    if (GCM_UNLIKELY(!mspan_is_allocated(s, idx, false))) gcm_fatal_ptr(fn, "double free", p, "");
    uintptr_t old = __atomic_load_n(&s->xfree, __ATOMIC_RELAXED), nw;
    gcm_vg_quiet(true); /* p is a freed block for memcheck: the link is ours */
    do {
        *(uintptr_t *)p = old & ~(uintptr_t)XFREE_STATE;
        uintptr_t st = old & XFREE_STATE;
        nw = (uintptr_t)p | (st == XFREE_NOTIFY ? XFREE_NOTIFIED : st);
    } while (!gcm_cas(&s->xfree, &old, nw));
    gcm_vg_quiet(false);
    /* Sequentially consistent for mcache_note_remote; acquire-release for
     * this: the push that announces the span writes its
     * pending_next link (mcentral_notify), which the previous announcer wrote
     * before a drain reset the state; the drain's exchange and this CAS order
     * the two writes. */
    if ((old & XFREE_STATE) == XFREE_NOTIFY) return XPUSH_ANNOUNCE;
    return old == XFREE_OWNED ? XPUSH_FIRST : 0; /* OWNED with an empty list */
}

void mspan_merge_remote(mspan *s, uintptr_t list) {
    /* The list was published with release stores; the exchange that detached
     * it was an acquire, so the links read below are complete. */
    gcm_vg_quiet(true); /* the links live in freed blocks */
    while (list) {
        uintptr_t next = *(uintptr_t *)list;
        mspan_free_local(s, mspan_obj_index(s, list), "free()");
        list = next;
    }
    gcm_vg_quiet(false);
}

void mspan_take_remote(mspan *s) {
    uintptr_t x = gcm_xchg(&s->xfree, XFREE_OWNED);
    mspan_merge_remote(s, x & ~(uintptr_t)XFREE_STATE);
}

void mspan_remote_bits(const mspan *s, uint64_t *bits) {
    for (uintptr_t l = GCM_LOAD_ACQ(&s->xfree) & ~(uintptr_t)XFREE_STATE; l; l = *(const uintptr_t *)l) {
        size_t idx = mspan_obj_index(s, l);
        uint64_t *w = &bits[idx >> 6], bit = (uint64_t)1 << (idx & 63);
        if (*w & bit) return; /* pushed twice (a double free): the list loops from here on */
        *w |= bit;
    }
}

void mspan_double_free(size_t idx, const char *fn, const mspan *s) {
    gcm_fatal_ptr(fn, "double free", (void *)(s->base + idx * s->elemsize), "");
}

#ifdef GCMALLOC_FAULT_INJECTION
/* Test builds only (tests/unit/mspan/test_sweep_stopped.c compiles this file
 * itself): called after each word of a sweep pass, where a collection could
 * stop the owner. */
void (*gcm_sweep_word_hook)(mspan *s, size_t w);
#endif

/* One pass over s's words: free the garbage gcmarkBits hold. */
static size_t sweep_pass(mspan *s) {
    size_t freed = 0;
    for (size_t w = 0; w < s->nwords; w++) {
        /* Garbage already freed by the program since the collection (or
         * merged from the remote list) has its bit clear: skip it. */
        uint64_t kill = GCM_LOAD(&s->gcmarkBits[w]) & GCM_LOAD(&s->allocBits[w]);
        /* The cached word's set bits include the reserved objects, and a
         * garbage object the owner freed since went back into the cache
         * (mspan_free_owned): neither is to be freed again. */
        if (s->cacheWord == &s->allocBits[w]) kill &= ~mspan_cached(s);
        if (kill) {
            GCM_STORE(&s->allocBits[w], GCM_LOAD(&s->allocBits[w]) & ~kill);
            freed += gcm_popcount64(kill);
        }
#ifdef GCMALLOC_FAULT_INJECTION
        if (gcm_sweep_word_hook) gcm_sweep_word_hook(s, w);
#endif
    }
    return freed;
}

size_t mspan_sweep(mspan *s) {
    if (GCM_UNLIKELY(GCM_LOAD(&gcm_sweep_barred)))
        gcm_fatal_ptr("sweep", "internal error: a span swept while the collector marks:", (void *)s->base, "");
    /* A collection may stop the owner halfway through a pass. It records its
     * garbage for the whole span, so the rest of the pass frees the new
     * garbage and the words before are still to do; were swept_gen then set
     * to the older collection, the next sweep would free the new garbage a
     * second time - in slots handed out again meanwhile, to live objects.
     * So pass again, before anything is handed out, until no collection
     * came between: a slot freed already has its bit clear and is skipped. */
    uint32_t gen;
    size_t freed = 0;
    do {
        gen = __atomic_load_n(&s->sweep_gen, __ATOMIC_ACQUIRE);
        freed += sweep_pass(s);
    } while (__atomic_load_n(&s->sweep_gen, __ATOMIC_ACQUIRE) != gen);
    GCM_STORE(&s->allocCount, (uint16_t)(s->allocCount - freed));
    s->swept_gen = gen;
    if (freed) {
        __atomic_fetch_add(&gcm_sweep_freed_objects, freed, __ATOMIC_RELAXED);
        __atomic_fetch_add(&gcm_sweep_freed_bytes, freed * s->elemsize, __ATOMIC_RELAXED);
    }
    return freed;
}

void mspan_sweep_owned(mspan *s) {
    if (mspan_has_remote(s)) mspan_take_remote(s);
    mspan_sweep(s);
}
