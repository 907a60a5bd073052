/*
 * Options: one table (alloc/options.c), read from GCMALLOC_<NAME>.
 *  - docs/options.md holds the table rendered by this test, between two
 *    markers; a change to the table without the doc fails here.
 *    UPDATE_DOCS=1 ctest -R options rewrites it.
 *  - an unknown GCMALLOC_ variable or a bad value gives exactly one warning
 *    line naming it and the accepted values; the default is used.
 *  - GCMALLOC_VERBOSE=1 prints the effective settings.
 * The process under test is this binary re-run with GCM_OPTIONS_HELPER set:
 * a constructor allocates (which reads the options) and exits.
 */
#include <criterion/criterion.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc/options.h"
#include "testutil.h"

__attribute__((constructor)) static void helper(void) {
    if (!getenv("GCM_OPTIONS_HELPER")) return;
    free(malloc(10));
    exit(0);
}

/* Run the helper with the given GCMALLOC_ settings; returns its stderr. */
static char *run_helper(const char *const *settings) {
    char self[PATH_MAX], st[64];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    cr_assert_gt(n, 0);
    self[n] = 0;
    /* A clean environment: only what the test sets. */
    const char *argv[16] = {"/usr/bin/env", "-i", "GCM_OPTIONS_HELPER=1"};
    size_t k = 3;
    for (; settings && *settings && k < 14; settings++) argv[k++] = *settings;
    argv[k++] = self;
    argv[k] = NULL;
    struct run_result r;
    cr_assert_eq(run_cmd(argv, NULL, NULL, NULL, 60, &r), 0, "helper timed out");
    cr_assert(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0, "helper: %s; stderr: %s",
              status_str(r.status, st, sizeof st), r.err);
    free(r.out);
    return r.err;
}

#define GC_DEFAULTS "gcmalloc: GCMALLOC_GC=off (default)\ngcmalloc: GCMALLOC_GC_PERCENT=100 (default)\ngcmalloc: GCMALLOC_GC_SIGNAL=61 (default)\ngcmalloc: GCMALLOC_GC_SCAN_MAPS=auto (default)\n" \
    "gcmalloc: GCMALLOC_LEAKCHECK_STACKS=0 (default)\n"
#define CHECK_DEFAULTS "gcmalloc: GCMALLOC_CHECK=0 (default)\ngcmalloc: GCMALLOC_CHECK_QUARANTINE=33554432 (default)\n"

static void expect(const char *const *settings, const char *want) {
    char *err = run_helper(settings);
    cr_assert_str_eq(err, want, "with %s%s%s", settings[0], settings[1] ? " " : "", settings[1] ? settings[1] : "");
    free(err);
}

Test(options, valid_values_are_silent) {
    expect((const char *[]){"GCMALLOC_VERBOSE=0", "GCMALLOC_STATS=0", NULL}, "");
}

Test(options, gc_settings_are_accepted) {
    expect((const char *[]){"GCMALLOC_GC=collect", "GCMALLOC_GC_PERCENT=-1", NULL}, "");
    expect((const char *[]){"GCMALLOC_GC=sometimes", NULL},
           "gcmalloc: warning: GCMALLOC_GC=sometimes: bad value (accepted: off, collect, leakcheck); "
           "using the default, off\n");
}

Test(options, unknown_variable_warns_once) {
    expect((const char *[]){"GCMALLOC_STAT=1", NULL},
           "gcmalloc: warning: GCMALLOC_STAT: unknown variable, ignored "
           "(known: GCMALLOC_STATS, GCMALLOC_VERBOSE, GCMALLOC_GC, GCMALLOC_GC_PERCENT, GCMALLOC_GC_SIGNAL, "
           "GCMALLOC_GC_SCAN_MAPS, GCMALLOC_LEAKCHECK_STACKS, GCMALLOC_CHECK, GCMALLOC_CHECK_QUARANTINE)\n");
}

Test(options, bad_values_warn_and_use_the_default) {
    expect((const char *[]){"GCMALLOC_STATS=yes", NULL},
           "gcmalloc: warning: GCMALLOC_STATS=yes: bad value (accepted: 0, 1, json); using the default, 0\n");
    expect((const char *[]){"GCMALLOC_VERBOSE=2", NULL},
           "gcmalloc: warning: GCMALLOC_VERBOSE=2: bad value (accepted: 0, 1); using the default, 0\n");
    expect((const char *[]){"GCMALLOC_VERBOSE=", NULL},
           "gcmalloc: warning: GCMALLOC_VERBOSE=: bad value (accepted: 0, 1); using the default, 0\n");
    expect((const char *[]){"GCMALLOC_STATS=jsonjsonjsonjsonjsonjsonjsonjsonjsonjsonjson", NULL},
           "gcmalloc: warning: GCMALLOC_STATS=jsonjsonjsonjsonjsonjsonjsonjsonjsonjson...: bad value "
           "(accepted: 0, 1, json); using the default, 0\n");
}

