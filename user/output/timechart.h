/*
 * `timechart`'s picture (perf timechart's shape, issue 18): one self-contained SVG — no scripts, no external
 * resources — with a lane per vCPU per VM, a coloured span per run of a process (same process (vm, tgid), same
 * colour), the process lifecycle as markers, idle as gaps, a time axis and a legend of the processes that used
 * most CPU. Text is SVG <text> (selectable); every span and marker has a <title> tooltip and data-* attributes
 * that say exactly what it stands for (the guest test checks the picture against the session with them).
 *
 * Size stays bounded: within a lane, runs narrower than a pixel are merged with their neighbours into one
 * "busy" span (data-merged = how many runs) until it is a pixel wide or a visible gap (a pixel or more of idle)
 * or a run a pixel wide or more follows; so a lane holds at most about two spans per pixel whatever the
 * session's length. Markers (6 px wide) of one kind and VM that fall within 3 px of the first are one marker
 * (data-count; its tooltip lists the first three). Guest strings (comm) are hostile input: markup characters are escaped, bytes that are not
 * UTF-8 (or not XML characters) are shown as \xNN.
 */
#ifndef VMOT_OUTPUT_TIMECHART_H
#define VMOT_OUTPUT_TIMECHART_H
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "output/timeline.h"

#define TC_DEFAULT_WIDTH 1600     /* px of the time axis */
#define TC_MIN_WIDTH     200
#define TC_MAX_WIDTH     20000
#define TC_LEGEND        12       /* processes in the legend */

struct tc_opts {
	unsigned width;           /* px of the time axis (TC_DEFAULT_WIDTH when 0) */
	const char *source;       /* the file drawn, for the title */
	const char *note;         /* what was lost reading it ("" or NULL: nothing) */
};

struct tc_stats {
	size_t lanes;
	size_t spans;             /* span elements written */
	size_t merged_spans;      /* of them, merged ones */
	size_t runs_merged;       /* runs inside merged spans */
	size_t markers;           /* marker elements */
	size_t events_marked;     /* lifecycle events they stand for */
};

/* A process's colour, 0xRRGGBB: a hash of its VM's name and tgid mapped to a hue, saturation and lightness
 * (stable across runs and sessions of the same VM). */
uint32_t tc_colour(const char *vm_name, int32_t tgid);

/* s (at most max bytes, up to a NUL) as XML character data / attribute value. */
void tc_xml_text(FILE *f, const char *s, size_t max);

/* One drawn span: a run, or runs merged. */
#define TC_TOP 3
struct tc_box {
	uint64_t start, end;
	uint32_t thr;             /* a single run's thread (merged == 1) */
	uint32_t merged;          /* runs it stands for */
	uint64_t busy_ns;         /* time on the vCPU inside it */
	uint32_t ntop;            /* merged: the processes with most time in it, most first */
	uint32_t top[TC_TOP];     /* tl->procs indexes */
	uint64_t top_ns[TC_TOP];
};
/* The spans of one lane's runs (time order, not overlapping) at ns_per_px; out holds n boxes at least.
 * Returns how many. */
size_t tc_merge(const struct timeline *tl, const struct tl_run *runs, size_t n, double ns_per_px, struct tc_box *out);

/* The whole picture. 0, -ENOMEM, or -EIO when writing failed. */
int tc_render_svg(FILE *f, const struct timeline *tl, const struct tc_opts *o, struct tc_stats *st);

#endif
