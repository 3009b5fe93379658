/*
 * Synthetic x86-64 Linux guest memory (see synth.h). Everything below imitates a real kernel's state:
 *
 *  - KASLR'd kernel image (text RX, rodata R/NX, data RW/NX with 4K pages, bss), mapped by page tables that
 *    live in the image's .data like level3_kernel_pgt / level2_kernel_pgt; swapper_pg_dir (init_top_pgt) in
 *    .data, with a PTI shadow at +4 KiB; a randomised direct map of all RAM (4K pages below 2 MiB, 2M above),
 *    vmalloc'd kernel stacks (CONFIG_VMAP_STACK, ≥ 4.9) or direct-map stacks with thread_info (older),
 *    cpu_entry_area, a fixmap page pointing at the local APIC (not RAM).
 *  - init_task, init_mm (pgd = swapper_pg_dir's kernel-image VA), init_cred and friends in .data; every
 *    other task_struct in SLUB slabs of the direct map (random free-list order, stale freed task_structs in
 *    unused slots with poisoned list pointers and an obfuscated free pointer).
 *  - pid 1, kthreadd, kernel threads (children of kthreadd), idle tasks of secondary CPUs (pid 0, not on
 *    the tasks list, real_parent = pid 1), a process tree ≥ 3 deep, multi-threaded processes (threads off
 *    the tasks list, thread_group / thread_node rings, exit_signal -1, real_parent = the process's parent,
 *    a stale copy of the creator's tasks list_head), a zombie (mm NULL, on the list), ptrace (parent =
 *    tracer), a task with overridden creds, cgroup css_set rings, CFS run lists, struct pid back links.
 *  - Unfilled task_struct bytes: a fixed per-image schema of field types (empty list heads, mutexes,
 *    object pointers, task pointers, cleared rb nodes, counters, timestamps, user pointers, FPU bytes, …),
 *    the same kind at the same offset in every task as in a real struct.
 *  - Per-CPU areas with current_task (or the x8664_pda before 2.6.30), runqueues, cpu_tlbstate; CR3
 *    observations from a simulated scheduler with lazy TLB, PCID ASIDs, PTI user/kernel halves and the
 *    no-flush bit on CR3 writes.
 *
 * i386 rows make a 32-bit guest (lowmem, PAE or 2-level paging, the GDT's per-CPU segment). arm64 rows make an
 * AArch64 guest with the same tasks, slabs, lists and creds; what differs is the address space and the registers:
 * RAM from 1 GiB (QEMU virt), swapper_pg_dir as TTBR1 with a KASLR'd linear map of all RAM (pages with
 * rodata_full), the image mapped apart (text and rodata read-only, the init section with the per-CPU link
 * addresses unmapped, data writable), vmalloc'd stacks, vmemmap and a fixmap; 39-, 48- or 52-bit (LPA2) VAs; process
 * pgds with no kernel half, observed as TTBR0 (ASID, CnP; the empty reserved table between processes); per-CPU
 * offsets in TPIDR_EL1; KPTI's trampoline table in TTBR1 at EL0; and the vCPUs' TTBR0/TTBR1/TCR/TPIDR_EL1/SP_EL0
 * in pm->vcpus, as QEMU's gdbstub reads them.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "synth.h"

const char *const synth_member_names[SM_NR] = {
	"tasks", "pid", "tgid", "comm", "mm", "active_mm", "real_parent", "parent", "children", "sibling",
	"cred", "group_leader", "real_cred", "thread_group", "thread_node", "ptraced", "ptrace_entry",
	"cg_list", "se.group_node", "pushable_tasks", "stack", "state", "pids", "signal", "sighand", "files",
	"fs", "nsproxy", "cgroups", "exit_signal", "flags", "start_time", "last_wakee", "sched_class", "prio",
	"cpu", "usage",
};

/* ------------------------------------------------------------------------------------------------ */
/* random numbers (splitmix64: fast, good enough, reproducible)                                       */

struct rng { uint64_t s; };

static uint64_t rn(struct rng *r)
{
	uint64_t z = (r->s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}
static uint64_t rr(struct rng *r, uint64_t n) { return n ? rn(r) % n : 0; }
static bool rp(struct rng *r, unsigned pct) { return rr(r, 100) < pct; }

/* ------------------------------------------------------------------------------------------------ */
/* layout table                                                                                       */

static uint32_t parse_kver(const char *rel)
{
	unsigned a = 0, b = 0, c = 0;

	if (sscanf(rel, "%u.%u.%u", &a, &b, &c) < 2)
		return 0;
	return SYNTH_KV(a, b, c);
}

static int32_t parse_off(const char *s)
{
	if (!s || !*s)
		return -1;
	return (int32_t)strtol(s, NULL, 10);
}

static int64_t parse_current(const char *s, bool *hot)
{
	const char *p;

	*hot = strstr(s, "pcpu_hot") != NULL;
	if ((p = strstr(s, "percpu+")))
		return (int64_t)strtoull(p + 7, NULL, 16);
	if ((p = strstr(s, "System.map ")))
		return (int64_t)strtoull(p + 11, NULL, 16);
	return -1;
}

int synth_load_layouts(const char *csv_path, struct synth_layout **out, size_t *n)
{
	return synth_load_layouts_arch(csv_path, "x86_64", out, n);
}

int synth_load_layouts_arch(const char *csv_path, const char *arch, struct synth_layout **out, size_t *n)
{
	FILE *f = fopen(csv_path, "r");
	char line[1024];
	struct synth_layout *v = NULL;
	size_t cnt = 0, cap = 0;
	int lineno = 0;

	*out = NULL;
	*n = 0;
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		char *col[24] = { 0 }, *p = line;
		int nc = 0;
		struct synth_layout L;

		lineno++;
		line[strcspn(line, "\r\n")] = 0;
		if (lineno == 1)
			continue;
		while (nc < 24) {
			col[nc++] = p;
			p = strchr(p, ',');
			if (!p)
				break;
			*p++ = 0;
		}
		if (nc < 19 || strcmp(col[2], arch))
			continue;
		memset(&L, 0, sizeof(L));
		snprintf(L.source, sizeof(L.source), "%s", col[0]);
		snprintf(L.release, sizeof(L.release), "%s", col[1]);
		L.line = lineno;
		L.size = (uint32_t)strtoul(col[3], NULL, 10);
		for (int i = 0; i < TF_NR; i++)
			L.off[i] = parse_off(col[4 + i]);
		L.mm_pgd = parse_off(col[15]);
		L.mm_mmap = parse_off(col[16]);
		L.mm_mt = parse_off(col[17]);
		L.current_task = parse_current(col[18], &L.pcpu_hot);
		L.kver = parse_kver(L.release);
		L.psz = strcmp(arch, "i386") ? 8 : 4;
		L.arm64 = !strcmp(arch, "arm64");
		if (L.psz == 4)   /* i386 "System.map c0…" is current_task's link address, not a per-CPU offset */
			L.current_task = -1;
		if (!L.size || L.off[TF_TASKS] < 0 || L.mm_pgd < 0)
			continue;
		if (cnt == cap) {
			struct synth_layout *nv;

			cap = cap ? 2 * cap : 64;
			nv = realloc(v, cap * sizeof(*v));
			if (!nv) {
				free(v);
				fclose(f);
				return -ENOMEM;
			}
			v = nv;
		}
		v[cnt++] = L;
	}
	fclose(f);
	*out = v;
	*n = cnt;
	return 0;
}

const char *synth_find_layouts_csv(void)
{
	static const char *const cands[] = {
		"../shared/layouts/task_struct_layouts.csv",
		"../../shared/layouts/task_struct_layouts.csv",
		"../../../shared/layouts/task_struct_layouts.csv",
	};
	const char *e = getenv("VMOT_LAYOUTS");

	if (e && *e)
		return access(e, R_OK) == 0 ? e : NULL;
	for (size_t i = 0; i < sizeof(cands) / sizeof(cands[0]); i++)
		if (access(cands[i], R_OK) == 0)
			return cands[i];
	return NULL;
}

/* ------------------------------------------------------------------------------------------------ */
/* builder state                                                                                      */

#define PG      4096ULL
#define MiB     (1ULL << 20)
#define GiB     (1ULL << 30)
#define E_P     (1ULL << 0)
#define E_RW    (1ULL << 1)
#define E_US    (1ULL << 2)
#define E_A     (1ULL << 5)
#define E_D     (1ULL << 6)
#define E_PS    (1ULL << 7)
#define E_G     (1ULL << 8)
#define E_NX    (1ULL << 63)
#define E_ADDR  0x000ffffffffff000ULL
/* mm_users follows pgd (x86-64 ≥ 4.x: membarrier_state between; i386 2.6/3.x: right after it) */
#define MM_USERS_AFTER_PGD(b) ((b)->psz == 4 ? 4u : 12u)
#define KERNPG_TABLE (E_P | E_RW | E_A | E_D)          /* 0x63 */
#define USERPG_TABLE (E_P | E_RW | E_US | E_A | E_D)   /* 0x67 */
#define START_KERNEL_MAP 0xffffffff80000000ULL
#define POISON1 0xdead000000000100ULL
#define POISON2 0xdead000000000122ULL
#define POISON2_32 0x00000200ULL   /* LIST_POISON2 on i386 (no POISON_POINTER_DELTA) */

#define K_TEXT_SZ   (8 * MiB)
#define K_RODATA_SZ (4 * MiB)
#define K_DATA_SZ   (2 * MiB)
#define K_BSS_SZ    (2 * MiB)
#define K_SIZE      (K_TEXT_SZ + K_RODATA_SZ + K_DATA_SZ + K_BSS_SZ)
#define KSIZE(b)    (K_SIZE + (b)->kinit)   /* with arm64's init section (unmapped, freed after boot) */

enum fk {
	FK_ANCHOR, FK_ZERO, FK_U8, FK_U16, FK_U32, FK_CNT, FK_TIME, FK_LIST, FK_MUTEX, FK_OBJ, FK_TASKPTR,
	FK_RB, FK_KTEXT, FK_KDATA, FK_UPTR, FK_STACKPTR, FK_HLIST, FK_ASCII, FK_RAND, FK_NEG,
};

struct field {
	int32_t off;
	uint16_t size, align;
	uint8_t kind;
	int16_t anchor;      /* enum synth_member for FK_ANCHOR */
	uint32_t sub;
};

struct slab {
	uint64_t pa;
	uint32_t *perm;
	uint32_t next;
	uint8_t *used;
};

struct cache {
	const char *name;
	uint32_t size, stride, order, per_slab;
	uint32_t freeptr_off;
	uint64_t random;
	struct slab *slabs;
	size_t nslabs;
};

enum obj_share { SH_TASK, SH_PROC, SH_GLOBAL };
struct objclass {
	uint32_t size;
	uint8_t share;
	bool null_kthread;
	bool backptr;         /* object holds a pointer back to its task */
	uint64_t global_va;
};
#define NOBJCLASS 48

struct tsk {
	int kind;
	int32_t pid, tgid;
	char comm[16];
	int32_t rp, par, leader, tracer;
	int32_t mm, act;              /* mm index; act: -1 NULL, -2 init_mm, else mm index */
	int32_t css;                  /* -1 init_css_set */
	int prio_class;               /* 0 normal, 1 nice -20, 2 rt/stop, 3 idle */
	int cpu;                      /* running on, -1 */
	int lastcpu;
	bool runnable;
	bool override_cred;
	bool uid_user;
	uint64_t start_ns;
	uint64_t pa, va;
	uint64_t stack_va;
	uint64_t pid_va;
	uint64_t signal_va, sighand_va, files_va, fs_va, nsproxy_va, cred_va, real_cred_va;
	uint64_t *objs;               /* per object class */
	uint64_t tasks_next, tasks_prev;    /* list values to write */
	uint64_t se_next, se_prev;
	uint64_t cg_next, cg_prev;
};

struct mmx {
	uint64_t pa, va, pgd_pa, pgd_va;
	int32_t owner;
	int users;
	bool exited;
	uint64_t text_base, stack_top;
};

struct sb {
	struct rng r;
	const struct synth_layout *L;
	struct synth_image *img;
	const struct synth_opts *o;
	uint8_t *mem;             /* indexed by guest-physical address: ram_base + ram bytes */
	uint64_t ram, npages;     /* RAM bytes and pages, from ram_base */
	uint64_t ram_base;        /* first RAM address: 0 (x86), 1 GiB (arm64: QEMU virt's RAM starts there) */
	uint8_t *pused;           /* per RAM page, from ram_base */
	uint32_t kv;
	int levels;
	unsigned psz;             /* guest pointer size: 8, or 4 for an i386 row (a 32-bit guest) */
	int p32;                  /* 32-bit paging: 0 (x86-64), 2 (2-level), 3 (PAE) */
	bool pti, pcid, kaslr, la57, vmap_stack, pda, utrace;
	bool pti_config;          /* CONFIG_PAGE_TABLE_ISOLATION: PGDs are order 1 (8 KiB) even if PTI is off */
	/* arm64 (a64): 4 KiB granule, va_bits for both halves, LPA2 with 52; KPTI; ASIDs copied into TTBR0
	 * (CONFIG_ARM64_SW_TTBR0_PAN); TTBR0's CnP bit */
	bool a64, lpa2, kpti, sw_pan, cnp;
	unsigned va_bits;
	uint64_t kinit;           /* bytes of the init section between rodata and data (arm64: unmapped after boot) */
	uint64_t reserved_ttbr0_pa, tramp_pgd_pa;   /* arm64: the empty TTBR0 table, KPTI's trampoline TTBR1 table */
	uint64_t a64_vmemmap, a64_fixmap, a64_page_offset;
	uint64_t percpu_link;     /* arm64: __per_cpu_start's link address (in the init section) */
	uint16_t ttbr1_asid[SYNTH_MAX_CPUS];   /* arm64: the ASID each CPU's TTBR1 carries at the end (TCR.A1) */
	uint64_t pob;
	uint64_t kpa, kva;
	uint64_t data_cur, data_end;
	uint64_t rodata_cur;
	uint64_t kpgd_pa;
	uint64_t vmalloc_base, vmalloc_next;
	uint64_t thread_size;
	bool pt_in_kdata;
	/* schema */
	struct field *f;
	size_t nf, fcap;
	int32_t aoff[SM_NR];
	uint8_t asize[SM_NR];
	uint32_t tstride, rs, re;
	struct objclass oc[NOBJCLASS];
	uint64_t ktext_vals[16], kdata_vals[16];
	/* model */
	struct tsk *t;
	size_t nt, tcap;
	struct mmx *mm;
	size_t nmm, mmcap;
	uint32_t mm_size;
	uint64_t init_mm_va, init_cred_va, init_css_va, init_nsproxy_va, init_fs_va, init_files_va;
	uint64_t init_cred_pa;
	uint64_t init_signal_va, init_sighand_va, init_pid_va, init_pid_ns_va, init_user_ns_va;
	uint64_t fair_class_va, rt_class_va, idle_class_va, stop_class_va;
	uint64_t *css_va;
	size_t ncss;
	uint32_t css_tasks_off;
	uint32_t sig_thread_head_off;
	uint64_t libc_pages[8];
	uint64_t vdso_pa;
	uint32_t ncpus;
	uint64_t pcpu_pa[SYNTH_MAX_CPUS];
	uint64_t rq_off, rq_curr_off, rq_idle_off, rq_cfs_tasks_off;
	struct cache c_pgd;       /* PAE: 32-byte PDPTs */
	struct cache c_task, c_mm, c_cred, c_signal, c_sighand, c_pid, c_files, c_fs, c_vma, c_css, c_gen[5];
	int err;
};

/* ------------------------------------------------------------------------------------------------ */
/* memory                                                                                             */

static void chk(struct sb *b, uint64_t pa, uint64_t len)
{
	if (pa < b->ram_base || pa - b->ram_base > b->ram || len > b->ram - (pa - b->ram_base)) {
		fprintf(stderr, "synth: internal write outside RAM at %#llx+%llu\n", (unsigned long long)pa,
			(unsigned long long)len);
		abort();
	}
}
static void w64(struct sb *b, uint64_t pa, uint64_t v) { chk(b, pa, 8); memcpy(b->mem + pa, &v, 8); }
static void w32(struct sb *b, uint64_t pa, uint32_t v) { chk(b, pa, 4); memcpy(b->mem + pa, &v, 4); }
static void w16(struct sb *b, uint64_t pa, uint16_t v) { chk(b, pa, 2); memcpy(b->mem + pa, &v, 2); }
static void wbytes(struct sb *b, uint64_t pa, const void *p, size_t n) { chk(b, pa, n); memcpy(b->mem + pa, p, n); }
static uint64_t r64(struct sb *b, uint64_t pa) { uint64_t v; chk(b, pa, 8); memcpy(&v, b->mem + pa, 8); return v; }
/* pointers and longs: 8 bytes on x86-64, 4 on a 32-bit guest (b->psz) */
static void wptr(struct sb *b, uint64_t pa, uint64_t v)
{
	if (b->psz == 4)
		w32(b, pa, (uint32_t)v);
	else
		w64(b, pa, v);
}

static uint64_t dm(struct sb *b, uint64_t pa) { return b->pob + pa; }
static uint64_t kimg(struct sb *b, uint64_t pa) { return b->kva + (pa - b->kpa); }
static void wlist_self(struct sb *b, uint64_t pa, uint64_t va) { wptr(b, pa, va); wptr(b, pa + b->psz, va); }

/* order-N physically contiguous, naturally aligned pages, zero (fresh) */
static uint64_t alloc_pages(struct sb *b, unsigned order)
{
	uint64_t n = 1ULL << order, lo = (1 * MiB) / PG;
	uint64_t span = (b->npages - lo) / n;

	for (int tries = 0; tries < 64 + (int)span; tries++) {
		uint64_t idx = tries < 64 ? lo + rr(&b->r, span) * n : lo + (uint64_t)(tries - 64) * n;
		uint64_t i;

		idx = (idx + n - 1) & ~(n - 1);
		if (idx + n > b->npages)
			continue;
		for (i = 0; i < n && !b->pused[idx + i]; i++)
			;
		if (i < n)
			continue;
		memset(b->pused + idx, 1, n);
		memset(b->mem + b->ram_base + idx * PG, 0, n * PG);
		return b->ram_base + idx * PG;
	}
	fprintf(stderr, "synth: out of guest RAM\n");
	abort();
}

/* bump allocation inside the kernel image's .data */
static uint64_t kdata_alloc(struct sb *b, uint64_t size, uint64_t align)
{
	uint64_t pa = (b->data_cur + align - 1) & ~(align - 1);

	if (pa + size > b->data_end) {
		fprintf(stderr, "synth: kernel .data full\n");
		abort();
	}
	b->data_cur = pa + size;
	memset(b->mem + pa, 0, size);
	return pa;
}

/* ------------------------------------------------------------------------------------------------ */
/* page tables                                                                                        */

static uint64_t pt_new_table(struct sb *b)
{
	return b->pt_in_kdata ? kdata_alloc(b, PG, PG) : alloc_pages(b, 0);
}

/* 32-bit paging. 2-level: a 1024-entry page directory of 4-byte entries, 4 MiB leaves (PS), no NX.
 * PAE: a 4-entry PDPT (32-byte aligned, entries carry only P), 512-entry PMDs and PTs of 8-byte entries,
 * 2 MiB leaves. Table flags and leaf flags are the x86-64 ones (same bit positions). */
static void pt_map32(struct sb *b, uint64_t root, uint64_t va, uint64_t pa, uint64_t psz, uint64_t leaf,
		     uint64_t tflags)
{
	if (b->p32 == 2) {
		uint64_t pde = root + ((va >> 22) & 1023) * 4, pt;
		uint32_t e = 0;

		leaf &= ~E_NX;
		if (psz == 4 * MiB) {
			w32(b, pde, (uint32_t)(pa & 0xffc00000u) | (uint32_t)leaf | (uint32_t)E_PS);
			return;
		}
		memcpy(&e, b->mem + pde, 4);
		if (!(e & E_P)) {
			e = (uint32_t)pt_new_table(b) | (uint32_t)tflags;
			w32(b, pde, e);
		}
		pt = e & 0xfffff000u;
		w32(b, pt + ((va >> 12) & 1023) * 4, (uint32_t)(pa & 0xfffff000u) | (uint32_t)leaf);
		return;
	}
	{
		uint64_t pdpte = root + ((va >> 30) & 3) * 8, e = r64(b, pdpte), pmd, pte;

		if (!(e & E_P)) {
			e = pt_new_table(b) | E_P;
			w64(b, pdpte, e);
		}
		pmd = (e & E_ADDR) + ((va >> 21) & 511) * 8;
		if (psz == 2 * MiB) {
			w64(b, pmd, (pa & E_ADDR) | leaf | E_PS);
			return;
		}
		e = r64(b, pmd);
		if (!(e & E_P)) {
			e = pt_new_table(b) | tflags;
			w64(b, pmd, e);
		}
		pte = (e & E_ADDR) + ((va >> 12) & 511) * 8;
		w64(b, pte, (pa & E_ADDR) | leaf);
	}
}

/* AArch64 stage-1 tables, 4 KiB granule: 3 levels for 39-bit VAs, 4 for 48, 5 for 52 (LPA2, whose top level
 * has 16 entries). Callers give permissions in the x86 vocabulary above (E_P, E_RW, E_US, E_NX; E_PCD for device
 * memory), which the descriptor writer turns into arm64 bits as Linux sets them (PAGE_KERNEL, PAGE_KERNEL_RO(X),
 * PAGE_READONLY_EXEC, ...), so the arch-independent builders (vmalloc, user mappings) serve both. */
