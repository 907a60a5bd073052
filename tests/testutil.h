/*
 * testutil.h - helpers shared by the api, stress and integration tests.
 *
 * Everything is static so that each test executable (one .c file) includes
 * its own copy. Nothing here uses system(): commands are run with
 * fork + execvpe + pipes, so their stdout, stderr and exit status can be
 * compared exactly.
 *
 *   run_cmd()        run a command (optionally under LD_PRELOAD, with extra
 *                    environment and a file on stdin), capture stdout, stderr
 *                    and the wait status, with a timeout.
 *   spawn_bg()       start a long-running command (a server) in the
 *                    background, its output going to a log file.
 *   run_in_child()   fork; run a function in the child with stderr sent to a
 *                    pipe; report how the child ended and what it wrote.
 *   CHILD_CHECK()    in a forked child: one line on stderr and _exit(code)
 *   fork_many()      fork children in a row, each checked for exit 0 and hangs
 *   wait_timeout()   waitpid with a deadline (a deadlock fails the test
 *                    instead of hanging it).
 *   pat_fill() / pat_check()  fill a block with a pattern derived from its
 *                    address and size, and verify it.
 *   ptr_hex()        "0x%lx" of a pointer, as gcmalloc prints it.
 */
#ifndef GCM_TESTUTIL_H
#define GCM_TESTUTIL_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define TU_FN static __attribute__((unused))

static inline uint64_t tu_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Sleep until a deadline, not for a remainder: an interrupted relative
 * nanosleep reports a remainder that includes the timer slack (50 us), so a
 * thread the collector stops more often than that would never finish a
 * sleep resumed from its remainder. */
static inline void tu_sleep_ms(unsigned ms) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
    }
}

/* ---------------------------------------------------------------- child side */

/* Fail the child: one line on stderr, then _exit(code). No stdio, no malloc. */
#define CHILD_FAIL(code, ...)                                                                                 \
    do {                                                                                                      \
        dprintf(2, __VA_ARGS__);                                                                              \
        dprintf(2, "\n");                                                                                     \
        _exit(code);                                                                                          \
    } while (0)

#define CHILD_CHECK(cond, code, ...)                                                                          \
    do {                                                                                                      \
        if (!(cond))                                                                                          \
            CHILD_FAIL(code, __VA_ARGS__);                                                                    \
    } while (0)

/* ------------------------------------------------- errors seen by threads */

/* Worker threads count the problems they find and keep the first one's
 * description; the test asserts tu_errors == 0 at the end. */
static atomic_ulong tu_errors;
static atomic_int tu_have_first;
static char tu_first_error[512];

static void tu_error(const char *fmt, ...) __attribute__((format(printf, 1, 2), unused));
static void tu_error(const char *fmt, ...) {
    atomic_fetch_add(&tu_errors, 1);
    int expected = 0;
    if (atomic_compare_exchange_strong(&tu_have_first, &expected, 1)) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(tu_first_error, sizeof tu_first_error, fmt, ap);
        va_end(ap);
    }
}

/* ---------------------------------------------------------------- waiting */

/* waitpid(pid) for at most timeout_ms. Returns 0 and fills *status when the
 * child ended; returns -1 on timeout, after killing the child (SIGKILL, to
 * its process group too when it leads one) and reaping it. */
TU_FN int wait_timeout(pid_t pid, unsigned timeout_ms, int *status) {
    uint64_t deadline = tu_now_ms() + timeout_ms;
    /* A pidfd becomes readable when the child ends: no polling delay. */
    int pfd = (int)syscall(SYS_pidfd_open, pid, 0);
    unsigned nap = 1;
    for (;;) {
        pid_t r = waitpid(pid, status, WNOHANG);
        if (r == pid) {
            if (pfd >= 0)
                close(pfd);
            return 0;
        }
        if (r == -1 && errno != EINTR) {
            if (pfd >= 0)
                close(pfd);
            *status = -1;
            return 0;
        }
        uint64_t now = tu_now_ms();
        if (now >= deadline) {
            if (pfd >= 0)
                close(pfd);
            kill(-pid, SIGKILL);
            kill(pid, SIGKILL);
            while (waitpid(pid, status, 0) == -1 && errno == EINTR) {
            }
            return -1;
        }
        if (pfd >= 0) {
            struct pollfd pf = {.fd = pfd, .events = POLLIN};
            uint64_t left = deadline - now;
            poll(&pf, 1, left > 1000 ? 1000 : (int)left);
        } else {
            tu_sleep_ms(nap);
            if (nap < 20)
                nap *= 2;
        }
    }
}

