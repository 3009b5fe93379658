/*
 * Least privilege: the capabilities vmoffset-trace uses, checked up front so a missing one is reported in
 * one clear line instead of as an EPERM deep inside a read. No libcap: capget(2) directly.
 *   CAP_SYS_PTRACE  read a QEMU process's memory (process_vm_readv)
 *   CAP_BPF, CAP_PERFMON  load and attach the capture programs (CAP_SYS_ADMIN covers both)
 */
#ifndef VMOT_CAPS_H
#define VMOT_CAPS_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define VMOT_CAP_SYS_PTRACE 19
#define VMOT_CAP_SYS_ADMIN  21
#define VMOT_CAP_PERFMON    38
#define VMOT_CAP_BPF        39
#define CAPS_MASK(c)        (1ULL << (c))
#define CAPS_READ_QEMU      CAPS_MASK(VMOT_CAP_SYS_PTRACE)
#define CAPS_CAPTURE        (CAPS_MASK(VMOT_CAP_BPF) | CAPS_MASK(VMOT_CAP_PERFMON))

/* Effective capability set of this process. 0 or -errno. */
int caps_effective(uint64_t *eff);
/* The subset of need that eff lacks (CAP_SYS_ADMIN stands in for CAP_BPF and CAP_PERFMON). */
uint64_t caps_missing(uint64_t eff, uint64_t need);
/* "CAP_BPF, CAP_PERFMON" for a mask; returns buf. */
const char *caps_names(uint64_t mask, char *buf, size_t len);
/* Reading pid's memory needs CAP_SYS_PTRACE — unless pid runs as our own user and Yama does not
 * restrict ptrace (ptrace_scope 0). 0, or -EPERM after one p_err line naming what is missing. */
int caps_check_read_qemu(pid_t pid);

#endif
