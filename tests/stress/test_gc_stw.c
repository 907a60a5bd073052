/*
 * Stopping the world under hostile threads (issue #6, the collector part).
 * Each case runs in a forked child in collect mode, with a deadline (a hang
 * fails the test instead of blocking CI), and checks both "no hang" and "no
 * lost object": witnesses (tests/gcutil.h) reachable only from the hostile
 * thread's stack or __thread variable, or from a global, keep their contents
 * through collections that do reclaim garbage.
 *
 *   - threads blocked in read() on a pipe and in nanosleep, many collections;
 *     read() is not interrupted (SA_RESTART), nanosleep is (EINTR, as for any
 *     handled signal);
 *   - a thread that blocks the stop signal with a raw rt_sigprocmask: the
 *     collection gives up after about a second with exactly one warning line,
 *     frees nothing, restarts the threads it had stopped, and collections
 *     work again once the thread unblocks;
 *   - the program's own handler on the stop signal (sigaction before the
 *     collector installs its own, signal() after): it gets exactly the
 *     signals the program raises (raise, pthread_kill, sigqueue with its
 *     value), also while another thread collects in a loop;
 *   - threads created and exiting while another thread collects in a loop,
 *     including a program key destructor that allocates after gcmalloc's own
 *     thread-exit destructor ran;
 *   - 256 idle threads: the pause with them against the pause without (the
 *     figure in docs/reliability.md);
 *   - large objects (> 32 KiB) allocated, filled and stored by several
 *     threads while another collects continuously.
 *
 * The stop signal is GCMALLOC_GC_SIGNAL's default, 61.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "gcutil.h"

#define STOP_SIG 61
#define WSIZE 64
#define NGARBAGE 2000

/* ------------------------------------------------------------ holder threads */

/* A thread that holds two witnesses, one in a stack slot and one in a
 * __thread variable, while it waits in the way under test. */
enum hold_how { HOLD_READ, HOLD_NANOSLEEP, HOLD_RAW_MASKED, HOLD_IDLE };

struct holder {
    enum hold_how how;
    struct gct_witness ws, wt;
    void *const volatile *sslot, *const volatile *tslot;
    int go[2];            /* one byte: finish (HOLD_RAW_MASKED: unblock, then finish) */
    atomic_int ready;     /* 1: holds its witnesses; 2 (masked): unblocked again */
    atomic_int quit;      /* HOLD_NANOSLEEP: finish */
    atomic_int eintr;     /* HOLD_NANOSLEEP: interrupted sleeps */
    pthread_t th;
};

static __thread void *t_slot;

static void raw_mask(int how) {
    uint64_t set = 1ull << (STOP_SIG - 1);
    if (syscall(SYS_rt_sigprocmask, how, &set, NULL, 8) != 0)
        CHILD_FAIL(97, "rt_sigprocmask: %s", strerror(errno));
}

static void wait_byte(struct holder *h) {
    char ch;
    ssize_t r = read(h->go[0], &ch, 1);
    CHILD_CHECK(r == 1, 41, "read() on a holder's pipe returned %zd (%s): the stop signal interrupted it", r,
                r < 0 ? strerror(errno) : "no error");
}

static void *holder_main(void *arg) {
    struct holder *h = arg;
    void *volatile slot = gct_unhide(h->ws.hidden);
    t_slot = gct_unhide(h->wt.hidden);
    h->sslot = (void *const volatile *)&slot;
    h->tslot = (void *const volatile *)&t_slot;
    if (h->how == HOLD_RAW_MASKED)
        raw_mask(SIG_BLOCK);
    atomic_store(&h->ready, 1);
    switch (h->how) {
    case HOLD_NANOSLEEP:
        while (!atomic_load(&h->quit)) {
            struct timespec ts = {0, 300 * 1000000L};
            if (nanosleep(&ts, NULL) != 0 && errno == EINTR)
                atomic_fetch_add(&h->eintr, 1);
        }
        break;
    case HOLD_RAW_MASKED:
        wait_byte(h);
        raw_mask(SIG_UNBLOCK); /* the give-up's signal is delivered here, and dropped */
        atomic_store(&h->ready, 2);
        wait_byte(h);
        break;
    default:
        wait_byte(h);
    }
    __asm__ volatile("" : : "r"(&slot) : "memory");
    slot = NULL;
    t_slot = NULL;
    return NULL;
}

