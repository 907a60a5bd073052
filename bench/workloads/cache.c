/* cache: false sharing between threads through the allocator.
 *
 *   cache thrash T N W    each thread N times: malloc 8 B, write it W times,
 *                         free it. An allocator that gives neighbouring small
 *                         blocks to different threads makes them share cache
 *                         lines (active false sharing).
 *   cache scratch T N W   main allocates T blocks of 8 B one after the other
 *                         and hands block i to thread i, which frees it and
 *                         then does the same loop as thrash. An allocator that
 *                         reuses the handed-over block in the thread that
 *                         freed it keeps the false sharing (passive).
 *
 * The checksum adds up what each thread reads back: independent of the
 * allocator. */
#include "bench_threads.h"

#define OBJ_SIZE 8

typedef struct {
  int id;
  uint64_t n, w, sum;
  unsigned char *handed;
  char pad[64];
} targ;

static void *worker(void *arg) {
  targ *a = arg;
  uint64_t sum = 0;
  bench_ready();
  if (a->handed) {
    sum += a->handed[0];
    free(a->handed);
  }
  for (uint64_t i = 0; i < a->n; i++) {
    volatile unsigned char *p = bench_xmalloc(OBJ_SIZE);
    for (int k = 0; k < OBJ_SIZE; k++) p[k] = (unsigned char)(i + (uint64_t)a->id);
    for (uint64_t j = 0; j < a->w; j++) p[j & (OBJ_SIZE - 1)] += (unsigned char)j;
    for (int k = 0; k < OBJ_SIZE; k++) sum += p[k];
    free((void *)p);
  }
  a->sum = sum;
  return NULL;
}

int main(int argc, char **argv) {
  const char *mode = argc > 1 ? argv[1] : "";
  int scratch;
  if (strcmp(mode, "thrash") == 0) scratch = 0;
  else if (strcmp(mode, "scratch") == 0) scratch = 1;
  else {
    fprintf(stderr, "usage: %s thrash|scratch T N W\n", argv[0]);
    return 2;
  }
  int n = (int)bench_arg_u64(argc, argv, 2, 2);
  uint64_t iters = bench_arg_u64(argc, argv, 3, 1000000);
  uint64_t w = bench_arg_u64(argc, argv, 4, 100);
  static targ args[BENCH_MAX_THREADS];
  for (int i = 0; i < n && i < BENCH_MAX_THREADS; i++) {
    args[i] = (targ){.id = i, .n = iters, .w = w};
    if (scratch) {
      args[i].handed = bench_xmalloc(OBJ_SIZE);
      memset(args[i].handed, i + 1, OBJ_SIZE);
    }
  }
  double t = bench_run_threads(n, worker, args, sizeof args[0]);
  uint64_t sum = 0;
  for (int i = 0; i < n; i++) sum += args[i].sum;
  bench_report(t, sum, iters * (uint64_t)n);
  return 0;
}
