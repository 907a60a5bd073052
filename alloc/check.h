/*
 * check.h - GCMALLOC_CHECK=1: the checking mode (canary, junk, quarantine).
 *
 * Off by default, and then it costs one predictable branch in each slow path
 * (the fast paths never test it). When on, the shim detours every thread
 * through the slow paths (shim.h: gcm_shim_detour, as leakcheck mode does),
 * and the slow paths call in here:
 *
 *   allocation  gcm_check_size() pads the request by GCM_CHECK_PAD bytes;
 *               gcm_check_new() records the requested size and writes the
 *               canary after it;
 *   free        gcm_check_free() verifies the canary, fills the object with
 *               junk and puts it in the quarantine; it is really freed
 *               (gcm_dealloc_release) when it leaves, after its junk was
 *               verified;
 *   realloc     always moves (gcm_check_realloc): the old block is verified
 *               and quarantined like a free;
 *   usable size the requested size, so that nothing invites writes over the
 *               canary.
 * See check.c for the layout and the invariants, docs/reliability.md for
 * what it catches and costs.
 */
#ifndef GCM_CHECK_H
#define GCM_CHECK_H

#include "mcache.h"

#define GCM_CHECK_PAD 16 /* bytes added to every request: the canary always has room */

/* Set once, at start-up, before any thread has an mcache (never changes). */
extern bool gcm_check_on;

/* Read GCMALLOC_CHECK and set up the quarantine (start-up step 1: after the
 * options, before any mcache exists; no malloc). */
void gcm_check_init(void);
/* The quarantine's slots, for the collector's roots: quarantined objects are
 * still allocated, and must not be reported as leaks.
 * false when check mode is off. */
bool gcm_check_roots(const void **lo, size_t *len);

GCM_NOINLINE size_t gcm_check_padded(size_t n);
/* The size to ask the heap for, for a request of n bytes. */
GCM_INLINE size_t gcm_check_size(size_t n) { return GCM_UNLIKELY(gcm_check_on) ? gcm_check_padded(n) : n; }

/* p was just allocated for a request of n bytes (padded): record n, write the
 * canary. Returns p, or NULL (errno ENOMEM, p freed) when there is no memory
 * to record n. */
void *gcm_check_new(void *p, size_t n);
/* free(p), p the start of an object of span s (already looked up). */
void gcm_check_free(mspan *s, void *p, const char *fn);
/* realloc(p, n), n > 0: a new block (padded, not yet recorded), the old one's
 * contents copied, the old one freed as by gcm_check_free. */
void *gcm_check_realloc(mcache *c, void *p, size_t n, const char *fn);
/* malloc_usable_size(p) in check mode: the requested size. */
size_t gcm_check_usable(mspan *s, const void *p, const char *fn);
/* Take every object out of the quarantine, verifying it (at exit). */
void gcm_check_flush(void);

#endif
