/*
 * sweep.h - turning marks into free slots.
 *
 * With the world stopped, gcm_sweep_prepare turns every small span's mark
 * bits into its garbage: gcmarkBits <- allocated & ~reserved & ~marked (Go's
 * allocBits <- gcmarkBits, inverted, because our owners must apply it
 * themselves), and bumps the span's sweep_gen. Objects freed to the span's
 * remote-free list started out marked (gc/mark.c): their merge frees them,
 * never the sweep. Nothing is freed yet: a stopped owner may be in the middle
 * of a free or a cache load.
 *
 * When the world runs again, the garbage is freed by whoever may write the
 * span's allocation state (alloc/mspan.h): the collector sweeps the spans
 * the mcentrals hold (under their locks) and its own thread's; every other
 * thread sweeps its own spans at its next refill (gcm_heap.gc_sweep_epoch);
 * spans given back or taken are swept on the way. Statistics count unswept
 * garbage as free, so they are exact as soon as gcm_collect returns.
 * Large objects have no owner: the unmarked ones are freed by the collector
 * after the restart, with the same compare-and-swap free() uses.
 *
 * A cycle that records no garbage (gcm_collect outside collect mode, the
 * leak check) still marks in gcmarkBits, where an unswept span keeps its
 * garbage: left there, the marks would become the garbage, and the owner's
 * sweep would free live objects. Such a cycle holds the garbage aside
 * (gcm_sweep_hold) and puts it back before the restart (gcm_sweep_unhold);
 * in between, held garbage counts as marked (gcm_sweep_held_marked), since
 * the collector has already reclaimed it: not a leak.
 */
#ifndef GCM_SWEEP_H
#define GCM_SWEEP_H

#include "alloc/common.h"

/* World stopped, marking done: record the garbage. Returns its bytes. */
size_t gcm_sweep_prepare(uint32_t gen);
/* World stopped, before marking: set the unswept garbage aside. False when
 * out of memory for it: the cycle must not mark then. */
bool gcm_sweep_hold(void);
/* Marking done: count the held garbage as marked. */
void gcm_sweep_held_marked(void);
/* Before the restart: the held garbage is the unswept spans' garbage again. */
void gcm_sweep_unhold(void);
/* World running: free the garbage the collector itself may free. */
void gcm_sweep_run(void);

#endif
