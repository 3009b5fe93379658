/*
 * Observations: guest CR3 / GS base values seen per vCPU, from any source (BPF capture, QMP sampling,
 * ELF core notes, --cr3 on the command line). Discovery and validation consume only this.
 */
#ifndef VMOT_OBSERVE_H
#define VMOT_OBSERVE_H
#include <stddef.h>
#include <stdint.h>

/* vCPUs followed per guest: the one limit every layer uses. A guest with more is followed on its first
 * VMOT_MAX_VCPUS vCPUs, and the tool says so (obs_count_vcpus). */
#define VMOT_MAX_VCPUS 64

enum obs_source {
	OBS_CLI = 1,     /* --cr3 */
	OBS_ELF_NOTE,    /* register note of an ELF core */
	OBS_QMP,         /* sampled through QEMU's monitor */
	OBS_BPF,         /* KVM tracepoint */
};

struct observation {
	uint64_t time_ns;
	uint64_t cr3;       /* raw value, PCID/PTI bits included */
	uint64_t gs_base;   /* kernel GS base (per-CPU area) or 0 */
	uint32_t vcpu;
	uint32_t source;    /* enum obs_source */
};

struct obs_set {
	struct observation *v;
	size_t n, cap;
};

int  obs_add(struct obs_set *s, const struct observation *o);
void obs_free(struct obs_set *s);
/* Distinct CR3 values masked with X86_CR3_ADDR_MASK (PCID bits 0-11 and bit 63 dropped, PTI bit 12
 * kept: consumers decide whether it is a PTI user half); returns count written (≤ max). */
size_t obs_distinct_roots(const struct obs_set *s, uint64_t *roots, size_t max);
/* Distinct vCPU ids among the observations (all of them, not capped). */
size_t obs_count_vcpus(const struct obs_set *s);
/* Number of switches: consecutive observations on one vCPU whose CR3 root differs (+1 per vCPU start). */
size_t obs_switches(const struct obs_set *s);

#endif