/* A short description of a wait status, for assertion messages. */
TU_FN const char *status_str(int st, char *buf, size_t n) {
    if (st == -1)
        snprintf(buf, n, "(no status)");
    else if (WIFEXITED(st))
        snprintf(buf, n, "exit %d", WEXITSTATUS(st));
    else if (WIFSIGNALED(st))
        snprintf(buf, n, "signal %d (%s)", WTERMSIG(st), strsignal(WTERMSIG(st)));
    else
        snprintf(buf, n, "status 0x%x", st);
    return buf;
}

/* n times: fork, run child() in the child (which must exit by itself within
 * alarm_s seconds: a deadlocked child is killed by its alarm or, at the
 * latest, by the parent's deadline of wait_ms), and check that it exited 0.
 * Counts failed and hung children; the first problem is described in first.
 * stop_on_hang: give up after the first hung child. */
typedef struct fork_tally {
    int failures, hangs;
    char first[160];
} fork_tally;

TU_FN fork_tally fork_many(int n, int (*child)(void), unsigned alarm_s, unsigned wait_ms, bool stop_on_hang) {
    fork_tally t = {0, 0, ""};
    for (int i = 0; i < n; i++) {
        pid_t pid = fork();
        cr_assert_geq(pid, 0, "fork failed");
        if (pid == 0) {
            alarm(alarm_s);
            _exit(child());
        }
        int st;
        if (wait_timeout(pid, wait_ms, &st) != 0) {
            t.hangs++;
            if (!t.first[0])
                snprintf(t.first, sizeof t.first, "fork %d: the child hung (killed after %u s)", i, wait_ms / 1000);
            if (stop_on_hang)
                break;
        } else if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            char s[64];
            t.failures++;
            if (!t.first[0])
                snprintf(t.first, sizeof t.first, "fork %d: the child ended with %s", i, status_str(st, s, sizeof s));
        }
    }
    return t;
}

/* ------------------------------------------------------------ buffers */

struct tu_buf {
    char *data;
    size_t len, cap;
};

TU_FN void tu_buf_add(struct tu_buf *b, const char *p, size_t n) {
    if (b->len + n + 1 > b->cap) {
        size_t c = b->cap ? b->cap : 4096;
        while (c < b->len + n + 1)
            c *= 2;
        char *d = realloc(b->data, c);
        if (!d)
            abort();
        b->data = d;
        b->cap = c;
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = 0;
}

/* Read fds[0..nfds) until all reach EOF or the deadline passes. Returns 0 on
 * EOF of all, -1 on timeout. */
TU_FN int tu_drain(int *fds, struct tu_buf **bufs, int nfds, uint64_t deadline) {
    int open_n = nfds;
    char chunk[65536];
    while (open_n > 0) {
        struct pollfd pf[4];
        int idx[4], k = 0;
        for (int i = 0; i < nfds; i++)
            if (fds[i] >= 0) {
                pf[k].fd = fds[i];
                pf[k].events = POLLIN;
                pf[k].revents = 0;
                idx[k++] = i;
            }
        uint64_t now = tu_now_ms();
        if (now >= deadline)
            return -1;
        int r = poll(pf, (nfds_t)k, (int)(deadline - now));
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (r == 0)
            return -1;
        for (int j = 0; j < k; j++) {
            if (!pf[j].revents)
                continue;
            int i = idx[j];
            ssize_t n = read(fds[i], chunk, sizeof chunk);
            if (n > 0) {
                tu_buf_add(bufs[i], chunk, (size_t)n);
            } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
                close(fds[i]);
                fds[i] = -1;
                open_n--;
            }
        }
    }
    return 0;
}

/* ------------------------------------------------------------ environment */

