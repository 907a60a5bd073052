/*
 * stw.c - the thread registry and the stop signal. See stw.h.
 */
#include "stw.h"
#include "mark.h"
#include "alloc/fixalloc.h"
#include "alloc/lock.h"
#include "alloc/options.h"
#include "alloc/os.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define STOP_TIMEOUT_MS 1000
#define SETTLE_TIMEOUT_MS 200

GCM_TLS gthread *gcm_tls_gthread;
int gcm_stw_signal;

static gcm_lock reg_lock = GCM_LOCK_INIT;
static gthread *reg_head;   /* reg_lock */
static fixalloc reg_alloc;  /* reg_lock */
static pthread_key_t exit_key;
static bool key_ready;

/* Births. Inside the C library's pthread_create the parent allocates the
 * new thread's DTV and stores it only in the new thread's TCB, which no root
 * covers until the parent knows the thread pointer (gcm_stw_born). So a
 * collection waits until no birth is under way, and holds new ones back at
 * the gate until the world runs again. A thread collecting from inside its
 * own pthread_create (an allocation there is due a collection) does not
 * collect. */
static uint32_t births;         /* atomic: threads between gcm_stw_prepare and gcm_stw_born */
static uint32_t birth_gate;     /* atomic: 1 while a collection waits for births or runs */
static GCM_TLS bool in_birth;   /* this thread is inside pthread_create */

static uint32_t stw_epoch;  /* odd while a stop is under way */
static uint32_t stw_acks;   /* threads that stopped for the current epoch (a wake-up hint) */
static uint32_t stw_last;   /* the epoch of the last stop; registry lock */
static uint32_t stw_leaves; /* atomic: bumped as each thread leaves its handler */
static uint32_t settling;   /* atomic: a collector waits on stw_leaves */
static bool installed;      /* our handler is on gcm_stw_signal */
static struct sigaction prog_act; /* the program's own handler for it, if any */
struct sigaction *gcm_stw_program_action;

extern void *__libc_stack_end;
extern int __sigaction(int sig, const struct sigaction *act, struct sigaction *old); /* libc's own */

static pid_t gettid_raw(void) { return (pid_t)syscall(SYS_gettid); }
static uintptr_t thread_pointer(void) {
    uintptr_t tp;
    __asm__("mov %%fs:0, %0" : "=r"(tp));
    return tp;
}
static void futex_wait(uint32_t *addr, uint32_t val, long timeout_ns) {
    struct timespec ts = {timeout_ns / 1000000000L, timeout_ns % 1000000000L};
    syscall(SYS_futex, addr, FUTEX_WAIT_PRIVATE, val, timeout_ns ? &ts : NULL, NULL, 0);
}
static void futex_wake(uint32_t *addr, int n) { syscall(SYS_futex, addr, FUTEX_WAKE_PRIVATE, n, NULL, NULL, 0); }
static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void gcm_stw_lock(void) { gcm_lock_acquire(&reg_lock); }
void gcm_stw_unlock(void) { gcm_lock_release(&reg_lock); }

static void list_add(gthread *t) {
    t->prev = NULL;
    t->next = reg_head;
    if (reg_head) reg_head->prev = t;
    reg_head = t;
}
static void list_del(gthread *t) {
    if (t->prev) t->prev->next = t->next;
    else reg_head = t->next;
    if (t->next) t->next->prev = t->prev;
}

static void remember_dtv(uintptr_t tp);

static void scope_arrays_free(gthread *t) {
    if (t->scope_objs) gcm_os_unmap(t->scope_objs, t->scope_objcap * sizeof(uintptr_t));
    if (t->scope_marks) gcm_os_unmap(t->scope_marks, t->scope_markcap * sizeof(size_t));
    t->scope_objs = NULL;
    t->scope_marks = NULL;
    t->scope_nobjs = t->scope_depth = t->scope_objcap = t->scope_markcap = 0;
}

