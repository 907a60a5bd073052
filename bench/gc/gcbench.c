/* GCBench (John Ellis and Pete Kovac's benchmark, as in Boehm's GCBench.c) on a
 * garbage collector: bench/gc/gc_api.h picks gcmalloc or Boehm at compile time.
 *
 *   gcbench-<collector> [SCALE]
 *
 * A stretch tree of depth 18 (dropped); then a long-lived tree of depth 16 and a
 * long-lived array of 500000 doubles (pointer-free), kept to the end; then for
 * d = 4, 6, ..., 16: 2 * size(18) / size(d) trees of depth d built top-down
 * (a node, then its children) and as many built bottom-up, all dropped. Nodes
 * are two pointers and two ints (24 bytes). SCALE (default 1) repeats the
 * d = 4..16 phase SCALE times.
 *
 * Self-check (exit 1 on failure): every node holds a tag saying which tree it
 * belongs to and its depth; after each phase the long-lived tree is walked
 * (node count, tags, depths) and the array compared with 1/i, and the last tree
 * of each kind is walked too. A collector that reclaims live nodes, whose memory
 * is then reused by the temporary trees, changes their tags.
 *   RESULT workload=gcbench collector=... time_s=... pause_max_ms=... ...
 */
#define _GNU_SOURCE
#include "gc_api.h"

enum { kStretchTreeDepth = 18, kLongLivedTreeDepth = 16, kArraySize = 500000, kMinTreeDepth = 4,
       kMaxTreeDepth = 16 };
enum { TAG_LONG = 0x4c4f4e47, TAG_TOPDOWN = 0x544f5044, TAG_BOTTOMUP = 0x424f5455, TAG_STRETCH = 0x53545245 };

typedef struct node {
  struct node *left, *right;
  int i, j; /* i: the node's depth (leaves 0), j: its tree's tag */
} node;

static long tree_size(int depth) { return (1L << (depth + 1)) - 1; }
static long num_iters(int depth) { return 2 * tree_size(kStretchTreeDepth) / tree_size(depth); }

static long allocated; /* nodes */

static node *new_node(node *l, node *r, int depth, int tag) {
  node *n = GCB_ALLOC(sizeof(node));
  allocated++;
  n->left = l;
  n->right = r;
  n->i = depth;
  n->j = tag;
  return n;
}

/* Top-down: n exists; give it children, then fill them in. */
static void populate(int depth, node *n, int tag) {
  if (depth <= 0) return;
  depth--;
  n->left = new_node(NULL, NULL, depth, tag);
  n->right = new_node(NULL, NULL, depth, tag);
  populate(depth, n->left, tag);
  populate(depth, n->right, tag);
}

/* Bottom-up: the children first. */
static node *make_tree(int depth, int tag) {
  if (depth <= 0) return new_node(NULL, NULL, 0, tag);
  node *l = make_tree(depth - 1, tag);
  node *r = make_tree(depth - 1, tag);
  return new_node(l, r, depth, tag);
}

/* Node count; every node must carry tag and its depth. */
static long walk(const node *n, int depth, int tag, const char *what) {
  if (!n) gcb_fail("%s tree: missing node at depth %d", what, depth);
  if (n->j != tag || n->i != depth)
    gcb_fail("%s tree: node %p has tag %#x depth %d, expected %#x depth %d (live node reclaimed and reused?)",
             what, (const void *)n, (unsigned)n->j, n->i, (unsigned)tag, depth);
  if (depth == 0) {
    if (n->left || n->right) gcb_fail("%s tree: leaf %p has children", what, (const void *)n);
    return 1;
  }
  return 1 + walk(n->left, depth - 1, tag, what) + walk(n->right, depth - 1, tag, what);
}

static void check_tree(const node *n, int depth, int tag, const char *what) {
  long c = walk(n, depth, tag, what);
  if (c != tree_size(depth)) gcb_fail("%s tree of depth %d: %ld nodes, expected %ld", what, depth, c, tree_size(depth));
}

static void check_array(const double *a) {
  for (int i = 1; i < kArraySize; i++)
    if (a[i] != 1.0 / i) gcb_fail("long-lived array: a[%d] = %g, expected %g (reclaimed and reused?)", i, a[i], 1.0 / i);
}

static void time_construction(int depth, uint64_t *checksum) {
  long iters = num_iters(depth);
  node *t = NULL;
  for (long i = 0; i < iters; i++) {
    t = new_node(NULL, NULL, depth, TAG_TOPDOWN);
    populate(depth, t, TAG_TOPDOWN);
  }
  check_tree(t, depth, TAG_TOPDOWN, "top-down");
  t = NULL;
  for (long i = 0; i < iters; i++) t = make_tree(depth, TAG_BOTTOMUP);
  check_tree(t, depth, TAG_BOTTOMUP, "bottom-up");
  *checksum = *checksum * 31 + (uint64_t)(2 * iters * tree_size(depth));
}

int main(int argc, char **argv) {
  int scale = argc > 1 ? atoi(argv[1]) : 1;
  if (argc > 2 || scale < 1) {
    fprintf(stderr, "usage: %s [SCALE]\n", argv[0]);
    return 2;
  }
  GCB_INIT();
  uint64_t t0 = gcb_now_ns();
  uint64_t checksum = 0;

  /* Stretch the heap. */
  node *t = make_tree(kStretchTreeDepth, TAG_STRETCH);
  check_tree(t, kStretchTreeDepth, TAG_STRETCH, "stretch");
  t = NULL;

  /* The long-lived data. */
  node *long_lived = new_node(NULL, NULL, kLongLivedTreeDepth, TAG_LONG);
  populate(kLongLivedTreeDepth, long_lived, TAG_LONG);
  double *array = GCB_ALLOC_NOSCAN(sizeof(double) * kArraySize);
  array[0] = 0;
  for (int i = 1; i < kArraySize; i++) array[i] = 1.0 / i;

  for (int r = 0; r < scale; r++) {
    for (int d = kMinTreeDepth; d <= kMaxTreeDepth; d += 2) {
      time_construction(d, &checksum);
      check_tree(long_lived, kLongLivedTreeDepth, TAG_LONG, "long-lived");
    }
    check_array(array);
  }
  double secs = (double)(gcb_now_ns() - t0) / 1e9;

  struct gcb_stats s;
  gcb_get_stats(&s);
  gcb_check_collected(&s, (double)allocated * sizeof(node));
  printf("RESULT workload=gcbench scale=%d", scale);
  gcb_print_common(secs, &s);
  printf(" live_mb=%.1f checksum=%llu\n",
         (tree_size(kLongLivedTreeDepth) * sizeof(node) + sizeof(double) * kArraySize) / 1048576.0,
         (unsigned long long)checksum);
  return 0;
}
