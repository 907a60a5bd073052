/*
 * roots.h - where marking starts.
 *
 * Roots are:
 *  - the writable segments (PT_LOAD with PF_W: .data, .bss, the GOT) of the
 *    executable and of every loaded shared object, dlopen'ed ones included,
 *    found with dl_iterate_phdr at each collection - minus gcmalloc's own
 *    32 MiB arena index, which holds no object pointers;
 *  - every registered thread's stack from its stack pointer up (the signal
 *    frame with its saved registers lies there, see stw.h), the argument of a
 *    thread that has not started yet, and thread-local storage: a thread's
 *    static TLS block and its thread control block (pthread_setspecific
 *    values) lie at the top of its stack mapping; the main thread's are found
 *    from its thread pointer; every thread's DTV is scanned too, so that the
 *    blocks of dlopen'ed modules' __thread variables (allocated with malloc)
 *    stay alive;
 *  - ranges registered with gcm_add_roots;
 *  - the objects of every open scope (gc/scope.c).
 * The program's own mmap'ed memory is not scanned: a pointer kept only there
 * does not keep an object alive (docs/gc.md).
 */
#ifndef GCM_ROOTS_H
#define GCM_ROOTS_H

#include "alloc/common.h"

/* Before the world stops (dl_iterate_phdr takes the loader's lock, which a
 * stopped thread might hold): list the loaded objects' writable segments.
 * False when out of memory. gc lock held. */
bool gcm_roots_prepare(void);
/* World stopped: mark from every root. */
void gcm_roots_mark(void);
/* gcm_add_roots / gcm_remove_roots; gc lock held. */
bool gcm_roots_add(uintptr_t lo, size_t len);
void gcm_roots_remove(uintptr_t lo);

#endif
