/*
 * shim.h - what the exported functions need from the shim's start-up and
 * thread handling.
 *
 * A thread gets its mcache on its first allocation (gcm_thread_attach), and
 * the process is set up on the first allocation of all (gcm_process_init):
 * ld.so and libc allocate long before any constructor of ours could run, so
 * nothing waits for one.
 */
#ifndef GCM_SHIM_H
#define GCM_SHIM_H

#include "alloc/malloc.h"
#include "alloc/mheap.h"

/* The calling thread's mcache, attaching one on first use; NULL for a thread
 * whose mcache was already released at its exit (it allocates through the
 * orphan cache). */
mcache *gcm_thread_attach(void);

GCM_INLINE mcache *gcm_thread_cache(void) {
    mcache *c = gcm_tls_mcache;
    if (GCM_LIKELY(c != &gcm_empty_mcache)) return c;
    return gcm_thread_attach();
}

/* True once the heap exists (after the first allocation). */
GCM_INLINE bool gcm_heap_ready(void) { return __atomic_load_n(&gcm_heap.ready, __ATOMIC_ACQUIRE); }

/* Register the fork handlers (called once from start-up). */
void gcm_fork_init(void);

#endif
