/*
 * QMP client (QEMU Machine Protocol over a UNIX socket) and parsers for the HMP text QEMU gives us:
 * `info registers -a`, `info mtree -f`, `info ramblock`, `xp`/`x`.
 *
 * Every read has a timeout; asynchronous events interleaved with replies are skipped (counted);
 * replies are matched by "id". JSON is parsed with json-c. All functions return 0 or -errno and print
 * one p_err line on failure: -ETIMEDOUT (QEMU did not answer), -ECONNRESET/-EPIPE (QEMU went away),
 * -EPROTO (not QMP), -EREMOTEIO (QEMU returned an error), -EFAULT (memory not accessible).
 */
#ifndef VMOT_QMP_H
#define VMOT_QMP_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "mem/observe.h"
#include "mem/physmem.h"

struct json_object;
struct qmp;

#define QMP_DEFAULT_TIMEOUT_MS 5000

/* Connect, read the greeting and negotiate capabilities. timeout_ms 0 = QMP_DEFAULT_TIMEOUT_MS. */
int qmp_open(const char *path, int timeout_ms, struct qmp **out);
void qmp_close(struct qmp *q);
/* The same handshake on an already connected stream socket (tests, fuzzing: a socketpair end). On success
 * the fd belongs to the qmp (qmp_close closes it); on failure it is left open for the caller. name is
 * used in messages. */
int qmp_open_fd(int fd, const char *name, int timeout_ms, struct qmp **out);
void qmp_set_timeout(struct qmp *q, int timeout_ms);
/* Keep transport errors (send/read failures, QEMU closing the socket, timeouts) for qmp_last_error
 * instead of printing them: for a caller that can tell the cause better (QEMU exited, say). */
void qmp_defer_errors(struct qmp *q, bool defer);
const char *qmp_last_error(const struct qmp *q);   /* NULL when there was none */
/* Number of asynchronous events skipped so far. */
uint64_t qmp_events_seen(const struct qmp *q);

/* Run `execute` with optional args (borrowed). On success *ret (if non-NULL) receives the "return"
 * value, owned by the caller (json_object_put). QEMU errors → -EREMOTEIO with QEMU's description. */
int qmp_command(struct qmp *q, const char *execute, struct json_object *args, struct json_object **ret);
/* human-monitor-command; cpu_index < 0 = the monitor's default CPU. *out is malloc'd text. */
int qmp_hmp(struct qmp *q, const char *cmdline, int cpu_index, char **out);

/* The guest's architecture (query-target, asked once). */
enum { QMP_ARCH_X86 = 1, QMP_ARCH_AARCH64, QMP_ARCH_OTHER };
int qmp_guest_arch(struct qmp *q);
/* An arm64 guest's vCPUs through QEMU's gdbstub (user/mem/gdbstub.h), started at the first call and stopped by
 * qmp_close. */
int qmp_read_arm64_vcpus(struct qmp *q, struct vcpu_state **out, size_t *n);
/* `info registers -a` → one vcpu_state per CPU (CR3 raw: PCID/PTI bits kept); an arm64 guest's through its
 * gdbstub (qmp_read_arm64_vcpus). *out is malloc'd. */
int qmp_read_vcpus(struct qmp *q, struct vcpu_state **out, size_t *n);
/* Sample every vCPU `count` times, interval_ms apart, appending OBS_QMP observations (raw CR3 and the
 * kernel GS base: GS base in kernel mode, KernelGSbase when QEMU prints it, else 0). */
int qmp_sample_observations(struct qmp *q, struct obs_set *s, unsigned count, unsigned interval_ms);

/* Guest-physical RAM of the machine as QEMU describes it. */
struct qemu_ram_range {
	uint64_t gpa, len;
	char block[64];        /* RAM block / memory region name, e.g. "pc.ram" */
	uint64_t offset;       /* offset inside that block */
	bool rom;              /* mapped read-only into the guest (still RAM-backed) */
};
struct qemu_ramblock {
	char name[128];        /* as `info ramblock` prints it, e.g. "pc.ram", "0000:00:02.0/vga.vram" */
	uint64_t page_size, offset, used, total;
};
/* query-memory-size-summary: base + plugged memory. */
int qmp_query_ram_size(struct qmp *q, uint64_t *base, uint64_t *plugged);
/* `info mtree -f`, RAM/ROM ranges of the FlatView used by address space "memory". */
int qmp_read_mtree(struct qmp *q, struct qemu_ram_range **out, size_t *n);
int qmp_read_ramblocks(struct qmp *q, struct qemu_ramblock **out, size_t *n);
/* Read guest memory through the monitor (slow; for verification and tests): xp = physical,
 * x = virtual through vCPU cpu_index's page tables. -EFAULT if QEMU cannot access it. */
int qmp_xp(struct qmp *q, uint64_t gpa, void *buf, size_t len);
int qmp_x(struct qmp *q, int cpu_index, uint64_t va, void *buf, size_t len);

/* Pure parsers (unit-tested on captured output). as_name NULL = "memory". */
int qmp_parse_registers(const char *text, struct vcpu_state **out, size_t *n);
int qmp_parse_mtree(const char *text, const char *as_name, struct qemu_ram_range **out, size_t *n);
int qmp_parse_ramblocks(const char *text, struct qemu_ramblock **out, size_t *n);
/* Parse `xp`/`x` /Nxb output of exactly len bytes starting at addr. */
int qmp_parse_memdump(const char *text, uint64_t addr, void *buf, size_t len);

#endif
