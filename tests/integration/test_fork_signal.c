/*
 * fork() from a signal handler in a single-threaded program (the child
 * mallocs and exits 0), and posix_spawn / vfork + exec of /bin/true.
 *
 * Each scenario runs in a fresh single-threaded process, watched by the
 * test with a timeout: a deadlock fails the test instead of hanging it.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <gcmalloc.h>
#include "testutil.h"

/* Each scenario runs in a fresh process - this test executable re-executed
 * with GCM_FORK_SIGNAL_SCENARIO set, caught by a constructor before
 * Criterion starts (Criterion's worker has a second thread, so a forked copy
 * of it would not be a single-threaded program to glibc). The test requires
 * it to exit 0 within the timeout. */
static void run_scenario(const char *name, unsigned timeout_s, const char *what) {
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    cr_assert_gt(n, 0);
    self[n] = 0;
    char env[128];
    snprintf(env, sizeof env, "GCM_FORK_SIGNAL_SCENARIO=%s", name);
    const char *extra[] = {env, NULL};
    const char *argv[] = {self, NULL};
    struct run_result r;
    int rc = run_cmd(argv, NULL, extra, NULL, timeout_s, &r);
    cr_assert_eq(rc, 0, "%s: hung (killed after %u s)", what, timeout_s);
    char s[64];
    cr_assert(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0, "%s: ended with %s; stderr: %.2000s", what,
              status_str(r.status, s, sizeof s), r.err);
    run_result_free(&r);
}

/* What a forked child does: malloc a little of several sizes and exit. */
static int grandchild_work(void) {
    for (int i = 0; i < 500; i++) {
        size_t n = (size_t)(i % 10) * 1000 + 1;
        char *p = malloc(n);
        if (!p)
            return 3;
        memset(p, i, n);
        free(p);
    }
    void *big = malloc(3 << 20);
    if (!big)
        return 4;
    memset(big, 1, 3 << 20);
    free(big);
    return 0;
}

static volatile sig_atomic_t handler_forks, handler_fail;
static pid_t handler_pids[1024];

static void fork_handler(int sig) {
    int saved = errno;
    pid_t pid = fork();
    if (pid == 0) {
        signal(SIGALRM, SIG_DFL);
        alarm(20);
        _exit(grandchild_work());
    }
    if (pid < 0)
        handler_fail = 1;
    else if (handler_forks < 1024)
        handler_pids[handler_forks++] = pid;
    errno = saved;
}

static int reap_all(void) {
    for (int i = 0; i < handler_forks; i++) {
        int st;
        if (wait_timeout(handler_pids[i], 30000, &st) != 0)
            return 20;
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
            return 21;
    }
    return handler_fail ? 22 : 0;
}

/* The signal is raised synchronously, between allocations. */
static int scenario_raise(void) {
    struct sigaction sa = {0};
    sa.sa_handler = fork_handler;
    sigaction(SIGUSR1, &sa, NULL);
    void *keep[100];
    for (int i = 0; i < 100; i++) {
        keep[i] = malloc((size_t)i * 100 + 1);
        if (!keep[i])
            return 2;
        raise(SIGUSR1);
    }
    for (int i = 0; i < 100; i++)
        free(keep[i]);
    if (handler_forks != 100)
        return 23;
    return reap_all();
}

Test(fork_signal, fork_in_signal_handler_raised_between_mallocs, .timeout = 120) {
    run_scenario("raise", 90, "fork from a SIGUSR1 handler");
}

/* The signal arrives asynchronously (a profiling interval timer) while the only
 * thread is inside malloc/free most of the time; the handler forks and
 * waits for the child, 200 times. As in glibc's tst-mallocfork2, the child
 * of a fork that interrupted malloc only _exits (the heap may be in the
 * middle of an update there, exactly as in the interrupted parent); what is
 * tested is that fork neither deadlocks nor corrupts the parent's heap,
 * whose blocks are checked throughout. */
static volatile sig_atomic_t async_forks, async_fail;

static void async_fork_handler(int sig) {
    int saved = errno;
    pid_t pid = fork();
    if (pid == 0)
        _exit(0);
    if (pid < 0) {
        async_fail = 1;
    } else {
        int st;
        while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
        }
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
            async_fail = 2;
        async_forks++;
    }
    errno = saved;
}

