/*
 * options.h - every setting of gcmalloc, one row each in options.c's table,
 * read once from the environment as GCMALLOC_<NAME>.
 */
#ifndef GCM_OPTIONS_H
#define GCM_OPTIONS_H

#include "common.h"

typedef enum gcm_option_id {
    GCM_OPT_STATS,   /* print statistics at exit */
    GCM_OPT_VERBOSE, /* print the effective settings at start */
    GCM_OPT_COUNT
} gcm_option_id;

typedef struct gcm_option_desc {
    const char *name; /* GCMALLOC_<name> */
    long def, min, max;
    const char *doc;
} gcm_option_desc;

extern const gcm_option_desc gcm_option_table[GCM_OPT_COUNT];

/* Read the environment (once, at start-up; warns about unknown or bad values). */
void gcm_options_init(void);
long gcm_option(gcm_option_id id);

#endif
