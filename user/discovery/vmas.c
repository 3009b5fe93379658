/*
 * Memory maps without a profile (issue 14): where an mm_struct keeps its VMAs, the vm_area_struct members a
 * /proc/PID/maps line needs, and the mm members that name lines or the executable — each found on the listed
 * processes by what it holds, in any member order:
 *   - the VMAs: from 6.1 a maple tree (mm->mm_mt), whose root node points back at the tree (parent = &tree | 1)
 *     and whose leaf ranges are exactly [vm_start, vm_end - 1]; before 6.1 a list (mm->mmap, vm_next) of
 *     VMAs pointing back at their mm (vm_mm), in address order, as long as mm->map_count says;
 *   - vm_flags: VM_READ/WRITE/EXEC within VM_MAY*, one VM_GROWSDOWN mapping (the stack), something executable
 *     and something writable in every process;
 *   - vm_file with mm->exe_file: a member of every mm equal to the vm_file of one of its VMAs (the ELF loader
 *     maps the executable through the very struct file it records);
 *   - vm_pgoff: vm_start >> 12 on anonymous mappings;
 *   - start_stack: the address of argc (argc, then argv[0] == arg_start), start_brk/brk: the [heap] mapping;
 *   - vm_private_data: a special mapping's name ("[vdso]", "[vvar]"), the first member of what it points to.
 * Every walk is bounded (nodes, depth, count) and checked (a maple node's children point back at it, a list is
 * in address order), so a lying mm ends the walk with an error instead of a loop.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "common/log.h"
#include "discovery/discover.h"
#include "discovery/internal.h"   /* set_undetermined */

#define MM_WINDOW    2048     /* mm_struct members we look for lie in its first 2 KiB */
#define VMA_WINDOW   256      /* and a vm_area_struct's in its first 256 bytes */
#define MAX_PROCS    48       /* processes looked at */
#define MAX_VMAS     (1 << 17)  /* a walk stops here (Linux's default max_map_count is 65530) */
#define MAPLE_DEPTH  32       /* deeper than any maple tree (MAPLE_HEIGHT_MAX is 31) */
#define PAGE         4096ULL

const char *const maps_member_names[MAPS_NR] = {
	[MM_MAP_ROOT] = "mm_mt", [MM_MAP_COUNT] = "map_count", [MM_EXE_FILE] = "exe_file",
	[MM_START_BRK] = "start_brk", [MM_BRK] = "brk", [MM_START_STACK] = "start_stack",
	[VMA_START] = "vm_start", [VMA_END] = "vm_end", [VMA_MM] = "vm_mm", [VMA_FLAGS] = "vm_flags",
	[VMA_PGOFF] = "vm_pgoff", [VMA_FILE] = "vm_file", [VMA_NEXT] = "vm_next", [VMA_PRIVATE] = "vm_private_data",
	[FILE_DENTRY] = "f_path.dentry", [FILE_MNT] = "f_path.mnt", [DENTRY_PARENT] = "d_parent", [DENTRY_NAME] = "d_name",
	[DENTRY_HASH] = "d_hash", [VFSMOUNT_ROOT] = "mnt_root",
	[MOUNT_MNT] = "mnt", [MOUNT_PARENT] = "mnt_parent", [MOUNT_MOUNTPOINT] = "mnt_mountpoint",
};

static bool user_addr(uint64_t v, uint64_t user_top)
{
	return v && v < user_top;
}

static void set_found(struct offset_result *r, int64_t off, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void set_found(struct offset_result *r, int64_t off, const char *fmt, ...)
{
	va_list ap;

	r->offset = off;
	r->found = true;
	r->tied = false;
	r->confidence = 1.0;
	va_start(ap, fmt);
	vsnprintf(r->how, sizeof(r->how), fmt, ap);
	va_end(ap);
}

/* ---- walks (shared by discovery and guest_task_maps) ---- */

struct vma_list {
	uint64_t *va;              /* vm_area_struct VAs in address order */
	uint64_t *lo, *hi;         /* the maple tree's range of each ([vm_start, vm_end - 1]); 0,0 for a list */
	size_t n, cap;
};

static int vl_push(struct vma_list *l, uint64_t va, uint64_t lo, uint64_t hi)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 64;
		uint64_t *a = realloc(l->va, cap * 8), *b, *c;

		if (!a)
			return -ENOMEM;
		l->va = a;
		if (!(b = realloc(l->lo, cap * 8)))
			return -ENOMEM;
		l->lo = b;
		if (!(c = realloc(l->hi, cap * 8)))
			return -ENOMEM;
		l->hi = c;
		l->cap = cap;
	}
	l->va[l->n] = va;
	l->lo[l->n] = lo;
	l->hi[l->n++] = hi;
	return 0;
}

static void vl_free(struct vma_list *l)
{
	free(l->va);
	free(l->lo);
	free(l->hi);
	memset(l, 0, sizeof(*l));
}

/* maple node types (bits 3..6 of an encoded node) and their slot/pivot counts */
enum { MAPLE_DENSE, MAPLE_LEAF_64, MAPLE_RANGE_64, MAPLE_ARANGE_64 };

struct maple_walk {
	struct vmem *vm;
	struct vma_list *out;
	size_t nodes;
	const char *err;           /* first thing found wrong */
};

