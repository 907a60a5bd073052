/* frag: fragmentation. Single thread:
 *   1. allocate N small blocks (16-128 B, random) and write them;
 *   2. free every other one (the heap is now half holes);
 *   3. allocate N/4 larger blocks (256-2048 B), which do not fit the holes;
 *   4. free the larger blocks; the surviving small ones stay live.
 * Then it prints rss_final_kib= (resident set from /proc/self/statm at that
 * point: what the allocator holds on to for N/2 small live blocks) and
 * rss_phase3_kib= (after step 3), before freeing the rest (untimed).
 *
 *   frag N */
#include "bench_threads.h"

typedef bench_obj obj;

static uint64_t release(obj *o) { return bench_obj_free(o); }

/* Filled whole, so every page of the block is resident (RSS is frag's figure). */
static void acquire(obj *o, size_t size, uint64_t tag) {
  bench_obj_new(o, size, tag);
  memset(o->p, (int)(tag & 0xff), size);
  bench_touch(o->p, size, tag);
}

int main(int argc, char **argv) {
  uint64_t n = bench_arg_u64(argc, argv, 1, 1000000);
  uint64_t nl = n / 4;
  obj *small = bench_xmalloc(n * sizeof *small);
  obj *large = bench_xmalloc((nl ? nl : 1) * sizeof *large);
  bench_rng rng = {42};
  uint64_t sum = 0, tag = 0;

  double t0 = bench_now();
  for (uint64_t i = 0; i < n; i++) acquire(&small[i], bench_rand_range(&rng, 16, 128), tag++);
  for (uint64_t i = 1; i < n; i += 2) sum += release(&small[i]);
  for (uint64_t i = 0; i < nl; i++) acquire(&large[i], bench_rand_range(&rng, 256, 2048), tag++);
  long rss3 = bench_rss_kib();
  for (uint64_t i = 0; i < nl; i++) sum += release(&large[i]);
  double t1 = bench_now();
  long rss_final = bench_rss_kib();

  for (uint64_t i = 0; i < n; i += 2) sum += release(&small[i]);
  free(small);
  free(large);
  printf("rss_phase3_kib=%ld\n", rss3);
  printf("rss_final_kib=%ld\n", rss_final);
  bench_report(t1 - t0, sum, n + nl);
  return 0;
}
