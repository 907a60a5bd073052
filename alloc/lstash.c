/*
 * lstash.c - the per-thread stash of freed large spans.
 *
 * Even from the large-span cache (mheap.c) a large malloc+free pair takes
 * mheap.lock twice and runs the scavenger's bookkeeping twice (its clock
 * read included): ~90 ns for 64 KiB, where tcmalloc serves that size from
 * its thread cache in 5-14. So each mcache keeps spans of large objects of
 * up to LCACHE_MAX_PAGES pages that its thread freed, and its next large
 * malloc of the same length and span class takes one back with no lock
 * (newest first: the pages most recently touched).
 *
 * The stash and the large-span cache trade spans in batches, as tcmalloc's
 * thread caches and central lists trade objects: a malloc the stash cannot
 * serve takes up to LSTASH_BATCH spans of its length from the cache in one
 * trip to mheap.lock, and a free into a full stash gives the older half
 * back in one. A burst of frees and then of mallocs larger than the stash
 * (lifo/65536: 100 blocks of 64 KiB) then enters the mheap once per 4-8
 * blocks instead of once per block.
 *
 * A stashed span stays published (spans[] and page_in_use unchanged): it is
 * a large span whose object is free - alloc bit clear, allocCount 0 - which
 * every reader already treats as such (free() reports a second free as a
 * double free, the collector neither marks nor sweeps it, statistics count
 * no object); spans in the large-span cache are kept the same way. At most
 * LSTASH_MAX_PAGES (512 KiB) per thread are stashed, in at most
 * MCACHE_LSTASH spans, invisible to the scavenger; a thread's exit,
 * malloc_trim and the fork child hand them on (gcm_mcache_flush). Check
 * mode (its callers in malloc.c) and leakcheck's detour (the thread on
 * gcm_empty_mcache) do not stash: they track every large object's state
 * themselves.
 *
 * Fork: the child gives back the stash of every thread that does not exist
 * in it, reading lstash_n and the slots below it. The owner orders its
 * stores so that, whatever prefix of them the child sees, no span is both
 * in a slot below lstash_n and handed out or given to the mheap (a span
 * given twice corrupted the large-span cache: 1 forked child in ~500
 * crashed in lcache_flush): lstash_n drops before a slot below it changes or
 * its span leaves, and rises only after the slots under it are written. A
 * span caught in between leaks in the child.
 */
#include "lstash.h"
#include "mheap.h"

#define LSTASH_BATCH 8

/* The newest stashed span is not of that length and class: the others,
 * newest first, then a batch from the large-span cache, as much as the
 * stash has room for besides the one handed out (peeked at without the
 * lock: when the cache has none, the caller's trip to the mheap is the only
 * one). */
void *gcm_lstash_take_other(mcache *c, size_t npages, unsigned spanclass, size_t size) {
    unsigned n = c->lstash_n;
    for (unsigned k = n - (n > 0); k-- > 0;) /* the newest was looked at */
        if (c->lstash[k]->npages == npages && c->lstash[k]->spanclass == spanclass)
            return gcm_lstash_take_slot(c, k, n, size, npages);
    if (!GCM_LOAD(&gcm_heap.lcache[npages])) return NULL;
    size_t want = MCACHE_LSTASH - n, fit = (LSTASH_MAX_PAGES - c->lstash_pages) / npages;
    if (fit < want) want = fit;
    if (want > LSTASH_BATCH - 1) want = LSTASH_BATCH - 1;
    mspan *got[LSTASH_BATCH];
    size_t m = gcm_mheap_lcache_take(npages, spanclass, got, want + 1);
    if (m == 0) return NULL;
    for (size_t i = 1; i < m; i++) GCM_STORE(&c->lstash[n + i - 1], got[i]);
    gcm_lstash_set_count(c, n + (unsigned)m - 1);
    c->lstash_pages = (uint16_t)(c->lstash_pages + (m - 1) * npages);
    return gcm_lstash_hand_out(got[0], size, npages);
}

/* The h oldest spans leave the stash for the large-span cache, in one trip
 * to mheap.lock; `left`: the pages of the spans that stay. */
static void give_first(mcache *c, unsigned h, size_t left) {
    unsigned n = c->lstash_n;
    mspan *out[MCACHE_LSTASH];
    for (unsigned i = 0; i < h; i++) out[i] = c->lstash[i];
    gcm_lstash_set_count(c, 0);
    for (unsigned j = h; j < n; j++) GCM_STORE(&c->lstash[j - h], c->lstash[j]);
    gcm_lstash_set_count(c, n - h);
    c->lstash_pages = (uint16_t)left;
    gcm_mheap_lcache_give(out, h);
}

void gcm_lstash_give_oldest(mcache *c, size_t need) {
    unsigned n = c->lstash_n, h = (n + 1) / 2;
    size_t left = c->lstash_pages;
    for (unsigned i = 0; i < h; i++) left -= c->lstash[i]->npages;
    while (h < n && left + need > LSTASH_MAX_PAGES) left -= c->lstash[h++]->npages;
    give_first(c, h, left);
}

void gcm_lstash_flush(mcache *c) {
    if (c->lstash_n) give_first(c, c->lstash_n, 0);
}