/* One node [min, max] of type `type` at `node` (256-byte aligned), whose parent field must lead to `parent`. */
static int maple_node(struct maple_walk *w, uint64_t node, int type, uint64_t min, uint64_t max, uint64_t parent,
		      int depth)
{
	uint64_t n[32];
	int nslots = type == MAPLE_ARANGE_64 ? 10 : 16, npiv = nslots - 1;
	const uint64_t *piv = &n[1], *slot = &n[1 + npiv];
	uint64_t lo = min;

	if (depth > MAPLE_DEPTH || ++w->nodes > MAX_VMAS) {
		w->err = "maple tree deeper or larger than any real one (a cycle?)";
		return -ELOOP;
	}
	if (type != MAPLE_LEAF_64 && type != MAPLE_RANGE_64 && type != MAPLE_ARANGE_64) {
		w->err = "maple node of an unknown type";
		return -EINVAL;
	}
	if (vmem_read(w->vm, node, n, sizeof(n))) {
		w->err = "maple node unreadable";
		return -EFAULT;
	}
	if ((n[0] & ~0xffULL) != (parent & ~0xffULL)) {
		w->err = "maple node's parent is not the node that points to it";
		return -EINVAL;
	}
	for (int i = 0; i < nslots; i++) {
		uint64_t p = i < npiv ? piv[i] : max, e = slot[i];

		if (i > 0 && p == 0)
			break;             /* end of data */
		if (p < lo || p > max) {
			w->err = "maple pivots out of order";
			return -EINVAL;
		}
		if (type == MAPLE_LEAF_64) {
			/* a VMA pointer, NULL for a gap; internal entries (bits 0..1 set) are none of ours */
			if (e && !(e & 3)) {
				if (!x86_kernel_ptr(e, true)) {
					w->err = "maple leaf entry not a kernel pointer";
					return -EINVAL;
				}
				if (w->out->n >= MAX_VMAS) {
					w->err = "more mappings than any mm holds";
					return -E2BIG;
				}
				if (vl_push(w->out, e, lo, p))
					return -ENOMEM;
			}
		} else if (e) {
			int err = maple_node(w, e & ~0xffULL, (int)(e >> 3) & 0xf, lo, p, node, depth + 1);

			if (err)
				return err;
		}
		if (p >= max)
			break;
		lo = p + 1;
	}
	return 0;
}

/* The VMAs of a maple tree at tree_va whose ma_root is at root_va (8 bytes in; more where spinlock_t is big:
 * PREEMPT_RT, lock debugging). */
static int maple_walk(struct vmem *vm, uint64_t tree_va, uint64_t root_va, struct vma_list *out, const char **why)
{
	struct maple_walk w = { vm, out, 0, NULL };
	uint64_t root;
	int err;

	if (vmem_read_u64(vm, root_va, &root)) {
		*why = "ma_root unreadable";
		return -EFAULT;
	}
	if (!root)
		return 0;   /* no mappings */
	if ((root & 3) != 2 || !x86_kernel_ptr(root & ~0xffULL, true)) {
		*why = "ma_root not a maple node";
		return -EINVAL;
	}
	err = maple_node(&w, root & ~0xffULL, (int)(root >> 3) & 0xf, 0, ~0ULL, tree_va | 1, 0);
	if (err)
		*why = w.err ? w.err : "out of memory";
	return err;
}

/* The VMAs of an mm_struct's list: first at `first`, next at +next, each pointing back at mm at +vm_mm, in
 * address order when start/end are known (start_off >= 0). */
static int list_walk(struct vmem *vm, uint64_t mm, uint64_t first, int64_t next, int64_t vm_mm, int64_t start_off,
		     int64_t end_off, struct vma_list *out, const char **why)
{
	uint64_t v = first, prev_end = 0;

	while (v) {
		uint64_t back, s, e;

		if (out->n >= MAX_VMAS) {
			*why = "VMA list longer than any mm holds (a loop?)";
			return -ELOOP;
		}
		if (!x86_kernel_ptr(v, true) || vmem_read_u64(vm, v + (uint64_t)vm_mm, &back) || back != mm) {
			*why = "VMA on the list does not belong to the mm";
			return -EINVAL;
		}
		if (start_off >= 0) {
			if (vmem_read_u64(vm, v + (uint64_t)start_off, &s) || vmem_read_u64(vm, v + (uint64_t)end_off, &e) ||
			    s >= e || s < prev_end) {
				*why = "VMA list not in address order (a loop or a lie)";
				return -EINVAL;
			}
			prev_end = e;
		}
		if (vl_push(out, v, 0, 0))
			return -ENOMEM;
		if (vmem_read_u64(vm, v + (uint64_t)next, &v)) {
			*why = "vm_next unreadable";
			return -EFAULT;
		}
	}
	return 0;
}

/* ---- discovery ---- */

struct mproc {
	const struct guest_task *t;
	uint64_t *w;               /* mm_struct's first MM_WINDOW bytes */
	struct vma_list vmas;
	uint64_t *vw;              /* VMA_WINDOW bytes of each VMA */
};

static uint64_t vword(const struct mproc *p, size_t i, int64_t off) { return p->vw[i * (VMA_WINDOW / 8) + off / 8]; }
static uint32_t mword32(const struct mproc *p, int64_t off)
{
	uint32_t v;

	memcpy(&v, (const uint8_t *)p->w + off, 4);
	return v;
}

/* A process left out of the sample: caught in exec or exit, its mm did not fit what the others show. */
static void drop_proc(struct mproc *p, size_t *np, size_t k)
{
	free(p[k].w);
	free(p[k].vw);
	vl_free(&p[k].vmas);
	p[k] = p[--*np];
	memset(&p[*np], 0, sizeof(p[*np]));
}

/* maple: a slot of every mm holding a maple node whose parent is that mm's tree, which begins up to 64 bytes
 * before the slot (ma_lock, ma_flags, then ma_root: 8 bytes in, 40 with PREEMPT_RT's spinlock_t); one mm in
 * eight may dissent (fits_but_few: a process in exec or exit, its tree empty or being built) */
