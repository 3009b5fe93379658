/*
 * cmocka: hostile guests and bad input (issue 7). Guest memory images are built in memory with crafted
 * kernel structures — task lists that loop, point into unmapped or MMIO space, have 10^6 entries, overlap
 * each other, hold non-printable or unterminated names; page tables that loop or map everything — and
 * every walk over them must end within a fixed time and byte bound with a clear error or an honest
 * "undetermined": never a crash, hang or unbounded allocation. Also: damaged ELF cores and session
 * files, wrong and non-QEMU pids, a memory source that exits mid-read, and proof that file sources are
 * opened read-only.
 */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>
#include "arch/x86_64.h"
#include "discovery/discover.h"
#include "mem/physmem.h"
#include "mem/qmp.h"
#include "x86_pt.h"
#if __has_include("session/session.h")
#include <zlib.h>
#include "session/session.h"
#define HAVE_SESSION 1
#endif

/* Bounds. Sanitizer builds run the same walks several times slower. */
#if defined(__SANITIZE_ADDRESS__)
#define SLOW 6.0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SLOW 6.0
#endif
#endif
#ifndef SLOW
#define SLOW 1.0
#endif
#define TIME_BOUND_S (2.0 * SLOW)
/* Bytes one discovery run may read: its budget (64 MiB by default) plus the page-table walks of kernel
 * space setup (direct map, LA57 probe), each capped by the walker. */
#define DISCOVERY_BYTES_BOUND (64ULL << 20)   /* discovery's default budget holds for every read */
#define PT_IMG (4u << 20)
/* One walk reads each distinct table once (≤ PT_IMG / 4 KiB here) plus at most 4096 repeats of shared
 * ones (x86_64.c WALK_MAX_REVISITS), twice when a PTI CR3 makes it retry. */
#define WALK_BYTES_BOUND (2 * (PT_IMG + 4096ULL * 4096) + 64)

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

#define DM 0xffff888000000000ULL          /* direct map base of the crafted kernels */
#define KDATA_VA 0xffffffff82000000ULL    /* kernel image data */
#define KDATA_PA 0x200000ULL
#define KDATA_LEN 0x40000ULL

/* Compact crafted task_struct: list_head tasks, comm, then pid/tgid/real_parent/mm — at a 32-byte stride
 * the ids and pointers of one task are the list head and name of the next (tasks overlap). */
enum { T_TASKS = 0, T_COMM = 16, T_PID = 32, T_TGID = 36, T_PARENT = 40, T_MM = 48, T_SIZE = 64 };

struct kimg {
	unsigned char *mem;
	size_t size;
	struct pt_builder pt;
	struct physmem *pm;
	uint64_t init;     /* init_task VA (in kernel data) */
};

static uint64_t kva_pa(uint64_t va)
{
	if (va >= KDATA_VA && va < KDATA_VA + KDATA_LEN)
		return va - KDATA_VA + KDATA_PA;
	return va - DM;
}

static void w64(struct kimg *k, uint64_t va, uint64_t v) { memcpy(k->mem + kva_pa(va), &v, 8); }
static void w32(struct kimg *k, uint64_t va, uint32_t v) { memcpy(k->mem + kva_pa(va), &v, 4); }

static void link_tasks(struct kimg *k, uint64_t a, uint64_t b)   /* a.tasks.next = b, b.tasks.prev = a */
{
	w64(k, a + T_TASKS, b + T_TASKS);
	w64(k, b + T_TASKS + 8, a + T_TASKS);
}

static void set_task(struct kimg *k, uint64_t t, const char *comm, uint32_t pid)
{
	memset(k->mem + kva_pa(t + T_COMM), 0, 16);
	memcpy(k->mem + kva_pa(t + T_COMM), comm, strnlen(comm, 16));
	w32(k, t + T_PID, pid);
	w32(k, t + T_TGID, pid);
	w64(k, t + T_PARENT, k->init);
}

/* A kernel: page tables at 1 MiB (4-level), a 2 MiB-page direct map of all RAM at DM, kernel data at
 * KDATA_VA in 4K RW NX pages, init_task ("swapper/0") in it with an empty task list. ranges: RAM layout
 * (NULL = all of it). */
static void kimg_build(struct kimg *k, size_t size, const struct phys_range *ranges, size_t nranges)
{
	memset(k, 0, sizeof(*k));
	k->size = size;
	k->mem = calloc(1, size);
	assert_non_null(k->mem);
	pt_init(&k->pt, k->mem, size, 0x100000, false);
	pt_map_range(&k->pt, DM, 0, (size + PT_2M - 1) & ~(PT_2M - 1), PT_2M, PT_RW | PT_NX);
	pt_map_range(&k->pt, KDATA_VA, KDATA_PA, KDATA_LEN, PT_4K, PT_RW | PT_NX);
	k->init = KDATA_VA + 0x1000;
	set_task(k, k->init, "swapper/0", 0);
	link_tasks(k, k->init, k->init);
	assert_int_equal(physmem_open_buffer(k->mem, size, ranges, nranges, &k->pm), 0);
}

static void kimg_free(struct kimg *k)
{
	physmem_close(k->pm);
	free(k->mem);
}

/* What discovery would have found for this layout. */
static void known_offsets(const struct kimg *k, struct discovery_result *r)
{
	static const struct { int f; int64_t off; } offs[] = {
		{ TF_TASKS, T_TASKS }, { TF_COMM, T_COMM }, { TF_PID, T_PID }, { TF_TGID, T_TGID },
		{ TF_REAL_PARENT, T_PARENT }, { TF_MM, T_MM },
	};

	memset(r, 0, sizeof(*r));
	for (int f = 0; f < TF_NR; f++)
		r->task[f].offset = -1;
	for (size_t i = 0; i < sizeof(offs) / sizeof(offs[0]); i++) {
		r->task[offs[i].f].found = true;
		r->task[offs[i].f].offset = offs[i].off;
	}
	r->mm_pgd.offset = -1;
	r->thread_ring = -1;
	r->init_task = k->init;
	r->kernel_cr3 = k->pt.root;
	r->page_offset_base = DM;
}

struct walk_out {
	int err;
	size_t n;
	double secs;
	uint64_t bytes;
	struct guest_task *t;
};

static struct walk_out walk(struct kimg *k, uint32_t max_tasks)
{
	struct discovery_result r;
	struct discovery_opts o = { .max_tasks = max_tasks };
	struct walk_out w = { 0 };
	uint64_t b0 = k->pm->bytes_read;
	double t0 = now_s();

	known_offsets(k, &r);
	w.err = guest_tasks_list(k->pm, &r, &o, &w.t, &w.n);
	w.secs = now_s() - t0;
	w.bytes = k->pm->bytes_read - b0;
	assert_true(w.secs < TIME_BOUND_S);
	assert_true(w.n <= (max_tasks ? max_tasks : 65536));
	for (size_t i = 0; i < w.n; i++) {   /* names: terminated and printable whatever the guest holds */
		assert_non_null(memchr(w.t[i].comm, 0, sizeof(w.t[i].comm)));
		for (const char *p = w.t[i].comm; *p; p++)
			assert_true(*p >= 0x20 && *p <= 0x7e);
	}
	return w;
}

