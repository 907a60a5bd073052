/*
 * options.c - the options table and its environment parser.
 *
 * Parsing runs during gcmalloc's start-up, possibly before libc's own
 * constructors: it reads `environ` directly and reports with write(2) only
 * (no malloc, no stdio). A bad value or an unknown GCMALLOC_ variable gets one
 * warning line naming it and what is accepted; the default is used.
 */
#include "options.h"
#include "os.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

extern char **environ;

static const char *const stats_values[] = {"0", "1", "json", NULL};
static const char *const scan_maps_values[] = {"0", "1", "auto", NULL}; /* gcm_scan_maps_mode */
static const char *const gc_values[] = {"off", "collect", "leakcheck", NULL}; /* GCM_GC_* */

const gcm_option_desc gcm_option_table[GCM_OPT_COUNT] = {
    [GCM_OPT_STATS] = {"STATS", GCM_OPT_ENUM, GCM_STATS_OFF, GCM_STATS_OFF, GCM_STATS_JSON, stats_values,
                       "print heap statistics on stderr at exit: 1 as text, json as one JSON object"},
    [GCM_OPT_VERBOSE] = {"VERBOSE", GCM_OPT_BOOL, 0, 0, 1, NULL, "print the effective settings on stderr at start"},
    [GCM_OPT_GC] = {"GC", GCM_OPT_ENUM, 0, 0, 2, gc_values,
                    "the collector: collect frees unreachable objects, leakcheck reports them at exit"},
    [GCM_OPT_GC_PERCENT] = {"GC_PERCENT", GCM_OPT_INT, 100, -100000, 100000, NULL,
                            "collect when the heap grew this many percent over the last live heap; negative: never by itself"},
    [GCM_OPT_GC_SIGNAL] = {"GC_SIGNAL", GCM_OPT_INT, 61, 1, 64, NULL,
                           "the signal that stops threads for a collection (default SIGRTMAX-3)"},
    [GCM_OPT_GC_SCAN_MAPS] = {"GC_SCAN_MAPS", GCM_OPT_ENUM, GCM_SCAN_MAPS_AUTO, 0, 2, scan_maps_values,
                              "the collector also scans the program's own anonymous memory (its mmap'ed areas); "
                              "auto: when GCMALLOC_GC=collect turned it on"},
    [GCM_OPT_LEAKCHECK_STACKS] = {"LEAKCHECK_STACKS", GCM_OPT_BOOL, 0, 0, 1, NULL,
                                  "leakcheck records each allocation's call stack and groups the leak report by it; "
                                  "unwinding costs ~2000 instructions per frame (python3: +19%)"},
    [GCM_OPT_CHECK] = {"CHECK", GCM_OPT_BOOL, 0, 0, 1, NULL,
                       "check mode: canary bytes after each object verified at free and realloc, freed memory "
                       "junk-filled and quarantined, double frees caught (docs/reliability.md); about 6x the "
                       "instructions of a small malloc+free, 16+ bytes per object and the quarantine"},
    [GCM_OPT_CHECK_QUARANTINE] = {"CHECK_QUARANTINE", GCM_OPT_INT, 32 << 20, 0, 1 << 30, NULL,
                                  "check mode: bytes of freed objects held back from reuse (and at most 65536 objects)"},
};

static long values[GCM_OPT_COUNT];
static int report_fd = 2;

long gcm_option(gcm_option_id id) { return values[id]; }
int gcm_options_report_fd(void) { return report_fd; }

size_t gcm_option_fmt_value(const gcm_option_desc *d, long v, char *buf, size_t len, size_t cap) {
    if (d->type == GCM_OPT_ENUM && v >= 0 && v <= d->max) return gcm_fmt_str(buf, len, cap, d->values[v]);
    if (v < 0) {
        len = gcm_fmt_str(buf, len, cap, "-");
        v = -v;
    }
    return gcm_fmt_dec(buf, len, cap, (uint64_t)v);
}

size_t gcm_option_fmt_accepted(const gcm_option_desc *d, char *buf, size_t len, size_t cap) {
    if (d->type == GCM_OPT_INT) {
        len = gcm_option_fmt_value(d, d->min, buf, len, cap);
        len = gcm_fmt_str(buf, len, cap, "..");
        return gcm_option_fmt_value(d, d->max, buf, len, cap);
    }
    for (long v = d->min; v <= d->max; v++) {
        if (v > d->min) len = gcm_fmt_str(buf, len, cap, ", ");
        len = gcm_option_fmt_value(d, v, buf, len, cap);
    }
    return len;
}

static bool parse_long(const char *s, long *out) {
    bool neg = *s == '-';
    if (neg) s++;
    if (!*s) return false;
    long v = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9' || v > 1000000000L) return false;
        v = v * 10 + (*s - '0');
    }
    *out = neg ? -v : v;
    return true;
}

