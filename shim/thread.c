/*
 * thread.c - process start-up and the life of a thread's mcache.
 *
 * Start-up happens inside the first malloc of the process, which may come
 * from ld.so, from libc before its constructors, or from any thread. It is
 * split in two so that it never recurses into itself:
 *  1. the heap (mheap, page allocator), the options and check mode: pure
 *     system calls and string functions, no malloc;
 *  2. everything that calls into libc and may itself allocate (the thread-exit
 *     key, fork handlers, the collector): done after the calling thread already
 *     has its mcache, so an allocation from inside libc takes the normal path.
 * Other threads that arrive meanwhile wait for step 1 and 2 to finish.
 *
 * Thread exit: a pthread key destructor gives the thread's spans back to their
 * mcentrals. Key destructors of other libraries, and glibc's own teardown,
 * may still call malloc and free after that: such a thread stays on the empty
 * mcache (frees take the remote path) and allocates from the orphan mcache,
 * so nothing is re-created that would leak.
 */
#include "shim.h"
#include "alloc/options.h"
#include "alloc/os.h"
#include "alloc/stats.h"
#include "alloc/vg.h"
#include "gc/gc.h"

#include <pthread.h>
#include <sched.h>

enum { INIT_NONE, INIT_HEAP_RUNNING, INIT_HEAP_DONE, INIT_PROCESS_RUNNING, INIT_DONE };
static int init_state;
static pthread_key_t exit_key;

static void wait_for(int state) {
    while (__atomic_load_n(&init_state, __ATOMIC_ACQUIRE) < state) sched_yield();
}

static void thread_exit(void *arg) {
    mcache *c = arg;
    gcm_tls_mcache = &gcm_empty_mcache;
    gcm_tls_own = NULL;
    gcm_tls_state = GCM_THREAD_EXITED;
    gcm_mcache_destroy(c);
}

/* Step 1. False when the OS refuses the heap's address space. */
static bool heap_init(void) {
    int s = __atomic_load_n(&init_state, __ATOMIC_ACQUIRE);
    if (s >= INIT_HEAP_DONE) return true;
    int expect = INIT_NONE;
    if (__atomic_compare_exchange_n(&init_state, &expect, INIT_HEAP_RUNNING, false, __ATOMIC_ACQ_REL,
                                    __ATOMIC_ACQUIRE)) {
        if (gcm_vg_start()) gcm_shim_set_detour(true); /* before the first span and mcache (alloc/vg.h) */
        bool ok = gcm_mheap_init();
        if (ok) {
            /* Check mode must be on before the first mcache exists: every
             * object it sees must have been allocated with a canary. */
            gcm_options_init();
            gcm_check_init();
            if (gcm_check_on) gcm_shim_set_detour(true);
        }
        __atomic_store_n(&init_state, ok ? INIT_HEAP_DONE : INIT_NONE, __ATOMIC_RELEASE);
        return ok;
    }
    wait_for(INIT_HEAP_DONE);
    return true;
}

/* Step 2; the caller has its mcache. */
static void process_init(void) {
    int expect = INIT_HEAP_DONE;
    if (!__atomic_compare_exchange_n(&init_state, &expect, INIT_PROCESS_RUNNING, false, __ATOMIC_ACQ_REL,
                                     __ATOMIC_ACQUIRE)) {
        wait_for(INIT_DONE);
        return;
    }
    pthread_key_create(&exit_key, thread_exit);
    gcm_fork_init();
    gcm_gc_process_init();
    __atomic_store_n(&init_state, INIT_DONE, __ATOMIC_RELEASE);
}

mcache *gcm_thread_attach(void) {
    if (gcm_tls_state == GCM_THREAD_EXITED) return NULL;
    if (gcm_tls_state == GCM_THREAD_ATTACHED) { /* detoured (leakcheck), or back from it */
        if (!gcm_shim_detour) gcm_tls_mcache = gcm_tls_own;
        return gcm_tls_own;
    }
    if (!heap_init()) return NULL;
    mcache *c = gcm_mcache_create();
    if (!c) return NULL;
    gcm_tls_own = c;
    gcm_tls_mcache = gcm_shim_detour ? &gcm_empty_mcache : c;
    gcm_tls_state = GCM_THREAD_ATTACHED;
    process_init();
    pthread_setspecific(exit_key, c);
    return c;
}

/* GCMALLOC_STATS=1 / json: the report on stderr at exit; before it, check
 * mode's last verification. */
__attribute__((destructor)) static void report_at_exit(void) {
    if (__atomic_load_n(&init_state, __ATOMIC_ACQUIRE) != INIT_DONE) return;
    gcm_check_flush(); /* what waits in the quarantine is verified too */
    if (gcm_gc_mode == GCM_GC_LEAKCHECK) gcm_gc_leakcheck(gcm_options_report_fd());
    long mode = gcm_option(GCM_OPT_STATS);
    if (mode == GCM_STATS_JSON)
        gcm_stats_print_json(gcm_options_report_fd());
    else if (mode == GCM_STATS_TEXT)
        gcm_stats_print(gcm_options_report_fd());
}
