/*
 * options.h - every setting of gcmalloc, one row each in options.c's table,
 * read once from the environment as GCMALLOC_<NAME>. docs/options.md is
 * generated from the table (tests/api/test_options.c checks it).
 */
#ifndef GCM_OPTIONS_H
#define GCM_OPTIONS_H

#include "common.h"

typedef enum gcm_option_id {
    GCM_OPT_STATS,   /* print statistics at exit: gcm_stats_mode */
    GCM_OPT_VERBOSE, /* print the effective settings at start */
    GCM_OPT_GC,         /* the collector's mode: GCM_GC_OFF / COLLECT / LEAKCHECK */
    GCM_OPT_GC_PERCENT, /* pacing, as Go's GOGC */
    GCM_OPT_GC_SIGNAL,  /* the signal that stops threads for a collection */
    GCM_OPT_GC_SCAN_MAPS, /* also scan the program's own anonymous mappings */
    GCM_OPT_LEAKCHECK_STACKS, /* leakcheck records allocation call stacks (gc/stacks.h) */
    GCM_OPT_CHECK,        /* the checking mode (alloc/check.c) */
    GCM_OPT_CHECK_QUARANTINE, /* its quarantine's bound, bytes */
    GCM_OPT_COUNT
} gcm_option_id;

/* The values of GCMALLOC_GC_SCAN_MAPS. */
enum gcm_scan_maps_mode { GCM_SCAN_MAPS_OFF, GCM_SCAN_MAPS_ON, GCM_SCAN_MAPS_AUTO };
/* The values of GCMALLOC_STATS. */
enum gcm_stats_mode { GCM_STATS_OFF, GCM_STATS_TEXT, GCM_STATS_JSON };

typedef enum gcm_option_type {
    GCM_OPT_BOOL, /* 0 or 1 */
    GCM_OPT_INT,  /* a decimal integer in min..max */
    GCM_OPT_ENUM, /* one of the words values[0..max]; the value is its index */
} gcm_option_type;

typedef struct gcm_option_desc {
    const char *name; /* GCMALLOC_<name> */
    gcm_option_type type;
    long def, min, max;
    const char *const *values; /* GCM_OPT_ENUM: the accepted words, NULL-terminated */
    const char *doc;           /* one line */
} gcm_option_desc;

extern const gcm_option_desc gcm_option_table[GCM_OPT_COUNT];

/* Read the environment (once, at start-up; warns about unknown or bad values). */
void gcm_options_init(void);
long gcm_option(gcm_option_id id);
/* Where the exit report goes: a copy of stderr taken at start-up when
 * GCMALLOC_STATS is set (so a program that closes fd 2 before it exits still
 * gets its report), else 2. */
int gcm_options_report_fd(void);

/* Write value v of option d as it is spelled in the environment ("json",
 * "1") into buf at len; returns the new length (the os.h formatters' style). */
size_t gcm_option_fmt_value(const gcm_option_desc *d, long v, char *buf, size_t len, size_t cap);
/* Write what d accepts ("0, 1, json" / "0..100") into buf at len. */
size_t gcm_option_fmt_accepted(const gcm_option_desc *d, char *buf, size_t len, size_t cap);

#endif
