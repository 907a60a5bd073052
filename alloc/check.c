/*
 * check.c - GCMALLOC_CHECK=1 (see check.h for where it hooks in).
 *
 * An object in check mode, of requested size req in a slot of elemsize bytes
 * (elemsize >= req + GCM_CHECK_PAD):
 *
 *   live:   [0, req) the program's | [req, canary end) CANARY_BYTE | rest untouched
 *   freed:  [0, junk end) JUNK_BYTE                                  | rest untouched
 *
 * canary end = min(elemsize, req + CANARY_MAX): at least GCM_CHECK_PAD bytes,
 * and the slack of the size class up to 64 bytes. junk end = min(elemsize,
 * JUNK_MAX): all of a small object, the first 32 KiB of a large one (filling
 * and verifying more would make freeing a big block cost O(its size)).
 *
 * The requested size is recorded where leakcheck mode records it: the span's
 * reqsizes[] for a small object, mspan.reqsize for a large one. Its top bit
 * (FREED_*) is set, with one atomic fetch-or, by the free that takes the
 * object: so of two frees of the same object, however they race, exactly one
 * wins and the other is reported as a double free - also while the object
 * waits in the quarantine, where the heap still counts it as allocated. The
 * bit stays set after the object is really freed, until its slot is
 * allocated again (gcm_check_new writes a fresh size).
 *
 * The quarantine is a ring of QSLOTS pointers, lock-free: a free takes the
 * next slot with a fetch-add on head and swaps its object in; what it swaps
 * out (the object freed QSLOTS frees earlier) leaves. While the bytes held
 * (slot sizes) exceed GCMALLOC_CHECK_QUARANTINE, frees also take objects out
 * at tail, oldest first. Every object is taken out by exactly one exchange,
 * so none leaves twice; FIFO order is approximate when frees race. No lock:
 * nothing for fork to deadlock on (a fork child loses only the objects other
 * threads were taking out at that instant: they stay allocated), and a free
 * from a signal handler that interrupted a free cannot deadlock. The ring is
 * a root of the collector (gcm_check_roots): quarantined objects are not
 * reported as leaks.
 *
 * The collector: leakcheck mode works with check mode (marking frees
 * nothing). Collect mode is refused: the objects it frees skip every check
 * (nobody verifies or junk-fills them), and a check run would blame the
 * program for what the collector did. GCMALLOC_GC=collect turns check mode
 * off with one warning line; gcm_set_gc_mode refuses collect while check
 * mode is on.
 *
 * An object leaving the quarantine has its junk verified (a mismatch is a
 * write after free), then is really freed (gcm_dealloc_release). At exit,
 * gcm_check_flush verifies and frees everything still in the quarantine.
 *
 * Reports: one line, `gcmalloc: <problem> at 0x... (object of N bytes):
 * <what was found>`, written with write(2), then abort().
 */
#include "check.h"
#include "malloc.h"
#include "mheap.h"
#include "options.h"
#include "os.h"
#include "include/gcmalloc.h" /* GCM_GC_COLLECT */

#include <errno.h>
#include <string.h>

#define CANARY_BYTE 0xca
#define CANARY_MAX ((size_t)64)
#define JUNK_BYTE 0xdf
#define JUNK_MAX ((size_t)32 << 10)
#define QSLOTS ((size_t)1 << 16) /* the quarantine's bound by count */
#define FREED_SMALL ((uint32_t)1 << 31)
#define FREED_LARGE ((size_t)1 << 63)
#define NO_OFFSET ((size_t)-1)

bool gcm_check_on;

static struct {
    void **slot;  /* QSLOTS entries; NULL = empty; atomic exchanges only */
    size_t head;  /* atomic: frees so far (the next slot to fill, mod QSLOTS) */
    size_t tail;  /* atomic: the oldest slot that may still hold an object */
    size_t bytes; /* atomic: slot bytes of the objects in the quarantine, or on their way in */
    size_t bound; /* GCMALLOC_CHECK_QUARANTINE */
} q;

void gcm_check_init(void) {
    if (!gcm_option(GCM_OPT_CHECK)) return;
    if (gcm_option(GCM_OPT_GC) == GCM_GC_COLLECT) {
        static const char msg[] = "gcmalloc: warning: GCMALLOC_CHECK=1 does not go with GCMALLOC_GC=collect "
                                  "(the collector frees objects behind the checks' back); check mode off\n";
        gcm_os_write(2, msg, sizeof msg - 1);
        return;
    }
    q.slot = gcm_os_map(NULL, QSLOTS * sizeof(void *));
    if (!q.slot) {
        static const char msg[] = "gcmalloc: warning: GCMALLOC_CHECK=1: no memory for the quarantine; check mode off\n";
        gcm_os_write(2, msg, sizeof msg - 1);
        return;
    }
    q.bound = (size_t)gcm_option(GCM_OPT_CHECK_QUARANTINE);
    gcm_check_on = true;
}

