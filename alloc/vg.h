/*
 * vg.h - valgrind memcheck client requests (cmake -DGCMALLOC_VALGRIND=ON).
 *
 * Valgrind replaces malloc only in libc and in the main program, never in
 * libgcmalloc.so: without these requests memcheck sees gcmalloc's arenas as
 * plain mmap'ed memory and finds nothing in a program's heap. With them,
 * every object is a memcheck block from the moment the allocator hands it
 * out (MALLOCLIKE) until free takes it back (FREELIKE), so use after free,
 * overflows, uninitialised reads and leaks are reported in the program as
 * they are with valgrind's own malloc.
 *
 * Only slow paths speak to valgrind. When the process starts under valgrind
 * (gcm_vg_start, before the first mcache exists) the shim's detour (shim.h)
 * is on for the life of the process, so every allocation and every free goes
 * through alloc/malloc.c, where the hooks are, and the detour records each
 * object's requested size (mspan.reqsizes; a large span's reqsize).
 * Without the option this header defines empty functions and gcm_vg_on is
 * the constant false: no valgrind code in the ordinary build.
 *
 * Invariants while valgrind runs:
 *  - an object is a memcheck block exactly while it is allocated, of its
 *    requested size (gcm_vg_size); the rest of its slot is no-access (so an
 *    overflow into it is reported) and malloc_usable_size returns the
 *    requested size, as valgrind's own malloc does;
 *  - gcmalloc's own accesses to freed objects (the remote-free list's links,
 *    alloc/mspan.c) happen with error reporting off for the calling thread
 *    (gcm_vg_quiet): other threads' errors are still reported meanwhile;
 *  - the collector stays off (gc/collect.c, with one warning line): its
 *    conservative scan reads uninitialised words, and its sweep frees objects
 *    without going through free.
 */
#ifndef GCM_VG_H
#define GCM_VG_H

#include "arena.h"
#include "mspan.h"
#include "os.h"

#ifdef GCMALLOC_VALGRIND
#include <valgrind/memcheck.h>

extern bool gcm_vg_on; /* set once at start-up, before any allocation */

/* Start-up (the heap's first step): true when running under valgrind. */
GCM_INLINE bool gcm_vg_start(void) {
    gcm_vg_on = RUNNING_ON_VALGRIND != 0;
    return gcm_vg_on;
}

/* New metadata memory [p, p + len): spans hold the addresses of their first
 * objects (base, cacheBase), which memcheck's leak check would take for
 * references, since it scans every readable and writable mapping. Mapped
 * PROT_WRITE alone, which x86-64 pages cannot express (they stay readable),
 * the metadata is left out of the scan. */
GCM_INLINE void gcm_vg_metadata(void *p, size_t len) {
    if (gcm_vg_on) gcm_os_write_only(p, len);
}

/* The size of live object idx of s as the program sees it. */
GCM_INLINE size_t gcm_vg_size(const mspan *s, size_t idx) {
    if (!gcm_vg_on) return s->elemsize;
    if (mspan_is_large(s)) return s->reqsize;
    return s->reqsizes ? s->reqsizes[idx] : s->elemsize; /* NULL: out of metadata memory */
}

/* p (NULL passes through) has just been allocated with `size` bytes. */
GCM_INLINE void *gcm_vg_alloc(void *p, size_t size, bool zeroed) {
    if (gcm_vg_on && p) {
        size_t slot = gcm_span_of((uintptr_t)p)->elemsize;
        VALGRIND_MALLOCLIKE_BLOCK(p, size, 0, zeroed);
        VALGRIND_MAKE_MEM_NOACCESS((char *)p + size, slot - size);
    }
    return p;
}

/* Object p of s keeps its place, its size going from `was` to `size`. */
GCM_INLINE void *gcm_vg_resize(mspan *s, void *p, size_t was, size_t size) {
    if (gcm_vg_on) {
        VALGRIND_RESIZEINPLACE_BLOCK(p, was, size, 0);
        if (mspan_is_large(s)) s->reqsize = size; /* small: the detour records it */
    }
    return p;
}

/* p is being freed (before it can be handed out again). A second free of p
 * is reported by memcheck, then by gcmalloc. */
GCM_INLINE void gcm_vg_free(void *p) {
    if (gcm_vg_on) VALGRIND_FREELIKE_BLOCK(p, 0);
}

/* Around gcmalloc's own accesses to freed objects. */
GCM_INLINE void gcm_vg_quiet(bool on) {
    if (!gcm_vg_on) return;
    if (on)
        VALGRIND_DISABLE_ERROR_REPORTING;
    else
        VALGRIND_ENABLE_ERROR_REPORTING;
}

#else

#define gcm_vg_on false
GCM_INLINE bool gcm_vg_start(void) { return false; }
GCM_INLINE size_t gcm_vg_size(const mspan *s, size_t idx) { return s->elemsize; }
GCM_INLINE void *gcm_vg_alloc(void *p, size_t size, bool zeroed) { return p; }
GCM_INLINE void *gcm_vg_resize(mspan *s, void *p, size_t was, size_t size) { return p; }
GCM_INLINE void gcm_vg_free(void *p) {}
GCM_INLINE void gcm_vg_quiet(bool on) {}
GCM_INLINE void gcm_vg_metadata(void *p, size_t len) {}

#endif
#endif
