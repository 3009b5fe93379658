/*
 * tinyvm: the smallest guest that switches page tables, built through /dev/kvm. Long mode with K page-table
 * roots (distinct PML4 pages, the same identity map of the first 2 MiB). The guest writes GS_BASE once
 * (an MSR exit), touches one unmapped address (an MMIO exit), then writes CR3 N times cycling through the
 * roots and halts; every S writes (0 = never) it does `out 0xf1` so the host gets a sync point and reads
 * CR3 back with KVM_GET_SREGS. Used by `probe` (to make the KVM hooks fire) and tests/tools/kvm-tiny.
 */
#ifndef VMOT_TINYVM_H
#define VMOT_TINYVM_H
#include <stdint.h>

#define TINYVM_MAX_ROOTS  16
#define TINYVM_GS_BASE    0x1000ULL        /* value the guest writes to MSR_GS_BASE */
#define TINYVM_MMIO_GPA   0x300000ULL      /* outside the memslot */
#define TINYVM_SYNC_PORT  0xf1

struct tinyvm_opts {
	unsigned long writes;       /* CR3 writes (default 2000 when 0 and !zero_writes) */
	unsigned int nroots;        /* 2..TINYVM_MAX_ROOTS (default 4) */
	unsigned long sync_every;   /* PIO sync every S writes, 0 = none */
	/* called at each sync with CR3 read back through KVM_GET_SREGS (may be NULL) */
	void (*on_sync)(void *ctx, uint64_t cr3);
	void *ctx;
	/* called once the VM exists, before it runs (e.g. to read its memslots); non-zero aborts */
	int (*on_ready)(void *ctx);
};

struct tinyvm_result {
	uint64_t roots[TINYVM_MAX_ROOTS];
	unsigned int nroots;
	unsigned long writes, syncs;
	uint64_t elapsed_ns;        /* KVM_RUN loop only */
	uint64_t final_cr3;
	uint64_t mem_hva;           /* host address of guest RAM (GPA 0), size mem_size */
	uint64_t mem_size;
	unsigned int bad_exit;      /* KVM_EXIT_* that ended the run with -EPROTO */
};

/* 0 on a clean halt; -ENOENT/-EACCES/-ENODEV/-ENXIO when KVM is missing or unusable; other -errno. */
int tinyvm_run(const struct tinyvm_opts *opts, struct tinyvm_result *res);

#endif