static bool parse_value(const gcm_option_desc *d, const char *s, long *out) {
    if (d->type == GCM_OPT_ENUM) {
        for (long v = 0; d->values[v]; v++)
            if (strcmp(s, d->values[v]) == 0) {
                *out = v;
                return true;
            }
        return false;
    }
    return parse_long(s, out) && *out >= d->min && *out <= d->max;
}

/* `name` (not NUL-terminated, len bytes) is the table row's name. */
static bool name_is(const char *name, size_t len, const char *row) {
    return strlen(row) == len && strncmp(name, row, len) == 0;
}

/* Append at most max bytes of s, with "..." when cut. */
static size_t fmt_cut(char *buf, size_t len, size_t cap, const char *s, size_t n, size_t max) {
    char part[80];
    size_t k = n < max && n < sizeof part - 1 ? n : (max < sizeof part - 1 ? max : sizeof part - 1);
    memcpy(part, s, k);
    part[k] = 0;
    len = gcm_fmt_str(buf, len, cap, part);
    return k < n ? gcm_fmt_str(buf, len, cap, "...") : len;
}

static void warn_unknown(const char *name, size_t namelen) {
    char buf[512];
    size_t n = gcm_fmt_str(buf, 0, sizeof buf, "gcmalloc: warning: GCMALLOC_");
    n = fmt_cut(buf, n, sizeof buf, name, namelen, 40);
    n = gcm_fmt_str(buf, n, sizeof buf, ": unknown variable, ignored (known: ");
    for (int i = 0; i < GCM_OPT_COUNT; i++) {
        n = gcm_fmt_str(buf, n, sizeof buf, i ? ", GCMALLOC_" : "GCMALLOC_");
        n = gcm_fmt_str(buf, n, sizeof buf, gcm_option_table[i].name);
    }
    n = gcm_fmt_str(buf, n, sizeof buf, ")\n");
    gcm_os_write(2, buf, n);
}

static void warn_bad(const gcm_option_desc *d, const char *value) {
    char buf[512];
    size_t n = gcm_fmt_str(buf, 0, sizeof buf, "gcmalloc: warning: GCMALLOC_");
    n = gcm_fmt_str(buf, n, sizeof buf, d->name);
    n = gcm_fmt_str(buf, n, sizeof buf, "=");
    n = fmt_cut(buf, n, sizeof buf, value, strlen(value), 40);
    n = gcm_fmt_str(buf, n, sizeof buf, ": bad value (accepted: ");
    n = gcm_option_fmt_accepted(d, buf, n, sizeof buf);
    n = gcm_fmt_str(buf, n, sizeof buf, "); using the default, ");
    n = gcm_option_fmt_value(d, d->def, buf, n, sizeof buf);
    n = gcm_fmt_str(buf, n, sizeof buf, "\n");
    gcm_os_write(2, buf, n);
}

void gcm_options_init(void) {
    for (int i = 0; i < GCM_OPT_COUNT; i++) values[i] = gcm_option_table[i].def;
    static const char prefix[] = "GCMALLOC_";
    for (char **e = environ; e && *e; e++) {
        if (strncmp(*e, prefix, sizeof prefix - 1) != 0) continue;
        const char *name = *e + sizeof prefix - 1, *eq = strchr(name, '=');
        if (!eq) continue;
        size_t len = (size_t)(eq - name);
        int id = -1;
        for (int i = 0; i < GCM_OPT_COUNT; i++)
            if (name_is(name, len, gcm_option_table[i].name)) id = i;
        if (id < 0) {
            warn_unknown(name, len);
            continue;
        }
        long v;
        if (!parse_value(&gcm_option_table[id], eq + 1, &v)) {
            warn_bad(&gcm_option_table[id], eq + 1);
            continue;
        }
        values[id] = v;
    }
    /* Programs may close stderr on their way out (coreutils' close_stdout
     * does, in an atexit handler that runs before our destructor): keep a
     * copy of it for the exit report. */
    if (values[GCM_OPT_STATS] != GCM_STATS_OFF || values[GCM_OPT_GC] == 2 /* leakcheck */) {
        int fd = fcntl(2, F_DUPFD_CLOEXEC, 10);
        if (fd >= 0) report_fd = fd;
    }
    if (values[GCM_OPT_VERBOSE]) {
        for (int i = 0; i < GCM_OPT_COUNT; i++) {
            const gcm_option_desc *d = &gcm_option_table[i];
            char buf[256];
            size_t n = gcm_fmt_str(buf, 0, sizeof buf, "gcmalloc: GCMALLOC_");
            n = gcm_fmt_str(buf, n, sizeof buf, d->name);
            n = gcm_fmt_str(buf, n, sizeof buf, "=");
            n = gcm_option_fmt_value(d, values[i], buf, n, sizeof buf);
            n = gcm_fmt_str(buf, n, sizeof buf, values[i] == d->def ? " (default)\n" : "\n");
            gcm_os_write(2, buf, n);
        }
    }
}
