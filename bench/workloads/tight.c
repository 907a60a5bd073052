/* tight: glibc-simple / glibc-thread-like tight loops on small blocks.
 *
 *   tight simple N       one thread: allocate 16 blocks (sizes 8, 16, ..,
 *                        128 in turn), write each, free them in the same
 *                        order; N blocks in all.
 *   tight thread T N     T threads, each with 128 live blocks: each step
 *                        replaces a random one by a new block of random size
 *                        8-128 B; N steps per thread. */
#include "bench_threads.h"

#define BURST 16
#define WSET 128

typedef struct {
  int id;
  uint64_t n, sum;
  char pad[64];
} targ;

static void *thread_loop(void *arg) {
  targ *a = arg;
  bench_rng rng = {4000 + (uint64_t)a->id};
  unsigned char *p[WSET];
  size_t sz[WSET];
  uint64_t sum = 0;
  for (int i = 0; i < WSET; i++) {
    sz[i] = 8 + (size_t)(bench_rng_next(&rng) % 121);
    p[i] = bench_xmalloc(sz[i]);
    bench_touch(p[i], sz[i], (uint64_t)i);
  }
  bench_ready();
  for (uint64_t s = 0; s < a->n; s++) {
    uint64_t r = bench_rng_next(&rng);
    unsigned k = (unsigned)(r % WSET);
    sum += bench_read(p[k], sz[k]);
    free(p[k]);
    sz[k] = 8 + (size_t)((r >> 20) % 121);
    p[k] = bench_xmalloc(sz[k]);
    bench_touch(p[k], sz[k], s);
  }
  for (int i = 0; i < WSET; i++) {
    sum += bench_read(p[i], sz[i]);
    free(p[i]);
  }
  a->sum = sum;
  return NULL;
}

int main(int argc, char **argv) {
  const char *mode = argc > 1 ? argv[1] : "";
  if (strcmp(mode, "simple") == 0) {
    uint64_t n = bench_arg_u64(argc, argv, 2, 10000000) / BURST;
    unsigned char *p[BURST];
    uint64_t sum = 0;
    double t0 = bench_now();
    for (uint64_t r = 0; r < n; r++) {
      for (int i = 0; i < BURST; i++) {
        p[i] = bench_xmalloc(8 * (size_t)(i + 1));
        bench_touch(p[i], 8 * (size_t)(i + 1), r + (uint64_t)i);
      }
      for (int i = 0; i < BURST; i++) {
        sum += bench_read(p[i], 8 * (size_t)(i + 1));
        free(p[i]);
      }
    }
    double t1 = bench_now();
    bench_report(t1 - t0, sum, n * BURST);
    return 0;
  }
  if (strcmp(mode, "thread") == 0) {
    int n = (int)bench_arg_u64(argc, argv, 2, 2);
    uint64_t steps = bench_arg_u64(argc, argv, 3, 10000000);
    static targ args[BENCH_MAX_THREADS];
    for (int i = 0; i < n && i < BENCH_MAX_THREADS; i++) args[i] = (targ){.id = i, .n = steps};
    double t = bench_run_threads(n, thread_loop, args, sizeof args[0]);
    uint64_t sum = 0;
    for (int i = 0; i < n; i++) sum += args[i].sum;
    bench_report(t, sum, steps * (uint64_t)n);
    return 0;
  }
  fprintf(stderr, "usage: %s simple N | thread T N\n", argv[0]);
  return 2;
}
