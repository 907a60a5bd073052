/*
 * lstash.h - the per-thread stash of freed large spans (see lstash.c).
 */
#ifndef GCM_LSTASH_H
#define GCM_LSTASH_H

#include "mcache.h"

/* A large object of `size` bytes from a span c's thread stashed, or from a
 * batch the large-span cache hands over; NULL when neither has a span of
 * that length and class (the caller asks the mheap). Owner thread only. */
void *gcm_lstash_take(mcache *c, size_t size, bool noscan);
/* Keep the freed large span s (its alloc bit already cleared) in c; false
 * when s does not qualify (too long, or c is the empty mcache). */
bool gcm_lstash_put(mcache *c, mspan *s);
/* Every stashed span to the large-span cache. */
void gcm_lstash_flush(mcache *c);

#endif
