/*
 * mcentral.c - see mcentral.h for the lists and the pending-stack protocol.
 */
#include "mcentral.h"
#include "mcache.h"
#include "mheap.h"
#include "sizeclass.h"

/* Announcements after which the announcing thread drains (mcentral.h). Any
 * small number does: frag's final RSS was the same for 1 to 64. */
#define MCENTRAL_DRAIN_AT 8
/* Empty spans kept per span class (mcentral.h): with one-page spans, 8. */
#define MCENTRAL_EMPTY_BYTES ((size_t)64 << 10)

static void list_push(spanList *l, mspan *s, uint8_t which) {
    s->prev = NULL;
    s->next = l->first;
    if (l->first) l->first->prev = s;
    l->first = s;
    l->n++;
    s->list = which;
}

static void list_remove(mcentral *c, mspan *s) {
    spanList *l = s->list == SPAN_LIST_FULL ? &c->full : s->list == SPAN_LIST_EMPTY ? &c->empty : &c->partial;
    if (s->prev) s->prev->next = s->next;
    else l->first = s->next;
    if (s->next) s->next->prev = s->prev;
    s->next = s->prev = NULL;
    s->list = SPAN_LIST_NONE;
    l->n--;
}

/* File an unowned span (xfree already merged) where it belongs, after
 * freeing its garbage. Lock held. */
static void file_span(mcentral *c, mspan *s) {
    if (mspan_needs_sweep(s)) mspan_sweep(s);
    if (s->list != SPAN_LIST_NONE) list_remove(c, s);
    if (s->allocCount == 0) {
        if (c->empty.n < c->empty_max) list_push(&c->empty, s, SPAN_LIST_EMPTY);
        else gcm_mheap_free_span(s);
    } else if (s->allocCount >= s->nelems) {
        list_push(&c->full, s, SPAN_LIST_FULL);
    } else {
        list_push(&c->partial, s, SPAN_LIST_PARTIAL);
    }
}

static void drain_pending(mcentral *c) {
    __atomic_store_n(&c->npending, 0, __ATOMIC_RELAXED);
    mspan *s = __atomic_exchange_n(&c->pending, NULL, __ATOMIC_ACQUIRE);
    while (s) {
        mspan *next = s->pending_next;
        uintptr_t x = gcm_xchg(&s->xfree, XFREE_NOTIFY);
        mspan_merge_remote(s, x & ~(uintptr_t)XFREE_STATE);
        file_span(c, s);
        s = next;
    }
}

void mcentral_init(mcentral *c, unsigned spanclass) {
    gcm_lock_init(&c->lock);
    c->spanclass = spanclass;
    size_t span_bytes = (size_t)gcm_class_npages[spanclass >> 1] << GCM_PAGE_SHIFT;
    if (span_bytes) /* 0 for the large span classes, which have no mcentral use */
        c->empty_max = span_bytes < MCENTRAL_EMPTY_BYTES ? MCENTRAL_EMPTY_BYTES / span_bytes : 1;
}

void mcentral_notify(mcentral *c, mspan *s) {
    mspan *head = __atomic_load_n(&c->pending, __ATOMIC_RELAXED);
    do {
        s->pending_next = head;
    } while (!__atomic_compare_exchange_n(&c->pending, &head, s, true, __ATOMIC_RELEASE, __ATOMIC_RELAXED));
    if (__atomic_add_fetch(&c->npending, 1, __ATOMIC_RELAXED) >= MCENTRAL_DRAIN_AT && gcm_lock_try(&c->lock)) {
        drain_pending(c);
        gcm_lock_release(&c->lock);
    }
}

/* A span of list l, now owned by owner, or NULL. */
static mspan *take_from(mcentral *c, spanList *l, mcache *owner) {
    for (mspan *s = l->first; s; s = s->next) {
        uintptr_t expect = XFREE_NOTIFY;
        /* A span announced meanwhile stays for the next drain. */
        if (!gcm_cas(&s->xfree, &expect, XFREE_OWNED)) continue;
        list_remove(c, s);
        GCM_STORE(&s->owner, owner);
        return s;
    }
    return NULL;
}

/* s, given back by its owner (cache already released): unowned from here on.
 * Take the remote frees and switch to NOTIFY in one step: from here on a
 * remote free announces the span, and the drain (which needs this lock)
 * finds it filed. Lock held. */
static void file_returned(mcentral *c, mspan *s) {
    uintptr_t x = gcm_xchg(&s->xfree, XFREE_NOTIFY);
    GCM_STORE(&s->owner, NULL);
    mspan_merge_remote(s, x & ~(uintptr_t)XFREE_STATE);
    file_span(c, s);
}

mspan *mcentral_exchange(mcentral *c, mcache *owner, mspan *give) {
    if (give) mspan_release_cache(give);
    gcm_lock_acquire(&c->lock);
    if (give) file_returned(c, give);
    mspan *s = NULL;
    if (owner) {
        drain_pending(c);
        /* Partial spans first: the heap stays compact, and the empty ones
         * can still go back. */
        s = take_from(c, &c->partial, owner);
        if (!s) s = take_from(c, &c->empty, owner);
    }
    gcm_lock_release(&c->lock);
    return s;
}

void mcentral_uncache_span(mcentral *c, mspan *s) { mcentral_exchange(c, NULL, s); }

void mcentral_flush_pending(mcentral *c) {
    if (!__atomic_load_n(&c->pending, __ATOMIC_RELAXED)) return;
    gcm_lock_acquire(&c->lock);
    drain_pending(c);
    gcm_lock_release(&c->lock);
}

void mcentral_release_empty(mcentral *c) {
    gcm_lock_acquire(&c->lock); /* no peek without it: the list links are plain stores */
    for (mspan *s; (s = c->empty.first) != NULL;) {
        list_remove(c, s);
        gcm_mheap_free_span(s);
    }
    gcm_lock_release(&c->lock);
}

void mcentral_sweep(mcentral *c) {
    gcm_lock_acquire(&c->lock);
    drain_pending(c);
    /* Re-filing moves spans between the lists (or frees them): detach both
     * lists first. */
    mspan *todo[2] = {c->partial.first, c->full.first};
    for (int l = 0; l < 2; l++) {
        for (mspan *s = todo[l], *next; s; s = next) {
            next = s->next;
            if (mspan_needs_sweep(s) && GCM_LOAD(&s->xfree) == XFREE_NOTIFY) file_span(c, s);
        }
    }
    gcm_lock_release(&c->lock);
}
