/*
 * The Trace Event JSON format (what Perfetto's UI and chrome://tracing open; issue 18), from a session's
 * events: {"traceEvents":[...],"displayTimeUnit":"ms"} with, per VM, a trace "process" (metadata
 * process_name: the VM's name; pid: its QEMU pid), per vCPU a "thread" (thread_name "vCPU N", tid N + 1)
 * holding a complete event (ph "X") per run of a guest task (name: its comm; args pid, tgid, comm; idle
 * runs of pid 0 left out), and a thread "guest processes" (tid TE_LIFE_TID) holding an instant event (ph
 * "i", scope thread) per fork, exec, rename, exit, restart and lost range. ts and dur in microseconds
 * since the session's start (3 decimals: ns); metadata events carry ts 0. Events are in time order per
 * track (each vCPU's runs are written as the analysis closes them, in order).
 */
#ifndef VMOT_OUTPUT_TRACE_EVENT_H
#define VMOT_OUTPUT_TRACE_EVENT_H
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "session/session.h"
#include "trace/analysis.h"

#define TE_LIFE_TID 100000     /* the lifecycle track's tid (vCPU N is tid N + 1) */

/* Write ev[0..n) (time order) as Trace Event JSON to f. vms: the VMs' names, QEMU pids and vCPUs (an
 * analysis that read the VM blocks); t0: the session's start (monotonic ns, as the events). 0, -ENOMEM,
 * -EIO. */
int trace_event_write(FILE *f, const struct analysis *vms, const struct sess_event *ev, size_t n, uint64_t t0);

#endif
