/*
 * options.c - the options table and its environment parser.
 *
 * Parsing runs during gcmalloc's start-up, possibly before libc's own
 * constructors: it reads `environ` directly and reports with write(2) only.
 * A bad value or an unknown GCMALLOC_ variable gets one warning line naming
 * it and what is accepted; the default is used.
 */
#include "options.h"
#include "os.h"

#include <stdlib.h>
#include <string.h>

extern char **environ;

const gcm_option_desc gcm_option_table[GCM_OPT_COUNT] = {
    [GCM_OPT_STATS] = { "STATS", 0, 0, 1, "print heap statistics on stderr at exit (1)" },
    [GCM_OPT_VERBOSE] = { "VERBOSE", 0, 0, 1, "print the effective settings at start (1)" },
};

static long values[GCM_OPT_COUNT];

long gcm_option(gcm_option_id id) { return values[id]; }

static void warn(const char *var, const char *why, const gcm_option_desc *d) {
    char buf[256];
    size_t n = gcm_fmt_str(buf, 0, sizeof buf, "gcmalloc: warning: ");
    n = gcm_fmt_str(buf, n, sizeof buf, var);
    n = gcm_fmt_str(buf, n, sizeof buf, why);
    if (d) {
        n = gcm_fmt_str(buf, n, sizeof buf, " (accepted: ");
        n = gcm_fmt_dec(buf, n, sizeof buf, (uint64_t)d->min);
        n = gcm_fmt_str(buf, n, sizeof buf, "..");
        n = gcm_fmt_dec(buf, n, sizeof buf, (uint64_t)d->max);
        n = gcm_fmt_str(buf, n, sizeof buf, "; using the default)");
    }
    n = gcm_fmt_str(buf, n, sizeof buf, "\n");
    gcm_os_write(2, buf, n);
}

static bool parse_long(const char *s, long *out) {
    if (!*s) return false;
    long v = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9' || v > 1000000000L) return false;
        v = v * 10 + (*s - '0');
    }
    *out = v;
    return true;
}

void gcm_options_init(void) {
    for (int i = 0; i < GCM_OPT_COUNT; i++) values[i] = gcm_option_table[i].def;
    static const char prefix[] = "GCMALLOC_";
    for (char **e = environ; e && *e; e++) {
        if (strncmp(*e, prefix, sizeof prefix - 1) != 0) continue;
        const char *name = *e + sizeof prefix - 1, *eq = strchr(name, '=');
        if (!eq) continue;
        int id = -1;
        for (int i = 0; i < GCM_OPT_COUNT; i++) {
            size_t len = strlen(gcm_option_table[i].name);
            if ((size_t)(eq - name) == len && strncmp(name, gcm_option_table[i].name, len) == 0) id = i;
        }
        char var[64];
        size_t vl = (size_t)(eq - *e) < sizeof var - 1 ? (size_t)(eq - *e) : sizeof var - 1;
        memcpy(var, *e, vl);
        var[vl] = 0;
        if (id < 0) {
            warn(var, ": unknown variable, ignored", NULL);
            continue;
        }
        const gcm_option_desc *d = &gcm_option_table[id];
        long v;
        if (!parse_long(eq + 1, &v) || v < d->min || v > d->max) {
            warn(var, ": bad value", d);
            continue;
        }
        values[id] = v;
    }
    if (values[GCM_OPT_VERBOSE]) {
        for (int i = 0; i < GCM_OPT_COUNT; i++) {
            char buf[160];
            size_t n = gcm_fmt_str(buf, 0, sizeof buf, "gcmalloc: GCMALLOC_");
            n = gcm_fmt_str(buf, n, sizeof buf, gcm_option_table[i].name);
            n = gcm_fmt_str(buf, n, sizeof buf, "=");
            n = gcm_fmt_dec(buf, n, sizeof buf, (uint64_t)values[i]);
            n = gcm_fmt_str(buf, n, sizeof buf, "\n");
            gcm_os_write(2, buf, n);
        }
    }
}
