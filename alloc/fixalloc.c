/*
 * fixalloc.c - see fixalloc.h. Objects are zeroed when handed out so that
 * metadata starts in a known state whether it is fresh or reused.
 */
#include "fixalloc.h"
#include "os.h"
#include "vg.h"

#include <string.h>

#define FIXALLOC_CHUNK ((size_t)256 << 10)

void gcm_fixalloc_init(fixalloc *f, size_t size) {
    memset(f, 0, sizeof *f);
    /* Whole cache lines: spans and span bitmaps are written by their owner
     * thread on every malloc and free, and neighbours belong to other
     * threads (false sharing made two threads 8x slower than one). */
    f->size = gcm_align_up(size, 64);
    f->dirty = f->size;
}

void gcm_fixalloc_set_dirty(fixalloc *f, size_t dirty) { f->dirty = dirty < f->size ? dirty : f->size; }

void *gcm_fixalloc_alloc(fixalloc *f) {
    void *p;
    if (f->free_list) {
        p = f->free_list;
        f->free_list = *(void **)p;
        memset(p, 0, f->dirty);
    } else {
        if (f->chunk_left < f->size) {
            size_t len = f->size > FIXALLOC_CHUNK ? gcm_align_up(f->size, GCM_PAGE_SIZE) : FIXALLOC_CHUNK;
            char *c = gcm_os_map(NULL, len);
            if (!c) return NULL;
            gcm_vg_metadata(c, len); /* spans live here */
            f->chunk = c;
            f->chunk_left = len;
            f->mapped += len;
        }
        p = f->chunk; /* fresh OS memory is already zero */
        f->chunk += f->size;
        f->chunk_left -= f->size;
    }
    f->inuse += f->size;
    return p;
}

void gcm_fixalloc_free(fixalloc *f, void *p) {
    *(void **)p = f->free_list;
    f->free_list = p;
    f->inuse -= f->size;
}