/* Thread exit (a pthread key destructor, after C++ thread_local destructors
 * ran): the thread leaves the set the collector stops. Its record stays, as
 * EXITED, until its tid is gone, so that /proc/self/task still adds up. Its
 * open scopes are dropped: their objects become ordinary ones.
 *
 * Not at the first call: the program's own key destructors run after this
 * one in the same round (their keys are younger) and may allocate and use
 * objects that only their stack holds, so the thread must stay stopped and
 * scanned while they run. The key is set again each time, and the thread
 * leaves at the last round but one of glibc's PTHREAD_DESTRUCTOR_ITERATIONS:
 * the last is left to the libraries that use the same trick to come after
 * every other destructor (the sanitizers' runtimes tear the thread down
 * there; gcmalloc's code after that crashed under TSan). */
static void thread_exit(void *arg) {
    gthread *t = arg;
    if (++t->exit_rounds < PTHREAD_DESTRUCTOR_ITERATIONS - 1 && pthread_setspecific(exit_key, t) == 0) return;
    gcm_lock_acquire(&reg_lock);
    t->state = GT_EXITED;
    scope_arrays_free(t);
    remember_dtv(t->tp);
    gcm_lock_release(&reg_lock);
    gcm_tls_gthread = NULL;
}

/* Threads' DTVs by thread pointer. A thread's DTV (glibc's array of its TLS
 * blocks, from calloc) outlives the thread: glibc caches the thread's stack,
 * with its TCB, for the next thread, and the TCB in that cached stack - memory
 * no root covers - is the DTV's only reference. So the last DTV seen for each
 * thread pointer stays a root. Entries are replaced when a stack is reused;
 * a DTV glibc freed meanwhile is a free slot and marks nothing. reg_lock. */
typedef struct tcb_dtv {
    uintptr_t tp, dtv;
} tcb_dtv;
static tcb_dtv *dtvs;
static size_t ndtvs, dtvs_cap;

static void remember_dtv(uintptr_t tp) {
    uintptr_t dtv = ((const uintptr_t *)tp)[1];
    for (size_t i = 0; i < ndtvs; i++)
        if (dtvs[i].tp == tp) {
            dtvs[i].dtv = dtv;
            return;
        }
    if (!gcm_os_grow((void **)&dtvs, &dtvs_cap, ndtvs + 1, sizeof *dtvs, 256)) return;
    dtvs[ndtvs].tp = tp;
    dtvs[ndtvs].dtv = dtv;
    ndtvs++;
}

void gcm_stw_mark_dead_dtvs(void) {
    for (size_t i = 0; i < ndtvs; i++) gcm_mark_ptr(dtvs[i].dtv);
}

static gthread *record_new(void) {
    if (reg_alloc.size == 0) gcm_fixalloc_init(&reg_alloc, sizeof(gthread));
    return gcm_fixalloc_alloc(&reg_alloc);
}