static int find_maple_root(struct vmem *kv, struct mproc *p, size_t np, int64_t *root, int64_t *tree)
{
	int nfit = 0;

	for (int64_t s = 8; s < MM_WINDOW; s += 8)
		for (int64_t d = 8; d <= 64 && d <= s; d += 8) {
			size_t fits = 0;
			for (size_t k = 0; k < np; k++) {
				uint64_t e = p[k].w[s / 8], parent;
				int type = (int)(e >> 3) & 0xf;
				fits += (e & 3) == 2 && (type == MAPLE_LEAF_64 || type == MAPLE_ARANGE_64) &&
					x86_kernel_ptr(e & ~0xffULL, true) && !vmem_read_u64(kv, e & ~0xffULL, &parent) &&
					parent == ((p[k].t->mm + (uint64_t)(s - d)) | 1);
			}
			if (fits_but_few(fits, np) && nfit++ == 0) {
				*root = s;
				*tree = s - d;
			}
		}
	return nfit;
}

/* list: mm->mmap at s, vm_next at n, vm_mm at m, as long as a u32 of every mm (map_count at c) says, >= 3;
 * of those that fit, the longest (mm_rb's right spine seen as a list is a shorter one). out[3] is that u32's
 * offset, or -1 when several fit (every mm with as many VMAs as the others: a guest of identical processes) */
static int find_list_root(struct vmem *kv, struct mproc *p, size_t np, int64_t out[4])
{
	int nfit = 0;
	size_t best = 0;
	struct vma_list l = { 0 };
	size_t *len = calloc(np, sizeof(*len));

	for (int64_t s = 0; len && s < MM_WINDOW; s += 8) {
		uint64_t v0 = p[0].w[s / 8], win[VMA_WINDOW / 8];

		if (!x86_kernel_ptr(v0, true) || vmem_read(kv, v0, win, sizeof(win)))
			continue;
		for (int64_t m = 0; m < VMA_WINDOW; m += 8) {
			if (win[m / 8] != p[0].t->mm)
				continue;
			for (int64_t n = 0; n < VMA_WINDOW; n += 8) {
				size_t walked = 0;

				if (n == m)
					continue;
				for (size_t k = 0; k < np; k++) {   /* len 0: a list that does not walk (fits_but_few) */
					const char *why;
					l.n = 0;
					len[k] = !list_walk(kv, p[k].t->mm, p[k].w[s / 8], n, m, -1, -1, &l, &why) && l.n >= 3 ? l.n : 0;
					walked += len[k] > 0;
				}
				if (!len[0] || !fits_but_few(walked, np))
					continue;
				p_dbg("VMA list? mmap %lld, vm_next %lld, vm_mm %lld: %zu VMAs on the first mm", (long long)s,
				      (long long)n, (long long)m, len[0]);
				size_t total = 0;
				for (size_t k = 0; k < np; k++)
					total += len[k];
				int64_t c1 = -1;
				int ncount = 0;
				for (int64_t c = 0; total >= best && c < MM_WINDOW; c += 4) {
					bool count = true;
					for (size_t k = 0; k < np && count; k++)
						count = !len[k] || mword32(&p[k], c) == len[k];
					if (count && ncount++ == 0)
						c1 = c;
				}
				if (!ncount)
					continue;
				if (total > best) {
					nfit = 0;
					best = total;
				}
				if (nfit++ == 0) {
					out[0] = s;
					out[1] = n;
					out[2] = m;
					out[3] = ncount == 1 ? c1 : -1;
				}
			}
		}
	}
	free(len);
	vl_free(&l);
	return nfit;
}

/* The u32 of every mm equal to its number of VMAs: map_count. */
static int64_t find_map_count(struct mproc *p, size_t np)
{
	int64_t c = -1;
	int nfit = 0;

	for (int64_t o = 0; o < MM_WINDOW; o += 4) {
		bool all = true;
		for (size_t k = 0; k < np && all; k++)
			all = mword32(&p[k], o) == p[k].vmas.n;
		if (all && nfit++ == 0)
			c = o;
	}
	return nfit == 1 ? c : -1;
}

/* vm_start/vm_end on a list, for process k (vm_start at s, vm_end at e): page-aligned user addresses, start < end,
 * each VMA after the one before */
static bool list_bounds_fit(const struct mproc *p, size_t k, uint64_t utop, int64_t s, int64_t e)
{
	uint64_t prev = 0;

	for (size_t i = 0; i < p[k].vmas.n; i++) {
		uint64_t S = vword(&p[k], i, s), E = vword(&p[k], i, e);

		if (!user_addr(E, utop) || (S % PAGE) || (E % PAGE) || S >= E || S < prev)
			return false;
		prev = E;
	}
	return true;
}

/* vm_start/vm_end on a list: on every process but one in eight (fits_but_few) */
static int find_list_bounds(struct mproc *p, size_t np, uint64_t utop, int64_t *a, int64_t *b)
{
	int nfit = 0;

	for (int64_t s = 0; s < VMA_WINDOW; s += 8)
		for (int64_t e = 0; e < VMA_WINDOW; e += 8) {
			size_t fits = 0;

			for (size_t k = 0; k < np && s != e; k++)
				fits += list_bounds_fit(p, k, utop, s, e);
			if (fits_but_few(fits, np) && nfit++ == 0) {
				*a = s;
				*b = e;
			}
		}
	return nfit;
}

/* vm_start/vm_end on a maple tree, for process k: the member at o equals each leaf range's start (end: hi + 1) */
static bool maple_bound_fit(const struct mproc *p, size_t k, int64_t o, bool end)
{
	for (size_t i = 0; i < p[k].vmas.n; i++)
		if (vword(&p[k], i, o) != (end ? p[k].vmas.hi[i] + 1 : p[k].vmas.lo[i]))
			return false;
	return true;
}

