/*
 * fixalloc.h - a free-list allocator for fixed-size metadata (Go's fixalloc).
 *
 * mspans, mcaches and span bitmaps are allocated from here, never from the
 * heap they describe. Memory comes from the OS in 256 KiB blocks and is never
 * returned; freed objects go on a free list and are reused first. Objects
 * are whole cache lines, 64-byte aligned.
 *
 * Invariant: the caller serialises access (every fixalloc in the heap is
 * used with mheap.lock held).
 */
#ifndef GCM_FIXALLOC_H
#define GCM_FIXALLOC_H

#include "common.h"

typedef struct fixalloc {
    size_t size;       /* object size, a multiple of 16 */
    size_t dirty;      /* bytes zeroed when an object is reused: the rest comes back zero */
    void *free_list;   /* freed objects, linked through their first word */
    char *chunk;       /* bump region */
    size_t chunk_left;
    size_t inuse;      /* bytes handed out and not freed */
    size_t mapped;     /* bytes obtained from the OS */
} fixalloc;

void gcm_fixalloc_init(fixalloc *f, size_t size);
/* Objects of f are freed with everything past their first `dirty` bytes
 * zero, so reuse zeroes only those: a large object's untouched pages stay
 * untouched (an mcache's retired slots; gcm_mcache_destroy empties them). */
void gcm_fixalloc_set_dirty(fixalloc *f, size_t dirty);
/* A zeroed object, or NULL when the OS has no memory. */
void *gcm_fixalloc_alloc(fixalloc *f);
void gcm_fixalloc_free(fixalloc *f, void *p);

#endif