#define A_VALID     (1ULL << 0)
#define A_TABLE     (1ULL << 1)     /* table above the page level, page at it */
#define A_EL0       (1ULL << 6)     /* AP[1] */
#define A_RDONLY    (1ULL << 7)     /* AP[2] */
#define A_SH_INNER  (3ULL << 8)     /* with LPA2 these bits are OA[51:50]: shareability comes from TCR */
#define A_AF        (1ULL << 10)
#define A_NG        (1ULL << 11)
#define A_DBM       (1ULL << 51)    /* PTE_WRITE */
#define A_PXN       (1ULL << 53)
#define A_UXN       (1ULL << 54)
#define A_SW_DIRTY  (1ULL << 55)
#define A_T_PXN     (1ULL << 59)    /* PXNTable */
#define A_T_UXN     (1ULL << 60)    /* UXNTable */
#define A_OA        0x0000fffffffff000ULL
#define E_PCD       (1ULL << 4)

static unsigned a64_levels(const struct sb *b) { return (b->va_bits - 12 + 8) / 9; }

static uint64_t a64_index(const struct sb *b, uint64_t va, unsigned lvl)
{
	unsigned shift = 12 + 9 * (lvl - 1);

	return (va >> shift) & (lvl == a64_levels(b) ? (1ULL << (b->va_bits - shift)) - 1 : 511);
}

/* MAIR indices Linux uses: MT_NORMAL 0 and MT_DEVICE_nGnRE 4 since 5.12 ("arm64: mm: reorder memory types"),
 * 4 and 1 before */
static uint64_t a64_leaf(const struct sb *b, uint64_t fl, bool page)
{
	bool dev = fl & E_PCD, newmt = b->kv >= SYNTH_KV(5, 12, 0);
	uint64_t d = A_VALID | (page ? A_TABLE : 0) | A_AF | (b->lpa2 ? 0 : A_SH_INNER) |
		     ((uint64_t)(dev ? (newmt ? 4 : 1) : (newmt ? 0 : 4)) << 2);

	if (fl & E_US)   /* user: EL0 access, never executable at EL1 (PXN), not global */
		d |= A_EL0 | A_NG | A_PXN | ((fl & E_NX) ? A_UXN : 0);
	else             /* kernel: never executable at EL0; not global under KPTI */
		d |= A_UXN | ((fl & E_NX) ? A_PXN : 0) | (b->kpti ? A_NG : 0);
	d |= (fl & E_RW) ? A_DBM | A_SW_DIRTY : A_RDONLY;
	return d;
}

/* Table descriptors: since 5.13 kernel tables carry UXNTable and user tables PXNTable ("arm64: mm: use XN table
 * mapping attributes for the linear region / user mappings"); bits 11:2 stay zero. */
static uint64_t a64_table(const struct sb *b, uint64_t pa, uint64_t tflags)
{
	uint64_t d = (pa & A_OA) | A_VALID | A_TABLE;

	if (b->kv >= SYNTH_KV(5, 13, 0))
		d |= (tflags & E_US) ? A_T_PXN : A_T_UXN;
	return d;
}

static void pt_map_a64(struct sb *b, uint64_t root, uint64_t va, uint64_t pa, uint64_t psz, uint64_t leaf,
		       uint64_t tflags)
{
	uint64_t table = root;

	for (unsigned lvl = a64_levels(b); lvl >= 1; lvl--) {
		uint64_t epa = table + a64_index(b, va, lvl) * 8, e;

		if ((lvl == 3 && psz == GiB) || (lvl == 2 && psz == 2 * MiB) || lvl == 1) {
			w64(b, epa, (pa & A_OA & ~(psz - 1)) | a64_leaf(b, leaf, lvl == 1));
			return;
		}
		e = r64(b, epa);
		if (!(e & A_VALID)) {
			e = a64_table(b, pt_new_table(b), tflags);
			w64(b, epa, e);
		}
		table = e & A_OA;
	}
}

/* [va, va + len) → [pa, ...): 2 MiB blocks where both are aligned (blocks allowed), 4 KiB pages elsewhere */
static void map_range_a64(struct sb *b, uint64_t root, uint64_t va, uint64_t pa, uint64_t len, uint64_t fl,
			  bool blocks)
{
	for (uint64_t off = 0; off < len;) {
		uint64_t sz = blocks && !((va + off) & (2 * MiB - 1)) && !((pa + off) & (2 * MiB - 1)) &&
			      len - off >= 2 * MiB ? 2 * MiB : PG;

		pt_map_a64(b, root, va + off, pa + off, sz, fl, KERNPG_TABLE);
		off += sz;
	}
}

/* the generator's own walk of its tables (root: swapper_pg_dir), for VAs outside the linear map and image */
static uint64_t va2pa_a64(struct sb *b, uint64_t root, uint64_t va)
{
	uint64_t table = root;

	for (unsigned lvl = a64_levels(b); lvl >= 1; lvl--) {
		uint64_t e = r64(b, table + a64_index(b, va, lvl) * 8), sz = 1ULL << (12 + 9 * (lvl - 1));

		if (!(e & A_VALID))
			return ~0ULL;
		if (lvl == 1 || !(e & A_TABLE))
			return (e & A_OA & ~(sz - 1)) + (va & (sz - 1));
		table = e & A_OA;
	}
	return ~0ULL;
}

static void pt_map(struct sb *b, uint64_t root, uint64_t va, uint64_t pa, uint64_t psz, uint64_t leaf,
		   uint64_t tflags)
{
	uint64_t table = root;

	if (b->p32) {
		pt_map32(b, root, va, pa, psz, leaf, tflags);
		return;
	}
	if (b->a64) {
		pt_map_a64(b, root, va, pa, psz, leaf, tflags);
		return;
	}

	for (int lvl = b->levels; lvl >= 1; lvl--) {
		int shift = 12 + 9 * (lvl - 1);
		uint64_t epa = table + ((va >> shift) & 511) * 8;
		uint64_t e;

		if ((lvl == 3 && psz == GiB) || (lvl == 2 && psz == 2 * MiB) || lvl == 1) {
			w64(b, epa, (pa & E_ADDR) | leaf | (lvl > 1 ? E_PS : 0));
			return;
		}
		e = r64(b, epa);
		if (!(e & E_P)) {
			e = pt_new_table(b) | tflags;
			w64(b, epa, e);
		}
		table = e & E_ADDR;
	}
}

static uint64_t va2pa(struct sb *b, uint64_t va);
static void write_cred(struct sb *b, uint64_t pa, uint32_t usage, uint32_t uid, uint32_t euid, bool init);

static unsigned top_index(struct sb *b, uint64_t va) { return (va >> (b->la57 ? 48 : 39)) & 511; }

/* ------------------------------------------------------------------------------------------------ */
/* slab                                                                                               */

static void cache_init(struct sb *b, struct cache *c, const char *name, uint32_t size, uint32_t align,
		       uint32_t order)
{
	memset(c, 0, sizeof(*c));
	c->name = name;
	c->size = size;
	c->stride = (size + align - 1) / align * align;
	c->order = order;
	while (((PG << c->order) / c->stride) < 1)
		c->order++;
	c->per_slab = (uint32_t)((PG << c->order) / c->stride);
	/* SLUB keeps the free pointer mid-object since 5.7, at 0 before; hardened: xor-obfuscated */
	c->freeptr_off = b->kv >= SYNTH_KV(5, 7, 0) ? (size / 2) & ~7u : 0;
	c->random = rn(&b->r);
}

static uint64_t slab_alloc(struct sb *b, struct cache *c)
{
	struct slab *s = c->nslabs ? &c->slabs[c->nslabs - 1] : NULL;
	uint32_t slot;

	if (!s || s->next == c->per_slab) {
		struct slab *ns = realloc(c->slabs, (c->nslabs + 1) * sizeof(*ns));

		if (!ns)
			abort();
		c->slabs = ns;
		s = &c->slabs[c->nslabs++];
		s->pa = alloc_pages(b, c->order);
		s->perm = malloc(c->per_slab * sizeof(*s->perm));
		s->used = calloc(c->per_slab, 1);
		if (!s->perm || !s->used)
			abort();
		for (uint32_t i = 0; i < c->per_slab; i++)
			s->perm[i] = i;
		for (uint32_t i = c->per_slab - 1; i > 0; i--) {   /* CONFIG_SLAB_FREELIST_RANDOM */
			uint32_t j = (uint32_t)rr(&b->r, i + 1), tmp = s->perm[i];

			s->perm[i] = s->perm[j];
			s->perm[j] = tmp;
		}
		s->next = 0;
	}
	slot = s->perm[s->next++];
	s->used[slot] = 1;
	return s->pa + (uint64_t)slot * c->stride;
}

static void cache_free_all(struct cache *c)
{
	for (size_t i = 0; i < c->nslabs; i++) {
		free(c->slabs[i].perm);
		free(c->slabs[i].used);
	}
	free(c->slabs);
	c->slabs = NULL;
	c->nslabs = 0;
}

/* ------------------------------------------------------------------------------------------------ */
/* names                                                                                              */

static const char *const rand_words[] = {
	"nginx", "postgres", "redis-server", "node", "python3", "perl", "ruby", "java", "php-fpm7.4", "mysqld",
	"dockerd", "runc", "kubelet", "haproxy", "memcached", "apache2", "dnsmasq", "ntpd", "exim4", "master",
	"pickup", "qmgr", "smartd", "irqbalance", "atd", "acpid", "lvmetad", "multipathd", "snapd", "rpcbind",
	"rpc.statd", "nfsd", "tmux: server", "screen", "less", "top", "htop", "journalctl", "tail", "cat",
	"grep", "awk", "make", "cc1", "ld", "git", "ssh-agent", "gpg-agent", "pulseaudio", "Xorg", "gnome-shell",
};
static const char *const ascii_words[] = {
	"/usr/lib", "/bin/sh\0", "LANG=C.U", "HOME=/ro", "systemd-", "kworker/", "x86_64\0\0", "(none)\0\0",
};

/* ------------------------------------------------------------------------------------------------ */
/* task_struct schema: anchors at their offsets, a fixed field type in every other byte              */

static void add_field(struct sb *b, int32_t off, uint16_t size, uint16_t align, uint8_t kind, int16_t anchor,
		      uint32_t sub)
{
	if (b->nf == b->fcap) {
		b->fcap = b->fcap ? 2 * b->fcap : 512;
		b->f = realloc(b->f, b->fcap * sizeof(*b->f));
		if (!b->f)
			abort();
	}
	b->f[b->nf++] = (struct field){ off, size, align, kind, anchor, sub };
}

static bool range_free(const uint8_t *occ, uint32_t size, int64_t off, uint32_t len)
{
	if (off < 0 || off + len > size)
		return false;
	for (uint32_t i = 0; i < len; i++)
		if (occ[off + i])
			return false;
	return true;
}

static void occupy(uint8_t *occ, int64_t off, uint32_t len) { memset(occ + off, 1, len); }

static uint16_t anchor_align(int a)
{
	switch (a) {
	case TF_COMM: return 1;
	case TF_PID: case TF_TGID: case SM_EXIT_SIGNAL: case SM_PFLAGS: case SM_CPU: case SM_USAGE:
	case SM_PRIO: return 4;
	default: return 8;
	}
}

/* bytes of a noise field: pointer-sized kinds follow the guest's pointer size (i386: a mutex is 16 bytes) */
static uint8_t kind_size(const struct sb *b, uint8_t kind)
{
	const uint8_t P = (uint8_t)b->psz;

	switch (kind) {
	case FK_LIST: case FK_HLIST: return 2 * P;
	case FK_RB: return 3 * P;
	case FK_MUTEX: return 4 * P;
	case FK_U8: return 1;
	case FK_U16: return 2;
	case FK_U32: return 4;
	case FK_ZERO: case FK_TIME: case FK_ASCII: return 8;
	default: return P;
	}
}

/* fill [p, e) with noise fields; region: 0 header, 1 randomisable, 2 thread_struct tail */
static void fill_gap(struct sb *b, uint32_t p, uint32_t e, int region)
{
	static const struct { uint8_t kind; uint8_t size; uint8_t w; } mid[] = {
		{ FK_ZERO, 8, 24 }, { FK_U32, 4, 14 }, { FK_CNT, 8, 8 }, { FK_TIME, 8, 4 }, { FK_LIST, 16, 12 },
		{ FK_MUTEX, 32, 2 }, { FK_OBJ, 8, 14 }, { FK_TASKPTR, 8, 2 }, { FK_RB, 24, 2 }, { FK_KTEXT, 8, 3 },
		{ FK_KDATA, 8, 2 }, { FK_UPTR, 8, 3 }, { FK_STACKPTR, 8, 1 }, { FK_HLIST, 16, 3 },
		{ FK_ASCII, 8, 1 }, { FK_RAND, 8, 1 }, { FK_NEG, 8, 1 }, { FK_U8, 1, 2 }, { FK_U16, 2, 1 },
	}, tail[] = {
		{ FK_ZERO, 8, 50 }, { FK_RAND, 8, 18 }, { FK_UPTR, 8, 8 }, { FK_STACKPTR, 8, 3 },
		{ FK_CNT, 8, 10 }, { FK_U32, 4, 8 }, { FK_KTEXT, 8, 1 }, { FK_NEG, 8, 2 },
	};
	size_t ntab = region == 2 ? sizeof(tail) / sizeof(tail[0]) : sizeof(mid) / sizeof(mid[0]);
	unsigned wsum = 0;

	for (size_t i = 0; i < ntab; i++)
		wsum += region == 2 ? tail[i].w : mid[i].w;
	while (p < e) {
		uint32_t left = e - p;
		uint8_t kind = FK_U32, size;
		unsigned pick;

		if ((p & 1) || left < 2) {
			add_field(b, p, 1, 1, FK_U8, -1, (uint32_t)rn(&b->r));
			p += 1;
			continue;
		}
		if ((p & 2) || left < 4) {
			add_field(b, p, 2, 2, FK_U16, -1, (uint32_t)rn(&b->r));
			p += 2;
			continue;
		}
		if ((p & 4) || left < 8) {
			add_field(b, p, 4, 4, FK_U32, -1, (uint32_t)rn(&b->r));
			p += 4;
			continue;
		}
		for (int tries = 0; tries < 8; tries++) {
			pick = (unsigned)rr(&b->r, wsum);
			for (size_t i = 0; i < ntab; i++) {
				unsigned w = region == 2 ? tail[i].w : mid[i].w;

				if (pick < w) {
					kind = region == 2 ? tail[i].kind : mid[i].kind;
					break;
				}
				pick -= w;
			}
			size = kind_size(b, kind);
			if (size <= left)
				break;
			kind = FK_ZERO;
			size = 8;
		}
		size = kind_size(b, kind);
		add_field(b, p, size, size >= b->psz ? (uint16_t)b->psz : size, kind, -1, (uint32_t)rn(&b->r));
		p += size;
	}
}

static int field_cmp(const void *a, const void *c)
{
	const struct field *x = a, *y = c;

	return x->off < y->off ? -1 : x->off > y->off;
}

static void build_schema(struct sb *b)
{
	const struct synth_layout *L = b->L;
	uint32_t size = L->size;
	uint8_t *occ = calloc(size + 64, 1);
	int32_t maxend = 0;
	int32_t stack_off, state_off, state_sz;

	if (!occ)
		abort();
	for (int i = 0; i < SM_NR; i++)
		b->aoff[i] = -1;
	/* sizes scale with the pointer size P: pointers and longs P, list heads 2P (i386: 4 and 8) */
	const uint8_t P = (uint8_t)b->psz;
	b->asize[TF_TASKS] = 2 * P; b->asize[TF_PID] = 4; b->asize[TF_TGID] = 4; b->asize[TF_COMM] = 16;
	b->asize[TF_MM] = P; b->asize[TF_ACTIVE_MM] = P; b->asize[TF_REAL_PARENT] = P; b->asize[TF_PARENT] = P;
	b->asize[TF_CHILDREN] = 2 * P; b->asize[TF_SIBLING] = 2 * P; b->asize[TF_CRED] = P;
	b->asize[SM_GROUP_LEADER] = P; b->asize[SM_REAL_CRED] = P; b->asize[SM_THREAD_GROUP] = 2 * P;
	b->asize[SM_THREAD_NODE] = 2 * P; b->asize[SM_PTRACED] = 2 * P; b->asize[SM_PTRACE_ENTRY] = 2 * P;
	b->asize[SM_CG_LIST] = 2 * P; b->asize[SM_SE_GROUP_NODE] = 2 * P;
	b->asize[SM_PUSHABLE] = 4 * P + 8;     /* plist_node: int prio, two list heads (padded) */
	b->asize[SM_STACK] = P;
	b->asize[SM_PIDS] = 9 * P;             /* thread_pid + 4 hlist_nodes, or 3 × { hlist_node, pid * } */
	b->asize[SM_SIGNAL] = P; b->asize[SM_SIGHAND] = P;
	b->asize[SM_FILES] = P; b->asize[SM_FS] = P; b->asize[SM_NSPROXY] = P; b->asize[SM_CGROUPS] = P;
	b->asize[SM_EXIT_SIGNAL] = 4; b->asize[SM_PFLAGS] = 4; b->asize[SM_START_TIME] = 8;
	b->asize[SM_LAST_WAKEE] = P; b->asize[SM_SCHED_CLASS] = P; b->asize[SM_PRIO] = 16; b->asize[SM_CPU] = 4;
	b->asize[SM_USAGE] = 4;

	/* header: thread_info (THREAD_INFO_IN_TASK, ≥ 4.9) and state stay put under randstruct */
	if (P == 4) {   /* i386: long state, void *stack (every i386 row predates THREAD_INFO_IN_TASK) */
		state_off = b->kv >= SYNTH_KV(4, 9, 0) ? 8 : 0; state_sz = 4; stack_off = state_off + 4;
	} else if (b->kv >= SYNTH_KV(5, 16, 0)) {
		state_off = 24; state_sz = 4; stack_off = 32;
		b->aoff[SM_CPU] = 20;
	} else if (b->kv >= SYNTH_KV(5, 11, 0)) {
		state_off = 24; state_sz = 8; stack_off = 32;
	} else if (b->kv >= SYNTH_KV(4, 9, 0)) {
		state_off = 8; state_sz = 8; stack_off = 16;
	} else {
		state_off = 0; state_sz = 8; stack_off = 8;
	}
	b->asize[SM_STATE] = (uint8_t)state_sz;
	b->aoff[SM_STATE] = state_off;
	b->rs = (uint32_t)stack_off;
	for (int i = 0; i < TF_NR; i++) {
		if (L->off[i] < 0)
			continue;
		b->aoff[i] = L->off[i];
		if (L->off[i] + b->asize[i] > maxend)
			maxend = L->off[i] + b->asize[i];
	}
	b->re = (uint32_t)maxend + (size - (uint32_t)maxend) / 3;
	b->re = (b->re + 63) & ~63u;
	if (b->re < (uint32_t)maxend + 128)
		b->re = (uint32_t)maxend + 128;
	if (b->re > size)
		b->re = size;

	/* which extras exist */
	bool has[SM_NR];
	for (int i = 0; i < SM_NR; i++)
		has[i] = i < TF_NR ? L->off[i] >= 0 : true;
	has[SM_REAL_CRED] = L->off[TF_CRED] >= 0;
	has[SM_THREAD_GROUP] = b->kv < SYNTH_KV(6, 7, 0);
	has[SM_THREAD_NODE] = b->kv >= SYNTH_KV(3, 14, 0);
	has[SM_PTRACED] = has[SM_PTRACE_ENTRY] = !b->utrace;
	has[SM_CG_LIST] = has[SM_CGROUPS] = b->kv >= SYNTH_KV(2, 6, 24);
	has[SM_SE_GROUP_NODE] = b->kv >= SYNTH_KV(2, 6, 23);
	has[SM_PUSHABLE] = b->kv >= SYNTH_KV(2, 6, 25);

	for (int i = 0; i < TF_NR; i++)
		if (b->aoff[i] >= 0)
			occupy(occ, b->aoff[i], b->asize[i]);
	occupy(occ, 0, (uint32_t)stack_off);   /* header */

	/* preferred (real-kernel) positions of the extras, unshuffled */
	int32_t pref[SM_NR];
	for (int i = 0; i < SM_NR; i++)
		pref[i] = -1;
	pref[SM_STACK] = stack_off;
	pref[SM_USAGE] = stack_off + P;
	pref[SM_PFLAGS] = stack_off + P + 4;
	if (L->off[TF_CRED] >= 0)
		pref[SM_REAL_CRED] = L->off[TF_CRED] - P;
	if (L->off[TF_SIBLING] >= 0) {
		int32_t s = L->off[TF_SIBLING] + 2 * P;

		pref[SM_GROUP_LEADER] = s;
		s += P;
		if (b->kv >= SYNTH_KV(2, 6, 26)) {
			pref[SM_PTRACED] = s;
			pref[SM_PTRACE_ENTRY] = s + 2 * P;
			s += 4 * P;
		}
		pref[SM_PIDS] = s;
		s += 9 * P;
		if (has[SM_THREAD_GROUP]) {
			pref[SM_THREAD_GROUP] = s;
			s += 2 * P;
		}
		pref[SM_THREAD_NODE] = s;
	}
	if (b->kv >= SYNTH_KV(2, 6, 25))
		pref[SM_PUSHABLE] = L->off[TF_TASKS] + 2 * P;
	else if (b->kv < SYNTH_KV(2, 6, 26)) {
		pref[SM_PTRACED] = L->off[TF_TASKS] + 2 * P;       /* ptrace_children */
		pref[SM_PTRACE_ENTRY] = L->off[TF_TASKS] + 4 * P;  /* ptrace_list */
	}
	for (int i = TF_NR; i < SM_NR; i++) {
		uint32_t len = b->asize[i];

		if (!has[i] || i == SM_STATE || (i == SM_CPU && b->aoff[SM_CPU] >= 0))
			continue;
		if (pref[i] >= 0 && (uint32_t)pref[i] >= b->rs && range_free(occ, size, pref[i], len)) {
			b->aoff[i] = pref[i];
		} else {
			uint16_t al = anchor_align(i) > P ? P : anchor_align(i);
			uint32_t span = b->re - b->rs;
			int64_t off = -1;

			for (int tries = 0; tries < 4096 && off < 0; tries++) {
				int64_t c = (int64_t)(b->rs + rr(&b->r, span)) & ~(int64_t)(al - 1);

				if (range_free(occ, size, c, len) && (uint64_t)c + len <= b->re)
					off = c;
			}
			if (off < 0)
				continue;   /* no room: the member is left out (tiny old layouts) */
			b->aoff[i] = (int32_t)off;
		}
		occupy(occ, b->aoff[i], len);
	}
	if (b->aoff[SM_CPU] >= 0 && b->aoff[SM_CPU] < (int32_t)b->rs)
		occupy(occ, b->aoff[SM_CPU], 4);

	/* fields: anchors, then noise in every gap */
	b->nf = 0;
	for (int i = 0; i < SM_NR; i++)
		if (b->aoff[i] >= 0)
			add_field(b, b->aoff[i], b->asize[i], anchor_align(i) > P ? P : anchor_align(i), FK_ANCHOR,
				  (int16_t)i, 0);
	{
		uint32_t p = 0;

		while (p < size) {
			uint32_t e = p;
			int region;

			if (occ[p]) {
				p++;
				continue;
			}
			region = p < b->rs ? 0 : p < b->re ? 1 : 2;
			while (e < size && !occ[e] && (region == 0 ? e < b->rs : region == 1 ? e < b->re : 1))
				e++;
			fill_gap(b, p, e, region);
			p = e;
		}
	}
	/* the header's unanchored bytes hold thread_info fields: flags words, never pointers */
	for (size_t i = 0; i < b->nf; i++)
		if (b->f[i].kind != FK_ANCHOR && b->f[i].off < (int32_t)b->rs)
			b->f[i].kind = b->f[i].size == 8 || b->f[i].size == P ? FK_CNT : b->f[i].kind == FK_ZERO ? FK_ZERO : b->f[i].kind;

	/* randstruct: permute everything in [rs, re) and pack it again with natural alignment */
	if (b->o->shuffle) {
		struct field *reg = malloc(b->nf * sizeof(*reg));
		size_t nreg = 0, keep = 0;

		if (!reg)
			abort();
		for (size_t i = 0; i < b->nf; i++) {
			if (b->f[i].off >= (int32_t)b->rs && b->f[i].off < (int32_t)b->re)
				reg[nreg++] = b->f[i];
			else
				b->f[keep++] = b->f[i];
		}
		b->nf = keep;
		for (size_t i = nreg - 1; nreg && i > 0; i--) {
			size_t j = rr(&b->r, i + 1);
			struct field tmp = reg[i];

			reg[i] = reg[j];
			reg[j] = tmp;
		}
		for (;;) {
			uint32_t cur = b->rs;

			for (size_t i = 0; i < nreg; i++) {
				cur = (cur + reg[i].align - 1) & ~(uint32_t)(reg[i].align - 1);
				reg[i].off = (int32_t)cur;
				cur += reg[i].size;
			}
			if (cur <= b->re)
				break;
			/* over by alignment padding: drop a noise field */
			for (size_t i = nreg; i-- > 0;) {
				if (reg[i].kind != FK_ANCHOR) {
					memmove(&reg[i], &reg[i + 1], (nreg - i - 1) * sizeof(*reg));
					nreg--;
					break;
				}
			}
		}
		for (size_t i = 0; i < nreg; i++) {
			add_field(b, reg[i].off, reg[i].size, reg[i].align, reg[i].kind, reg[i].anchor, reg[i].sub);
			if (reg[i].kind == FK_ANCHOR)
				b->aoff[reg[i].anchor] = reg[i].off;
		}
		free(reg);
	}
	qsort(b->f, b->nf, sizeof(*b->f), field_cmp);
	free(occ);

	/* object classes behind FK_OBJ pointers */
	for (int i = 0; i < NOBJCLASS; i++) {
		static const uint32_t sizes[] = { 64, 96, 128, 192, 256, 512 };
		struct objclass *c = &b->oc[i];

		c->size = sizes[rr(&b->r, 6)];
		c->share = (uint8_t)(rp(&b->r, 55) ? SH_TASK : rp(&b->r, 70) ? SH_PROC : SH_GLOBAL);
		c->null_kthread = rp(&b->r, 35);
		c->backptr = c->share == SH_TASK && rp(&b->r, 30);
		c->global_va = 0;
	}
}

