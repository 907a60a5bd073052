/*
 * mcache.c - creating, refilling and releasing per-thread caches.
 */
#include "mcache.h"
#include "mheap.h"

#include <errno.h>

mcache gcm_empty_mcache = { .alloc = { [0 ... GCM_NUM_SPAN_CLASSES - 1] = &gcm_empty_span } };
GCM_TLS mcache *gcm_tls_mcache = &gcm_empty_mcache;
GCM_TLS uint8_t gcm_tls_state;

/* Orphan allocations: one shared mcache; orphan_lock guards all of it. */
static gcm_lock orphan_lock = GCM_LOCK_INIT;
static mcache orphan = { .alloc = { [0 ... GCM_NUM_SPAN_CLASSES - 1] = &gcm_empty_span } };

static void register_cache(mcache *c) {
    mheap *h = &gcm_heap;
    c->prev = NULL;
    c->next = h->allcaches;
    if (h->allcaches) h->allcaches->prev = c;
    h->allcaches = c;
}

mcache *gcm_mcache_create(void) {
    mheap *h = &gcm_heap;
    gcm_lock_acquire(&h->lock);
    mcache *c = gcm_fixalloc_alloc(&h->cachealloc);
    if (c) {
        for (unsigned i = 0; i < GCM_NUM_SPAN_CLASSES; i++) c->alloc[i] = &gcm_empty_span;
        register_cache(c);
    }
    gcm_lock_release(&h->lock);
    return c;
}

void gcm_mcache_flush(mcache *c) {
    for (unsigned i = 0; i < GCM_NUM_SPAN_CLASSES; i++) {
        mspan *s = c->alloc[i];
        if (s == &gcm_empty_span) continue;
        c->alloc[i] = &gcm_empty_span;
        mcentral_uncache_span(&gcm_heap.central[i], s);
    }
}

void gcm_mcache_destroy(mcache *c) {
    mheap *h = &gcm_heap;
    gcm_mcache_flush(c);
    gcm_lock_acquire(&h->lock);
    if (c->prev) c->prev->next = c->next;
    else h->allcaches = c->next;
    if (c->next) c->next->prev = c->prev;
    gcm_fixalloc_free(&h->cachealloc, c);
    gcm_lock_release(&h->lock);
}

void *gcm_mcache_refill(mcache *c, unsigned spc) {
    mspan *s = c->alloc[spc];
    if (s != &gcm_empty_span) {
        if (mspan_refill_cache(s)) return mspan_alloc_fast(s);
        c->alloc[spc] = &gcm_empty_span;
        mcentral_uncache_span(&gcm_heap.central[spc], s);
    }
    s = mcentral_cache_span(&gcm_heap.central[spc], c);
    if (!s) {
        errno = ENOMEM;
        return NULL;
    }
    c->alloc[spc] = s;
    return mspan_alloc_fast(s);
}

void *gcm_mcache_orphan_alloc(unsigned spc) {
    gcm_lock_acquire(&orphan_lock);
    void *p = mspan_alloc_fast(orphan.alloc[spc]);
    if (!p) p = gcm_mcache_refill(&orphan, spc);
    gcm_lock_release(&orphan_lock);
    return p;
}

void gcm_mcache_orphan_lock(void) { gcm_lock_acquire(&orphan_lock); }
void gcm_mcache_orphan_unlock(void) { gcm_lock_release(&orphan_lock); }
void gcm_mcache_orphan_reinit(void) { gcm_lock_reinit(&orphan_lock); }