/* Discovery over a crafted image: bounded in time and bytes, and it must abstain with a reason. */
static void discover_bounded(struct physmem *pm, const uint64_t *cr3s, size_t n, const char *what)
{
	struct obs_set obs = { 0 };
	struct discovery_result *r = calloc(1, sizeof(*r));
	uint64_t b0 = pm->bytes_read;
	double t0 = now_s(), dt;
	int err;

	assert_non_null(r);
	for (size_t i = 0; i < n; i++) {
		struct observation o = { .time_ns = i, .cr3 = cr3s[i], .source = OBS_CLI };
		assert_int_equal(obs_add(&obs, &o), 0);
	}
	err = discover_offsets(pm, &obs, NULL, r);
	dt = now_s() - t0;
	printf("  %-34s discover_offsets %d in %.3f s, %llu bytes read: %s\n", what, err, dt,
	       (unsigned long long)(pm->bytes_read - b0), r->reason[0] ? r->reason : "(no reason)");
	assert_true(err < 0);                 /* nothing here is a kernel to trust */
	assert_true(r->reason[0] || err != -ENOENT);
	assert_true(dt < TIME_BOUND_S);
	assert_true(pm->bytes_read - b0 <= DISCOVERY_BYTES_BOUND);
	obs_free(&obs);
	free(r);
}

/* ---- memory maps and paths (issue 14) ------------------------------------------------------------ */

/* A crafted layout for VMAs (vm_start 0, vm_end 8, vm_next 16, vm_mm 24, vm_flags 32, vm_pgoff 40, vm_file 48),
 * an mm whose VMAs hang at +0 (a list's mmap, or a maple tree whose ma_root is at +8), files (f_path.dentry 8,
 * f_path.mnt 0), dentries (d_parent 0, d_name 8 (name pointer at 16), inline names at 64), vfsmounts (mnt_root 0)
 * inside mounts at 32 (mnt_parent 16, mnt_mountpoint 24): what discovery would have found. */
static void maps_offsets(const struct kimg *k, struct discovery_result *r, bool maple)
{
	static const struct { int m; int64_t off; } offs[] = {
		{ MM_MAP_ROOT, 0 }, { VMA_START, 0 }, { VMA_END, 8 }, { VMA_NEXT, 16 }, { VMA_MM, 24 }, { VMA_FLAGS, 32 },
		{ VMA_PGOFF, 40 }, { VMA_FILE, 48 }, { MM_EXE_FILE, 64 }, { FILE_MNT, 0 }, { FILE_DENTRY, 8 },
		{ DENTRY_PARENT, 0 }, { DENTRY_NAME, 8 }, { VFSMOUNT_ROOT, 0 }, { MOUNT_MNT, 32 }, { MOUNT_PARENT, 16 },
		{ MOUNT_MOUNTPOINT, 24 },
	};

	known_offsets(k, r);
	for (int m = 0; m < MAPS_NR; m++)
		r->maps[m].offset = -1;
	for (size_t i = 0; i < sizeof(offs) / sizeof(offs[0]); i++) {
		r->maps[offs[i].m].found = true;
		r->maps[offs[i].m].offset = offs[i].off;
	}
	r->maple = maple;
	r->maple_root = 8;
}

static void put_vma(struct kimg *k, uint64_t v, uint64_t mm, uint64_t start, uint64_t end, uint64_t next)
{
	w64(k, v + 0, start);
	w64(k, v + 8, end);
	w64(k, v + 16, next);
	w64(k, v + 24, mm);
	w64(k, v + 32, 0x73);   /* rw- with VM_MAY* */
}

static int maps_of(struct kimg *k, struct discovery_result *r, uint64_t mm, size_t *n, const char **why)
{
	struct guest_task t = { .pid = 1, .tgid = 1, .mm = mm, .pgd_pa = 0x100000 };
	struct guest_vma *v = NULL;
	double t0 = now_s();
	int err = guest_task_maps(k->pm, r, &t, &v, n, why);

	assert_true(now_s() - t0 < TIME_BOUND_S);
	free(v);
	return err;
}

/* A VMA list that loops onto itself or back to an earlier VMA, and one longer than any mm holds: each
 * ends with an error that says so, quickly. A good list reads in order. */
static void test_maps_list_hostile(void **state)
{
	struct kimg k;
	struct discovery_result r;
	uint64_t mm = DM + 0x400000, v1 = mm + 0x1000, v2 = v1 + 0x100, v3 = v2 + 0x100;
	const char *why;
	size_t n;

	kimg_build(&k, 16 << 20, NULL, 0);
	maps_offsets(&k, &r, false);
	w64(&k, mm, v1);
	put_vma(&k, v1, mm, 0x1000, 0x2000, v2);
	put_vma(&k, v2, mm, 0x3000, 0x4000, v3);
	put_vma(&k, v3, mm, 0x5000, 0x6000, 0);
	assert_int_equal(maps_of(&k, &r, mm, &n, &why), 0);
	assert_int_equal(n, 3);

	w64(&k, v3 + 16, v3);   /* v3.next = v3 */
	assert_int_equal(maps_of(&k, &r, mm, &n, &why), -EINVAL);
	printf("  self loop: %s\n", why);
	w64(&k, v3 + 16, v1);   /* v3.next = v1: a rho */
	assert_int_equal(maps_of(&k, &r, mm, &n, &why), -EINVAL);
	assert_non_null(strstr(why, "order"));
	w64(&k, v3 + 16, mm + 0x10);   /* a VMA of another mm */
	put_vma(&k, mm + 0x10, DM + 0x500000, 0x7000, 0x8000, 0);
	assert_int_equal(maps_of(&k, &r, mm, &n, &why), -EINVAL);

	/* 200,000 VMAs 64 bytes apart, each in order: bounded by the walk's count */
	uint64_t base = DM + 0x600000;
	w64(&k, mm, base);
	for (uint64_t i = 0; i < 150000; i++)
		put_vma(&k, base + i * 64, mm, (i + 1) << 12, ((i + 1) << 12) + 0x800, i + 1 < 150000 ? base + (i + 1) * 64 : 0);
	assert_int_equal(maps_of(&k, &r, mm, &n, &why), -ELOOP);
	printf("  long list: %s\n", why);
	kimg_free(&k);
}

/* maple nodes: enode = node | type << 3 | 4; the root pointer also | 2 (types: 1 leaf, 3 arange) */
static void maple_leaf(struct kimg *k, uint64_t node, uint64_t parent, const uint64_t *pivots, const uint64_t *slots,
		       int n)
{
	w64(k, node, parent);
	for (int i = 0; i < n; i++) {
		if (i < 15)
			w64(k, node + 8 + 8 * (uint64_t)i, pivots[i]);
		w64(k, node + 128 + 8 * (uint64_t)i, slots[i]);
	}
}

/* A maple tree that holds two VMAs reads them (ranges checked against vm_start/vm_end); a node that is its
 * own child, a child whose parent is another node, and a chain of internal nodes deeper than any tree end
 * with an error. */