bool gcm_check_roots(const void **lo, size_t *len) {
    *lo = q.slot;
    *len = QSLOTS * sizeof(void *);
    return gcm_check_on;
}

size_t gcm_check_padded(size_t n) { return n > SIZE_MAX - GCM_CHECK_PAD ? SIZE_MAX : n + GCM_CHECK_PAD; }

static size_t canary_end(const mspan *s, size_t req) {
    return s->elemsize - req < CANARY_MAX ? s->elemsize : req + CANARY_MAX;
}
static size_t junk_end(const mspan *s) { return s->elemsize < JUNK_MAX ? s->elemsize : JUNK_MAX; }

/* The first offset in [from, to) of p whose byte is not b, or NO_OFFSET. */
static size_t find_not(const void *p, size_t from, size_t to, unsigned char b) {
    const unsigned char *c = p;
    uint64_t w = 0x0101010101010101ull * b;
    size_t i = from;
    for (; i < to && (i & 7); i++)
        if (c[i] != b) return i;
    for (; i + 8 <= to; i += 8) {
        uint64_t v;
        memcpy(&v, c + i, 8);
        if (v != w) break;
    }
    for (; i < to; i++)
        if (c[i] != b) return i;
    return NO_OFFSET;
}

/* "gcmalloc: <problem> at <p> (object of <size> bytes): <found>[byte ...], seen by <fn>", then abort;
 * fn NULL: seen as the object left the quarantine. */
static __attribute__((noreturn, cold)) void report(const char *problem, const void *p, size_t size,
                                                    const char *found, const void *at, size_t off,
                                                    unsigned char want, const char *fn) {
    char buf[256];
    size_t n = gcm_fmt_str(buf, 0, sizeof buf, problem);
    n = gcm_fmt_str(buf, n, sizeof buf, " at ");
    n = gcm_fmt_hex(buf, n, sizeof buf, (uintptr_t)p);
    n = gcm_fmt_str(buf, n, sizeof buf, " (object of ");
    n = gcm_fmt_dec(buf, n, sizeof buf, size);
    n = gcm_fmt_str(buf, n, sizeof buf, " bytes): ");
    n = gcm_fmt_str(buf, n, sizeof buf, found);
    if (off != NO_OFFSET) {
        n = gcm_fmt_str(buf, n, sizeof buf, "byte at offset ");
        n = gcm_fmt_dec(buf, n, sizeof buf, off);
        n = gcm_fmt_str(buf, n, sizeof buf, " is ");
        n = gcm_fmt_hex(buf, n, sizeof buf, ((const unsigned char *)at)[off]);
        n = gcm_fmt_str(buf, n, sizeof buf, " not ");
        n = gcm_fmt_hex(buf, n, sizeof buf, want);
    }
    n = gcm_fmt_str(buf, n, sizeof buf, fn ? ", seen by " : ", seen as it left the quarantine");
    if (fn) gcm_fmt_str(buf, n, sizeof buf, fn);
    gcm_fatal(buf);
}

/* The recorded size word of object p of span s (small: its reqsizes entry). */
static uint32_t *small_req(mspan *s, const void *p) {
    uint32_t *r = __atomic_load_n(&s->reqsizes, __ATOMIC_ACQUIRE);
    return r ? &r[mspan_obj_index(s, (uintptr_t)p)] : NULL;
}

/* Check that p is a live object with its canary intact; returns its
 * requested size. take: mark it freed (the free that wins; see the header).
 * `freed`: the problem's name when it is not live ("double free" for frees). */
