/*
 * The JSON-lines event file `live --output FILE` writes (rotated FILE -> FILE.1 -> FILE.2 ...), read back
 * as session events for `report` (issue 15). One event object per line, schema 1; see jsonl.c for the keys.
 *
 * Damage-tolerant like the session reader: a line that is not valid JSON, lacks a required key, has a
 * value of the wrong type or out of range, carries a newer schema or an unknown event, holds a NUL byte,
 * is longer than JSONL_MAX_LINE, or is the cut-short last line, is skipped and counted; the rest is read.
 * The seq numbers say what is not in the file: events before the first (rotated out), gaps, a seq going
 * back (files concatenated, or several runs appended to one file).
 */
#ifndef VMOT_JSONL_H
#define VMOT_JSONL_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "session/session.h"

#define JSONL_SCHEMA   1              /* the schema this reader knows */
#define JSONL_MAX_LINE (1u << 20)     /* longer lines are skipped (the longest real one: an exec's argv) */
#define JSONL_MAX_VMS  64             /* = AN_MAX_VMS: events of more VMs are skipped */
#define JSONL_PID_MAX  4194304        /* the kernel's PID_MAX_LIMIT */

/* What the first non-blank byte of a file says it is. */
enum jsonl_kind {
	JSONL_KIND_EMPTY,   /* no bytes at all */
	JSONL_KIND_BLANK,   /* only blanks (spaces, tabs, CR, LF): a JSON-lines file without lines */
	JSONL_KIND_JSONL,   /* first non-blank byte '{' */
	JSONL_KIND_SESSION, /* starts with SESS_MAGIC "VMTB" */
	JSONL_KIND_OTHER,   /* anything else */
};
/* The kind of path, or -errno when it cannot be read. */
int jsonl_sniff(const char *path);

/* One VM: every event with its vm_pid (a guest restart stays in the VM; its boot_id changes). */
struct jsonl_vm {
	int32_t pid;              /* "vm_pid" */
	char name[128];           /* "vm" of its first event */
	char uuid[40];            /* "vm_uuid", "" when null */
	char boot_id[65];         /* the last "boot_id" seen (16 hex digits in schema 1), "" when null */
	uint32_t boots;           /* distinct boot_id values in a row (1 + changes), 0 none seen */
	uint32_t nvcpus;          /* 1 + the largest vcpu seen, 0 none */
	uint64_t events;
};

struct jsonl_summary {
	unsigned files;           /* files read (in order) */
	uint64_t lines;           /* non-blank lines read */
	uint64_t events;          /* events handed to the callback */
	uint64_t skipped;         /* lines not handed over */
	char first_skip[256];     /* "line L: why" (with the file name when several) of the first skipped */
	bool first_skip_newer;    /* ... and that was a newer schema */
	uint64_t newer;           /* lines of a newer schema (counted in skipped) */
	int64_t newer_schema;     /* the first such schema number */
	bool have_seq;
	uint64_t first_seq;       /* the smallest seq read: > 1, events before it are in older (rotated) files */
	uint64_t last_seq;        /* the last seq read */
	uint64_t missing;         /* events missing between seq numbers (gaps) */
	uint64_t backwards;       /* times seq went back */
	bool time_backwards;      /* an event earlier than the one before it: sort before analysis */
	uint64_t last_time_ns;    /* of the last event handed over */
	bool have_t0;
	uint64_t t0_ns;           /* trace start (epoch ns): the first event's ts minus its "t" */
	char host[128];           /* "host" of the first event that has one */
	bool hosts_differ;
	size_t nvms;
	struct jsonl_vm vms[JSONL_MAX_VMS];   /* sess_event.vm indexes this */
};

/* Called for every accepted line in file order: ev (time_ns in ns since the epoch, from "ts"; vm an index
 * into sum->vms; LOST: pid..prev_pid the range) and the line's object (valid until return: an EXEC's
 * "uid", "euid", "argv", "argv_truncated" are checked for type). Non-zero return stops the read. */
struct json_object;
typedef int (*jsonl_event_fn)(void *ctx, const struct sess_event *ev, struct json_object *line);

/* Read paths[0..n) in order (older first) as one stream. 0 when at least one event was read, -ENODATA
 * when none, -errno when a file cannot be opened (*bad = its index), or the callback's value. sum is
 * always filled. */
int jsonl_read_files(const char *const *paths, size_t n, jsonl_event_fn fn, void *ctx, struct jsonl_summary *sum,
		     size_t *bad);
/* One open stream (name: in messages, NULL: none) into sum, which jsonl_summary_init cleared before the
 * first of them: 0 (sum says what was read), -ENOMEM, -EIO, or the callback's value. */
void jsonl_summary_init(struct jsonl_summary *sum);
int jsonl_read_stream(FILE *f, const char *name, jsonl_event_fn fn, void *ctx, struct jsonl_summary *sum);

/* The lines that say what the reader skipped or what is not in the file(s), one per kind; false when that
 * kind has nothing to say. */
enum jsonl_note {
	JSONL_NOTE_SKIPPED,   /* "N line(s) skipped: line L: why" */
	JSONL_NOTE_NEWER,     /* "schema N is newer than this reader (1): K line(s) skipped" (when not the first) */
	JSONL_NOTE_ROTATED,   /* "events before seq N are not in this file (rotated out?)" */
	JSONL_NOTE_GAPS,      /* "M event(s) missing (gaps in seq)" */
	JSONL_NOTE_BACKWARDS, /* "seq went back K time(s) ..." */
	JSONL_NOTES,
};
bool jsonl_note(const struct jsonl_summary *sum, enum jsonl_note which, char *buf, size_t len);

/* Stable sort of events by time (files concatenated out of order); 0 or -ENOMEM (left as they were). */
int jsonl_sort_events(struct sess_event *ev, size_t n);

#endif
