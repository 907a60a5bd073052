/* Pause probe: how long a full collection stops the program with a large live
 * heap, on either collector (bench/gc/gc_api.h picks gcmalloc or Boehm).
 *
 *   pause-<collector> MIB alloc|shuffled [COLLECTIONS [GARBAGE_MIB]]
 *
 * Builds a singly linked list of MIB MiB of 32-byte nodes (next pointer, list
 * position, allocation index, check word), allocated one by one and linked
 * - alloc:    in allocation order (the marker walks the heap mostly in address order);
 * - shuffled: in a random order (a fixed-seed permutation: the marker follows a
 *             pointer to a random place in the heap at every node).
 * While the list is built it is linked in allocation order, so it is live for
 * any collection that happens then; the shuffled variant records the nodes in a
 * temporary array outside the collected heap (mmap: neither collector scans it),
 * permutes it and relinks the nodes, then unmaps it (its 8 bytes per node count
 * in peak RSS, alike for both collectors).
 *
 * Then COLLECTIONS (default 3) forced full collections (gcm_collect / GC_gcollect),
 * each timed, each followed by GARBAGE_MIB (default 16) MiB of unreachable nodes of
 * the same size, which reuse whatever the collection freed. Finally the whole list
 * is walked: length, positions, allocation indexes (a permutation) and check words
 * must all be right, or the program fails (exit 1): a collector that freed live
 * nodes has had them overwritten by the garbage.
 *
 *   RESULT workload=pause live_mib=.. order=.. collector=.. time_s=.. pause_max_ms=..
 *          pause_total_ms=.. gcs=.. self_hwm_kib=.. forced_pause_max_ms=..
 *          forced_pause_median_ms=.. forced_pause_min_ms=.. forced_wall_max_ms=..
 *          mark_rate_gbs=.. build_s=.. heap_live_mib=.. checksum=..
 * pause_max_ms is the longest pause of the whole run (including the automatic
 * collections while the list grew); mark_rate_gbs = live bytes (MIB MiB, the
 * requested node sizes) / the median forced pause, in 10^9 bytes per second.
 */
#define _GNU_SOURCE
#include <sys/mman.h>

#include "gc_api.h"

typedef struct node {
  struct node *next;
  uint64_t pos; /* position in the list */
  uint64_t idx; /* allocation index */
  uint64_t chk; /* mix(pos, idx) */
} node;

_Static_assert(sizeof(node) == 32, "32-byte nodes");

#define GARBAGE_TAG 0xdeadbeefdeadbeefull

/* Small values only in the payload: no word of it looks like a heap pointer. */
static inline uint64_t mix(uint64_t pos, uint64_t idx) {
  uint64_t z = pos * 0x9e3779b97f4a7c15ull ^ idx;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  return (z ^ (z >> 27)) & 0xffffffffull;
}