static void test_maps_maple_hostile(void **state)
{
	struct kimg k;
	struct discovery_result r;
	uint64_t mm = DM + 0x400000, leaf = mm + 0x1000, v1 = mm + 0x2000, v2 = v1 + 0x100;
	const char *why;
	size_t n;

	kimg_build(&k, 8 << 20, NULL, 0);
	maps_offsets(&k, &r, true);
	put_vma(&k, v1, mm, 0x1000, 0x2000, 0);
	put_vma(&k, v2, mm, 0x3000, 0x4000, 0);
	uint64_t piv[5] = { 0xfff, 0x1fff, 0x2fff, 0x3fff, ~0ULL }, sl[5] = { 0, v1, 0, v2, 0 };
	maple_leaf(&k, leaf, mm | 1, piv, sl, 5);
	w64(&k, mm + 8, leaf | 0x0e);
	assert_int_equal(maps_of(&k, &r, mm, &n, &why), 0);
	assert_int_equal(n, 2);

	/* a VMA whose range disagrees with the tree's */
	w64(&k, v2 + 8, 0x5000);
	assert_int_equal(maps_of(&k, &r, mm, &n, &why), -EINVAL);
	w64(&k, v2 + 8, 0x4000);

	/* an arange root whose child is itself */
	uint64_t a = mm + 0x3000, b = mm + 0x3100;
	w64(&k, a, mm | 1);
	w64(&k, a + 8, ~0ULL);
	w64(&k, a + 80, a | 0x1c);
	w64(&k, mm + 8, a | 0x1e);
	assert_int_equal(maps_of(&k, &r, mm, &n, &why), -EINVAL);
	printf("  self child: %s\n", why);

	/* a → b → a, b's parent a, a's parent the tree: a's second visit has the wrong parent */
	w64(&k, a + 80, b | 0x1c);
	w64(&k, b, a | 0x1c);
	w64(&k, b + 8, ~0ULL);
	w64(&k, b + 80, a | 0x1c);
	assert_int_equal(maps_of(&k, &r, mm, &n, &why), -EINVAL);

	/* 64 internal nodes, each the one child of the one before, parents right: deeper than any tree */
	uint64_t base = mm + 0x10000, prev = mm | 1;
	for (int i = 0; i < 64; i++) {
		uint64_t node = base + 256 * (uint64_t)i;
		w64(&k, node, prev);
		w64(&k, node + 8, ~0ULL);
		w64(&k, node + 80, i + 1 < 64 ? (node + 256) | 0x1c : 0);
		prev = node | 0x1c;
	}
	w64(&k, mm + 8, base | 0x1e);
	assert_int_equal(maps_of(&k, &r, mm, &n, &why), -ELOOP);
	printf("  deep tree: %s\n", why);
	kimg_free(&k);
}

static void put_dentry(struct kimg *k, uint64_t d, uint64_t parent, const char *name)
{
	w64(k, d + 0, parent);
	w32(k, d + 12, (uint32_t)strlen(name));
	w64(k, d + 16, d + 64);
	memcpy(k->mem + kva_pa(d + 64), name, strlen(name) + 1);
}

/* Paths: a chain up to the root across a mount reads as the kernel's d_path would; a dentry chain that
 * loops, and mounts whose parents loop, end with -ELOOP, quickly. */
static void test_paths_hostile(void **state)
{
	struct kimg k;
	struct discovery_result r;
	uint64_t f = DM + 0x400000, root = f + 0x1000, bin = root + 0x100, sh = bin + 0x100;
	uint64_t m_root = f + 0x2000, m_tmp = f + 0x2100, tmp_root = f + 0x3000, tmpdir = f + 0x3100, x = f + 0x3200;
	char path[4200];

	kimg_build(&k, 8 << 20, NULL, 0);
	maps_offsets(&k, &r, false);
	put_dentry(&k, root, root, "/");
	put_dentry(&k, bin, root, "bin");
	put_dentry(&k, sh, bin, "sh");
	w64(&k, m_root + 16, m_root);           /* the root mount: its own parent */
	w64(&k, m_root + 24, root);
	w64(&k, m_root + 32, root);             /* its vfsmount's mnt_root */
	w64(&k, f + 0, m_root + 32);
	w64(&k, f + 8, sh);
	assert_int_equal(guest_file_path(k.pm, &r, f, path, sizeof(path)), 0);
	assert_string_equal(path, "/bin/sh");

	/* a file on a mount at /tmp */
	put_dentry(&k, tmp_root, tmp_root, "/");
	put_dentry(&k, tmpdir, root, "tmp");
	put_dentry(&k, x, tmp_root, "x");
	w64(&k, m_tmp + 16, m_root);
	w64(&k, m_tmp + 24, tmpdir);
	w64(&k, m_tmp + 32, tmp_root);
	w64(&k, f + 0, m_tmp + 32);
	w64(&k, f + 8, x);
	assert_int_equal(guest_file_path(k.pm, &r, f, path, sizeof(path)), 0);
	assert_string_equal(path, "/tmp/x");

	/* mounts whose parents loop: /tmp's parent is a mount whose parent is /tmp's */
	w64(&k, m_root + 16, m_tmp);
	double t0 = now_s();
	assert_int_equal(guest_file_path(k.pm, &r, f, path, sizeof(path)), -ELOOP);
	w64(&k, m_root + 16, m_root);

	/* a dentry chain that loops: sh → bin → sh */
	w64(&k, f + 0, m_root + 32);
	w64(&k, f + 8, sh);
	put_dentry(&k, bin, sh, "bin");
	assert_int_equal(guest_file_path(k.pm, &r, f, path, sizeof(path)), -ELOOP);
	/* a parent past the end of RAM: the readable part kept, the rest marked */
	put_dentry(&k, bin, DM + (64ULL << 30), "bin");
	assert_int_equal(guest_file_path(k.pm, &r, f, path, sizeof(path)), 0);
	assert_string_equal(path, "?/bin/sh");
	/* a name whose length says 300 bytes: not a name */
	put_dentry(&k, bin, root, "bin");
	w32(&k, bin + 12, 300);
	assert_int_equal(guest_file_path(k.pm, &r, f, path, sizeof(path)), 0);
	assert_string_equal(path, "?/sh");
	assert_true(now_s() - t0 < TIME_BOUND_S);
	kimg_free(&k);
}

/* ---- task lists ---------------------------------------------------------------------------------- */

/* init_task's list points at itself: one task, no error. */
static void test_tasks_empty_self_loop(void **state)
{
	struct kimg k;
	struct walk_out w;

	kimg_build(&k, 8 << 20, NULL, 0);
	w = walk(&k, 0);
	assert_int_equal(w.err, 0);
	assert_int_equal(w.n, 1);
	assert_string_equal(w.t[0].comm, "swapper/0");
	free(w.t);
	kimg_free(&k);
}

/* A task whose next points at itself; a rho (… → C → B with B already on the list): the back-pointer
 * check ends both with -EFAULT after the tasks read so far. */
