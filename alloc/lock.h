/*
 * lock.h - the allocator's mutex.
 *
 * A thin wrapper over an adaptive pthread mutex: it spins briefly before
 * sleeping in the kernel, which matters when 8 threads share 2 cores and the
 * holder is preempted. pthread mutexes never allocate, work before main, and
 * are understood by ThreadSanitizer. gcm_lock_reinit() is for a forked child,
 * where a lock held by a thread that no longer exists must be made free.
 */
#ifndef GCM_LOCK_H
#define GCM_LOCK_H

#include <pthread.h>
#include <stdbool.h>

typedef struct gcm_lock {
    pthread_mutex_t m;
} gcm_lock;

#define GCM_LOCK_INIT { PTHREAD_ADAPTIVE_MUTEX_INITIALIZER_NP }

static inline void gcm_lock_acquire(gcm_lock *l) { pthread_mutex_lock(&l->m); }
static inline void gcm_lock_release(gcm_lock *l) { pthread_mutex_unlock(&l->m); }
/* Take the lock if it is free; false (and not taken) otherwise. */
static inline bool gcm_lock_try(gcm_lock *l) { return pthread_mutex_trylock(&l->m) == 0; }
static inline void gcm_lock_init(gcm_lock *l) {
    pthread_mutex_t fresh = PTHREAD_ADAPTIVE_MUTEX_INITIALIZER_NP;
    l->m = fresh;
}
static inline void gcm_lock_reinit(gcm_lock *l) { gcm_lock_init(l); }

#endif
