/*
 * Capture (BPF side of the observation sources): load bpf/capture.bpf.c, attach the KVM tracepoints this host
 * offers, and turn ring-buffer events into struct observation (mem/observe.h) plus the raw events.
 *
 *   struct capture *cap;
 *   struct capture_opts o = { .pids = &qemu_pid, .npids = 1 };
 *   int err = capture_open(&o, &cap);                 // -EPERM: needs CAP_BPF+CAP_PERFMON (or CAP_SYS_ADMIN)
 *   while (running)
 *           err = capture_poll(cap, 100, on_event, ctx);  // on_event(ctx, ev, obs): obs NULL if no CR3
 *   capture_close(cap);
 *
 * Every function returns 0 (or a count) or a negative errno. libbpf's messages appear only with -v.
 * Times are bpf_ktime_get_ns(), i.e. CLOCK_MONOTONIC.
 */
#ifndef VMOT_CAPTURE_API_H
#define VMOT_CAPTURE_API_H
#include <linux/types.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "../../bpf/capture.h"  /* struct capture_event, enums, counters (shared with the BPF side) */
#include "mem/observe.h"

struct capture;

struct capture_opts {
	const pid_t *pids;        /* QEMU processes (tgids) to trace; none = every VM on the host */
	size_t npids;
	bool no_dedupe;           /* emit every event, not only (cr3, kind) changes per vCPU */
	bool no_emulate;          /* drop plain EMULATE events (mov-to-CR3 is always reported) */
	bool no_io;               /* drop MMIO/PIO/MSR events */
	bool no_exit_stats;       /* skip exit counts and exit->entry latency */
	uint32_t hooks;           /* bit mask of 1 << enum capture_hook to attach; 0 = all this host has */
	uint32_t ringbuf_kib;     /* ring buffer size in KiB, a power of two >= page size; 0 = 1024 */
	bool baseline;            /* benchmarks: attach only an empty program on kvm_emulate_insn */
};

/* What capture_open found for one hook. */
struct capture_hook_info {
	const char *name;         /* tracepoint name, e.g. "kvm_exit" */
	const char *variant;      /* program chosen for the prototype, or NULL */
	bool present;             /* btf_trace_<name> in vmlinux or a KVM module's BTF */
	bool attached;
	int err;                  /* -errno of load/attach, 0 if attached or not wanted */
};

/* Callback for capture_poll: ev is the raw event; obs is non-NULL when the event carries a CR3 usable as an
 * observation. A negative return (-errno) stops the poll and is returned by it. */
typedef int (*capture_cb)(void *ctx, const struct capture_event *ev, const struct observation *obs);

int  capture_open(const struct capture_opts *opts, struct capture **out);
/* Add a QEMU process to the VM filter after open (only if opts->pids was non-empty). */
int  capture_add_vm(struct capture *c, pid_t pid);
/* Wait up to timeout_ms (0 = do not wait) and deliver what is there. Events handled, or -errno. The
 * consumer is woken early only when a quarter of the ring waits: poll with a timeout (a negative one waits
 * for that much data). */
int  capture_poll(struct capture *c, int timeout_ms, capture_cb cb, void *ctx);
/* Sum of the per-CPU counters. */
int  capture_counters_read(struct capture *c, struct capture_counters *sum);
const struct capture_hook_info *capture_hook(const struct capture *c, enum capture_hook h);
/* Kernel-side cost of one hook's program (needs /proc/sys/kernel/bpf_stats_enabled = 1). */
int  capture_prog_stats(const struct capture *c, enum capture_hook h, uint64_t *run_cnt, uint64_t *run_time_ns);
/* Exit counts by (isa, reason) and exit->entry latency per vCPU; fn returns non-zero to stop. */
int  capture_foreach_exit(struct capture *c, int (*fn)(void *ctx, const struct capture_exit_key *k, uint64_t n),
			  void *ctx);
int  capture_foreach_latency(struct capture *c,
			     int (*fn)(void *ctx, const struct capture_vcpu_key *k, const struct capture_vcpu_lat *l),
			     void *ctx);
void capture_close(struct capture *c);

/* ---- Pure helpers (unit-tested) ---- */

/* Observation carried by an event; false when it carries none (e.g. mov-to-CR3 with the value pending a
 * sync). gs_base is left 0: capture_poll fills it from the vCPU's last GS_BASE MSR write. */
bool capture_event_observation(const struct capture_event *ev, struct observation *obs);
const char *capture_kind_name(unsigned int kind);
/* Name of a KVM exit reason (isa 1 VMX, 2 SVM) as Linux spells it; buf holds it when it is composed or
 * unknown (then the number). */
const char *capture_exit_reason_name(unsigned int isa, unsigned int reason, char *buf, size_t len);
const char *capture_cr3_src_name(unsigned int src);
const char *capture_hook_name(unsigned int hook);

/* ---- Host capabilities (shared with `probe`) ---- */

/* 0 if this process may load tracing BPF; -EPERM with *missing naming the capability otherwise. */
int capture_check_privilege(const char **missing);

/* ---- Memslots: the guest-physical → host-virtual map of a VM, read by a BPF task_file iterator ---- */

struct memslot {
	uint64_t gpa;             /* guest-physical start */
	uint64_t size;            /* bytes */
	uint64_t hva;             /* start in the QEMU process's address space */
	uint32_t flags;           /* KVM_MEM_* (1 = LOG_DIRTY_PAGES, 2 = READONLY) */
	uint16_t id;              /* slot id (address-space bits stripped) */
	uint16_t as_id;           /* 0 = normal, 1 = SMM */
};

/*
 * Memslots of the VM(s) owned by process pid (QEMU's tgid), sorted by (as_id, gpa). Writes at most max and
 * returns the total number found (may exceed max), or -errno: -ESRCH no such process or no kvm-vm file in
 * it, -EPERM not privileged, -EOPNOTSUPP no BPF iterators/BTF. Works on a paused VM (no KVM event needed).
 * Use: read guest RAM at gpa from /proc/pid/mem (or process_vm_readv) at hva + (gpa - slot.gpa).
 */
int capture_read_memslots(pid_t pid, struct memslot *out, size_t max);

#endif