/* A copy of environ without LD_PRELOAD, plus LD_PRELOAD=preload (if not
 * NULL) and the NAME=VALUE strings of extra (NULL-terminated, may be NULL).
 * The strings themselves are not copied; free only the array. */
TU_FN char **tu_make_env(const char *preload, const char *const *extra) {
    size_t n = 0, m = 0;
    while (environ[n])
        n++;
    if (extra)
        while (extra[m])
            m++;
    char **env = calloc(n + m + 2, sizeof *env);
    if (!env)
        abort();
    size_t k = 0;
    static char pre[4096];
    for (size_t i = 0; i < n; i++) {
        if (strncmp(environ[i], "LD_PRELOAD=", 11) == 0)
            continue;
        int dup = 0;
        for (size_t j = 0; j < m; j++) {
            const char *eq = strchr(extra[j], '=');
            size_t len = eq ? (size_t)(eq - extra[j]) + 1 : strlen(extra[j]);
            if (strncmp(environ[i], extra[j], len) == 0)
                dup = 1;
        }
        if (!dup)
            env[k++] = environ[i];
    }
    for (size_t j = 0; j < m; j++)
        env[k++] = (char *)extra[j];
    if (preload) {
        snprintf(pre, sizeof pre, "LD_PRELOAD=%s", preload);
        env[k++] = pre;
    }
    env[k] = NULL;
    return env;
}

/* ------------------------------------------------------------ commands */

struct run_result {
    int status;     /* wait status (-1 if none) */
    int timed_out;  /* 1 if killed after the timeout */
    int exec_failed;/* 1 if the program could not be started (exit 127) */
    char *out;      /* stdout, NUL-terminated (never NULL after run_cmd) */
    size_t out_len;
    char *err;      /* stderr, NUL-terminated */
    size_t err_len;
};

TU_FN void run_result_free(struct run_result *r) {
    free(r->out);
    free(r->err);
    r->out = r->err = NULL;
}

/* Run argv[0] (searched in PATH) with argv, the current environment minus
 * LD_PRELOAD plus LD_PRELOAD=preload (unless NULL) and extra_env; stdin from
 * stdin_path (or /dev/null). The child leads its own process group, which
 * is killed as a whole on timeout. Returns 0 when the command ran to its end
 * (any exit status), -1 on timeout or failure to fork. */
TU_FN int run_cmd(const char *const argv[], const char *preload, const char *const *extra_env,
                   const char *stdin_path, unsigned timeout_sec, struct run_result *r) {
    memset(r, 0, sizeof *r);
    r->status = -1;
    int po[2], pe[2];
    if (pipe2(po, O_CLOEXEC) || pipe2(pe, O_CLOEXEC))
        return -1;
    char **env = tu_make_env(preload, extra_env);
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        free(env);
        return -1;
    }
    if (pid == 0) {
        setpgid(0, 0);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int in = open(stdin_path ? stdin_path : "/dev/null", O_RDONLY);
        if (in < 0)
            _exit(126);
        dup2(in, 0);
        dup2(po[1], 1);
        dup2(pe[1], 2);
        execvpe(argv[0], (char *const *)argv, env);
        _exit(127);
    }
    free(env);
    close(po[1]);
    close(pe[1]);
    struct tu_buf bo = {0}, be = {0};
    tu_buf_add(&bo, "", 0);
    tu_buf_add(&be, "", 0);
    int fds[2] = {po[0], pe[0]};
    struct tu_buf *bufs[2] = {&bo, &be};
    uint64_t deadline = tu_now_ms() + (uint64_t)timeout_sec * 1000u;
    int dr = tu_drain(fds, bufs, 2, deadline);
    for (int i = 0; i < 2; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    uint64_t now = tu_now_ms();
    unsigned left = dr == 0 && now < deadline ? (unsigned)(deadline - now) : 0;
    int w = wait_timeout(pid, left, &r->status);
    r->out = bo.data;
    r->out_len = bo.len;
    r->err = be.data;
    r->err_len = be.len;
    r->timed_out = dr != 0 || w != 0;
    if (!r->timed_out && r->status != -1 && WIFEXITED(r->status) && WEXITSTATUS(r->status) == 127)
        r->exec_failed = 1;
    return r->timed_out ? -1 : 0;
}

