/*
 * stacks.h - allocation call stacks for the leak report
 * (GCMALLOC_GC=leakcheck with GCMALLOC_LEAKCHECK_STACKS=1).
 *
 * Every recorded allocation captures the program's call stack with the DWARF
 * unwinder (_Unwind_Backtrace from libgcc_s, dlopen'ed when capture is turned
 * on: Debian's programs have no frame pointers) and interns it in one table:
 * equal stacks get the same id, stored per object next to its requested size
 * (mspan.stackids, or mspan.stackid for a large span). The leak report groups leaks by id and
 * prints each group's frames (leak.c).
 *
 * Id 0 means "no stack": the allocation came before start-up had read the
 * options or before the unwinder was loaded (the constructor that loads it
 * runs before main), from inside a capture (the unwinder's own first-use
 * allocations, or a signal handler that interrupted one), or the table was
 * full.
 *
 * Frames of gcmalloc itself are left out: every function between a program's
 * allocation call and the capture is placed in the section GCM_STACK_SKIP
 * names, and the leading frames whose pc lies there are dropped. A section
 * and not a list of functions because the compiler turns calls into tail
 * jumps (malloc's frame is often gone) and moves cold code elsewhere (a
 * function with a section attribute is never split hot/cold).
 */
#ifndef GCM_STACKS_H
#define GCM_STACKS_H

#include "alloc/common.h"

#define GCM_STACK_DEPTH 12 /* frames kept per stack */

/* On every function of the allocation entry path (shim/malloc.c) and the
 * capture itself: its frames are not the program's. */
#define GCM_STACK_SKIP __attribute__((section("gcm_alloc_entry")))

/* Are stacks being captured? Set once, by gcm_stacks_enable. */
extern bool gcm_stacks_on;

/* Map the table and turn capture on (start-up, or gcm_set_gc_mode; never
 * from an allocation). False when the OS has no memory for it. */
bool gcm_stacks_enable(void);

/* dlopen the unwinder when capture is on and it is not loaded yet (once; a
 * failure is reported on stderr and leaves every stack unrecorded). It
 * allocates: call it outside any allocation, after gcm_stacks_enable. */
void gcm_stacks_load_unwinder(void);

/* The calling program's stack, interned: its id, or 0. Lock-free and
 * allocation-free: safe in signal handlers, in forked children, and when a
 * collector stopped another thread half-way through an insert. */
uint32_t gcm_stack_capture(void);

/* The frames of stack id (return addresses, innermost first); how many. */
size_t gcm_stack_frames(uint32_t id, const uintptr_t **pcs);

#endif
