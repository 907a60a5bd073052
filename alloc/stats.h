/*
 * stats.h - heap statistics, computed on demand.
 *
 * Nothing is counted on the fast path: the figures are read from the heap's
 * own metadata (every in-use span's allocCount, the page allocator's
 * counters) under mheap.lock when asked for. Objects freed by another thread
 * and not yet merged into their span count as allocated until the owner or the
 * mcentral merges them.
 */
#ifndef GCM_STATS_H
#define GCM_STATS_H

#include "common.h"
#include "include/gcmalloc.h"

typedef struct gcm_class_stats {
    size_t spans;       /* in-use spans of the class */
    size_t objects;     /* allocated objects */
    size_t span_bytes;  /* bytes of those spans */
} gcm_class_stats;

/* Fill *out (and per[0..66] when not NULL; per[0] is large objects). */
void gcm_stats_read(struct gcm_stats *out, gcm_class_stats *per);
/* Human-readable report on fd (one summary line, then a table by class). */
void gcm_stats_print(int fd);

#endif
