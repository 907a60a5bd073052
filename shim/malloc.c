/*
 * malloc.c - the exported malloc family, with glibc 2.36's semantics.
 *
 * Every function a program or library might use to get or give back heap
 * memory is here, including the __libc_ names, so that no call ever reaches
 * glibc's own heap (a block from one allocator freed by another is a crash).
 * Rules worth knowing (see docs/api.md):
 *  - every block is 16-byte aligned, malloc(0) gives a unique block;
 *  - an impossible request returns NULL with errno ENOMEM;
 *  - realloc(p, 0) frees p and returns NULL; a shrink returns p;
 *  - free keeps errno; a bad free prints one line and aborts.
 */
#include "shim.h"
#include "alloc/lstash.h"
#include "alloc/stats.h"
#include "gc/gc.h"
#include "gc/scope.h"
#include "gc/stacks.h"

#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <string.h>

#define SYS_PAGE 4096 /* valloc/pvalloc use the system page, as glibc does */

/* The implementations. Exported functions call these, never each other:
 * a call from one exported function to another would go through the PLT and
 * could reach another allocator's function when gcmalloc is dlopen'ed.
 * GCM_STACK_SKIP marks every function between a program's allocation call
 * and the recording of its stack (gc/stacks.h): leak reports leave their
 * frames out. */

/* The calling thread's mcache for a slow-path call; false: no heap at all. */
static bool cache_for_call(mcache **c) {
    *c = gcm_thread_cache();
    if (!*c && !gcm_heap_ready()) {
        errno = ENOMEM;
        return false;
    }
    return true;
}

GCM_STACK_SKIP static GCM_NOINLINE void *malloc_slow(size_t n, bool noscan) {
    mcache *c;
    if (!cache_for_call(&c)) return NULL;
    return gcm_shim_recorded(gcm_alloc(c, n, noscan), n);
}

GCM_STACK_SKIP static GCM_NOINLINE void *aligned_slow(size_t align, size_t n) {
    mcache *c;
    if (!cache_for_call(&c)) return NULL;
    return gcm_shim_recorded(gcm_alloc_aligned(c, n, align), n);
}

/* A small request's size and, for an aligned one, its alignment, in one
 * argument of the refill: malloc's miss path passes its size as it is. */
#define REQ_ALIGN_SHIFT 32
#define REQ_SIZE_MASK (((size_t)1 << REQ_ALIGN_SHIFT) - 1)
#define REQ_ALIGN(n, align) ((n) | (size_t)(align) << REQ_ALIGN_SHIFT)

/* The span class of a request from its REQ_ALIGN encoding. */
static unsigned req_spanclass(size_t req) {
    size_t n = req & REQ_SIZE_MASK, align = req >> REQ_ALIGN_SHIFT;
    return align ? gcm_span_class(gcm_size_class_aligned(n, align), false) : gcm_size_spanclass(n);
}

/* A small request whose span cache is empty and cannot be refilled in the
 * quick way: start a collection if one is due, then refill (attaching the
 * thread's mcache on its first allocation, and taking the slow path for
 * everything while allocations are recorded). */
GCM_STACK_SKIP static GCM_NOINLINE void *malloc_refill_slow(mcache *c, unsigned spc, size_t req) {
    if (GCM_UNLIKELY(GCM_LOAD(&gcm_heap.gc_due))) gcm_gc_collect_due();
    if (GCM_LIKELY(c != &gcm_empty_mcache)) {
        if (GCM_LIKELY(!gcm_shim_detour)) return gcm_mcache_refill_slow(c, spc ? spc : req_spanclass(req));
        gcm_tls_mcache = &gcm_empty_mcache; /* detoured from now on */
    }
    size_t n = req & REQ_SIZE_MASK, align = req >> REQ_ALIGN_SHIFT;
    return align ? aligned_slow(align, n) : malloc_slow(n, false);
}

