/* Remote frees while the owner reloads its span cache, by freeing threads
 * that come and go. A non-owner once read the owner's cacheWord and
 * allocCache as a torn pair and reported a false "double free" (bench/micro's
 * free-from-another-thread case found it). */
#include <criterion/criterion.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <malloc.h>
#include <stdlib.h>

#define CAP 1024
static void *slots[CAP];
static _Atomic uint64_t tail, head;
static _Atomic int done;

static void *freer(void *arg) {
    uint64_t h = 0;
    for (;;) {
        uint64_t t = atomic_load(&tail);
        if (h == t) {
            if (atomic_load(&done) && h == atomic_load(&tail)) break;
            sched_yield();
            continue;
        }
        while (h < t) {
            size_t usable = malloc_usable_size(slots[h % CAP]); /* also a non-owner read */
            cr_assert_geq(usable, 16);
            free(slots[h++ % CAP]);
        }
        atomic_store(&head, h);
    }
    return arg;
}

Test(remote_free_churn, freeing_threads_come_and_go) {
    for (int r = 0; r < 150; r++) {
        atomic_store(&tail, 0);
        atomic_store(&head, 0);
        atomic_store(&done, 0);
        pthread_t th;
        pthread_create(&th, NULL, freer, NULL);
        for (uint64_t t = 0; t < 20000; t++) {
            char *p = malloc(16 + (t % 4) * 16);
            p[0] = 1;
            while (t - atomic_load(&head) >= CAP) sched_yield();
            slots[t % CAP] = p;
            atomic_store(&tail, t + 1);
        }
        atomic_store(&done, 1);
        pthread_join(th, NULL);
    }
}
