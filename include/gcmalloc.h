/*
 * gcmalloc.h - the public interface of gcmalloc.
 *
 * gcmalloc replaces the C library's malloc family (malloc, free, calloc,
 * realloc, posix_memalign, ... - see docs/api.md) when it is preloaded
 * (LD_PRELOAD=libgcmalloc.so) or linked (-lgcmalloc). The functions below are
 * the same allocator under gcmalloc's own names, usable also when the library
 * is loaded with dlopen and the program's malloc is another allocator's.
 *
 * All functions are thread-safe. Blocks are 16-byte aligned. Errors: a request
 * that cannot be met returns NULL with errno = ENOMEM; freeing a pointer that
 * gcmalloc did not hand out, or freeing twice, prints one line on stderr
 * naming the pointer and aborts.
 */
#ifndef GCMALLOC_H
#define GCMALLOC_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

void *gcm_malloc(size_t size);
void *gcm_calloc(size_t n, size_t size);
void *gcm_realloc(void *p, size_t size);
void gcm_free(void *p);
/* Bytes the caller may use at p (>= the request; stable for the block's life). */
size_t gcm_usable_size(const void *p);
/* An object that holds no pointers: the collector never scans it. Sizes of
 * at most 8 bytes use the 8-byte class (8-byte aligned); larger ones are
 * 16-byte aligned like malloc. */
void *gcm_malloc_noscan(size_t size);

/* ---- The collector (docs/gc.md) ----
 * Mode: GCMALLOC_GC=off|collect|leakcheck at start-up, or gcm_set_gc_mode().
 *  collect:   objects nothing reachable points to are reclaimed (free() still
 *             frees at once); a collection starts when the heap has grown
 *             GCMALLOC_GC_PERCENT percent over what the last one left live.
 *  leakcheck: nothing is reclaimed; at exit one marking pass reports the
 *             objects that are unreachable and were never freed. */
#define GCM_GC_OFF 0
#define GCM_GC_COLLECT 1
#define GCM_GC_LEAKCHECK 2
/* Returns the previous mode; -1 (errno EINVAL) for an unknown mode, and for
 * collect while GCMALLOC_CHECK=1 (the two do not go together). */
int gcm_set_gc_mode(int mode);
int gcm_get_gc_mode(void);
/* A full stop-the-world collection, now (in any mode: in off and leakcheck
 * modes it marks and updates the statistics but frees nothing). */
void gcm_collect(void);
/* Pacing, like GOGC; a negative value turns automatic collection off.
 * Returns the previous value. */
int gcm_set_gc_percent(int percent);
/* Scan [start, start + len) as a root; gcm_remove_roots(start) undoes it. */
void gcm_add_roots(const void *start, size_t len);
void gcm_remove_roots(const void *start);
/* Scopes: gcm_malloc_scoped objects die when the innermost open scope of the
 * calling thread exits, unless gcm_escape(p) was called for them. Exiting a
 * scope also exits the scopes opened inside it. Tokens are never 0. */
size_t gcm_scope_enter(void);
void *gcm_malloc_scoped(size_t size);
void gcm_escape(void *p);
void gcm_scope_exit(size_t token);
/* Leak check now: marks from the roots and prints the leak report (the same
 * as leakcheck mode prints at exit) on fd. Returns the number of leaked
 * objects. Works in any mode; sizes are exact for objects allocated while
 * leakcheck mode was on (others count their usable size). */
size_t gcm_leakcheck(int fd);

struct gcm_stats {
    size_t mapped_bytes;      /* memory the heap holds from the OS, not yet released */
    size_t allocated_bytes;   /* bytes in objects currently allocated (usable sizes) */
    size_t released_bytes;    /* heap pages returned to the OS (free, not resident) */
    size_t peak_mapped_bytes; /* highest mapped_bytes seen */
    size_t large_bytes;       /* part of allocated_bytes in objects > 32 KiB */
    size_t allocated_objects; /* objects currently allocated */
    uint64_t gc_cycles;       /* completed collections */
    uint64_t gc_pause_total_ns;
    uint64_t gc_pause_max_ns;
    size_t gc_last_live_bytes; /* bytes marked live by the last collection */
    size_t gc_freed_bytes;     /* bytes reclaimed by collections, in total */
    size_t gc_freed_objects;   /* objects reclaimed by collections, in total */
};
/* Fill *out with the current figures (a consistent snapshot of the heap). */
void gcm_get_stats(struct gcm_stats *out);
/* Print the statistics, human-readable, on file descriptor fd. */
void gcm_print_stats(int fd);

#ifdef __cplusplus
}
#endif
#endif