static size_t check_live(mspan *s, void *p, bool take, const char *freed, const char *fn) {
    size_t req;
    bool dead;
    if (mspan_is_large(s)) {
        if ((uintptr_t)p != s->base) gcm_report_interior(fn, p, s);
        req = take ? __atomic_fetch_or(&s->reqsize, FREED_LARGE, __ATOMIC_ACQ_REL) : GCM_LOAD(&s->reqsize);
        dead = (req & FREED_LARGE) || !(GCM_LOAD(&s->allocBits[0]) & 1);
        req &= ~FREED_LARGE;
    } else {
        uint32_t *r = small_req(s, p), v = 0;
        bool owner = GCM_LOAD(&s->owner) == gcm_tls_own;
        if (r) v = take ? __atomic_fetch_or(r, FREED_SMALL, __ATOMIC_ACQ_REL) : GCM_LOAD(r);
        dead = !r || (v & FREED_SMALL) || !mspan_is_allocated(s, mspan_obj_index(s, (uintptr_t)p), owner);
        req = v & ~FREED_SMALL;
    }
    if (GCM_UNLIKELY(dead)) report(freed, p, req, "freed already", NULL, NO_OFFSET, 0, fn);
    size_t off = find_not(p, req, canary_end(s, req), CANARY_BYTE);
    if (GCM_UNLIKELY(off != NO_OFFSET))
        report("heap overflow", p, req, "the canary after the object was overwritten: ", p, off, CANARY_BYTE, fn);
    return req;
}

void *gcm_check_new(void *p, size_t n) {
    mspan *s = gcm_span_of((uintptr_t)p);
    if (mspan_is_large(s)) {
        GCM_STORE(&s->reqsize, n);
    } else {
        uint32_t *r = gcm_mheap_per_object(s, &s->reqsizes);
        if (!r) {
            gcm_dealloc_release(s, p, "malloc()");
            errno = ENOMEM;
            return NULL;
        }
        GCM_STORE(&r[mspan_obj_index(s, (uintptr_t)p)], (uint32_t)n);
    }
    memset((char *)p + n, CANARY_BYTE, canary_end(s, n) - n);
    return p;
}

/* p leaves the quarantine: verify its junk, really free it. */
static void release(void *p) {
    mspan *s = gcm_span_of((uintptr_t)p);
    __atomic_fetch_sub(&q.bytes, s->elemsize, __ATOMIC_RELAXED);
    size_t off = find_not(p, 0, junk_end(s), JUNK_BYTE);
    if (GCM_UNLIKELY(off != NO_OFFSET)) {
        size_t req = mspan_is_large(s) ? GCM_LOAD(&s->reqsize) & ~FREED_LARGE : *small_req(s, p) & ~FREED_SMALL;
        report("use after free", p, req, "written after it was freed: ", p, off, JUNK_BYTE, NULL);
    }
    gcm_dealloc_release(s, p, "free()");
}

static void quarantine(void *p, size_t bytes) {
    __atomic_fetch_add(&q.bytes, bytes, __ATOMIC_RELAXED); /* before p is visible: every sub follows its add */
    size_t h = __atomic_fetch_add(&q.head, 1, __ATOMIC_RELAXED);
    void *old = __atomic_exchange_n(&q.slot[h % QSLOTS], p, __ATOMIC_ACQ_REL);
    if (old) release(old); /* the bound by count */
    while (GCM_LOAD(&q.bytes) > q.bound) { /* the bound by bytes: oldest first */
        size_t t = GCM_LOAD(&q.tail), hd = GCM_LOAD(&q.head);
        if (t >= hd) break;
        size_t from = hd - t > QSLOTS ? hd - QSLOTS : t; /* slots before that were refilled since */
        if (!__atomic_compare_exchange_n(&q.tail, &t, from + 1, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) continue;
        old = __atomic_exchange_n(&q.slot[from % QSLOTS], NULL, __ATOMIC_ACQ_REL);
        if (old) release(old);
    }
}

void gcm_check_free(mspan *s, void *p, const char *fn) {
    check_live(s, p, true, "double free", fn);
    memset(p, JUNK_BYTE, junk_end(s));
    quarantine(p, s->elemsize);
}

void *gcm_check_realloc(mcache *c, void *p, size_t n, const char *fn) {
    size_t idx;
    mspan *s = gcm_lookup_strict(p, &idx, fn);
    size_t req = check_live(s, p, false, "double free", fn);
    void *np = gcm_alloc(c, n, gcm_spanclass_noscan(s->spanclass));
    if (!np) return NULL; /* errno is ENOMEM; p is untouched */
    memcpy(np, p, req < n ? req : n);
    gcm_check_free(s, p, fn);
    return np;
}

size_t gcm_check_usable(mspan *s, const void *p, const char *fn) {
    return check_live(s, (void *)p, false, "use after free", fn);
}

void gcm_check_flush(void) {
    if (!gcm_check_on) return;
    for (size_t i = 0; i < QSLOTS; i++) {
        void *p = __atomic_exchange_n(&q.slot[i], NULL, __ATOMIC_ACQ_REL);
        if (p) release(p);
    }
    gcm_mheap_flush_pending(); /* released into spans nobody owns: merged now, not left looking allocated */
}