/* ------------------------------------------------------------------------------------------------ */
/* kernel image                                                                                       */

static void fill_random(struct sb *b, uint64_t pa, uint64_t len)
{
	uint8_t *p = b->mem + pa;

	chk(b, pa, len);
	for (uint64_t i = 0; i + 8 <= len; i += 8) {
		uint64_t v = rn(&b->r);

		memcpy(p + i, &v, 8);
	}
}

static void put_str(struct sb *b, uint64_t pa, const char *s) { wbytes(b, pa, s, strlen(s) + 1); }

static uint64_t rodata_str(struct sb *b, const char *s)
{
	uint64_t pa = b->rodata_cur;

	put_str(b, pa, s);
	b->rodata_cur += (strlen(s) + 8) & ~7ULL;
	return pa;
}

/* arm64: the image's page directories and its mapping in swapper_pg_dir (TTBR1). Since 5.4 (here: since the
 * "flipped" layout; the move happened about then) idmap_pg_dir, tramp_pg_dir, reserved_pg_dir and swapper_pg_dir
 * close the read-only data, written through the fixmap; before, they followed .bss, writable. The empty TTBR0 of
 * a CPU without a user mm is reserved_pg_dir since 5.14, empty_zero_page (in .bss) before. Segments: text ROX,
 * rodata RO NX, the init section (per-CPU link addresses in it) unmapped by free_initmem(), data and bss RW NX;
 * blocks where 2 MiB aligned (TEXT_OFFSET, 0x80000 before 5.8, leaves only pages). The lower tables come from
 * memblock, anywhere in RAM. */
static void map_image_a64(struct sb *b, uint64_t text, uint64_t rodata, uint64_t data, uint64_t bss)
{
	uint64_t ro_end = rodata + K_RODATA_SZ, pgdirs = b->kv >= SYNTH_KV(5, 4, 0) ? ro_end : bss + K_BSS_SZ;
	uint64_t zero_page = bss + PG * (1 + rr(&b->r, 64));

	b->kpgd_pa = pgdirs - PG;
	b->reserved_ttbr0_pa = b->kv >= SYNTH_KV(5, 14, 0) ? pgdirs - 2 * PG : zero_page;
	b->tramp_pgd_pa = pgdirs - 3 * PG;
	memset(b->mem + pgdirs - 4 * PG, 0, 4 * PG);
	memset(b->mem + zero_page, 0, PG);
	map_range_a64(b, b->kpgd_pa, kimg(b, text), text, K_TEXT_SZ, E_P, true);
	map_range_a64(b, b->kpgd_pa, kimg(b, rodata), rodata, K_RODATA_SZ, E_P | E_NX, true);
	map_range_a64(b, b->kpgd_pa, kimg(b, data), data, K_DATA_SZ + K_BSS_SZ, E_P | E_RW | E_NX, true);
	/* the per-CPU section's link addresses, in the init data */
	b->percpu_link = kimg(b, ro_end) + MiB + (rr(&b->r, 256 * 1024) & ~(PG - 1));
	/* fixmap: the early console's UART (QEMU virt's PL011), device memory, not RAM */
	pt_map(b, b->kpgd_pa, b->a64_fixmap, 0x09000000ULL, PG, E_P | E_RW | E_NX | E_PCD, KERNPG_TABLE);
	if (b->kpti) {
		/* KPTI: the entry trampoline's text at TRAMP_VALIAS (a fixmap slot), in swapper_pg_dir and in
		 * tramp_pg_dir, the only thing TTBR1 maps while a CPU is at EL0 */
		uint64_t tramp_va = b->a64_fixmap - 4 * PG, tramp_pa = text + K_TEXT_SZ - 16 * PG;

		pt_map(b, b->kpgd_pa, tramp_va, tramp_pa, PG, E_P, KERNPG_TABLE);
		pt_map(b, b->tramp_pgd_pa, tramp_va, tramp_pa, PG, E_P, KERNPG_TABLE);
	}
}

static void setup_kernel_image(struct sb *b)
{
	uint64_t text = b->kpa, rodata = text + K_TEXT_SZ, data = rodata + K_RODATA_SZ + b->kinit;
	uint64_t bss = data + K_DATA_SZ;
	uint64_t gbit = b->pti ? 0 : E_G;
	static const char *const ro_strings[] = {
		"swapper", "swapper/%u", "%s/%d", "kthreadd", "init", "/sbin/init", "/etc/init", "/bin/init",
		"/bin/sh", "ksoftirqd/%u", "migration/%u", "kworker/%s", "kworker/%u:%d%s", "rcu_sched",
		"rcu_preempt", "kswapd%d", "khungtaskd", "systemd", "Run %s as init process\n", "cpuhp/%u",
		"comm", "task_struct", "mm_struct", "init_task", "idle", "events", "pid", "tgid",
		"Kernel panic - not syncing: %s\n", "Attempted to kill init!", "sched_debug", "runnable tasks:",
	};

	memset(b->pused + (b->kpa - b->ram_base) / PG, 1, KSIZE(b) / PG);
	if (b->kinit) {   /* free_initmem(): the init section's pages go back to the allocator, poisoned */
		memset(b->pused + (rodata + K_RODATA_SZ - b->ram_base) / PG, 0, b->kinit / PG);
		memset(b->mem + rodata + K_RODATA_SZ, 0xcc, b->kinit);
	}
	/* text: code bytes; rodata: strings and constant tables; data: mixed variables */
	for (uint64_t p = 0; p < K_TEXT_SZ; p += PG)   /* a quarter of it, to stay fast */
		if (rp(&b->r, 25))
			fill_random(b, text + p, PG);
	b->rodata_cur = rodata;
	{
		char banner[256];

		snprintf(banner, sizeof(banner), "Linux version %s (debian-kernel@lists.debian.org) (gcc) #1 SMP",
			 b->L->release);
		rodata_str(b, banner);
	}
	for (int round = 0; round < 64; round++)
		for (size_t i = 0; i < sizeof(ro_strings) / sizeof(ro_strings[0]); i++) {
			rodata_str(b, ro_strings[i]);
			b->rodata_cur += rr(&b->r, 64) * 8;
			if (rp(&b->r, 30))
				fill_random(b, b->rodata_cur, 64), b->rodata_cur += 64;
		}
	b->fair_class_va = kimg(b, b->rodata_cur);
	b->rt_class_va = b->fair_class_va + 0xd0;
	b->idle_class_va = b->fair_class_va + 0x1a0;
	b->stop_class_va = b->fair_class_va + 0x270;
	for (int i = 0; i < 4 * 26; i++)      /* sched_class: tables of text pointers */
		wptr(b, b->rodata_cur + i * 8, kimg(b, text + rr(&b->r, K_TEXT_SZ)) & ~15ULL);
	b->rodata_cur += 4 * 0xd0;
	b->vdso_pa = (b->rodata_cur + PG - 1) & ~(PG - 1);
	fill_random(b, b->vdso_pa, 2 * PG);
	b->rodata_cur = b->vdso_pa + 2 * PG;

	/* .data: pointers into the image and the direct map, small ints, empty list heads, zeros */
	for (uint64_t p = data; p < data + K_DATA_SZ; p += 8) {
		uint64_t v = rn(&b->r);
		unsigned k = (unsigned)(v >> 57) * 100 / 128;   /* one draw per word: top bits pick the kind */

		v &= (1ULL << 57) - 1;
		if (k < 40)
			continue;
		else if (k < 55)
			wptr(b, p, kimg(b, data + (v & (K_DATA_SZ - 1))) & ~7ULL);
		else if (k < 62)
			wptr(b, p, kimg(b, text + (v & (K_TEXT_SZ - 1))));
		else if (k < 72)
			wptr(b, p, dm(b, b->ram_base + v % b->ram) & ~7ULL);
		else if (k < 80 && p + 16 <= data + K_DATA_SZ)
			wlist_self(b, p, kimg(b, p)), p += 8;
		else if (k < 95)
			wptr(b, p, v & 1023);
		else
			wptr(b, p, rn(&b->r));
	}
	b->data_cur = data;
	b->data_end = data + K_DATA_SZ;

	/* init_uts_ns: the release string also lives in .data */
	{
		uint64_t uts = kdata_alloc(b, 6 * 65 + 8, 64);

		put_str(b, uts + 4, "Linux");
		put_str(b, uts + 4 + 65, "(none)");
		put_str(b, uts + 4 + 130, b->L->release);
		put_str(b, uts + 4 + 195, "#1 SMP PREEMPT_DYNAMIC");
		put_str(b, uts + 4 + 260, b->a64 ? "aarch64" : b->p32 ? "i686" : "x86_64");
		put_str(b, uts + 4 + 325, "(none)");
	}
	b->data_cur += 256 + rr(&b->r, 4096);

	if (b->a64) {
		map_image_a64(b, text, rodata, data, bss);
		return;
	}
	/* swapper_pg_dir (init_top_pgt): page aligned in .data, 8 KiB with the PTI user copy */
	b->kpgd_pa = kdata_alloc(b, b->pti_config ? 2 * PG : PG, b->pti_config ? 2 * PG : PG);
	b->data_cur += rr(&b->r, 8) * PG;

	if (b->p32) {
		/* 32-bit: the image lies in lowmem and is mapped with it (setup_direct_map); the fixmap's local
		 * APIC page, not RAM, near the top of the address space */
		pt_map(b, b->kpgd_pa, 0xffffb000ULL, 0xfee00000ULL, PG, E_P | E_RW | E_A | E_D | 0x18 | E_NX,
		       KERNPG_TABLE);
		return;
	}
	/* kernel image mapping (level3_kernel_pgt / level2_kernel_pgt live in .data) */
	b->pt_in_kdata = true;
	for (uint64_t off = 0; off < K_TEXT_SZ; off += 2 * MiB)
		pt_map(b, b->kpgd_pa, b->kva + off, text + off, 2 * MiB, E_P | E_A | gbit, KERNPG_TABLE);
	for (uint64_t off = 0; off < K_RODATA_SZ; off += 2 * MiB)
		pt_map(b, b->kpgd_pa, b->kva + K_TEXT_SZ + off, rodata + off, 2 * MiB, E_P | E_A | gbit | E_NX,
		       KERNPG_TABLE);
	b->pt_in_kdata = false;
	for (uint64_t off = 0; off < K_DATA_SZ; off += PG)   /* split into 4K: set_memory_* on .data */
		pt_map(b, b->kpgd_pa, b->kva + K_TEXT_SZ + K_RODATA_SZ + off, data + off, PG,
		       E_P | E_RW | E_A | E_D | gbit | E_NX, KERNPG_TABLE);
	pt_map(b, b->kpgd_pa, b->kva + K_TEXT_SZ + K_RODATA_SZ + K_DATA_SZ, bss, 2 * MiB,
	       E_P | E_RW | E_A | E_D | gbit | E_NX, KERNPG_TABLE);
	/* fixmap: local APIC page, not RAM */
	pt_map(b, b->kpgd_pa, 0xffffffffff5fc000ULL, 0xfee00000ULL, PG, E_P | E_RW | E_A | E_D | 0x18 | E_NX,
	       KERNPG_TABLE);
}

/* 32-bit lowmem: all of RAM (< 896 MiB) at PAGE_OFFSET, large pages (4 MiB 2-level, 2 MiB PAE) except where
 * the kernel image splits them: text read-only and executable, rodata read-only (NX), then .data and .bss
 * writable in 4 KiB pages (mark_rodata_ro, set_memory_*). 2-level paging has no NX: pt_map32 drops it. */
static void setup_lowmem32(struct sb *b)
{
	const uint64_t big = b->p32 == 2 ? 4 * MiB : 2 * MiB;
	const uint64_t ro_end = b->kpa + K_TEXT_SZ + K_RODATA_SZ, img_end = b->kpa + K_SIZE;
	const uint64_t rw = E_P | E_RW | E_A | E_D | E_G | E_NX;

	for (uint64_t pa = 0; pa < b->ram;) {
		if (pa >= b->kpa && pa < b->kpa + K_TEXT_SZ) {
			pt_map(b, b->kpgd_pa, b->pob + pa, pa, big, E_P | E_A | E_G, KERNPG_TABLE);
			pa += big;
		} else if (pa >= b->kpa + K_TEXT_SZ && pa < ro_end) {
			pt_map(b, b->kpgd_pa, b->pob + pa, pa, big, E_P | E_A | E_G | E_NX, KERNPG_TABLE);
			pa += big;
		} else if (pa >= ro_end && pa < ((img_end + big - 1) & ~(big - 1))) {
			pt_map(b, b->kpgd_pa, b->pob + pa, pa, PG, rw, KERNPG_TABLE);
			pa += PG;
		} else {
			pt_map(b, b->kpgd_pa, b->pob + pa, pa, big, rw, KERNPG_TABLE);
			pa += big;
		}
	}
}

/* arm64's linear map of all RAM (VA = PA + pob, pob = PAGE_OFFSET - memstart_addr): page granular with
 * rodata_full (CONFIG_RODATA_FULL_DEFAULT_ENABLED, 5.0+), blocks before. The alias of the image's [_stext,
 * __init_begin) is read-only (mark_linear_text_alias_ro). Then vmemmap: the struct pages of RAM, in 2 MiB
 * blocks. */
static void setup_linear_a64(struct sb *b)
{
	const bool blocks = b->kv < SYNTH_KV(5, 0, 0);
	const uint64_t ro_lo = b->kpa, ro_hi = b->kpa + K_TEXT_SZ + K_RODATA_SZ, end = b->ram_base + b->ram;
	uint64_t first = b->a64_vmemmap + ((b->pob + b->ram_base - b->a64_page_offset) >> 12) * 64;
	uint64_t last = first + (b->ram >> 12) * 64, vm_pa[16], nvm = 0;   /* 16 blocks: struct pages of 2 GiB */

	/* vmemmap's 2 MiB blocks first, as memblock hands them out at boot: the page tables allocated below are
	 * scattered through RAM and would leave no free 2 MiB */
	for (uint64_t va = first & ~(2 * MiB - 1); va < last && nvm < 16; va += 2 * MiB)
		vm_pa[nvm++] = alloc_pages(b, 9);
	for (uint64_t pa = b->ram_base; pa < end;) {
		bool ro = pa >= ro_lo && pa < ro_hi;
		uint64_t fl = E_P | E_NX | (ro ? 0 : E_RW), sz = PG;

		if (blocks && !(pa & (GiB - 1)) && pa + GiB <= end && (pa + GiB <= ro_lo || pa >= ro_hi))
			sz = GiB;
		else if (blocks && !(pa & (2 * MiB - 1)) && pa + 2 * MiB <= end &&
			 (pa + 2 * MiB <= ro_lo || pa >= ro_hi || (pa >= ro_lo && pa + 2 * MiB <= ro_hi)))
			sz = 2 * MiB;
		pt_map(b, b->kpgd_pa, b->pob + pa, pa, sz, fl, KERNPG_TABLE);
		pa += sz;
	}
	nvm = 0;
	for (uint64_t va = first & ~(2 * MiB - 1); va < last && nvm < 16; va += 2 * MiB) {
		uint64_t pa = vm_pa[nvm++];

		pt_map(b, b->kpgd_pa, va, pa, 2 * MiB, E_P | E_RW | E_NX, KERNPG_TABLE);
		for (uint64_t o = 0; o < 2 * MiB; o += 64) {   /* struct page: flags, lru, mapping, index, _refcount */
			if (va + o < first || va + o >= last)
				continue;
			w64(b, pa + o, 0x0ffff00000000000ULL | rr(&b->r, 1 << 12));
			if (rp(&b->r, 50))
				wlist_self(b, pa + o + 8, va + o + 8);
			w32(b, pa + o + 52, (uint32_t)rr(&b->r, 3));
		}
	}
}

static void setup_direct_map(struct sb *b)
{
	if (b->a64) {
		setup_linear_a64(b);
		return;
	}
	if (b->p32) {
		setup_lowmem32(b);
		return;
	}
	uint64_t gbit = b->pti ? 0 : E_G;
	uint64_t fl = E_P | E_RW | E_A | E_D | gbit | E_NX;

	for (uint64_t pa = 0; pa < 2 * MiB && pa < b->ram; pa += PG)
		pt_map(b, b->kpgd_pa, b->pob + pa, pa, PG, fl, KERNPG_TABLE);
	for (uint64_t pa = 2 * MiB; pa < b->ram;) {
		if ((pa & (GiB - 1)) == 0 && pa + GiB <= b->ram) {
			pt_map(b, b->kpgd_pa, b->pob + pa, pa, GiB, fl, KERNPG_TABLE);
			pa += GiB;
		} else {
			pt_map(b, b->kpgd_pa, b->pob + pa, pa, 2 * MiB, fl, KERNPG_TABLE);
			pa += 2 * MiB;
		}
	}
}

