/*
 * roots.c - see roots.h.
 */
#include "roots.h"
#include "mark.h"
#include "scope.h"
#include "stw.h"
#include "alloc/arena.h"
#include "alloc/mheap.h"
#include "alloc/options.h"
#include "alloc/os.h"
#include "include/gcmalloc.h"

#include <fcntl.h>
#include <unistd.h>

#include <dlfcn.h>
#include <link.h>
#include <string.h>
#include <sys/mman.h>

typedef struct range {
    uintptr_t lo, hi;
} range;

/* A growable array of ranges in OS memory (never the heap: it is written
 * while the heap is locked). */
typedef struct rangeset {
    range *r;
    size_t n, cap;
} rangeset;

static rangeset segments;   /* rebuilt by each gcm_roots_prepare */
static rangeset own_segments; /* libgcmalloc.so's, left out */
static rangeset excluded;   /* scan_maps: what not to scan again (or at all) */
static char *maps_buf;      /* scan_maps: /proc/self/maps */
static size_t maps_cap;
static rangeset registered; /* gcm_add_roots */
static size_t tls_static_size;
static bool tls_known;

static bool rs_push(rangeset *rs, uintptr_t lo, uintptr_t hi) {
    if (!gcm_os_grow((void **)&rs->r, &rs->cap, rs->n + 1, sizeof(range), 256)) return false;
    rs->r[rs->n].lo = lo;
    rs->r[rs->n].hi = hi;
    rs->n++;
    return true;
}

/* gcmalloc's own variables hold heap addresses that are not references (the
 * lowest arena's base, say). In libgcmalloc.so they are skipped with the
 * whole module; linked statically they share the program's segments, so the
 * two that matter are cut out: the arena index (32 MiB, all metadata) and the
 * marker's own state. */
static bool add_segment(uintptr_t lo, uintptr_t hi) {
    uintptr_t cut[2][2] = {{(uintptr_t)gcm_arena_index, (uintptr_t)gcm_arena_index + sizeof gcm_arena_index},
                           {gcm_mark_state_lo(), gcm_mark_state_hi()}};
    if (cut[0][0] > cut[1][0]) {
        uintptr_t t0 = cut[0][0], t1 = cut[0][1];
        cut[0][0] = cut[1][0], cut[0][1] = cut[1][1], cut[1][0] = t0, cut[1][1] = t1;
    }
    for (int i = 0; i < 2 && lo < hi; i++) {
        if (cut[i][1] <= lo || cut[i][0] >= hi) continue;
        if (lo < cut[i][0] && !rs_push(&segments, lo, cut[i][0])) return false;
        lo = cut[i][1];
    }
    return lo < hi ? rs_push(&segments, lo, hi) : true;
}

static bool holds(const struct dl_phdr_info *info, uintptr_t addr) {
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
        if (ph->p_type == PT_LOAD && addr >= lo && addr < lo + ph->p_memsz) return true;
    }
    return false;
}

static int each_object(struct dl_phdr_info *info, size_t size, void *data) {
    bool *ok = data;
    bool us = info->dlpi_name && info->dlpi_name[0] && holds(info, (uintptr_t)&gcm_arena_index);
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_W)) continue;
        uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
        if (!(us ? rs_push(&own_segments, lo, lo + ph->p_memsz) : add_segment(lo, lo + ph->p_memsz))) *ok = false;
    }
    return 0;
}

bool gcm_roots_prepare(void) {
    if (!tls_known) {
        void (*info)(size_t *, size_t *) = (void (*)(size_t *, size_t *))dlsym(RTLD_DEFAULT, "_dl_get_tls_static_info");
        size_t size = 0, align = 0;
        if (info) info(&size, &align);
        tls_static_size = size;
        tls_known = true;
    }
    segments.n = own_segments.n = 0;
    bool ok = true;
    dl_iterate_phdr(each_object, &ok);
    return ok;
}

bool gcm_roots_add(uintptr_t lo, size_t len) {
    if (len == 0) return true;
    return rs_push(&registered, lo, lo + len);
}

void gcm_roots_remove(uintptr_t lo) {
    for (size_t i = 0; i < registered.n; i++) {
        if (registered.r[i].lo == lo) {
            registered.r[i] = registered.r[--registered.n];
            return;
        }
    }
}