void gcm_stw_init_main(void) {
    if (gcm_tls_gthread || gettid_raw() != getpid()) return;
    if (!key_ready) key_ready = pthread_key_create(&exit_key, thread_exit) == 0;
    gcm_lock_acquire(&reg_lock);
    gthread *t = record_new();
    if (t) {
        struct rlimit rl;
        size_t max = getrlimit(RLIMIT_STACK, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY ? rl.rlim_cur : (8u << 20);
        t->tid = getpid();
        t->is_main = true;
        /* Above __libc_stack_end: argc, argv, envp, auxv and their strings. */
        t->stack_hi = gcm_align_up((uintptr_t)__libc_stack_end, 4096);
        t->stack_lo = t->stack_hi > max ? t->stack_hi - max : 0;
        t->tp = thread_pointer();
        t->state = GT_RUNNING;
        list_add(t);
    }
    gcm_lock_release(&reg_lock);
    gcm_tls_gthread = t;
}

gthread *gcm_stw_prepare(void *(*fn)(void *), void *arg) {
    for (;;) { /* (a stopped thread waiting here is scanned like any other) */
        while (__atomic_load_n(&birth_gate, __ATOMIC_SEQ_CST)) futex_wait(&birth_gate, 1, 0);
        __atomic_add_fetch(&births, 1, __ATOMIC_SEQ_CST);
        if (!__atomic_load_n(&birth_gate, __ATOMIC_SEQ_CST)) break;
        if (__atomic_sub_fetch(&births, 1, __ATOMIC_SEQ_CST) == 0) futex_wake(&births, INT_MAX);
    }
    in_birth = true;
    if (!key_ready) {
        gcm_lock_acquire(&reg_lock);
        if (!key_ready) key_ready = pthread_key_create(&exit_key, thread_exit) == 0;
        gcm_lock_release(&reg_lock);
    }
    gcm_lock_acquire(&reg_lock);
    gthread *t = record_new();
    if (t) {
        t->state = GT_STARTING;
        t->start_fn = fn;
        t->start_arg = arg;
        list_add(t);
    }
    gcm_lock_release(&reg_lock);
    if (!t) gcm_stw_born(NULL, 0);
    return t;
}

void gcm_stw_born(gthread *t, uintptr_t tp) {
    if (t) {
        gcm_lock_acquire(&reg_lock);
        if (!tp) {
            list_del(t);
            gcm_fixalloc_free(&reg_alloc, t);
        } else if (t->state == GT_STARTING) {
            t->tp = tp;
        }
        gcm_lock_release(&reg_lock);
    }
    in_birth = false;
    if (__atomic_sub_fetch(&births, 1, __ATOMIC_SEQ_CST) == 0) futex_wake(&births, INT_MAX);
}

bool gcm_stw_births_hold(void) {
    if (in_birth) return false;
    __atomic_store_n(&birth_gate, 1, __ATOMIC_SEQ_CST);
    uint64_t deadline = now_ns() + (uint64_t)STOP_TIMEOUT_MS * 1000000u;
    for (;;) {
        uint32_t n = __atomic_load_n(&births, __ATOMIC_SEQ_CST);
        if (n == 0) return true;
        uint64_t now = now_ns();
        if (now >= deadline) break;
        futex_wait(&births, n, 1000000);
    }
    gcm_stw_births_release();
    return false;
}

void gcm_stw_births_release(void) {
    __atomic_store_n(&birth_gate, 0, __ATOMIC_SEQ_CST);
    futex_wake(&birth_gate, INT_MAX);
}

/* The new thread joins the set the collector stops before it allocates:
 * pthread_getattr_np, which finds its stack's bounds, allocates, and a
 * thread that allocates while a collection marks may sweep a span it took
 * from an mcentral just before - with the collection's mark bits standing
 * where the sweep expects the last one's garbage, that freed live objects of
 * other threads (one cause of trees_while_collecting's lost nodes:
 * docs/reliability.md).
 * Until the bounds are known the stack is scanned up to the thread pointer:
 * glibc puts the static TLS and the TCB right above a thread's stack, in
 * the same mapping, so [sp, tp) is the used stack and some TLS. */
void gcm_stw_attach(gthread *t) {
    gcm_lock_acquire(&reg_lock);
    t->tid = gettid_raw();
    t->tp = thread_pointer();
    t->stack_lo = 0;
    t->stack_hi = t->tp;
    gcm_tls_gthread = t;
    t->state = GT_RUNNING;
    remember_dtv(t->tp);
    gcm_lock_release(&reg_lock);
    if (key_ready) pthread_setspecific(exit_key, t);
    uintptr_t lo = 0, hi = 0;
    pthread_attr_t attr;
    if (pthread_getattr_np(pthread_self(), &attr) == 0) {
        void *addr;
        size_t size;
        if (pthread_attr_getstack(&attr, &addr, &size) == 0) {
            lo = (uintptr_t)addr;
            hi = lo + size;
        }
        pthread_attr_destroy(&attr);
    }
    if (hi == 0) return; /* cannot happen with glibc: keep [sp, tp) */
    gcm_lock_acquire(&reg_lock);
    t->stack_lo = lo;
    t->stack_hi = hi;
    gcm_lock_release(&reg_lock);
}

void gcm_stw_after_fork_child(void) {
    gcm_lock_reinit(&reg_lock);
    gthread *me = gcm_tls_gthread;
    for (gthread *t = reg_head, *next; t; t = next) {
        next = t->next;
        if (t == me) continue;
        list_del(t);
        gcm_fixalloc_free(&reg_alloc, t);
    }
    if (me) me->tid = gettid_raw();
    __atomic_store_n(&stw_epoch, 0, __ATOMIC_RELAXED);
    stw_last = 0;
    __atomic_store_n(&births, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&birth_gate, 0, __ATOMIC_RELAXED);
}

/* ---- the stop signal ---- */

static void forward_to_program(int sig, siginfo_t *si, void *uc) {
    struct sigaction *a = &prog_act;
    if (a->sa_flags & SA_SIGINFO) {
        if (a->sa_sigaction) a->sa_sigaction(sig, si, uc);
    } else if (a->sa_handler != SIG_DFL && a->sa_handler != SIG_IGN) {
        a->sa_handler(sig);
    }
}

static void stop_handler(int sig, siginfo_t *si, void *uc) {
    int saved = errno;
    gthread *t = gcm_tls_gthread;
    uint32_t req = t ? __atomic_exchange_n(&t->stop_req, 0, __ATOMIC_ACQUIRE) : 0;
    if (!req) { /* not the collector's: the program's own signal */
        forward_to_program(sig, si, uc);
        errno = saved;
        return;
    }
    uint32_t e = __atomic_load_n(&stw_epoch, __ATOMIC_ACQUIRE);
    if (e == req) { /* (a late signal from an abandoned stop is dropped) */
        volatile uintptr_t here = 0;
        stack_t ss;
        t->alt_lo = t->alt_hi = 0;
        if (sigaltstack(NULL, &ss) == 0 && (ss.ss_flags & SS_ONSTACK)) {
            t->alt_lo = (uintptr_t)ss.ss_sp;
            t->alt_hi = (uintptr_t)ss.ss_sp + ss.ss_size;
        }
        t->sp = (uintptr_t)&here;
        __atomic_store_n(&t->stopped, e, __ATOMIC_RELEASE);
        __atomic_add_fetch(&stw_acks, 1, __ATOMIC_RELEASE);
        futex_wake(&stw_acks, 1);
        while (__atomic_load_n(&stw_epoch, __ATOMIC_ACQUIRE) == e) futex_wait(&stw_epoch, e, 0);
        __atomic_store_n(&t->left, e, __ATOMIC_RELEASE);
        __atomic_add_fetch(&stw_leaves, 1, __ATOMIC_SEQ_CST);
        if (__atomic_load_n(&settling, __ATOMIC_SEQ_CST)) futex_wake(&stw_leaves, 1);
    }
    errno = saved;
}

bool gcm_stw_installed(void) { return __atomic_load_n(&installed, __ATOMIC_ACQUIRE); }

bool gcm_stw_install(void) {
    if (installed) return true;
    gcm_stw_signal = (int)gcm_option(GCM_OPT_GC_SIGNAL);
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = stop_handler;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    /* While stopped, a thread runs no other handler: one could move a
     * pointer the collector has not scanned yet to a place it has. */
    sigfillset(&sa.sa_mask);
    if (__sigaction(gcm_stw_signal, &sa, &old) != 0) return false;
    if ((old.sa_flags & SA_SIGINFO) || (old.sa_handler != SIG_DFL && old.sa_handler != SIG_IGN)) {
        prog_act = old;
        gcm_stw_program_action = &prog_act;
    }
    __atomic_store_n(&installed, true, __ATOMIC_RELEASE);
    return true;
}

int gcm_stw_sigaction(int sig, const struct sigaction *act, struct sigaction *old) {
    if (sig != gcm_stw_signal || !__atomic_load_n(&installed, __ATOMIC_ACQUIRE)) return __sigaction(sig, act, old);
    if (old) {
        if (gcm_stw_program_action) *old = prog_act;
        else {
            memset(old, 0, sizeof *old);
            old->sa_handler = SIG_DFL;
        }
    }
    if (act) {
        static bool warned;
        if (!warned) {
            warned = true;
            char buf[256];
            size_t n = gcm_fmt_str(buf, 0, sizeof buf, "gcmalloc: warning: the program installs a handler for signal ");
            n = gcm_fmt_dec(buf, n, sizeof buf, (uint64_t)sig);
            n = gcm_fmt_str(buf, n, sizeof buf,
                            ", which the collector stops threads with; it gets the signals the collector did "
                            "not send (GCMALLOC_GC_SIGNAL picks another)\n");
            gcm_os_write(2, buf, n);
        }
        prog_act = *act;
        gcm_stw_program_action = &prog_act;
    }
    return 0;
}

/* Threads of the process, from /proc/self/task; -1 if it cannot be read. */
static long count_tasks(void) {
    int fd = open("/proc/self/task", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return -1;
    char buf[4096];
    long n = 0, got;
    while ((got = syscall(SYS_getdents64, fd, buf, sizeof buf)) > 0) {
        for (long off = 0; off < got;) {
            struct {
                uint64_t ino;
                int64_t off;
                unsigned short reclen;
                unsigned char type;
                char name[];
            } *d = (void *)(buf + off);
            if (d->name[0] != '.') n++;
            off += d->reclen;
        }
    }
    close(fd);
    return n;
}

bool gcm_stw_can_stop(void) {
    gthread *me = gcm_tls_gthread;
    if (!me || me->state != GT_RUNNING) return false;
    gcm_lock_acquire(&reg_lock);
    long known = 0;
    for (gthread *t = reg_head, *next; t; t = next) {
        next = t->next;
        if (t->state == GT_EXITED && syscall(SYS_tgkill, getpid(), t->tid, 0) != 0 && errno == ESRCH) {
            list_del(t);
            gcm_fixalloc_free(&reg_alloc, t);
            continue;
        }
        known++;
    }
    /* Counted after the records of gone threads are dropped, with the lock
     * held (no thread is being registered): every task seen now is known or
     * really unknown. Counted before the drop, a thread that was still there
     * and then vanished would look unknown. */
    long tasks = count_tasks();
    gcm_lock_release(&reg_lock);
    if (tasks < 0 || tasks <= known) return true;
    static bool warned;
    if (!warned) {
        warned = true;
        char buf[256];
        size_t n = gcm_fmt_str(buf, 0, sizeof buf, "gcmalloc: warning: gc: ");
        n = gcm_fmt_dec(buf, n, sizeof buf, (uint64_t)(tasks - known));
        n = gcm_fmt_str(buf, n, sizeof buf,
                        " thread(s) were not started through pthread_create after gcmalloc loaded; their stacks "
                        "cannot be scanned, so no collection runs\n");
        gcm_os_write(2, buf, n);
    }
    return false;
}

/* Fairness. A thread restarted by a stop leaves its handler only once the
 * kernel runs it, and on a busy machine that can take longer than the
 * collector needs to start the next collection. The next stop's signal is
 * then already pending when the thread leaves, so it returns from one handler
 * straight into the next without running an instruction of its own, for as
 * long as another thread collects back to back (a test's collector loop
 * starved the main thread for a minute). So a collection first waits for the
 * threads the last stop restarted to leave their handlers; what the collector
 * does after that (the root list, the heap locks) is their time to run. The
 * wait is bounded: a thread the kernel does not run for that long is stopped
 * again where it is. No heap lock is held here: a thread that leaves may go
 * straight into malloc. */
void gcm_stw_settle(void) {
    uint64_t deadline = now_ns() + (uint64_t)SETTLE_TIMEOUT_MS * 1000000u;
    __atomic_store_n(&settling, 1, __ATOMIC_SEQ_CST);
    for (;;) {
        uint32_t v = __atomic_load_n(&stw_leaves, __ATOMIC_SEQ_CST);
        bool waiting = false;
        gcm_lock_acquire(&reg_lock);
        uint32_t e = stw_last;
        for (gthread *t = reg_head; t && e; t = t->next)
            if (t->state == GT_RUNNING && t->asked == e && __atomic_load_n(&t->stopped, __ATOMIC_ACQUIRE) == e &&
                __atomic_load_n(&t->left, __ATOMIC_ACQUIRE) != e) {
                waiting = true;
                break;
            }
        gcm_lock_release(&reg_lock);
        if (!waiting || now_ns() >= deadline) break;
        futex_wait(&stw_leaves, v, 1000000);
    }
    __atomic_store_n(&settling, 0, __ATOMIC_RELAXED);
}

/* A thread signalled for stop e that has not stopped for it, or NULL when
 * all have. stw_acks only says when to look: an ack can be late, from a
 * thread that took the signal of an abandoned stop and counts for the wrong
 * one. Registry lock held. */
static gthread *not_stopped(uint32_t e) {
    gthread *me = gcm_tls_gthread;
    for (gthread *t = reg_head; t; t = t->next)
        if (t != me && t->asked == e && __atomic_load_n(&t->stopped, __ATOMIC_ACQUIRE) != e) return t;
    return NULL;
}

static void restart(uint32_t e) {
    __atomic_store_n(&stw_epoch, e + 1, __ATOMIC_RELEASE);
    futex_wake(&stw_epoch, INT_MAX);
}

/* Abandon stop e: restart the threads that stopped, and say which thread
 * the collection could not stop, and why. */
static bool give_up(uint32_t e, pid_t tid, const char *why) {
    restart(e);
    gcm_os_regions_unlock();
    gcm_lock_release(&reg_lock);
    char buf[256];
    size_t n = gcm_fmt_str(buf, 0, sizeof buf, "gcmalloc: warning: gc: thread ");
    n = gcm_fmt_dec(buf, n, sizeof buf, (uint64_t)tid);
    n = gcm_fmt_str(buf, n, sizeof buf, why);
    n = gcm_fmt_str(buf, n, sizeof buf, "; collection abandoned\n");
    gcm_os_write(2, buf, n);
    return false;
}

bool gcm_stw_stop(void) {
    gthread *me = gcm_tls_gthread;
    gcm_lock_acquire(&reg_lock);
    /* After the registry lock (see the lock order in stw.h): a thread being
     * registered maps memory, which takes the regions lock, with the
     * registry lock held. Before any thread stops, so that none holds it. */
    gcm_os_regions_lock();
    uint32_t e = __atomic_load_n(&stw_epoch, __ATOMIC_RELAXED) + 1; /* odd */
    __atomic_store_n(&stw_acks, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&stw_epoch, e, __ATOMIC_RELEASE);
    stw_last = e;
    uint32_t sent = 0;
    pid_t pid = getpid();
    for (gthread *t = reg_head; t; t = t->next) {
        if (t == me || t->state != GT_RUNNING) continue;
        __atomic_store_n(&t->stop_req, e, __ATOMIC_RELEASE);
        if (syscall(SYS_tgkill, pid, t->tid, gcm_stw_signal) == 0) {
            t->asked = e;
            sent++;
            continue;
        }
        __atomic_store_n(&t->stop_req, 0, __ATOMIC_RELAXED);
        /* Only a thread that is gone has nothing to stop. One whose signal
         * the kernel refused (EAGAIN: the user's queue of pending real-time
         * signals is full, RLIMIT_SIGPENDING) would run on through the
         * collection, and its stack would not be scanned. */
        if (errno != ESRCH) return give_up(e, t->tid, " could not be sent the stop signal (the pending-signal limit?)");
    }
    uint64_t deadline = now_ns() + (uint64_t)STOP_TIMEOUT_MS * 1000000u;
    for (;;) {
        uint32_t got = __atomic_load_n(&stw_acks, __ATOMIC_ACQUIRE);
        if (got >= sent && !not_stopped(e)) return true;
        uint64_t now = now_ns();
        if (now >= deadline) break;
        uint64_t left = deadline - now;
        futex_wait(&stw_acks, got, (long)(left < 1000000u ? left : 1000000u));
    }
    gthread *lt = not_stopped(e);
    char why[96];
    size_t n = gcm_fmt_str(why, 0, sizeof why, " did not stop within 1 s (does it block signal ");
    n = gcm_fmt_dec(why, n, sizeof why, (uint64_t)gcm_stw_signal);
    gcm_fmt_str(why, n, sizeof why, "?)");
    return give_up(e, lt ? lt->tid : 0, why);
}

void gcm_stw_start(void) {
    restart(__atomic_load_n(&stw_epoch, __ATOMIC_RELAXED));
    gcm_os_regions_unlock();
    gcm_lock_release(&reg_lock);
}

void gcm_stw_each(void (*fn)(gthread *t, void *ctx), void *ctx) {
    gthread *me = gcm_tls_gthread;
    uint32_t e = __atomic_load_n(&stw_epoch, __ATOMIC_RELAXED);
    for (gthread *t = reg_head; t; t = t->next) {
        if (t == me) { /* sp: set where it entered the collector (gc/collect.c) */
            t->alt_lo = t->alt_hi = 0;
            fn(t, ctx);
        } else if (t->state == GT_STARTING ||
                   (t->state == GT_RUNNING && __atomic_load_n(&t->stopped, __ATOMIC_ACQUIRE) == e)) {
            fn(t, ctx);
        }
    }
}
