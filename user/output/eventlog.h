/*
 * The JSON-lines event file of `live --output FILE` (issue 15): whole lines appended to FILE, flushed per
 * batch, rotated by size (FILE -> FILE.1 -> FILE.2 ..., the oldest beyond `keep` removed) only between
 * lines, and reopened on request (SIGHUP after logrotate moved FILE). A line never spans two files.
 */
#ifndef VMOT_EVENTLOG_H
#define VMOT_EVENTLOG_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define EVLOG_MAX_KEEP 1000

struct evlog_opts {
	const char *path;
	uint64_t max_bytes;       /* rotate once FILE holds this much; 0 never */
	unsigned keep;            /* rotated files kept (FILE.1 .. FILE.keep); 0 = rotation deletes */
};

struct evlog;

/* Open (create, or append to) opts->path now, so a bad path fails before tracing: 0, or -errno after one
 * p_err line naming the path. */
int evlog_open(const struct evlog_opts *opts, struct evlog **out);
/* Append one line (len bytes, a '\n' is added when missing); rotates first when the line would take FILE
 * past max_bytes (a FILE with no line yet takes it whatever its size). 0 or -errno. */
int evlog_write_line(struct evlog *l, const char *line, size_t len);
/* Everything written so far to the file (per batch). 0 or -errno. */
int evlog_flush(struct evlog *l);
/* Close and open the path again (it may have been moved away): 0 or -errno. */
int evlog_reopen(struct evlog *l);
uint64_t evlog_rotations(const struct evlog *l);
uint64_t evlog_lines(const struct evlog *l);
void evlog_close(struct evlog **l);

#endif