static void wait_until(atomic_int *v, int want, const char *what) {
    uint64_t t0 = tu_now_ms();
    while (atomic_load(v) < want) {
        CHILD_CHECK(tu_now_ms() - t0 < 10000, 95, "%s: not ready after 10 s", what);
        tu_sleep_ms(1);
    }
}

GCT_NOINLINE static void holder_start(struct holder *h, enum hold_how how, int seed) {
    memset(h, 0, sizeof *h);
    h->how = how;
    if (pipe(h->go))
        CHILD_FAIL(93, "pipe");
    gct_witness_new(&h->ws, WSIZE, (uint64_t)seed, 0, "witness on a holder thread's stack");
    gct_witness_new(&h->wt, WSIZE, (uint64_t)seed + 1, 0, "witness in a holder thread's __thread variable");
    if (pthread_create(&h->th, NULL, holder_main, h))
        CHILD_FAIL(94, "pthread_create");
    wait_until(&h->ready, 1, "holder");
}

static void holder_poke(struct holder *h) {
    if (write(h->go[1], "g", 1) != 1)
        CHILD_FAIL(96, "write");
}

/* Let it finish and join it within 5 s (a thread left stopped fails here). */
static void holder_finish(struct holder *h, const char *what) {
    atomic_store(&h->quit, 1);
    holder_poke(h);
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += 5;
    int r = pthread_timedjoin_np(h->th, NULL, &dl);
    CHILD_CHECK(r == 0, 40, "%s did not finish within 5 s (left stopped?): %s", what, strerror(r));
    close(h->go[0]);
    close(h->go[1]);
}

/* The roots of holders h[0..n) into roots (2 per holder). */
static int holder_roots(struct holder *h, int n, struct gct_root *roots) {
    for (int i = 0; i < n; i++) {
        roots[2 * i] = (struct gct_root){&h[i].ws, h[i].sslot, 0};
        roots[2 * i + 1] = (struct gct_root){&h[i].wt, h[i].tslot, 0};
    }
    return 2 * n;
}

static void *g_root; /* a global root, for the witness of the main thread's part */
static struct gct_witness g_w;

GCT_NOINLINE static void global_witness(int seed) {
    g_root = gct_witness_new(&g_w, WSIZE, (uint64_t)seed, 0, "witness in a global");
}

/* The roots of holders h[0..nh) and of the global witness. */
static int witness_roots(struct holder *h, int nh, struct gct_root *roots) {
    int n = holder_roots(h, nh, roots);
    roots[n++] = (struct gct_root){&g_w, (void *const volatile *)&g_root, 0};
    return n;
}

/* After a collection that gave up (stats a before, b after): it ran no
 * cycle, freed nothing, and every witness is intact. */
static void check_abandoned(const struct gcm_stats *a, const struct gcm_stats *b, struct gct_root *roots, int n,
                            const char *why) {
    CHILD_CHECK(b->gc_cycles == a->gc_cycles && b->gc_freed_objects == a->gc_freed_objects &&
                    b->allocated_bytes == a->allocated_bytes,
                44, "%s, yet the collection changed the heap: cycles %lu -> %lu, freed %zu -> %zu, bytes %zu -> %zu",
                why, (unsigned long)a->gc_cycles, (unsigned long)b->gc_cycles, a->gc_freed_objects,
                b->gc_freed_objects, a->allocated_bytes, b->allocated_bytes);
    for (int i = 0; i < n; i++)
        gct_witness_check(roots[i].w, gct_load(roots[i].slot), 0, "after the abandoned collection");
}

