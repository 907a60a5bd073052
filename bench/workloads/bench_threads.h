/* Thread helpers for the multi-threaded workloads.
 *
 * bench_run_threads(n, fn, args, size) starts n threads, fn(&args[i]); each
 * does its untimed setup, then calls bench_ready(). The clock starts once all
 * n have called it and stops when the last has returned (so a thread's
 * untimed cleanup is best left to main, after bench_run_threads returns). */
#ifndef GCM_BENCH_THREADS_H
#define GCM_BENCH_THREADS_H

#include "bench_common.h"

#include <pthread.h>
#include <sched.h>
#include <unistd.h>

#define BENCH_MAX_THREADS 64

static pthread_barrier_t bench_barrier;
static pthread_mutex_t bench_time_lock = PTHREAD_MUTEX_INITIALIZER;
static double bench_t_start, bench_t_end;

/* Called by each thread once its setup is done: waits for the others, then
 * notes when it started. The measured time runs from the first thread's
 * start to the last thread's end, each taken by the thread itself (main may
 * not run again until the workers are done: 8 threads on 2 cores). */
static inline void bench_ready(void) {
  pthread_barrier_wait(&bench_barrier);
  double t = bench_now();
  pthread_mutex_lock(&bench_time_lock);
  if (bench_t_start == 0 || t < bench_t_start) bench_t_start = t;
  pthread_mutex_unlock(&bench_time_lock);
}

typedef struct {
  void *(*fn)(void *);
  void *arg;
} bench_tramp;

static void *bench_trampoline(void *p) {
  bench_tramp *t = p;
  void *r = t->fn(t->arg);
  double now = bench_now();
  pthread_mutex_lock(&bench_time_lock);
  if (now > bench_t_end) bench_t_end = now;
  pthread_mutex_unlock(&bench_time_lock);
  return r;
}

static inline double bench_run_threads(int n, void *(*fn)(void *), void *args, size_t size) {
  static pthread_t tids[BENCH_MAX_THREADS];
  static bench_tramp tramps[BENCH_MAX_THREADS];
  if (n < 1 || n > BENCH_MAX_THREADS) {
    fprintf(stderr, "thread count must be 1..%d\n", BENCH_MAX_THREADS);
    exit(2);
  }
  /* the workers wait for each other only: main just joins them */
  pthread_barrier_init(&bench_barrier, NULL, (unsigned)n);
  bench_t_start = bench_t_end = 0;
  for (int i = 0; i < n; i++) {
    tramps[i] = (bench_tramp){fn, (char *)args + (size_t)i * size};
    if (pthread_create(&tids[i], NULL, bench_trampoline, &tramps[i])) {
      fprintf(stderr, "pthread_create failed\n");
      exit(2);
    }
  }
  for (int i = 0; i < n; i++) pthread_join(tids[i], NULL);
  pthread_barrier_destroy(&bench_barrier);
  return bench_t_end - bench_t_start;
}

/* Resident set now (KiB), from /proc/self/statm, or -1. */
static inline long bench_rss_kib(void) {
  FILE *f = fopen("/proc/self/statm", "r");
  if (!f) return -1;
  long size, resident;
  int ok = fscanf(f, "%ld %ld", &size, &resident) == 2;
  fclose(f);
  return ok ? resident * (sysconf(_SC_PAGESIZE) / 1024) : -1;
}

/* A random size in [lo, hi]. */
static inline size_t bench_rand_range(bench_rng *r, size_t lo, size_t hi) {
  return lo + (size_t)(bench_rng_next(r) % (hi - lo + 1));
}

#endif
