/*
 * Guest-physical memory sources (layer 1 of 4: memory → translation → discovery → outputs).
 *
 * Every source — a live QEMU process, an ELF core, a raw image — is a struct physmem with one read
 * function. Guest memory is hostile input: reads outside the source's RAM ranges fail with -EFAULT,
 * a vanished source with -ESRCH or -EIO; nothing here ever writes guest memory.
 */
#ifndef VMOT_PHYSMEM_H
#define VMOT_PHYSMEM_H
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
	uint64_t rip, rsp;
};

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
};

/* Bounds-checked read through the source; may span ranges only if they are contiguous. */
int physmem_read(struct physmem *pm, uint64_t gpa, void *buf, size_t len);
int physmem_read_u64(struct physmem *pm, uint64_t gpa, uint64_t *val);
bool physmem_contains(const struct physmem *pm, uint64_t gpa, size_t len);
uint64_t physmem_total(const struct physmem *pm);
void physmem_close(struct physmem *pm);

int physmem_open_raw(const char *path, struct physmem **out);
int physmem_open_elfcore(const char *path, struct physmem **out);
/* Live QEMU guest: RAM located in the QEMU process, read with process_vm_readv. qmp_path may be NULL
 * (then the QMP socket is looked up from the QEMU command line). */
int physmem_open_qemu(pid_t pid, const char *qmp_path, struct physmem **out);

#endif