static void test_tasks_loops(void **state)
{
	struct kimg k;
	struct walk_out w;
	uint64_t a = DM + 0x400000, b = a + 0x1000, c = b + 0x1000;

	kimg_build(&k, 8 << 20, NULL, 0);
	set_task(&k, a, "a", 1);
	link_tasks(&k, k.init, a);
	w64(&k, a + T_TASKS, a + T_TASKS);                /* a.next = a (a.prev = init) */
	w = walk(&k, 0);
	assert_int_equal(w.err, -EFAULT);
	assert_int_equal(w.n, 2);
	free(w.t);

	set_task(&k, b, "b", 2);
	set_task(&k, c, "c", 3);
	link_tasks(&k, a, b);
	link_tasks(&k, b, c);
	w64(&k, c + T_TASKS, b + T_TASKS);                /* c.next = b: rho */
	w = walk(&k, 0);
	assert_int_equal(w.err, -EFAULT);
	assert_int_equal(w.n, 4);
	free(w.t);

	/* a consistent two-task ring that never returns to init: init → a ⇄ b */
	link_tasks(&k, a, b);
	link_tasks(&k, b, a);
	w = walk(&k, 0);
	assert_int_equal(w.err, -EFAULT);
	assert_true(w.n <= 4);
	free(w.t);
	kimg_free(&k);
}

/* Pointers into RAM holes (MMIO), past the end of RAM, unmapped kernel space, user space and
 * non-canonical addresses: a clear -EFAULT, nothing read out of range (the buffer source would fault). */
static void test_tasks_bad_pointers(void **state)
{
	/* RAM [0, 6 MiB) and [7 MiB, 16 MiB): a 1 MiB "MMIO" hole, mapped by the direct map like a PCI BAR */
	static const struct phys_range ram[] = { { 0, 6 << 20 }, { 7 << 20, 9 << 20 } };
	static const uint64_t bad[] = {
		DM + (6 << 20) + 0x100,          /* MMIO hole */
		DM + (16 << 20) + 0x1000,        /* past the end of RAM, still in the direct map's last page */
		DM + (1ULL << 40),               /* direct map region, unmapped */
		0xffffc90000000000ULL,           /* vmalloc, unmapped */
		0x0000000000401000ULL,           /* user space */
		0x8000000000000000ULL,           /* non-canonical */
		0xfffffffffffffff8ULL,           /* wraps around on +8 */
		0,
	};
	struct kimg k;

	kimg_build(&k, 16 << 20, ram, 2);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct walk_out w;

		w64(&k, k.init + T_TASKS, bad[i]);
		w = walk(&k, 0);
		assert_int_equal(w.err, -EFAULT);
		assert_int_equal(w.n, 1);
		free(w.t);
	}
	/* a task whose name and ids lie in the hole: skipped cleanly, not read */
	{
		uint64_t t = DM + (6 << 20) - 24;   /* tasks at the end of RAM, comm in the hole */
		struct walk_out w;

		link_tasks(&k, k.init, t);
		link_tasks(&k, t, k.init);
		w = walk(&k, 0);
		assert_int_equal(w.err, -EFAULT);
		free(w.t);
	}
	kimg_free(&k);
}

/* Names: 16 bytes without a NUL, control characters, high bytes, empty. */
static void test_tasks_names(void **state)
{
	static const char names[4][16] = {   /* exactly 16 bytes each: no terminator where the name fills it */
		"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff",   /* unterminated */
		"abcdefghijklmnop",                                                   /* unterminated, printable */
		"\x1b[2J\n\r\t\x01\x7f",
		"",
	};
	struct kimg k;
	uint64_t prev;
	struct walk_out w;

	kimg_build(&k, 8 << 20, NULL, 0);
	prev = k.init;
	for (size_t i = 0; i < 4; i++) {
		uint64_t t = DM + 0x400000 + i * 0x100;

		set_task(&k, t, "", (uint32_t)i + 1);
		memcpy(k.mem + kva_pa(t + T_COMM), names[i], 16);
		link_tasks(&k, prev, t);
		prev = t;
	}
	link_tasks(&k, prev, k.init);
	w = walk(&k, 0);
	assert_int_equal(w.err, 0);
	assert_int_equal(w.n, 5);
	assert_string_equal(w.t[1].comm, "????????????????");
	assert_string_equal(w.t[2].comm, "abcdefghijklmnop");
	assert_string_equal(w.t[3].comm, "?[2J?????");   /* control bytes replaced */
	free(w.t);
	kimg_free(&k);
}

/* 10^6 tasks on one consistent ring, 32 bytes apart (every task overlaps the next): the default cap
 * (65536) ends the walk with -E2BIG; a cap above 10^6 walks all of it; both within the time bound and
 * with bytes read proportional to the tasks read. Discovery over the same guest abstains in bounds. */
#define MILLION 1000000u
static void test_tasks_million_overlapping(void **state)
{
	struct kimg k;
	struct walk_out w;
	uint64_t base = DM + 0x400000, prev;
	size_t size = 0x400000 + (size_t)MILLION * 32 + (2 << 20);

	kimg_build(&k, size, NULL, 0);
	prev = k.init;
	for (uint32_t i = 0; i < MILLION; i++) {
		uint64_t t = base + (uint64_t)i * 32;
		unsigned char *p = k.mem + kva_pa(t);

		snprintf((char *)p + T_COMM, 16, "t%u", i);
		link_tasks(&k, prev, t);
		prev = t;
	}
	link_tasks(&k, prev, k.init);

	w = walk(&k, 0);
	printf("  10^6 tasks, default cap: %d, %zu tasks, %.3f s, %llu bytes\n", w.err, w.n, w.secs,
	       (unsigned long long)w.bytes);
	assert_int_equal(w.err, -E2BIG);
	assert_int_equal(w.n, 65536);
	assert_true(w.bytes < 65537ULL * 128);
	free(w.t);

	w = walk(&k, 2 * MILLION);
	printf("  10^6 tasks, cap 2*10^6: %d, %zu tasks, %.3f s, %llu bytes\n", w.err, w.n, w.secs,
	       (unsigned long long)w.bytes);
	assert_int_equal(w.err, 0);
	assert_int_equal(w.n, MILLION + 1);
	assert_string_equal(w.t[MILLION].comm, "t999999");
	free(w.t);

	uint64_t cr3 = k.pt.root;
	discover_bounded(k.pm, &cr3, 1, "10^6 overlapping tasks");
	kimg_free(&k);
}

