/*
 * Synthetic guest memory for breadth tests: builds the guest-physical image of a running Linux kernel (x86-64,
 * 32-bit x86 or arm64, as the row's arch says) from one task_struct layout (a row of
 * ../shared/layouts/task_struct_layouts.csv), optionally with the layout's members shuffled like
 * CONFIG_RANDSTRUCT, plus the CR3 / GS-base observations a hypervisor would make (arm64: TTBR0 / TPIDR_EL1, and
 * the vCPUs' system registers in img->pm->vcpus, as QEMU's gdbstub gives them). The image models what the
 * kernel really keeps in memory (KASLR, direct map, kernel image page tables, PTI PGD pairs, slab-allocated
 * task_structs with stale freed objects, threads, kernel threads, idle tasks off the task list, ptrace, creds,
 * per-CPU current_task) — not what is convenient to discover.
 *
 * The true layout is recorded in the image (img->off[]) so a test can compare discovery's answer after the
 * fact; discovery itself only ever sees img->pm (memory and vCPU registers) and img->obs.
 */
#ifndef VMOT_TESTS_SYNTH_H
#define VMOT_TESTS_SYNTH_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "discovery/discover.h"
#include "mem/observe.h"
#include "mem/physmem.h"

#define SYNTH_MAX_CPUS 16

/* task_struct members the image places; the first TF_NR are the CSV's (enum task_field). */
enum synth_member {
	SM_GROUP_LEADER = TF_NR, SM_REAL_CRED, SM_THREAD_GROUP, SM_THREAD_NODE, SM_PTRACED, SM_PTRACE_ENTRY,
	SM_CG_LIST, SM_SE_GROUP_NODE, SM_PUSHABLE, SM_STACK, SM_STATE, SM_PIDS, SM_SIGNAL, SM_SIGHAND,
	SM_FILES, SM_FS, SM_NSPROXY, SM_CGROUPS, SM_EXIT_SIGNAL, SM_PFLAGS, SM_START_TIME, SM_LAST_WAKEE,
	SM_SCHED_CLASS, SM_PRIO, SM_CPU, SM_USAGE,
	SM_NR
};
extern const char *const synth_member_names[SM_NR];

/* One layout row. Offsets are -1 when the member does not exist in that kernel. */
struct synth_layout {
	char source[128];
	char release[64];
	int line;                 /* CSV line number (1 = header) */
	uint32_t size;            /* sizeof(struct task_struct) */
	int32_t off[TF_NR];
	int32_t mm_pgd, mm_mmap, mm_mt;
	int64_t current_task;     /* per-CPU offset of current_task (pcpu_hot.current_task), -1 unknown */
	bool pcpu_hot;
	uint32_t kver;            /* SYNTH_KV(major, minor, patch) parsed from release */
	uint8_t psz;              /* pointer size: 8 (x86_64 rows), 4 (i386 rows: a 32-bit guest) */
	bool arm64;               /* an arm64 row: an AArch64 guest (TTBR0/TTBR1 tables, vCPU system registers) */
};
#define SYNTH_KV(a, b, c) (((uint32_t)(a) << 16) | ((uint32_t)(b) << 8) | (uint32_t)((c) > 255 ? 255 : (c)))

/* Load every x86_64 row of the layout table. 0 or -errno; *out is malloc'd. */
int synth_load_layouts(const char *csv_path, struct synth_layout **out, size_t *n);
/* The same for the rows of one arch column value ("x86_64", "i386", "arm64"). */
int synth_load_layouts_arch(const char *csv_path, const char *arch, struct synth_layout **out, size_t *n);
/* $VMOT_LAYOUTS, else ../shared/layouts/task_struct_layouts.csv seen from the repo root or from below it;
 * NULL when absent. */
const char *synth_find_layouts_csv(void);

enum synth_tristate { SYNTH_AUTO = 0, SYNTH_ON = 1, SYNTH_OFF = 2 };

/* Zero-initialised options give a realistic default guest; AUTO switches follow the kernel version
 * (and the seed, where real machines differ: PTI only on Meltdown-affected CPUs, KASLR off on some). */
struct synth_opts {
	uint64_t seed;
	bool shuffle;             /* randstruct-like permutation of the randomisable part of task_struct */
	uint64_t ram_size;        /* bytes of guest RAM (0 = 64 MiB) */
	uint32_t ncpus;           /* vCPUs (0 = 4), ≤ SYNTH_MAX_CPUS */
	uint32_t nprocs;          /* user processes (0 = random 20..60) */
	uint32_t nkthreads;       /* kernel threads besides kthreadd (0 = random 20..40) */
	uint32_t nobs_per_cpu;    /* scheduling events observed per vCPU (0 = 40) */
	int pti, pcid, la57, kaslr;  /* enum synth_tristate */
	int junk_pct;             /* % of free RAM pages filled with stale data (0 = 10, <0 = none) */
	int nexited;              /* exited processes whose CR3 was observed (0 = 1, <0 = none) */
	bool no_noise;            /* debugging only: leave unfilled task_struct bytes zero */
	/* i386 rows only (L->psz == 4): paging mode, 2 = 2-level (4 MiB pages, no NX), 3 = PAE (2 MiB pages, NX),
	 * 0 = by the seed; PAGE_OFFSET (0 = 0xC0000000, the 3G/1G split; 0x80000000 = VMSPLIT_2G) */
	int paging32;
	uint64_t page_offset32;
	/* arm64 rows only: VA bits of both halves, 39 (3 levels), 48 (4) or 52 (5 levels, LPA2; kernels >= 6.9, else
	 * 48), 0 = by the seed; KPTI is opts.pti (AUTO: with KASLR on older kernels, as kaslr_requires_kpti did) */
	int va_bits64;
};