/* A small request whose span cache is empty: s = c's current span of the
 * request's class, req = REQ_ALIGN (whose class serves the alignment too).
 * The class comes from s, not from the fast path: keeping it live there cost
 * malloc an instruction. gcm_empty_span, the current span of a class c has
 * not used yet, reads as class 0, whose slots are always empty: the quick
 * refill finds nothing there, and the slow one takes the class from req.
 * The quick refill needs no test for the empty mcache (its spans have
 * nothing freed) nor for a due collection (one is due only while pacing,
 * which the quick refill leaves to the slow one); it keeps this function's
 * frame empty. */
GCM_STACK_SKIP static GCM_NOINLINE void *malloc_refill(mcache *c, const mspan *s, size_t req) {
    unsigned spc = s->spanclass;
    if (GCM_LIKELY(!gcm_shim_detour)) {
        void *p = gcm_mcache_refill_quick(c, spc);
        if (GCM_LIKELY(p != NULL)) return p;
    }
    return malloc_refill_slow(c, spc, req);
}

/* This thread's current span of small request n's class. */
GCM_INLINE mspan *cache_span(mcache *c, size_t n) { return c->alloc[gcm_size_spanclass(n)]; }

/* A large request the thread's stash may serve (alloc/lstash.c, which
 * knows what length it keeps), without the slow path's checks: a thread in
 * check mode, leak recording or under valgrind runs on gcm_empty_mcache
 * (detoured), whose stash is empty, and the detour test covers a thread not
 * yet moved there. */
GCM_STACK_SKIP static GCM_NOINLINE void *malloc_large(mcache *c, size_t n) {
    if (c->lstash_n && !gcm_shim_detour) {
        void *p = gcm_lstash_take(c, n, false);
        if (p) return p;
    }
    return malloc_slow(n, false);
}

GCM_INLINE void *do_malloc(size_t n) {
    mcache *c = gcm_tls_mcache;
    if (GCM_LIKELY(n <= GCM_MAX_SMALL)) {
        mspan *s = cache_span(c, n);
        uint64_t cache = s->allocCache;
        if (GCM_LIKELY(cache != 0)) return mspan_take(s, cache);
        return malloc_refill(c, s, n);
    }
    return malloc_large(c, n);
}

GCM_STACK_SKIP static GCM_NOINLINE void *calloc_slow(size_t n, size_t size) {
    mcache *c;
    if (!cache_for_call(&c)) return NULL;
    return gcm_shim_recorded(gcm_alloc_zeroed(c, n, size), n * size);
}

/* calloc: malloc's fast path, then clearing; every other case (an overflow,
 * an empty span cache, a large block - which may come zeroed from the OS)
 * takes the whole path. */
GCM_STACK_SKIP GCM_INLINE void *do_calloc(size_t n, size_t size) {
    size_t total;
    if (GCM_LIKELY(!__builtin_mul_overflow(n, size, &total) && total <= GCM_MAX_SMALL)) {
        mspan *s = cache_span(gcm_tls_mcache, total);
        uint64_t cache = s->allocCache;
        if (GCM_LIKELY(cache != 0)) return memset(mspan_take(s, cache), 0, total);
    }
    return calloc_slow(n, size);
}

GCM_STACK_SKIP static void *do_realloc(void *p, size_t n, const char *fn) {
    if (p == NULL) return do_malloc(n);
    if (n == 0) {
        gcm_dealloc(p, fn);
        return NULL;
    }
    return gcm_shim_recorded(gcm_realloc_obj(gcm_thread_cache(), p, n, fn), n);
}

/* align: a power of two. A small request takes malloc's fast path in the
 * smallest class whose objects are all aligned. */
GCM_STACK_SKIP GCM_INLINE void *do_aligned(size_t align, size_t n) {
    if (align <= GCM_MIN_ALIGN) return do_malloc(n);
    if (GCM_LIKELY(n <= GCM_MAX_SMALL && align <= GCM_PAGE_SIZE)) {
        mcache *c = gcm_tls_mcache;
        unsigned spc = gcm_span_class(gcm_size_class_aligned(n, align), false);
        mspan *s = c->alloc[spc];
        uint64_t cache = s->allocCache; /* class 0's span is the empty one: no cache */
        if (GCM_LIKELY(cache != 0)) return mspan_take(s, cache);
        if (spc) return malloc_refill(c, s, REQ_ALIGN(n, align));
    }
    return aligned_slow(align, n);
}

