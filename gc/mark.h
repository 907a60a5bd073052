/*
 * mark.h - conservative marking.
 *
 * Any aligned word that points into an allocated object - its first byte or
 * any byte inside it - marks that object (a bit in its span's gcmarkBits).
 * The word is resolved the way free() resolves a pointer: arena index ->
 * heapArena.spans[page] -> object index by multiplication. A word that points
 * at a free slot, or at an object reserved in its owner's allocCache (not yet
 * handed out), marks nothing: a stale word must not bring a dead slot back.
 * A pointer one past the end of an object points into the next slot (or past
 * the span) and does not keep the object alive.
 *
 * Marked objects are scanned in turn, from an explicit mark stack in OS
 * memory that grows as needed (no recursion: a list of millions of nodes
 * needs one stack entry at a time). Objects in noscan spans are marked but
 * never scanned.
 *
 * Every step of that lookup is a cache miss on a heap larger than the
 * caches, and so is the object itself. Two things shorten it:
 *  - a page descriptor per heap page, rebuilt when a pass begins (the world
 *    is stopped, so no span changes meanwhile): the small span's mark bits,
 *    base and class, found from the address alone, so that a word costs
 *    the descriptor and the bitmap line instead of spans[], the mspan's
 *    lines and the bitmap line. Objects reserved in an owner's cache and
 *    free slots start the pass marked, which is how the marker leaves them
 *    alone without reading the owner's cache or allocBits;
 *  - a word that passes the cheap filter (inside the heap's address range,
 *    in an arena) is not resolved at once: its descriptor and the object's
 *    first line are prefetched, and it waits in a FIFO of candidates while
 *    the next ones are found (Boehm's and Garner et al.'s
 *    prefetch-on-discovery). When the FIFO is full, the oldest candidate is
 *    resolved, by which time its lines are in cache. The FIFO is empty when
 *    gcm_mark_drain returns; only then are the marks final.
 * When nothing else is waiting - a list, which the FIFO cannot overlap - the
 * cost is the chain from one object to the next, and it is kept short: the
 * newest candidate stays in a register, the object it marks is scanned at
 * once instead of going through the mark stack, and a word that points at
 * an object's first byte is scanned from without waiting for the multiply
 * that finds the object's base.
 *
 * Marking runs with the world stopped, by one thread, with the heap locks
 * held; nothing here takes a lock or allocates from the heap.
 */
#ifndef GCM_MARK_H
#define GCM_MARK_H

#include "alloc/common.h"

/* Prepare a marking pass: clear every span's mark bits (reserved objects
 * and objects on remote-free lists start marked: see mark.c), build the page
 * descriptors, learn the heap's address range. False when the marker's
 * memory cannot be mapped. */
bool gcm_mark_begin(void);
/* Scan the words of [lo, hi) (any alignment) as roots. Their objects are
 * marked by gcm_mark_drain at the latest. */
void gcm_mark_range(uintptr_t lo, uintptr_t hi);
/* Mark the object p points into, if any (a root held outside any range). */
void gcm_mark_ptr(uintptr_t p);
/* Scan everything reachable from what has been marked so far. */
void gcm_mark_drain(void);
/* Bytes marked since gcm_mark_begin. */
size_t gcm_mark_live_bytes(void);
/* Where the marker keeps its own state (not a root). */
uintptr_t gcm_mark_state_lo(void);
uintptr_t gcm_mark_state_hi(void);

#endif
