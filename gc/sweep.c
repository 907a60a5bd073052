/*
 * sweep.c - see sweep.h.
 */
#include "sweep.h"
#include "alloc/malloc.h"
#include "alloc/mheap.h"
#include "alloc/os.h"
#include "alloc/stats.h"

#include <string.h>

/* Unmarked large spans, found with the world stopped, freed after. */
static mspan **large_garbage;
static size_t nlarge, large_cap;

typedef struct prep {
    uint32_t gen;
    size_t bytes;
} prep;

static void remember_large(mspan *s) {
    if (!gcm_os_grow((void **)&large_garbage, &large_cap, nlarge + 1, sizeof *large_garbage, 1024))
        return; /* freed by the next collection instead */
    large_garbage[nlarge++] = s;
}

static void prepare_span(mspan *s, void *arg) {
    prep *pr = arg;
    if (mspan_is_large(s)) {
        if ((s->allocBits[0] & 1) && !(s->gcmarkBits[0] & 1)) {
            remember_large(s);
            pr->bytes += s->elemsize;
        }
        return;
    }
    size_t garbage = 0;
    for (size_t w = 0; w < s->nwords; w++) {
        uint64_t g = mspan_allocated_word(s, w) & ~s->gcmarkBits[w];
        GCM_STORE(&s->gcmarkBits[w], g);
        garbage += gcm_popcount64(g);
    }
    if (garbage) {
        __atomic_store_n(&s->sweep_gen, pr->gen, __ATOMIC_RELEASE);
        pr->bytes += garbage * s->elemsize;
    }
}

size_t gcm_sweep_prepare(uint32_t gen) {
    prep pr = {gen, 0};
    nlarge = 0;
    gcm_mheap_each_span(prepare_span, &pr);
    GCM_STORE(&gcm_heap.gc_sweep_epoch, gcm_heap.gc_sweep_epoch + 1);
    return pr.bytes;
}

/* Unswept garbage held across a cycle that marks without recording garbage:
 * [span, its garbage words...] per span, world stopped throughout. */
static uint64_t *held;
static size_t nheld, held_cap;

static void hold_span(mspan *s, void *arg) {
    bool *ok = arg;
    if (mspan_is_large(s) || !mspan_needs_sweep(s) || !*ok) return;
    if (!gcm_os_grow((void **)&held, &held_cap, nheld + 1 + s->nwords, sizeof *held, 4096)) {
        *ok = false;
        return;
    }
    held[nheld++] = (uintptr_t)s;
    for (size_t w = 0; w < s->nwords; w++) held[nheld++] = s->gcmarkBits[w] & s->allocBits[w];
}

bool gcm_sweep_hold(void) {
    bool ok = true;
    nheld = 0;
    gcm_mheap_each_span(hold_span, &ok);
    return ok;
}

/* Each held span with its garbage words: or them into the marks, or put them back. */
static void each_held(bool restore) {
    for (size_t i = 0; i < nheld;) {
        mspan *s = (mspan *)(uintptr_t)held[i++];
        for (size_t w = 0; w < s->nwords; w++, i++)
            GCM_STORE(&s->gcmarkBits[w], restore ? held[i] : s->gcmarkBits[w] | held[i]);
    }
}

void gcm_sweep_held_marked(void) { each_held(false); }

void gcm_sweep_unhold(void) {
    each_held(true);
    nheld = 0;
}

void gcm_sweep_run(void) {
    for (size_t i = 0; i < nlarge; i++) {
        mspan *s = large_garbage[i];
        uint64_t all = ~(uint64_t)0;
        /* Unreachable, so the program cannot be freeing it; the CAS is the
         * same claim free() makes, so the two could never both succeed. */
        if (!__atomic_compare_exchange_n(&s->allocBits[0], &all, ~(uint64_t)1, false, __ATOMIC_ACQ_REL,
                                         __ATOMIC_RELAXED))
            continue;
        __atomic_fetch_add(&gcm_sweep_freed_objects, 1, __ATOMIC_RELAXED);
        __atomic_fetch_add(&gcm_sweep_freed_bytes, s->elemsize, __ATOMIC_RELAXED);
        gcm_mheap_free_span(s);
    }
    nlarge = 0;
    for (unsigned i = 0; i < GCM_NUM_SPAN_CLASSES; i++) mcentral_sweep(&gcm_heap.central[i]);
    if (gcm_tls_own) gcm_mcache_sweep(gcm_tls_own);
}
