/* randmix: an alloc-test / rptest-like random mix of sizes and lifetimes.
 * Each of T threads keeps SLOTS slots; each step picks a random slot, frees
 * what is there (if anything) and, three times in four, allocates a new
 * block, so the live count wanders. Sizes: 75 % 16-256 B, 20 % 257 B-4 KiB,
 * 4.5 % 4-64 KiB, 0.5 % 64-256 KiB. Each block is written at both ends and
 * once per 4 KiB, and read back when freed. Every XCHG steps a thread swaps
 * a few slots with the next thread's mailbox (some cross-thread frees).
 *
 *   randmix T STEPS [SLOTS]    STEPS per thread (default SLOTS 4000) */
#include "bench_threads.h"

#define XCHG 256
#define XCHG_WIN 8

typedef bench_obj obj;

typedef struct {
  int id, n;
  uint64_t steps, slots, sum;
  obj *own;
  char pad[64];
} targ;

static struct {
  pthread_mutex_t lock;
  obj win[XCHG_WIN];
} boxes[BENCH_MAX_THREADS];

static size_t pick_size(bench_rng *r) {
  uint64_t c = bench_rng_next(r) % 1000;
  if (c < 750) return bench_rand_range(r, 16, 256);
  if (c < 950) return bench_rand_range(r, 257, 4096);
  if (c < 995) return bench_rand_range(r, 4097, 65536);
  return bench_rand_range(r, 65537, 262144);
}

/* Large blocks are used page by page, not just at their ends. */
static uint64_t release(obj *o) {
  if (!o->p) return 0;
  uint64_t v = 0;
  for (size_t off = 4096; off < o->size; off += 4096) v += o->p[off];
  return v + bench_obj_free(o);
}

static void acquire(obj *o, bench_rng *rng, uint64_t tag) {
  bench_obj_new(o, pick_size(rng), tag);
  for (size_t off = 4096; off < o->size; off += 4096) o->p[off] = (unsigned char)(tag + off);
}

static void *worker(void *arg) {
  targ *a = arg;
  bench_rng rng = {3000 + (uint64_t)a->id};
  uint64_t tag = (uint64_t)a->id << 40, sum = 0;
  a->own = bench_xmalloc(a->slots * sizeof(obj));
  for (uint64_t i = 0; i < a->slots; i++) {
    a->own[i].p = NULL;
    if (i % 2 == 0) acquire(&a->own[i], &rng, tag++);
  }
  bench_ready();
  for (uint64_t s = 0; s < a->steps; s++) {
    obj *o = &a->own[bench_rng_next(&rng) % a->slots];
    sum += release(o);
    if (bench_rng_next(&rng) % 4 != 0) acquire(o, &rng, tag++);
    if (s % XCHG == XCHG - 1) {
      int to = (a->id + 1) % a->n;
      uint64_t at = bench_rng_next(&rng) % (a->slots - XCHG_WIN + 1);
      pthread_mutex_lock(&boxes[to].lock);
      for (int i = 0; i < XCHG_WIN; i++) {
        obj t = a->own[at + i];
        a->own[at + i] = boxes[to].win[i];
        boxes[to].win[i] = t;
      }
      pthread_mutex_unlock(&boxes[to].lock);
    }
  }
  a->sum = sum;
  return NULL;
}

int main(int argc, char **argv) {
  int n = (int)bench_arg_u64(argc, argv, 1, 2);
  uint64_t steps = bench_arg_u64(argc, argv, 2, 1000000);
  uint64_t slots = bench_arg_u64(argc, argv, 3, 4000);
  if (slots < XCHG_WIN) slots = XCHG_WIN;
  static targ args[BENCH_MAX_THREADS];
  for (int i = 0; i < n && i < BENCH_MAX_THREADS; i++) {
    args[i] = (targ){.id = i, .n = n, .steps = steps, .slots = slots};
    pthread_mutex_init(&boxes[i].lock, NULL);
  }
  double t = bench_run_threads(n, worker, args, sizeof args[0]);
  uint64_t sum = 0;
  for (int i = 0; i < n; i++) {
    sum += args[i].sum;
    for (uint64_t k = 0; k < slots; k++) sum += release(&args[i].own[k]);
    for (int k = 0; k < XCHG_WIN; k++) sum += release(&boxes[i].win[k]);
    free(args[i].own);
  }
  bench_report(t, sum, steps * (uint64_t)n);
  return 0;
}
