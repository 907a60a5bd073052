/* larson: server-like churn. Each of T threads owns SLOTS live objects;
 * each step frees a random one and allocates a new one of random size (16 to
 * 1024 B). Every XCHG steps the thread swaps a window of XCHG_WIN of its
 * objects with a shared mailbox, so objects are freed by other threads than
 * the ones that allocated them (server threads handing requests around).
 *
 *   larson T STEPS [SLOTS]     STEPS per thread (default SLOTS 1000)
 *
 * The checksum sums what each object holds when it is freed: every object
 * is freed exactly once, so the sum does not depend on the allocator or on
 * which thread frees what. */
#include "bench_threads.h"

#define XCHG 64
#define XCHG_WIN 16

typedef bench_obj obj;

typedef struct {
  pthread_mutex_t lock;
  obj *objs; /* SLOTS objects */
} mailbox;

typedef struct {
  int id, n;
  uint64_t steps, slots, sum;
  obj *own;
  char pad[64];
} targ;

static mailbox boxes[BENCH_MAX_THREADS];

static uint64_t release(obj *o) { return bench_obj_free(o); }

static void acquire(obj *o, bench_rng *rng, uint64_t tag) {
  bench_obj_new(o, bench_rand_size(rng), tag);
  /* a server fills in part of what it allocates */
  size_t fill = o->size < 64 ? o->size - 1 : 63;
  memset(o->p + 1, (int)(tag & 0x7f), fill > 1 ? fill - 1 : 0);
}

static void *worker(void *arg) {
  targ *a = arg;
  bench_rng rng = {1000 + (uint64_t)a->id};
  uint64_t tag = (uint64_t)a->id << 40, sum = 0;
  a->own = bench_xmalloc(a->slots * sizeof(obj));
  boxes[a->id].objs = bench_xmalloc(a->slots * sizeof(obj));
  for (uint64_t i = 0; i < a->slots; i++) acquire(&a->own[i], &rng, tag++);
  for (uint64_t i = 0; i < a->slots; i++) acquire(&boxes[a->id].objs[i], &rng, tag++);
  bench_ready();

  for (uint64_t s = 0; s < a->steps; s++) {
    obj *o = &a->own[bench_rng_next(&rng) % a->slots];
    sum += release(o);
    acquire(o, &rng, tag++);
    if (s % XCHG == XCHG - 1) {
      mailbox *b = &boxes[(a->id + 1 + s / XCHG) % a->n];
      uint64_t at = bench_rng_next(&rng) % (a->slots - XCHG_WIN + 1);
      pthread_mutex_lock(&b->lock);
      for (uint64_t i = at; i < at + XCHG_WIN; i++) {
        obj t = a->own[i];
        a->own[i] = b->objs[i];
        b->objs[i] = t;
      }
      pthread_mutex_unlock(&b->lock);
    }
  }
  a->sum = sum;
  return NULL;
}

int main(int argc, char **argv) {
  int n = (int)bench_arg_u64(argc, argv, 1, 2);
  uint64_t steps = bench_arg_u64(argc, argv, 2, 1000000);
  uint64_t slots = bench_arg_u64(argc, argv, 3, 1000);
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
    for (uint64_t k = 0; k < slots; k++) sum += release(&args[i].own[k]) + release(&boxes[i].objs[k]);
    free(args[i].own);
    free(boxes[i].objs);
  }
  bench_report(t, sum, steps * (uint64_t)n);
  return 0;
}
