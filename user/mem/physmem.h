/*
 * Guest-physical memory sources (layer 1 of 4: memory → translation → discovery → outputs).
 *
 * Every source — a live QEMU process, an ELF core, a raw image — is a struct physmem with one read
 * function. Guest memory is hostile input: reads outside the source's RAM ranges fail with -EFAULT,
 * a vanished source with -ESRCH or -EIO; nothing here ever writes guest memory.
 */
#ifndef VMOT_PHYSMEM_H
#define VMOT_PHYSMEM_H
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct phys_range {
	uint64_t start;   /* guest-physical address */
	uint64_t len;
};

/* Register state a source carries with it (ELF core notes, QMP snapshot). */
struct vcpu_state {
	uint32_t id;
	bool     valid;
	uint64_t cr0, cr3, cr4, efer;
	uint64_t gs_base, kernel_gs_base, fs_base;
	uint64_t gdt_base;          /* GDTR base: a 32-bit guest's way to its per-CPU area (discover.h) */
	uint64_t rip, rsp;
	/* An AArch64 vCPU (aarch64 set; the x86 fields above stay 0): the EL1 translation registers and what
	 * Linux keeps in two system registers. Observations of such a vCPU carry TTBR0_EL1 (ASID included) as
	 * their "cr3" and TPIDR_EL1 as their "gs_base". */
	bool aarch64;
	bool el1;                   /* the vCPU was at EL1 (kernel) when read: sp_el0 is its current task */
	uint64_t ttbr0, ttbr1, tcr; /* TTBR0_EL1 (user root, ASID 63:48), TTBR1_EL1 (kernel root), TCR_EL1 */
	uint64_t tpidr_el1;         /* this CPU's per-CPU offset (__per_cpu_offset[cpu]) */
	uint64_t sp_el0;            /* at EL1: the current task_struct (arm64 keeps `current` there) */
	uint64_t pc;
};

/* A vCPU running 32-bit paging (CR0.PG on, EFER.LMA off): its per-CPU area is reached through its GDT (the
 * observation keeps the GDTR base instead of a GS base; see discover.h, percpu_base). */
static inline bool vcpu_paging32(const struct vcpu_state *v)
{
	return (v->cr0 >> 31 & 1) && !(v->efer & (1ULL << 10));
}

struct physmem;
struct physmem_ops {
	const char *kind;  /* "raw", "elfcore", "qemu" */
	/* Read exactly len bytes at gpa (already checked to lie inside one range). 0 or -errno. */
	int (*read)(struct physmem *pm, uint64_t gpa, void *buf, size_t len);
	void (*close)(struct physmem *pm);
};

struct physmem {
	const struct physmem_ops *ops;
	void *priv;
	struct phys_range *ranges;  /* sorted, non-overlapping guest RAM */
	size_t nranges;
	struct vcpu_state *vcpus;   /* may be NULL / 0 */
	size_t nvcpus;
	/* counters, for benchmarks and budgets */
	uint64_t bytes_read;
	uint64_t reads;
	/* sticky: -ESRCH once a read found the source gone (QEMU exited); lets callers tell "the guest went
	 * away" from "the guest's memory says nothing" */
	int source_err;
	/* a caller's budget (e.g. discovery's --max-bytes): once bytes_read reaches it, reads fail with -E2BIG,
	 * which ends page-table walks too, and read_limit_hit is set. 0 = none. */
	uint64_t read_limit;
	bool read_limit_hit;
};

/* The source went away (QEMU exited) during a read; it has printed that, callers need not repeat it. */
static inline bool physmem_source_gone(const struct physmem *pm)
{
	return pm && pm->source_err == -ESRCH;
}

/* The source's vCPUs are AArch64 ones (an arm64 guest). */
static inline bool physmem_aarch64(const struct physmem *pm)
{
	for (size_t i = 0; i < pm->nvcpus; i++)
		if (pm->vcpus[i].valid && pm->vcpus[i].aarch64)
			return true;
	return false;
}

/* Bounds-checked read through the source; may span ranges only if they are contiguous. */
int physmem_read(struct physmem *pm, uint64_t gpa, void *buf, size_t len);
int physmem_read_u64(struct physmem *pm, uint64_t gpa, uint64_t *val);
bool physmem_contains(const struct physmem *pm, uint64_t gpa, size_t len);
uint64_t physmem_total(const struct physmem *pm);
void physmem_close(struct physmem *pm);

int physmem_open_raw(const char *path, struct physmem **out);
/* The same with the file's first byte at guest-physical address base. */
int physmem_open_raw_at(const char *path, uint64_t base, struct physmem **out);
int physmem_open_elfcore(const char *path, struct physmem **out);
/* Live QEMU guest: RAM located in the QEMU process, read with process_vm_readv. qmp_path may be NULL
 * (then the QMP socket is looked up from the QEMU command line). */
int physmem_open_qemu(pid_t pid, const char *qmp_path, struct physmem **out);

/* --- For sources and tests (additive) --- */

/* A fresh physmem with the given ops/priv and no ranges; NULL on ENOMEM. */
struct physmem *physmem_alloc(const struct physmem_ops *ops, void *priv);
/* Append a RAM range (any order); physmem_finalize_ranges() sorts them and rejects overlaps (-EINVAL). */
int physmem_add_range(struct physmem *pm, uint64_t start, uint64_t len);
int physmem_finalize_ranges(struct physmem *pm);
/* Index of the range holding gpa, or -1. */
long physmem_find_range(const struct physmem *pm, uint64_t gpa);
/* Bytes of [start, start+len) that are guest RAM. */
uint64_t physmem_overlap(const struct physmem *pm, uint64_t start, uint64_t len);
/* One past the highest RAM address (0 if none). */
uint64_t physmem_end(const struct physmem *pm);

/* In-memory source (tests, synthetic guests): GPA x is buf[x]; only the given ranges are RAM (NULL/0 =
 * the whole buffer). The buffer is borrowed, not copied, and must outlive the physmem. */
int physmem_open_buffer(const void *buf, size_t len, const struct phys_range *ranges, size_t nranges,
			struct physmem **out);

/* KVM memslots of a live QEMU guest (GPA → QEMU host VA), e.g. from the BPF memslot reader. */
struct kvm_memslot_map {
	uint32_t slot;
	uint64_t gpa, size;
	uint64_t hva;          /* userspace_addr in the QEMU process */
};
/* Cross-check a live QEMU source's QMP-derived map against KVM's memslots; memslots are authoritative:
 * ranges are re-cut at slot boundaries and every piece a slot covers reads at the slot's HVA (one p_warn
 * per disagreeing piece). Returns the number of pieces that disagreed (≥ 0), -EINVAL if pm is not a live
 * QEMU source, -ENOMEM. */
int physmem_qemu_set_memslots(struct physmem *pm, const struct kvm_memslot_map *slots, size_t n);
/* Live QEMU guest from memslots alone (no QMP): every slot is a RAM range read at its HVA. */
int physmem_open_qemu_memslots(pid_t pid, const struct kvm_memslot_map *slots, size_t n, struct physmem **out);
/* Host VA in the QEMU process backing gpa (0 if none / not a live QEMU source); for tools and tests. */
uint64_t physmem_qemu_hva(const struct physmem *pm, uint64_t gpa);

#endif
