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

/* The main thread's registration and the collector's set-up (start-up). */
void gcm_gc_process_init(void);

/* True once the heap exists (after the first allocation). */
GCM_INLINE bool gcm_heap_ready(void) { return __atomic_load_n(&gcm_heap.ready, __ATOMIC_ACQUIRE); }

/* Leakcheck and check modes detour every allocation through the slow path,
 * which records its requested size (mspan.reqsizes) and, with
 * GCMALLOC_LEAKCHECK_STACKS, its call stack (gc/stacks.h; turning the detour
 * on maps the stack table): the thread's fast-path mcache pointer is
 * gcm_empty_mcache, its real one gcm_tls_own. Costs nothing when off: the
 * fast path is unchanged, only slow paths test the flag. Check mode also
 * writes the canary (alloc/check.h), and may fail the allocation. Under
 * valgrind the detour is on for the whole run (alloc/vg.h). */
extern bool gcm_shim_detour;
void gcm_shim_set_detour(bool on);
void gcm_shim_record(void *p, size_t size);
GCM_INLINE void *gcm_shim_recorded(void *p, size_t size) {
    if (GCM_UNLIKELY(gcm_shim_detour) && p) {
        gcm_shim_record(p, size);
        if (gcm_check_on) return gcm_check_new(p, size);
    }
    return p;
}

/* Register the fork handlers (called once from start-up). */
void gcm_fork_init(void);

#endif