enum synth_task_kind { SYNTH_T_INIT, SYNTH_T_IDLE, SYNTH_T_KTHREAD, SYNTH_T_PROC, SYNTH_T_THREAD, SYNTH_T_ZOMBIE };

/* Ground truth about one live task. */
struct synth_task {
	uint64_t va;              /* task_struct VA (init_task: kernel image; others: direct map) */
	int32_t pid, tgid;
	char comm[16];
	int kind;                 /* enum synth_task_kind */
	bool on_tasks_list;
	int32_t real_parent, parent, leader, tracer;   /* indices into img->tasks, -1 none */
	int32_t mm;               /* index into img->mms, -1 = NULL */
	uint64_t mm_va, active_mm_va;
	uint64_t cred_va, real_cred_va;
	int cpu;                  /* vCPU it is running on, -1 */
};

struct synth_mm {
	uint64_t va, pgd_va, pgd_pa;
	int32_t owner;            /* task index of the leader */
	bool exited;              /* freed: only seen in observations */
};

struct synth_image {
	uint8_t *mem;             /* guest-physical memory, gpa x = mem[x] (ram_base + ram_size bytes) */
	uint64_t ram_size;        /* bytes of RAM, from ram_base */
	struct phys_range ranges[2];
	struct physmem *pm;       /* in-memory physmem over mem (only the ranges are RAM) */
	struct obs_set obs;       /* CR3 / GS base observations, time-ordered */

	struct synth_layout layout;   /* the row it was built from */
	int32_t off[SM_NR];           /* true offsets in this image (shuffled when opts.shuffle), -1 absent */
	uint32_t mm_struct_size;
	bool shuffled, la57, pti, pcid, kaslr, pda;
	int paging_levels;            /* 2 or 3 on a 32-bit guest; arm64: 3, 4 or 5 */
	unsigned psz;                 /* pointer size of the guest: 8 or 4 */
	bool arm64, lpa2, kpti;       /* an AArch64 guest: 52-bit VAs with LPA2, kernel unmapped at EL0 */
	unsigned va_bits;             /* arm64: VA bits of both halves (TCR_EL1.T0SZ/T1SZ) */
	uint64_t ram_base;            /* first RAM address: 0 on x86, 1 GiB on arm64 (QEMU virt) */

	uint64_t page_offset_base;    /* direct map (arm64: the linear map's VA of PA 0) */
	uint64_t kernel_va, kernel_pa, kernel_size;   /* _text and the mapped image */
	uint64_t swapper_pgd_va, swapper_pgd_pa;
	uint64_t tramp_pgd_pa;                 /* arm64 with KPTI: the entry trampoline's TTBR1 table (0 without) */
	uint64_t init_task_va, init_mm_va, init_cred_va;
	uint32_t ncpus;
	uint64_t gs_base[SYNTH_MAX_CPUS];      /* 32-bit: the GDTR base, a fixmap alias of the CPU's gdt_page;
	                                        * arm64: TPIDR_EL1, the CPU's per-CPU offset */
	uint64_t current[SYNTH_MAX_CPUS];      /* task running on each vCPU */
	uint64_t current_off;                  /* gs_base + current_off holds current (32-bit: from gdt_page's
	                                        * lowmem address; arm64: __entry_task, from __per_cpu_start) */

	struct synth_task *tasks;
	size_t ntasks;
	struct synth_mm *mms;
	size_t nmms;
	uint32_t n_on_list;       /* tasks on the tasks list, init_task included */
	uint32_t n_threads;       /* non-leader threads */
	uint32_t n_stale;         /* freed task_structs left in slab slots */
	void *priv;
};

int synth_build(const struct synth_layout *L, const struct synth_opts *o, struct synth_image *img);
void synth_free(struct synth_image *img);
/* Raw image: file offset = guest-physical address (holes zero). */
int synth_write_raw(const struct synth_image *img, const char *path);
/* Kernel VA (direct map or kernel image) → guest-physical, from the generator's own bookkeeping; ~0 if
 * neither. For checks that must not depend on the translation code under test. */
uint64_t synth_kva_to_pa(const struct synth_image *img, uint64_t va);

#endif