static uint64_t rng_state = 0x123456789abcdefull;
static inline uint64_t rng_next(void) { /* splitmix64 */
  uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

/* The list's head, also in a global: a root wherever the compiler keeps the local. */
static node *volatile g_head;

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

static void make_garbage(size_t count) {
  for (size_t i = 0; i < count; i++) {
    node *g = GCB_ALLOC(sizeof(node));
    g->next = NULL;
    g->pos = g->idx = GARBAGE_TAG;
    g->chk = GARBAGE_TAG;
  }
}

int main(int argc, char **argv) {
  if (argc < 3 || argc > 5 || (strcmp(argv[2], "alloc") != 0 && strcmp(argv[2], "shuffled") != 0)) {
    fprintf(stderr, "usage: %s MIB alloc|shuffled [COLLECTIONS [GARBAGE_MIB]]\n", argv[0]);
    return 2;
  }
  long mib = atol(argv[1]);
  int shuffled = strcmp(argv[2], "shuffled") == 0;
  int ncoll = argc > 3 ? atoi(argv[3]) : 3;
  long garbage_mib = argc > 4 ? atol(argv[4]) : 16;
  if (mib < 1 || ncoll < 1 || ncoll > 100 || garbage_mib < 0) {
    fprintf(stderr, "bad arguments\n");
    return 2;
  }
  const size_t n = (size_t)mib * 1048576 / sizeof(node);
  const size_t garbage = (size_t)garbage_mib * 1048576 / sizeof(node);

  GCB_INIT();
  uint64_t t0 = gcb_now_ns();

  node **arr = NULL;
  size_t arr_bytes = n * sizeof(node *);
  if (shuffled) {
    arr = mmap(NULL, arr_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (arr == MAP_FAILED) gcb_fail("mmap of %zu bytes failed", arr_bytes);
  }

  /* Build, linked in allocation order. */
  node *head = NULL, *tail = NULL;
  for (size_t i = 0; i < n; i++) {
    node *x = GCB_ALLOC(sizeof(node));
    x->next = NULL;
    x->pos = i;
    x->idx = i;
    x->chk = mix(i, i);
    if (tail) tail->next = x;
    else g_head = head = x;
    tail = x;
    if (arr) arr[i] = x;
  }
  tail = NULL;

  if (shuffled) {
    /* Fisher-Yates, then relink in the permuted order (no allocation meanwhile,
     * so no collection sees the list half relinked). */
    for (size_t i = n - 1; i > 0; i--) {
      size_t j = (size_t)(rng_next() % (i + 1));
      node *t = arr[i];
      arr[i] = arr[j];
      arr[j] = t;
    }
    for (size_t p = 0; p < n; p++) {
      node *x = arr[p];
      x->next = p + 1 < n ? arr[p + 1] : NULL;
      x->pos = p;
      x->chk = mix(p, x->idx);
    }
    g_head = head = arr[0];
    munmap(arr, arr_bytes);
    arr = NULL;
  }
  double build_s = (double)(gcb_now_ns() - t0) / 1e9;

  /* Forced collections while the whole list is live. */
  uint64_t *pause = calloc((size_t)ncoll, sizeof *pause);
  uint64_t wall_max = 0;
  if (!pause) gcb_fail("calloc");
  for (int k = 0; k < ncoll; k++) {
    struct gcb_stats before, after;
    gcb_get_stats(&before);
    uint64_t w0 = gcb_now_ns();
    GCB_COLLECT();
    uint64_t w = gcb_now_ns() - w0;
    gcb_get_stats(&after);
    if (after.cycles <= before.cycles) gcb_fail("forced collection %d: the collector reports no completed cycle", k + 1);
    if (after.cycles - before.cycles > 1)
      gcb_fail("forced collection %d: %llu cycles completed, expected 1", k + 1,
               (unsigned long long)(after.cycles - before.cycles));
    pause[k] = after.pause_total_ns - before.pause_total_ns;
    if (w > wall_max) wall_max = w;
    fprintf(stderr, "collection %d: pause %.3f ms (wall %.3f ms)\n", k + 1, pause[k] / 1e6, w / 1e6);
    make_garbage(garbage);
  }
  double heap_live = gcb_heap_live_mib();

  /* Verify the list. */
  uint64_t count = 0, idx_sum = 0, idx_xor = 0, checksum = 0;
  for (const node *x = head; x; x = x->next) {
    if (count >= n) gcb_fail("list longer than %zu nodes (a cycle: live nodes reclaimed and reused?)", n);
    if (x->pos != count || x->idx >= n || x->chk != mix(x->pos, x->idx) || (!shuffled && x->idx != count))
      gcb_fail("node %llu of the list (%p): pos %#llx idx %#llx chk %#llx (live node reclaimed and reused?)",
               (unsigned long long)count, (const void *)x, (unsigned long long)x->pos,
               (unsigned long long)x->idx, (unsigned long long)x->chk);
    idx_sum += x->idx;
    idx_xor ^= x->idx * 0x9e3779b97f4a7c15ull;
    checksum = checksum * 31 + x->idx;
    count++;
  }
  uint64_t want_xor = 0;
  for (uint64_t i = 0; i < n; i++) want_xor ^= i * 0x9e3779b97f4a7c15ull;
  if (count != n) gcb_fail("list has %llu nodes, expected %zu", (unsigned long long)count, n);
  if (idx_sum != (uint64_t)n * (n - 1) / 2 || idx_xor != want_xor)
    gcb_fail("the allocation indexes in the list are not a permutation of 0..%zu", n - 1);
  double secs = (double)(gcb_now_ns() - t0) / 1e9;
  g_head = head = NULL;

  qsort(pause, (size_t)ncoll, sizeof *pause, cmp_u64);
  double med = ncoll % 2 ? (double)pause[ncoll / 2] : (pause[ncoll / 2 - 1] + pause[ncoll / 2]) / 2.0;
  double live_bytes = (double)n * sizeof(node);
  struct gcb_stats s;
  gcb_get_stats(&s);
  printf("RESULT workload=pause live_mib=%ld order=%s", mib, shuffled ? "shuffled" : "alloc");
  gcb_print_common(secs, &s);
  printf(" forced_pause_max_ms=%.3f forced_pause_median_ms=%.3f forced_pause_min_ms=%.3f forced_wall_max_ms=%.3f"
         " mark_rate_gbs=%.4f build_s=%.3f heap_live_mib=%.1f live_mb=%.1f checksum=%llu\n",
         pause[ncoll - 1] / 1e6, med / 1e6, pause[0] / 1e6, wall_max / 1e6,
         med > 0 ? live_bytes / med : 0.0, build_s, heap_live, live_bytes / 1048576.0,
         (unsigned long long)checksum);
  free(pause);
  return 0;
}
