/*
 * Prometheus metrics of a trace (issue 15): the text exposition format (version 0.0.4) rendered from a
 * snapshot of plain numbers, served over HTTP at /metrics (`live --metrics ADDR:PORT`) and written
 * atomically to a file for node_exporter's textfile collector (`--metrics-file PATH`). Labels are per VM
 * (and per vCPU / exit reason): never per process, so the number of series stays bounded.
 */
#ifndef VMOT_METRICS_H
#define VMOT_METRICS_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define METRICS_MAX_VMS    16
#define METRICS_MAX_VCPUS  256
#define METRICS_MAX_EXITS  64      /* (vm, reason) rows of KVM exit counts */

struct metrics_vm {
	char name[128];
	int pid;                  /* QEMU */
	char uuid[37];            /* "" unknown */
	char accel[8];
	char boot_id[17];
	bool up;                  /* QEMU still there */
	bool validated;           /* offsets validated against the guest's own switches */
	bool exact;               /* the scheduler's counters were found */
	uint32_t nvcpu;
	uint64_t tasks, processes;
	uint64_t switches[METRICS_MAX_VCPUS];
	uint64_t forks, execs, exits, renames, lost, restarts, cache_hits;
};

struct metrics_snapshot {
	const char *version;
	double start_time_s;      /* unix time the trace started */
	size_t nvms;
	struct metrics_vm vm[METRICS_MAX_VMS];
	bool capture;             /* the BPF capture is attached: its counters below are real */
	uint64_t cap_seen, cap_filtered, cap_deduped, cap_emitted, cap_dropped;
	size_t nexits;
	struct metrics_exit {
		uint32_t vm;          /* index into vm[] */
		char reason[32];
		uint64_t count;
	} exits[METRICS_MAX_EXITS];
	uint64_t events_written;  /* event lines written (the last "seq") */
	uint64_t rotations;       /* --output file rotations */
};

/* The exposition text (malloc'd, NUL-terminated, *len bytes). NULL on ENOMEM. */
char *metrics_render(const struct metrics_snapshot *s, size_t *len);

/* --metrics: "PORT", ":PORT", "ADDR:PORT", "[V6ADDR]:PORT"; the address defaults to 127.0.0.1. Binds and
 * listens now (a port in use fails here, before tracing: one p_err line) and serves GET /metrics from a
 * thread with whatever was last published. */
struct metrics_server;
int metrics_server_start(const char *spec, struct metrics_server **out);
void metrics_server_publish(struct metrics_server *s, const char *text, size_t len);
void metrics_server_stop(struct metrics_server **s);
/* The address actually bound ("127.0.0.1:9867"). */
const char *metrics_server_address(const struct metrics_server *s);

/* --metrics-file: text written to PATH.tmp.PID then renamed over PATH (readers never see half a file).
 * 0 or -errno (no message). */
int metrics_file_write(const char *path, const char *text, size_t len);

#endif