/* vm_start/vm_end on a tree: on every process but one in eight (fits_but_few: one changing its maps while read) */
static int find_maple_bounds(struct mproc *p, size_t np, int64_t *a, int64_t *b)
{
	int na = 0, nb = 0;

	for (int64_t o = 0; o < VMA_WINDOW; o += 8) {
		size_t sa = 0, sb = 0;
		for (size_t k = 0; k < np; k++) {
			sa += maple_bound_fit(p, k, o, false);
			sb += maple_bound_fit(p, k, o, true);
		}
		if (fits_but_few(sa, np) && na++ == 0)
			*a = o;
		if (fits_but_few(sb, np) && nb++ == 0)
			*b = o;
	}
	return na == 1 && nb == 1 ? 1 : na && nb ? 2 : 0;
}

static int64_t find_vm_mm(struct mproc *p, size_t np)
{
	int64_t m = -1;
	int nfit = 0;

	for (int64_t o = 0; o < VMA_WINDOW; o += 8) {
		bool all = true;
		for (size_t k = 0; k < np && all; k++)
			for (size_t i = 0; i < p[k].vmas.n && all; i++)
				all = vword(&p[k], i, o) == p[k].t->mm;
		if (all && nfit++ == 0)
			m = o;
	}
	return nfit == 1 ? m : -1;
}

/* VM_READ|WRITE|EXEC (bits 0..2) within VM_MAYREAD|MAYWRITE|MAYEXEC (bits 4..6) on every VMA of process k; one
 * VM_GROWSDOWN (0x100) mapping, one executable and one writable */
static bool vm_flags_fit(const struct mproc *p, size_t k, int64_t o)
{
	int down = 0, x = 0, wr = 0;

	for (size_t i = 0; i < p[k].vmas.n; i++) {
		uint64_t v = vword(&p[k], i, o);

		if (v >= (1ULL << 48) || ((v & 7) & ~((v >> 4) & 7)))
			return false;
		down += !!(v & 0x100);
		x += !!(v & 4);
		wr += !!(v & 2);
	}
	return down == 1 && x && wr;
}

/* vm_flags: fitting every process but one in eight (fits_but_few: a process in exec has a new mm whose stack and
 * text are not mapped yet) */
static int find_vm_flags(struct mproc *p, size_t np, int64_t *f)
{
	int nfit = 0;

	for (int64_t o = 0; o < VMA_WINDOW; o += 8) {
		size_t fits = 0;

		for (size_t k = 0; k < np; k++)
			fits += vm_flags_fit(p, k, o);
		if (fits_but_few(fits, np) && nfit++ == 0)
			*f = o;
		if (fits * 2 > np)   /* near misses say which process dissents and why, at -vv */
			for (size_t k = 0; k < np; k++)
				if (!vm_flags_fit(p, k, o))
					p_dbg("maps: vm_flags %lld fits %zu of %zu; not pid %d (%zu VMAs)", (long long)o, fits,
					      np, p[k].t->pid, p[k].vmas.n);
	}
	return nfit;
}

/* vm_file at o on process k: NULL or a kernel pointer on every VMA, NULL on some (the stack), not on all */
static bool files_fit(const struct mproc *p, size_t k, int64_t o)
{
	size_t nul = 0;

	for (size_t i = 0; i < p[k].vmas.n; i++) {
		uint64_t v = vword(&p[k], i, o);

		if (v && !x86_kernel_ptr(v, true))
			return false;
		nul += !v;
	}
	return nul && nul < p[k].vmas.n;
}

/* exe_file at e on process k: the vm_file (at o) of one of its VMAs, and not a VMA (mm->mmap is vm_prev of the
 * second VMA) */
static bool exe_fit(const struct mproc *p, size_t k, int64_t o, int64_t e)
{
	uint64_t x = p[k].w[e / 8];
	bool hit = false;

	for (size_t i = 0; i < p[k].vmas.n && !hit; i++)
		hit = x86_kernel_ptr(x, true) && vword(&p[k], i, o) == x;
	for (size_t i = 0; i < p[k].vmas.n && hit; i++)
		if (p[k].vmas.va[i] == x)
			return false;
	return hit;
}

/* vm_file (VMA) and exe_file (mm): every mm's member equals the vm_file of one of its VMAs, which is NULL or
 * a kernel pointer on every VMA and NULL on some (the stack); one mm in eight may dissent (fits_but_few: a
 * process in exec has exe_file set before the ELF loader maps the file) */
static int find_files(struct mproc *p, size_t np, int64_t *vf, int64_t *ef)
{
	int nfit = 0;

	for (int64_t o = 0; o < VMA_WINDOW; o += 8) {
		size_t fits = 0;

		for (size_t k = 0; k < np; k++)
			fits += files_fit(p, k, o);
		for (int64_t e = 0; fits_but_few(fits, np) && e < MM_WINDOW; e += 8) {
			size_t both = 0;

			for (size_t k = 0; k < np; k++)
				both += files_fit(p, k, o) && exe_fit(p, k, o, e);
			if (fits_but_few(both, np) && nfit++ == 0) {
				*vf = o;
				*ef = e;
			}
		}
	}
	return nfit;
}

/* vm_pgoff: vm_start >> 12 on (nearly) every anonymous mapping, a plausible page number on every mapping;
 * special mappings ([vdso], [vvar]: VM_DONTEXPAND) are not anonymous memory */
