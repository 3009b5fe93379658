/*
 * Offset discovery (layer 3): find task_struct / mm_struct member offsets, init_task and the direct map
 * from guest memory and observed CR3s alone — no version, no System.map, no BTF. Abstains (found=false,
 * with a reason) rather than guess.
 */
#ifndef VMOT_DISCOVER_H
#define VMOT_DISCOVER_H
#include <stdbool.h>
#include <stdint.h>
#include "arch/arm64.h"
#include "arch/x86_32.h"
#include "arch/x86_64.h"
#include "mem/observe.h"
#include "mem/physmem.h"

enum task_field {
	TF_TASKS, TF_PID, TF_TGID, TF_COMM, TF_MM, TF_ACTIVE_MM,
	TF_REAL_PARENT, TF_PARENT, TF_CHILDREN, TF_SIBLING, TF_CRED,
	TF_NR
};
extern const char *const task_field_names[TF_NR];
extern const char *const mm_args_names[4];   /* "arg_start", "arg_end", "env_start", "env_end" */
extern const char *const cred_id_names[4];   /* "uid", "gid", "euid", "egid" */

/* Members behind memory maps and executables (issue 14), by struct: mm_struct, vm_area_struct, file, dentry,
 * vfsmount, mount. MM_MAP_ROOT is mm_mt (the maple tree, 6.1+) or mmap (the VMA list) as res->maple says; DENTRY_NAME
 * is the qstr d_name (hash/len, then the name pointer), DENTRY_HASH the hlist_bl_node d_hash; FILE_DENTRY and
 * FILE_MNT are f_path's two members (struct path is shuffled too under RANDSTRUCT). */
enum maps_member {
	MM_MAP_ROOT, MM_MAP_COUNT, MM_EXE_FILE, MM_START_BRK, MM_BRK, MM_START_STACK,
	VMA_START, VMA_END, VMA_MM, VMA_FLAGS, VMA_PGOFF, VMA_FILE, VMA_NEXT, VMA_PRIVATE,
	FILE_DENTRY, FILE_MNT, DENTRY_PARENT, DENTRY_NAME, DENTRY_HASH, VFSMOUNT_ROOT, MOUNT_MNT, MOUNT_PARENT, MOUNT_MOUNTPOINT,
	MAPS_NR
};
extern const char *const maps_member_names[MAPS_NR];   /* the kernel's names ("vm_start", "f_path", ...) */

/* Two members that held the same value on every task read (real_parent/parent with nothing ptraced, mm/
 * active_mm with no kernel thread caught running, real_cred/cred outside override_creds) in a layout whose
 * declaration order cannot be trusted: which offset is which is unknown, but either reads the right value on
 * each of those tasks. Both members stay !found; task[f].tied marks the ones we have a task_field for. */
struct offset_pair {
	const char *members[2];     /* as the kernel names them */
	int64_t offsets[2];         /* ascending */
	enum task_field fields[2];  /* TF_NR where the member is not one of ours (real_cred) */
};
#define VMOT_MAX_PAIRS 4


struct offset_result {
	int64_t offset;       /* bytes from the start of the struct */
	bool found;
	bool tied;            /* !found, one of an interchangeable pair (res->pairs): offset is the pair's first
	                       * offset, which held this member's value on every task read */
	double confidence;    /* 0..1: fraction of checks passed; 1 = every check on every task */
	char how[96];         /* which evidence decided it, or why undetermined */
};

/* Found, or tied in a pair (its value right either way): what readers of guest memory may use. */
static inline bool offset_usable(const struct offset_result *r)
{
	return r->found || r->tied;
}

struct discovery_opts {
	uint64_t max_bytes;      /* budget of guest bytes read (0 = default 64 MiB) */
	uint32_t max_tasks;      /* bound on any task-list walk (0 = default 65536) */
	int progress;            /* print progress on stderr */
	/* Called as discovery moves from step to step (step names: "kernel space", "init_task",
	 * "task_struct fields", "validation", "current task"), with guest bytes read so far. NULL: none. */
	void (*progress_fn)(void *ctx, const char *step, uint64_t bytes_read);
	void *progress_ctx;
};

