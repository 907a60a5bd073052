/* pairs: single thread, malloc immediately followed by free.
 *
 *   pairs [cycle|random] N
 *
 * cycle:  sizes 16, 32, ..., 1024, 16, 32, ... (64 size classes in turn)
 * random: sizes uniform in [16, 1024] from a fixed seed
 * N malloc+free pairs are timed. */
#include "bench_common.h"

int main(int argc, char **argv) {
  const char *mode = argc > 1 ? argv[1] : "cycle";
  uint64_t n = bench_arg_u64(argc, argv, 2, 20000000);
  int random_sizes;
  if (strcmp(mode, "cycle") == 0) random_sizes = 0;
  else if (strcmp(mode, "random") == 0) random_sizes = 1;
  else {
    fprintf(stderr, "usage: %s [cycle|random] N\n", argv[0]);
    return 2;
  }

  bench_rng rng = {42};
  uint64_t sum = 0;
  double t0 = bench_now();
  for (uint64_t i = 0; i < n; i++) {
    size_t size = random_sizes ? bench_rand_size(&rng)
                               : BENCH_MIN_SIZE * (1 + (i & 63));
    void *p = bench_xmalloc(size);
    bench_touch(p, size, i);
    sum += bench_read(p, size);
    free(p);
  }
  double t1 = bench_now();
  bench_report(t1 - t0, sum, n);
  return 0;
}
