/*
 * leak.c - see leak.h.
 *
 * Leaks are grouped by allocation stack when stacks are recorded
 * (gc/stacks.h), by requested size otherwise. The groups live in a fixed
 * open-addressing table (the scan runs with the world stopped: no
 * allocation), and the report is formatted with the os.h formatters and
 * write(2): it runs at exit, after the program may have broken stdio. Frames
 * are named with dladdr, which does not allocate.
 */
#include "leak.h"
#include "stacks.h"
#include "alloc/mheap.h"
#include "alloc/os.h"

#include <dlfcn.h>

#define LEAK_GROUPS 4096 /* distinct keys tracked; the rest count as one group */
#define LEAK_SHOWN 10

typedef struct group {
    uint64_t key; /* a stack id when by_stack, else the requested size */
    size_t count, bytes;
} group;

static group groups[LEAK_GROUPS];
static size_t ngroups, other_count, other_bytes;
static size_t leak_objects, leak_bytes;
static bool by_stack; /* how the last scan grouped */

static void add(size_t size, uint32_t stack) {
    leak_objects++;
    leak_bytes += size;
    uint64_t key = by_stack ? stack : size;
    size_t h = (key * 0x9e3779b97f4a7c15ull) >> 52; /* 12 bits */
    for (size_t i = 0; i < LEAK_GROUPS; i++, h = (h + 1) & (LEAK_GROUPS - 1)) {
        group *g = &groups[h];
        if (g->count == 0) {
            if (ngroups * 4 >= LEAK_GROUPS * 3) break;
            g->key = key;
            ngroups++;
        } else if (g->key != key) {
            continue;
        }
        g->count++;
        g->bytes += size;
        return;
    }
    other_count++;
    other_bytes += size;
}

static void scan_span(mspan *s, void *ctx) {
    if (mspan_is_large(s)) {
        if ((s->allocBits[0] & 1) && !(s->gcmarkBits[0] & 1)) add(s->reqsize, s->stackid);
        return;
    }
    for (size_t w = 0; w < s->nwords; w++) {
        for (uint64_t lost = mspan_allocated_word(s, w) & ~s->gcmarkBits[w]; lost; lost &= lost - 1) {
            size_t idx = w * 64 + (size_t)__builtin_ctzll(lost);
            uint32_t req = s->reqsizes ? s->reqsizes[idx] : 0;
            add(req ? req : s->elemsize, s->stackids ? s->stackids[idx] : 0);
        }
    }
}

size_t gcm_leak_scan_count(void) { return leak_objects; }

size_t gcm_leak_scan(void) {
    for (size_t i = 0; i < LEAK_GROUPS; i++) groups[i].count = groups[i].bytes = 0;
    ngroups = other_count = other_bytes = leak_objects = leak_bytes = 0;
    by_stack = GCM_LOAD(&gcm_stacks_on);
    gcm_mheap_each_span(scan_span, NULL);
    return leak_objects;
}

/* "    #k 0xPC func+0xOFF (module)"; without a symbol "?? (module+0xOFF)". */
static size_t fmt_frame(char *buf, size_t n, size_t cap, size_t k, uintptr_t pc) {
    n = gcm_fmt_str(buf, n, cap, "    #");
    n = gcm_fmt_dec(buf, n, cap, k);
    n = gcm_fmt_str(buf, n, cap, " ");
    n = gcm_fmt_hex(buf, n, cap, pc);
    Dl_info info;
    if (!dladdr((void *)pc, &info) || !info.dli_fname) return gcm_fmt_str(buf, n, cap, " ??\n");
    if (info.dli_sname && info.dli_saddr) {
        n = gcm_fmt_str(buf, n, cap, " ");
        n = gcm_fmt_str(buf, n, cap, info.dli_sname);
        n = gcm_fmt_str(buf, n, cap, "+");
        n = gcm_fmt_hex(buf, n, cap, pc - (uintptr_t)info.dli_saddr);
        n = gcm_fmt_str(buf, n, cap, " (");
        n = gcm_fmt_str(buf, n, cap, info.dli_fname);
    } else {
        n = gcm_fmt_str(buf, n, cap, " ?? (");
        n = gcm_fmt_str(buf, n, cap, info.dli_fname);
        n = gcm_fmt_str(buf, n, cap, "+");
        n = gcm_fmt_hex(buf, n, cap, pc - (uintptr_t)info.dli_fbase);
    }
    return gcm_fmt_str(buf, n, cap, ")\n");
}

/* "<a><x><b><y><c>": every line of the report is counts between words. */
static size_t fmt_counts(char *buf, size_t cap, const char *a, size_t x, const char *b, size_t y, const char *c) {
    size_t n = gcm_fmt_str(buf, 0, cap, a);
    n = gcm_fmt_dec(buf, n, cap, x);
    n = gcm_fmt_str(buf, n, cap, b);
    n = gcm_fmt_dec(buf, n, cap, y);
    return gcm_fmt_str(buf, n, cap, c);
}

static void print_group(int fd, const group *g) {
    char buf[4096];
    size_t n = fmt_counts(buf, sizeof buf, "gcmalloc:   ", g->bytes, " bytes in ", g->count, "");
    if (!by_stack) {
        n = gcm_fmt_str(buf, n, sizeof buf, " objects of ");
        n = gcm_fmt_dec(buf, n, sizeof buf, g->key);
        n = gcm_fmt_str(buf, n, sizeof buf, " bytes\n");
    } else {
        const uintptr_t *pcs;
        size_t depth = gcm_stack_frames((uint32_t)g->key, &pcs);
        n = gcm_fmt_str(buf, n, sizeof buf, depth ? " objects allocated from:\n" : " objects with no recorded stack\n");
        for (size_t k = 0; k < depth; k++) n = fmt_frame(buf, n, sizeof buf, k, pcs[k]);
    }
    gcm_os_write(fd, buf, n);
}

void gcm_leak_print(int fd) {
    char buf[128];
    size_t n = fmt_counts(buf, sizeof buf, "gcmalloc: leaks: ", leak_objects, " objects, ", leak_bytes, " bytes\n");
    gcm_os_write(fd, buf, n);
    /* The largest groups by bytes: a selection, LEAK_SHOWN times. */
    bool shown[LEAK_GROUPS] = {false};
    for (int k = 0; k < LEAK_SHOWN; k++) {
        size_t best = LEAK_GROUPS;
        for (size_t i = 0; i < LEAK_GROUPS; i++) {
            if (!groups[i].count || shown[i]) continue;
            if (best == LEAK_GROUPS || groups[i].bytes > groups[best].bytes) best = i;
        }
        if (best == LEAK_GROUPS) break;
        shown[best] = true;
        print_group(fd, &groups[best]);
    }
    if (other_count) {
        n = fmt_counts(buf, sizeof buf, "gcmalloc:   ", other_bytes, " bytes in ", other_count,
                       by_stack ? " objects of other stacks\n" : " objects of other sizes\n");
        gcm_os_write(fd, buf, n);
    }
}
