/*
 * collect.c - one collection, start to end, and when to start one.
 *
 *   gc lock -> list the roots' segments -> heap locks -> stop the world ->
 *   mark (roots, then the mark stack) -> record the garbage (or the leaks) ->
 *   restart the world -> heap locks off -> free the garbage we may free.
 *
 * The pause is from the stop request to the restart. Pacing follows Go's
 * GOGC: the next collection starts once the allocations since this one reach
 * GCMALLOC_GC_PERCENT percent of what this one found live (at least
 * GC_MIN_TRIGGER, so that a small heap is not collected all the time).
 */
#include "gc.h"
#include "leak.h"
#include "mark.h"
#include "roots.h"
#include "stw.h"
#include "sweep.h"
#include "alloc/malloc.h"
#include "alloc/mheap.h"
#include "alloc/options.h"
#include "alloc/os.h"
#include "alloc/stats.h"
#include "alloc/vg.h"

#include <errno.h>
#include <time.h>

#define GC_MIN_TRIGGER ((size_t)4 << 20)

int gcm_gc_mode;
static gcm_lock gc_lock = GCM_LOCK_INIT;
static int gc_percent = 100; /* gc_lock */
static uint32_t gc_gen;      /* collections that recorded garbage; gc_lock */

typedef enum { CYCLE_COLLECT, CYCLE_MARK, CYCLE_LEAKS } cycle_kind;

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Pacing after a collection that left `live` bytes. gc_lock held. */
static void set_trigger(size_t live) {
    mheap *h = &gcm_heap;
    size_t t = gc_percent >= 0 ? live / 100 * (size_t)gc_percent : 0;
    if (t < GC_MIN_TRIGGER) t = GC_MIN_TRIGGER;
    bool pacing = gcm_gc_mode == GCM_GC_COLLECT && gc_percent >= 0;
    GCM_STORE(&h->gc_trigger, t);
    GCM_STORE(&h->gc_goal, pacing ? live + t : 0);
    __atomic_store_n(&h->gc_alloc_since, 0, __ATOMIC_RELAXED);
    GCM_STORE(&h->gc_due, false);
    GCM_STORE(&h->gc_pacing, pacing);
}


/* One collection; gc_lock held. False when it could not run. */
static bool cycle(cycle_kind kind) {
    if (!__atomic_load_n(&gcm_heap.ready, __ATOMIC_ACQUIRE)) return false;
    if (gcm_vg_on) return false; /* the collector stays off under valgrind (alloc/vg.h) */
    if (!gcm_stw_install()) return false;
    gcm_stw_settle();
    if (!gcm_stw_births_hold()) return false;
    if (!gcm_stw_can_stop() || !gcm_roots_prepare()) {
        gcm_stw_births_release();
        return false;
    }
    uint64_t t0 = now_ns();
    gcm_mcache_orphan_lock();
    gcm_mheap_lock_all();
    if (!gcm_stw_stop()) {
        gcm_mheap_unlock_all();
        gcm_mcache_orphan_unlock();
        gcm_stw_births_release();
        return false;
    }
    GCM_STORE(&gcm_sweep_barred, true); /* until the garbage is back in gcmarkBits */
    bool held = kind != CYCLE_COLLECT && gcm_sweep_hold();
    bool ok = (kind == CYCLE_COLLECT || held) && gcm_mark_begin();
    if (ok) {
        gcm_roots_mark();
        gcm_mark_drain();
    }
    size_t live = gcm_mark_live_bytes();
    if (ok && kind == CYCLE_COLLECT) gcm_sweep_prepare(++gc_gen);
    if (ok && held) gcm_sweep_held_marked();
    if (ok && kind == CYCLE_LEAKS) gcm_leak_scan();
    if (held) gcm_sweep_unhold();
    GCM_STORE(&gcm_sweep_barred, false);
    gcm_stw_start();
    gcm_mheap_unlock_all();
    gcm_mcache_orphan_unlock();
    gcm_stw_births_release();
    uint64_t pause = now_ns() - t0;
    if (!ok) return false;

    gcm_gc_counters *st = &gcm_gc_stats;
    st->cycles++;
    st->pause_total_ns += pause;
    if (pause > st->pause_max_ns) st->pause_max_ns = pause;
    st->last_live_bytes = live;
    if (kind == CYCLE_COLLECT) gcm_sweep_run();
    set_trigger(live);
    return true;
}