/* Start a command in the background (own process group, killed if this
 * process dies), stdout and stderr appended to logpath. Returns its pid. */
TU_FN pid_t spawn_bg(const char *const argv[], const char *preload, const char *const *extra_env,
                      const char *logpath) {
    char **env = tu_make_env(preload, extra_env);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        setpgid(0, 0);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int in = open("/dev/null", O_RDONLY);
        int lg = open(logpath, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (in < 0 || lg < 0)
            _exit(126);
        dup2(in, 0);
        dup2(lg, 1);
        dup2(lg, 2);
        execvpe(argv[0], (char *const *)argv, env);
        _exit(127);
    }
    free(env);
    return pid;
}

/* Read a whole file into a NUL-terminated malloc'd buffer (NULL on error). */
TU_FN char *read_file_all(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    struct tu_buf b = {0};
    tu_buf_add(&b, "", 0);
    char chunk[8192];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        tu_buf_add(&b, chunk, n);
    fclose(f);
    if (len)
        *len = b.len;
    return b.data;
}

TU_FN int write_file_all(const char *path, const char *data, size_t len) {
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    size_t w = fwrite(data, 1, len, f);
    return (fclose(f) == 0 && w == len) ? 0 : -1;
}

/* Index of the first differing byte of two buffers, or -1 if equal. */
TU_FN long first_diff(const char *a, size_t al, const char *b, size_t bl) {
    size_t n = al < bl ? al : bl;
    for (size_t i = 0; i < n; i++)
        if (a[i] != b[i])
            return (long)i;
    return al == bl ? -1 : (long)n;
}

/* ------------------------------------------------------------ child runs */

struct child_result {
    int status;    /* wait status */
    int timed_out;
    char err[8192];/* what the child wrote on stderr (truncated), NUL-terminated */
    size_t err_len;
};

/* fork; in the child: no core dumps, stderr to a pipe, fn(arg), _exit(0).
 * The parent collects stderr and the wait status (timeout_sec at most). */
TU_FN int run_in_child(void (*fn)(void *), void *arg, unsigned timeout_sec, struct child_result *r) {
    memset(r, 0, sizeof *r);
    r->status = -1;
    int pe[2];
    if (pipe2(pe, O_CLOEXEC))
        return -1;
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        struct rlimit rl = {0, 0};
        setrlimit(RLIMIT_CORE, &rl);
        alarm(timeout_sec + 5);
        close(pe[0]);
        dup2(pe[1], 2);
        close(pe[1]);
        fn(arg);
        _exit(0);
    }
    close(pe[1]);
    struct tu_buf be = {0};
    tu_buf_add(&be, "", 0);
    int fds[1] = {pe[0]};
    struct tu_buf *bufs[1] = {&be};
    uint64_t deadline = tu_now_ms() + (uint64_t)timeout_sec * 1000u;
    int dr = tu_drain(fds, bufs, 1, deadline);
    if (fds[0] >= 0)
        close(fds[0]);
    uint64_t now = tu_now_ms();
    unsigned left = dr == 0 && now < deadline ? (unsigned)(deadline - now) : 0;
    int w = wait_timeout(pid, left, &r->status);
    size_t n = be.len < sizeof r->err - 1 ? be.len : sizeof r->err - 1;
    memcpy(r->err, be.data, n);
    r->err[n] = 0;
    r->err_len = be.len;
    free(be.data);
    r->timed_out = dr != 0 || w != 0;
    return r->timed_out ? -1 : 0;
}

/* ------------------------------------------------------------ patterns */

static inline uint64_t tu_mix(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

static inline uint8_t tu_pat_byte(uint64_t key, size_t i) {
    return (uint8_t)(tu_mix(key + (i >> 3)) >> ((i & 7) * 8));
}

/* Fill n bytes at p with a pattern keyed by (p, n, salt). */
TU_FN void pat_fill(void *p, size_t n, uint64_t salt) {
    uint64_t key = tu_mix((uint64_t)(uintptr_t)p ^ (n * 0x9e3779b97f4a7c15ULL) ^ salt);
    unsigned char *b = p;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w = tu_mix(key + (i >> 3));
        memcpy(b + i, &w, 8);
    }
    for (; i < n; i++)
        b[i] = tu_pat_byte(key, i);
}