/* Discovery over crafted kernels whose task list loops or leaves RAM: bounded, abstains. */
static void test_discovery_crafted_lists(void **state)
{
	struct kimg k;
	uint64_t a = DM + 0x400000, cr3;

	kimg_build(&k, 8 << 20, NULL, 0);
	cr3 = k.pt.root;
	discover_bounded(k.pm, &cr3, 1, "only init_task");
	set_task(&k, a, "init", 1);
	link_tasks(&k, k.init, a);
	w64(&k, a + T_TASKS, a + T_TASKS);
	discover_bounded(k.pm, &cr3, 1, "task list self loop");
	w64(&k, a + T_TASKS, DM + (64ULL << 20));
	discover_bounded(k.pm, &cr3, 1, "task list into unmapped RAM");
	/* many "swapper/0" strings in the data: every one a candidate */
	for (uint64_t off = 0x2000; off + 16 <= KDATA_LEN; off += 64)
		memcpy(k.mem + KDATA_PA + off, "swapper/0", 10);
	discover_bounded(k.pm, &cr3, 1, "4000 swapper/0 candidates");
	/* no CR3, a CR3 outside RAM, a CR3 of zeros */
	discover_bounded(k.pm, NULL, 0, "no CR3");
	cr3 = 1ULL << 40;
	discover_bounded(k.pm, &cr3, 1, "CR3 outside RAM");
	cr3 = 0x300000;
	discover_bounded(k.pm, &cr3, 1, "CR3 of an empty page");
	kimg_free(&k);
}

/* ---- page tables ---------------------------------------------------------------------------------- */

struct count { uint64_t n; };
static int count_cb(uint64_t va, const struct x86_map *m, void *arg)
{
	((struct count *)arg)->n++;
	return 0;
}

/* Every translation, walk and direct-map search over these tables ends in the time and byte bound. */
static void pt_bounded(unsigned char *mem, size_t size, uint64_t cr3, const char *what)
{
	struct physmem *pm;
	struct x86_map m;
	struct count c = { 0 };
	uint64_t pob, b0;
	double t0, dt;
	int n;

	assert_int_equal(physmem_open_buffer(mem, size, NULL, 0, &pm), 0);
	for (int la57 = 0; la57 < 2; la57++) {
		static const uint64_t vas[] = { 0, 0x1000, 0x7fffffffffffULL, 0xffff888000000000ULL,
						0xffffffff81000000ULL, 0xfffffffffffff000ULL, 0xff11000000000000ULL };

		for (size_t i = 0; i < sizeof(vas) / sizeof(vas[0]); i++) {
			b0 = pm->bytes_read;
			x86_translate(pm, cr3, la57, vas[i], &m);
			assert_true(pm->bytes_read - b0 <= 2 * 5 * 8);   /* ≤ levels entries, twice with PTI */
		}
		b0 = pm->bytes_read;
		t0 = now_s();
		n = x86_walk(pm, cr3, la57, 0, 0, 0, count_cb, &c);
		dt = now_s() - t0;
		printf("  %-26s %d-level x86_walk: %d leaves, %.3f s, %llu bytes\n", what, la57 ? 5 : 4, n, dt,
		       (unsigned long long)(pm->bytes_read - b0));
		assert_true(n >= 0 || n == -EFAULT);
		assert_true(dt < TIME_BOUND_S);
		assert_true(pm->bytes_read - b0 <= WALK_BYTES_BOUND);
		b0 = pm->bytes_read;
		t0 = now_s();
		x86_find_direct_map(pm, cr3, la57, &pob);
		dt = now_s() - t0;
		printf("  %-26s %d-level x86_find_direct_map: %.3f s, %llu bytes\n", what, la57 ? 5 : 4, dt,
		       (unsigned long long)(pm->bytes_read - b0));
		assert_true(dt < TIME_BOUND_S);
		assert_true(pm->bytes_read - b0 <= WALK_BYTES_BOUND);
	}
	t0 = now_s();
	x86_detect_la57(pm, cr3);
	assert_true(now_s() - t0 < TIME_BOUND_S);
	discover_bounded(pm, &cr3, 1, what);
	physmem_close(pm);
}


/* One table pointing to itself at every level (4- and 5-level walks both see it). */
static void test_pt_self_loop(void **state)
{
	unsigned char *mem = calloc(1, PT_IMG);

	for (int i = 0; i < 512; i++)
		((uint64_t *)(mem + 0x1000))[i] = 0x1000 | PT_P | PT_RW;
	pt_bounded(mem, PT_IMG, 0x1000, "self loop");
	/* only the kernel half and the last entry: what root_maps_kernel() accepts */
	memset(mem + 0x1000, 0, 4096);
	((uint64_t *)(mem + 0x1000))[511] = 0x1000 | PT_P | PT_RW;
	((uint64_t *)(mem + 0x1000))[273] = 0x1000 | PT_P | PT_RW;
	pt_bounded(mem, PT_IMG, 0x1000, "kernel-half self loop");
	/* two tables pointing at each other */
	for (int i = 0; i < 512; i++) {
		((uint64_t *)(mem + 0x1000))[i] = 0x2000 | PT_P | PT_RW;
		((uint64_t *)(mem + 0x2000))[i] = 0x1000 | PT_P | PT_RW;
	}
	pt_bounded(mem, PT_IMG, 0x1000, "two-table loop");
	free(mem);
}

/* Tens of thousands of distinct, empty tables under the kernel half (no loop, no revisit: only the byte
 * budget can stop a walk here): discovery stops at its 64 MiB budget, page-table walks included, and says so. */
static void test_pt_distinct_tables_budget(void **state)
{
	const uint64_t npud = 256, npmd = 128, size = (2 + npud + npud * npmd) * 4096;
	unsigned char *mem = calloc(1, size);
	uint64_t *pgd = (uint64_t *)(mem + 0x1000), next = 0x2000, cr3 = 0x1000;
	struct obs_set obs = { 0 };
	struct discovery_result *r = calloc(1, sizeof(*r));
	struct physmem *pm;
	uint64_t b0;

	(void)state;
	assert_non_null(mem);
	assert_non_null(r);
	for (uint64_t i = 0; i < npud; i++) {
		uint64_t *pud = (uint64_t *)(mem + next);

		pgd[256 + i] = next | PT_P | PT_RW;
		next += 4096;
		for (uint64_t j = 0; j < npmd; j++, next += 4096)
			pud[j] = next | PT_P | PT_RW;   /* an empty PMD page of its own */
	}
	assert_true(next <= size);
	assert_int_equal(physmem_open_buffer(mem, size, NULL, 0, &pm), 0);
	assert_int_equal(obs_add(&obs, &(struct observation){ .cr3 = cr3, .source = OBS_CLI }), 0);
	b0 = pm->bytes_read;
	assert_int_equal(discover_offsets(pm, &obs, NULL, r), -ENOENT);
	printf("  %llu distinct tables: %llu bytes read: %s\n", (unsigned long long)(npud * npmd),
	       (unsigned long long)(pm->bytes_read - b0), r->reason);
	assert_true(pm->bytes_read - b0 <= (64ULL << 20));
	assert_non_null(strstr(r->reason, "budget"));
	assert_int_equal(pm->read_limit, 0);   /* restored */
	obs_free(&obs);
	free(r);
	physmem_close(pm);
	free(mem);
}

/* Everything present: 1 GiB pages everywhere; 2 MiB pages everywhere; 4 KiB pages everywhere (one
 * table per level shared by all entries); and the same with a single present leaf (table reads without
 * leaves). */
