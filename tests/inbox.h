/*
 * inbox.h - a bounded, mutex-protected mailbox of objects, one per thread, for
 * the stress tests that hand blocks to another thread to free (remote frees).
 *
 * The includer defines `struct obj` (what travels) and INBOX_CAP first.
 */
#ifndef GCM_TESTS_INBOX_H
#define GCM_TESTS_INBOX_H

#include <pthread.h>
#include <stdbool.h>

struct inbox {
    pthread_mutex_t mu;
    struct obj ring[INBOX_CAP];
    unsigned head, count;
};

static void inbox_init(struct inbox *b) {
    pthread_mutex_init(&b->mu, NULL);
    b->head = b->count = 0;
}

/* Post *o; false when the inbox is full (the sender keeps the object). */
static bool inbox_send(struct inbox *b, const struct obj *o) {
    bool ok = false;
    pthread_mutex_lock(&b->mu);
    if (b->count < INBOX_CAP) {
        b->ring[(b->head + b->count) % INBOX_CAP] = *o;
        b->count++;
        ok = true;
    }
    pthread_mutex_unlock(&b->mu);
    return ok;
}

/* Take up to max objects, oldest first; how many. */
static unsigned inbox_take(struct inbox *b, struct obj *out, unsigned max) {
    unsigned n = 0;
    pthread_mutex_lock(&b->mu);
    while (b->count && n < max) {
        out[n++] = b->ring[b->head];
        b->head = (b->head + 1) % INBOX_CAP;
        b->count--;
    }
    pthread_mutex_unlock(&b->mu);
    return n;
}

#endif