/* cpu_entry_area (shared with the PTI user copy) and the entry text in the user copy */
static void setup_pti_and_cea(struct sb *b)
{
	uint64_t cea = 0xfffffe0000000000ULL;

	if (b->p32)   /* no PTI and no cpu_entry_area in the kernels of the i386 rows (all < 4.15) */
		return;
	if (b->a64)   /* neither on arm64 (KPTI's trampoline: map_image_a64) */
		return;

	if (b->kv >= SYNTH_KV(4, 15, 0)) {
		for (uint32_t c = 0; c < b->ncpus; c++)
			for (int i = 0; i < 8; i++)
				pt_map(b, b->kpgd_pa, cea + 0x1000 + (uint64_t)c * 0x3b000 + i * PG, alloc_pages(b, 0),
				       PG, E_P | E_RW | E_A | E_D | E_NX, KERNPG_TABLE);
	}
	if (b->pti) {
		uint64_t shadow = b->kpgd_pa + PG;
		unsigned ci = top_index(b, cea);

		if (b->kv >= SYNTH_KV(4, 15, 0)) {
			if (!b->la57) {
				w64(b, shadow + ci * 8, r64(b, b->kpgd_pa + ci * 8));   /* shares the PUD */
			} else {
				/* 5-level: the CEA shares the kernel image's PML5 entry: clone the leaves */
				for (uint32_t c = 0; c < b->ncpus; c++)
					for (int i = 0; i < 8; i++) {
						uint64_t va = cea + 0x1000 + (uint64_t)c * 0x3b000 + i * PG;

						pt_map(b, shadow, va, va2pa(b, va), PG, E_P | E_RW | E_A | E_D | E_NX,
						       KERNPG_TABLE);
					}
			}
		}
		/* entry text: a few pages of the kernel text, global, in tables of the user copy */
		for (int i = 0; i < 4; i++)
			pt_map(b, shadow, b->kva + 0x800000 - 0x10000 + i * PG, b->kpa + 0x800000 - 0x10000 + i * PG,
			       PG, E_P | E_A | E_G, KERNPG_TABLE);
	}
}

static uint64_t vmalloc_map(struct sb *b, uint64_t npages, uint64_t *first_pa)
{
	uint64_t va = b->vmalloc_next;

	if (b->a64 && npages * PG == b->thread_size)   /* VMAP stacks: THREAD_ALIGN (2 x THREAD_SIZE) */
		va = b->vmalloc_next = (va + 2 * b->thread_size - 1) & ~(2 * b->thread_size - 1);
	for (uint64_t i = 0; i < npages; i++) {
		uint64_t pa = alloc_pages(b, 0);

		if (i == 0 && first_pa)
			*first_pa = pa;
		pt_map(b, b->kpgd_pa, va + i * PG, pa, PG, E_P | E_RW | E_A | E_D | E_NX, KERNPG_TABLE);
	}
	b->vmalloc_next += (npages + 1) * PG;    /* guard page */
	return va;
}

/* VA → PA for addresses the generator created (direct map, image, vmalloc through the tables) */
static uint64_t va2pa(struct sb *b, uint64_t va)
{
	uint64_t table = b->kpgd_pa;

	if (va >= b->pob + b->ram_base && va - b->pob - b->ram_base < b->ram)
		return va - b->pob;
	if (va >= b->kva && va - b->kva < KSIZE(b))
		return b->kpa + (va - b->kva);
	if (b->a64)
		return va2pa_a64(b, b->kpgd_pa, va);
	if (b->p32 == 2) {   /* above lowmem: the fixmap */
		uint32_t e;

		memcpy(&e, b->mem + table + ((va >> 22) & 1023) * 4, 4);
		if (!(e & E_P))
			return ~0ULL;
		if (e & E_PS)
			return (e & 0xffc00000u) + (va & (4 * MiB - 1));
		memcpy(&e, b->mem + (e & 0xfffff000u) + ((va >> 12) & 1023) * 4, 4);
		return e & E_P ? (e & 0xfffff000u) + (va & (PG - 1)) : ~0ULL;
	}
	if (b->p32 == 3) {
		uint64_t e = r64(b, table + ((va >> 30) & 3) * 8);

		if (!(e & E_P))
			return ~0ULL;
		e = r64(b, (e & E_ADDR) + ((va >> 21) & 511) * 8);
		if (!(e & E_P))
			return ~0ULL;
		if (e & E_PS)
			return (e & E_ADDR & ~(2 * MiB - 1)) + (va & (2 * MiB - 1));
		e = r64(b, (e & E_ADDR) + ((va >> 12) & 511) * 8);
		return e & E_P ? (e & E_ADDR) + (va & (PG - 1)) : ~0ULL;
	}
	for (int lvl = b->levels; lvl >= 1; lvl--) {
		int shift = 12 + 9 * (lvl - 1);
		uint64_t e = r64(b, table + ((va >> shift) & 511) * 8);

		if (!(e & E_P))
			return ~0ULL;
		if (lvl == 1 || (e & E_PS))
			return (e & E_ADDR & ~((1ULL << shift) - 1)) + (va & ((1ULL << shift) - 1));
		table = e & E_ADDR;
	}
	return ~0ULL;
}

/* ------------------------------------------------------------------------------------------------ */
/* the process model                                                                                  */

static int add_task(struct sb *b, int kind, int32_t pid, int32_t tgid, const char *comm, int32_t rp_,
		    int32_t leader)
{
	struct tsk *t;

	if (b->nt == b->tcap) {
		b->tcap = b->tcap ? 2 * b->tcap : 256;
		b->t = realloc(b->t, b->tcap * sizeof(*b->t));
		if (!b->t)
			abort();
	}
	t = &b->t[b->nt];
	memset(t, 0, sizeof(*t));
	t->kind = kind;
	t->pid = pid;
	t->tgid = tgid;
	strncpy(t->comm, comm, 15);
	t->rp = t->par = rp_;
	t->leader = leader < 0 ? (int32_t)b->nt : leader;
	t->tracer = -1;
	t->mm = -1;
	t->act = -1;
	t->css = -1;
	t->cpu = -1;
	t->lastcpu = (int)rr(&b->r, b->ncpus);
	t->objs = calloc(NOBJCLASS, sizeof(uint64_t));
	if (!t->objs)
		abort();
	return (int)b->nt++;
}

static int new_mm(struct sb *b, int32_t owner)
{
	struct mmx *m;

	if (b->nmm == b->mmcap) {
		b->mmcap = b->mmcap ? 2 * b->mmcap : 64;
		b->mm = realloc(b->mm, b->mmcap * sizeof(*b->mm));
		if (!b->mm)
			abort();
	}
	m = &b->mm[b->nmm];
	memset(m, 0, sizeof(*m));
	m->owner = owner;
	m->users = 1;
	return (int)b->nmm++;
}

static int32_t next_pid(struct sb *b, int32_t *pid, unsigned maxgap)
{
	*pid += 1 + (int32_t)rr(&b->r, maxgap);
	return *pid;
}

static int spawn_proc(struct sb *b, int32_t *pidc, const char *comm, int32_t parent)
{
	int32_t pid = next_pid(b, pidc, 40);
	int i = add_task(b, SYNTH_T_PROC, pid, pid, comm, parent, -1);

	b->t[i].mm = new_mm(b, i);
	b->t[i].uid_user = parent >= 0 && b->t[parent].uid_user;
	return i;
}

static void spawn_threads(struct sb *b, int32_t *pidc, int leader, int n, const char *const *names)
{
	for (int k = 0; k < n; k++) {
		int32_t pid = next_pid(b, pidc, 3);
		int i = add_task(b, SYNTH_T_THREAD, pid, b->t[leader].tgid, names ? names[k % 4] : b->t[leader].comm,
				 b->t[leader].rp, leader);

		b->t[i].mm = b->t[leader].mm;
		b->t[i].uid_user = b->t[leader].uid_user;
		b->mm[b->t[leader].mm].users++;
	}
}

static void plan_tasks(struct sb *b)
{
	char name[32];
	uint32_t nk = b->o->nkthreads ? b->o->nkthreads : 20 + (uint32_t)rr(&b->r, 21);
	uint32_t np = b->o->nprocs ? b->o->nprocs : 20 + (uint32_t)rr(&b->r, 41);
	bool newnames = b->kv >= SYNTH_KV(2, 6, 36);
	bool systemd = b->kv >= SYNTH_KV(3, 10, 0);
	int32_t kpid = 2, upid;
	uint32_t kcount = 0;
	int init, kthreadd;

	snprintf(name, sizeof(name), b->kv >= SYNTH_KV(3, 6, 0) ? "swapper/0" : "swapper");
	add_task(b, SYNTH_T_INIT, 0, 0, name, 0, 0);
	init = spawn_proc(b, &(int32_t){ 0 }, systemd ? "systemd" : "init", 0);
	b->t[init].pid = b->t[init].tgid = 1;
	if (b->kv >= SYNTH_KV(2, 6, 22)) {
		kthreadd = add_task(b, SYNTH_T_KTHREAD, 2, 2, "kthreadd", 0, -1);
	} else {
		/* no kthreadd yet: kernel threads were daemonize()d, i.e. reparented to init */
		kthreadd = init;
		add_task(b, SYNTH_T_KTHREAD, 2, 2, "migration/0", 1, -1);
	}
	(void)init;

	/* early kernel threads, before smp_init */
	{
		static const char *const early_new[] = { "rcu_gp", "rcu_par_gp", "kworker/0:0", "kworker/0:0H",
			"mm_percpu_wq", "rcu_tasks_kthre", "ksoftirqd/0", "rcu_sched", "migration/0", "cpuhp/0" };
		static const char *const early_old[] = { "migration/0", "ksoftirqd/0", "watchdog/0", "events/0",
			"khelper", "kthread", "kblockd/0", "kacpid", "kseriod", "pdflush" };
		const char *const *e = newnames ? early_new : early_old;

		for (int i = newnames || b->kv >= SYNTH_KV(2, 6, 22) ? 0 : 1; i < 10 && kcount < nk; i++, kcount++) {
			add_task(b, SYNTH_T_KTHREAD, next_pid(b, &kpid, 1), 0, e[i], kthreadd, -1);
			b->t[b->nt - 1].tgid = b->t[b->nt - 1].pid;
		}
	}
	/* idle tasks of the secondary CPUs: pid 0, forked by pid 1 in smp_init, never on the tasks list */
	for (uint32_t c = 1; c < b->ncpus; c++) {
		snprintf(name, sizeof(name), b->kv >= SYNTH_KV(3, 6, 0) ? "swapper/%u" : "swapper", c);
		add_task(b, SYNTH_T_IDLE, 0, 0, name, 1, -1);
	}
	for (uint32_t c = 1; c < b->ncpus && kcount < nk; c++) {
		static const char *const per[] = { "cpuhp/%u", "migration/%u", "ksoftirqd/%u", "kworker/%u:0",
			"kworker/%u:0H" };
		for (int i = 0; i < 5 && kcount < nk; i++, kcount++) {
			snprintf(name, sizeof(name), per[i], c);
			add_task(b, SYNTH_T_KTHREAD, next_pid(b, &kpid, 1), 0, name, kthreadd, -1);
			b->t[b->nt - 1].tgid = b->t[b->nt - 1].pid;
		}
	}
	{
		static const char *const misc[] = { "kdevtmpfs", "netns", "kauditd", "khungtaskd", "oom_reaper",
			"writeback", "kcompactd0", "ksmd", "khugepaged", "kintegrityd", "kblockd", "blkcg_punt_bio",
			"ata_sff", "md", "edac-poller", "devfreq_wq", "watchdogd", "kswapd0", "kthrotld",
			"acpi_thermal_pm", "scsi_eh_0", "scsi_tmf_0", "jbd2/vda1-8", "ext4-rsv-conver", "ipv6_addrconf",
			"kworker/u8:0", "kworker/u8:1", "kworker/u8:2", "kworker/1:1", "kworker/0:2", "kworker/2:1H",
			"irq/24-pciehp", "kstrp", "charger_manager", "zswap-shrink", "kworker/3:2", "dm_bufio_cache",
			"xfsalloc", "nfsiod", "cryptd" };
		for (size_t i = 0; kcount < nk; i++, kcount++) {
			const char *n = misc[i % (sizeof(misc) / sizeof(misc[0]))];

			if (i >= sizeof(misc) / sizeof(misc[0])) {
				snprintf(name, sizeof(name), "kworker/u%u:%zu", b->ncpus * 2, i);
				n = name;
			}
			add_task(b, SYNTH_T_KTHREAD, next_pid(b, &kpid, 2), 0, n, kthreadd, -1);
			b->t[b->nt - 1].tgid = b->t[b->nt - 1].pid;
		}
	}
	for (size_t i = 0; i < b->nt; i++) {
		if (b->t[i].kind != SYNTH_T_KTHREAD)
			continue;
		if (strstr(b->t[i].comm, "H") && strstr(b->t[i].comm, "kworker"))
			b->t[i].prio_class = 1;
		if (!strncmp(b->t[i].comm, "migration", 9) || !strncmp(b->t[i].comm, "watchdog/", 9))
			b->t[i].prio_class = 2;
	}

	/* user space */
	upid = kpid + 60 + (int32_t)rr(&b->r, 200);
	uint32_t made = 0;
#define PROC(comm, parent) (made++, spawn_proc(b, &upid, (comm), (parent)))
	int journald = PROC(systemd ? "systemd-journal" : "udevd", 1);
	(void)journald;
	if (systemd) {
		PROC("systemd-udevd", 1);
		PROC("systemd-logind", 1);
	}
	PROC(systemd ? "dbus-daemon" : "syslogd", 1);
	int rsys = PROC("rsyslogd", 1);
	static const char *const rs_threads[] = { "in:imuxsock", "in:imklog", "rs:main Q:Reg", "in:imuxsock" };
	spawn_threads(b, &upid, rsys, 3, rs_threads);
	int cron = PROC(systemd ? "cron" : "crond", 1);
	int sshd = PROC("sshd", 1);
	int getty = -1;
	for (int i = 0; i < 2; i++)
		getty = PROC(systemd ? "agetty" : "mingetty", 1);
	(void)getty;
	int polkit = PROC("polkitd", 1);
	static const char *const gthreads[] = { "gmain", "gdbus", "JS Helper", "pool" };
	spawn_threads(b, &upid, polkit, 2 + (int)rr(&b->r, 2), gthreads);
	int cd = PROC("containerd", 1);
	spawn_threads(b, &upid, cd, 3 + (int)rr(&b->r, 6), NULL);
	/* an ssh session, ≥ 4 deep */
	int s1 = PROC("sshd", sshd);
	int s2 = PROC("sshd", s1);
	b->t[s2].uid_user = true;
	int bash = PROC("bash", s2);
	PROC("vim", bash);
	PROC("sleep", bash);
	int strace = -1, traced = -1, gdb = -1, worker = -1;
	if (!b->utrace) {
		strace = PROC("strace", bash);
		traced = PROC("sleep", strace);
		b->t[traced].tracer = strace;     /* PTRACE_TRACEME child of strace: parent == real_parent */
		int bash2 = PROC("bash", s2);
		worker = PROC("worker", bash2);
		static const char *const wthreads[] = { "worker", "worker", "worker-io", "worker" };
		spawn_threads(b, &upid, worker, 3, wthreads);
		gdb = PROC("gdb", bash2);
		PROC("sudo", bash2);
		/* gdb attaches to every thread of the group: parent = tracer, real_parent unchanged */
		for (size_t i = 0; i < b->nt; i++)
			if (b->t[i].leader == worker) {
				b->t[i].tracer = gdb;
				b->t[i].par = gdb;
			}
	}
	/* cron job: cron → sh → sleep */
	int sh = PROC("sh", cron);
	PROC("sleep", sh);
	/* a zombie the shell has not reaped yet */
	{
		int z = add_task(b, SYNTH_T_ZOMBIE, next_pid(b, &upid, 30), 0, "sh", bash, -1);

		b->t[z].tgid = b->t[z].pid;
		made++;
	}
	/* daemons and workers with random names up to np */
	while (made < np) {
		const char *n = rand_words[rr(&b->r, sizeof(rand_words) / sizeof(rand_words[0]))];
		int parent = rp(&b->r, 60) ? 1 : (int)(3 + rr(&b->r, b->nt - 3));
		int p;

		if (b->t[parent].kind != SYNTH_T_PROC)
			parent = 1;
		p = PROC(n, parent);
		if (rp(&b->r, 25)) {
			static const char *const jt[] = { "GC Thread#0", "C2 CompilerThre", "VM Thread", "worker" };
			spawn_threads(b, &upid, p, 1 + (int)rr(&b->r, 8), rp(&b->r, 50) ? jt : NULL);
		}
		if (rp(&b->r, 20) && made < np)
			PROC(n, p);
	}
#undef PROC
	/* cgroups: kernel threads and early daemons in the root css_set, services in their own */
	b->ncss = 1 + (b->kv >= SYNTH_KV(2, 6, 24) ? 6 : 0);
	for (size_t i = 0; i < b->nt; i++) {
		struct tsk *t = &b->t[i];

		if (t->kind == SYNTH_T_PROC || t->kind == SYNTH_T_ZOMBIE)
			t->css = b->ncss > 1 && rp(&b->r, 80) ? (int32_t)(1 + rr(&b->r, b->ncss - 1)) : -1;
		else if (t->kind == SYNTH_T_THREAD)
			t->css = b->t[t->leader].css;
	}
	/* one task caught inside faccessat()/override_creds(): cred != real_cred */
	if (b->L->off[TF_CRED] >= 0 && rp(&b->r, 60))
		b->t[bash].override_cred = true;
	/* start times increase with creation */
	{
		uint64_t now = 2000000000ULL + rr(&b->r, 50000000000ULL);

		for (size_t i = 1; i < b->nt; i++)
			b->t[i].start_ns = (now += 1000 + rr(&b->r, 200000000ULL));
	}
}

/* ------------------------------------------------------------------------------------------------ */
/* objects                                                                                            */

static uint64_t obj_noise(struct sb *b, uint64_t pa, uint32_t size, uint64_t back)
{
	w32(b, pa, 1 + (uint32_t)rr(&b->r, 4));
	for (uint32_t o = 8; o + 8 <= size; o += 8) {
		unsigned k = (unsigned)rr(&b->r, 10);

		if (k < 4)
			continue;
		if (k < 6)
			wptr(b, pa + o, rr(&b->r, 4096));
		else if (k < 7 && o + 16 <= size)
			wlist_self(b, pa + o, dm(b, pa + o)), o += 8;
		else if (k < 8)
			wptr(b, pa + o, back ? back : dm(b, b->ram_base + (rr(&b->r, b->ram) & ~63ULL)));
		else
			wptr(b, pa + o, rn(&b->r) & 0xffffffffULL);
	}
	return dm(b, pa);
}

static struct cache *gen_cache(struct sb *b, uint32_t size)
{
	return size <= 64 ? &b->c_gen[0] : size <= 128 ? &b->c_gen[1] : size <= 256 ? &b->c_gen[2] :
	       size <= 512 ? &b->c_gen[3] : &b->c_gen[4];
}

static bool is_kernel_task(const struct tsk *t)
{
	return t->kind == SYNTH_T_INIT || t->kind == SYNTH_T_IDLE || t->kind == SYNTH_T_KTHREAD;
}

static uint64_t obj_ptr(struct sb *b, int ti, uint32_t cls)
{
	struct objclass *c = &b->oc[cls % NOBJCLASS];
	struct tsk *t = &b->t[ti];

	if (c->null_kthread && is_kernel_task(t))
		return 0;
	if (t->kind == SYNTH_T_ZOMBIE && rp(&b->r, 50))
		return 0;
	if (c->share == SH_GLOBAL) {
		if (!c->global_va) {
			uint64_t pa = kdata_alloc(b, c->size, 64);

			c->global_va = kimg(b, pa);
			obj_noise(b, pa, c->size, 0);
		}
		return c->global_va;
	}
	if (c->share == SH_PROC && t->leader != ti)
		return obj_ptr(b, t->leader, cls);
	if (!t->objs[cls % NOBJCLASS]) {
		uint64_t pa = slab_alloc(b, gen_cache(b, c->size));

		t->objs[cls % NOBJCLASS] = obj_noise(b, pa, c->size, c->backptr ? t->va : 0);
	}
	return t->objs[cls % NOBJCLASS];
}

/* arm64's user address space: 2^39 with 39-bit VAs, else 2^48 (52-bit kernels keep user space to 48 bits,
 * DEFAULT_MAP_WINDOW, unless asked) */
static uint64_t a64_user_top(const struct sb *b) { return 1ULL << (b->va_bits == 39 ? 39 : 48); }

/* a user mmap address: x86-64 near 0x7f…, i386 from 1 GiB, arm64 in the top sixteenth (0xfff…) */
static uint64_t user_mmap_va(struct sb *b, uint64_t off)
{
	if (b->a64)
		return a64_user_top(b) - (a64_user_top(b) >> 4) + (off & ((a64_user_top(b) >> 5) - 1) & ~(PG - 1));
	return b->p32 ? 0x40000000ULL + (off & 0x3ffffff) : 0x7f0000000000ULL + off;
}