#define VM_DONTEXPAND 0x40000
#define VM_GROWSDOWN  0x100   /* the stack: execve moves it without changing vm_pgoff */
static int find_vm_pgoff(struct mproc *p, size_t np, int64_t start, int64_t file, int64_t flags, int64_t *pg)
{
	int nfit = 0;

	for (int64_t o = 0; o < VMA_WINDOW; o += 8) {
		size_t anon = 0, same = 0;
		bool all = o != start && o != file;
		for (size_t k = 0; k < np && all; k++)
			for (size_t i = 0; i < p[k].vmas.n && all; i++) {
				uint64_t v = vword(&p[k], i, o);
				all = v < (1ULL << 45);
				if (!vword(&p[k], i, file) && !(vword(&p[k], i, flags) & (VM_DONTEXPAND | VM_GROWSDOWN))) {
					anon++;
					same += v == vword(&p[k], i, start) >> 12;
				}
			}
		if (all && anon && same * 10 >= anon * 9 && nfit++ == 0)
			*pg = o;
	}
	return nfit;
}

/* start_stack: in the stack mapping, holding argc with argv[0] (== arg_start) after it; on every mm but one in
 * eight (fits_but_few: a process caught in exec shows a new mm's members before its stack is written) */
static int find_start_stack(struct physmem *pm, const struct discovery_result *res, struct mproc *p, size_t np,
			    int64_t *ss)
{
	struct vmem *uv = malloc(sizeof(*uv));
	int nfit = 0;

	if (!uv)
		return 0;
	for (int64_t o = 0; o < MM_WINDOW; o += 8) {
		size_t fits = 0;

		for (size_t k = 0; k < np && o != res->mm_args[0].offset; k++) {
			uint64_t v = p[k].w[o / 8], argc_argv0[2];
			uint64_t a = p[k].w[res->mm_args[0].offset / 8];
			bool ok = user_addr(v, guest_user_top(res)) && v < a && a - v < (1 << 20);

			if (ok) {
				process_vmem_init(uv, pm, res, p[k].t->pgd_pa);
				ok = !vmem_read(uv, v, argc_argv0, sizeof(argc_argv0)) && argc_argv0[0] >= 1 &&
				     argc_argv0[0] < (1 << 20) && argc_argv0[1] == a;
			}
			fits += ok;
		}
		if (fits_but_few(fits, np) && nfit++ == 0)
			*ss = o;
	}
	free(uv);
	return nfit;
}

/* [start_brk, brk) rounded to pages is anonymous memory in contiguous VMAs (one, or more where the heap was split:
 * 7.2's busybox shells show a one-page VMA at its start, both named [heap] by the kernel) */
static bool heap_fit(const struct mproc *p, int64_t start, int64_t end, int64_t file, uint64_t S, uint64_t B)
{
	uint64_t lo = (S + PAGE - 1) & ~(PAGE - 1), hi = (B + PAGE - 1) & ~(PAGE - 1);

	for (size_t i = 0; i < p->vmas.n; i++) {
		if (vword(p, i, start) != lo)
			continue;
		for (size_t j = i; j < p->vmas.n && !vword(p, j, file); j++) {
			if (j > i && vword(p, j, start) != vword(p, j - 1, end))
				return false;   /* a gap: not one heap */
			if (vword(p, j, end) == hi)
				return true;
		}
		return false;
	}
	return false;
}

/* start_brk/brk: start_brk <= brk, both user addresses, and where brk moved (on one process at least: equal
 * members such as arg_end/env_start fit otherwise) the heap's mappings are [start_brk, brk) rounded to pages.
 * More than one pair fitting (start_code/end_code with the text of a program without a file), the one in
 * declaration order (brk right after start_brk) if only one is. */
static int find_brk(struct mproc *p, size_t np, uint64_t utop, int64_t start, int64_t end, int64_t file, int64_t *sb,
		    int64_t *b)
{
	int nfit = 0, nadj = 0;
	int64_t fit[2] = { -1, -1 }, adj[2] = { -1, -1 };

	for (int64_t o = 0; o + 8 < MM_WINDOW; o += 8)
		for (int64_t q = 0; q < MM_WINDOW; q += 8) {
			size_t moved = 0, fits = 0;
			if (q == o)
				continue;
			/* a process in brk() may show its heap VMA and brk from different moments: fits_but_few */
			for (size_t k = 0; k < np; k++) {
				uint64_t S = p[k].w[o / 8], B = p[k].w[q / 8];
				bool ok = user_addr(S, utop) && S <= B && B - S < (1ULL << 40);
				if (ok && B > S) {
					ok = heap_fit(&p[k], start, end, file, S, B);
					moved += ok;
				}
				fits += ok;
			}
			if (!fits_but_few(fits, np) || !moved)
				continue;
			p_dbg("brk? start_brk %lld, brk %lld (moved on %zu, %zu of %zu fit)", (long long)o, (long long)q, moved,
			      fits, np);
			if (nfit++ == 0) {
				fit[0] = o;
				fit[1] = q;
			}
			if (q == o + 8 && nadj++ == 0) {
				adj[0] = o;
				adj[1] = q;
			}
		}
	if (nfit > 1 && nadj == 1) {
		fit[0] = adj[0];
		fit[1] = adj[1];
		nfit = 1;
	}
	*sb = fit[0];
	*b = fit[1];
	return nfit;
}

/* vm_private_data: on every process some VMA's member points at a struct whose first member points at a
 * name in brackets ("[vdso]"): a special mapping */
