/*
 * malloc.c - the allocator's entry points off the fast path: large objects,
 * aligned and zeroed allocation, realloc, the free slow path and the error
 * reports. See malloc.h for the shape of the paths. The valgrind client
 * requests (vg.h) sit here, on the paths every object takes while valgrind
 * runs.
 */
#include "malloc.h"
#include "check.h"
#include "lstash.h"
#include "mheap.h"
#include "os.h"
#include "vg.h"

#include <errno.h>
#include <string.h>

#ifdef GCMALLOC_VALGRIND
bool gcm_vg_on;
#endif

static void *alloc_small(mcache *c, unsigned spc) {
    if (!c) return gcm_mcache_orphan_alloc(spc);
    void *p = mspan_alloc_fast(c->alloc[spc]);
    return p ? p : gcm_mcache_refill(c, spc);
}

/* A large object: from the thread's stash (lstash.c) when it has a span of
 * that length, else from the mheap. */
static void *alloc_large(mcache *c, size_t size, bool noscan) {
    void *p = c && !gcm_check_on ? gcm_lstash_take(c, size, noscan) : NULL;
    return p ? p : gcm_mheap_alloc_large(size, 0, noscan);
}

static void *alloc_any(mcache *c, size_t size, bool noscan) {
    size = gcm_check_size(size);
    if (size <= GCM_MAX_SMALL) {
        unsigned sc = noscan ? gcm_size_class_noscan(size) : gcm_size_class(size);
        return alloc_small(c, gcm_span_class(sc, noscan));
    }
    return alloc_large(c, size, noscan);
}

static void *alloc_aligned(mcache *c, size_t size, size_t align) {
    if (align <= GCM_MIN_ALIGN) return alloc_any(c, size, false);
    size = gcm_check_size(size);
    if (size <= GCM_MAX_SMALL && align <= GCM_PAGE_SIZE) {
        unsigned k = gcm_size_class_aligned(size, align);
        if (k) return alloc_small(c, gcm_span_class(k, false));
    }
    return gcm_mheap_alloc_large(size, align, false);
}

void *gcm_alloc(mcache *c, size_t size, bool noscan) { return gcm_vg_alloc(alloc_any(c, size, noscan), size, false); }

void *gcm_alloc_aligned(mcache *c, size_t size, size_t align) {
    return gcm_vg_alloc(alloc_aligned(c, size, align), size, false);
}

void *gcm_alloc_zeroed(mcache *c, size_t n, size_t size) {
    size_t total;
    if (__builtin_mul_overflow(n, size, &total)) {
        errno = ENOMEM;
        return NULL;
    }
    size_t want = gcm_check_size(total);
    if (want <= GCM_MAX_SMALL) {
        void *p = gcm_vg_alloc(alloc_small(c, gcm_span_class(gcm_size_class(want), false)), total, false);
        if (p) memset(p, 0, total);
        return p;
    }
    void *p = alloc_large(c, want, false);
    if (!p) return NULL;
    gcm_vg_alloc(p, total, true);
    if (gcm_span_of((uintptr_t)p)->needzero) memset(p, 0, total);
    return p;
}

/* Grow large span s in place; the spans the thread stashed may be what is
 * in the way (a stashed span is still in use to the mheap). */
static bool grow_large(mcache *c, mspan *s, size_t size) {
    if (gcm_mheap_resize_large(s, size)) return true;
    if (!c) return false;
    gcm_lstash_flush(c);
    return gcm_mheap_resize_large(s, size);
}

void *gcm_realloc_obj(mcache *c, void *p, size_t size, const char *fn) {
    if (GCM_UNLIKELY(gcm_check_on)) return gcm_check_realloc(c, p, size, fn);
    size_t idx;
    mspan *s = gcm_lookup_strict(p, &idx, fn);
    bool large = mspan_is_large(s);
    if (!mspan_is_allocated(s, idx, GCM_LOAD(&s->owner) == c)) gcm_fatal_ptr(fn, "double free", p, "(the object is not allocated)");
    size_t old = s->elemsize, was = gcm_vg_size(s, idx); /* was < old: the requested size, under valgrind */
    if (size <= old) {
        /* A shrink keeps p; a large object gives back whole tail pages. */
        if (large && (old - size) >= GCM_PAGE_SIZE) gcm_mheap_resize_large(s, size);
        return gcm_vg_resize(s, p, was, size);
    }
    if (large && grow_large(c, s, size)) return gcm_vg_resize(s, p, was, size);
    void *q = gcm_alloc(c, size, gcm_spanclass_noscan(s->spanclass));
    if (!q) return NULL; /* errno is ENOMEM; p is untouched */
    memcpy(q, p, was);
    gcm_dealloc(p, fn);
    return q;
}

