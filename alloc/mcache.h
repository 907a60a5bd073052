/*
 * mcache.h - the per-thread cache: one current span per span class.
 *
 * A thread allocates small objects from the spans its mcache holds without
 * any lock or atomic read-modify-write (mspan_alloc_fast), and frees into
 * them the same way. When a span's cache runs dry the mcache first looks for
 * freed objects inside it (mspan_refill_cache); only when the span is full
 * does it trade it at the mcentral for one with free objects.
 *
 * gcm_tls_mcache is the thread's mcache. It starts as &gcm_empty_mcache,
 * whose every slot is gcm_empty_span (which never has a free object), so the
 * fast path needs no "is this thread set up" test: the first allocation falls
 * into the slow path, which attaches a real mcache. A thread that has exited
 * (its mcache released) stays on the empty mcache and allocates through the
 * shared orphan mcache, under its lock.
 *
 * Thread-local state is one pointer and one byte (initial-exec TLS), so the
 * library can also be dlopen'ed.
 */
#ifndef GCM_MCACHE_H
#define GCM_MCACHE_H

#include "mspan.h"

typedef struct mcache {
    mspan *alloc[GCM_NUM_SPAN_CLASSES]; /* owner thread only */
    struct mcache *next, *prev;         /* mheap.allcaches; mheap.lock */
} mcache;

enum { GCM_THREAD_NEW = 0, GCM_THREAD_ATTACHED = 1, GCM_THREAD_EXITED = 2 };

extern mcache gcm_empty_mcache;
extern GCM_TLS mcache *gcm_tls_mcache;
extern GCM_TLS uint8_t gcm_tls_state;

/* A new mcache, registered with the heap, or NULL on ENOMEM. */
mcache *gcm_mcache_create(void);
/* Give every span back to its mcentral, unregister and free c. */
void gcm_mcache_destroy(mcache *c);
/* Give every span back to its mcentral (c stays usable). */
void gcm_mcache_flush(mcache *c);

/* Slow path of a small allocation from c: refill span class spc and allocate.
 * NULL (errno ENOMEM) when the heap cannot grow. */
void *gcm_mcache_refill(mcache *c, unsigned spc);
/* Small allocation for a thread without an mcache (exited, or its mcache
 * could not be created): the shared orphan mcache, locked. */
void *gcm_mcache_orphan_alloc(unsigned spc);
void gcm_mcache_orphan_lock(void);
void gcm_mcache_orphan_unlock(void);
void gcm_mcache_orphan_reinit(void);

#endif
