/*
 * gc.c - the collector's public API, and the hooks it needs in the process:
 * every thread's start (pthread_create), the stop signal's handler (sigaction,
 * signal, and the signal masks), and the main thread's registration.
 *
 * pthread_create is wrapped so that every thread is known to the collector
 * from its first instruction, whether or not it ever allocates. sigaction and
 * signal are wrapped so that a program that installs its own handler on the
 * stop signal does not silently disable the collector (its handler gets the
 * signals the collector did not send); pthread_sigmask and sigprocmask never
 * block the stop signal once the collector uses it (a raw rt_sigprocmask
 * still can: the collection then gives up after a second, see gc/stw.h).
 */
#include "shim.h"
#include "alloc/options.h"
#include "alloc/os.h"
#include "alloc/vg.h"
#include "gc/gc.h"
#include "gc/scope.h"
#include "gc/stacks.h"
#include "gc/stw.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

bool gcm_shim_detour;

void gcm_shim_set_detour(bool on) {
    on = on || gcm_vg_on; /* valgrind's client requests need every call detoured */
    /* The stack table is mapped here, never from inside an allocation. */
    if (on && gcm_option(GCM_OPT_LEAKCHECK_STACKS)) gcm_stacks_enable();
    __atomic_store_n(&gcm_shim_detour, on, __ATOMIC_RELAXED);
    if (on && gcm_tls_mcache != &gcm_empty_mcache) gcm_tls_mcache = &gcm_empty_mcache;
}

GCM_STACK_SKIP void gcm_shim_record(void *p, size_t size) {
    mspan *s = gcm_span_of((uintptr_t)p);
    if (!s) return;
    uint32_t stack = GCM_LOAD(&gcm_stacks_on) ? gcm_stack_capture() : 0;
    if (mspan_is_large(s)) { /* a large span records its own size */
        s->stackid = stack;
        return;
    }
    size_t idx = mspan_obj_index(s, (uintptr_t)p);
    uint32_t *r = gcm_mheap_per_object(s, &s->reqsizes);
    if (r) r[idx] = size > UINT32_MAX ? UINT32_MAX : (uint32_t)size;
    /* 0 too when the span has ids: the slot may hold a freed object's. */
    r = stack ? gcm_mheap_per_object(s, &s->stackids) : GCM_LOAD_ACQ(&s->stackids);
    if (r) r[idx] = stack;
}

void gcm_gc_process_init(void) {
    gcm_gc_init();
    if (gcm_gc_mode == GCM_GC_LEAKCHECK) gcm_shim_set_detour(true);
    const void *q;
    size_t qlen;
    if (gcm_check_roots(&q, &qlen)) gcm_gc_add_roots(q, qlen); /* quarantined objects stay allocated */
}

/* The main thread registers itself before main() (and before any thread
 * could be started). When stacks may be wanted, start-up happens here at the
 * latest, so that the unwinder, which dlopen must load outside any
 * allocation, is there before main (gc/stacks.h). Only then: a program whose
 * first allocation comes later starts the heap later (under TSan, where the
 * tests call gcmalloc by other names, a fork before it takes no heap locks). */
__attribute__((constructor)) static void register_main_thread(void) {
    gcm_stw_init_main();
    if (getenv("GCMALLOC_LEAKCHECK_STACKS")) gcm_thread_cache();
    gcm_stacks_load_unwinder(); /* nothing unless start-up turned stacks on */
}

/* ---- the public API ---- */

