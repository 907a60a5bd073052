/*
 * fork() while other threads use stdio (fopen/fprintf/fclose, printf to
 * /dev/null) and malloc: 200 forks, the children use stdio and malloc too,
 * and none deadlocks. (stdio's locks and the allocator's locks are taken in
 * some order by glibc's fork; a wrong order deadlocks here.)
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gcmalloc.h>
#include "testutil.h"

#define NTHREADS 4
#define NFORKS 200

static atomic_int stop;
static atomic_ulong ops;

static void *stdio_thread(void *arg) {
    unsigned id = (unsigned)(uintptr_t)arg;
    uint64_t rng = 99 + id;
    while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
        FILE *f = fopen("/dev/null", "w");
        if (!f)
            abort();
        char *buf = malloc((size_t)(tu_rand(&rng) % 4000) + 1);
        if (!buf)
            abort();
        fprintf(f, "thread %u: %p %lu %s\n", id, (void *)buf, (unsigned long)tu_rand(&rng), "some text");
        setvbuf(f, NULL, _IOFBF, 8192);
        for (int i = 0; i < 10; i++)
            fprintf(f, "%d %f\n", i, i * 0.5);
        fclose(f);
        printf("thread %u line %lu\n", id, (unsigned long)atomic_load(&ops));
        if (id & 1)
            fflush(stdout);
        char *s = NULL;
        if (asprintf(&s, "%u-%lu", id, (unsigned long)tu_rand(&rng)) < 0)
            abort();
        free(s);
        FILE *m = open_memstream(&s, &(size_t){0});
        if (m) {
            fprintf(m, "memstream %u\n", id);
            fclose(m);
            free(s);
        }
        free(buf);
        atomic_fetch_add_explicit(&ops, 1, memory_order_relaxed);
    }
    return NULL;
}

static int child_main(void) {
    printf("child %d\n", (int)getpid());
    fflush(stdout);
    FILE *f = fopen("/dev/null", "w");
    if (!f)
        return 2;
    for (int i = 0; i < 2000; i++) {
        char *p = malloc((size_t)(i % 50) * 64 + 1);
        if (!p)
            return 3;
        fprintf(f, "%d %p\n", i, (void *)p);
        free(p);
    }
    if (fclose(f))
        return 4;
    char *s = NULL;
    if (asprintf(&s, "done %d", 42) < 0 || strcmp(s, "done 42") != 0)
        return 5;
    free(s);
    return 0;
}

Test(fork_stdio, fork_while_threads_use_stdio, .timeout = 280) {
    /* stdout goes to /dev/null for the duration of the test. */
    fflush(stdout);
    int saved = dup(1);
    int dn = open("/dev/null", O_WRONLY);
    cr_assert(saved >= 0 && dn >= 0);
    dup2(dn, 1);
    close(dn);

    pthread_t t[NTHREADS];
    atomic_store(&stop, 0);
    for (int i = 0; i < NTHREADS; i++)
        cr_assert_eq(pthread_create(&t[i], NULL, stdio_thread, (void *)(uintptr_t)i), 0);
    while (atomic_load(&ops) < 1000)
        tu_sleep_ms(1);

    int failures = 0, hangs = 0;
    char first[128] = "";
    for (int i = 0; i < NFORKS && !hangs; i++) {
        pid_t pid = fork();
        if (pid < 0) {
            failures++;
            snprintf(first, sizeof first, "fork %d failed", i);
            break;
        }
        if (pid == 0) {
            alarm(30);
            _exit(child_main());
        }
        int st;
        if (wait_timeout(pid, 40000, &st) != 0) {
            hangs++;
            snprintf(first, sizeof first, "fork %d: child hung (killed after 40 s)", i);
        } else if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            char s[64];
            if (!failures++)
                snprintf(first, sizeof first, "fork %d: child ended with %s", i, status_str(st, s, sizeof s));
        }
    }
    atomic_store(&stop, 1);
    for (int i = 0; i < NTHREADS; i++)
        pthread_join(t[i], NULL);
    fflush(stdout);
    dup2(saved, 1);
    close(saved);
    cr_assert_eq(failures + hangs, 0, "%d children failed, %d hung; %s", failures, hangs, first);
}