/* Count the lines of text that contain needle. */
static int count_lines(const char *text, const char *needle) {
    int n = 0;
    for (const char *p = text; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

/* ------------------------------------------------------------ blocked threads */

static void blocked_child(void *arg) {
    gct_collect_mode(10);
    static struct holder h[4];
    holder_start(&h[0], HOLD_READ, 11);
    holder_start(&h[1], HOLD_READ, 13);
    holder_start(&h[2], HOLD_NANOSLEEP, 15);
    holder_start(&h[3], HOLD_NANOSLEEP, 17);
    global_witness(19);
    struct gct_root roots[9];
    int n = witness_roots(h, 4, roots);
    gct_churn(roots, n, 100, NGARBAGE, WSIZE);
    for (int i = 0; i < 4; i++)
        holder_finish(&h[i], i < 2 ? "a thread blocked in read()" : "a thread in nanosleep");
    CHILD_CHECK(atomic_load(&h[2].eintr) + atomic_load(&h[3].eintr) > 0, 42,
                "the sleeping threads were never interrupted: were they stopped at all?");
}

Test(gc_stw, threads_blocked_in_read_and_nanosleep, .timeout = 60) {
    gct_run_child(blocked_child, NULL, 50);
}

/* ------------------------------------------------------------ raw sigprocmask */

static void masked_child(void *arg) {
    gct_collect_mode(-1); /* explicit collections only: one give-up, one warning */
    static struct holder m, other;
    holder_start(&m, HOLD_RAW_MASKED, 21);
    holder_start(&other, HOLD_READ, 23);
    global_witness(25);
    struct gct_root roots[5];
    int n = witness_roots(&m, 1, roots);

    gct_garbage(NGARBAGE, WSIZE);
    gct_clobber_stack();
    struct gcm_stats a, b;
    gcm_get_stats(&a);
    uint64_t t0 = tu_now_ms();
    gcm_collect();
    uint64_t took = tu_now_ms() - t0;
    gcm_get_stats(&b);
    CHILD_CHECK(took >= 900 && took < 5000, 43, "the collection that could not stop a thread took %lu ms",
                (unsigned long)took);
    check_abandoned(&a, &b, roots, n, "a thread could not be stopped");
    /* The thread it had stopped runs again. */
    holder_finish(&other, "a thread stopped by the abandoned collection");

    holder_poke(&m); /* unblock */
    wait_until(&m.ready, 2, "the masked thread unblocking");
    t0 = tu_now_ms();
    gct_churn(roots, n, 20, NGARBAGE, WSIZE);
    took = tu_now_ms() - t0;
    CHILD_CHECK(took < 10000, 45, "20 collections after the thread unblocked took %lu ms", (unsigned long)took);
    holder_finish(&m, "the thread that had blocked the stop signal");
}

Test(gc_stw, raw_sigprocmask_gives_up_once, .timeout = 60) {
    const char *err = gct_run_child_err(masked_child, NULL, 50, "masked_child");
    cr_assert_eq(count_lines(err, "did not stop within 1 s"), 1, "want exactly one give-up warning; stderr: %s", err);
    cr_assert_eq(count_lines(err, "gcmalloc:"), 1, "want exactly one line from gcmalloc; stderr: %s", err);
}

/* ------------------------------------------------------------ a stop signal the kernel refuses */

/* With RLIMIT_SIGPENDING at 0 the kernel refuses to queue the real-time stop
 * signal (tgkill fails with EAGAIN): the collection must give up, not run
 * with a thread it neither stopped nor scanned. */
static void sigpending_child(void *arg) {
    gct_collect_mode(-1);
    static struct holder other;
    holder_start(&other, HOLD_READ, 27);
    global_witness(29);
    struct gct_root roots[3];
    int n = witness_roots(&other, 1, roots);
    gct_garbage(NGARBAGE, WSIZE);
    gct_clobber_stack();
    struct rlimit was, none;
    CHILD_CHECK(getrlimit(RLIMIT_SIGPENDING, &was) == 0, 46, "getrlimit: %s", strerror(errno));
    none = was;
    none.rlim_cur = 0;
    CHILD_CHECK(setrlimit(RLIMIT_SIGPENDING, &none) == 0, 46, "setrlimit: %s", strerror(errno));
    struct gcm_stats a, b;
    gcm_get_stats(&a);
    gcm_collect();
    gcm_get_stats(&b);
    CHILD_CHECK(setrlimit(RLIMIT_SIGPENDING, &was) == 0, 46, "setrlimit: %s", strerror(errno));
    check_abandoned(&a, &b, roots, n, "the stop signal could not be sent");
    gct_churn(roots, n, 5, NGARBAGE, WSIZE); /* with the limit back, collections run */
    holder_finish(&other, "a thread the refused signal was meant for");
}

Test(gc_stw, a_refused_stop_signal_abandons_the_collection, .timeout = 60) {
    const char *err = gct_run_child_err(sigpending_child, NULL, 50, "sigpending_child");
    cr_assert_eq(count_lines(err, "could not be sent the stop signal"), 1, "want one give-up warning; stderr: %s",
                 err);
    cr_assert_eq(count_lines(err, "gcmalloc:"), 1, "want exactly one line from gcmalloc; stderr: %s", err);
}

/* ------------------------------------------------------------ the program's handler */

static atomic_int g_handled, g_bad_value;

static void prog_siginfo(int sig, siginfo_t *si, void *uc) {
    if (sig != STOP_SIG || (si->si_code == SI_QUEUE && si->si_value.sival_int != 4242))
        atomic_fetch_add(&g_bad_value, 1);
    atomic_fetch_add(&g_handled, 1);
}

static void prog_plain(int sig) {
    if (sig != STOP_SIG)
        atomic_fetch_add(&g_bad_value, 1);
    atomic_fetch_add(&g_handled, 1);
}

/* Raise n signals the program's way (raise, pthread_kill to a holder,
 * sigqueue to the process) and require that the handler saw exactly n. */
static void raise_and_count(int n, pthread_t target, const char *when) {
    int before = atomic_load(&g_handled);
    for (int i = 0; i < n; i++) {
        int r = 0;
        switch (i % 3) {
        case 0:
            r = raise(STOP_SIG);
            break;
        case 1:
            r = pthread_kill(target, STOP_SIG);
            break;
        default:
            r = sigqueue(getpid(), STOP_SIG, (union sigval){.sival_int = 4242});
        }
        CHILD_CHECK(r == 0, 46, "raising signal %d failed: %s", STOP_SIG, strerror(r ? r : errno));
    }
    uint64_t t0 = tu_now_ms();
    while (atomic_load(&g_handled) - before < n && tu_now_ms() - t0 < 5000)
        tu_sleep_ms(1);
    tu_sleep_ms(20); /* and no extra one */
    int got = atomic_load(&g_handled) - before;
    CHILD_CHECK(got == n, 47, "%s: the program raised %d signals, its handler ran %d times", when, n, got);
    CHILD_CHECK(atomic_load(&g_bad_value) == 0, 48, "%s: the handler got a wrong signal number or value", when);
}

static void handler_checks(struct holder *h) {
    struct gct_root roots[2];
    int n = holder_roots(h, 1, roots);
    raise_and_count(60, h->th, "world running");
    gct_churn(roots, n, 20, NGARBAGE, WSIZE);
    struct gct_collector c;
    gct_collector_start(&c, 0);
    /* The collector thread must be collecting before the signals start, and
     * make at least one more collection while they are raised: on a loaded
     * machine it may not run for a while (raise more batches until it does). */
    uint64_t t0 = tu_now_ms();
    while (atomic_load(&c.collections) == 0 && tu_now_ms() - t0 < 20000)
        tu_sleep_ms(1);
    unsigned long c0 = atomic_load(&c.collections);
    CHILD_CHECK(c0 > 0, 49, "the collector thread made no collection in 20 s");
    for (int batch = 0; batch < 3 || (atomic_load(&c.collections) == c0 && batch < 200); batch++)
        raise_and_count(100, h->th, "while another thread collects in a loop");
    CHILD_CHECK(gct_collector_stop(&c) > c0, 49, "no collection ran while the signals were raised");
    gct_churn(roots, n, 10, NGARBAGE, WSIZE);
    holder_finish(h, "a holder receiving the program's signals");
}

/* sigaction before the collector installs its handler (first collection). */
static void handler_before_child(void *arg) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = prog_siginfo;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    if (sigaction(STOP_SIG, &sa, NULL))
        CHILD_FAIL(97, "sigaction");
    gct_collect_mode(-1);
    static struct holder h;
    holder_start(&h, HOLD_READ, 31);
    handler_checks(&h);
}

/* signal() after the collector installed its handler. */
static void handler_after_child(void *arg) {
    gct_collect_mode(-1);
    gcm_collect(); /* the collector's handler is in place */
    if (signal(STOP_SIG, prog_plain) != SIG_DFL)
        CHILD_FAIL(98, "signal() did not return SIG_DFL as the previous handler");
    struct sigaction old;
    if (sigaction(STOP_SIG, NULL, &old) || old.sa_handler != prog_plain)
        CHILD_FAIL(98, "sigaction(NULL, &old) does not give back the program's handler");
    if (signal(STOP_SIG, prog_plain) != prog_plain)
        CHILD_FAIL(98, "signal() did not return the program's handler");
    static struct holder h;
    holder_start(&h, HOLD_READ, 33);
    handler_checks(&h);
}

Test(gc_stw, program_handler_installed_first, .timeout = 60) {
    const char *err = gct_run_child_err(handler_before_child, NULL, 50, "handler_before_child");
    cr_assert_eq(count_lines(err, "gcmalloc:"), 0, "stderr: %s", err);
}

Test(gc_stw, program_handler_installed_later, .timeout = 60) {
    const char *err = gct_run_child_err(handler_after_child, NULL, 50, "handler_after_child");
    cr_assert_eq(count_lines(err, "installs a handler for signal 61"), 1, "want one warning; stderr: %s", err);
    cr_assert_eq(count_lines(err, "gcmalloc:"), 1, "stderr: %s", err);
}

/* ------------------------------------------------------------ threads coming and going */

#define CHURN_THREADS 400
#define LIST_LEN 40

struct lnode {
    struct lnode *next;
    uint64_t key;
    unsigned char pad[32];
};

static atomic_int g_exits_done;
static pthread_key_t g_late_key;

static struct lnode *list_build(uint64_t seed) {
    struct lnode *head = NULL;
    for (int i = 0; i < LIST_LEN; i++) {
        struct lnode *n = malloc(sizeof *n);
        if (!n)
            CHILD_FAIL(91, "malloc");
        n->next = head;
        n->key = tu_mix(seed + (uint64_t)i);
        pat_fill(n->pad, sizeof n->pad, n->key);
        head = n;
    }
    return head;
}

static void list_check(const struct lnode *n, uint64_t seed, const char *what) {
    for (int i = LIST_LEN - 1; i >= 0; i--, n = n->next) {
        CHILD_CHECK(n && n->key == tu_mix(seed + (uint64_t)i) && pat_check(n->pad, sizeof n->pad, n->key) < 0, 50,
                    "%s: node %d of a list reachable only from an exiting thread was reclaimed and reused", what, i);
    }
}

/* A program's key destructor, run after gcmalloc's own thread-exit
 * destructor (its key is older): it allocates and uses a list while
 * collections go on. */
static void late_destructor(void *arg) {
    uint64_t seed = (uint64_t)(uintptr_t)arg;
    struct lnode *l = list_build(seed);
    for (int i = 0; i < 4; i++) {
        gct_garbage(200, sizeof(struct lnode));
        sched_yield();
    }
    list_check(l, seed, "in a late key destructor");
    atomic_fetch_add(&g_exits_done, 1);
}

static void *coming_going(void *arg) {
    uint64_t seed = (uint64_t)(uintptr_t)arg;
    struct lnode *l = list_build(seed);
    gct_garbage(200, sizeof(struct lnode));
    sched_yield();
    list_check(l, seed, "in a short-lived thread");
    pthread_setspecific(g_late_key, (void *)(uintptr_t)(seed ^ 0x77));
    return NULL;
}

static void exiting_child(void *arg) {
    gct_collect_mode(20);
    if (pthread_key_create(&g_late_key, late_destructor))
        CHILD_FAIL(97, "pthread_key_create");
    static struct holder h;
    holder_start(&h, HOLD_READ, 41);
    global_witness(43);
    struct gct_collector c;
    gct_collector_start(&c, 0);
    pthread_attr_t detached;
    pthread_attr_init(&detached);
    pthread_attr_setdetachstate(&detached, PTHREAD_CREATE_DETACHED);
    for (int i = 0; i < CHURN_THREADS; i += 8) {
        pthread_t t[8];
        for (int k = 0; k < 8; k++)
            if (pthread_create(&t[k], k % 2 ? &detached : NULL, coming_going, (void *)(uintptr_t)(i + k + 1000)))
                CHILD_FAIL(94, "pthread_create");
        for (int k = 0; k < 8; k += 2)
            pthread_join(t[k], NULL);
    }
    wait_until(&g_exits_done, CHURN_THREADS, "the exiting threads");
    unsigned long collections = gct_collector_stop(&c);
    CHILD_CHECK(collections >= 50, 51, "only %lu collections while threads came and went", collections);
    struct gct_root roots[3];
    int n = witness_roots(&h, 1, roots);
    gct_churn(roots, n, 5, NGARBAGE, WSIZE);
    holder_finish(&h, "a holder");
}

Test(gc_stw, threads_exiting_while_collecting, .timeout = 90) {
    gct_run_child(exiting_child, NULL, 80);
}

/* ------------------------------------------------------------ 256 idle threads */

#define IDLE 256
#define PAUSE_ROUNDS 20

/* Average and longest pause of PAUSE_ROUNDS collections, in microseconds. */
static void measure_pauses(double *avg_us, double *max_us) {
    struct gcm_stats a, b;
    gcm_get_stats(&a);
    uint64_t max = 0;
    b = a;
    for (int i = 0; i < PAUSE_ROUNDS; i++) {
        uint64_t before = b.gc_pause_total_ns;
        gcm_collect();
        gcm_get_stats(&b);
        if (b.gc_pause_total_ns - before > max)
            max = b.gc_pause_total_ns - before;
    }
    CHILD_CHECK(b.gc_cycles == a.gc_cycles + PAUSE_ROUNDS, 52, "%lu of %d collections ran",
                (unsigned long)(b.gc_cycles - a.gc_cycles), PAUSE_ROUNDS);
    *avg_us = (double)(b.gc_pause_total_ns - a.gc_pause_total_ns) / PAUSE_ROUNDS / 1000;
    *max_us = (double)max / 1000;
}

static void idle_child(void *arg) {
    gct_collect_mode(-1);
    double avg0, max0, avg1, max1;
    measure_pauses(&avg0, &max0);
    static struct holder h[IDLE];
    for (int i = 0; i < IDLE; i++)
        holder_start(&h[i], HOLD_IDLE, 100 + 2 * i);
    measure_pauses(&avg1, &max1);
    static struct gct_root roots[2 * IDLE];
    int n = holder_roots(h, IDLE, roots);
    gct_churn(roots, n, 5, NGARBAGE, WSIZE);
    for (int i = 0; i < IDLE; i++)
        holder_finish(&h[i], "an idle thread");
    dprintf(2, "gc_stw: pause without other threads: avg %.0f us, max %.0f us; with %d idle threads: avg %.0f us, "
               "max %.0f us (%d collections each)\n",
            avg0, max0, IDLE, avg1, max1, PAUSE_ROUNDS);
}

Test(gc_stw, idle_threads_256, .timeout = 60) {
    const char *err = gct_run_child_err(idle_child, NULL, 50, "idle_child");
    cr_log_info("%s", err);
    fprintf(stderr, "%s", err);
}

/* ------------------------------------------------------------ large objects */

#define LWORK 3
#define LSLOTS 12
#define LRUN_MS 4000

static atomic_int g_large_stop;
static atomic_ulong g_large_made;

struct lslot {
    unsigned char *p;
    size_t size;
    uint64_t salt;
};

static void lslot_check(const struct lslot *s, const char *when) {
    if (!s->p)
        return;
    long bad = pat_check(s->p, s->size, s->salt);
    CHILD_CHECK(bad < 0, 53, "a large object %p (%zu bytes) %s was overwritten at offset %ld: collected while reachable",
                (void *)s->p, s->size, when, bad);
    CHILD_CHECK(gcm_usable_size(s->p) >= s->size, 54, "a large object %s is no longer allocated", when);
}

static void *large_worker(void *arg) {
    uint64_t rng = 0x9876 + (uint64_t)(uintptr_t)arg * 31;
    struct lslot slots[LSLOTS];
    memset(slots, 0, sizeof slots);
    unsigned long iter = 0;
    while (!atomic_load_explicit(&g_large_stop, memory_order_relaxed)) {
        int i = (int)(tu_rand(&rng) % LSLOTS);
        if (iter % 3 == 0)
            free(slots[i].p); /* else: dropped, the collector's to reclaim */
        size_t size = (32 << 10) + 1 + (size_t)(tu_rand(&rng) % (480 << 10));
        /* Between the allocation and the store below the pointer is only in
         * a register or this frame, while collections go on: the fill takes
         * long enough for one to come. */
        unsigned char *p = malloc(size);
        if (!p)
            CHILD_FAIL(91, "malloc(%zu)", size);
        uint64_t salt = tu_rand(&rng);
        pat_fill(p, size, salt);
        slots[i] = (struct lslot){p, size, salt};
        lslot_check(&slots[i], "just allocated");
        if (iter % 8 == 0)
            for (int k = 0; k < LSLOTS; k++)
                lslot_check(&slots[k], "held in a worker's array");
        atomic_fetch_add_explicit(&g_large_made, 1, memory_order_relaxed);
        iter++;
    }
    for (int k = 0; k < LSLOTS; k++)
        lslot_check(&slots[k], "at the end");
    return NULL;
}

static void large_child(void *arg) {
    gct_collect_mode(50);
    pthread_t w[LWORK];
    for (int i = 0; i < LWORK; i++)
        if (pthread_create(&w[i], NULL, large_worker, (void *)(uintptr_t)i))
            CHILD_FAIL(94, "pthread_create");
    struct gct_collector c;
    gct_collector_start(&c, 2);
    tu_sleep_ms(LRUN_MS);
    atomic_store(&g_large_stop, 1);
    for (int i = 0; i < LWORK; i++)
        pthread_join(w[i], NULL);
    gct_collector_stop(&c);
    struct gcm_stats st;
    gcm_get_stats(&st);
    CHILD_CHECK(st.gc_cycles >= 50, 55, "only %lu collections", (unsigned long)st.gc_cycles);
    CHILD_CHECK(st.gc_freed_bytes >= (size_t)100 << 20, 56,
                "only %zu bytes reclaimed (%lu large objects made)", st.gc_freed_bytes, atomic_load(&g_large_made));
}

Test(gc_stw, large_objects_while_collecting, .timeout = 60) {
    gct_run_child(large_child, NULL, 50);
}