static void alloc_user_mappings(struct sb *b, struct mmx *m, const char *comm)
{
	uint64_t kpgd = m->pgd_pa;
	uint64_t text = 0x550000000000ULL + (rr(&b->r, 1ULL << 28) << 12);
	uint64_t libc = 0x7f0000000000ULL + (rr(&b->r, 1ULL << 27) << 12);
	uint64_t stack = 0x7ffc00000000ULL + (rr(&b->r, 1ULL << 20) << 12);
	uint64_t ufl = USERPG_TABLE;

	if (b->p32) {   /* i386: ELF at 0x08048000, mmap base at 1 GiB, the stack just below PAGE_OFFSET */
		text = 0x08048000ULL + (text & 0xff000);
		libc = 0x40000000ULL + (libc & 0x3fff000);
		stack = b->pob - 16 * MiB + (stack & 0x3ff000);
	} else if (b->a64) {   /* PIE at 2/3 of TASK_SIZE (0xaaaa…), mmap base and stack below its top */
		uint64_t top = a64_user_top(b);

		text = (top / 3 * 2 & ~(PG - 1)) + ((text - 0x550000000000ULL) & ((top >> 8) - 1));
		libc = user_mmap_va(b, libc);
		stack = top - (top >> 8) + (stack & ((top >> 9) - 1) & ~(PG - 1));
	}

	(void)comm;
	m->text_base = text;
	m->stack_top = stack + 2 * PG;
	for (int i = 0; i < 3; i++)
		pt_map(b, kpgd, text + i * PG, alloc_pages(b, 0), PG, E_P | E_US | E_A, ufl);
	for (int i = 0; i < 2; i++)
		pt_map(b, kpgd, text + 0x2000000 + i * PG, alloc_pages(b, 0), PG,
		       E_P | E_RW | E_US | E_A | E_D | E_NX, ufl);
	for (int i = 0; i < 8; i++)
		pt_map(b, kpgd, libc + i * PG, b->libc_pages[i], PG, E_P | E_US | E_A | (i >= 6 ? E_NX | E_RW : 0), ufl);
	for (int i = 0; i < 2; i++)
		pt_map(b, kpgd, stack + i * PG, alloc_pages(b, 0), PG, E_P | E_RW | E_US | E_A | E_D | E_NX, ufl);
	pt_map(b, kpgd, stack + 0x40000, b->vdso_pa, PG, E_P | E_US | E_A, ufl);   /* vdso: kernel rodata */
	if (b->pti) {
		/* PTI: the user copy gets the user half; the kernel copy's user entries are NX */
		for (unsigned i = 0; i < 256; i++) {
			uint64_t e = r64(b, kpgd + i * 8);

			if (!(e & E_P))
				continue;
			w64(b, kpgd + PG + i * 8, e);
			w64(b, kpgd + i * 8, e | E_NX);
		}
	}
}

static void alloc_mm(struct sb *b, int mi, const char *comm)
{
	struct mmx *m = &b->mm[mi];
	const struct synth_layout *L = b->L;
	uint32_t sz = b->mm_size;
	uint64_t pa;

	/* processes came and went: freed mm_structs keep their old contents, and a pgd pointer to a
	 * PGD page that went back to the page allocator */
	while (mi > 0 && rp(&b->r, 30)) {
		uint64_t fpa = slab_alloc(b, &b->c_mm), old = b->mm[rr(&b->r, (uint64_t)mi)].pa;
		struct slab *s = &b->c_mm.slabs[b->c_mm.nslabs - 1];

		s->used[(fpa - s->pa) / b->c_mm.stride] = 0;
		memcpy(b->mem + fpa, b->mem + old, sz);
		wptr(b, fpa + L->mm_pgd, dm(b, b->ram_base + ((1 * MiB + rr(&b->r, b->ram - 1 * MiB)) & ~(PG - 1))));
		w32(b, fpa + L->mm_pgd + MM_USERS_AFTER_PGD(b), 0);
		wptr(b, fpa + b->c_mm.freeptr_off, b->c_mm.random ^ rn(&b->r));
	}
	pa = slab_alloc(b, &b->c_mm);

	m->pa = pa;
	m->va = dm(b, pa);
	if (b->p32 == 3) {
		/* PAE: a 32-byte PDPT from the pgd cache; pgd_ctor copies the kernel's entries (SHARED_KERNEL_PMD) */
		unsigned first = (unsigned)(b->pob >> 30) & 3;

		m->pgd_pa = slab_alloc(b, &b->c_pgd);
		memset(b->mem + m->pgd_pa, 0, 32);
		memcpy(b->mem + m->pgd_pa + first * 8, b->mem + b->kpgd_pa + first * 8, (4 - first) * 8);
	} else if (b->a64) {
		/* arm64: TTBR0 maps user space only (the kernel is TTBR1's), so pgd_alloc's table starts empty: a page,
		 * or with 52-bit VAs (16 top-level entries) a 128-byte object of pgd_cache */
		if (b->lpa2) {
			m->pgd_pa = slab_alloc(b, &b->c_pgd);
			memset(b->mem + m->pgd_pa, 0, 128);
		} else {
			m->pgd_pa = alloc_pages(b, 0);
		}
	} else if (b->p32 == 2) {
		unsigned first = (unsigned)(b->pob >> 22) & 1023;

		m->pgd_pa = alloc_pages(b, 0);
		memcpy(b->mem + m->pgd_pa + first * 4, b->mem + b->kpgd_pa + first * 4, (1024 - first) * 4);
	} else {
		m->pgd_pa = alloc_pages(b, b->pti_config ? 1 : 0);   /* PGD_ALLOCATION_ORDER */
		/* pgd_ctor: copy the kernel half (and the PTI user copy's kernel half) from swapper_pg_dir */
		memcpy(b->mem + m->pgd_pa + 256 * 8, b->mem + b->kpgd_pa + 256 * 8, 256 * 8);
	}
	m->pgd_va = dm(b, m->pgd_pa);
	if (b->pti)
		memcpy(b->mem + m->pgd_pa + PG + 256 * 8, b->mem + b->kpgd_pa + PG + 256 * 8, 256 * 8);
	alloc_user_mappings(b, m, comm);

	/* mm_struct: noise first, then the real members */
	for (uint32_t o = 0; o + 8 <= sz; o += 8) {
		unsigned k = (unsigned)rr(&b->r, 100);

		if (k < 45)
			continue;
		if (k < 60)
			wptr(b, pa + o, m->text_base + rr(&b->r, 0x4000000));        /* start_code, brk, … */
		else if (k < 70)
			wptr(b, pa + o, m->stack_top - rr(&b->r, 0x1000));
		else if (k < 85)
			wptr(b, pa + o, rr(&b->r, 100000));
		else if (k < 92 && o + 16 <= sz)
			wlist_self(b, pa + o, m->va + o), o += 8;
		else
			wptr(b, pa + o, user_mmap_va(b, rr(&b->r, 1ULL << 27) << 12));
	}
	if (L->mm_mt >= 0) {
		uint64_t node = slab_alloc(b, &b->c_gen[4]);       /* maple_node, 256-aligned */

		w32(b, pa + L->mm_mt, 0);                          /* ma_lock */
		w32(b, pa + L->mm_mt + 4, 0x33);                   /* ma_flags: ALLOC_RANGE|USE_RCU|LOCK_EXTERN */
		wptr(b, pa + L->mm_mt + 8, dm(b, node) | 0x1e);     /* ma_root: encoded maple_arange_64 node */
		wptr(b, pa + L->mm_mt + 16, 0);
	}
	if (L->mm_mmap >= 0) {
		/* vm_area_struct chain: vm_start, vm_end, vm_next, vm_prev, …, vm_mm at +64 */
		uint64_t prev = 0, first = 0, vstart[3] = { m->text_base, user_mmap_va(b, 0), m->stack_top - 2 * PG };
		uint64_t vpa[3];

		for (int i = 0; i < 3; i++)
			vpa[i] = slab_alloc(b, &b->c_vma);
		for (int i = 0; i < 3; i++) {
			wptr(b, vpa[i], vstart[i]);
			const uint64_t P = b->psz;

			wptr(b, vpa[i] + P, vstart[i] + 3 * PG);
			wptr(b, vpa[i] + 2 * P, i < 2 ? dm(b, vpa[i + 1]) : 0);
			wptr(b, vpa[i] + 3 * P, prev);
			wptr(b, vpa[i] + 8 * P, m->va);
			wptr(b, vpa[i] + 9 * P, 0x8000000000000025ULL);
			wptr(b, vpa[i] + 10 * P, 0x8100073);
			prev = dm(b, vpa[i]);
			if (!i)
				first = prev;
		}
		wptr(b, pa + L->mm_mmap, first);
	}
	wptr(b, pa + L->mm_pgd, m->pgd_va);
	if ((uint32_t)L->mm_pgd >= b->psz)   /* task_size (32-bit: PAGE_OFFSET; arm64: TASK_SIZE_64) */
		wptr(b, pa + L->mm_pgd - b->psz, b->a64 ? 1ULL << b->va_bits : b->p32 ? b->pob : 0x7ffffffff000ULL);
	w32(b, pa + L->mm_pgd + MM_USERS_AFTER_PGD(b), (uint32_t)m->users);        /* mm_users */
	w32(b, pa + L->mm_pgd + MM_USERS_AFTER_PGD(b) + 4, 1);                       /* mm_count */
}

static void alloc_init_objects(struct sb *b)
{
	uint64_t pa;

	pa = kdata_alloc(b, b->mm_size, 64);
	b->init_mm_va = kimg(b, pa);
	wptr(b, pa + b->L->mm_pgd, kimg(b, b->kpgd_pa));         /* .pgd = swapper_pg_dir (image VA) */
	w32(b, pa + b->L->mm_pgd + MM_USERS_AFTER_PGD(b), 2);
	w32(b, pa + b->L->mm_pgd + MM_USERS_AFTER_PGD(b) + 4, 1);
	if (b->L->mm_mt >= 0)
		w32(b, pa + b->L->mm_mt + 4, 0x33);
	b->data_cur += rr(&b->r, 1024) & ~63ULL;
	pa = kdata_alloc(b, 192, 64);
	b->init_cred_va = kimg(b, pa);
	b->init_cred_pa = pa;
	pa = kdata_alloc(b, 512, 64);
	b->init_css_va = kimg(b, pa);
	b->css_tasks_off = 64;
	pa = kdata_alloc(b, 128, 64);
	b->init_nsproxy_va = kimg(b, pa);
	obj_noise(b, pa, 128, 0);
	pa = kdata_alloc(b, 192, 64);
	b->init_fs_va = kimg(b, pa);
	obj_noise(b, pa, 192, 0);
	pa = kdata_alloc(b, 704, 64);
	b->init_files_va = kimg(b, pa);
	obj_noise(b, pa, 704, 0);
	pa = kdata_alloc(b, 1024, 64);
	b->init_signal_va = kimg(b, pa);
	b->sig_thread_head_off = 16;
	pa = kdata_alloc(b, 2112, 64);
	b->init_sighand_va = kimg(b, pa);
	obj_noise(b, pa, 2112, 0);
	pa = kdata_alloc(b, 128, 64);
	b->init_pid_va = kimg(b, pa);
	pa = kdata_alloc(b, 256, 64);
	b->init_pid_ns_va = kimg(b, pa);
	obj_noise(b, pa, 256, 0);
	pa = kdata_alloc(b, 512, 64);
	b->init_user_ns_va = kimg(b, pa);
	obj_noise(b, pa, 512, 0);
	write_cred(b, b->init_cred_pa, 4, 0, 0, true);
	/* css_sets of services */
	b->css_va = calloc(b->ncss, sizeof(uint64_t));
	if (!b->css_va)
		abort();
	b->css_va[0] = b->init_css_va;
	for (size_t i = 1; i < b->ncss; i++) {
		pa = slab_alloc(b, &b->c_css);
		obj_noise(b, pa, 512, 0);
		b->css_va[i] = dm(b, pa);
	}
	for (size_t i = 0; i < b->ncss; i++)
		wlist_self(b, va2pa(b, b->css_va[i]) + b->css_tasks_off, b->css_va[i] + b->css_tasks_off);
}

/* CAP_FULL_SET of this kernel: bits 0..CAP_LAST_CAP */
static uint64_t cap_full_set(uint32_t kv)
{
	int last = kv >= SYNTH_KV(5, 9, 0) ? 40 : kv >= SYNTH_KV(5, 8, 0) ? 39 : kv >= SYNTH_KV(3, 16, 0) ? 37 :
		   kv >= SYNTH_KV(3, 5, 0) ? 36 : kv >= SYNTH_KV(3, 0, 0) ? 35 : kv >= SYNTH_KV(2, 6, 37) ? 34 :
		   kv >= SYNTH_KV(2, 6, 25) ? 33 : 31;

	return (1ULL << (last + 1)) - 1;
}

/* struct cred (no CONFIG_DEBUG_CREDENTIALS): usage, uid gid suid sgid euid egid fsuid fsgid, securebits,
 * cap_inheritable, cap_permitted, cap_effective, cap_bset, cap_ambient (≥ 4.3), keyrings, security, user,
 * user_ns, [ucounts], group_info, rcu */
static void write_cred(struct sb *b, uint64_t pa, uint32_t usage, uint32_t uid, uint32_t euid, bool init)
{
	uint64_t full = cap_full_set(b->kv);
	uint64_t eff = init && b->kv < SYNTH_KV(2, 6, 33) ? full & ~(1ULL << 8) : full;   /* CAP_INIT_EFF_SET */

	w32(b, pa, usage);
	for (int k = 0; k < 8; k++)      /* uid, gid, suid, sgid, euid, egid, fsuid, fsgid */
		w32(b, pa + 4 + 4 * k, k == 0 || k == 1 ? uid : euid);
	w32(b, pa + 36, 0);
	w64(b, pa + 40, 0);
	w64(b, pa + 48, euid == 0 ? full : 0);
	w64(b, pa + 56, euid == 0 ? eff : 0);
	w64(b, pa + 64, eff);
	w64(b, pa + 72, 0);
	wptr(b, pa + 128, b->init_user_ns_va + 0x100);   /* user: root_user / a user_struct */
	wptr(b, pa + 136, b->init_user_ns_va);
	wptr(b, pa + 152, b->init_user_ns_va + 0x180);   /* group_info: init_groups */
}

/* struct pid: count, level, tasks[PIDTYPE_MAX] hlist heads, …, numbers[0] = { nr, ns } */
#define PID_TASKS_OFF 16
#define PID_NR_OFF    88
static uint64_t alloc_pid(struct sb *b, int32_t nr)
{
	uint64_t pa = slab_alloc(b, &b->c_pid);

	w32(b, pa, 1 + (uint32_t)rr(&b->r, 3));
	w32(b, pa + 4, 0);
	wlist_self(b, pa + 56, dm(b, pa + 56));                 /* wait_pidfd */
	w32(b, pa + PID_NR_OFF, (uint32_t)nr);
	wptr(b, pa + PID_NR_OFF + b->psz, b->init_pid_ns_va);
	return dm(b, pa);
}

static void alloc_task_objects(struct sb *b)
{
	for (size_t i = 0; i < b->nt; i++) {
		struct tsk *t = &b->t[i];

		if (t->kind == SYNTH_T_INIT) {
			t->pa = kdata_alloc(b, b->tstride, 64);
			t->va = kimg(b, t->pa);
		} else {
			/* processes came and went: some slots were used by tasks that have been freed since */
			while (rp(&b->r, 30)) {
				uint64_t fpa = slab_alloc(b, &b->c_task);
				struct slab *s = &b->c_task.slabs[b->c_task.nslabs - 1];

				s->used[(fpa - s->pa) / b->c_task.stride] = 0;
			}
			t->pa = slab_alloc(b, &b->c_task);
			t->va = dm(b, t->pa);
		}
	}
	for (size_t i = 0; i < b->nt; i++) {
		struct tsk *t = &b->t[i];
		uint64_t spa = 0;

		/* kernel stack */
		if (t->kind == SYNTH_T_INIT) {
			spa = kdata_alloc(b, b->thread_size, b->thread_size);
			t->stack_va = kimg(b, spa);
		} else if (b->vmap_stack) {
			t->stack_va = vmalloc_map(b, b->thread_size / PG, &spa);
		} else {
			spa = alloc_pages(b, b->thread_size == 4 * PG ? 2 : 1);
			t->stack_va = dm(b, spa);
		}
		if (b->kv < SYNTH_KV(4, 9, 0)) {
			/* thread_info at the bottom of the stack: task, exec_domain, flags, status, cpu, … */
			const uint64_t P = b->psz;

			wptr(b, spa, t->va);
			wptr(b, spa + P, b->kv < SYNTH_KV(4, 1, 0) ? b->init_user_ns_va + 0x40 : 0);
			w32(b, spa + 2 * P, 0x80000 * (t->kind == SYNTH_T_PROC));
			w32(b, spa + 2 * P + 8, (uint32_t)t->lastcpu);
			wptr(b, spa + 2 * P + 16, is_kernel_task(t) ? ~0ULL : b->p32 ? b->pob : 0x7ffffffff000ULL);
		}
		{   /* some stack contents near the top */
			uint64_t top = va2pa(b, t->stack_va + b->thread_size - PG);

			for (int k = 0; k < 64; k++)
				wptr(b, top + PG - 8 * (k + 1), rp(&b->r, 50) ? kimg(b, b->kpa + rr(&b->r, K_TEXT_SZ))
								 : rn(&b->r));
		}
		/* struct pid, shared objects */
		t->pid_va = t->kind == SYNTH_T_INIT || t->kind == SYNTH_T_IDLE ? b->init_pid_va : alloc_pid(b, t->pid);
		if (is_kernel_task(t)) {
			t->files_va = b->init_files_va;
			t->fs_va = b->init_fs_va;
		} else if (t->leader == (int32_t)i) {
			t->files_va = dm(b, slab_alloc(b, &b->c_files));
			obj_noise(b, va2pa(b, t->files_va), 704, 0);
			t->fs_va = dm(b, slab_alloc(b, &b->c_fs));
			obj_noise(b, va2pa(b, t->fs_va), 64, 0);
		} else {
			t->files_va = b->t[t->leader].files_va;
			t->fs_va = b->t[t->leader].fs_va;
		}
		t->nsproxy_va = t->kind == SYNTH_T_ZOMBIE ? 0 : b->init_nsproxy_va;
		if (t->kind == SYNTH_T_INIT) {
			t->signal_va = b->init_signal_va;
			t->sighand_va = b->init_sighand_va;
		} else if (t->leader == (int32_t)i) {
			uint64_t s = slab_alloc(b, &b->c_signal);

			obj_noise(b, s, 1024, 0);
			t->signal_va = dm(b, s);
			t->sighand_va = dm(b, slab_alloc(b, &b->c_sighand));
			obj_noise(b, va2pa(b, t->sighand_va), 2112, 0);
		} else {
			t->signal_va = b->t[t->leader].signal_va;
			t->sighand_va = b->t[t->leader].sighand_va;
		}
		/* creds: every fork gets its own (prepare_creds), threads share, init_task has init_cred */
		if (b->L->off[TF_CRED] >= 0) {
			if (t->kind == SYNTH_T_INIT) {
				t->cred_va = t->real_cred_va = b->init_cred_va;
			} else if (t->leader != (int32_t)i) {
				t->cred_va = t->real_cred_va = b->t[t->leader].real_cred_va;
			} else {
				uint64_t c = slab_alloc(b, &b->c_cred);
				uint32_t uid = t->uid_user ? 1000 : 0;
				bool setuid = !strcmp(t->comm, "sudo");      /* uid 1000, euid/suid/fsuid 0 */

				write_cred(b, c, 2 + (uint32_t)rr(&b->r, 6), uid, setuid ? 0 : uid, false);
				t->cred_va = t->real_cred_va = dm(b, c);
			}
			if (t->override_cred) {
				uint64_t c = slab_alloc(b, &b->c_cred);

				memcpy(b->mem + c, b->mem + va2pa(b, t->real_cred_va), 168);
				w32(b, c, 1);
				/* do_faccessat(): fsuid/fsgid = uid/gid; non-root: cap_effective cleared */
				memcpy(b->mem + c + 28, b->mem + c + 4, 8);
				w64(b, c + 56, 0);
				t->cred_va = dm(b, c);
			}
		}
	}
}

/* ------------------------------------------------------------------------------------------------ */
/* writing task_structs                                                                               */

static uint64_t task_field_va(struct sb *b, int ti, int member)
{
	return b->t[ti].va + (uint64_t)b->aoff[member];
}

static uint64_t mm_va_of(struct sb *b, int32_t idx)
{
	return idx == -2 ? b->init_mm_va : idx < 0 ? 0 : b->mm[idx].va;
}