/* memalign's rounding: a non-power-of-two alignment is rounded up. */
GCM_STACK_SKIP static void *do_memalign(size_t align, size_t n) {
    if (!gcm_is_pow2(align) && align > GCM_MIN_ALIGN) {
        if (align > ((size_t)1 << 62)) {
            errno = ENOMEM;
            return NULL;
        }
        align = (size_t)1 << (64 - __builtin_clzll(align));
    }
    return do_aligned(align, n);
}

GCM_EXPORT GCM_STACK_SKIP void *malloc(size_t n) { return do_malloc(n); }
GCM_EXPORT void free(void *p) { gcm_dealloc(p, "free()"); }
GCM_EXPORT GCM_STACK_SKIP void *calloc(size_t n, size_t size) { return do_calloc(n, size); }
GCM_EXPORT GCM_STACK_SKIP void *realloc(void *p, size_t n) { return do_realloc(p, n, "realloc()"); }

GCM_EXPORT GCM_STACK_SKIP void *reallocarray(void *p, size_t n, size_t size) {
    size_t total;
    if (__builtin_mul_overflow(n, size, &total)) {
        errno = ENOMEM;
        return NULL;
    }
    return do_realloc(p, total, "reallocarray()");
}

GCM_EXPORT GCM_STACK_SKIP int posix_memalign(void **out, size_t align, size_t n) {
    if (align == 0 || align % sizeof(void *) != 0 || !gcm_is_pow2(align / sizeof(void *))) return EINVAL;
    int saved = errno;
    void *p = do_aligned(align, n);
    errno = saved;
    if (!p) return ENOMEM;
    *out = p;
    return 0;
}

GCM_EXPORT GCM_STACK_SKIP void *memalign(size_t align, size_t n) { return do_memalign(align, n); }
GCM_EXPORT GCM_STACK_SKIP void *aligned_alloc(size_t align, size_t n) { return do_memalign(align, n); }
GCM_EXPORT GCM_STACK_SKIP void *valloc(size_t n) { return do_aligned(SYS_PAGE, n); }

GCM_EXPORT GCM_STACK_SKIP void *pvalloc(size_t n) {
    if (n > SIZE_MAX - SYS_PAGE) {
        errno = ENOMEM;
        return NULL;
    }
    return do_aligned(SYS_PAGE, n ? gcm_align_up(n, SYS_PAGE) : SYS_PAGE);
}

GCM_EXPORT size_t malloc_usable_size(void *p) { return p ? gcm_usable(p, "malloc_usable_size()") : 0; }

GCM_EXPORT void free_sized(void *p, size_t size) { gcm_dealloc(p, "free_sized()"); }
GCM_EXPORT void free_aligned_sized(void *p, size_t align, size_t size) { gcm_dealloc(p, "free_aligned_sized()"); }
GCM_EXPORT void cfree(void *p) { gcm_dealloc(p, "cfree()"); }

/* The names glibc's internals and tracers (valgrind, libc_malloc_debug) use. */
GCM_EXPORT void *__libc_malloc(size_t n) __attribute__((alias("malloc"), copy(malloc)));
GCM_EXPORT void __libc_free(void *p) __attribute__((alias("free"), copy(free)));
GCM_EXPORT void *__libc_calloc(size_t n, size_t s) __attribute__((alias("calloc"), copy(calloc)));
GCM_EXPORT void *__libc_realloc(void *p, size_t n) __attribute__((alias("realloc"), copy(realloc)));
GCM_EXPORT void *__libc_memalign(size_t a, size_t n) __attribute__((alias("memalign"), copy(memalign)));
GCM_EXPORT void *__libc_valloc(size_t n) __attribute__((alias("valloc"), copy(valloc)));
GCM_EXPORT void *__libc_pvalloc(size_t n) __attribute__((alias("pvalloc"), copy(pvalloc)));

/* ---- glibc's malloc extras, answered with gcmalloc's own figures ---- */

GCM_EXPORT int mallopt(int param, int value) { return 1; /* accepted; gcmalloc tunes itself */ }

GCM_EXPORT int malloc_trim(size_t pad) { return gcm_trim(gcm_tls_mcache) ? 1 : 0; }

