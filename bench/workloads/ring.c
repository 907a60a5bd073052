/* ring: single thread, a fixed population of live objects.
 *
 *   ring fifo LIVE N          LIVE objects in a ring; each of N steps frees
 *                             the oldest object and allocates a new one.
 *   ring lifo BURST N [BASE]  BASE objects stay live underneath a stack; each
 *                             round pushes BURST new objects and pops them
 *                             again, newest first, for N allocations in all.
 *
 * Sizes are uniform in [16, 1024] from a fixed seed. Only the steady state is
 * timed: filling the ring (or BASE) and the final frees are not. */
#include "bench_common.h"

typedef bench_obj obj;

static uint64_t release(obj *o) { return bench_obj_free(o); }

static void acquire(obj *o, bench_rng *rng, uint64_t tag) { bench_obj_new(o, bench_rand_size(rng), tag); }

static int run_fifo(uint64_t live, uint64_t n) {
  obj *ring = bench_xmalloc(live * sizeof *ring);
  bench_rng rng = {42};
  uint64_t sum = 0, tag = 0;
  for (uint64_t i = 0; i < live; i++) acquire(&ring[i], &rng, tag++);

  double t0 = bench_now();
  uint64_t idx = 0;
  for (uint64_t i = 0; i < n; i++) {
    sum += release(&ring[idx]);
    acquire(&ring[idx], &rng, tag++);
    if (++idx == live) idx = 0;
  }
  double t1 = bench_now();

  for (uint64_t i = 0; i < live; i++) sum += release(&ring[i]);
  free(ring);
  bench_report(t1 - t0, sum, n);
  return 0;
}

static int run_lifo(uint64_t burst, uint64_t n, uint64_t base) {
  obj *stack = bench_xmalloc((base + burst) * sizeof *stack);
  bench_rng rng = {42};
  uint64_t sum = 0, tag = 0;
  for (uint64_t i = 0; i < base; i++) acquire(&stack[i], &rng, tag++);

  uint64_t rounds = n / burst;
  double t0 = bench_now();
  for (uint64_t r = 0; r < rounds; r++) {
    for (uint64_t i = base; i < base + burst; i++) acquire(&stack[i], &rng, tag++);
    for (uint64_t i = base + burst; i-- > base;) sum += release(&stack[i]);
  }
  double t1 = bench_now();

  for (uint64_t i = base; i-- > 0;) sum += release(&stack[i]);
  free(stack);
  bench_report(t1 - t0, sum, rounds * burst);
  return 0;
}

int main(int argc, char **argv) {
  const char *mode = argc > 1 ? argv[1] : "";
  if (strcmp(mode, "fifo") == 0)
    return run_fifo(bench_arg_u64(argc, argv, 2, 1000), bench_arg_u64(argc, argv, 3, 10000000));
  if (strcmp(mode, "lifo") == 0) {
    uint64_t base = argc > 4 ? bench_arg_u64(argc, argv, 4, 0) : 0;
    return run_lifo(bench_arg_u64(argc, argv, 2, 1000), bench_arg_u64(argc, argv, 3, 10000000), base);
  }
  fprintf(stderr, "usage: %s fifo LIVE N | lifo BURST N [BASE]\n", argv[0]);
  return 2;
}
