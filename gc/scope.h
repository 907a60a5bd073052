/*
 * scope.h - scoped allocation, the C programmer's escape analysis.
 *
 * Go keeps an object that does not escape its function on the stack. In C the
 * programmer says so: an object from gcm_malloc_scoped belongs to the
 * innermost scope its thread has open (gcm_scope_enter) and is freed when that
 * scope exits (gcm_scope_exit), unless gcm_escape(p) took it out first.
 *
 * Each thread keeps, in its gthread record, the scoped objects in order and
 * where each open scope starts; a token is the scope's depth (1 for the
 * outermost). Exiting a scope frees its objects and those of the scopes
 * opened inside it. The objects of open scopes are roots for the collector.
 *
 * A scoped object that the program frees (or reallocs) itself before its
 * scope exits is not freed twice: its span's scopeBits says which objects are
 * still scoped. The bit is set by gcm_malloc_scoped, cleared by gcm_escape and
 * by the scope exit, and cleared for every slot that the allocator hands out
 * again (mspan_set_cache); a large object's span goes away with it. So at the
 * exit an object is freed only if it is still allocated and still scoped.
 */
#ifndef GCM_SCOPE_H
#define GCM_SCOPE_H

#include "stw.h"

/* Open a scope on the calling thread; its token (never 0). */
size_t gcm_scope_open(void);
/* Record p, just allocated, in the innermost open scope (if none is open, p
 * stays an ordinary object). False when out of memory (p is then ordinary). */
bool gcm_scope_track(void *p);
void gcm_scope_forget(void *p);
/* Close scope `token` and those inside it, freeing their objects. */
void gcm_scope_close(size_t token);
/* World stopped: mark the objects of t's open scopes. */
void gcm_scope_mark(gthread *t);

#endif
