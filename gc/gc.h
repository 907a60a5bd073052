/*
 * gc.h - the collector, as the shim sees it.
 *
 * gcmalloc's collector is Go's design for a conservative C world: mark from
 * the roots with every thread stopped (stw.h, roots.h, mark.h), then free
 * what was not marked (sweep.h). It has three modes:
 *   off        nothing happens unless the program calls gcm_collect();
 *   collect    collections start by themselves when the heap has grown
 *              GCMALLOC_GC_PERCENT percent over what the last one left live
 *              (Go's GOGC), and free what they find unreachable;
 *   leakcheck  nothing is freed; every allocation records its requested size
 *              and, at exit, one marking pass reports what is unreachable
 *              (leak.h).
 * One collection runs at a time (the gc lock). A collection never starts
 * inside another, nor from a thread the collector cannot see (a thread not
 * started through pthread_create after gcmalloc loaded).
 */
#ifndef GCM_GC_H
#define GCM_GC_H

#include "alloc/common.h"
#include "include/gcmalloc.h"

extern int gcm_gc_mode; /* GCM_GC_*; written under the gc lock */

/* Read GCMALLOC_GC / GCMALLOC_GC_PERCENT (start-up, after the options). */
void gcm_gc_init(void);
int gcm_gc_set_mode(int mode);
int gcm_gc_set_percent(int percent);
/* A full collection now (gcm_collect). */
void gcm_gc_collect(void);
/* The heap has grown past the trigger (gcm_heap.gc_due): collect, unless a
 * collection is already running. Call with no heap lock held. */
void gcm_gc_collect_due(void);
/* Mark from the roots and report the unreachable objects on fd; returns how
 * many. Frees nothing. */
size_t gcm_gc_leakcheck(int fd);
/* gcm_add_roots / gcm_remove_roots. */
void gcm_gc_add_roots(const void *p, size_t len);
void gcm_gc_remove_roots(const void *p);
/* Fork: hold the gc lock across fork; reset in the child. */
void gcm_gc_fork_prepare(void);
void gcm_gc_fork_parent(void);
void gcm_gc_fork_child(void);

#endif