GCM_EXPORT int gcm_set_gc_mode(int mode) {
    if (!gcm_thread_cache() && !gcm_heap_ready()) return -1; /* makes sure start-up ran */
    if (mode == GCM_GC_COLLECT && gcm_check_on) { /* see alloc/check.c */
        errno = EINVAL;
        return -1;
    }
    int old = gcm_gc_set_mode(mode);
    if (old >= 0) gcm_shim_set_detour(mode == GCM_GC_LEAKCHECK || gcm_check_on);
    gcm_stacks_load_unwinder();
    return old;
}
GCM_EXPORT int gcm_get_gc_mode(void) { return gcm_gc_mode; }
GCM_EXPORT void gcm_collect(void) {
    if (gcm_thread_cache() || gcm_heap_ready()) gcm_gc_collect();
}
GCM_EXPORT int gcm_set_gc_percent(int percent) { return gcm_gc_set_percent(percent); }
GCM_EXPORT void gcm_add_roots(const void *start, size_t len) { gcm_gc_add_roots(start, len); }
GCM_EXPORT void gcm_remove_roots(const void *start) { gcm_gc_remove_roots(start); }
GCM_EXPORT size_t gcm_scope_enter(void) { return gcm_scope_open(); }
GCM_EXPORT void gcm_escape(void *p) { gcm_scope_forget(p); }
GCM_EXPORT void gcm_scope_exit(size_t token) { gcm_scope_close(token); }
GCM_EXPORT size_t gcm_leakcheck(int fd) {
    if (!gcm_thread_cache() && !gcm_heap_ready()) return 0;
    return gcm_gc_leakcheck(fd);
}

/* ---- threads ---- */

static void *thread_start(void *arg) {
    gthread *t = arg;
    void *(*fn)(void *) = t->start_fn;
    void *fnarg = t->start_arg;
    gcm_stw_attach(t);
    return fn(fnarg);
}

typedef int (*pthread_create_fn)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *);

GCM_EXPORT int pthread_create(pthread_t *th, const pthread_attr_t *attr, void *(*fn)(void *), void *arg) {
    static pthread_create_fn real;
    pthread_create_fn create = __atomic_load_n(&real, __ATOMIC_ACQUIRE);
    if (!create) {
        create = (pthread_create_fn)dlsym(RTLD_NEXT, "pthread_create");
        if (!create) {
            gcm_os_write(2, "gcmalloc: cannot find the C library's pthread_create\n", 53);
            return EAGAIN;
        }
        __atomic_store_n(&real, create, __ATOMIC_RELEASE);
    }
    gthread *t = gcm_stw_prepare(fn, arg);
    if (!t) return EAGAIN;
    int r = create(th, attr, thread_start, t);
    gcm_stw_born(t, r == 0 ? (uintptr_t)*th : 0); /* pthread_t is the thread pointer (x86-64 glibc) */
    return r;
}

/* ---- the stop signal ---- */

GCM_EXPORT int sigaction(int sig, const struct sigaction *act, struct sigaction *old) {
    return gcm_stw_sigaction(sig, act, old);
}

GCM_EXPORT __sighandler_t signal(int sig, __sighandler_t handler) {
    /* BSD semantics, as glibc's signal(): restart, block sig in the handler. */
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = handler;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    if (sig > 0 && sig < 65) sigaddset(&sa.sa_mask, sig);
    if (gcm_stw_sigaction(sig, &sa, &old) != 0) return SIG_ERR;
    return old.sa_handler;
}

/* Block what was asked, except the stop signal (and glibc's two internal
 * signals, as glibc does). The kernel's sigset is 8 bytes. */
static int set_mask(int how, const sigset_t *set, sigset_t *old) {
    sigset_t copy;
    const sigset_t *use = set;
    if (set && how != SIG_UNBLOCK) {
        copy = *set;
        unsigned long *w = (unsigned long *)&copy;
        w[0] &= ~((1ul << (32 - 1)) | (1ul << (33 - 1)));
        if (gcm_stw_installed()) w[0] &= ~(1ul << (gcm_stw_signal - 1));
        use = &copy;
    }
    return (int)syscall(SYS_rt_sigprocmask, how, use, old, 8);
}

GCM_EXPORT int pthread_sigmask(int how, const sigset_t *set, sigset_t *old) {
    return set_mask(how, set, old) == 0 ? 0 : errno;
}

GCM_EXPORT int sigprocmask(int how, const sigset_t *set, sigset_t *old) { return set_mask(how, set, old); }