/* Verify the pattern pat_fill(p, n, salt) wrote. The key may be taken from
 * another address (keyp, the block's old address) so that moved data
 * (realloc) can be checked.
 * Returns the first bad offset, or -1. */
TU_FN long pat_check_key(const void *p, size_t n, uintptr_t keyp, size_t keyn, uint64_t salt) {
    uint64_t key = tu_mix((uint64_t)keyp ^ (keyn * 0x9e3779b97f4a7c15ULL) ^ salt);
    const unsigned char *b = p;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w = tu_mix(key + (i >> 3)), v;
        memcpy(&v, b + i, 8);
        if (v != w) {
            for (size_t j = 0; j < 8; j++)
                if (b[i + j] != (uint8_t)(w >> (j * 8)))
                    return (long)(i + j);
        }
    }
    for (; i < n; i++)
        if (b[i] != tu_pat_byte(key, i))
            return (long)i;
    return -1;
}

TU_FN long pat_check(const void *p, size_t n, uint64_t salt) {
    return pat_check_key(p, n, (uintptr_t)p, n, salt);
}

/* Returns the index of the first nonzero byte, or -1. */
TU_FN long first_nonzero(const void *p, size_t n) {
    const unsigned char *b = p;
    size_t i = 0;
    for (; i < n && ((uintptr_t)(b + i) & 7); i++)
        if (b[i])
            return (long)i;
    for (; i + 8 <= n; i += 8) {
        uint64_t v;
        memcpy(&v, b + i, 8);
        if (v)
            break;
    }
    for (; i < n; i++)
        if (b[i])
            return (long)i;
    return -1;
}

/* A forked child's allocation round (the fork tests): for each size in
 * sizes[], `count(size)` blocks, every `fill_every`-th filled with
 * `fill_bytes` of pattern (fewer for smaller blocks), then checked and freed;
 * then a zeroed calloc and a realloc to a large block. 0 when all went well,
 * else 3 (malloc failed), 4 (pattern lost), 5 (calloc not zero) or 6
 * (realloc failed). v must hold the largest count. */
TU_FN int tu_child_alloc_round(const size_t *sizes, size_t nsizes, int (*count)(size_t size), void **v,
                               int fill_every, size_t fill_bytes) {
    for (size_t c = 0; c < nsizes; c++) {
        size_t n = sizes[c], fill = n < fill_bytes ? n : fill_bytes;
        int k = count(n);
        for (int i = 0; i < k; i++) {
            v[i] = malloc(n);
            if (!v[i])
                return 3;
            if (i % fill_every == 0)
                pat_fill(v[i], fill, 2);
        }
        for (int i = 0; i < k; i++) {
            if (i % fill_every == 0 && pat_check(v[i], fill, 2) >= 0)
                return 4;
            free(v[i]);
        }
    }
    void *c = calloc(1000, 10);
    if (!c || first_nonzero(c, 10000) >= 0)
        return 5;
    c = realloc(c, 200000);
    if (!c)
        return 6;
    free(c);
    return 0;
}

/* ------------------------------------------------------------ declarations */

/* Entry points that gcmalloc exports but glibc 2.36's headers do not declare
 * (free_sized and free_aligned_sized are C23; cfree was removed from the
 * headers; the __libc_ names are glibc's internal aliases). */
void free_sized(void *p, size_t size);
void free_aligned_sized(void *p, size_t alignment, size_t size);
void cfree(void *p);
void *__libc_malloc(size_t size);
void __libc_free(void *p);
void *__libc_calloc(size_t n, size_t size);
void *__libc_realloc(void *p, size_t size);
void *__libc_memalign(size_t alignment, size_t size);

/* ------------------------------------------------------------ misc */

/* The address of p as an integer, taken now (an optimisation barrier keeps
 * gcc from moving the conversion past a realloc/free of p). */