/* Free large object p of span s: to the thread's stash, else the mheap. */
GCM_INLINE void free_large(mspan *s, void *p, const char *fn) {
    if ((uintptr_t)p != s->base) gcm_report_interior(fn, p, s);
    /* The one alloc bit decides who frees it, so two racing frees of the
     * same object cannot both return its pages. */
    uint64_t all = ~(uint64_t)0; /* uint64_t is uintptr_t on x86-64 Linux: gcm_cas takes it as it is */
    if (!gcm_cas(&s->allocBits[0], &all, ~(uint64_t)1)) gcm_fatal_ptr(fn, "double free", p, "");
    if (gcm_check_on || !gcm_lstash_put(gcm_tls_mcache, s)) gcm_mheap_free_large(s);
}

/* Free small object p of span s: into the span if this thread holds it,
 * else the remote path (a single thread's frees into its mcentral's spans
 * go straight into the bitmap, mspan_free_alone). */
GCM_INLINE void release_small(mspan *s, void *p, const char *fn) {
    mcache *own = gcm_tls_own;
    if (own && GCM_LOAD(&s->owner) == own) { /* a retired span of ours, or any while detoured (mcache.h) */
        mspan_free_owned(s, mspan_obj_index(s, (uintptr_t)p), fn);
        mcache_note_free(own, s);
        return;
    }
    /* Read before the push: once p is on the list, s may be emptied and
     * freed (an announced span may not: it waits for the drain). */
    mcache *holder = GCM_LOAD(&s->owner);
    unsigned spc = s->spanclass;
    int pushed = __libc_single_threaded && !holder && !mspan_needs_sweep(s)
                     ? mspan_free_alone(s, mspan_obj_index(s, (uintptr_t)p), fn)
                     : mspan_free_remote(s, p, fn);
    if (pushed == XPUSH_ANNOUNCE) mcentral_notify(&gcm_heap.central[spc], s);
    else if (pushed == XPUSH_FIRST) mcache_note_remote(holder, spc);
}

/* Object p of span s back to its span, large or small (a constant at each
 * call but check mode's). */
GCM_INLINE void release(mspan *s, void *p, const char *fn, bool large) {
    if (large) free_large(s, p, fn);
    else release_small(s, p, fn);
}

/* free off its fast path: valgrind's record of every free while it runs
 * (the detour), before p can be reused; then check mode's quarantine, which
 * frees p later by gcm_dealloc_release, or the release itself. */
GCM_INLINE void dealloc_off_path(void *p, const char *fn, mspan *s, bool large) {
    gcm_vg_free(p);
    if (GCM_UNLIKELY(gcm_check_on)) gcm_check_free(s, p, fn);
    else release(s, p, fn, large);
}

void gcm_dealloc_slow(void *p, const char *fn, mspan *s) { dealloc_off_path(p, fn, s, false); }
void gcm_dealloc_large(void *p, const char *fn, mspan *s) { dealloc_off_path(p, fn, s, true); }
void gcm_dealloc_release(mspan *s, void *p, const char *fn) { release(s, p, fn, mspan_is_large(s)); }

void gcm_report_bad(const char *fn, const void *p) {
    /* A page-aligned address in a free page of our heap is most likely a
     * large object freed twice (its span is gone). */
    heapArena *a = gcm_arena_of((uintptr_t)p);
    if (a && ((uintptr_t)p & (GCM_PAGE_SIZE - 1)) == 0)
        gcm_fatal_ptr(fn, "double free", p, "(no live object starts here)");
    gcm_fatal_ptr(fn, "invalid pointer", p, "(not allocated by gcmalloc)");
}

void gcm_report_free(const void *p, const char *fn, const mspan *s) {
    if (s) gcm_report_interior(fn, p, s);
    gcm_report_bad(fn, p);
}

void gcm_report_interior(const char *fn, const void *p, const mspan *s) {
    char detail[128];
    size_t n;
    uintptr_t obj = s->base + (mspan_is_large(s) ? 0 : mspan_obj_index(s, (uintptr_t)p) * s->elemsize);
    n = gcm_fmt_str(detail, 0, sizeof detail, "(inside the object at ");
    n = gcm_fmt_hex(detail, n, sizeof detail, obj);
    n = gcm_fmt_str(detail, n, sizeof detail, " of ");
    n = gcm_fmt_dec(detail, n, sizeof detail, s->elemsize);
    gcm_fmt_str(detail, n, sizeof detail, " bytes)");
    gcm_fatal_ptr(fn, "interior pointer", p, detail);
}

bool gcm_trim(mcache *c) {
    if (!gcm_heap.ready) return false;
    /* The caller's own spans too: empty ones can then go back to the heap. */
    if (c != &gcm_empty_mcache) gcm_mcache_flush(c);
    /* Spans emptied by remote frees go back to the heap first. */
    gcm_mheap_flush_pending();
    gcm_mheap_release_empty();
    return gcm_mheap_scavenge_all() > 0;
}
