/*
 * redis-server under LD_PRELOAD=libgcmalloc.so on a free 127.0.0.1 port,
 * driven by redis-benchmark (must succeed), then redis-cli checks of
 * SET/GET/INCR/LRANGE answers, then SHUTDOWN (the server must exit 0). The
 * server is killed in the fini, whatever happened (and it dies with the test
 * process through PR_SET_PDEATHSIG if the test crashes).
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "testutil.h"

#define REDIS_SERVER "/usr/bin/redis-server"
#define REDIS_CLI "/usr/bin/redis-cli"
#define REDIS_BENCH "/usr/bin/redis-benchmark"

static pid_t server_pid = -1;
static char port_str[16];
static char workdir[64];
static char logpath[128];

static void kill_server(void) {
    if (server_pid > 0) {
        int st;
        kill(-server_pid, SIGKILL);
        kill(server_pid, SIGKILL);
        waitpid(server_pid, &st, 0);
        server_pid = -1;
    }
    if (workdir[0]) {
        char p[256];
        snprintf(p, sizeof p, "%s/dump.rdb", workdir);
        unlink(p);
        unlink(logpath);
        rmdir(workdir);
        workdir[0] = 0;
    }
}

TestSuite(redis, .fini = kill_server);

/* A port that was free a moment ago (bind to port 0, read it back). */
static int free_port(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) || getsockname(fd, (struct sockaddr *)&a, &len)) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    close(fd);
    return ntohs(a.sin_port);
}

/* redis-cli -h 127.0.0.1 -p PORT args... ; returns stdout (caller frees). */
static char *cli(const char *a1, const char *a2, const char *a3, const char *a4) {
    const char *argv[] = {REDIS_CLI, "-h", "127.0.0.1", "-p", port_str, a1, a2, a3, a4, NULL};
    struct run_result r;
    int rc = run_cmd(argv, NULL, NULL, NULL, 30, &r);
    cr_assert_eq(rc, 0, "redis-cli %s timed out", a1);
    cr_assert(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0, "redis-cli %s failed: %s", a1, r.err);
    char *out = r.out;
    r.out = NULL;
    run_result_free(&r);
    return out;
}

#define CLI_EQ(expect, ...)                                                                        \
    do {                                                                                           \
        char *o_ = cli(__VA_ARGS__);                                                               \
        cr_assert_str_eq(o_, expect, "redis-cli " #__VA_ARGS__ ": got \"%s\", want \"%s\"", o_, expect); \
        free(o_);                                                                                  \
    } while (0)

static int server_running_gcmalloc(pid_t pid) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/maps", (int)pid);
    char *maps = read_file_all(path, NULL);
    const char *base = strrchr(GCM_LIB, '/');
    base = base ? base + 1 : GCM_LIB;
    int found = maps && strstr(maps, base) != NULL;
    free(maps);
    return found;
}

static void start_server(void) {
    snprintf(workdir, sizeof workdir, "/tmp/gcm_redis_XXXXXX");
    cr_assert_not_null(mkdtemp(workdir));
    snprintf(logpath, sizeof logpath, "%s/server.log", workdir);
    int port = -1;
    for (int attempt = 0; attempt < 5; attempt++) {
        port = free_port();
        cr_assert_gt(port, 0, "no free port");
        snprintf(port_str, sizeof port_str, "%d", port);
        const char *argv[] = {REDIS_SERVER, "--port", port_str, "--bind", "127.0.0.1", "--save", "",
                              "--appendonly", "no", "--daemonize", "no", "--dir", workdir,
                              "--protected-mode", "no", NULL};
        server_pid = spawn_bg(argv, GCM_LIB, NULL, logpath);
        cr_assert_gt(server_pid, 0);
        /* Wait until it answers PING (up to 20 s). */
        for (int i = 0; i < 200; i++) {
            int st;
            if (waitpid(server_pid, &st, WNOHANG) == server_pid) {
                server_pid = -1;
                break; /* died: maybe the port was taken; retry */
            }
            const char *ping[] = {REDIS_CLI, "-h", "127.0.0.1", "-p", port_str, "PING", NULL};
            struct run_result r;
            if (run_cmd(ping, NULL, NULL, NULL, 10, &r) == 0 && strcmp(r.out, "PONG\n") == 0) {
                run_result_free(&r);
                return;
            }
            run_result_free(&r);
            tu_sleep_ms(100);
        }
        if (server_pid > 0) {
            char *log = read_file_all(logpath, NULL);
            cr_assert_fail("redis-server did not answer PING in 20 s; log: %.2000s", log ? log : "");
        }
    }
    char *log = read_file_all(logpath, NULL);
    cr_assert_fail("redis-server under gcmalloc would not start; log: %.3000s", log ? log : "");
}

