/*
 * mcentral.h - the central free lists of one span class (Go <= 1.14's
 * "locked mcentral").
 *
 * An mcentral owns the spans of its class that no mcache holds, on two lists:
 * partial (some free objects) and full (none, as far as it knows). mcaches
 * take spans with free space from it and give back spans they have used up.
 *
 * Remote frees into a span that sits here do not take the lock: the freeing
 * thread pushes the object on the span's xfree list, and the first such push
 * after the mcentral last looked (XFREE_NOTIFY -> XFREE_NOTIFIED) also pushes
 * the span on `pending`, a lock-free stack. Whoever next takes the lock drains
 * it: merges each span's remote frees, moves it from full to partial, and
 * returns it to the mheap when it is empty. So the lock is taken once per span
 * per round of frees, never once per object.
 *
 * The refill of the class is not enough to drain: a program that frees its
 * objects of a class and never allocates that class again would keep every
 * span it emptied (frag: 66 MiB). So every MCENTRAL_DRAIN_AT-th announcement
 * also drains, by the announcing thread, if the lock is free (a free never
 * waits for an mcentral's lock). A span announced by its first remote free usually receives
 * the rest of its frees before it is drained, so the spans a later drain finds
 * empty are returned; at most a few announcements per class stay pending.
 *
 * Emptied spans are kept, up to MCENTRAL_EMPTY_BYTES of them (at least one
 * span), on a third list, `empty`, and handed out again after the partial
 * ones: a queue of 4 KiB objects empties a span every few frees (every second
 * one, with Go's one-page spans of two) and needs a new one as often, and
 * giving each back to the mheap and taking it again cost a page-allocator
 * search, two summary updates and a span's set-up every time (fifo/4096, two
 * to a span: 141 ns per malloc+free against tcmalloc's 5). A span that would
 * exceed the bound goes back to the mheap; malloc_trim returns them all
 * (mcentral_release_empty). They are what an idle program keeps beyond the
 * scavenger's floor, so the bound is small.
 *
 * Invariants (lock held):
 *  - a span on partial/full has owner == NULL and xfree state NOTIFY or
 *    NOTIFIED; NOTIFY implies an empty xfree list;
 *  - a NOTIFIED span is on `pending` or about to be, so it is neither handed
 *    out nor freed until a drain has seen it (the stack links through it);
 *  - lock order: mcentral.lock before mheap.lock, never the reverse.
 */
#ifndef GCM_MCENTRAL_H
#define GCM_MCENTRAL_H

#include "lock.h"
#include "mspan.h"

typedef struct spanList {
    mspan *first;
    size_t n;
} spanList;

typedef struct mcentral {
    gcm_lock lock;
    unsigned spanclass;
    spanList partial; /* must hold lock */
    spanList full;    /* must hold lock */
    spanList empty;   /* must hold lock: allocCount == 0, at most empty_max */
    size_t empty_max; /* constant: spans of MCENTRAL_EMPTY_BYTES, at least 1 */
    mspan *pending;   /* atomic: spans announced by remote frees */
    size_t npending;  /* atomic: announcements since the last drain (a hint, may be off by a few) */
} __attribute__((aligned(64))) mcentral;

void mcentral_init(mcentral *c, unsigned spanclass);
/* One trip to the lock for an mcache's central refill: `give` (unless NULL)
 * comes back from its owner, then a span with free objects (a partial one
 * first, then an empty one) goes to `owner`, no cache loaded; NULL when there
 * is none (or owner is NULL): the caller then needs a new span from the
 * mheap. */
mspan *mcentral_exchange(mcentral *c, struct mcache *owner, mspan *give);
/* The owner gives s back. */
void mcentral_uncache_span(mcentral *c, mspan *s);
/* Push s (just announced by mspan_free_remote) on the pending stack. */
void mcentral_notify(mcentral *c, mspan *s);
/* Free the garbage of every span the mcentral holds (after a collection). */
void mcentral_sweep(mcentral *c);
/* Take the lock and process pending spans (malloc_trim, statistics). */
void mcentral_flush_pending(mcentral *c);
/* Return the kept empty spans to the mheap (malloc_trim). */
void mcentral_release_empty(mcentral *c);

#endif