/* Every way into a collection passes here. Its frame is where the collecting
 * thread's own stack is scanned from: the caller's callee-saved registers are
 * spilled into it first, and the collector's own frames below it - whose
 * leftovers include heap addresses that are not references, such as arena
 * bases - are left out. */
static GCM_NOINLINE bool enter(cycle_kind kind) {
    __builtin_unwind_init();
    volatile uintptr_t top = 0;
    gthread *me = gcm_tls_gthread;
    if (me) me->sp = (uintptr_t)&top;
    bool ok = cycle(kind);
    __asm__ volatile("" ::: "memory");
    return ok;
}

void gcm_gc_collect(void) {
    int saved = errno;
    gcm_lock_acquire(&gc_lock);
    enter(gcm_gc_mode == GCM_GC_COLLECT ? CYCLE_COLLECT : CYCLE_MARK);
    gcm_lock_release(&gc_lock);
    errno = saved;
}

void gcm_gc_collect_due(void) {
    if (pthread_mutex_trylock(&gc_lock.m) != 0) return;
    int saved = errno;
    if (GCM_LOAD(&gcm_heap.gc_due) && gcm_gc_mode == GCM_GC_COLLECT && !enter(CYCLE_COLLECT))
        set_trigger(GCM_LOAD(&gcm_heap.gc_trigger)); /* could not run: try again after as much again */
    gcm_lock_release(&gc_lock);
    errno = saved;
}

size_t gcm_gc_leakcheck(int fd) {
    gcm_lock_acquire(&gc_lock);
    size_t n = 0;
    if (enter(CYCLE_LEAKS)) {
        gcm_leak_print(fd);
        n = gcm_leak_scan_count();
    }
    gcm_lock_release(&gc_lock);
    return n;
}

void gcm_gc_init(void) {
    gcm_lock_acquire(&gc_lock);
    gc_percent = (int)gcm_option(GCM_OPT_GC_PERCENT);
    gcm_gc_mode = (int)gcm_option(GCM_OPT_GC);
    if (gcm_vg_on && gcm_gc_mode != GCM_GC_OFF) {
        static const char msg[] =
            "gcmalloc: warning: GCMALLOC_GC is not supported under valgrind: the collector stays off\n";
        gcm_os_write(2, msg, sizeof msg - 1);
        gcm_gc_mode = GCM_GC_OFF;
    }
    set_trigger(0);
    gcm_lock_release(&gc_lock);
}

int gcm_gc_set_mode(int mode) {
    if (mode < GCM_GC_OFF || mode > GCM_GC_LEAKCHECK) {
        errno = EINVAL;
        return -1;
    }
    if (gcm_vg_on && mode != GCM_GC_OFF) { /* alloc/vg.h */
        errno = ENOTSUP;
        return -1;
    }
    gcm_lock_acquire(&gc_lock);
    int old = gcm_gc_mode;
    gcm_gc_mode = mode;
    set_trigger(gcm_gc_stats.last_live_bytes);
    gcm_lock_release(&gc_lock);
    return old;
}

int gcm_gc_set_percent(int percent) {
    gcm_lock_acquire(&gc_lock);
    int old = gc_percent;
    gc_percent = percent;
    set_trigger(gcm_gc_stats.last_live_bytes);
    gcm_lock_release(&gc_lock);
    return old;
}

void gcm_gc_add_roots(const void *p, size_t len) {
    gcm_lock_acquire(&gc_lock);
    bool ok = gcm_roots_add((uintptr_t)p, len);
    gcm_lock_release(&gc_lock);
    if (!ok) gcm_fatal("gcm_add_roots(): out of memory for the root table");
}

void gcm_gc_remove_roots(const void *p) {
    gcm_lock_acquire(&gc_lock);
    gcm_roots_remove((uintptr_t)p);
    gcm_lock_release(&gc_lock);
}

void gcm_gc_fork_prepare(void) { gcm_lock_acquire(&gc_lock); }
void gcm_gc_fork_parent(void) { gcm_lock_release(&gc_lock); }
void gcm_gc_fork_child(void) {
    gcm_lock_reinit(&gc_lock);
    gcm_stw_after_fork_child();
}