GCM_EXPORT struct mallinfo2 mallinfo2(void) {
    struct gcm_stats st;
    gcm_stats_read(&st, NULL);
    struct mallinfo2 mi;
    memset(&mi, 0, sizeof mi);
    mi.arena = st.mapped_bytes;             /* bytes held from the OS */
    mi.ordblks = st.allocated_objects;      /* objects in use */
    mi.hblkhd = st.large_bytes;             /* in large (own-span) objects */
    mi.hblks = 0;
    mi.uordblks = st.allocated_bytes;       /* in use */
    mi.fordblks = st.mapped_bytes > st.allocated_bytes ? st.mapped_bytes - st.allocated_bytes : 0;
    mi.keepcost = st.released_bytes;        /* released to the OS, reusable */
    mi.usmblks = st.peak_mapped_bytes;
    return mi;
}

GCM_EXPORT struct mallinfo mallinfo(void) {
    struct mallinfo2 m2 = mallinfo2();
    struct mallinfo mi;
#define CLAMP(x) ((x) > (size_t)0x7fffffff ? 0x7fffffff : (int)(x))
    mi.arena = CLAMP(m2.arena);
    mi.ordblks = CLAMP(m2.ordblks);
    mi.smblks = CLAMP(m2.smblks);
    mi.hblks = CLAMP(m2.hblks);
    mi.hblkhd = CLAMP(m2.hblkhd);
    mi.usmblks = CLAMP(m2.usmblks);
    mi.fsmblks = CLAMP(m2.fsmblks);
    mi.uordblks = CLAMP(m2.uordblks);
    mi.fordblks = CLAMP(m2.fordblks);
    mi.keepcost = CLAMP(m2.keepcost);
#undef CLAMP
    return mi;
}

GCM_EXPORT void malloc_stats(void) { gcm_stats_print(2); }

GCM_EXPORT int malloc_info(int options, FILE *f) {
    if (options != 0) {
        errno = EINVAL;
        return -1;
    }
    struct gcm_stats st;
    gcm_stats_read(&st, NULL);
    fprintf(f,
            "<malloc version=\"gcmalloc-1\">\n"
            "<system type=\"current\" size=\"%zu\"/>\n"
            "<system type=\"max\" size=\"%zu\"/>\n"
            "<total type=\"allocated\" count=\"%zu\" size=\"%zu\"/>\n"
            "<total type=\"large\" size=\"%zu\"/>\n"
            "<total type=\"released\" size=\"%zu\"/>\n"
            "</malloc>\n",
            st.mapped_bytes, st.peak_mapped_bytes, st.allocated_objects, st.allocated_bytes, st.large_bytes,
            st.released_bytes);
    return 0;
}

/* ---- gcmalloc's own names (include/gcmalloc.h) ---- */

GCM_EXPORT GCM_STACK_SKIP void *gcm_malloc(size_t n) { return do_malloc(n); }
GCM_EXPORT GCM_STACK_SKIP void *gcm_calloc(size_t n, size_t size) { return do_calloc(n, size); }
GCM_EXPORT GCM_STACK_SKIP void *gcm_realloc(void *p, size_t n) { return do_realloc(p, n, "gcm_realloc()"); }
GCM_EXPORT void gcm_free(void *p) { gcm_dealloc(p, "gcm_free()"); }
GCM_EXPORT size_t gcm_usable_size(const void *p) { return p ? gcm_usable(p, "gcm_usable_size()") : 0; }
GCM_EXPORT GCM_STACK_SKIP void *gcm_malloc_noscan(size_t n) { return malloc_slow(n, true); }

GCM_EXPORT GCM_STACK_SKIP void *gcm_malloc_scoped(size_t n) {
    void *p = do_malloc(n);
    if (p && !gcm_scope_track(p)) {
        gcm_dealloc(p, "gcm_malloc_scoped()");
        errno = ENOMEM;
        return NULL;
    }
    return p;
}
GCM_EXPORT void gcm_get_stats(struct gcm_stats *out) { gcm_stats_read(out, NULL); }
GCM_EXPORT void gcm_print_stats(int fd) { gcm_stats_print(fd); }