struct discovery_result {
	struct offset_result task[TF_NR];
	struct offset_result mm_pgd;
	/* mm_struct.{arg_start, arg_end, env_start, env_end} (mm_args_names): found by discover_mm_args, optional */
	struct offset_result mm_args[4];
	/* struct cred's uid, gid, euid, egid (cred_id_names): found by discover_cred_ids, optional */
	struct offset_result cred_ids[4];
	/* memory maps, executables and paths (enum maps_member): found by discover_mm_maps, optional */
	struct offset_result maps[MAPS_NR];
	bool maple;                  /* VMAs in a maple tree (maps[MM_MAP_ROOT] is mm_mt), else a list (mmap) */
	uint32_t maple_root;         /* ma_root's offset in struct maple_tree (8; 40 with PREEMPT_RT's spinlock) */
	/* One parent pointer member only (utrace kernels: RHEL5 kept "parent", Fedora 9 "real_parent"; memory
	 * cannot tell which name the source used). It holds the real parent, so both real_parent and parent are
	 * reported at its offset. */
	bool single_parent;
	uint32_t npairs;             /* interchangeable pairs among the members (see struct offset_pair) */
	struct offset_pair pairs[VMOT_MAX_PAIRS];
	uint64_t init_task;          /* VA of init_task */
	uint64_t page_offset_base;   /* direct map base */
	uint64_t kernel_cr3;         /* root used to read kernel memory */
	bool la57;
	int paging32;                /* a 32-bit x86 guest: 2 (no PAE) or 3 (PAE) levels; 0: x86-64 */
	uint64_t lowmem_size;        /* 32-bit: bytes of RAM the lowmem map (page_offset_base on) covers */
	/* An arm64 guest (AArch64 vCPUs): kernel_cr3 is TTBR1's root, observed "CR3s" are TTBR0 values, and
	 * page_offset_base is the linear map's VA of PA 0. VA sizes and LPA2 as the vCPUs' TCR_EL1 says. */
	bool arm64, lpa2;
	uint8_t va_bits0, va_bits1;
	/* Found along the way, needed to walk threads; not part of the output formats. */
	int64_t thread_ring;         /* list_head linking a thread group's tasks (thread_group/thread_node), -1 none */
	uint32_t task_stride;        /* smallest distance between two task_structs seen: >= sizeof */
	uint32_t ntasks;             /* tasks on the list (leaders) */
	uint32_t nthreads;           /* all threads found */
	/* validation against observations */
	uint64_t switches_observed, switches_explained;
	uint32_t roots_observed, roots_explained;
	bool validated;              /* every offset found (or tied in a pair) and every observed root explained */
	char reason[256];            /* why not validated / undetermined */
	uint32_t nunexplained;       /* observed roots no mm on the task list explains (first 8 kept) */
	uint64_t unexplained[8];
	char retried[256];           /* what was sampled and read again before this answer ("" none) */
	uint64_t bytes_read;
	double elapsed_s;
	/* per-vCPU current task, from the GS base (per-CPU area) each vCPU was observed with */
	int64_t percpu_current;      /* offset of the current-task pointer in the per-CPU area, -1 unknown */
	/* per-CPU slots that held each vCPU's running task when read: percpu_current when it is unique, else
	 * those that agreed (current_task, the runqueue's curr, a copy that keeps the last user task, ...) */
	uint32_t nrunning_slots;
	int64_t running_slots[4];
	uint32_t ncurrent;
	struct vcpu_current {
		uint32_t vcpu;
		uint64_t task;           /* task_struct VA */
		int32_t pid;
		char comm[17];
	} current[VMOT_MAX_VCPUS];
};

/* 0 when every offset was found (validation may still fail: see res->validated); -ENOENT when
 * undetermined (res->reason says why); other -errno on memory errors. */
int discover_offsets(struct physmem *pm, const struct obs_set *obs, const struct discovery_opts *opts,
		     struct discovery_result *res);

/* The kernel's page-table root among observed CR3 roots (each tried as itself, then as the kernel half of
 * a PTI pair): *root (with X86_CR3_EXACT), the paging mode (*la57: from a vCPU's CR4 where the source has
 * one, else detected) and the direct map's base. 0 or -ENOENT. */
int kernel_root_find(struct physmem *pm, const uint64_t *roots, size_t nroots, bool *la57, uint64_t *root,
		     uint64_t *page_offset_base);

/* The per-CPU area an observation's hint (observation.gs_base) names: on x86-64 the kernel's GS base itself; on
 * a 32-bit guest the hint is the GDTR base, a read-only fixmap alias of the vCPU's per-CPU gdt_page, and the
 * area is that page's lowmem address (every per-CPU variable sits at a fixed distance from it). 0 when the
 * hint does not resolve. percpu_base_vm: the same through a kernel vmem already set up. */
struct vmem;
uint64_t percpu_base(struct physmem *pm, const struct discovery_result *r, uint64_t hint);
uint64_t percpu_base_vm(struct vmem *vm, const struct discovery_result *r, uint64_t hint);