static int scenario_timer(void) {
    struct sigaction sa = {0};
    sa.sa_handler = async_fork_handler;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGPROF, &sa, NULL);
    /* A profiling timer: it counts this process's own CPU time, so the
     * loop makes progress between signals however slow fork is. */
    struct itimerval it = {{0, 1000}, {0, 1000}};
    setitimer(ITIMER_PROF, &it, NULL);
    enum { K = 1009 };
    static void *v[K];
    static size_t sz[K];
    uint64_t rng = 5;
    unsigned long ops = 0;
    while ((async_forks < 200 || ops < 5000) && !async_fail) {
        uint64_t r = tu_rand(&rng);
        unsigned k = (unsigned)(r % K);
        if (v[k]) {
            if (pat_check(v[k], sz[k] < 256 ? sz[k] : 256, k) >= 0)
                return 30; /* the parent's heap was corrupted */
            free(v[k]);
        }
        size_t n = (r >> 20) % 100 == 0 ? (size_t)(r >> 32) % (1 << 20) + 1 : (size_t)(r >> 32) % 70000;
        v[k] = malloc(n);
        if (!v[k])
            return 2;
        sz[k] = n;
        pat_fill(v[k], n < 256 ? n : 256, k);
        ops++;
    }
    struct itimerval off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_PROF, &off, NULL);
    signal(SIGPROF, SIG_DFL);
    if (async_fail)
        return 20 + async_fail;
    for (int k = 0; k < K; k++) {
        if (v[k] && pat_check(v[k], sz[k] < 256 ? sz[k] : 256, k) >= 0)
            return 31;
        free(v[k]);
    }
    /* The heap still works, and so does a plain fork whose child mallocs. */
    pid_t pid = fork();
    if (pid == 0)
        _exit(grandchild_work());
    int st;
    if (pid < 0 || wait_timeout(pid, 30000, &st) != 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
        return 32;
    return 0;
}

Test(fork_signal, fork_in_signal_handler_interrupting_malloc, .timeout = 150) {
    run_scenario("timer", 120, "fork from a timer signal handler during malloc/free");
}

__attribute__((constructor)) static void scenario_entry(void) {
    const char *s = getenv("GCM_FORK_SIGNAL_SCENARIO");
    if (!s)
        return;
    if (strcmp(s, "raise") == 0)
        _exit(scenario_raise());
    if (strcmp(s, "timer") == 0)
        _exit(scenario_timer());
    _exit(99);
}

/* ---- posix_spawn and vfork */

extern char **environ;

static int spawn_true(int use_vfork) {
    char *argv[] = {"/bin/true", NULL};
    if (use_vfork) {
        pid_t pid = vfork();
        if (pid == 0) {
            execve("/bin/true", argv, environ);
            _exit(127);
        }
        if (pid < 0)
            return -1;
        int st;
        if (wait_timeout(pid, 30000, &st) != 0)
            return -2;
        return st;
    }
    pid_t pid;
    int r = posix_spawn(&pid, "/bin/true", NULL, NULL, argv, environ);
    if (r)
        return -1;
    int st;
    if (wait_timeout(pid, 30000, &st) != 0)
        return -2;
    return st;
}

Test(spawn, posix_spawn_true) {
    for (int i = 0; i < 50; i++) {
        void *p = malloc(1000);
        int st = spawn_true(0);
        cr_assert_eq(st, 0, "posix_spawn(/bin/true) #%d: status %d", i, st);
        free(p);
    }
}

Test(spawn, vfork_exec_true) {
    for (int i = 0; i < 50; i++) {
        void *p = malloc(1000);
        int st = spawn_true(1);
        cr_assert_eq(st, 0, "vfork+exec(/bin/true) #%d: status %d", i, st);
        free(p);
    }
}

static atomic_int spawn_stop;
static void *spawn_busy(void *arg) {
    uint64_t rng = (uintptr_t)arg + 1;
    while (!atomic_load(&spawn_stop)) {
        void *p = malloc((size_t)(tu_rand(&rng) % 50000) + 1);
        if (!p)
            abort();
        free(p);
    }
    return NULL;
}

Test(spawn, spawn_and_vfork_while_threads_allocate, .timeout = 120) {
    pthread_t t[3];
    for (int i = 0; i < 3; i++)
        cr_assert_eq(pthread_create(&t[i], NULL, spawn_busy, (void *)(uintptr_t)i), 0);
    for (int i = 0; i < 60; i++) {
        int st = spawn_true(i & 1);
        cr_assert_eq(st, 0, "%s #%d: status %d", i & 1 ? "vfork" : "posix_spawn", i, st);
    }
    atomic_store(&spawn_stop, 1);
    for (int i = 0; i < 3; i++)
        pthread_join(t[i], NULL);
}