static void test_pt_map_everything(void **state)
{
	unsigned char *mem = calloc(1, PT_IMG);
	uint64_t *l4 = (uint64_t *)(mem + 0x1000), *l3 = (uint64_t *)(mem + 0x2000);
	uint64_t *l2 = (uint64_t *)(mem + 0x3000), *l1 = (uint64_t *)(mem + 0x4000);

	for (int i = 0; i < 512; i++) {
		l4[i] = 0x2000 | PT_P | PT_RW;
		l3[i] = ((uint64_t)i << 30) | PT_P | PT_RW | PT_PS;
	}
	pt_bounded(mem, PT_IMG, 0x1000, "1 GiB pages everywhere");
	for (int i = 0; i < 512; i++) {
		l3[i] = 0x3000 | PT_P | PT_RW;
		l2[i] = ((uint64_t)i << 21) | PT_P | PT_RW | PT_PS;
	}
	pt_bounded(mem, PT_IMG, 0x1000, "2 MiB pages everywhere");
	for (int i = 0; i < 512; i++) {
		l2[i] = 0x4000 | PT_P | PT_RW;
		l1[i] = ((uint64_t)i << 12) | PT_P | PT_RW;
	}
	pt_bounded(mem, PT_IMG, 0x1000, "4 KiB pages everywhere");
	memset(l1, 0, 4096);
	l1[7] = 0x7000 | PT_P | PT_RW;
	pt_bounded(mem, PT_IMG, 0x1000, "one leaf under shared tables");
	free(mem);
}

/* ---- files ------------------------------------------------------------------------------------------ */

static char *write_tmp(const void *data, size_t len)
{
	char *path = strdup("/tmp/vmot-hostile-XXXXXX");
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	if (len)
		assert_int_equal(write(fd, data, len), (ssize_t)len);
	close(fd);
	return path;
}

/* A minimal core: ELF header, phdrs, one NT_PRSTATUS-free note, 8 KiB of RAM. */
static size_t make_core(unsigned char *buf, size_t cap, bool xnum, uint64_t shoff_pad)
{
	Elf64_Ehdr eh = { 0 };
	Elf64_Phdr ph[2] = { 0 };
	Elf64_Shdr sh = { .sh_info = 2 };
	size_t off = sizeof(eh) + sizeof(ph) + shoff_pad + (xnum ? sizeof(sh) : 0);
	unsigned char note[12 + 8 + 4] = { 0 };
	uint32_t nh[3] = { 4, 4, 1 };

	memcpy(note, nh, 12);
	memcpy(note + 12, "ABC", 4);
	memcpy(eh.e_ident, ELFMAG, SELFMAG);
	eh.e_ident[EI_CLASS] = ELFCLASS64;
	eh.e_ident[EI_DATA] = ELFDATA2LSB;
	eh.e_type = ET_CORE;
	eh.e_machine = EM_X86_64;
	eh.e_phoff = sizeof(eh);
	eh.e_phentsize = sizeof(Elf64_Phdr);
	eh.e_phnum = xnum ? PN_XNUM : 2;
	if (xnum) {
		eh.e_shoff = sizeof(eh) + sizeof(ph) + shoff_pad;
		eh.e_shentsize = sizeof(sh);
		eh.e_shnum = 1;
	}
	ph[0] = (Elf64_Phdr){ .p_type = PT_NOTE, .p_offset = off, .p_filesz = 20 };
	ph[1] = (Elf64_Phdr){ .p_type = PT_LOAD, .p_offset = off + 20, .p_paddr = 0x1000, .p_filesz = 8192 };
	assert_true(off + 20 + 8192 <= cap);
	memset(buf, 0, off + 20 + 8192);
	memcpy(buf, &eh, sizeof(eh));
	memcpy(buf + sizeof(eh), ph, sizeof(ph));
	if (xnum)
		memcpy(buf + eh.e_shoff, &sh, sizeof(sh));
	memcpy(buf + off, note, 20);
	for (size_t i = 0; i < 8192; i++)
		buf[off + 20 + i] = (unsigned char)i;
	return off + 20 + 8192;
}

/* Regression (fuzz_elfcore): PN_XNUM with a section header at an unaligned offset was read through a
 * misaligned Elf64_Shdr pointer (UBSan). Then: every truncation and every single-byte corruption of
 * the headers ends cleanly. */
static void test_elfcore_damaged(void **state)
{
	unsigned char buf[16384], bad[16384];
	struct physmem *pm;
	size_t len = make_core(buf, sizeof(buf), true, 3);
	char *path = write_tmp(buf, len);
	unsigned char got[16];

	assert_int_equal(physmem_open_elfcore(path, &pm), 0);
	assert_int_equal(pm->nranges, 1);
	assert_int_equal(physmem_read(pm, 0x1000 + 100, got, 16), 0);
	assert_int_equal(got[0], 100);
	physmem_close(pm);
	unlink(path);
	free(path);

	len = make_core(buf, sizeof(buf), false, 0);
	for (size_t cut = 0; cut < len; cut += cut < 400 ? 1 : 997) {
		path = write_tmp(buf, cut);
		assert_int_equal(physmem_open_elfcore(path, &pm), -EINVAL);   /* the one PT_LOAD runs past EOF */
		unlink(path);
		free(path);
	}
	for (size_t at = 0; at < 200; at++) {
		for (int x = 0; x < 3; x++) {
			static const unsigned char xors[] = { 0xff, 0x80, 0x01 };
			int err;

			memcpy(bad, buf, len);
			bad[at] ^= xors[x];
			path = write_tmp(bad, len);
			err = physmem_open_elfcore(path, &pm);
			if (!err) {
				for (size_t i = 0; i < pm->nranges; i++)
					assert_int_equal(physmem_read(pm, pm->ranges[i].start, got, 1), 0);
				physmem_close(pm);
			} else {
				assert_true(err == -EINVAL || err == -E2BIG || err == -ENOMEM);
			}
			unlink(path);
			free(path);
		}
	}
}

#ifdef HAVE_SESSION
static int count_blocks(void *ctx, enum sess_block type, uint32_t seq, const void *data, size_t len, uint32_t nrec)
{
	(*(int *)ctx)++;
	return 0;
}

/* Regression (fuzz_session): an intact block with seq 0xffffffff made the reader count missing
 * sequence numbers one by one up to 2^32 — forever, as the loop counter could not pass the top. */
static void test_session_huge_seq(void **state)
{
	char path[] = "/tmp/vmot-hostile-sess-XXXXXX";
	int fd = mkstemp(path), blocks = 0;
	struct sess_writer *w;
	struct sess_summary sum;
	unsigned char *data;
	size_t len;
	FILE *f;
	double t0;

	close(fd);
	assert_int_equal(sess_create(path, "{\"format\":\"vmoffset-trace session\",\"version\":1}", &w), 0);
	assert_int_equal(sess_close(w, -1, NULL), 0);
	f = fopen(path, "rb");
	assert_non_null(f);
	data = malloc(1 << 16);
	len = fread(data, 1, 1 << 16, f);
	fclose(f);
	unlink(path);
	/* first block: set seq to 0xffffffff and fix its CRC (header bytes 0..23 and the payload) */
	uint32_t comp, crc, seq = 0xffffffffu;
	memcpy(&comp, data + 16, 4);
	memcpy(data + 8, &seq, 4);
	crc = (uint32_t)crc32(0, data, 24);
	crc = (uint32_t)crc32(crc, data + SESS_BLOCK_HDR, comp);
	memcpy(data + 24, &crc, 4);
	t0 = now_s();
	sess_read_buf(data, len, count_blocks, &blocks, &sum);
	assert_true(now_s() - t0 < TIME_BOUND_S);
	assert_true(blocks >= 1);
	assert_int_equal(sum.max_seq, 0xffffffffu);
	assert_true(sum.seq_missing >= 0xfffffff0u);
	assert_false(sess_intact(&sum));
	free(data);
}
#endif

