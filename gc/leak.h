/*
 * leak.h - the leak report.
 *
 * After a marking pass (world still stopped) every object that is allocated
 * and unmarked is a leak: nothing the program can reach points to it, and it
 * was never freed. Leaks are counted by their requested size - recorded per
 * object while leakcheck mode is on (mspan.reqsizes), the usable size
 * otherwise - and grouped by it, or by allocation stack when stacks are
 * recorded (stacks.h). The report's first line is exactly
 *   gcmalloc: leaks: <N> objects, <B> bytes
 * followed by the largest groups, each stack's frames as
 *       #k 0xPC func+0xOFF (module)
 */
#ifndef GCM_LEAK_H
#define GCM_LEAK_H

#include "alloc/common.h"

/* World stopped, after marking: find the leaks. Returns how many. */
size_t gcm_leak_scan(void);
size_t gcm_leak_scan_count(void);
/* World running: print what gcm_leak_scan found. */
void gcm_leak_print(int fd);

#endif