static bool special_name(struct vmem *kv, uint64_t v, char *name, size_t cap)
{
	/* the name is a string: any alignment */
	uint64_t s;
	char b[32];

	if (!x86_kernel_ptr(v, true) || vmem_read_u64(kv, v, &s) || (s >> 56) != 0xff ||
	    vmem_read(kv, s, b, sizeof(b)))
		return false;
	b[sizeof(b) - 1] = 0;
	size_t n = strlen(b);
	if (n < 3 || b[0] != '[' || b[n - 1] != ']')
		return false;
	for (size_t i = 1; i + 1 < n; i++)
		if (b[i] < 0x21 || b[i] > 0x7e)
			return false;
	if (name)
		snprintf(name, cap, "%s", b);
	return true;
}

static bool has_special_mapping(struct vmem *kv, const struct mproc *p, int64_t file, int64_t o)
{
	for (size_t i = 0; i < p->vmas.n; i++)
		if (!vword(p, i, file) && special_name(kv, vword(p, i, o), NULL, 0))
			return true;
	return false;
}

static int find_vm_private(struct vmem *kv, struct mproc *p, size_t np, int64_t file, int64_t *pd)
{
	size_t best = 0;
	int nbest = 0;

	/* the one member that leads to a bracketed name on every mm; only when none does, the one on the most of
	 * all but one in eight (a process in exec between mapping its program and its vdso has none yet: 7.2 arm64
	 * once lost [vdso]/[vvar] so; on the randstructed 6.1 another member fits 17 of 19 mms in some boots) */
	for (int64_t o = 0; o < VMA_WINDOW; o += 8) {
		size_t fits = 0;
		for (size_t k = 0; k < np && o != file; k++)
			fits += has_special_mapping(kv, &p[k], file, o);
		if (!fits_but_few(fits, np) || fits < best)
			continue;
		for (size_t k = 0; log_verbose && k < np && fits < np; k++)   /* -vv: who has none (in exec?) */
			if (!has_special_mapping(kv, &p[k], file, o))
				p_dbg("maps: vm_private_data %lld? pid %d (%zu VMAs) has no special mapping", (long long)o,
				      p[k].t->pid, p[k].vmas.n);
		nbest = fits > best ? 1 : nbest + 1;
		if (fits > best)
			*pd = o;
		best = fits;
	}
	return nbest;
}

static void undetermined(struct discovery_result *res, int from, int to, const char *why)
{
	for (int k = from; k < to; k++)
		if (!res->maps[k].found)
			snprintf(res->maps[k].how, sizeof(res->maps[k].how), "undetermined: %.80s", why);
}

/* 1 when the task of p exec'd or exited since it was listed (its mm swapped or gone), 0, or -ENOMEM */
static int task_changed(struct physmem *pm, const struct discovery_result *res, const struct mproc *p)
{
	struct guest_task now;
	int err = guest_task_at(pm, res, p->t->addr, &now);

	if (err == -ENOMEM)
		return err;
	return err || now.pid != p->t->pid || now.mm != p->t->mm;
}

/* After process p's walk (walk: its result), read its VMAs' first bytes at once and check that it is still what
 * the walk saw. 1 when it is no evidence either way — it exec'd or exited meanwhile, holds fewer than 3 mappings
 * (in exec or exit: its tree being built or torn down) or a VMA is unreadable — so that the searches below
 * neither count it as fitting nor against a fit; -1 when its walk failed on a process still there (a dissent);
 * 0, or -ENOMEM. */
static int read_vma_windows(struct physmem *pm, const struct discovery_result *res, struct vmem *kv, struct mproc *p,
			    int walk)
{
	if (walk == -ENOMEM)
		return walk;
	if (walk) {
		int c = task_changed(pm, res, p);
		return c ? c : -1;
	}
	if (p->vmas.n < 3)
		return 1;
	if (!(p->vw = malloc(p->vmas.n * VMA_WINDOW)))
		return -ENOMEM;
	for (size_t i = 0; i < p->vmas.n; i++)
		if (vmem_read(kv, p->vmas.va[i], &p->vw[i * (VMA_WINDOW / 8)], VMA_WINDOW))
			return 1;
	return task_changed(pm, res, p);
}

