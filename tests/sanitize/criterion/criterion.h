/*
 * A stand-in for <criterion/criterion.h>, used only by GCMALLOC_SANITIZE=thread
 * builds (cmake/sanitize.cmake puts this directory first on the include path).
 *
 * Criterion cannot start under ThreadSanitizer: its inheritable arena is a
 * shared mapping at an address TSan has reserved for itself ("criterion:
 * Could not initialize inheritable arena: Resource temporarily unavailable";
 * Criterion issue #274, open). This header implements the subset of its API
 * that the unit, stress and fuzz-replay tests use - Test() with .init,
 * .fini, .timeout and .signal, cr_assert*, cr_expect*, cr_skip_test - and a
 * main() that runs every test in a forked child of a single-threaded parent,
 * with its timeout, and checks how the child ended (exit 0, or the expected
 * signal). Options: --filter SUBSTRING; others (--jobs N) are ignored. The
 * environment variable GCMCR_SKIP lists tests (suite::name, comma-separated)
 * to skip, for the few that measure something a sanitizer changes (RSS).
 */
#ifndef CRITERION_H_
#define CRITERION_H_

#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

struct gcmcr_test {
    const char *suite, *name;
    void (*fn)(void);
    void (*init)(void);
    void (*fini)(void);
    double timeout;
    int signal;
    int disabled;
    struct gcmcr_test *next;
};
struct gcmcr_opts {
    void (*init)(void);
    void (*fini)(void);
    double timeout;
    int signal;
    int disabled;
    int exit_code;
    const char *description;
};

static struct gcmcr_test *gcmcr_tests;
static int gcmcr_expect_failed;

static void gcmcr_register(struct gcmcr_test *t) {
    /* append, so tests run in file order */
    struct gcmcr_test **p = &gcmcr_tests;
    while (*p)
        p = &(*p)->next;
    *p = t;
}

#define Test(suite_, name_, ...)                                                                          \
    static void gcmcr_fn_##suite_##_##name_(void);                                                        \
    __attribute__((constructor)) static void gcmcr_reg_##suite_##_##name_(void) {                         \
        static struct gcmcr_opts o = {0, __VA_ARGS__};                                                    \
        static struct gcmcr_test t;                                                                       \
        t.suite = #suite_;                                                                                \
        t.name = #name_;                                                                                  \
        t.fn = gcmcr_fn_##suite_##_##name_;                                                               \
        t.init = o.init;                                                                                  \
        t.fini = o.fini;                                                                                  \
        t.timeout = o.timeout;                                                                            \
        t.signal = o.signal;                                                                              \
        t.disabled = o.disabled;                                                                          \
        gcmcr_register(&t);                                                                               \
    }                                                                                                     \
    static void gcmcr_fn_##suite_##_##name_(void)

#define TestSuite(suite_, ...) static struct gcmcr_opts gcmcr_suite_##suite_ __attribute__((unused)) = {0, __VA_ARGS__}

static __attribute__((format(printf, 4, 5))) void gcmcr_report(const char *file, int line, const char *expr,
                                                                const char *fmt, ...) {
    char msg[4096] = "";
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "[----] %s:%d: Assertion failed: %s\n[----]   %s\n", file, line, expr, msg);
    fflush(stderr);
}

#define gcmcr_fail_(fatal, expr, ...)                                                                     \
    do {                                                                                                  \
        gcmcr_report(__FILE__, __LINE__, expr, "" __VA_ARGS__);                                           \
        if (fatal)                                                                                        \
            _exit(1);                                                                                     \
        gcmcr_expect_failed = 1;                                                                          \
    } while (0)
#define gcmcr_check_(fatal, cond, expr, ...)                                                              \
    do {                                                                                                  \
        if (!(cond))                                                                                      \
            gcmcr_fail_(fatal, expr, __VA_ARGS__);                                                        \
    } while (0)