static void write_noise(struct sb *b, int ti)
{
	struct tsk *t = &b->t[ti];
	bool kern = is_kernel_task(t);

	for (size_t i = 0; i < b->nf; i++) {
		const struct field *f = &b->f[i];
		uint64_t pa = t->pa + f->off, va = t->va + f->off, v = 0;

		if (f->kind == FK_ANCHOR)
			continue;
		if (b->o->no_noise && f->off >= (int32_t)b->rs) {
			continue;
		}
		switch (f->kind) {
		case FK_ZERO:
			break;
		case FK_U8:
			b->mem[pa] = (uint8_t)((f->sub & 3) == 0 ? rr(&b->r, 2) : (f->sub & 3) == 1 ? (f->sub >> 8) : 0);
			break;
		case FK_U16:
			w16(b, pa, (uint16_t)((f->sub & 1) ? rr(&b->r, 8) : 0));
			break;
		case FK_U32:
			switch (f->sub & 3) {
			case 0: v = rr(&b->r, 64); break;
			case 1: v = (f->sub >> 8) & 0xfff; break;
			case 2: v = kern ? (f->sub >> 12) & 0xff : (f->sub >> 20) & 0xff; break;
			default: v = rr(&b->r, 2); break;
			}
			w32(b, pa, (uint32_t)v);
			break;
		case FK_CNT:
			wptr(b, pa, rr(&b->r, kern ? 5000 : 1000000));
			break;
		case FK_TIME:
			w64(b, pa, t->start_ns + rr(&b->r, 100000000000ULL));
			break;
		case FK_LIST:
			wlist_self(b, pa, va);
			break;
		case FK_MUTEX:
			wptr(b, pa, 0);
			w32(b, pa + b->psz, 0);
			wlist_self(b, pa + 2 * b->psz, va + 2 * b->psz);
			break;
		case FK_OBJ:
			wptr(b, pa, obj_ptr(b, ti, f->sub));
			break;
		case FK_TASKPTR:
			if (rp(&b->r, 60))
				wptr(b, pa, b->t[rr(&b->r, b->nt)].va);
			break;
		case FK_RB:
			wptr(b, pa, va);         /* RB_CLEAR_NODE: parent = self */
			break;
		case FK_KTEXT:
			wptr(b, pa, b->ktext_vals[(f->sub + (kern ? 1 : 0)) & 15]);
			break;
		case FK_KDATA:
			wptr(b, pa, b->kdata_vals[f->sub & 15]);
			break;
		case FK_UPTR:
			if (!kern && t->mm >= 0)
				wptr(b, pa, user_mmap_va(b, rr(&b->r, 1ULL << 27) << 12) + rr(&b->r, 4096));
			break;
		case FK_STACKPTR:
			wptr(b, pa, t->stack_va + b->thread_size - 8 * (1 + rr(&b->r, 64)));
			break;
		case FK_HLIST:
			break;
		case FK_ASCII:
			wbytes(b, pa, ascii_words[rr(&b->r, sizeof(ascii_words) / sizeof(ascii_words[0]))], 8);
			break;
		case FK_RAND:
			wptr(b, pa, rn(&b->r));
			break;
		case FK_NEG:
			wptr(b, pa, ~0ULL);
			break;
		}
	}
}

static void waptr(struct sb *b, int ti, int m, uint64_t v)
{
	if (b->aoff[m] >= 0)
		wptr(b, b->t[ti].pa + b->aoff[m], v);
}
static void wa32(struct sb *b, int ti, int m, uint32_t v)
{
	if (b->aoff[m] >= 0)
		w32(b, b->t[ti].pa + b->aoff[m], v);
}
static void wa_list(struct sb *b, int ti, int m, uint64_t next, uint64_t prev)
{
	if (b->aoff[m] >= 0) {
		wptr(b, b->t[ti].pa + b->aoff[m], next);
		wptr(b, b->t[ti].pa + b->aoff[m] + b->psz, prev);
	}
}
static void wa_self(struct sb *b, int ti, int m)
{
	if (b->aoff[m] >= 0)
		wa_list(b, ti, m, task_field_va(b, ti, m), task_field_va(b, ti, m));
}

/* link nodes (VAs of list_heads) into a ring; head may be a non-task list_head */
static void link_ring(struct sb *b, const uint64_t *nodes, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		uint64_t pa = va2pa(b, nodes[i]);

		wptr(b, pa, nodes[(i + 1) % n]);
		wptr(b, pa + b->psz, nodes[(i + n - 1) % n]);
	}
}

static void write_anchors(struct sb *b, int ti)
{
	struct tsk *t = &b->t[ti];
	bool leader = t->leader == ti;
	char comm[16] = { 0 };
	uint32_t pflags;

	memcpy(comm, t->comm, strnlen(t->comm, 15));
	if (b->aoff[TF_COMM] >= 0)
		wbytes(b, t->pa + b->aoff[TF_COMM], comm, 16);
	wa32(b, ti, TF_PID, (uint32_t)t->pid);
	wa32(b, ti, TF_TGID, (uint32_t)t->tgid);
	waptr(b, ti, TF_MM, mm_va_of(b, t->mm));
	waptr(b, ti, TF_ACTIVE_MM, mm_va_of(b, t->act));
	waptr(b, ti, TF_REAL_PARENT, b->t[t->rp].va);
	waptr(b, ti, TF_PARENT, b->aoff[TF_REAL_PARENT] >= 0 ? b->t[t->par].va : b->t[t->rp].va);
	waptr(b, ti, TF_CRED, t->cred_va);
	waptr(b, ti, SM_REAL_CRED, t->real_cred_va);
	waptr(b, ti, SM_GROUP_LEADER, b->t[t->leader].va);
	waptr(b, ti, SM_STACK, t->stack_va);
	if (b->aoff[SM_STATE] >= 0) {
		uint64_t st = t->cpu >= 0 || t->runnable ? 0 : t->kind == SYNTH_T_ZOMBIE ? 0x80 :
			      t->kind == SYNTH_T_KTHREAD && b->kv >= SYNTH_KV(4, 2, 0) ? 0x402 : 1;

		if (b->asize[SM_STATE] == 8)
			wptr(b, t->pa + b->aoff[SM_STATE], st);
		else
			w32(b, t->pa + b->aoff[SM_STATE], (uint32_t)st);
	}
	wa32(b, ti, SM_USAGE, t->kind == SYNTH_T_ZOMBIE ? 1 : 2);
	pflags = t->kind == SYNTH_T_KTHREAD ? 0x00208040 : t->kind == SYNTH_T_IDLE || t->kind == SYNTH_T_INIT ?
		 0x00200102 : t->kind == SYNTH_T_ZOMBIE ? 0x0040000c : 0x00400100;
	wa32(b, ti, SM_PFLAGS, pflags);
	wa32(b, ti, SM_EXIT_SIGNAL, leader ? 17 : 0xffffffffu);
	if (b->aoff[SM_START_TIME] >= 0)
		w64(b, b->t[ti].pa + b->aoff[SM_START_TIME], t->start_ns);   /* u64 */
	waptr(b, ti, SM_SIGNAL, t->signal_va);
	waptr(b, ti, SM_SIGHAND, t->sighand_va);      /* cleared only when the zombie is reaped */
	waptr(b, ti, SM_FILES, t->kind == SYNTH_T_ZOMBIE ? 0 : t->files_va);
	waptr(b, ti, SM_FS, t->kind == SYNTH_T_ZOMBIE ? 0 : t->fs_va);
	waptr(b, ti, SM_NSPROXY, t->nsproxy_va);
	waptr(b, ti, SM_CGROUPS, t->css < 0 ? b->init_css_va : b->css_va[t->css]);
	waptr(b, ti, SM_LAST_WAKEE, rp(&b->r, 50) ? b->t[rr(&b->r, b->nt)].va : 0);
	waptr(b, ti, SM_SCHED_CLASS, t->kind == SYNTH_T_INIT || t->kind == SYNTH_T_IDLE ? b->idle_class_va :
		t->prio_class == 2 ? (strncmp(t->comm, "migration", 9) ? b->rt_class_va : b->stop_class_va) :
		b->fair_class_va);
	if (b->aoff[SM_PRIO] >= 0) {
		uint32_t prio = t->prio_class == 1 ? 100 : t->prio_class == 2 ? 0 : 120;
		uint64_t pa = t->pa + b->aoff[SM_PRIO];

		w32(b, pa, prio);
		w32(b, pa + 4, t->prio_class == 1 ? 100 : 120);
		w32(b, pa + 8, prio);
		w32(b, pa + 12, t->prio_class == 2 ? 99 : 0);
	}
	if (b->aoff[SM_CPU] >= 0)
		w32(b, t->pa + b->aoff[SM_CPU], (uint32_t)(t->cpu >= 0 ? t->cpu : t->lastcpu));
	if (b->aoff[SM_PUSHABLE] >= 0) {
		uint64_t pa = t->pa + b->aoff[SM_PUSHABLE], va = t->va + b->aoff[SM_PUSHABLE];

		uint32_t l1 = b->psz, l2 = 3 * b->psz;   /* after int prio (padded to a pointer) */

		w32(b, pa, 140);                 /* plist_node_init(&p->pushable_tasks, MAX_PRIO) */
		wlist_self(b, pa + l1, va + l1);
		wlist_self(b, pa + l2, va + l2);
	}
	if (b->aoff[SM_PIDS] >= 0) {
		uint64_t pa = t->pa + b->aoff[SM_PIDS], pid_pa = va2pa(b, t->pid_va);
		uint64_t nodeva = t->va + b->aoff[SM_PIDS];

		if (b->kv >= SYNTH_KV(4, 19, 0)) {
			/* thread_pid, pid_links[PIDTYPE_MAX] */
			const uint64_t P = b->psz;

			wptr(b, pa, t->pid_va);
			for (int k = 0; k < 4; k++) {
				bool linked = t->kind != SYNTH_T_IDLE && t->kind != SYNTH_T_INIT && (k == 0 || leader);

				wptr(b, pa + P + 2 * P * k, 0);
				wptr(b, pa + 2 * P + 2 * P * k, linked ? t->pid_va + PID_TASKS_OFF + P * k : 0);
				if (linked && k < 2)
					wptr(b, pid_pa + PID_TASKS_OFF + P * k, nodeva + P + 2 * P * k);
			}
		} else {
			/* pids[PIDTYPE_MAX]: { hlist_node node; struct pid *pid; } */
			for (int k = 0; k < 3; k++) {
				bool linked = t->kind != SYNTH_T_IDLE && (k == 0 || leader);

				const uint64_t P = b->psz;

				wptr(b, pa + 3 * P * k, 0);
				wptr(b, pa + 3 * P * k + P, linked ? t->pid_va + PID_TASKS_OFF + P * k : 0);
				wptr(b, pa + 3 * P * k + 2 * P, linked || k == 0 ? t->pid_va : 0);
				if (linked && k == 0)
					wptr(b, pid_pa + PID_TASKS_OFF, nodeva);
			}
		}
	}
	/* lists filled later; default: empty */
	wa_self(b, ti, TF_CHILDREN);
	wa_self(b, ti, TF_SIBLING);
	wa_self(b, ti, SM_PTRACED);
	wa_self(b, ti, SM_PTRACE_ENTRY);
	wa_self(b, ti, SM_THREAD_GROUP);
	wa_self(b, ti, SM_THREAD_NODE);
	wa_self(b, ti, SM_CG_LIST);
	wa_self(b, ti, SM_SE_GROUP_NODE);
}

static void write_lists(struct sb *b)
{
	size_t n = b->nt;
	uint64_t *nodes = calloc(n + 2, sizeof(uint64_t));
	size_t k;

	if (!nodes)
		abort();
	/* tasks: init_task, then every thread-group leader with a pid, in fork order */
	k = 0;
	for (size_t i = 0; i < n; i++) {
		struct tsk *t = &b->t[i];

		if (t->kind == SYNTH_T_INIT || (t->leader == (int32_t)i && t->pid != 0))
			nodes[k++] = task_field_va(b, (int)i, TF_TASKS);
	}
	link_ring(b, nodes, k);
	b->img->n_on_list = (uint32_t)k;
	/* threads and idle tasks: dup_task_struct copied the creator's tasks list_head, never relinked */
	for (size_t i = 0; i < n; i++) {
		struct tsk *t = &b->t[i];
		int src;

		if (t->kind == SYNTH_T_INIT || (t->leader == (int32_t)i && t->pid != 0))
			continue;
		src = t->kind == SYNTH_T_IDLE ? 1 : t->leader;
		memcpy(b->mem + t->pa + b->aoff[TF_TASKS], b->mem + b->t[src].pa + b->aoff[TF_TASKS], 2 * b->psz);
		if (rp(&b->r, 40))   /* the list moved on since */
			wptr(b, t->pa + b->aoff[TF_TASKS] + b->psz, task_field_va(b, (int)rr(&b->r, n), TF_TASKS));
	}
	/* children / sibling: leaders with a pid hang off their real parent (tracer before 2.6.26) */
	for (size_t p = 0; p < n; p++) {
		k = 0;
		nodes[k++] = task_field_va(b, (int)p, TF_CHILDREN);
		for (size_t i = 0; i < n; i++) {
			struct tsk *t = &b->t[i];
			int32_t owner = b->kv < SYNTH_KV(2, 6, 26) && t->tracer >= 0 ? t->par : t->rp;

			if (i == p || t->leader != (int32_t)i || t->pid == 0 || owner != (int32_t)p)
				continue;
			nodes[k++] = task_field_va(b, (int)i, TF_SIBLING);
		}
		if (k > 1)
			link_ring(b, nodes, k);
	}
	/* thread_group (< 6.7) and thread_node (signal->thread_head, ≥ 3.14) */
	for (size_t l = 0; l < n; l++) {
		if (b->t[l].leader != (int32_t)l || b->t[l].kind == SYNTH_T_INIT)
			continue;
		if (b->aoff[SM_THREAD_GROUP] >= 0) {
			k = 0;
			for (size_t i = 0; i < n; i++)
				if (b->t[i].leader == (int32_t)l)
					nodes[k++] = task_field_va(b, (int)i, SM_THREAD_GROUP);
			if (k > 1)
				link_ring(b, nodes, k);
		}
		if (b->aoff[SM_THREAD_NODE] >= 0) {
			k = 0;
			nodes[k++] = b->t[l].signal_va + b->sig_thread_head_off;
			for (size_t i = 0; i < n; i++)
				if (b->t[i].leader == (int32_t)l)
					nodes[k++] = task_field_va(b, (int)i, SM_THREAD_NODE);
			link_ring(b, nodes, k);
		}
	}
	/* init_task's signal->thread_head holds init_task and nothing else */
	if (b->aoff[SM_THREAD_NODE] >= 0) {
		uint64_t two[2] = { b->init_signal_va + b->sig_thread_head_off, task_field_va(b, 0, SM_THREAD_NODE) };

		link_ring(b, two, 2);
	}
	/* ptrace: tracer->ptraced holds tracee->ptrace_entry (≥ 2.6.26, "ptrace children revamp");
	 * before, the old parent's ptrace_children held the tracee's ptrace_list, and nothing when the
	 * tracer was the parent */
	if (b->aoff[SM_PTRACED] >= 0) {
		bool old = b->kv < SYNTH_KV(2, 6, 26);

		for (size_t tr = 0; tr < n; tr++) {
			k = 0;
			nodes[k++] = task_field_va(b, (int)tr, SM_PTRACED);
			for (size_t i = 0; i < n; i++) {
				const struct tsk *t = &b->t[i];

				if (t->tracer < 0)
					continue;
				if (old ? (t->rp == (int32_t)tr && t->tracer != t->rp) : t->tracer == (int32_t)tr)
					nodes[k++] = task_field_va(b, (int)i, SM_PTRACE_ENTRY);
			}
			if (k > 1)
				link_ring(b, nodes, k);
		}
	}
	/* cgroups: css_set->tasks rings (init_task stays off: the lists were built by walking from it) */
	if (b->aoff[SM_CG_LIST] >= 0) {
		for (size_t c = 0; c < b->ncss; c++) {
			k = 0;
			nodes[k++] = b->css_va[c] + b->css_tasks_off;
			for (size_t i = 1; i < n; i++)
				if (b->t[i].css == (c == 0 ? -1 : (int32_t)c))
					nodes[k++] = task_field_va(b, (int)i, SM_CG_LIST);
			link_ring(b, nodes, k);
		}
	}
	/* CFS: rq->cfs_tasks holds the runnable tasks of each CPU, current included */
	if (b->aoff[SM_SE_GROUP_NODE] >= 0) {
		for (uint32_t c = 0; c < b->ncpus; c++) {
			k = 0;
			nodes[k++] = dm(b, b->pcpu_pa[c]) + b->rq_off + b->rq_cfs_tasks_off;
			for (size_t i = 0; i < n; i++) {
				struct tsk *t = &b->t[i];

				if (t->kind == SYNTH_T_IDLE || t->kind == SYNTH_T_INIT || t->prio_class == 2)
					continue;
				if (t->cpu == (int)c || (t->runnable && t->lastcpu == (int)c))
					nodes[k++] = task_field_va(b, (int)i, SM_SE_GROUP_NODE);
			}
			link_ring(b, nodes, k);
		}
	}
	free(nodes);
}

/* freed task_structs in unused slab slots: old contents, poisoned links, SLUB free pointer */
static void write_stale_tasks(struct sb *b)
{
	struct cache *c = &b->c_task;
	int32_t pid = 30000 + (int32_t)rr(&b->r, 1000);

	for (size_t s = 0; s < c->nslabs; s++) {
		for (uint32_t slot = 0; slot < c->per_slab; slot++) {
			uint64_t pa = c->slabs[s].pa + (uint64_t)slot * c->stride, va = dm(b, pa);
			int src;

			if (c->slabs[s].used[slot] || rp(&b->r, 20))
				continue;
			do
				src = (int)rr(&b->r, b->nt);
			while (b->t[src].kind == SYNTH_T_INIT);
			memcpy(b->mem + pa, b->mem + b->t[src].pa, b->L->size);
			pid += 1 + (int32_t)rr(&b->r, 500);
			w32(b, pa + b->aoff[TF_PID], (uint32_t)pid);
			w32(b, pa + b->aoff[TF_TGID], (uint32_t)(rp(&b->r, 80) ? pid : pid - 1));
			if (b->aoff[TF_COMM] >= 0) {
				char comm[16] = { 0 };

				strncpy(comm, rand_words[rr(&b->r, sizeof(rand_words) / sizeof(rand_words[0]))], 15);
				wbytes(b, pa + b->aoff[TF_COMM], comm, 16);
			}
			wptr(b, pa + b->aoff[TF_TASKS] + b->psz, b->psz == 4 ? POISON2_32 : POISON2);                  /* list_del_rcu */
			wptr(b, pa + b->aoff[TF_MM], 0);                                  /* exit_mm */
			if (b->aoff[TF_SIBLING] >= 0)
				wlist_self(b, pa + b->aoff[TF_SIBLING], va + b->aoff[TF_SIBLING]);
			if (b->aoff[TF_CHILDREN] >= 0)
				wlist_self(b, pa + b->aoff[TF_CHILDREN], va + b->aoff[TF_CHILDREN]);
			if (b->aoff[SM_THREAD_GROUP] >= 0)
				wptr(b, pa + b->aoff[SM_THREAD_GROUP] + b->psz, b->psz == 4 ? POISON2_32 : POISON2);
			if (b->aoff[SM_GROUP_LEADER] >= 0)
				wptr(b, pa + b->aoff[SM_GROUP_LEADER], va);
			for (size_t i = 0; i < b->nf; i++)   /* self-pointing members point into this object now */
				if (b->f[i].kind == FK_LIST || b->f[i].kind == FK_RB)
					wptr(b, pa + b->f[i].off, va + b->f[i].off);
			if (b->aoff[SM_USAGE] >= 0)
				w32(b, pa + b->aoff[SM_USAGE], 0);
			wptr(b, pa + c->freeptr_off, c->random ^ rn(&b->r));        /* hardened free pointer */
			b->img->n_stale++;
		}
	}
}

/* ------------------------------------------------------------------------------------------------ */
/* per-CPU areas, scheduling, observations                                                            */

struct cpu_sched {
	uint32_t cpu;
	int32_t asid_mm[6];      /* mm index per ASID slot, -3 empty, -2 init_mm */
	int next_slot;
	int32_t loaded;          /* loaded mm (-2 init_mm) */
	int32_t borrowed;        /* last user mm, what a kernel thread's active_mm would be */
};

/* arm64: an mm's ASID (global, per mm; KPTI keeps even ones for the kernel, odd for EL0) */
static uint16_t a64_asid(const struct sb *b, int32_t mmi)
{
	return (uint16_t)((mmi + 1) * (b->kpti ? 2 : 1));
}

static uint64_t cr3_kernel(struct sb *b, int32_t mmi, int slot)
{
	uint64_t pa = mmi == -2 ? b->kpgd_pa : b->mm[mmi].pgd_pa;

	if (b->a64) {
		/* the "CR3" of an arm64 observation is TTBR0_EL1: init_mm is never loaded there
		 * (cpu_set_reserved_ttbr0: the empty table, no ASID); a process's pgd with CnP, and its ASID when
		 * CONFIG_ARM64_SW_TTBR0_PAN copies it from TTBR1 (TCR.A1: the ASID is TTBR1's) */
		if (mmi == -2)
			return b->reserved_ttbr0_pa;
		return pa | (b->sw_pan ? (uint64_t)a64_asid(b, mmi) << 48 : 0) | (b->cnp ? 1 : 0);
	}

	return pa | (b->pcid && b->kv >= SYNTH_KV(4, 14, 0) ? (uint64_t)(slot + 1) : 0);
}

static uint64_t cr3_user(struct sb *b, int32_t mmi, int slot)
{
	uint64_t v = cr3_kernel(b, mmi, slot);

	if (!b->pti)
		return v;
	if (b->kv >= SYNTH_KV(4, 14, 0))
		return v | 0x1000 | (b->pcid ? 0x800 : 0);
	return v | 0x1000 | (b->pcid ? 0x80 : 0);      /* KAISER backports */
}