Test(redis, benchmark_and_cli_checks, .timeout = 280) {
    REQUIRE_PROGRAM(REDIS_SERVER);
    REQUIRE_PROGRAM(REDIS_CLI);
    REQUIRE_PROGRAM(REDIS_BENCH);
    start_server();
    cr_assert(server_running_gcmalloc(server_pid), "%s is not mapped in redis-server", GCM_LIB);

    const char *bench[] = {REDIS_BENCH, "-h", "127.0.0.1", "-p", port_str, "-n", "20000", "-q", "-t",
                           "set,get,lpush,lpop,incr", NULL};
    struct run_result r;
    int rc = run_cmd(bench, NULL, NULL, NULL, 200, &r);
    cr_assert_eq(rc, 0, "redis-benchmark timed out");
    cr_assert(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0, "redis-benchmark failed: %s %s", r.out, r.err);
    static const char *const tests[] = {"SET:", "GET:", "LPUSH:", "LPOP:", "INCR:"};
    for (int i = 0; i < 5; i++)
        cr_assert_not_null(strstr(r.out, tests[i]), "no %s result from redis-benchmark: %s", tests[i], r.out);
    run_result_free(&r);

    /* The server survived the benchmark. */
    int st;
    cr_assert_eq(waitpid(server_pid, &st, WNOHANG), 0, "redis-server died during the benchmark");

    CLI_EQ("OK\n", "SET", "gcm:key", "hello world", NULL);
    CLI_EQ("hello world\n", "GET", "gcm:key", NULL, NULL);
    CLI_EQ("OK\n", "SET", "gcm:counter", "41", NULL);
    CLI_EQ("42\n", "INCR", "gcm:counter", NULL, NULL);
    CLI_EQ("142\n", "INCRBY", "gcm:counter", "100", NULL);
    CLI_EQ("1\n", "RPUSH", "gcm:list", "a", NULL);
    CLI_EQ("2\n", "RPUSH", "gcm:list", "b", NULL);
    CLI_EQ("3\n", "LPUSH", "gcm:list", "z", NULL);
    CLI_EQ("z\na\nb\n", "LRANGE", "gcm:list", "0", "-1");
    CLI_EQ("z\n", "LPOP", "gcm:list", NULL, NULL);
    CLI_EQ("a\nb\n", "LRANGE", "gcm:list", "0", "-1");
    /* A big value (large allocations in the server). */
    char *bigval = malloc(100001);
    cr_assert_not_null(bigval);
    for (int i = 0; i < 100000; i++)
        bigval[i] = (char)('a' + i % 26);
    bigval[100000] = 0;
    CLI_EQ("OK\n", "SET", "gcm:big", bigval, NULL);
    CLI_EQ("100000\n", "STRLEN", "gcm:big", NULL, NULL);
    char *got = cli("GET", "gcm:big", NULL, NULL);
    cr_assert_eq(strlen(got), 100001);
    cr_assert_eq(strncmp(got, bigval, 100000), 0, "GET of the 100000-byte value differs");
    free(got);
    free(bigval);
    CLI_EQ("1\n", "DEL", "gcm:big", NULL, NULL);
    CLI_EQ("0\n", "EXISTS", "gcm:big", NULL, NULL);

    /* A clean shutdown: the server exits 0. */
    const char *shut[] = {REDIS_CLI, "-h", "127.0.0.1", "-p", port_str, "SHUTDOWN", "NOSAVE", NULL};
    run_cmd(shut, NULL, NULL, NULL, 30, &r);
    run_result_free(&r);
    int w = wait_timeout(server_pid, 30000, &st);
    server_pid = -1;
    cr_assert_eq(w, 0, "redis-server did not exit after SHUTDOWN");
    char s[64];
    char *log = read_file_all(logpath, NULL);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "redis-server ended with %s; log: %.2000s",
              status_str(st, s, sizeof s), log ? log : "");
    free(log);
}