/* ---- read-only: file sources are opened O_RDONLY and mapped without write permission ---------------- */

static int open_flags_of(const char *path)
{
	char link[PATH_MAX], target[PATH_MAX], fdinfo[320], line[256];
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int flags = -1;

	assert_non_null(d);
	while ((e = readdir(d)) && flags < 0) {
		ssize_t n;

		snprintf(link, sizeof(link), "/proc/self/fd/%s", e->d_name);
		n = readlink(link, target, sizeof(target) - 1);
		if (n <= 0)
			continue;
		target[n] = 0;
		if (strcmp(target, path))
			continue;
		snprintf(fdinfo, sizeof(fdinfo), "/proc/self/fdinfo/%s", e->d_name);
		FILE *f = fopen(fdinfo, "r");
		while (f && fgets(line, sizeof(line), f))
			if (sscanf(line, "flags: %o", (unsigned *)&flags) == 1)
				break;
		if (f)
			fclose(f);
	}
	closedir(d);
	return flags;
}

/* Permissions of the mapping of path in /proc/self/maps ("r--p"), or "" if not mapped. */
static void map_perms(const char *path, char perms[5])
{
	char line[1024];
	FILE *f = fopen("/proc/self/maps", "r");

	perms[0] = 0;
	while (f && fgets(line, sizeof(line), f)) {
		char p[8], name[PATH_MAX] = "";

		if (sscanf(line, "%*x-%*x %7s %*x %*s %*u %4095[^\n]", p, name) == 2 && !strcmp(name, path)) {
			memcpy(perms, p, 4);
			perms[4] = 0;
			break;
		}
	}
	if (f)
		fclose(f);
}

static void test_file_sources_read_only(void **state)
{
	unsigned char buf[16384];
	size_t len = make_core(buf, sizeof(buf), false, 0);
	char *core = write_tmp(buf, len), *raw = write_tmp(buf, 8192), perms[5];
	struct physmem *pm;
	int flags;

	assert_int_equal(physmem_open_elfcore(core, &pm), 0);
	flags = open_flags_of(core);
	assert_true(flags >= 0);
	assert_int_equal(flags & O_ACCMODE, O_RDONLY);
	map_perms(core, perms);
	assert_string_equal(perms, "r--p");
	physmem_close(pm);
	assert_int_equal(open_flags_of(core), -1);   /* closed again */

	assert_int_equal(physmem_open_raw(raw, &pm), 0);
	flags = open_flags_of(raw);
	assert_true(flags >= 0);
	assert_int_equal(flags & O_ACCMODE, O_RDONLY);
	map_perms(raw, perms);
	assert_true(!perms[0] || !strcmp(perms, "r--p"));
	physmem_close(pm);
	unlink(core);
	unlink(raw);
	free(core);
	free(raw);
}

/* ---- processes: wrong pids, non-QEMU pids, a source that exits mid-read ----------------------------- */

static pid_t spawn_named(const char *name)
{
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (!pid) {
		prctl(PR_SET_NAME, name);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		for (;;)
			pause();
	}
	/* wait until the child has renamed itself */
	for (int i = 0; i < 500; i++) {
		char path[64], comm[32] = "";
		FILE *f;

		snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
		f = fopen(path, "r");
		if (f) {
			if (!fgets(comm, sizeof(comm), f))
				comm[0] = 0;
			fclose(f);
		}
		if (!strncmp(comm, name, strlen(name)))
			break;
		usleep(2000);
	}
	return pid;
}

static void test_wrong_pids(void **state)
{
	struct physmem *pm = NULL;
	pid_t child;
	int st;

	assert_int_equal(physmem_open_qemu(0, NULL, &pm), -EINVAL);
	assert_int_equal(physmem_open_qemu(-5, NULL, &pm), -EINVAL);
	assert_int_equal(physmem_open_qemu(getpid(), NULL, &pm), -EINVAL);   /* not QEMU */
	assert_int_equal(physmem_open_qemu(1, NULL, &pm), -EINVAL);          /* init is not QEMU either */
	/* a pid that no longer exists */
	child = fork();
	if (!child)
		_exit(0);
	waitpid(child, &st, 0);
	assert_int_equal(physmem_open_qemu(child, NULL, &pm), -ESRCH);
	/* looks like QEMU by name (its comm), has no QMP socket */
	child = spawn_named("qemu-kvm");
	assert_int_equal(physmem_open_qemu(child, NULL, &pm), -ENOENT);
	assert_int_equal(physmem_open_qemu(child, "/nonexistent/qmp.sock", &pm), -ENOENT);
	assert_null(pm);
	kill(child, SIGKILL);
	waitpid(child, &st, 0);
}

struct reader {
	struct physmem *pm;
	volatile int stop;
	int last_err;
	uint64_t ok;
};

static void *read_loop(void *arg)
{
	struct reader *r = arg;
	unsigned char buf[4096];

	while (!r->stop) {
		int err = physmem_read(r->pm, (r->ok * 4096) % (8 << 20), buf, sizeof(buf));

		if (err) {
			r->last_err = err;
			break;
		}
		r->ok++;
	}
	return NULL;
}

/* A "QEMU" (a child holding the guest RAM at the same address as ours, after fork) killed while another
 * thread reads from it: the read ends with -ESRCH and one clear error line, later reads fail fast, and
 * nothing crashes — whether the process is still a zombie or already reaped. */