int discover_mm_maps(struct physmem *pm, struct discovery_result *res, const struct guest_task *tasks, size_t n)
{
	struct mproc *p = calloc(MAX_PROCS, sizeof(*p));
	struct vmem *kv = kernel_vmem_new(pm, res);
	size_t np = 0;
	int64_t a = -1, b = -1, o[4] = { -1, -1, -1, -1 };
	int err = -ENOENT;
	const char *why = "no process to read";

	if (res->paging32) {   /* 4-byte pointers: not ported yet (issue 16) */
		for (int k = 0; k < MAPS_NR; k++)
			set_undetermined(&res->maps[k], "not searched on 32-bit guests yet");
		free(p);
		free(kv);
		return -ENOTSUP;
	}

	for (int k = 0; k < MAPS_NR; k++) {
		res->maps[k].found = res->maps[k].tied = false;
		res->maps[k].offset = -1;
	}
	res->maple = false;
	res->maple_root = 0;
	if (!p || !kv) {
		free(p);
		free(kv);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n && np < MAX_PROCS; i++) {
		bool dup = false;
		if (!tasks[i].mm || !tasks[i].pgd_pa || tasks[i].pid != tasks[i].tgid || tasks[i].kernel_thread)
			continue;
		for (size_t k = 0; k < np && !dup; k++)
			dup = p[k].t->mm == tasks[i].mm;
		if (dup)
			continue;
		p[np].t = &tasks[i];
		p[np].w = malloc(MM_WINDOW);
		if (!p[np].w)
			break;
		if (vmem_read(kv, tasks[i].mm, p[np].w, MM_WINDOW)) {
			free(p[np].w);
			continue;
		}
		np++;
	}
	if (!np)
		goto out;

	/* where the VMAs hang: a maple tree, else a list */
	int64_t root = -1, tree = -1;
	int nm = find_maple_root(kv, p, np, &root, &tree);
	p_dbg("maps: %zu processes, %d maple roots fit", np, nm);
	why = "no maple tree or VMA list found in mm_struct";
	if (nm > 1)
		goto out;
	if (nm == 0 && find_list_root(kv, p, np, o) != 1)
		goto out;
	res->maple = nm == 1;
	size_t asked = np;
	for (size_t k = 0; k < np;) {   /* each process's VMAs: walked, then read (read_vma_windows) */
		int w = res->maple ? maple_walk(kv, p[k].t->mm + (uint64_t)tree, p[k].t->mm + (uint64_t)root, &p[k].vmas, &why)
				   : list_walk(kv, p[k].t->mm, p[k].w[o[0] / 8], o[1], o[2], -1, -1, &p[k].vmas, &why);
		int r = read_vma_windows(pm, res, kv, &p[k], w);
		if (r == -ENOMEM) {
			why = "out of memory";
			goto out;
		}
		asked -= r == 1;
		if (r)
			drop_proc(p, &np, k);
		else
			k++;
	}
	if (!fits_but_few(np, asked))
		goto out;
	if (res->maple) {
		set_found(&res->maps[MM_MAP_ROOT], tree, "maple tree: its root node's parent is the tree (%zu mms)", np);
		res->maple_root = (uint32_t)(root - tree);
		int64_t c = find_map_count(p, np);
		if (c >= 0)
			set_found(&res->maps[MM_MAP_COUNT], c, "the number of VMAs in the tree on every mm");
	} else {
		set_found(&res->maps[MM_MAP_ROOT], o[0], "VMA list: each VMA's vm_mm is the mm (%zu mms)", np);
		set_found(&res->maps[VMA_NEXT], o[1], "the list's link, as long as map_count on every mm");
		set_found(&res->maps[VMA_MM], o[2], "the mm on every VMA of its list");
		if (o[3] >= 0)
			set_found(&res->maps[MM_MAP_COUNT], o[3], "the list's length on every mm");
		else   /* the list is still the longest that fits: the count only confirmed it */
			set_undetermined(&res->maps[MM_MAP_COUNT], "several members equal the VMA count on every mm");
	}
	why = "vm_start/vm_end: no single pair fits";
	if ((res->maple ? find_maple_bounds(p, np, &a, &b) : find_list_bounds(p, np, guest_user_top(res), &a, &b)) != 1)
		goto out;
	set_found(&res->maps[VMA_START], a, res->maple ? "the start of its maple range" : "page-aligned, in list order");
	set_found(&res->maps[VMA_END], b, res->maple ? "the end of its maple range + 1" : "page-aligned, after vm_start");
	for (size_t k = 0; k < np;)   /* the rest is searched on the processes that fit them */
		if (res->maple ? !maple_bound_fit(p, k, a, false) || !maple_bound_fit(p, k, b, true)
			       : !list_bounds_fit(p, k, guest_user_top(res), a, b))
			drop_proc(p, &np, k);
		else
			k++;
	if (res->maple) {
		int64_t m = find_vm_mm(p, np);
		if (m >= 0)
			set_found(&res->maps[VMA_MM], m, "the mm on every VMA of its tree");
	}
	int64_t f = -1, vf = -1, ef = -1, pg = -1;
	why = "vm_flags: no single member fits";
	if (find_vm_flags(p, np, &f) != 1)
		goto out;
	set_found(&res->maps[VMA_FLAGS], f, "permissions within VM_MAY*, one VM_GROWSDOWN per mm");
	for (size_t k = 0; k < np;)   /* the rest is searched on the processes that fit it */
		if (!vm_flags_fit(p, k, f))
			drop_proc(p, &np, k);
		else
			k++;
	err = 0;   /* enough for maps lines; the rest names them */
	if (find_files(p, np, &vf, &ef) == 1) {
		for (size_t k = 0; k < np;)   /* the rest is searched on the processes that fit them */
			if (!files_fit(p, k, vf) || !exe_fit(p, k, vf, ef))
				drop_proc(p, &np, k);
			else
				k++;
		set_found(&res->maps[VMA_FILE], vf, "NULL or a file; equal to mm->exe_file on a mapping of every mm");
		set_found(&res->maps[MM_EXE_FILE], ef, "the vm_file of one of its mappings on every mm (%zu)", np);
		if (find_vm_pgoff(p, np, a, vf, f, &pg) == 1)
			set_found(&res->maps[VMA_PGOFF], pg, "vm_start >> 12 on anonymous mappings");
		int64_t pd = -1;
		if (find_vm_private(kv, p, np, vf, &pd) == 1)
			set_found(&res->maps[VMA_PRIVATE], pd, "a special mapping's name (\"[vdso]\") on every mm");
	}
	int64_t ss = -1, sb = -1, br = -1;
	if (res->mm_args[0].found && find_start_stack(pm, res, p, np, &ss) == 1)
		set_found(&res->maps[MM_START_STACK], ss, "argc then argv[0] == arg_start there, on every mm");
	if (vf >= 0 && find_brk(p, np, guest_user_top(res), a, b, vf, &sb, &br) == 1) {
		set_found(&res->maps[MM_START_BRK], sb, "the [heap] mapping's start where brk moved");
		set_found(&res->maps[MM_BRK], br, "the [heap] mapping's end (page-rounded)");
	}
	why = "no single member fits";
out:
	if (!err)
		discover_paths(pm, res, tasks, n);
	undetermined(res, 0, MAPS_NR, why);
	for (int k = 0; k < MAPS_NR; k++)
		p_dbg("maps: %s %lld: %s", maps_member_names[k], (long long)res->maps[k].offset, res->maps[k].how);
	for (size_t k = 0; k < np; k++) {
		free(p[k].w);
		free(p[k].vw);
		vl_free(&p[k].vmas);
	}
	free(p);
	free(kv);
	return err;
}