/* An observed CR3 as a page-table root: bits 51:12 (PTI bit kept), or a 32-bit guest's root (PAE: a 32-byte
 * aligned PDPT, its low bits matter). */
static inline uint64_t cr3_root_of(const struct discovery_result *r, uint64_t cr3)
{
	if (r->paging32)
		return cr3 & (r->paging32 == 3 ? 0xffffffe0ULL : 0xfffff000ULL);
	if (r->arm64)   /* TTBR0: ASID and CnP dropped */
		return arm64_ttbr_root(cr3, r->va_bits0, r->lpa2);
	return cr3 & X86_CR3_ADDR_MASK;
}

/* A kernel pointer of this guest: x86-64's kernel half (la57: above 0xff00000000000000), a 32-bit guest's at or
 * above PAGE_OFFSET (4-byte aligned), arm64's TTBR1 half. The one rule every layer uses. */
static inline bool guest_kernel_ptr(const struct discovery_result *r, uint64_t va)
{
	if (r->paging32)
		return x86_32_kernel_ptr(va, r->page_offset_base);
	if (r->arm64)
		return arm64_kernel_ptr(va, r->va_bits1);
	return x86_kernel_ptr(va, r->la57);
}

/* The end of the user half: a user address is non-zero and below it (x86-64: 2^47, 2^56 with LA57; 32-bit:
 * PAGE_OFFSET; arm64: 2^va_bits0). */
static inline uint64_t guest_user_top(const struct discovery_result *r)
{
	if (r->paging32)
		return r->page_offset_base;
	if (r->arm64)
		return r->va_bits0 ? 1ULL << r->va_bits0 : 0;
	return r->la57 ? 0x0100000000000000ULL : 0x0000800000000000ULL;
}

/* Alignment mask of a process's page-table root: a PAE PDPT is 32-byte aligned, an arm64 pgd its top table's
 * size (128 bytes with 52-bit VAs), others a page. */
static inline uint64_t guest_pgd_align(const struct discovery_result *r)
{
	if (r->paging32 == 3)
		return 0x1f;
	if (r->arm64)
		return arm64_top_table_bytes(r->va_bits0) - 1;
	return 0xfff;
}

/* Pointer size of the guest discovery read: 4 on a 32-bit x86 guest, else 8. */
static inline unsigned guest_ptr_size(const struct discovery_result *r) { return r->paging32 ? 4 : 8; }

/* An observed CR3 root belongs to the PGD at pgd_pa: the same page, or (PTI) its user half at +4 KiB. */
static inline bool pgd_matches_root(uint64_t pgd_pa, uint64_t root)
{
	return pgd_pa == root || (!(pgd_pa & 0x1fff) && (pgd_pa | 0x1000) == root);
}
/* The same for a guest whose kind discovery knows: arm64 has no PTI pairs (its mm's pgd is TTBR0 itself). */
static inline bool root_matches_pgd(const struct discovery_result *r, uint64_t pgd_pa, uint64_t root)
{
	return r->arm64 ? pgd_pa == root : pgd_matches_root(pgd_pa, root);
}
/* A root whose user half maps nothing: the kernel's own (init_mm), loaded between processes. */
bool pgd_user_half_empty(struct physmem *pm, uint64_t root);

/* A guest process/thread read through discovered offsets. */
struct guest_task {
	uint64_t addr;        /* task_struct VA */
	int32_t pid, tgid, ppid;
	char comm[17];
	uint64_t mm;          /* 0 for kernel threads */
	uint64_t pgd_pa;      /* page-table root of mm, 0 if none */
	bool kernel_thread;
};

/* The kernel's address space as discovery found it (kernel root, paging mode, direct map): for reads after
 * discovery. kernel_vmem_new mallocs one (8 KiB: its TLB); NULL when out of memory. */
void kernel_vmem_init(struct vmem *vm, struct physmem *pm, const struct discovery_result *res);
/* A process's address space: its own page-table root (pgd_pa) in the guest's paging mode (arm64: TTBR0, with
 * the kernel's TTBR1). */
void process_vmem_init(struct vmem *vm, struct physmem *pm, const struct discovery_result *res, uint64_t pgd_pa);
struct vmem *kernel_vmem_new(struct physmem *pm, const struct discovery_result *res);

/* Walk the task list (and each group's threads); bounded by opts->max_tasks. Caller frees *tasks. */
int guest_tasks_list(struct physmem *pm, const struct discovery_result *res, const struct discovery_opts *opts,
		     struct guest_task **tasks, size_t *ntasks);