static void test_source_exits_mid_read(void **state)
{
	for (int reap = 0; reap < 2; reap++) {
		size_t size = 8 << 20;
		unsigned char *ram = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		struct kvm_memslot_map slot = { .slot = 0, .gpa = 0, .size = size, .hva = (uintptr_t)ram };
		struct reader r = { 0 };
		pthread_t th;
		unsigned char b[8];
		pid_t child;
		int st;

		assert_true(ram != MAP_FAILED);
		memset(ram, 0x5a, size);
		child = spawn_named("qemu-system-x86");
		assert_int_equal(physmem_open_qemu_memslots(child, &slot, 1, &r.pm), 0);
		assert_int_equal(physmem_read(r.pm, 4096, b, 8), 0);
		assert_int_equal(b[0], 0x5a);
		assert_int_equal(pthread_create(&th, NULL, read_loop, &r), 0);
		while (r.ok < 100)
			usleep(100);
		kill(child, SIGKILL);
		if (reap)
			waitpid(child, &st, 0);
		else
			usleep(50000);
		for (int i = 0; i < 2000 && !r.last_err; i++)
			usleep(1000);
		r.stop = 1;
		pthread_join(th, NULL);
		assert_int_equal(r.last_err, -ESRCH);
		assert_int_equal(physmem_read(r.pm, 0, b, 8), -ESRCH);
		assert_int_equal(r.pm->source_err, -ESRCH);
		/* Regression (test_hostile_live.sh): discovery on a source that went away said "undetermined:
		 * none of the observed CR3 values is a page-table root" (exit 2) — it must say the source is
		 * gone, and so must the task walk. */
		{
			struct obs_set obs = { 0 };
			struct observation o = { .cr3 = 0x1000, .source = OBS_CLI };
			struct discovery_result *res = calloc(1, sizeof(*res));
			struct guest_task *tasks = NULL;
			size_t nt = 0;

			assert_int_equal(obs_add(&obs, &o), 0);
			assert_int_equal(discover_offsets(r.pm, &obs, NULL, res), -ESRCH);
			assert_non_null(strstr(res->reason, "went away"));
			res->task[TF_TASKS].found = res->task[TF_COMM].found = true;
			res->task[TF_COMM].offset = 16;
			res->init_task = 0xffff888000001000ULL;
			res->page_offset_base = 0xffff888000000000ULL;
			assert_int_equal(guest_tasks_list(r.pm, res, NULL, &tasks, &nt), -ESRCH);
			free(tasks);
			free(res);
			obs_free(&obs);
		}
		physmem_close(r.pm);
		if (!reap)
			waitpid(child, &st, 0);
		munmap(ram, size);
	}
}


/* ---- QMP: a monitor that answers garbage, closes, or says nothing ------------------------------------ */

/* Feed `said` as QEMU's side of the socket (then close it unless keep_open) and open QMP on the other.
 * With `last`, transport errors after the greeting are deferred and qmp_last_error lands there ("" if NULL). */
static int qmp_with_last(const char *said, bool keep_open, int timeout_ms, double *secs, char *last)
{
	struct qmp *q = NULL;
	int sv[2], err;
	double t0 = now_s();

	if (last)
		last[0] = 0;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	assert_int_equal(write(sv[1], said, strlen(said)), (ssize_t)strlen(said));
	if (!keep_open)
		shutdown(sv[1], SHUT_WR);
	err = qmp_open_fd(sv[0], "test", timeout_ms, &q);
	if (!err) {
		char *text = NULL;
		int e2;

		if (last)
			qmp_defer_errors(q, true);
		e2 = qmp_hmp(q, "info registers", -1, &text);
		free(text);
		err = e2;
		if (last)
			snprintf(last, 256, "%s", qmp_last_error(q) ? qmp_last_error(q) : "");
		qmp_close(q);
	} else {
		close(sv[0]);
	}
	close(sv[1]);
	*secs = now_s() - t0;
	return err;
}

static int qmp_with(const char *said, bool keep_open, int timeout_ms, double *secs)
{
	return qmp_with_last(said, keep_open, timeout_ms, secs, NULL);
}

static void test_qmp_hostile_monitor(void **state)
{
	static const char greet[] = "{\"QMP\": {\"version\": {}, \"capabilities\": []}}\r\n";
	char buf[4096];
	double dt;

	assert_int_equal(qmp_with("not json at all\n", false, 2000, &dt), -EPROTO);
	assert_int_equal(qmp_with("[1, 2, 3]\n", false, 2000, &dt), -EPROTO);
	assert_int_equal(qmp_with("{\"hello\": 1}\n", false, 2000, &dt), -EPROTO);   /* no greeting */
	assert_int_equal(qmp_with(greet, false, 2000, &dt), -ECONNRESET);             /* gone after it */
	assert_true(dt < 1.0);
	/* replies to other ids, events, blank lines: skipped until QEMU closes */
	snprintf(buf, sizeof(buf), "%s{\"return\": {}, \"id\": 7}\r\n\r\n{\"event\": \"STOP\"}\r\n"
		 "{\"return\": {}, \"id\": 1}\r\n{\"return\": 42, \"id\": 2}\r\n", greet);
	assert_int_equal(qmp_with(buf, false, 2000, &dt), -EPROTO);                  /* HMP reply not a string */
	snprintf(buf, sizeof(buf), "%s{\"return\": {}, \"id\": 1}\r\n{\"error\": {\"desc\": \"no\"}, \"id\": 2}\r\n", greet);
	assert_int_equal(qmp_with(buf, false, 2000, &dt), -EREMOTEIO);
	/* a monitor that greets and then says nothing: the timeout, not a hang */
	assert_int_equal(qmp_with(greet, true, 300, &dt), -ETIMEDOUT);
	assert_true(dt < 2.0);
	/* a half line and silence */
	assert_int_equal(qmp_with("{\"QMP\": {", true, 300, &dt), -ETIMEDOUT);
}

/* Deferred errors (sampling while QEMU may exit): a transport error is kept for the caller, a command's
 * own error is not one (it was printed where it happened) */
static void test_qmp_deferred_errors(void **state)
{
	static const char greet[] = "{\"QMP\": {\"version\": {}, \"capabilities\": []}}\r\n";
	char buf[4096], last[256];
	double dt;

	(void)state;
	snprintf(buf, sizeof(buf), "%s{\"return\": {}, \"id\": 1}\r\n", greet);   /* capabilities, then gone */
	assert_int_equal(qmp_with_last(buf, false, 2000, &dt, last), -ECONNRESET);
	assert_non_null(strstr(last, "connection closed by QEMU"));
	snprintf(buf, sizeof(buf), "%s{\"return\": {}, \"id\": 1}\r\n{\"error\": {\"desc\": \"no\"}, \"id\": 2}\r\n", greet);
	assert_int_equal(qmp_with_last(buf, false, 2000, &dt, last), -EREMOTEIO);
	assert_string_equal(last, "");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tasks_empty_self_loop),
		cmocka_unit_test(test_tasks_loops),
		cmocka_unit_test(test_tasks_bad_pointers),
		cmocka_unit_test(test_tasks_names),
		cmocka_unit_test(test_tasks_million_overlapping),
		cmocka_unit_test(test_discovery_crafted_lists),
		cmocka_unit_test(test_maps_list_hostile),
		cmocka_unit_test(test_maps_maple_hostile),
		cmocka_unit_test(test_paths_hostile),
		cmocka_unit_test(test_pt_self_loop),
		cmocka_unit_test(test_pt_map_everything),
		cmocka_unit_test(test_pt_distinct_tables_budget),
		cmocka_unit_test(test_elfcore_damaged),
#ifdef HAVE_SESSION
		cmocka_unit_test(test_session_huge_seq),
#endif
		cmocka_unit_test(test_file_sources_read_only),
		cmocka_unit_test(test_wrong_pids),
		cmocka_unit_test(test_source_exits_mid_read),
		cmocka_unit_test(test_qmp_hostile_monitor),
		cmocka_unit_test(test_qmp_deferred_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
