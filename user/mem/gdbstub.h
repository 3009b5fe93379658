/*
 * AArch64 vCPU registers through QEMU's gdbstub (the GDB remote serial protocol), for arm64 guests: QEMU's
 * monitor prints no system registers for them (`info registers` has no TTBR), its gdbstub has them all.
 *
 * The stub is started on the monitor (`gdbserver unix:PRIVATE_SOCKET,...`) only while we need it, and stopped
 * again (`gdbserver none`) when we are done. While connected QEMU stops the guest; every read stops it
 * (^C), reads TTBR0_EL1, TTBR1_EL1, TCR_EL1, TPIDR_EL1, SP_EL0, PC and CPSR of each vCPU, and lets it run
 * again: a pause of a few milliseconds per read. A debugger the user had attached to that QEMU's gdbstub
 * is replaced (QEMU keeps one). Nothing is ever written to the guest.
 *
 * The stub is QEMU's, but its answers are still parsed as untrusted input: packets are bounded, checksums
 * checked, every wait has a timeout.
 */
#ifndef VMOT_GDBSTUB_H
#define VMOT_GDBSTUB_H
#include <stddef.h>
#include "mem/physmem.h"

struct qmp;
struct gdbstub;

/* Start QEMU's gdbstub through the monitor q and connect to it (the guest stops until the next read ends).
 * 0 or -errno, with one line printed on failure. */
int gdbstub_open(struct qmp *q, struct gdbstub **out);
/* One vcpu_state per vCPU (aarch64 set; cr3 = TTBR0_EL1, gs_base = TPIDR_EL1 for the observation code);
 * the guest runs again afterwards. *out is malloc'd. */
int gdbstub_read_arm64_vcpus(struct gdbstub *g, struct vcpu_state **out, size_t *n);
/* Detach (the guest runs on) and stop the stub through q. */
void gdbstub_close(struct gdbstub *g, struct qmp *q);

/* Pure parsers (unit-tested): a packet's payload from "$...#cs" (0, -EAGAIN incomplete, -EPROTO bad
 * checksum or framing; *used = bytes consumed), and the register numbers of the named registers in a
 * target description (regnum attributes, else numbered in order from *next). */
int gdb_parse_packet(const char *buf, size_t len, char *payload, size_t cap, size_t *used);
void gdb_xml_regnums(const char *xml, const char *const *names, int *nums, size_t nnames, int *next);

#endif