static bool page_mapped(uintptr_t page) {
    unsigned char v;
    return mincore((void *)page, 4096, &v) == 0;
}

/* The mapped part of [lo, hi) around `at` (which must be mapped), found page
 * by page: used for the main thread's TLS block, which ld.so allocated and
 * whose exact bounds nobody publishes. */
static void scan_mapped_around(uintptr_t at, uintptr_t lo, uintptr_t hi) {
    uintptr_t p = at & ~(uintptr_t)4095, a = p, b = p + 4096;
    while (a > lo && page_mapped(a - 4096)) a -= 4096;
    while (b < hi && page_mapped(b)) b += 4096;
    gcm_mark_range(lo > a ? lo : a, hi < b ? hi : b);
}

/* struct pthread follows the thread pointer; its size is glibc's business.
 * 4 KiB covers it (2.36: about 2.3 KiB) and is clamped to what is mapped. */
#define TCB_SCAN_BYTES 4096

static void scan_thread(gthread *t, void *ctx) {
    if (t->state == GT_STARTING) {
        gcm_mark_ptr((uintptr_t)t->start_arg);
        /* Its DTV, made by the parent: its TCB, the only reference, is not
         * scanned yet (tcbhead_t.dtv, at tp + 8, points inside the block). */
        if (t->tp) gcm_mark_ptr(((const uintptr_t *)t->tp)[1]);
        return;
    }
    uintptr_t sp = t->sp;
    /* stack_lo == 0: a starting thread whose bounds are not known yet
     * (gcm_stw_attach), scanned from its sp up to stack_hi only. */
    if (t->alt_hi) { /* stopped on a signal stack: it, and all of the stack it interrupted */
        gcm_mark_range(sp, t->alt_hi);
        if (!t->is_main && t->stack_lo) gcm_mark_range(t->stack_lo, t->stack_hi);
    } else if (sp >= t->stack_lo && sp < t->stack_hi) {
        gcm_mark_range(sp, t->stack_hi);
    } else if (!t->is_main && t->stack_lo) { /* on a stack of its own making: scan the one we know */
        gcm_mark_range(t->stack_lo, t->stack_hi);
    }
    if (t->is_main && t->tp) /* static TLS below the thread pointer, the TCB above */
        scan_mapped_around(t->tp, t->tp - tls_static_size, t->tp + TCB_SCAN_BYTES);
    /* The DTV: tcbhead_t.dtv at tp + 8 points at entry 1 of an array of
     * 16-byte entries whose entry -1 holds the length. */
    if (t->tp) {
        uintptr_t dtv = ((const uintptr_t *)t->tp)[1];
        if (dtv && (dtv & 7) == 0) {
            size_t len = ((const size_t *)dtv)[-2];
            if (len < 65536) gcm_mark_range(dtv - 16, dtv + 16 * (len + 1));
        }
    }
    gcm_scope_mark(t);
}

/* ---- the program's own anonymous memory (GCMALLOC_GC_SCAN_MAPS) ----
 * Every private writable anonymous mapping of the process, from
 * /proc/self/maps read while the world is stopped (so no mapping can appear
 * unseen), minus what is scanned otherwise or must not be: the heap's
 * arenas, gcmalloc's own mappings, the loaded objects' segments and the
 * registered threads' stacks. This is where an interpreter keeps its own
 * allocator's arenas and frames (python's obmalloc and frame stacks). */

static void exclude_stack(gthread *t, void *ctx) {
    if (!t->is_main && t->stack_hi) rs_push(&excluded, t->stack_lo, t->stack_hi);
}

static void sort_ranges(range *r, size_t n) { /* heapsort: no allocation, O(n log n) */
    for (size_t k = n / 2; k-- > 0;) {
        for (size_t i = k;;) {
            size_t c = 2 * i + 1;
            if (c >= n) break;
            if (c + 1 < n && r[c + 1].lo > r[c].lo) c++;
            if (r[i].lo >= r[c].lo) break;
            range t = r[i]; r[i] = r[c]; r[c] = t; i = c;
        }
    }
    for (size_t end = n; end-- > 1;) {
        range t = r[0]; r[0] = r[end]; r[end] = t;
        for (size_t i = 0;;) {
            size_t c = 2 * i + 1;
            if (c >= end) break;
            if (c + 1 < end && r[c + 1].lo > r[c].lo) c++;
            if (r[i].lo >= r[c].lo) break;
            range u = r[i]; r[i] = r[c]; r[c] = u; i = c;
        }
    }
}

