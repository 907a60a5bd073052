/* xmalloc: producer/consumer among T threads. Thread i allocates its
 * objects (random sizes 16 to 1024 B) in batches of BATCH, writes into them,
 * and hands each batch to thread i+1 (mod T) through a bounded inbox; every
 * thread also empties its own inbox, reading and freeing what it finds. With
 * T=1 a thread frees its own objects; with T>=2 every object is freed by
 * another thread than the one that allocated it.
 *
 *   xmalloc T N          N objects allocated per thread
 *
 * Timed from the start of all threads until all have finished. */
#include "bench_threads.h"

#define BATCH 64
#define INBOX_CAP 8

typedef struct {
  uint64_t count;
  unsigned char *p[BATCH];
  size_t size[BATCH];
} batch;

typedef struct {
  batch *slot[INBOX_CAP];
  unsigned head, len;
} inbox;

typedef struct {
  int id, n;
  uint64_t quota, sum;
  char pad[64];
} targ;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t changed = PTHREAD_COND_INITIALIZER;
static inbox boxes[BENCH_MAX_THREADS];

static batch *make_batch(bench_rng *rng, uint64_t *tag, uint64_t count) {
  batch *b = bench_xmalloc(sizeof *b);
  b->count = count;
  for (uint64_t i = 0; i < count; i++) {
    size_t size = bench_rand_size(rng);
    b->p[i] = bench_xmalloc(size);
    b->size[i] = size;
    bench_touch(b->p[i], size, (*tag)++);
  }
  return b;
}

static uint64_t eat_batch(batch *b) {
  uint64_t sum = 0;
  for (uint64_t i = 0; i < b->count; i++) {
    sum += bench_read(b->p[i], b->size[i]);
    free(b->p[i]);
  }
  free(b);
  return sum;
}

static void *worker(void *arg) {
  targ *a = arg;
  bench_rng rng = {2000 + (uint64_t)a->id};
  uint64_t tag = (uint64_t)a->id << 40, made = 0, eaten = 0, sum = 0;
  inbox *mine = &boxes[a->id], *next = &boxes[(a->id + 1) % a->n];
  batch *pending = NULL;
  bench_ready();
  /* Everyone produces the same quota, so each thread receives `quota`. */
  while (made < a->quota || eaten < a->quota || pending) {
    if (!pending && made < a->quota) {
      uint64_t c = a->quota - made < BATCH ? a->quota - made : BATCH;
      pending = make_batch(&rng, &tag, c);
      made += c;
    }
    batch *got[INBOX_CAP];
    unsigned ngot = 0;
    pthread_mutex_lock(&lock);
    int progressed = 0;
    if (pending && next->len < INBOX_CAP) {
      next->slot[(next->head + next->len++) % INBOX_CAP] = pending;
      pending = NULL;
      progressed = 1;
    }
    while (mine->len) {
      got[ngot++] = mine->slot[mine->head];
      mine->head = (mine->head + 1) % INBOX_CAP;
      mine->len--;
    }
    if (progressed || ngot) pthread_cond_broadcast(&changed);
    else if (eaten < a->quota || pending) pthread_cond_wait(&changed, &lock);
    pthread_mutex_unlock(&lock);
    for (unsigned i = 0; i < ngot; i++) {
      eaten += got[i]->count;
      sum += eat_batch(got[i]);
    }
  }
  a->sum = sum;
  return NULL;
}

int main(int argc, char **argv) {
  int n = (int)bench_arg_u64(argc, argv, 1, 2);
  uint64_t quota = bench_arg_u64(argc, argv, 2, 1000000);
  static targ args[BENCH_MAX_THREADS];
  for (int i = 0; i < n && i < BENCH_MAX_THREADS; i++)
    args[i] = (targ){.id = i, .n = n, .quota = quota};
  double t = bench_run_threads(n, worker, args, sizeof args[0]);
  uint64_t sum = 0;
  for (int i = 0; i < n; i++) sum += args[i].sum;
  bench_report(t, sum, quota * (uint64_t)n);
  return 0;
}
