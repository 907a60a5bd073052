/*
 * common.h - constants and small helpers shared by every part of the allocator.
 *
 * The geometry follows Go's runtime on linux/amd64: 8 KiB pages, 66 small size
 * classes up to 32 KiB, 64 MiB heap arenas, and a 48-bit user address space.
 * Every constant that another file derives a layout from lives here, so that a
 * change of geometry is one edit.
 *
 * Memory-order conventions: fields that one thread owns but others may read
 * (a span's allocBits, allocCount, owner) are written with relaxed atomic
 * stores and read with relaxed atomic loads (GCM_LOAD / GCM_STORE). On x86-64
 * these compile to plain moves; they exist so that the sanitizers and the
 * compiler see the sharing that the design intends.
 *
 * Read-modify-writes that other threads may race with (the remote-free
 * list, a span's xfree state, a large object's alloc bit) go through
 * gcm_xchg and gcm_cas. In a single-threaded process they are a relaxed load
 * and store instead of a lock-prefixed instruction, as glibc's manual
 * suggests for __libc_single_threaded (which pthread_create and thrd_create
 * clear before the second thread runs, so the state is consistent when it
 * starts). The lock prefix costs ~20 cycles uncontended, and a
 * single-threaded program frees into spans its mcache gave back by that
 * path for every object (fifo/512: 12.8 -> 11.9 ns per malloc+free). A
 * thread made with a raw clone() leaves the flag set: glibc's own
 * single-thread shortcuts (stdio locking) are wrong then too.
 */
#ifndef GCM_COMMON_H
#define GCM_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include <sys/single_threaded.h>

#define GCM_HIDDEN __attribute__((visibility("hidden")))
#define GCM_EXPORT __attribute__((visibility("default")))
#define GCM_LIKELY(x) __builtin_expect(!!(x), 1)
#define GCM_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define GCM_NOINLINE __attribute__((noinline))
#define GCM_INLINE static inline __attribute__((always_inline))
#define GCM_TLS __thread __attribute__((tls_model("initial-exec")))

/* Pages: the unit of the page allocator and of span lengths. */
#define GCM_PAGE_SHIFT 13
#define GCM_PAGE_SIZE ((size_t)1 << GCM_PAGE_SHIFT) /* 8 KiB */

/* Small objects: sizes up to GCM_MAX_SMALL come from size-classed spans. */
#define GCM_MAX_SMALL ((size_t)32768)
#define GCM_NUM_SIZE_CLASSES 67 /* class 0 = large object, 1..66 small */
#define GCM_NUM_SPAN_CLASSES (GCM_NUM_SIZE_CLASSES * 2)
#define GCM_MIN_ALIGN 16 /* every malloc block is 16-byte aligned (x86-64 ABI) */

/* Heap arenas: the unit of address-space reservation and metadata. */
#define GCM_ARENA_SHIFT 26
#define GCM_ARENA_SIZE ((size_t)1 << GCM_ARENA_SHIFT) /* 64 MiB */
#define GCM_PAGES_PER_ARENA (GCM_ARENA_SIZE >> GCM_PAGE_SHIFT) /* 8192 */
#define GCM_ARENA_BITMAP_WORDS (GCM_PAGES_PER_ARENA / 64) /* 128 */
#define GCM_ADDR_BITS 48
#define GCM_ARENA_INDEX_LEN ((size_t)1 << (GCM_ADDR_BITS - GCM_ARENA_SHIFT)) /* 4M */

/* Relaxed shared access (see the header comment). */
#define GCM_LOAD(p) __atomic_load_n((p), __ATOMIC_RELAXED)
#define GCM_STORE(p, v) __atomic_store_n((p), (v), __ATOMIC_RELAXED)
#define GCM_LOAD_ACQ(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define GCM_STORE_REL(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)

/* Exchange: returns the old value (acquire-release; see the header comment). */
GCM_INLINE uintptr_t gcm_xchg(uintptr_t *p, uintptr_t v) {
    if (__libc_single_threaded) {
        uintptr_t old = GCM_LOAD(p);
        GCM_STORE(p, v);
        return old;
    }
    return __atomic_exchange_n(p, v, __ATOMIC_ACQ_REL);
}
/* Compare-and-swap, strong, sequentially consistent: *p = v if *p == *expect,
 * else *expect = *p (see the header comment). */
GCM_INLINE bool gcm_cas(uintptr_t *p, uintptr_t *expect, uintptr_t v) {
    if (__libc_single_threaded) {
        uintptr_t cur = GCM_LOAD(p);
        if (cur != *expect) {
            *expect = cur;
            return false;
        }
        GCM_STORE(p, v);
        return true;
    }
    return __atomic_compare_exchange_n(p, expect, v, false, __ATOMIC_SEQ_CST, __ATOMIC_RELAXED);
}

static inline size_t gcm_align_up(size_t n, size_t a) { return (n + a - 1) & ~(a - 1); }
static inline bool gcm_is_pow2(size_t x) { return x && !(x & (x - 1)); }

#endif