/* One task read at addr (what a walk reads of it: ids, comm, mm and its PGD). 0, -EFAULT, -ENOMEM. */
int guest_task_at(struct physmem *pm, const struct discovery_result *res, uint64_t addr, struct guest_task *g);

/* mm_struct's arg_start, arg_end, env_start, env_end (res->mm_args) from the listed processes' argv and
 * environment, in any member order. 0, -ENOENT (mm_args[].how says why) or -ENOMEM. */
int discover_mm_args(struct physmem *pm, struct discovery_result *res, const struct guest_task *tasks, size_t n);
/* struct cred's uid, gid, euid, egid (res->cred_ids) from the listed processes' creds: 0, -ENOENT (how says
 * why: e.g. every process is root) or -ENOMEM. */
int discover_cred_ids(struct physmem *pm, struct discovery_result *res, const struct guest_task *tasks, size_t n);
/* A task's uid, gid, euid, egid (cred_id_names order) through its cred. -ENOENT without cred_ids. */
int guest_task_ids(struct physmem *pm, const struct discovery_result *res, const struct guest_task *t, uint32_t ids[4]);
/* A process's argv (NUL-separated, as /proc/PID/cmdline) through its page tables: up to cap-1 bytes, NUL
 * appended; *len the bytes read. -ENOENT without mm_args or an mm, -EINVAL when its mm holds no command line. */
int guest_task_cmdline(struct physmem *pm, const struct discovery_result *res, const struct guest_task *t, char *buf,
		       size_t cap, size_t *len);

/* Memory maps (res->maps, res->maple) from the listed processes' mm_structs and VMAs, then (discover_paths)
 * the file/dentry/mount members from their executables. 0 when a process's maps can be read (some naming
 * members may still be undetermined: maps[].how says why), -ENOENT, -ENOMEM. */
int discover_mm_maps(struct physmem *pm, struct discovery_result *res, const struct guest_task *tasks, size_t n);
int discover_paths(struct physmem *pm, struct discovery_result *res, const struct guest_task *tasks, size_t n);

/* One mapping, as a /proc/PID/maps line needs it. */
struct guest_vma {
	uint64_t start, end;   /* [start, end) */
	uint64_t flags;        /* vm_flags: VM_READ 1, VM_WRITE 2, VM_EXEC 4, VM_MAYSHARE 0x80 */
	uint64_t pgoff;        /* vm_pgoff (pages), 0 when unknown */
	uint64_t file;         /* struct file VA, 0 for anonymous memory */
	char name[32];         /* "[heap]", "[stack]", "[vdso]", ... for anonymous ones, else "" */
};
/* A process's mappings in address order (malloc'd *out); bounded and checked walks: -ELOOP / -EINVAL with
 * *why on a looping or lying tree or list, -ENOENT without the members (or a kernel thread). A read found
 * inconsistent (the process changed its tree meanwhile) is done again, up to 4 reads. */
int guest_task_maps(struct physmem *pm, const struct discovery_result *res, const struct guest_task *t,
		    struct guest_vma **out, size_t *nout, const char **why);
/* mm->exe_file of a process (0: none). -ENOENT without exe_file or an mm. */
int guest_task_exe_file(struct physmem *pm, const struct discovery_result *res, const struct guest_task *t,
			uint64_t *file);
/* The path of a struct file, as d_path builds it (across mounts, " (deleted)" once unlinked, a part that
 * cannot be read shown as "?"). -ENOENT without the members, -ELOOP on a looping chain, -EFAULT. */
int guest_file_path(struct physmem *pm, const struct discovery_result *res, uint64_t file, char *out, size_t cap);

/* Settle interchangeable pairs (res->pairs) from tasks whose two values now differ (a kernel thread running,
 * a ptrace attach, override_creds, a thread): each settled pair's members become found and leave the list.
 * Returns how many were settled; what (if given) says which and why. */
int pairs_settle(struct physmem *pm, struct discovery_result *res, const struct guest_task *tasks, size_t ntasks,
		 char *what, size_t len);
/* While mm/active_mm are tied: read each vCPU's current task (GS base gs[v] + res->percpu_current, else each
 * of res->running_slots) as fast as
 * memory reads go, up to max_ns, and settle the pair the moment a vCPU is caught running a kernel thread (on
 * a saturated guest they run for microseconds now and then). Returns pairs settled (0: none or not tied). */
int pairs_watch(struct physmem *pm, struct discovery_result *res, const uint64_t *gs, uint32_t ngs, uint64_t max_ns,
		char *what, size_t len);

#endif
