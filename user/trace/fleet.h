/*
 * What `live` gives the collectors a fleet already runs (issue 15): events as JSON lines to a rotating file
 * (output/eventlog.h), each with the envelope an_envelope describes (schema, seq, ts, host, vm_uuid,
 * boot_id), and Prometheus metrics (output/metrics.h) over HTTP and/or as a textfile. Everything that can
 * fail on bad input (an unwritable path, a port in use, a missing directory) fails in fleet_open, before
 * tracing starts.
 */
#ifndef VMOT_FLEET_H
#define VMOT_FLEET_H
#include <stdbool.h>
#include <stdint.h>
#include "trace/analysis.h"
#include "trace/run.h"

struct fleet_opts {
	const char *output;          /* --output FILE, NULL: events to stdout as before */
	double output_max_mb;        /* --output-max-mb, 0: never rotate */
	unsigned output_keep;        /* --output-keep (default 5) */
	const char *metrics;         /* --metrics [ADDR:]PORT */
	const char *metrics_file;    /* --metrics-file PATH */
	const char *version;
};

struct fleet;

/* Everything opened now: 0, or -errno after one p_err line. */
int fleet_open(const struct fleet_opts *o, struct fleet **out);
/* The envelope JSON events carry (host name, sequence number). */
struct an_envelope *fleet_envelope(struct fleet *f);
/* A VM set up (again, after a guest restart): its identity into a (vm_uuid, boot_id) and the metrics. */
void fleet_vm_ready(struct fleet *f, struct analysis *a, const struct vm_tracer *t);
/* Every event the trace produced (before any filter): the metrics' counters. */
void fleet_count(struct fleet *f, const struct sess_event *ev);
/* With --output: the writer an event's JSON goes to, then fleet_event_done to append it as a line. */
json_writer_t *fleet_event_writer(struct fleet *f);
int fleet_event_done(struct fleet *f);
bool fleet_has_output(const struct fleet *f);
/* Per tick: flush the file, reopen it after SIGHUP (reopen true), publish the metrics. 0 or -errno (a write
 * that failed: said once). */
int fleet_tick(struct fleet *f, const struct trace_state *st, uint64_t now, bool reopen);
void fleet_close(struct fleet **f, const struct trace_state *st);

#endif
