/* large: big blocks, 256 KiB to 16 MiB.
 *
 *   large alloc N     8 live blocks; each of N steps frees a random one and
 *                     allocates a new one, size log-uniform in 256 KiB-16 MiB,
 *                     writing one byte in every 4 KiB page and both ends.
 *   large realloc N   N times: malloc 256 KiB, grow it by 1/4 at a time with
 *                     realloc up to 16 MiB, writing the new pages at each
 *                     step and checking that the old contents moved along.
 * Exit status 3 if realloc lost data. */
#include "bench_threads.h"

#define MIN_LARGE (256u << 10)
#define MAX_LARGE (16u << 20)
#define PAGE 4096u

static size_t pick_large(bench_rng *r) {
  /* log-uniform: 2^(18 + u*6), u in [0,1) on a 1/1024 grid */
  uint64_t u = bench_rng_next(r) % 6144;
  size_t s = (size_t)MIN_LARGE << (u / 1024);
  return s + (size_t)((double)s * (double)(u % 1024) / 1024.0 * 0.999);
}

static void fill_pages(unsigned char *p, size_t from, size_t to, uint64_t tag) {
  for (size_t off = from; off < to; off += PAGE) p[off] = (unsigned char)(tag + off / PAGE);
  p[to - 1] = (unsigned char)(tag >> 3);
}

static uint64_t sum_pages(const unsigned char *p, size_t size) {
  uint64_t v = size;
  for (size_t off = 0; off < size; off += PAGE) v += p[off];
  return v + p[size - 1];
}

int main(int argc, char **argv) {
  const char *mode = argc > 1 ? argv[1] : "";
  uint64_t n = bench_arg_u64(argc, argv, 2, 1000);
  bench_rng rng = {42};
  uint64_t sum = 0, ops = 0;
  if (strcmp(mode, "alloc") == 0) {
    enum { LIVE = 8 };
    unsigned char *p[LIVE] = {0};
    size_t sz[LIVE] = {0};
    double t0 = bench_now();
    for (uint64_t s = 0; s < n; s++) {
      unsigned k = (unsigned)(bench_rng_next(&rng) % LIVE);
      if (p[k]) {
        sum += sum_pages(p[k], sz[k]);
        free(p[k]);
      }
      sz[k] = pick_large(&rng);
      p[k] = bench_xmalloc(sz[k]);
      fill_pages(p[k], 0, sz[k], s);
      ops++;
    }
    double t1 = bench_now();
    for (int k = 0; k < LIVE; k++)
      if (p[k]) {
        sum += sum_pages(p[k], sz[k]);
        free(p[k]);
      }
    bench_report(t1 - t0, sum, ops);
    return 0;
  }
  if (strcmp(mode, "realloc") == 0) {
    double t0 = bench_now();
    for (uint64_t r = 0; r < n; r++) {
      size_t size = MIN_LARGE;
      unsigned char *p = bench_xmalloc(size);
      fill_pages(p, 0, size, r);
      ops++;
      while (size < MAX_LARGE) {
        size_t ns = size + size / 4;
        if (ns > MAX_LARGE) ns = MAX_LARGE;
        uint64_t before = sum_pages(p, size);
        unsigned char *q = realloc(p, ns);
        if (!q) {
          fprintf(stderr, "realloc(%zu) failed\n", ns);
          return 2;
        }
        if (sum_pages(q, size) != before) {
          fprintf(stderr, "realloc lost data growing %zu -> %zu\n", size, ns);
          return 3;
        }
        p = q;
        /* the old last byte is overwritten as page data continues */
        fill_pages(p, (size + PAGE - 1) / PAGE * PAGE, ns, r + ns);
        size = ns;
        ops++;
      }
      sum += sum_pages(p, size);
      free(p);
    }
    double t1 = bench_now();
    bench_report(t1 - t0, sum, ops);
    return 0;
  }
  fprintf(stderr, "usage: %s alloc N | realloc N\n", argv[0]);
  return 2;
}
