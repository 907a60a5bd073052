/* gc_api.h - the GC benchmarks (the programs in bench/gc/) on either collector.
 *
 * Chosen at compile time:
 *   -DGC_GCMALLOC  gcmalloc's collector (gcmalloc.h): gcm_set_gc_mode(GCM_GC_COLLECT)
 *                  at start, gcm_malloc / gcm_malloc_noscan, gcm_collect, and the
 *                  pauses from gcm_get_stats();
 *   -DGC_BOEHM     the Boehm-Demers-Weiser collector (libgc): GC_INIT, GC_MALLOC /
 *                  GC_MALLOC_ATOMIC, GC_gcollect, and the pauses measured here from
 *                  GC_EVENT_START to GC_EVENT_END (GC_set_on_collection_event,
 *                  CLOCK_MONOTONIC). Default settings, except one marker thread:
 *                  GC_set_markers_count(1) before GC_INIT (the GC_MARKERS variable,
 *                  which bench/gc_run.py also sets to 1, takes precedence).
 *
 *   GCB_INIT()            call first in main
 *   GCB_ALLOC(n)          an object that holds pointers (scanned)
 *   GCB_ALLOC_NOSCAN(n)   an object that holds no pointers
 *   GCB_COLLECT()         a full stop-the-world collection, now
 *   gcb_get_stats(&s)     completed collections, longest and total pause (ns)
 *   GCB_NAME              "gcmalloc" or "boehm"
 *
 * Nothing is ever freed: the collector reclaims. Both allocation macros abort the
 * program (exit 2) when the collector returns NULL. gcb_fail() reports a failed
 * self-check and exits 1, so a collector that frees live objects fails loudly.
 */
#ifndef GCB_GC_API_H
#define GCB_GC_API_H

#include <dlfcn.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#if defined(GC_GCMALLOC) == defined(GC_BOEHM)
#error "compile with exactly one of -DGC_GCMALLOC and -DGC_BOEHM"
#endif

struct gcb_stats {
  uint64_t cycles;         /* completed collections */
  uint64_t pause_max_ns;   /* longest */
  uint64_t pause_total_ns; /* all of them */
};

static inline uint64_t gcb_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void gcb_fail(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
static void gcb_fail(const char *fmt, ...) {
  va_list ap;
  fflush(stdout);
  fputs("FAIL: ", stderr);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  exit(1);
}

static inline void *gcb_check_alloc(void *p, size_t n) {
  if (!p) {
    fprintf(stderr, "FAIL: allocation of %zu bytes returned NULL\n", n);
    exit(2);
  }
  return p;
}

/* Peak RSS of this process (VmHWM), KiB: a cross-check of the runner's ru_maxrss. */
static inline long gcb_self_hwm_kib(void) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  long v = -1;
  if (!f) return -1;
  while (fgets(line, sizeof line, f))
    if (strncmp(line, "VmHWM:", 6) == 0) v = strtol(line + 6, NULL, 10);
  fclose(f);
  return v;
}

#ifdef GC_GCMALLOC
#include "gcmalloc.h"

#define GCB_NAME "gcmalloc"

/* Weak, so that the benchmarks still link against a libgcmalloc without the
 * collector (they then stop in GCB_INIT with a message instead of breaking the
 * build of everything else). */
#pragma weak gcm_set_gc_mode
#pragma weak gcm_get_gc_mode
#pragma weak gcm_collect

static inline void gcb_init(void) {
  if (!gcm_set_gc_mode || !gcm_get_gc_mode || !gcm_collect)
    gcb_fail("this libgcmalloc has no collector (gcm_set_gc_mode/gcm_get_gc_mode/gcm_collect undefined)");
  if (gcm_set_gc_mode(GCM_GC_COLLECT) < 0) gcb_fail("gcm_set_gc_mode(GCM_GC_COLLECT) failed");
  if (gcm_get_gc_mode() != GCM_GC_COLLECT) gcb_fail("gcm_get_gc_mode() = %d after setting collect mode", gcm_get_gc_mode());
}

static inline void gcb_get_stats(struct gcb_stats *s) {
  struct gcm_stats g;
  memset(&g, 0, sizeof g);
  gcm_get_stats(&g);
  s->cycles = g.gc_cycles;
  s->pause_max_ns = g.gc_pause_max_ns;
  s->pause_total_ns = g.gc_pause_total_ns;
}