Test(options, verbose_prints_the_effective_settings) {
    char *err = run_helper((const char *[]){"GCMALLOC_VERBOSE=1", NULL});
    cr_assert_str_eq(err, "gcmalloc: GCMALLOC_STATS=0 (default)\ngcmalloc: GCMALLOC_VERBOSE=1\n" GC_DEFAULTS CHECK_DEFAULTS);
    free(err);
    /* A bad value is warned about, then shown as its default. */
    err = run_helper((const char *[]){"GCMALLOC_VERBOSE=1", "GCMALLOC_STATS=2", NULL});
    cr_assert_str_eq(err,
                     "gcmalloc: warning: GCMALLOC_STATS=2: bad value (accepted: 0, 1, json); using the default, 0\n"
                     "gcmalloc: GCMALLOC_STATS=0 (default)\ngcmalloc: GCMALLOC_VERBOSE=1\n" GC_DEFAULTS CHECK_DEFAULTS);
    free(err);
    err = run_helper((const char *[]){"GCMALLOC_VERBOSE=1", "GCMALLOC_STATS=json", NULL});
    const char *want = "gcmalloc: GCMALLOC_STATS=json\ngcmalloc: GCMALLOC_VERBOSE=1\n" GC_DEFAULTS CHECK_DEFAULTS "{\"heap\": ";
    cr_assert(strncmp(err, want, strlen(want)) == 0, "%s", err);
    free(err);
}

/* ---- docs/options.md ---- */

static const char begin_mark[] = "<!-- BEGIN options table: generated from alloc/options.c by "
                                 "tests/integration/test_options.c; do not edit -->\n";
static const char end_mark[] = "<!-- END options table -->\n";

static void render(struct tu_buf *b) {
    static const char *const type_names[] = {[GCM_OPT_BOOL] = "bool", [GCM_OPT_INT] = "integer",
                                             [GCM_OPT_ENUM] = "choice"};
    const char *head = "| Variable | Type | Default | Accepted | What it does |\n|---|---|---|---|---|\n";
    tu_buf_add(b, head, strlen(head));
    for (int i = 0; i < GCM_OPT_COUNT; i++) {
        const gcm_option_desc *d = &gcm_option_table[i];
        char def[64], acc[256], line[1024];
        gcm_option_fmt_value(d, d->def, def, 0, sizeof def);
        gcm_option_fmt_accepted(d, acc, 0, sizeof acc);
        int n = snprintf(line, sizeof line, "| `GCMALLOC_%s` | %s | `%s` | %s | %s |\n", d->name,
                         type_names[d->type], def, acc, d->doc);
        tu_buf_add(b, line, (size_t)n);
    }
}

Test(options, docs_options_md_matches_the_table) {
    const char *path = GCM_SOURCE_DIR "/docs/options.md";
    size_t len;
    char *doc = read_file_all(path, &len);
    cr_assert_not_null(doc, "%s is missing", path);
    char *b = strstr(doc, begin_mark), *e = b ? strstr(b, end_mark) : NULL;
    cr_assert(b && e, "docs/options.md lacks the markers:\n%s%s", begin_mark, end_mark);
    b += strlen(begin_mark);
    struct tu_buf want = {0};
    tu_buf_add(&want, "", 0);
    render(&want);
    size_t have = (size_t)(e - b);
    if (have != want.len || memcmp(b, want.data, have) != 0) {
        const char *upd = getenv("UPDATE_DOCS");
        if (upd && strcmp(upd, "1") == 0) {
            FILE *f = fopen(path, "w");
            cr_assert_not_null(f);
            fwrite(doc, 1, (size_t)(b - doc), f);
            fwrite(want.data, 1, want.len, f);
            fputs(e, f);
            cr_assert_eq(fclose(f), 0);
        } else {
            cr_assert_fail("docs/options.md does not match the options table (rerun with UPDATE_DOCS=1 to "
                           "regenerate it). Expected:\n%s\nfound:\n%.*s",
                           want.data, (int)have, b);
        }
    }
    free(want.data);
    free(doc);
}
