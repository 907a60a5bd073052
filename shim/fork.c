/*
 * fork.c - keeping the heap usable in a forked child.
 *
 * The prepare handler takes every heap lock so that the child starts with a
 * consistent heap, even when another thread was inside malloc at the fork.
 * Deadlock hazard: glibc's fork takes its stdio list lock after the prepare
 * handlers, and a thread inside fopen or fflush holds that lock while it
 * mallocs. Taking our locks first would let fork wait for stdio while that
 * thread waits for us (jemalloc hangs exactly so). So we take the stdio list
 * lock ourselves first - it is recursive, so glibc's own acquisition in fork
 * still succeeds - and our locks after it, the order glibc uses for its own
 * malloc.
 *
 * A single-threaded process takes no locks: no other thread can hold them,
 * and a fork from a signal handler that interrupted malloc must not deadlock
 * on the interrupted thread's own lock.
 *
 * In the child the locks are made free again, and the mcaches of the threads
 * that did not survive the fork give their spans back. Those threads may have
 * stopped inside a lock-free span operation (the fast path, a cache load, a
 * local free), so each of their spans is recounted from its bitmap first
 * (gcm_mcache_abandon); what they held reserved is lost to the child.
 * The collector's locks are taken too (gc lock first, the thread registry
 * last: see gc/stw.h), so that a fork never copies half a collection.
 * vfork and posix_spawn run no handlers and need none: the child only execs.
 */
#include "shim.h"
#include "gc/gc.h"
#include "gc/stw.h"

#include <pthread.h>
#include <sys/single_threaded.h>

/* glibc's stdio list lock (exported by libc.so.6 since 2.2.5). */
extern void _IO_list_lock(void);
extern void _IO_list_unlock(void);

static bool fork_locked;

static void fork_prepare(void) {
    fork_locked = !__libc_single_threaded;
    if (!fork_locked) return;
    _IO_list_lock();
    gcm_gc_fork_prepare();
    gcm_mcache_orphan_lock();
    gcm_mheap_lock_all();
    gcm_stw_lock(); /* before the regions lock: the order of gc/stw.h */
    gcm_os_regions_lock();
}

static void fork_parent(void) {
    if (!fork_locked) return;
    gcm_os_regions_unlock();
    gcm_stw_unlock();
    gcm_mheap_unlock_all();
    gcm_mcache_orphan_unlock();
    gcm_gc_fork_parent();
    _IO_list_unlock();
}

static void fork_child(void) {
    /* glibc has reset its stdio list lock in the child already. */
    gcm_mheap_reinit_locks();
    gcm_mcache_orphan_reinit();
    gcm_os_regions_reinit();
    gcm_gc_fork_child(); /* the registry keeps only this thread */
    mcache *me = gcm_tls_own, *c = gcm_heap.allcaches;
    while (c) {
        mcache *next = c->next;
        if (c != me) gcm_mcache_abandon(c);
        c = next;
    }
}

void gcm_fork_init(void) { pthread_atfork(fork_prepare, fork_parent, fork_child); }
