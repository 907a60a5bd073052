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

/* The collector's figures, written by gc/ at the end of each collection
 * (under its lock) and copied into struct gcm_stats. */
typedef struct gcm_gc_counters {
    uint64_t cycles, pause_total_ns, pause_max_ns;
    size_t last_live_bytes;
} gcm_gc_counters;
extern gcm_gc_counters gcm_gc_stats;
/* Totals of objects freed by sweeps (alloc/mspan.c). */
extern uint64_t gcm_sweep_freed_objects, gcm_sweep_freed_bytes;

/* Fill *out (and per[0..66] when not NULL; per[0] is large objects). */
void gcm_stats_read(struct gcm_stats *out, gcm_class_stats *per);
/* Human-readable report on fd: the heap (mapped, in use, released, peak),
 * what is allocated, then a table by size class and a line for large objects.
 * Formatted in a stack buffer and written with one write(2). */
void gcm_stats_print(int fd);
/* The same figures as one JSON object (one line), for tools:
 *   {"heap": {"mapped": B, "in_use": B, "released": B, "peak_mapped": B},
 *    "allocated": {"bytes": B, "objects": N},
 *    "gc": {"cycles": N, "pause_total_ns": T, "pause_max_ns": T, "last_live": B,
 *           "freed_bytes": B, "freed_objects": N},
 *    "large": {"spans": N, "objects": N, "bytes": B, "span_bytes": B},
 *    "classes": [{"class": C, "size": B, "spans": N, "objects": N,
 *                 "bytes": B, "span_bytes": B, "frag_pct": F}, ...]}
 * bytes are object bytes in use; span_bytes the pages of the class's spans;
 * frag_pct = 100 * (span_bytes - bytes) / span_bytes. Classes without spans
 * are left out. */
void gcm_stats_print_json(int fd);

#endif