/* Scan [lo, hi) minus the sorted excluded ranges. */
static void scan_minus(uintptr_t lo, uintptr_t hi) {
    for (size_t i = 0; i < excluded.n && lo < hi; i++) {
        range x = excluded.r[i];
        if (x.hi <= lo) continue;
        if (x.lo >= hi) break;
        if (x.lo > lo) gcm_mark_range(lo, x.lo);
        if (x.hi > lo) lo = x.hi;
    }
    if (lo < hi) gcm_mark_range(lo, hi);
}

static bool read_maps(size_t *len) {
    int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;
    size_t n = 0;
    for (;;) {
        if (!gcm_os_grow((void **)&maps_buf, &maps_cap, n + 4096, 1, (size_t)256 << 10)) break;
        ssize_t got = read(fd, maps_buf + n, maps_cap - n);
        if (got <= 0) break;
        n += (size_t)got;
    }
    close(fd);
    *len = n;
    return true;
}

static uintptr_t hex(const char **p) {
    uintptr_t v = 0;
    for (;; (*p)++) {
        char c = **p;
        if (c >= '0' && c <= '9') v = v * 16 + (uintptr_t)(c - '0');
        else if (c >= 'a' && c <= 'f') v = v * 16 + (uintptr_t)(c - 'a' + 10);
        else return v;
    }
}

static void scan_maps(void) {
    size_t len;
    if (!read_maps(&len)) return;
    excluded.n = 0;
    const pageAlloc *pa = &gcm_heap.pages;
    for (uint32_t i = 0; i < pa->narenas; i++) rs_push(&excluded, pa->arenas[i]->base, pa->arenas[i]->base + GCM_ARENA_SIZE);
    const uintptr_t *pairs;
    size_t n = gcm_os_regions(&pairs);
    for (size_t i = 0; i < n; i++) rs_push(&excluded, pairs[2 * i], pairs[2 * i + 1]);
    for (size_t i = 0; i < segments.n; i++) rs_push(&excluded, segments.r[i].lo, segments.r[i].hi);
    for (size_t i = 0; i < own_segments.n; i++) rs_push(&excluded, own_segments.r[i].lo, own_segments.r[i].hi);
    gcm_stw_each(exclude_stack, NULL);
    sort_ranges(excluded.r, excluded.n);
    /* Lines: "lo-hi perms offset dev inode [path]". */
    for (const char *p = maps_buf, *end = maps_buf + len; p < end;) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol) eol = end;
        uintptr_t lo = hex(&p);
        p++;
        uintptr_t hi = hex(&p);
        p++;
        bool wp = p + 4 <= eol && p[0] == 'r' && p[1] == 'w' && p[3] == 'p';
        /* offset, dev, inode */
        int field = 0;
        bool anon = false;
        const char *path = eol;
        for (const char *q = p; q < eol; q++) {
            if (*q == ' ' && q + 1 < eol && q[1] != ' ') {
                field++;
                if (field == 3) anon = q[1] == '0' && (q[2] == ' ' || q + 2 == eol);
                if (field == 4) {
                    path = q + 1;
                    break;
                }
            }
        }
        bool special = path < eol && path[0] == '[' && !(eol - path >= 6 && memcmp(path, "[heap]", 6) == 0) &&
                       !(eol - path >= 6 && memcmp(path, "[anon:", 6) == 0);
        if (wp && anon && !special) scan_minus(lo, hi);
        p = eol + 1;
    }
}

void gcm_roots_mark(void) {
    for (size_t i = 0; i < segments.n; i++) gcm_mark_range(segments.r[i].lo, segments.r[i].hi);
    for (size_t i = 0; i < registered.n; i++) gcm_mark_range(registered.r[i].lo, registered.r[i].hi);
    gcm_stw_each(scan_thread, NULL);
    gcm_stw_mark_dead_dtvs();
    long maps = gcm_option(GCM_OPT_GC_SCAN_MAPS);
    if (maps == GCM_SCAN_MAPS_ON || (maps == GCM_SCAN_MAPS_AUTO && gcm_option(GCM_OPT_GC) == GCM_GC_COLLECT)) scan_maps();
}