static void obs_push(struct sb *b, uint64_t *tm, uint32_t cpu, uint64_t cr3)
{
	struct observation ob = { 0 };

	*tm += 2000 + rr(&b->r, 3000000);
	ob.time_ns = *tm;
	ob.cr3 = cr3;
	ob.gs_base = b->img->gs_base[cpu];
	ob.vcpu = cpu;
	ob.source = b->a64 ? OBS_QMP : OBS_BPF;   /* arm64: vCPU registers sampled (gdbstub), no KVM tracepoint */
	if (obs_add(&b->img->obs, &ob))
		b->err = -ENOMEM;
}

/* switch_mm to mmi on cpu; returns the CR3 written (with the no-flush bit when the ASID was current) */
static uint64_t switch_mm(struct sb *b, struct cpu_sched *cs, int32_t mmi)
{
	int slot = -1;
	bool noflush = false;

	for (int i = 0; i < 6; i++)
		if (cs->asid_mm[i] == mmi)
			slot = i, noflush = true;
	if (slot < 0) {
		slot = cs->next_slot;
		cs->next_slot = (cs->next_slot + 1) % 6;
		cs->asid_mm[slot] = mmi;
	}
	cs->loaded = mmi;
	if (b->a64 && mmi >= 0)   /* cpu_do_switch_mm: the ASID goes into TTBR1; switching to init_mm keeps it */
		b->ttbr1_asid[cs->cpu] = a64_asid(b, mmi);
	return cr3_kernel(b, mmi, slot) | (noflush && b->pcid && b->kv >= SYNTH_KV(4, 14, 0) ? 1ULL << 63 : 0);
}

static int slot_of(struct cpu_sched *cs, int32_t mmi)
{
	for (int i = 0; i < 6; i++)
		if (cs->asid_mm[i] == mmi)
			return i;
	return 0;
}

static void run_cpu(struct sb *b, uint32_t cpu, int final, const int32_t *exited, size_t nexited)
{
	uint32_t nev = b->o->nobs_per_cpu ? b->o->nobs_per_cpu : 40;
	struct cpu_sched cs;
	uint64_t tm = rr(&b->r, 1000000);
	int *users = malloc(b->nt * sizeof(int)), *kth = malloc(b->nt * sizeof(int));
	size_t nu = 0, nk = 0;
	int idle = cpu == 0 ? 0 : -1;

	if (!users || !kth)
		abort();
	for (size_t i = 0; i < b->nt; i++) {
		struct tsk *t = &b->t[i];

		if (t->mm >= 0 && t->kind != SYNTH_T_ZOMBIE)
			users[nu++] = (int)i;
		else if (t->kind == SYNTH_T_KTHREAD)
			kth[nk++] = (int)i;
	}
	{   /* the idle task of this CPU */
		uint32_t seen = 0;

		for (size_t i = 0; i < b->nt && cpu > 0; i++)
			if (b->t[i].kind == SYNTH_T_IDLE && ++seen == cpu)
				idle = (int)i;
	}
	for (int i = 0; i < 6; i++)
		cs.asid_mm[i] = -3;
	cs.cpu = cpu;
	cs.next_slot = 0;
	cs.loaded = -2;
	cs.borrowed = -2;
	{
		uint64_t v = switch_mm(b, &cs, -2);

		obs_push(b, &tm, cpu, v & ~(1ULL << 63));
	}
	for (uint32_t ev = 0; ev < nev; ev++) {
		bool last = ev == nev - 1;
		int ti;
		unsigned k = (unsigned)rr(&b->r, 100);

		if (last)
			ti = final;
		else if (ev == nev - 2 && b->t[final].mm < 0 && nu)
			ti = users[rr(&b->r, nu)];      /* a user task ran right before a kernel thread */
		else if (k < 55 && nu)
			ti = users[rr(&b->r, nu)];
		else if (k < 85 && nk)
			ti = kth[rr(&b->r, nk)];
		else
			ti = idle;
		if (!last && nexited && ev < nev / 2 && rp(&b->r, 8)) {
			/* a short-lived process that has exited since */
			int32_t mi = exited[rr(&b->r, nexited)];

			obs_push(b, &tm, cpu, switch_mm(b, &cs, mi));
			obs_push(b, &tm, cpu, cr3_user(b, mi, slot_of(&cs, mi)));
			continue;
		}
		if (ti >= 0 && b->t[ti].mm >= 0 && b->t[ti].kind != SYNTH_T_ZOMBIE) {
			int32_t mi = b->t[ti].mm;
			uint64_t v;

			if (cs.loaded != mi) {
				v = switch_mm(b, &cs, mi);
				obs_push(b, &tm, cpu, v);
			} else {
				obs_push(b, &tm, cpu, cr3_kernel(b, mi, slot_of(&cs, mi)));
			}
			cs.borrowed = mi;
			for (int u = 0; u < 1 + (int)rr(&b->r, 3); u++) {
				obs_push(b, &tm, cpu, cr3_user(b, mi, slot_of(&cs, mi)));
				if (rp(&b->r, 40))
					obs_push(b, &tm, cpu, cr3_kernel(b, mi, slot_of(&cs, mi)));
			}
		} else {
			/* kernel thread / idle: lazy TLB keeps the loaded mm; sometimes leave_mm → init_mm (x86: arm64
			 * has no leave_mm, a CPU keeps the last user mm's TTBR0) */
			if (!b->a64 && cs.loaded != -2 && rp(&b->r, 25))
				obs_push(b, &tm, cpu, switch_mm(b, &cs, -2));
			else
				obs_push(b, &tm, cpu, cr3_kernel(b, cs.loaded, slot_of(&cs, cs.loaded)));
		}
		if (ti >= 0)
			b->t[ti].lastcpu = (int)cpu;
	}
	/* the final task: running here */
	{
		struct tsk *t = &b->t[final];

		t->cpu = (int)cpu;
		if (t->mm >= 0)
			t->act = t->mm;
		else
			t->act = cs.borrowed;     /* borrowed mm (init_mm if no user task ran) */
		b->img->current[cpu] = 0;     /* filled when VAs exist */
	}
	free(users);
	free(kth);
}

static void setup_percpu(struct sb *b)
{
	uint64_t unit = 0x40000;
	const struct synth_layout *L = b->L;

	b->pda = b->kv < SYNTH_KV(2, 6, 30) && !b->p32;
	if (b->p32) {
		/* i386: gdt_page opens the per-CPU unit (.data..percpu..page_aligned); current_task a few pages
		 * on. (Before 2.6.22 i386 found current through the stack; the slot is kept for every row.) */
		b->img->current_off = 0x1000 + (rr(&b->r, 0x4000) & ~3ULL);
	} else if (b->a64) {
		/* arm64 keeps `current` in SP_EL0, in no per-CPU variable; the entry code's __entry_task and
		 * runqueues.curr name the running task. Offsets from __per_cpu_start, whose link address lies in the
		 * init section; TPIDR_EL1 = __per_cpu_offset[cpu] = the CPU's copy - __per_cpu_start. */
		b->img->current_off = 0x2000 + (rr(&b->r, 0x6000) & ~7ULL);
	} else if (b->pda) {
		b->img->current_off = 0;
	} else if (L->current_task >= 0) {
		b->img->current_off = (uint64_t)L->current_task;
	} else {
		b->img->current_off = b->kv >= SYNTH_KV(5, 0, 0) ? 0x17bc0 : 0xd3c0;
	}
	while (unit < b->img->current_off + 0x10000)
		unit *= 2;
	{
		uint32_t order = 0;

		while ((PG << order) < unit * b->ncpus)
			order++;
		uint64_t base = alloc_pages(b, order);

		for (uint32_t c = 0; c < b->ncpus; c++)
			b->pcpu_pa[c] = base + c * unit;
	}
	/* variables at fixed per-CPU offsets (the same in every unit) */
	b->rq_off = (b->img->current_off + 0x4000 + rr(&b->r, 0x2000)) & ~63ULL;
	b->rq_curr_off = 0x980;
	b->rq_idle_off = 0x988;
	b->rq_cfs_tasks_off = 0x9a0;
	for (uint32_t c = 0; c < b->ncpus; c++) {
		uint64_t pa = b->pcpu_pa[c];

		for (uint64_t o = 0; o < unit; o += 8) {
			uint64_t v = rn(&b->r);
			unsigned k = (unsigned)(v >> 54);         /* 0..1023 */

			v &= (1ULL << 54) - 1;
			if (k < 920)
				continue;
			if (k < 950)
				wptr(b, pa + o, v % 100000);
			else if (k < 970 && o + 16 <= unit)
				wlist_self(b, pa + o, dm(b, pa + o)), o += 8;
			else if (k < 995)
				wptr(b, pa + o, dm(b, b->ram_base + v % b->ram) & ~63ULL);
			else
				wptr(b, pa + o, rn(&b->r));
		}
		if (b->p32) {
			/* the GDT: flat code/data segments, __KERNEL_PERCPU (entry 27) based at the unit; the CPU's
			 * GDTR names a read-only fixmap alias of the page, which is all an observer sees */
			uint64_t gdt_va = 0xff401000ULL + (uint64_t)c * 2 * PG;
			uint64_t seg = dm(b, pa);

			memset(b->mem + pa, 0, PG);
			w64(b, pa + 12 * 8, 0x00cf9a000000ffffULL);   /* __KERNEL_CS */
			w64(b, pa + 13 * 8, 0x00cf92000000ffffULL);   /* __KERNEL_DS */
			w64(b, pa + 14 * 8, 0x00cffa000000ffffULL);   /* __USER_CS */
			w64(b, pa + 15 * 8, 0x00cff2000000ffffULL);   /* __USER_DS */
			w64(b, pa + 27 * 8, 0x008f92000000ffffULL | ((seg & 0xffffff) << 16) |
					   ((seg >> 24) << 56));
			pt_map(b, b->kpgd_pa, gdt_va, pa, PG, E_P | E_A | E_G | E_NX, KERNPG_TABLE);
			b->img->gs_base[c] = gdt_va;
			continue;
		}
		if (b->a64) {
			b->img->gs_base[c] = dm(b, pa) - b->percpu_link;
			continue;
		}
		w64(b, pa + 40, rn(&b->r));                       /* stack canary, %gs:40 */
		if (b->pda) {
			uint64_t pda = kdata_alloc(b, 128, 64);

			b->img->gs_base[c] = kimg(b, pda);
		} else {
			b->img->gs_base[c] = dm(b, pa);
		}
	}
}

static void write_percpu(struct sb *b)
{
	for (uint32_t c = 0; c < b->ncpus; c++) {
		uint64_t pa = b->pcpu_pa[c];
		int cur = -1, idle = -1;
		uint32_t seen = 0;

		for (size_t i = 0; i < b->nt; i++) {
			if (b->t[i].cpu == (int)c)
				cur = (int)i;
			if ((c == 0 && b->t[i].kind == SYNTH_T_INIT) || (b->t[i].kind == SYNTH_T_IDLE && ++seen == c))
				idle = (int)i;
		}
		b->img->current[c] = b->t[cur].va;
		if (b->pda) {
			uint64_t pda = va2pa(b, b->img->gs_base[c]);

			wptr(b, pda, b->t[cur].va);                          /* pcurrent */
			wptr(b, pda + 8, dm(b, pa));                         /* data_offset */
			wptr(b, pda + 16, b->t[cur].stack_va + b->thread_size - 88);   /* kernelstack */
			wptr(b, pda + 24, 0x7ffd00000000ULL + rr(&b->r, 1ULL << 32));  /* oldrsp */
			w32(b, pda + 32, 0xffffffffu);                      /* irqcount */
			w32(b, pda + 36, c);                                /* cpunumber */
			wptr(b, pda + 40, dm(b, alloc_pages(b, 2)) + 4 * PG - 64);     /* irqstackptr */
			wptr(b, pda + 64, mm_va_of(b, b->t[cur].act));       /* active_mm */
		} else {
			wptr(b, pa + b->img->current_off, b->t[cur].va);
			if (b->L->pcpu_hot) {
				w32(b, pa + b->img->current_off + 8, 0x80000000u);   /* preempt_count */
				w32(b, pa + b->img->current_off + 12, c);            /* cpu_number */
				wptr(b, pa + b->img->current_off + 24, b->t[cur].stack_va + b->thread_size);
			}
		}
		/* runqueues: curr, idle, cfs_tasks (filled by write_lists) */
		wptr(b, pa + b->rq_off + b->rq_curr_off, b->t[cur].va);
		wptr(b, pa + b->rq_off + b->rq_idle_off, b->t[idle].va);
		w32(b, pa + b->rq_off + 4, 1 + (uint32_t)rr(&b->r, 3));
		/* this_cpu_off, cpu_tlbstate.loaded_mm */
		wptr(b, pa + b->rq_off - 0x400, dm(b, pa));
		wptr(b, pa + b->rq_off - 0x380, mm_va_of(b, b->t[cur].act >= 0 ? b->t[cur].act : -2));
	}
}

/* stale contents in free RAM: page cache text, random data, old pointers */
static void junk_fill(struct sb *b)
{
	int pct = b->o->junk_pct == 0 ? 10 : b->o->junk_pct;
	static const char *const lines[] = {
		"root:x:0:0:root:/root:/bin/bash\n", "GET /index.html HTTP/1.1\r\n", "systemd[1]: Started Session 3.\n",
		"comm=sleep pid=4242 ", "swapper/0", "kthreadd\n", "Nov 25 18:00:01 host CRON[812]: (root) CMD\n",
		"LANG=C.UTF-8", "/usr/lib/x86_64-linux-gnu/libc.so.6", "init", "bash", "sshd: user@pts/0",
	};

	if (pct < 0)
		return;
	for (uint64_t p = (1 * MiB) / PG; p < b->npages; p++) {
		uint64_t pa = b->ram_base + p * PG;
		unsigned k;

		if (b->pused[p] || !rp(&b->r, (unsigned)pct))
			continue;
		k = (unsigned)rr(&b->r, 3);
		if (k == 0) {
			fill_random(b, pa, PG);
		} else if (k == 1) {
			uint64_t o = 0;

			while (o < PG - 64) {
				const char *s = lines[rr(&b->r, sizeof(lines) / sizeof(lines[0]))];

				put_str(b, pa + o, s);
				o += strlen(s) + rr(&b->r, 3);
			}
		} else {
			for (uint64_t o = 0; o < PG; o += 8) {
				uint64_t v = rn(&b->r);
				unsigned q = (unsigned)(v >> 60);     /* 0..15 */

				v &= (1ULL << 60) - 1;
				if (q < 5)
					wptr(b, pa + o, dm(b, b->ram_base + v % b->ram) & ~7ULL);
				else if (q < 6)
					wptr(b, pa + o, dm(b, pa + o));
				else if (q < 9)
					wptr(b, pa + o, v & 65535);
			}
		}
	}
}

/* ------------------------------------------------------------------------------------------------ */

static void choose_platform(struct sb *b)
{
	const struct synth_opts *o = b->o;
	uint32_t kv = b->kv;
	const char *rel = b->L->release;
	bool pti_capable = kv >= SYNTH_KV(4, 15, 0) || (kv >= SYNTH_KV(4, 14, 11)) ||
			   (strstr(rel, "el7") && kv == SYNTH_KV(3, 10, 0) && atoi(rel + 7) >= 693 &&
			    (atoi(rel + 7) > 693 || strstr(rel, "693.11.6") || strstr(rel, "693.17") ||
			     strstr(rel, "693.21"))) ||
			   (kv == SYNTH_KV(4, 4, 0) && atoi(rel + 6) >= 108) ||
			   (kv == SYNTH_KV(4, 9, 0) && atoi(rel + 6) >= 5);

	if (b->p32) {
		/* i386 rows (2.6.17 … 4.2): no KASLR, PTI, PCID or 5-level paging here; stacks are 8 KiB lowmem
		 * pages with thread_info at the bottom (no VMAP_STACK on 32-bit) */
		b->levels = b->p32;
		b->thread_size = 2 * PG;
		/* utrace kernels dropped ptrace's fields with one of the two parent pointers: RHEL5 kept parent,
		 * Fedora 9 (2.6.25) kept real_parent */
		b->utrace = b->L->off[TF_REAL_PARENT] < 0 || b->L->off[TF_PARENT] < 0;
		return;
	}
	if (b->a64) {
		/* arm64 rows (4.18 … 7.2, 4 KiB granule here whatever the row's page size): KASLR when the firmware
		 * gives a seed (QEMU's DT kaslr-seed, EFI RNG); KPTI forced with KASLR before 6.1 on CPUs without E0PD
		 * (kaslr_requires_kpti), else only on Meltdown-affected cores; VA bits as asked, else mostly 48 */
		int vb = o->va_bits64;

		b->kaslr = o->kaslr == SYNTH_ON || (o->kaslr == SYNTH_AUTO && rp(&b->r, 85));
		b->kpti = o->pti == SYNTH_ON ||
			  (o->pti == SYNTH_AUTO && rp(&b->r, b->kaslr && kv < SYNTH_KV(6, 1, 0) ? 80 : 15));
		if (vb != 39 && vb != 48 && vb != 52)
			vb = rp(&b->r, 25) ? 39 : rp(&b->r, 30) ? 52 : 48;
		if (vb == 52 && kv < SYNTH_KV(6, 9, 0))   /* 52-bit VAs with 4 KiB pages need LPA2 (6.9+) */
			vb = 48;
		b->va_bits = (unsigned)vb;
		b->lpa2 = vb == 52;
		b->levels = (int)((b->va_bits - 12 + 8) / 9);
		b->sw_pan = rp(&b->r, 60);
		b->cnp = kv >= SYNTH_KV(5, 0, 0) && rp(&b->r, 50);
		b->vmap_stack = true;         /* arm64 VMAP_STACK since 4.14 */
		b->thread_size = 4 * PG;      /* 16 KiB */
		b->kinit = 2 * MiB;
		b->utrace = false;
		return;
	}
	b->kaslr = o->kaslr == SYNTH_ON || (o->kaslr == SYNTH_AUTO && kv >= SYNTH_KV(3, 14, 0) &&
					     rp(&b->r, kv >= SYNTH_KV(4, 12, 0) ? 95 : 50));
	b->pti = o->pti == SYNTH_ON || (o->pti == SYNTH_AUTO && pti_capable && rp(&b->r, 60));
	b->pti_config = pti_capable || b->pti;
	b->pcid = o->pcid == SYNTH_ON || (o->pcid == SYNTH_AUTO && (kv >= SYNTH_KV(4, 14, 0) ||
					   (b->pti && kv < SYNTH_KV(4, 14, 0))) && rp(&b->r, 85));
	b->la57 = o->la57 == SYNTH_ON || (o->la57 == SYNTH_AUTO && kv >= SYNTH_KV(4, 14, 0) && rp(&b->r, 10));
	b->levels = b->la57 ? 5 : 4;
	b->vmap_stack = kv >= SYNTH_KV(4, 9, 0);
	b->thread_size = kv >= SYNTH_KV(3, 15, 0) ? 4 * PG : 2 * PG;
	b->utrace = b->L->off[TF_REAL_PARENT] < 0;
}

/* arm64's kernel address space (memory.h of the row's kernel, 4 KiB pages). Since 5.4 the linear map opens the
 * TTBR1 half, [PAGE_OFFSET, PAGE_END = -2^(VA_BITS_MIN - 1)), and modules, the image, vmalloc, vmemmap and the
 * fixmap follow; before, the half's lower part held modules, the image and vmalloc, the upper the linear map.
 * KIMAGE_VADDR is MODULES_END (128 MiB of modules; 2 GiB since 6.3), plus TEXT_OFFSET before 5.8. KASLR moves
 * the image within vmalloc (its middle half since 5.4) and the linear map by whole GiB (memstart_addr lowered),
 * and the EFI stub puts the image anywhere in RAM, 2 MiB aligned. */
static void a64_address_space(struct sb *b)
{
	const unsigned vb = b->va_bits, vmin = vb == 52 ? 48 : vb;
	const bool flipped = b->kv >= SYNTH_KV(5, 4, 0);
	const uint64_t text_offset = b->kv < SYNTH_KV(5, 8, 0) ? 0x80000 : 0;
	uint64_t lin_size, kimage, vmalloc_end, memstart = b->ram_base & ~(GiB - 1), off = 0;

	if (flipped) {
		uint64_t page_end = 0 - (1ULL << (vmin - 1));

		b->a64_page_offset = 0 - (1ULL << vb);
		lin_size = page_end - b->a64_page_offset;
		b->a64_vmemmap = 0 - GiB - (lin_size >> 6);       /* VMEMMAP_END = -1 GiB */
		b->a64_fixmap = 0 - 8 * MiB - 64 * PG;            /* below FIXADDR_TOP */
		kimage = page_end + (b->kv >= SYNTH_KV(6, 3, 0) ? 2 * GiB : 128 * MiB);
		vmalloc_end = b->a64_vmemmap - 256 * MiB;
		if (b->kaslr) {
			uint64_t range = (vmalloc_end - kimage) / 2;

			off = (range / 2 + rr(&b->r, range)) & ~(2 * MiB - 1);
		}
	} else {
		b->a64_page_offset = 0 - (1ULL << (vb - 1));
		lin_size = 1ULL << (vb - 1);
		b->a64_vmemmap = b->a64_page_offset - (lin_size >> 6);
		b->a64_fixmap = b->a64_vmemmap - 2 * MiB - 16 * MiB - 2 * MiB - 64 * PG;   /* below PCI I/O */
		kimage = (0 - (1ULL << vb)) + 128 * MiB;
		vmalloc_end = b->a64_vmemmap - GiB;
		if (b->kaslr)
			off = ((1ULL << (vb - 3)) + rr(&b->r, 1ULL << (vb - 2))) & ~(2 * MiB - 1);
	}
	if (b->kaslr)   /* memstart_addr -= ARM64_MEMSTART_ALIGN * random, within the linear region */
		memstart -= GiB * rr(&b->r, (lin_size - (b->ram_base + b->ram - memstart)) / GiB);
	b->pob = b->a64_page_offset - memstart;
	b->kva = kimage + off + text_offset;
	b->kpa = b->ram_base + 2 * MiB * (b->kaslr ? 1 + rr(&b->r, (b->ram - KSIZE(b) - 24 * MiB) / (2 * MiB)) : 1) +
		 text_offset;
	/* vmalloc opens at MODULES_END, where an unrandomised image sits: allocations then start after it */
	b->vmalloc_base = kimage;
	b->vmalloc_next = b->vmalloc_base + 0x10000 * (1 + rr(&b->r, 64));
	if (b->vmalloc_next < b->kva + KSIZE(b) + 2 * MiB && b->kva < b->vmalloc_next + GiB)
		b->vmalloc_next = b->kva + KSIZE(b) + 0x10000 * (1 + rr(&b->r, 64));
}

