/*
 * malloc.h - the allocator's entry points, and its fast paths.
 *
 *   malloc(n), n <= 32 KiB:  size class -> this thread's mcache -> the span
 *                            of that class -> next free object (no lock);
 *                            on a miss: mcache refill -> mcentral -> mheap.
 *   malloc(n), n > 32 KiB:   a span of its own from the mheap (mheap.lock).
 *   free(p):                 arena index -> span -> object index; the owner
 *                            thread clears a bit, another thread pushes p on
 *                            the span's remote-free list (one CAS), the only
 *                            thread of a process clears the bit of a span
 *                            its mcentral holds.
 *
 * The malloc fast path itself is mspan_take() on the thread's current span
 * (shim/malloc.c). Everything else the shim exports is built from the
 * functions here; the shim decides only which mcache a call uses (it attaches
 * a thread's mcache on its first allocation). `fn` names the public function
 * for error messages.
 */
#ifndef GCM_MALLOC_H
#define GCM_MALLOC_H

#include "arena.h"
#include "check.h"
#include "mcache.h"
#include "sizeclass.h"
#include "vg.h"

/* Any size; c == NULL means "no mcache for this thread" (orphan path).
 * NULL with errno ENOMEM when the request cannot be met. */
void *gcm_alloc(mcache *c, size_t size, bool noscan);
/* align: a power of two. */
void *gcm_alloc_aligned(mcache *c, size_t size, size_t align);
void *gcm_alloc_zeroed(mcache *c, size_t n, size_t size);
void *gcm_realloc_obj(mcache *c, void *p, size_t size, const char *fn);

__attribute__((noreturn, cold)) void gcm_report_bad(const char *fn, const void *p);
__attribute__((noreturn, cold)) void gcm_report_interior(const char *fn, const void *p, const struct mspan *s);
/* free's reports: gcm_report_interior when s, else gcm_report_bad. Declared
 * as returning, so that free leaves by a jump to it; the span last, as in
 * gcm_dealloc_slow (see mspan_double_free). */
__attribute__((cold, noinline)) void gcm_report_free(const void *p, const char *fn, const struct mspan *s);
/* free of small object p in span s, off the fast path: a span this thread
 * does not hold, check mode's quarantine. */
void gcm_dealloc_slow(void *p, const char *fn, mspan *s);
/* gcm_dealloc_slow for a large object, which free calls itself: the
 * generic slow path's frame and tests cost a 64 KiB malloc+free in a loop
 * ~30 of its ~160 instructions. */
void gcm_dealloc_large(void *p, const char *fn, mspan *s);
/* The free itself, without check mode's quarantine (gcm_dealloc_slow's part
 * that returns the object to its span). */
void gcm_dealloc_release(mspan *s, void *p, const char *fn);

/* The span of object p, which must be the start of an object; reports and
 * aborts otherwise. A large span's interior passes here (its index is always
 * 0): free's fast path never meets large spans (they have no owner), and the
 * other paths use gcm_lookup_strict. *idx = the object's index in the span. */
GCM_INLINE size_t gcm_lookup_index(const mspan *s, const void *p, const char *fn) {
    bool exact;
    size_t idx = mspan_obj_index_exact(s, (uintptr_t)p, &exact);
    if (GCM_UNLIKELY(!exact)) gcm_report_interior(fn, p, s);
    return idx;
}
GCM_INLINE mspan *gcm_lookup(const void *p, size_t *idx, const char *fn) {
    mspan *s = gcm_span_of((uintptr_t)p);
    if (GCM_UNLIKELY(s == NULL)) gcm_report_bad(fn, p);
    *idx = gcm_lookup_index(s, p, fn);
    return s;
}

/* gcm_lookup for the paths off free's fast path, which may meet large spans:
 * p must also be the large object's first byte. */
GCM_INLINE mspan *gcm_lookup_strict(const void *p, size_t *idx, const char *fn) {
    mspan *s = gcm_lookup(p, idx, fn);
    if (GCM_UNLIKELY(mspan_is_large(s) && (uintptr_t)p != s->base)) gcm_report_interior(fn, p, s);
    return s;
}

/* free(p); free(NULL) does nothing. NULL needs no test of its own on the
 * way: address 0 lies in no arena (an arena starts at its 64 MiB aligned
 * base, and a mapping at 0 reads as failure in gcm_arena_reserve), so it
 * fails the span lookup like any pointer that is not ours, and only that
 * cold branch tells the two apart. */
GCM_INLINE void gcm_dealloc(void *p, const char *fn) {
    mspan *s = gcm_span_of((uintptr_t)p);
    if (GCM_UNLIKELY(s == NULL)) {
        if (p != NULL) gcm_report_free(p, fn, NULL);
        return;
    }
    bool exact;
    size_t idx = mspan_obj_index_exact(s, (uintptr_t)p, &exact);
    if (GCM_UNLIKELY(!exact)) {
        gcm_report_free(p, fn, s);
        return;
    }
    mcache *c = gcm_tls_mcache;
    if (GCM_LIKELY(GCM_LOAD(&s->fastowner) == c)) {
        mspan_free_owned(s, idx, fn);
        return;
    }
    if (mspan_is_large(s)) {
        gcm_dealloc_large(p, fn, s);
        return;
    }
    gcm_dealloc_slow(p, fn, s);
}

/* Usable size of live object p (its requested size under valgrind, vg.h). */
GCM_INLINE size_t gcm_usable(const void *p, const char *fn) {
    size_t idx;
    mspan *s = gcm_lookup_strict(p, &idx, fn);
    if (GCM_UNLIKELY(!mspan_is_allocated(s, idx, GCM_LOAD(&s->owner) == gcm_tls_mcache)))
        gcm_fatal_ptr(fn, "invalid pointer", p, "(not the start of an allocated object)");
    if (GCM_UNLIKELY(gcm_check_on)) return gcm_check_usable(s, p, fn); /* never invite writes over the canary */
    return gcm_vg_size(s, idx);
}

/* malloc_trim(0): give back every free page; true when something was. */
bool gcm_trim(mcache *c);

#endif
