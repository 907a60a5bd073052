/*
 * stw.h - the thread registry and stop-the-world.
 *
 * Every thread the collector must scan has a gthread record: the main thread
 * (registered by a constructor) and every thread started with pthread_create
 * (the shim wraps it), whether or not it ever allocates. The record is made
 * by the *creating* thread, before pthread_create returns, and holds the start
 * routine's argument until the new thread runs: an object passed only to a
 * thread that has not started yet is still reachable.
 *
 * Stopping the world: the collector sends the stop signal (GCMALLOC_GC_SIGNAL)
 * to each running thread with tgkill. The handler records the thread's stack
 * pointer - the kernel has pushed the interrupted registers in the signal
 * frame just above it, so scanning [sp, stack top) covers them - acknowledges,
 * and sleeps on a futex until the collector restarts the world. No second
 * signal is needed to restart. A thread may be stopped at any instruction,
 * including inside malloc or free: the allocator's lock-free state is built
 * so that a stopped owner never leaves it looking "allocated" where it is not
 * (see alloc/mspan.h), and the collector takes every heap lock before it
 * stops anyone, so no stopped thread holds one.
 *
 * A thread that does not answer within a second (it blocks the signal with a
 * raw sigprocmask, say) makes the stop give up with one warning line; the
 * stopped threads are restarted and the collection is abandoned.
 *
 * Invariants:
 *  - the registry list and every record's state change only with the
 *    registry lock held; the collector holds it from stop to restart, so no
 *    thread starts or leaves the registry while the world is stopped;
 *  - no collection stops the world while a pthread_create is between
 *    gcm_stw_prepare and gcm_stw_born (see "Births" in stw.c);
 *  - lock order: gc lock, heap locks, registry lock, then alloc/os.c's regions
 *    lock, a leaf (a thread being registered maps memory with the registry
 *    lock held; the other order deadlocked a fork against a pthread_create).
 */
#ifndef GCM_STW_H
#define GCM_STW_H

#include "alloc/common.h"

#include <sys/types.h>

enum { GT_STARTING = 0, GT_RUNNING = 1, GT_EXITED = 2 };

typedef struct gthread {
    struct gthread *next, *prev; /* registry list */
    pid_t tid;
    uint8_t state;               /* GT_* */
    uint8_t exit_rounds;         /* key-destructor rounds seen at exit; owner only */
    bool is_main;
    uintptr_t stack_lo, stack_hi; /* the thread's stack; [sp, stack_hi) is scanned */
    uintptr_t tp;                /* thread pointer (TLS lives around it) */
    uintptr_t alt_lo, alt_hi;    /* the signal stack it was on when stopped, if any */
    uintptr_t sp;                /* written by the stop handler */
    uint32_t stop_req;           /* atomic: the stop epoch asked of this thread, 0 none */
    uint32_t stopped;            /* atomic: the last epoch it stopped for */
    uint32_t left;               /* atomic: the last epoch it left its handler after */
    uint32_t asked;              /* the epoch the collector last signalled it for; registry lock */
    void *(*start_fn)(void *);   /* GT_STARTING: what the new thread will run */
    void *start_arg;             /* GT_STARTING: its argument, a root until then */
    /* Scopes (gc/scope.c): owner thread only; the collector reads them while
     * the thread is stopped. The arrays are OS memory, replaced (never
     * resized in place) when they grow. */
    uintptr_t *scope_objs;
    size_t scope_nobjs, scope_objcap;
    size_t *scope_marks; /* scope_marks[d] = scope_nobjs when scope d+1 was entered */
    size_t scope_depth, scope_markcap;
} gthread;

extern GCM_TLS gthread *gcm_tls_gthread;

/* The signal the collector stops threads with. */
extern int gcm_stw_signal;

/* Register the main thread (constructor; idempotent). */
void gcm_stw_init_main(void);
/* pthread_create, in the parent: a record for the thread about to start
 * (NULL when out of memory). Waits while a collection holds births back. */
gthread *gcm_stw_prepare(void *(*fn)(void *), void *arg);
/* pthread_create, in the parent, once the C library's returned: the new
 * thread's pointer (its TCB, where its DTV is), or 0 when the create failed
 * (the record is dropped). Called once for every gcm_stw_prepare. */
void gcm_stw_born(gthread *t, uintptr_t tp);
/* Collector, before it takes the heap locks: wait until no pthread_create
 * is under way and hold new ones back. False (nothing held) when the caller
 * is inside pthread_create itself, or one takes over a second. */
bool gcm_stw_births_hold(void);
/* Once the world runs again: let pthread_create proceed. */
void gcm_stw_births_release(void);
/* In the new thread, first thing: it becomes a running, stoppable thread. */
void gcm_stw_attach(gthread *t);
/* Fork child: only the calling thread survives. */
void gcm_stw_after_fork_child(void);
void gcm_stw_lock(void);
void gcm_stw_unlock(void);

/* Install the stop handler (idempotent; gc lock held). False on failure. */
bool gcm_stw_install(void);
bool gcm_stw_installed(void);
/* Is the caller registered and every thread of the process known? False
 * (with one warning, the first time) when a thread exists that was not
 * started through pthread_create - gcmalloc was loaded late, for one. */
bool gcm_stw_can_stop(void);
/* Before the heap locks: wait (bounded) until every thread the last stop
 * restarted has left its handler. See "Fairness" in stw.c. */
void gcm_stw_settle(void);
/* Stop every other registered thread. Takes the registry lock and the
 * regions lock; false (locks released, world running) when a thread did not
 * stop within a second. */
bool gcm_stw_stop(void);
/* Restart them and release the two locks. */
void gcm_stw_start(void);
/* With the world stopped: call fn for every thread whose stack must be
 * scanned (stopped ones, and the caller, whose sp the collector set where it
 * entered). */
void gcm_stw_each(void (*fn)(gthread *t, void *ctx), void *ctx);

/* World stopped: mark the DTVs of exited threads (see stw.c). */
void gcm_stw_mark_dead_dtvs(void);

/* The program's handler for the stop signal, kept by the shim's sigaction:
 * signals not sent by the collector are passed to it. */
extern struct sigaction *gcm_stw_program_action;
/* The shim's sigaction/signal wrappers: record a program's handler for the
 * stop signal instead of replacing the collector's. */
int gcm_stw_sigaction(int sig, const struct sigaction *act, struct sigaction *old);

#endif
