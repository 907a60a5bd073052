/* binary-trees (the Computer Language Benchmarks Game's, single-threaded) on a
 * garbage collector: bench/gc/gc_api.h picks gcmalloc or Boehm at compile time.
 *
 *   binary_trees-<collector> DEPTH
 *
 * A stretch tree of depth DEPTH+1, a long-lived tree of depth DEPTH kept to the
 * end, and for d = 4, 6, ..., DEPTH: 2^(DEPTH-d+4) temporary trees of depth d,
 * each built bottom-up, walked (node count) and dropped. Nodes are two pointers
 * (16 bytes), never freed: the collector reclaims them.
 *
 * Self-check: every walk must count exactly 2^(d+1)-1 nodes, the long-lived tree
 * still has its nodes at the end (so a collector that frees live nodes, whose
 * memory then becomes other trees, fails: exit 1), and collections ran if the
 * program allocated 128 MiB or more (depth 16 and up).
 * Prints the benchmark's usual lines, then one line for bench/gc_run.py:
 *   RESULT workload=binary-trees depth=N collector=... time_s=... pause_max_ms=...
 *          pause_total_ms=... gcs=... self_hwm_kib=... live_mb=... checksum=...
 */
#define _GNU_SOURCE
#include "gc_api.h"

typedef struct node {
  struct node *left, *right;
} node;

static long allocated; /* nodes */

static node *bottom_up(int depth) {
  node *n = GCB_ALLOC(sizeof(node));
  allocated++;
  if (depth > 0) {
    n->left = bottom_up(depth - 1);
    n->right = bottom_up(depth - 1);
  } else {
    n->left = n->right = NULL;
  }
  return n;
}

/* Node count; a node with one child only is a corrupted tree. */
static long check(const node *n) {
  if (!n->left) {
    if (n->right) gcb_fail("corrupted tree: node %p has a right child but no left one", (const void *)n);
    return 1;
  }
  if (!n->right) gcb_fail("corrupted tree: node %p has a left child but no right one", (const void *)n);
  return 1 + check(n->left) + check(n->right);
}

static void expect(const char *what, int depth, long got, long want) {
  if (got != want) gcb_fail("%s of depth %d: check %ld, expected %ld (live nodes reclaimed?)", what, depth, got, want);
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s DEPTH\n", argv[0]);
    return 2;
  }
  const int min_depth = 4;
  int max_depth = atoi(argv[1]);
  if (max_depth < min_depth + 2) max_depth = min_depth + 2;
  if (max_depth > 30) {
    fprintf(stderr, "depth %d: too deep\n", max_depth);
    return 2;
  }

  GCB_INIT();
  uint64_t t0 = gcb_now_ns();
  uint64_t checksum = 0;

  int stretch = max_depth + 1;
  long c = check(bottom_up(stretch));
  expect("stretch tree", stretch, c, (2L << stretch) - 1);
  printf("stretch tree of depth %d\t check: %ld\n", stretch, c);
  checksum += (uint64_t)c;

  node *long_lived = bottom_up(max_depth);

  for (int d = min_depth; d <= max_depth; d += 2) {
    long iters = 1L << (max_depth - d + min_depth);
    long sum = 0;
    for (long i = 0; i < iters; i++) {
      long k = check(bottom_up(d));
      expect("temporary tree", d, k, (2L << d) - 1);
      sum += k;
    }
    printf("%ld\t trees of depth %d\t check: %ld\n", iters, d, sum);
    checksum = checksum * 31 + (uint64_t)sum;
  }

  c = check(long_lived);
  expect("long lived tree", max_depth, c, (2L << max_depth) - 1);
  printf("long lived tree of depth %d\t check: %ld\n", max_depth, c);
  checksum = checksum * 31 + (uint64_t)c;
  double secs = (double)(gcb_now_ns() - t0) / 1e9;

  struct gcb_stats s;
  gcb_get_stats(&s);
  gcb_check_collected(&s, (double)allocated * sizeof(node));
  printf("RESULT workload=binary-trees depth=%d", max_depth);
  gcb_print_common(secs, &s);
  printf(" live_mb=%.1f checksum=%llu\n", (double)((2L << max_depth) - 1) * sizeof(node) / 1048576.0,
         (unsigned long long)checksum);
  return 0;
}