static inline uintptr_t addr_of(const void *p) {
    uintptr_t a = (uintptr_t)p;
    __asm__ volatile("" : "+r"(a));
    return a;
}

/* p, hidden from gcc's analysis: for calls whose argument stays valid
 * afterwards (a failed realloc), which -Wuse-after-free cannot know. */
static inline void *opaque(void *p) {
    __asm__ volatile("" : "+r"(p));
    return p;
}

/* "0x%lx" of p, as gcmalloc prints pointers. buf must hold 20 chars. */
TU_FN const char *ptr_hex(const void *p, char *buf) {
    sprintf(buf, "0x%lx", (unsigned long)(uintptr_t)p);
    return buf;
}

/* A small xorshift PRNG (one state per thread). */
static inline uint64_t tu_rand(uint64_t *s) {
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

#define TU_KiB ((size_t)1024)
#define TU_MiB ((size_t)1024 * 1024)

/* ------------------------------------------------------------ program runs */
#if defined(CRITERION_H_) && defined(GCM_LIB)
/* Skip the test (cr_skip) when a program is missing. */
#define REQUIRE_PROGRAM(path)                                                                     \
    do {                                                                                          \
        if (access((path), X_OK) != 0)                                                           \
            cr_skip_test("%s is not installed", (path));                                          \
    } while (0)

/* Run argv without and with LD_PRELOAD=GCM_LIB (same environment
 * otherwise) and require the same exit status, the same stdout and the same
 * stderr, byte for byte. want_status: the expected exit status (-1: any,
 * as long as both agree). Returns the plain run's stdout (caller frees). */
TU_FN char *compare_runs(const char *const argv[], const char *const *extra_env, const char *stdin_path,
                         unsigned timeout_sec, int want_status) {
    struct run_result plain, pre;
    char s1[64], s2[64];
    int r1 = run_cmd(argv, NULL, extra_env, stdin_path, timeout_sec, &plain);
    cr_assert_eq(r1, 0, "%s (without gcmalloc) timed out after %u s", argv[0], timeout_sec);
    cr_assert(WIFEXITED(plain.status), "%s (without gcmalloc) ended with %s", argv[0],
              status_str(plain.status, s1, sizeof s1));
    int r2 = run_cmd(argv, GCM_LIB, extra_env, stdin_path, timeout_sec, &pre);
    cr_assert_eq(r2, 0, "%s under gcmalloc timed out after %u s; stderr: %.2000s", argv[0], timeout_sec,
                 pre.err);
    cr_assert(WIFEXITED(pre.status), "%s under gcmalloc ended with %s; stderr: %.2000s", argv[0],
              status_str(pre.status, s2, sizeof s2), pre.err);
    cr_assert_eq(WEXITSTATUS(pre.status), WEXITSTATUS(plain.status),
                 "%s: exit status %d under gcmalloc, %d without; stderr: %.2000s", argv[0],
                 WEXITSTATUS(pre.status), WEXITSTATUS(plain.status), pre.err);
    if (want_status >= 0)
        cr_assert_eq(WEXITSTATUS(plain.status), want_status, "%s exited with %d; stderr: %.2000s", argv[0],
                     WEXITSTATUS(plain.status), plain.err);
    long d = first_diff(plain.out, plain.out_len, pre.out, pre.out_len);
    cr_assert_eq(d, -1,
                 "%s: stdout differs at byte %ld (%zu bytes without gcmalloc, %zu with):\n"
                 "without: %.200s\nwith:    %.200s",
                 argv[0], d, plain.out_len, pre.out_len, d >= 0 ? plain.out + (d > 50 ? d - 50 : 0) : "",
                 d >= 0 ? pre.out + (d > 50 ? d - 50 : 0) : "");
    d = first_diff(plain.err, plain.err_len, pre.err, pre.err_len);
    cr_assert_eq(d, -1, "%s: stderr differs:\nwithout: %.1000s\nwith:    %.1000s", argv[0], plain.err,
                 pre.err);
    char *out = plain.out;
    plain.out = NULL;
    run_result_free(&plain);
    run_result_free(&pre);
    return out;
}
#endif

#endif