/* Bytes the last collection found live, as the collector counts them. */
static inline double gcb_heap_live_mib(void) {
  struct gcm_stats g;
  memset(&g, 0, sizeof g);
  gcm_get_stats(&g);
  return (double)g.gc_last_live_bytes / 1048576.0;
}

#define GCB_INIT() gcb_init()
#define GCB_ALLOC(n) gcb_check_alloc(gcm_malloc(n), (n))
#define GCB_ALLOC_NOSCAN(n) gcb_check_alloc(gcm_malloc_noscan(n), (n))
#define GCB_COLLECT() gcm_collect()

#elif defined(GC_BOEHM)
#include <gc/gc.h>

#define GCB_NAME "boehm"

#ifndef GC_THREADS
/* Declared by gc.h only for GC_THREADS clients (which also get its pthread
 * redirections); Debian's libgc is built with threads and parallel marking. */
GC_API void GC_CALL GC_set_markers_count(unsigned);
#endif

static uint64_t gcb_boehm_start_ns, gcb_boehm_max_ns, gcb_boehm_total_ns, gcb_boehm_cycles;

static void GC_CALLBACK gcb_boehm_event(GC_EventType e) {
  if (e == GC_EVENT_START) {
    gcb_boehm_start_ns = gcb_now_ns();
  } else if (e == GC_EVENT_END) {
    uint64_t d = gcb_now_ns() - gcb_boehm_start_ns;
    gcb_boehm_total_ns += d;
    if (d > gcb_boehm_max_ns) gcb_boehm_max_ns = d;
    gcb_boehm_cycles++;
  }
}

static inline void gcb_get_stats(struct gcb_stats *s) {
  s->cycles = gcb_boehm_cycles;
  s->pause_max_ns = gcb_boehm_max_ns;
  s->pause_total_ns = gcb_boehm_total_ns;
}

/* Heap bytes not free after the last collection, less what was allocated since
 * (Boehm's own figures; objects freed but not yet swept count as in use). */
static inline double gcb_heap_live_mib(void) {
  GC_word heap = 0, free_b = 0, unmapped = 0, since = 0, total = 0;
  GC_get_heap_usage_safe(&heap, &free_b, &unmapped, &since, &total);
  return (double)(heap - free_b - since) / 1048576.0;
}

#define GCB_INIT()                                   \
  do {                                               \
    GC_set_markers_count(1);                         \
    GC_INIT();                                       \
    GC_set_on_collection_event(gcb_boehm_event);     \
  } while (0)
#define GCB_ALLOC(n) gcb_check_alloc(GC_MALLOC(n), (n))
#define GCB_ALLOC_NOSCAN(n) gcb_check_alloc(GC_MALLOC_ATOMIC(n), (n))
#define GCB_COLLECT() GC_gcollect()
#endif

/* A collector that ran no collection while the program allocated this much
 * (requested bytes, almost all garbage) is not collecting. */
#define GCB_MUST_COLLECT_BYTES (128.0 * 1048576)
static inline void gcb_check_collected(const struct gcb_stats *s, double allocated_bytes) {
  if (s->cycles == 0 && allocated_bytes >= GCB_MUST_COLLECT_BYTES)
    gcb_fail("no collection ran while %.0f MiB were allocated", allocated_bytes / 1048576.0);
}

/* The file the collector was loaded from (the runner checks it). */
static inline const char *gcb_collector_lib(void) {
  Dl_info info;
#ifdef GC_GCMALLOC
  void *sym = (void *)gcm_malloc;
#else
  void *sym = (void *)GC_malloc;
#endif
  return dladdr(sym, &info) && info.dli_fname ? info.dli_fname : "?";
}

/* The common part of every RESULT line. */
static inline void gcb_print_common(double time_s, const struct gcb_stats *s) {
  printf(" collector=%s time_s=%.4f pause_max_ms=%.3f pause_total_ms=%.3f gcs=%llu self_hwm_kib=%ld"
         " collector_lib=%s",
         GCB_NAME, time_s, (double)s->pause_max_ns / 1e6, (double)s->pause_total_ns / 1e6,
         (unsigned long long)s->cycles, gcb_self_hwm_kib(), gcb_collector_lib());
}

#endif
