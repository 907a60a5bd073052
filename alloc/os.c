/*
 * os.c - memory from the kernel, and diagnostics that cannot fail.
 *
 * Raw mmap/munmap/madvise only: this file may run before libc has finished
 * starting (ld.so allocates before any constructor), inside signal handlers
 * and in forked children, so it calls nothing that could lock or allocate.
 * Mappings use MAP_NORESERVE: reserving an arena's address space costs
 * nothing until its pages are touched.
 */
#include "os.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* ---- the registry of our own mappings ----
 * Kept so that the collector, when it scans the process's anonymous memory
 * for roots, can leave out gcmalloc's metadata (spans hold the addresses of
 * their first objects, which are not references). A sorted-on-demand array
 * of ranges in its own mapping; the lock is recursive because the collector
 * holds it across a collection that may map memory itself. */
typedef struct region {
    uintptr_t lo, hi;
} region;
static pthread_mutex_t regions_lock = PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP;
static region *regions;
static size_t nregions, regions_cap;

static void *raw_map(void *hint, size_t len) {
    int saved = errno; /* a failed reservation is not the caller's error */
    void *p = mmap(hint, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    errno = saved;
    return p == MAP_FAILED ? NULL : p;
}

static void raw_unmap(void *p, size_t len) {
    int saved = errno;
    munmap(p, len);
    errno = saved;
}

static void region_add(uintptr_t lo, size_t len) {
    pthread_mutex_lock(&regions_lock);
    if (nregions == regions_cap) {
        size_t ncap = regions_cap ? regions_cap * 2 : 1024;
        region *n = raw_map(NULL, ncap * sizeof(region));
        if (!n) { /* unrecorded, the mapping is only scanned needlessly (retention, never a loss) */
            pthread_mutex_unlock(&regions_lock);
            return;
        }
        if (regions) {
            memcpy(n, regions, nregions * sizeof(region));
            for (size_t i = 0; i < nregions; i++) /* the old array's own entry */
                if (n[i].lo == (uintptr_t)regions) n[i--] = n[--nregions];
            raw_unmap(regions, regions_cap * sizeof(region));
        }
        regions = n;
        regions_cap = ncap;
        /* The array holds our mappings' addresses: it is one of them. */
        regions[nregions].lo = (uintptr_t)n;
        regions[nregions].hi = (uintptr_t)n + ncap * sizeof(region);
        nregions++;
    }
    regions[nregions].lo = lo;
    regions[nregions].hi = lo + len;
    nregions++;
    pthread_mutex_unlock(&regions_lock);
}

/* Remove [lo, lo + len) from the registry (it may cut a region in two). */
static void region_del(uintptr_t lo, size_t len) {
    uintptr_t hi = lo + len;
    pthread_mutex_lock(&regions_lock);
    for (size_t i = 0; i < nregions; i++) {
        region r = regions[i];
        if (r.hi <= lo || r.lo >= hi) continue;
        if (r.lo < lo && r.hi > hi) { /* a hole in the middle */
            regions[i].hi = lo;
            pthread_mutex_unlock(&regions_lock);
            region_add(hi, r.hi - hi);
            return;
        }
        if (r.lo < lo) regions[i].hi = lo;
        else if (r.hi > hi) regions[i].lo = hi;
        else regions[i--] = regions[--nregions];
    }
    pthread_mutex_unlock(&regions_lock);
}

void gcm_os_regions_lock(void) { pthread_mutex_lock(&regions_lock); }
void gcm_os_regions_unlock(void) { pthread_mutex_unlock(&regions_lock); }
void gcm_os_regions_reinit(void) {
    pthread_mutex_t fresh = PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP;
    regions_lock = fresh;
}
size_t gcm_os_regions(const uintptr_t **pairs) {
    *pairs = (const uintptr_t *)regions;
    return nregions;
}

#ifdef GCMALLOC_FAULT_INJECTION
/* Test builds only (tests/api/test_oom_inject.c compiles this file itself):
 * after this many more successful mappings every mapping fails; -1: never. */
long gcm_os_fail_after = -1;
#endif

void *gcm_os_map(void *hint, size_t len) {
#ifdef GCMALLOC_FAULT_INJECTION
    if (gcm_os_fail_after == 0) return NULL;
    if (gcm_os_fail_after > 0) gcm_os_fail_after--;
#endif
    void *p = raw_map(hint, len);
    if (p) region_add((uintptr_t)p, len);
    return p;
}

bool gcm_os_grow(void **arr, size_t *cap, size_t need, size_t elem, size_t first) {
    if (need <= *cap) return true;
    size_t ncap = *cap ? *cap : first;
    while (ncap < need) ncap *= 2;
    void *n = gcm_os_map(NULL, ncap * elem), *old = *arr;
    if (!n) return false;
    if (old) memcpy(n, old, *cap * elem);
    __atomic_store_n(arr, n, __ATOMIC_RELEASE);
    size_t oldcap = *cap;
    *cap = ncap;
    if (old) gcm_os_unmap(old, oldcap * elem);
    return true;
}

void *gcm_os_remap(void *p, size_t old, size_t len) {
    int saved = errno;
    void *q = mremap(p, old, len, MREMAP_MAYMOVE);
    errno = saved;
    if (q == MAP_FAILED) return NULL;
    region_del((uintptr_t)p, old);
    region_add((uintptr_t)q, len);
    return q;
}

#ifdef GCMALLOC_VALGRIND
void gcm_os_write_only(void *p, size_t len) { mprotect(p, len, PROT_WRITE); }
#endif

void *gcm_os_map_aligned(size_t len, size_t align, void *hint) {
    if (hint && ((uintptr_t)hint & (align - 1)) == 0) {
        void *p = gcm_os_map(hint, len);
        if (p == hint) return p;
        if (p) gcm_os_unmap(p, len);
    }
    /* The kernel places mappings top-down, so the aligned address just below
     * an unaligned mapping is usually free: try it before over-mapping, which
     * needs len + align of address space at once (RLIMIT_AS counts it). */
    char *p = gcm_os_map(NULL, len);
    if (!p) return NULL;
    if (((uintptr_t)p & (align - 1)) == 0) return p;
    gcm_os_unmap(p, len);
    void *below = (void *)((uintptr_t)p & ~(uintptr_t)(align - 1));
    if (below && (p = gcm_os_map(below, len)) != NULL) {
        if ((void *)p == below) return p;
        gcm_os_unmap(p, len);
    }
    /* Over-map and trim the unaligned ends. */
    size_t over = len + align;
    if (over < len) return NULL;
    char *raw = gcm_os_map(NULL, over);
    if (!raw) return NULL;
    uintptr_t start = ((uintptr_t)raw + align - 1) & ~(uintptr_t)(align - 1);
    size_t head = start - (uintptr_t)raw;
    if (head) gcm_os_unmap(raw, head);
    size_t tail = over - head - len;
    if (tail) gcm_os_unmap((void *)(start + len), tail);
    return (void *)start;
}

void gcm_os_unmap(void *p, size_t len) {
    raw_unmap(p, len);
    region_del((uintptr_t)p, len);
}

void gcm_os_release(uintptr_t addr, size_t len) {
    int saved = errno;
    madvise((void *)addr, len, MADV_DONTNEED);
    errno = saved;
}

void gcm_os_write(int fd, const char *s, size_t n) {
    int saved = errno;
    while (n > 0) {
        ssize_t w = write(fd, s, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) break;
        s += w;
        n -= (size_t)w;
    }
    errno = saved;
}

size_t gcm_fmt_str(char *buf, size_t len, size_t cap, const char *s) {
    while (*s && len + 1 < cap) buf[len++] = *s++;
    buf[len] = 0;
    return len;
}

size_t gcm_fmt_hex(char *buf, size_t len, size_t cap, uintptr_t v) {
    char tmp[20];
    int n = 0;
    do { tmp[n++] = "0123456789abcdef"[v & 15]; v >>= 4; } while (v);
    len = gcm_fmt_str(buf, len, cap, "0x");
    while (n > 0 && len + 1 < cap) buf[len++] = tmp[--n];
    buf[len] = 0;
    return len;
}

size_t gcm_fmt_dec(char *buf, size_t len, size_t cap, uint64_t v) {
    char tmp[24];
    int n = 0;
    do { tmp[n++] = (char)('0' + v % 10); v /= 10; } while (v);
    while (n > 0 && len + 1 < cap) buf[len++] = tmp[--n];
    buf[len] = 0;
    return len;
}

void gcm_fatal_ptr(const char *fn, const char *problem, const void *p, const char *detail) {
    char buf[320];
    size_t n = gcm_fmt_str(buf, 0, sizeof buf, "gcmalloc: ");
    n = gcm_fmt_str(buf, n, sizeof buf, fn);
    n = gcm_fmt_str(buf, n, sizeof buf, ": ");
    n = gcm_fmt_str(buf, n, sizeof buf, problem);
    n = gcm_fmt_str(buf, n, sizeof buf, " ");
    n = gcm_fmt_hex(buf, n, sizeof buf, (uintptr_t)p);
    if (detail && *detail) {
        n = gcm_fmt_str(buf, n, sizeof buf, " ");
        n = gcm_fmt_str(buf, n, sizeof buf, detail);
    }
    n = gcm_fmt_str(buf, n, sizeof buf, "\n");
    gcm_os_write(2, buf, n);
    abort();
}

void gcm_fatal(const char *msg) {
    char buf[256];
    size_t n = gcm_fmt_str(buf, 0, sizeof buf, "gcmalloc: ");
    n = gcm_fmt_str(buf, n, sizeof buf, msg);
    n = gcm_fmt_str(buf, n, sizeof buf, "\n");
    gcm_os_write(2, buf, n);
    abort();
}

uint64_t gcm_os_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}