/* ---- reading a process's maps ---- */

static bool have(const struct discovery_result *res, enum maps_member m) { return res->maps[m].found; }

static int task_maps_once(struct physmem *pm, const struct discovery_result *res, const struct guest_task *t,
			  struct guest_vma **out, size_t *nout, const char **why)
{
	struct vma_list l = { 0 };
	struct vmem *kv;
	uint64_t w[VMA_WINDOW / 8], mmw[4] = { 0 };
	struct guest_vma *v = NULL;
	int err;

	*out = NULL;
	*nout = 0;
	*why = "memory maps undetermined";
	if (!have(res, MM_MAP_ROOT) || !have(res, VMA_START) || !have(res, VMA_END) || !have(res, VMA_FLAGS) ||
	    (!res->maple && (!have(res, VMA_NEXT) || !have(res, VMA_MM))))
		return -ENOENT;
	*why = "a kernel thread has no memory map";
	if (!t->mm)
		return -ENOENT;
	kv = kernel_vmem_new(pm, res);
	if (!kv)
		return -ENOMEM;
	if (res->maple) {
		err = maple_walk(kv, t->mm + (uint64_t)res->maps[MM_MAP_ROOT].offset,
				 t->mm + (uint64_t)res->maps[MM_MAP_ROOT].offset + res->maple_root, &l, why);
	} else {
		uint64_t first;
		err = vmem_read_u64(kv, t->mm + (uint64_t)res->maps[MM_MAP_ROOT].offset, &first) ? -EFAULT :
		      list_walk(kv, t->mm, first, res->maps[VMA_NEXT].offset, res->maps[VMA_MM].offset,
				res->maps[VMA_START].offset, res->maps[VMA_END].offset, &l, why);
		if (err == -EFAULT && !l.n)
			*why = "mm->mmap unreadable";
	}
	if (err)
		goto out;
	/* mm members naming lines: [heap] and [stack] */
	static const enum maps_member mmm[3] = { MM_START_BRK, MM_BRK, MM_START_STACK };
	for (int k = 0; k < 3; k++)
		if (have(res, mmm[k]) && vmem_read_u64(kv, t->mm + (uint64_t)res->maps[mmm[k]].offset, &mmw[k]))
			mmw[k] = 0;
	v = calloc(l.n ? l.n : 1, sizeof(*v));
	err = -ENOMEM;
	if (!v)
		goto out;
	for (size_t i = 0; i < l.n; i++) {
		err = -EFAULT;
		*why = "a VMA is unreadable";
		if (vmem_read(kv, l.va[i], w, sizeof(w)))
			goto out;
		v[i].start = w[res->maps[VMA_START].offset / 8];
		v[i].end = w[res->maps[VMA_END].offset / 8];
		v[i].flags = w[res->maps[VMA_FLAGS].offset / 8];
		v[i].pgoff = have(res, VMA_PGOFF) ? w[res->maps[VMA_PGOFF].offset / 8] : 0;
		v[i].file = have(res, VMA_FILE) ? w[res->maps[VMA_FILE].offset / 8] : 0;
		*why = "a VMA's range disagrees with the tree or the one before it";
		err = -EINVAL;
		if (v[i].start >= v[i].end || (i && v[i].start < v[i - 1].end) ||
		    (res->maple && (v[i].start != l.lo[i] || v[i].end - 1 != l.hi[i])))
			goto out;
		if (!v[i].file && have(res, VMA_PRIVATE))
			special_name(kv, w[res->maps[VMA_PRIVATE].offset / 8], v[i].name, sizeof(v[i].name));
		if (!v[i].file && !v[i].name[0] && mmw[1] && v[i].start <= mmw[1] && v[i].end >= mmw[0])
			snprintf(v[i].name, sizeof(v[i].name), "[heap]");
		if (!v[i].file && !v[i].name[0] && mmw[2] && v[i].start <= mmw[2] && v[i].end >= mmw[2])
			snprintf(v[i].name, sizeof(v[i].name), "[stack]");
	}
	*out = v;
	*nout = l.n;
	v = NULL;
	err = 0;
out:
	free(v);
	vl_free(&l);
	free(kv);
	return err;
}

/* A running process changes its tree while it is read (the kernel's own readers retry under RCU): a read that
 * found the tree or a VMA inconsistent is done again, a bounded number of times. */
#define MAPS_READ_TRIES 4

int guest_task_maps(struct physmem *pm, const struct discovery_result *res, const struct guest_task *t,
		    struct guest_vma **out, size_t *nout, const char **why)
{
	int err = -EINVAL;

	for (int i = 0; i < MAPS_READ_TRIES && (err == -EINVAL || err == -EFAULT); i++)
		err = task_maps_once(pm, res, t, out, nout, why);
	return err;
}

int guest_task_exe_file(struct physmem *pm, const struct discovery_result *res, const struct guest_task *t,
			uint64_t *file)
{
	struct vmem *kv;
	int err;

	*file = 0;
	if (!have(res, MM_EXE_FILE) || !t->mm)
		return -ENOENT;
	kv = kernel_vmem_new(pm, res);
	if (!kv)
		return -ENOMEM;
	err = vmem_read_u64(kv, t->mm + (uint64_t)res->maps[MM_EXE_FILE].offset, file) ? -EFAULT : 0;
	free(kv);
	if (!err && *file && !x86_kernel_ptr(*file, true))
		err = -EINVAL;
	return err;
}