/* TCR_EL1 as Linux sets it (proc.S __cpu_setup): T0SZ = T1SZ = 64 - VA bits, write-back inner-shareable walks,
 * A1 (the ASID lives in TTBR1), TG0 4 KiB, TG1 4 KiB, IPS, 16-bit ASIDs, TBI0, hardware AF/dirty, DS with LPA2 */
static uint64_t a64_tcr(const struct sb *b)
{
	uint64_t tsz = 64 - b->va_bits;

	return tsz | (1ULL << 8) | (1ULL << 10) | (3ULL << 12) | tsz << 16 | (1ULL << 22) | (1ULL << 24) |
	       (1ULL << 26) | (3ULL << 28) | (2ULL << 30) | ((b->lpa2 ? 6ULL : 5ULL) << 32) | (1ULL << 36) |
	       (1ULL << 37) | (1ULL << 39) | (1ULL << 40) | (b->lpa2 ? 1ULL << 59 : 0);
}

/* The vCPUs' registers as QEMU's gdbstub reads them at the end (after the last observation): TTBR0 the
 * last one observed, TTBR1 swapper_pg_dir with the ASID of the last user mm loaded (KPTI at EL0: tramp_pg_dir
 * and the user ASID), TPIDR_EL1 the per-CPU offset, SP_EL0 the current task at EL1 (at EL0: the user stack
 * pointer). Idle CPUs and kernel threads are at EL1; a user task at EL0 half the time, else in a system call. */
static int a64_vcpus(struct sb *b, struct synth_image *img)
{
	img->pm->vcpus = calloc(b->ncpus, sizeof(*img->pm->vcpus));
	if (!img->pm->vcpus)
		return -ENOMEM;
	img->pm->nvcpus = b->ncpus;
	for (uint32_t c = 0; c < b->ncpus; c++) {
		struct vcpu_state *v = &img->pm->vcpus[c];
		int cur = -1;

		for (size_t i = 0; i < b->nt && cur < 0; i++)
			if (b->t[i].cpu == (int)c)
				cur = (int)i;
		if (cur < 0)
			return -EINVAL;
		const struct tsk *t = &b->t[cur];
		bool user = t->mm >= 0 && !is_kernel_task(t), el0 = user && rp(&b->r, 50);
		uint64_t asid = b->ttbr1_asid[c];

		v->id = c;
		v->valid = true;
		v->aarch64 = true;
		v->el1 = !el0;
		for (size_t i = 0; i < img->obs.n; i++)
			if (img->obs.v[i].vcpu == c)
				v->ttbr0 = img->obs.v[i].cr3;
		if (el0 && b->kpti)
			v->ttbr1 = b->tramp_pgd_pa | (asid | 1) << 48;
		else
			v->ttbr1 = b->kpgd_pa | asid << 48 | (b->cnp ? 1 : 0);
		v->tcr = a64_tcr(b);
		v->tpidr_el1 = img->gs_base[c];
		v->sp_el0 = el0 ? b->mm[t->mm].stack_top - 16 * (1 + rr(&b->r, 64)) : t->va;
		v->pc = el0 ? b->mm[t->mm].text_base + 4 * rr(&b->r, 1024)
			    : kimg(b, b->kpa + (rr(&b->r, K_TEXT_SZ) & ~3ULL));
		v->cr3 = v->ttbr0;         /* as the gdbstub reader fills them */
		v->gs_base = v->tpidr_el1;
	}
	return 0;
}

int synth_build(const struct synth_layout *L, const struct synth_opts *o, struct synth_image *img)
{
	static const struct synth_opts defaults;
	struct sb *b;
	int32_t exited[8];
	size_t nexited = 0;
	int err = 0;

	if (!o)
		o = &defaults;
	memset(img, 0, sizeof(*img));
	if (!L || L->size < 256 || L->off[TF_TASKS] < 0 || L->off[TF_PID] < 0 || L->mm_pgd < 0)
		return -EINVAL;
	b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	b->r.s = o->seed * 0x2545f4914f6cdd1dULL + (uint64_t)L->line * 0x9e3779b97f4a7c15ULL + L->size;
	b->L = L;
	b->o = o;
	b->img = img;
	b->kv = L->kver;
	b->ram = o->ram_size ? o->ram_size & ~(2 * MiB - 1) : 64 * MiB;
	if (b->ram < 64 * MiB)
		b->ram = 64 * MiB;
	b->npages = b->ram / PG;
	b->ncpus = o->ncpus ? (o->ncpus > SYNTH_MAX_CPUS ? SYNTH_MAX_CPUS : o->ncpus) : 4;
	/* an i386 row makes a 32-bit guest: 4-byte pointers, PAE or 2-level paging (by the seed unless asked) */
	b->psz = L->psz == 4 ? 4 : 8;
	if (b->psz == 4)
		b->p32 = o->paging32 == 2 || o->paging32 == 3 ? o->paging32 : rp(&b->r, 50) ? 3 : 2;
	/* an arm64 row makes an AArch64 guest; QEMU's virt board has its RAM from 1 GiB (the buffer below it stays
	 * untouched: calloc's fresh pages cost nothing until written) */
	b->a64 = L->arm64;
	b->ram_base = b->a64 ? GiB : 0;
	b->mem = calloc(1, b->ram_base + b->ram);
	b->pused = calloc(b->npages, 1);
	if (!b->mem || !b->pused) {
		err = -ENOMEM;
		goto fail;
	}
	memset(b->pused, 1, (1 * MiB) / PG);      /* BIOS, real-mode trampoline, VGA hole (arm64: the DTB) */
	img->mem = b->mem;
	img->ram_size = b->ram;
	img->ram_base = b->ram_base;
	img->layout = *L;
	img->ncpus = b->ncpus;
	img->priv = b;
	choose_platform(b);

	/* KASLR: physical and virtual base independently, page_offset_base (RANDOMIZE_MEMORY, ≥ 4.8) */
	if (b->a64) {
		a64_address_space(b);
	} else if (b->p32) {
		/* 32-bit: the image at CONFIG_PHYSICAL_START in lowmem, which starts at PAGE_OFFSET */
		b->pob = o->page_offset32 ? o->page_offset32 : 0xc0000000ULL;
		b->kpa = b->kv >= SYNTH_KV(2, 6, 31) ? 16 * MiB : 4 * MiB;
		b->kva = b->pob + b->kpa;
	} else if (b->kaslr) {
		uint64_t slots = (b->ram - K_SIZE - 16 * MiB) / (2 * MiB);

		b->kpa = 16 * MiB + rr(&b->r, slots) * 2 * MiB;
		b->kva = START_KERNEL_MAP + 16 * MiB + rr(&b->r, (GiB - 16 * MiB - K_SIZE) / (2 * MiB)) * 2 * MiB;
	} else if (b->kv < SYNTH_KV(2, 6, 31)) {
		b->kpa = 2 * MiB;
		b->kva = START_KERNEL_MAP + 2 * MiB;
	} else {
		b->kpa = 16 * MiB;
		b->kva = START_KERNEL_MAP + 16 * MiB;
	}
	if (b->p32 || b->a64)
		;
	else if (b->la57)
		b->pob = 0xff11000000000000ULL;
	else
		b->pob = b->kv >= SYNTH_KV(4, 20, 0) ? 0xffff888000000000ULL : 0xffff880000000000ULL;
	if (b->kaslr && b->kv >= SYNTH_KV(4, 8, 0) && !b->p32 && !b->a64)
		b->pob += rr(&b->r, 1ULL << 13) * GiB;
	if (!b->a64) {
		b->vmalloc_base = b->la57 ? 0xffa0000000000000ULL : 0xffffc90000000000ULL;
		if (b->kaslr && b->kv >= SYNTH_KV(4, 8, 0) && !b->la57)
			b->vmalloc_base += (rr(&b->r, 1ULL << 12) + 1) * GiB;
		b->vmalloc_next = b->vmalloc_base + 0x10000 * (1 + rr(&b->r, 64));
	}

	setup_kernel_image(b);
	setup_percpu(b);          /* the first per-CPU chunk comes from memblock at boot: contiguous */
	setup_direct_map(b);
	setup_pti_and_cea(b);
	for (int i = 0; i < 8; i++)
		b->libc_pages[i] = alloc_pages(b, 0);

	build_schema(b);
	b->tstride = (L->size + 63) & ~63u;
	{
		int32_t mx = L->mm_pgd;

		if (L->mm_mmap > mx)
			mx = L->mm_mmap;
		if (L->mm_mt > mx)
			mx = L->mm_mt;
		b->mm_size = ((uint32_t)mx + 900 + (uint32_t)rr(&b->r, 500) + 63) & ~63u;   /* + cpumask */
	}
	cache_init(b, &b->c_task, "task_struct", L->size, 64, 3);
	if (b->p32 == 3)
		cache_init(b, &b->c_pgd, "pgd_cache", 32, 32, 0);
	else if (b->lpa2)
		cache_init(b, &b->c_pgd, "pgd_cache", 128, 128, 0);
	cache_init(b, &b->c_mm, "mm_struct", b->mm_size, 64, 3);
	cache_init(b, &b->c_cred, "cred_jar", 192, 64, 0);
	cache_init(b, &b->c_signal, "signal_cache", 1024, 64, 3);
	cache_init(b, &b->c_sighand, "sighand_cache", 2112, 64, 3);
	cache_init(b, &b->c_pid, "pid", 128, 64, 0);
	cache_init(b, &b->c_files, "files_cache", 704, 64, 3);
	cache_init(b, &b->c_fs, "fs_cache", 64, 64, 0);
	cache_init(b, &b->c_vma, "vm_area_struct", 208, 8, 1);
	cache_init(b, &b->c_css, "kmalloc-512", 512, 64, 1);
	cache_init(b, &b->c_gen[0], "kmalloc-64", 64, 64, 0);
	cache_init(b, &b->c_gen[1], "kmalloc-128", 128, 64, 0);
	cache_init(b, &b->c_gen[2], "kmalloc-256", 256, 256, 1);
	cache_init(b, &b->c_gen[3], "kmalloc-512", 512, 512, 2);
	cache_init(b, &b->c_gen[4], "kmalloc-1k", 1024, 256, 3);

	plan_tasks(b);
	alloc_init_objects(b);
	for (int i = 0; i < 16; i++) {
		b->ktext_vals[i] = kimg(b, b->kpa + rr(&b->r, K_TEXT_SZ)) & ~15ULL;
		b->kdata_vals[i] = kimg(b, kdata_alloc(b, 64 + rr(&b->r, 4) * 64, 64));
	}

	/* task_structs and stacks first: every kernel-half mapping must exist before pgd_ctor copies it */
	alloc_task_objects(b);
	/* mms of live processes, then exited ones (their pages are freed but keep their contents) */
	for (size_t i = 0; i < b->nmm; i++)
		alloc_mm(b, (int)i, b->t[b->mm[i].owner].comm);
	{
		int nx = o->nexited == 0 ? 1 : o->nexited < 0 ? 0 : o->nexited > 8 ? 8 : o->nexited;

		for (int i = 0; i < nx; i++) {
			int mi = new_mm(b, 1);

			alloc_mm(b, mi, "sh");
			b->mm[mi].exited = true;
			exited[nexited++] = mi;
		}
	}

	/* who runs where: user task, idle, kernel thread, thread of a multi-threaded process, … */
	{
		int *picked = calloc(b->ncpus, sizeof(int));

		if (!picked)
			abort();
		for (uint32_t c = 0; c < b->ncpus; c++) {
			int want = c % 4, choice = -1;

			for (int tries = 0; tries < 1000 && choice < 0; tries++) {
				int i = (int)rr(&b->r, b->nt);
				struct tsk *t = &b->t[i];

				if (t->cpu >= 0 || t->tracer >= 0)
					continue;
				if (want == 0 && t->kind == SYNTH_T_PROC)
					choice = i;
				else if (want == 2 && t->kind == SYNTH_T_KTHREAD && t->prio_class == 0)
					choice = i;
				else if (want == 3 && t->kind == SYNTH_T_THREAD)
					choice = i;
			}
			if (want == 1 || choice < 0) {
				uint32_t seen = 0;

				for (size_t i = 0; i < b->nt; i++)
					if ((c == 0 && b->t[i].kind == SYNTH_T_INIT) ||
					    (b->t[i].kind == SYNTH_T_IDLE && ++seen == c))
						choice = (int)i;
			}
			b->t[choice].cpu = (int)c;     /* reserve */
			picked[c] = choice;
		}
		for (uint32_t c = 0; c < b->ncpus; c++) {
			b->t[picked[c]].cpu = -1;
			run_cpu(b, c, picked[c], exited, nexited);
		}
		free(picked);
	}
	/* a few more runnable tasks waiting on the CFS queues */
	for (size_t i = 0; i < b->nt; i++)
		if (b->t[i].cpu < 0 && b->t[i].kind != SYNTH_T_ZOMBIE && rp(&b->r, 8) && !is_kernel_task(&b->t[i]))
			b->t[i].runnable = true;
	/* secondary idle tasks not running keep &init_mm only before their first switch — they have run */
	for (size_t i = 0; i < b->nt; i++) {
		if (b->t[i].mm >= 0)
			b->t[i].act = b->t[i].mm;
		else if (b->t[i].cpu < 0)
			b->t[i].act = -1;
	}

	/* write the task_structs */
	for (size_t i = 0; i < b->nt; i++) {
		write_noise(b, (int)i);
		write_anchors(b, (int)i);
	}
	write_percpu(b);
	write_lists(b);
	write_stale_tasks(b);
	/* freed PGDs / mms of exited processes: leave them, just no longer referenced */
	junk_fill(b);

	/* obs were appended per CPU: order them by time */
	{
		struct observation *v = img->obs.v;
		size_t n = img->obs.n;

		for (size_t i = 1; i < n; i++) {
			struct observation x = v[i];
			size_t j = i;

			while (j > 0 && v[j - 1].time_ns > x.time_ns) {
				v[j] = v[j - 1];
				j--;
			}
			v[j] = x;
		}
	}
	if (b->err) {
		err = b->err;
		goto fail;
	}

	/* ground truth */
	for (int i = 0; i < SM_NR; i++)
		img->off[i] = b->aoff[i];
	img->mm_struct_size = b->mm_size;
	img->shuffled = o->shuffle;
	img->la57 = b->la57;
	img->pti = b->pti;
	img->pcid = b->pcid;
	img->kaslr = b->kaslr;
	img->pda = b->pda;
	img->paging_levels = b->levels;
	img->psz = b->psz;
	img->arm64 = b->a64;
	img->lpa2 = b->lpa2;
	img->kpti = b->kpti;
	img->va_bits = b->va_bits;
	img->page_offset_base = b->pob;
	img->kernel_va = b->kva;
	img->kernel_pa = b->kpa;
	img->kernel_size = KSIZE(b);
	img->swapper_pgd_pa = b->kpgd_pa;
	img->tramp_pgd_pa = b->a64 && b->kpti ? b->tramp_pgd_pa : 0;
	img->swapper_pgd_va = kimg(b, b->kpgd_pa);
	img->init_task_va = b->t[0].va;
	img->init_mm_va = b->init_mm_va;
	img->init_cred_va = b->init_cred_va;
	img->ntasks = b->nt;
	img->tasks = calloc(b->nt, sizeof(*img->tasks));
	img->nmms = b->nmm;
	img->mms = calloc(b->nmm ? b->nmm : 1, sizeof(*img->mms));
	if (!img->tasks || !img->mms) {
		err = -ENOMEM;
		goto fail;
	}
	for (size_t i = 0; i < b->nt; i++) {
		struct tsk *t = &b->t[i];
		struct synth_task *s = &img->tasks[i];

		s->va = t->va;
		s->pid = t->pid;
		s->tgid = t->tgid;
		memcpy(s->comm, t->comm, 16);
		s->kind = t->kind;
		s->on_tasks_list = t->kind == SYNTH_T_INIT || (t->leader == (int32_t)i && t->pid != 0);
		s->real_parent = t->rp;
		s->parent = t->par;
		s->leader = t->leader;
		s->tracer = t->tracer;
		s->mm = t->mm;
		s->mm_va = mm_va_of(b, t->mm);
		s->active_mm_va = mm_va_of(b, t->act);
		s->cred_va = t->cred_va;
		s->real_cred_va = t->real_cred_va;
		s->cpu = t->cpu;
		if (t->kind == SYNTH_T_THREAD)
			img->n_threads++;
	}
	for (size_t i = 0; i < b->nmm; i++) {
		img->mms[i].va = b->mm[i].va;
		img->mms[i].pgd_va = b->mm[i].pgd_va;
		img->mms[i].pgd_pa = b->mm[i].pgd_pa;
		img->mms[i].owner = b->mm[i].owner;
		img->mms[i].exited = b->mm[i].exited;
	}
	if (b->a64) {   /* one RAM range, from 1 GiB */
		img->ranges[0] = (struct phys_range){ b->ram_base, b->ram };
		err = physmem_open_buffer(b->mem, b->ram_base + b->ram, img->ranges, 1, &img->pm);
		if (!err)
			err = a64_vcpus(b, img);
		if (err)
			goto fail;
		return 0;
	}
	img->ranges[0] = (struct phys_range){ 0, 0xa0000 };
	img->ranges[1] = (struct phys_range){ 0xc0000, b->ram - 0xc0000 };
	err = physmem_open_buffer(b->mem, b->ram, img->ranges, 2, &img->pm);
	if (err)
		goto fail;
	if (b->p32) {
		/* the register state a core or QMP would carry: 32-bit paging (CR0.PG, no EFER.LMA), CR4.PAE or
		 * not, EFER.NXE with PAE; the last CR3 each vCPU loaded and its GDTR base */
		img->pm->vcpus = calloc(b->ncpus, sizeof(*img->pm->vcpus));
		if (!img->pm->vcpus) {
			err = -ENOMEM;
			goto fail;
		}
		img->pm->nvcpus = b->ncpus;
		for (uint32_t c = 0; c < b->ncpus; c++) {
			struct vcpu_state *v = &img->pm->vcpus[c];

			v->id = c;
			v->valid = true;
			v->cr0 = 0x80050033ULL;
			v->cr4 = b->p32 == 3 ? 0x6b0 : 0x690;
			v->efer = b->p32 == 3 ? 0x800 : 0;
			v->gdt_base = img->gs_base[c];
			for (size_t i = 0; i < img->obs.n; i++)
				if (img->obs.v[i].vcpu == c)
					v->cr3 = img->obs.v[i].cr3;
		}
	}
	return 0;
fail:
	synth_free(img);
	return err;
}

void synth_free(struct synth_image *img)
{
	struct sb *b = img->priv;

	if (img->pm)
		physmem_close(img->pm);
	obs_free(&img->obs);
	if (b) {
		for (size_t i = 0; i < b->nt; i++)
			free(b->t[i].objs);
		free(b->t);
		free(b->mm);
		free(b->f);
		free(b->css_va);
		free(b->pused);
		cache_free_all(&b->c_task);
		cache_free_all(&b->c_pgd);
		cache_free_all(&b->c_mm);
		cache_free_all(&b->c_cred);
		cache_free_all(&b->c_signal);
		cache_free_all(&b->c_sighand);
		cache_free_all(&b->c_pid);
		cache_free_all(&b->c_files);
		cache_free_all(&b->c_fs);
		cache_free_all(&b->c_vma);
		cache_free_all(&b->c_css);
		for (int i = 0; i < 5; i++)
			cache_free_all(&b->c_gen[i]);
		free(b);
	}
	free(img->mem);
	free(img->tasks);
	free(img->mms);
	memset(img, 0, sizeof(*img));
}

int synth_write_raw(const struct synth_image *img, const char *path)
{
	FILE *f = fopen(path, "wb");
	int err = 0;

	if (!f)
		return -errno;
	/* arm64: the hole below RAM stays a hole (a sparse file) */
	if (fseeko(f, (off_t)img->ram_base, SEEK_SET) ||
	    fwrite(img->mem + img->ram_base, 1, img->ram_size, f) != img->ram_size)
		err = -EIO;
	if (fclose(f) && !err)
		err = -errno;
	return err;
}

uint64_t synth_kva_to_pa(const struct synth_image *img, uint64_t va)
{
	if (va >= img->page_offset_base + img->ram_base && va - img->page_offset_base - img->ram_base < img->ram_size)
		return va - img->page_offset_base;
	if (va >= img->kernel_va && va - img->kernel_va < img->kernel_size)
		return img->kernel_pa + (va - img->kernel_va);
	return ~0ULL;
}