#define cr_assert(c, ...) gcmcr_check_(1, (c), #c, __VA_ARGS__)
#define cr_expect(c, ...) gcmcr_check_(0, (c), #c, __VA_ARGS__)
#define cr_assert_not(c, ...) gcmcr_check_(1, !(c), "!(" #c ")", __VA_ARGS__)
#define cr_expect_not(c, ...) gcmcr_check_(0, !(c), "!(" #c ")", __VA_ARGS__)
#define cr_assert_fail(...) gcmcr_fail_(1, "cr_assert_fail", __VA_ARGS__)
#define cr_expect_fail(...) gcmcr_fail_(0, "cr_expect_fail", __VA_ARGS__)
#define GCMCR_CMP_(fatal, a, op, b, ...) gcmcr_check_(fatal, (a)op(b), #a " " #op " " #b, __VA_ARGS__)
#define cr_assert_eq(a, b, ...) GCMCR_CMP_(1, a, ==, b, __VA_ARGS__)
#define cr_assert_neq(a, b, ...) GCMCR_CMP_(1, a, !=, b, __VA_ARGS__)
#define cr_assert_lt(a, b, ...) GCMCR_CMP_(1, a, <, b, __VA_ARGS__)
#define cr_assert_leq(a, b, ...) GCMCR_CMP_(1, a, <=, b, __VA_ARGS__)
#define cr_assert_gt(a, b, ...) GCMCR_CMP_(1, a, >, b, __VA_ARGS__)
#define cr_assert_geq(a, b, ...) GCMCR_CMP_(1, a, >=, b, __VA_ARGS__)
#define cr_expect_eq(a, b, ...) GCMCR_CMP_(0, a, ==, b, __VA_ARGS__)
#define cr_expect_neq(a, b, ...) GCMCR_CMP_(0, a, !=, b, __VA_ARGS__)
#define cr_expect_lt(a, b, ...) GCMCR_CMP_(0, a, <, b, __VA_ARGS__)
#define cr_expect_leq(a, b, ...) GCMCR_CMP_(0, a, <=, b, __VA_ARGS__)
#define cr_expect_gt(a, b, ...) GCMCR_CMP_(0, a, >, b, __VA_ARGS__)
#define cr_expect_geq(a, b, ...) GCMCR_CMP_(0, a, >=, b, __VA_ARGS__)
#define cr_assert_null(p, ...) gcmcr_check_(1, (p) == NULL, #p " == NULL", __VA_ARGS__)
#define cr_assert_not_null(p, ...) gcmcr_check_(1, (p) != NULL, #p " != NULL", __VA_ARGS__)
#define cr_expect_null(p, ...) gcmcr_check_(0, (p) == NULL, #p " == NULL", __VA_ARGS__)
#define cr_expect_not_null(p, ...) gcmcr_check_(0, (p) != NULL, #p " != NULL", __VA_ARGS__)
#define cr_assert_str_eq(a, b, ...) gcmcr_check_(1, strcmp((a), (b)) == 0, #a " equals " #b, __VA_ARGS__)
#define cr_expect_str_eq(a, b, ...) gcmcr_check_(0, strcmp((a), (b)) == 0, #a " equals " #b, __VA_ARGS__)
#define cr_skip_test(...)                                                                                 \
    do {                                                                                                  \
        gcmcr_report(__FILE__, __LINE__, "skipped", "" __VA_ARGS__);                                      \
        _exit(77);                                                                                        \
    } while (0)
#define cr_log_info(...) (fprintf(stderr, __VA_ARGS__), fputc('\n', stderr))
#define cr_log_warn cr_log_info

int main(int argc, char **argv) {
    const char *filter = NULL;
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--filter") == 0 && i + 1 < argc)
            filter = argv[++i];
        else if (strncmp(argv[i], "--filter=", 9) == 0)
            filter = argv[i] + 9;
    int run = 0, failed = 0, skipped = 0;
    for (struct gcmcr_test *t = gcmcr_tests; t; t = t->next) {
        char id[512];
        snprintf(id, sizeof id, "%s::%s", t->suite, t->name);
        if (t->disabled || (filter && !strstr(id, filter)))
            continue;
        const char *skip = getenv("GCMCR_SKIP"); /* "suite::test,suite::test": not meaningful here */
        size_t idn = strlen(id);
        const char *hit = skip ? strstr(skip, id) : NULL;
        if (hit && (hit[idn] == 0 || hit[idn] == ',') && (hit == skip || hit[-1] == ',')) {
            fprintf(stderr, "[SKIP] %s (GCMCR_SKIP)\n", id);
            continue;
        }
        run++;
        fflush(NULL);
        pid_t pid = fork();
        if (pid < 0) {
            perror("fork");
            return 2;
        }
        if (pid == 0) {
            alarm((unsigned)(t->timeout > 0 ? t->timeout : 600));
            if (t->init)
                t->init();
            t->fn();
            if (t->fini)
                t->fini();
            fflush(NULL);
            _exit(gcmcr_expect_failed ? 1 : 0);
        }
        int st;
        while (waitpid(pid, &st, 0) < 0) {
        }
        int ok;
        if (WIFEXITED(st) && WEXITSTATUS(st) == 77) {
            skipped++;
            fprintf(stderr, "[SKIP] %s\n", id);
            continue;
        }
        if (t->signal)
            ok = WIFSIGNALED(st) && WTERMSIG(st) == t->signal;
        else
            ok = WIFEXITED(st) && WEXITSTATUS(st) == 0;
        if (!ok) {
            failed++;
            if (WIFSIGNALED(st))
                fprintf(stderr, "[FAIL] %s: killed by signal %d (%s)%s\n", id, WTERMSIG(st), strsignal(WTERMSIG(st)),
                        WTERMSIG(st) == SIGALRM ? " - timed out" : "");
            else
                fprintf(stderr, "[FAIL] %s: exit %d%s\n", id, WEXITSTATUS(st), t->signal ? " (expected a signal)" : "");
        } else {
            fprintf(stderr, "[PASS] %s\n", id);
        }
    }
    fprintf(stderr, "[====] Synthesis: Tested: %d | Passing: %d | Failing: %d | Skipped: %d\n", run,
            run - failed - skipped, failed, skipped);
    return failed ? 1 : 0;
}

#endif
