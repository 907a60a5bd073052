/*
 * scope.c - see scope.h.
 */
#include "scope.h"
#include "mark.h"
#include "alloc/malloc.h"
#include "alloc/mheap.h"
#include "alloc/os.h"


static gthread *self(const char *fn) {
    gthread *t = gcm_tls_gthread;
    if (!t) gcm_fatal_ptr(fn, "scopes need a thread started with pthread_create (or the main thread)", NULL, "");
    return t;
}

size_t gcm_scope_open(void) {
    gthread *t = self("gcm_scope_enter()");
    if (!gcm_os_grow((void **)&t->scope_marks, &t->scope_markcap, t->scope_depth + 1, sizeof(size_t), 512))
        gcm_fatal("gcm_scope_enter(): out of memory");
    t->scope_marks[t->scope_depth] = t->scope_nobjs;
    return ++t->scope_depth;
}

/* The span and index of object p and its scope bit. */
static mspan *scope_bit(void *p, uint64_t **word, uint64_t *bit, size_t *idx) {
    mspan *s = gcm_span_of((uintptr_t)p);
    if (!s) return NULL;
    *idx = mspan_is_large(s) ? 0 : mspan_obj_index(s, (uintptr_t)p);
    *word = &s->scopeBits[*idx >> 6];
    *bit = (uint64_t)1 << (*idx & 63);
    return s;
}

bool gcm_scope_track(void *p) {
    gthread *t = gcm_tls_gthread;
    if (!t || t->scope_depth == 0) return true;
    if (!gcm_os_grow((void **)&t->scope_objs, &t->scope_objcap, t->scope_nobjs + 1, sizeof(uintptr_t), 512))
        return false;
    uint64_t *w, bit;
    size_t idx;
    mspan *s = scope_bit(p, &w, &bit, &idx);
    if (!s) return false;
    /* Before the bit: the owner's free looks at the bitmap only once
     * s->scoped is set (mspan_free_owned), and this thread owns s now. */
    __atomic_store_n(&s->scoped, 1, __ATOMIC_RELAXED);
    __atomic_fetch_or(w, bit, __ATOMIC_RELAXED);
    t->scope_objs[t->scope_nobjs] = (uintptr_t)p;
    __atomic_store_n(&t->scope_nobjs, t->scope_nobjs + 1, __ATOMIC_RELEASE);
    return true;
}

void gcm_scope_forget(void *p) {
    gthread *t = gcm_tls_gthread;
    if (!t || !p) return;
    for (size_t i = t->scope_nobjs; i-- > 0;) {
        if (t->scope_objs[i] != (uintptr_t)p) continue;
        t->scope_objs[i] = 0;
        uint64_t *w, bit;
        size_t idx;
        if (scope_bit(p, &w, &bit, &idx)) __atomic_fetch_and(w, ~bit, __ATOMIC_RELAXED);
        return;
    }
}

void gcm_scope_close(size_t token) {
    gthread *t = self("gcm_scope_exit()");
    if (token == 0 || token > t->scope_depth) {
        char detail[64];
        size_t n = gcm_fmt_str(detail, 0, sizeof detail, "(open scopes: ");
        n = gcm_fmt_dec(detail, n, sizeof detail, t->scope_depth);
        gcm_fmt_str(detail, n, sizeof detail, ")");
        gcm_fatal_ptr("gcm_scope_exit()", "not an open scope: token", (void *)token, detail);
    }
    size_t from = t->scope_marks[token - 1];
    bool remote = false;
    for (size_t i = t->scope_nobjs; i-- > from;) {
        void *p = (void *)t->scope_objs[i];
        uint64_t *w, bit;
        size_t idx;
        if (!p) continue;
        mspan *s = scope_bit(p, &w, &bit, &idx);
        /* Freed by the program meanwhile (and maybe handed out again)? */
        if (!s || !(__atomic_fetch_and(w, ~bit, __ATOMIC_RELAXED) & bit)) continue;
        if (mspan_is_large(s) ? (uintptr_t)p != s->base || !(GCM_LOAD(&s->allocBits[0]) & 1)
                              : !mspan_is_allocated(s, idx, GCM_LOAD(&s->owner) == gcm_tls_own))
            continue;
        remote |= GCM_LOAD(&s->owner) != gcm_tls_own;
        gcm_dealloc(p, "gcm_scope_exit()");
    }
    /* Objects in spans this thread no longer holds went on remote-free lists:
     * merge them now, so that they are free when the scope has exited. */
    if (remote) gcm_mheap_flush_pending();
    __atomic_store_n(&t->scope_nobjs, from, __ATOMIC_RELEASE);
    t->scope_depth = token - 1;
}

void gcm_scope_mark(gthread *t) {
    size_t n = __atomic_load_n(&t->scope_nobjs, __ATOMIC_ACQUIRE);
    const uintptr_t *objs = __atomic_load_n(&t->scope_objs, __ATOMIC_ACQUIRE);
    for (size_t i = 0; i < n; i++) gcm_mark_ptr(objs[i]);
}
