/*
 * os.h - the only place that talks to the kernel for memory and diagnostics.
 *
 * Everything here uses raw system calls (no stdio, no malloc, no locks), so it
 * is safe while gcmalloc initialises, inside signal handlers and in a forked
 * child.
 */
#ifndef GCM_OS_H
#define GCM_OS_H

#include "common.h"

/* Reserve and commit-on-touch `len` bytes, read/write, or NULL on failure.
 * `hint` is a preferred address (0 for none); the result may differ. */
void *gcm_os_map(void *hint, size_t len);
/* Map `len` bytes aligned to `align` (a power of two >= page size), or NULL. */
void *gcm_os_map_aligned(size_t len, size_t align, void *hint);
void gcm_os_unmap(void *p, size_t len);
/* Grow an array kept in OS memory (metadata that must not live in the heap
 * it describes) to hold at least `need` elements of `elem` bytes, doubling
 * from `first`. The new copy is published in *arr (atomically) before the old
 * one is unmapped, so a collector that stopped the owner half-way reads
 * valid memory. False when the OS refuses (the array is unchanged). */
bool gcm_os_grow(void **arr, size_t *cap, size_t need, size_t elem, size_t first);
/* mremap(MAYMOVE); NULL on failure (p stays mapped). */
void *gcm_os_remap(void *p, size_t old, size_t len);
/* Every mapping made here is registered, so that the collector can tell the
 * process's memory from gcmalloc's own: gcm_os_regions gives n (lo, hi)
 * pairs; hold the (recursive) registry lock while using them. */
void gcm_os_regions_lock(void);
void gcm_os_regions_unlock(void);
void gcm_os_regions_reinit(void);
size_t gcm_os_regions(const uintptr_t **pairs);
/* Tell the kernel the pages' contents may be dropped; they read as zero after. */
void gcm_os_release(uintptr_t addr, size_t len);

/* Diagnostics: write(2) only. */
void gcm_os_write(int fd, const char *s, size_t n);
/* Format "gcmalloc: <msg> <ptr>...\n" pieces into buf: a tiny formatter for
 * the error paths, which must not call stdio. Returns the new length. */
size_t gcm_fmt_str(char *buf, size_t len, size_t cap, const char *s);
size_t gcm_fmt_hex(char *buf, size_t len, size_t cap, uintptr_t v);
size_t gcm_fmt_dec(char *buf, size_t len, size_t cap, uint64_t v);

/* Print "gcmalloc: <fn>: <problem> <ptr> <detail>" as one line on stderr
 * and abort; e.g. "gcmalloc: free(): double free 0x7f01c2a04010". */
__attribute__((noreturn, cold)) void gcm_fatal_ptr(const char *fn, const char *problem, const void *p,
                                                   const char *detail);
/* Print "gcmalloc: <msg>" on stderr and abort. */
__attribute__((noreturn, cold)) void gcm_fatal(const char *msg);

#ifdef GCMALLOC_VALGRIND
/* Make [p, p + len) PROT_WRITE alone (still readable on x86-64): alloc/vg.h. */
void gcm_os_write_only(void *p, size_t len);
#endif

/* Monotonic milliseconds (vDSO; cheap). */
uint64_t gcm_os_now_ms(void);

#endif
