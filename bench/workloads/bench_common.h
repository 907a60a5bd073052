/* Shared helpers for the gcmalloc benchmark workloads.
 *
 * Every workload program:
 *   - is linked against no allocator: the driver picks one with LD_PRELOAD;
 *   - is compiled with -fno-builtin-malloc -fno-builtin-free, and touches every
 *     block it allocates, so no malloc/free pair can be optimised away;
 *   - prints key=value lines on stdout, read by bench/run.py:
 *       malloc_lib=<object that provides malloc>   (checks LD_PRELOAD took)
 *       time_s=<seconds of the measured section, CLOCK_MONOTONIC>
 *       checksum=<value that must not depend on the allocator>
 *       ops=<number of malloc calls in the measured section>
 *       self_hwm_kib=<VmHWM from /proc/self/status: peak RSS, a cross-check>
 *     Other keys may be added; the driver keeps them in the raw CSV.
 */
#ifndef GCM_BENCH_COMMON_H
#define GCM_BENCH_COMMON_H

#include <dlfcn.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BENCH_MIN_SIZE 16u
#define BENCH_MAX_SIZE 1024u

static inline double bench_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* splitmix64: tiny, fast and deterministic with a fixed seed. */
typedef struct { uint64_t s; } bench_rng;

static inline uint64_t bench_rng_next(bench_rng *r) {
  uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

/* A size in [BENCH_MIN_SIZE, BENCH_MAX_SIZE]. */
static inline size_t bench_rand_size(bench_rng *r) {
  return BENCH_MIN_SIZE + (size_t)(bench_rng_next(r) % (BENCH_MAX_SIZE - BENCH_MIN_SIZE + 1));
}

/* Write a tag into the first and last byte of a fresh block, and read it back
 * (at free time) into the checksum: the block is really used, and the sum
 * depends only on the sequence of sizes and tags, not on the allocator. */
static inline void bench_touch(void *p, size_t size, uint64_t tag) {
  unsigned char *b = p;
  b[0] = (unsigned char)tag;
  b[size - 1] = (unsigned char)(tag >> 8);
}

static inline uint64_t bench_read(const void *p, size_t size) {
  const unsigned char *b = p;
  return (uint64_t)b[0] + ((uint64_t)b[size - 1] << 1) + size;
}

static inline void *bench_xmalloc(size_t size) {
  void *p = malloc(size);
  if (!p) {
    fprintf(stderr, "malloc(%zu) failed\n", size);
    exit(2);
  }
  return p;
}

/* A block a workload allocates, uses and frees; its size travels with it.
 * bench_obj_new tags it (bench_touch), bench_obj_free reads the tag back into
 * the checksum. Workloads add their own use of the block around these. */
typedef struct {
  unsigned char *p;
  size_t size;
} bench_obj;

static inline void bench_obj_new(bench_obj *o, size_t size, uint64_t tag) {
  o->size = size;
  o->p = bench_xmalloc(size);
  bench_touch(o->p, size, tag);
}

static inline uint64_t bench_obj_free(bench_obj *o) {
  uint64_t v = bench_read(o->p, o->size);
  free(o->p);
  o->p = NULL;
  return v;
}

static inline uint64_t bench_arg_u64(int argc, char **argv, int i, uint64_t dflt) {
  if (i >= argc) return dflt;
  char *end;
  unsigned long long v = strtoull(argv[i], &end, 0);
  if (*end != '\0' || v == 0) {
    fprintf(stderr, "bad number: %s\n", argv[i]);
    exit(2);
  }
  return v;
}

/* Peak resident set of this process (KiB), or -1. */
static inline long bench_self_hwm_kib(void) {
  FILE *f = fopen("/proc/self/status", "r");
  if (!f) return -1;
  char line[256];
  long kib = -1;
  while (fgets(line, sizeof line, f))
    if (strncmp(line, "VmHWM:", 6) == 0) {
      kib = strtol(line + 6, NULL, 10);
      break;
    }
  fclose(f);
  return kib;
}

static inline void bench_report(double seconds, uint64_t checksum, uint64_t ops) {
  Dl_info info;
  void *(*m)(size_t) = malloc;
  const char *lib = "?";
  if (dladdr((void *)m, &info) && info.dli_fname) lib = info.dli_fname;
  printf("malloc_lib=%s\n", lib);
  printf("time_s=%.6f\n", seconds);
  printf("checksum=%" PRIu64 "\n", checksum);
  printf("ops=%" PRIu64 "\n", ops);
  printf("self_hwm_kib=%ld\n", bench_self_hwm_kib());
  fflush(stdout);
}

#endif
