/*
 * Opening a guest: one memory source (a QEMU pid, an ELF core or a raw image) plus the CR3/GS-base
 * observations gathered for it (--cr3, ELF core notes, QMP sampling, BPF capture), and discovery on it.
 * A library below cmd/ (offsets, ps) and trace/ (live, record); the options that fill struct target_opts
 * are parsed in cmd/target_opts.c.
 */
#ifndef VMOT_TARGET_TARGET_H
#define VMOT_TARGET_TARGET_H
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include "discovery/discover.h"
#include "mem/observe.h"
#include "mem/physmem.h"

struct target_opts {
	pid_t pid;
	const char *core;
	const char *raw;
	uint64_t raw_base;        /* --raw-base: the raw image's first guest-physical address */
	const char *qmp;
	uint64_t *cr3s;           /* --cr3 values, in order */
	size_t ncr3;
	double timeout_s;         /* observation sampling time; < 0 = default */
	uint64_t max_bytes;       /* discovery budget; 0 = default */
};

struct target {
	struct physmem *pm;
	struct obs_set obs;
	char desc[128];           /* "QEMU pid 1234", "core FILE", ... for messages */
	double sampled_s;         /* QMP sampling time spent so far */
};

/* Sampling a live guest stops as soon as the evidence suffices: a first window of at least
 * TARGET_FIRST_SAMPLE_S (until every vCPU was seen with its per-CPU base and a CR3); then,
 * only while discovery is undetermined or not validated, slices of TARGET_RETRY_SAMPLE_S, each followed by
 * discovery again, until the whole sampling time (--timeout, default TARGET_DEFAULT_TIMEOUT_S) is spent. */
#define TARGET_DEFAULT_TIMEOUT_S 2.0
#define TARGET_FIRST_SAMPLE_S    0.2
#define TARGET_RETRY_SAMPLE_S    0.3
/* then, only while mm/active_mm are an interchangeable pair, the vCPUs' current tasks are watched up to this
 * long for a kernel thread running (pairs_watch). A saturated guest runs one about once a second: measured on the
 * busy randstruct guest under 2 extra host CPU hogs, 29 of 29 settled within 1.73 s (bound 10 s); with a 5 s bound,
 * 1 busy attach in about 45 stayed tied while the host also ran two more TCG guests. */
#define TARGET_PAIR_WATCH_S      10.0

/* Open the source and gather observations (may take timeout_s for sampling). 0 or -errno (message
 * printed). target_close() is safe on a zeroed or failed target. */
int target_open(const struct target_opts *t, struct target *tg);
void target_close(struct target *tg);
void target_opts_free(struct target_opts *t);

/* open + discover_offsets in one: returns discover_offsets' result (0, -ENOENT undetermined, -errno).
 * If the target could not be opened tg->pm is NULL (and the error printed): test that before reading
 * -ENOENT as "undetermined" (a missing file is -ENOENT too). */
int target_discover(const struct target_opts *t, struct target *tg, struct discovery_result *res);
void target_discovery_opts(const struct target_opts *t, struct discovery_opts *o);
/* After a first discover_offsets() (err its result) on a live guest: while undetermined or not validated
 * and sampling time is left, sample a slice more and discover again. Roots left unexplained that the new
 * slice does not see again (their process exited between observation and reading) are dropped rather than
 * counted against the answer; such a slice adds no new roots (under churn they would be unexplained in
 * turn), and more roots dropped than explained is not validated. res->retried says what was retried.
 * Then, with mm/active_mm tied, the vCPUs are watched TARGET_PAIR_WATCH_S (pairs_watch). Returns the last
 * discovery's result. */
int target_discover_retry(const struct target_opts *t, struct target *tg, const struct discovery_opts *d,
			  struct discovery_result *res, int err);

/* A live guest's vCPUs sampled `seconds` more (appended to tg->obs): 0, -ENODEV (not a live guest), -errno. */
int target_sample_more(struct target *tg, const struct target_opts *t, double seconds);

/* KASLR shift as LibVMI computes it (get_kaslr_offset_ia32e): the first mapped 2 MiB page of the kernel
 * image at or above 0xffffffff81000000, minus that address. 0 or -ENOENT. */
/* An arm64 guest whose vCPUs do not show the kernel's root (no vCPU's TTBR1 maps a linear map of RAM: an ELF
 * core or a raw image holds no system registers; under KPTI a vCPU read at EL0 shows the entry trampoline's
 * table): the root is searched in memory (arm64_find_kernel_root) and set as every vCPU's TTBR1, each keeping its
 * own TCR_EL1 (one saying what the search found where it had none) and TTBR0. Nothing found: left as it was. */
void target_complete_arm64_registers(struct target *tg);
int target_kaslr_shift(struct physmem *pm, const struct discovery_result *res, uint64_t *shift);

/* BPF observations of a live KVM guest (target/capture.c): begin before sampling, end drains into obs.
 * begin returns NULL when this host/guest offers none. */
struct capture;
struct capture *target_capture_begin(pid_t pid);
void target_capture_end(struct capture *cap, struct obs_set *obs);

#endif
