/* The guest's processes read through discovered offsets: the tasks list, each group's threads. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "discovery/discover.h"

struct walker {
	struct vmem vm;
	const struct discovery_result *r;
	struct guest_task *v;
	size_t n, cap, max;
};

/* a pointer of the guest's size (4 bytes on a 32-bit guest), zero-extended */
static int rd_ptr(struct walker *w, uint64_t va, uint64_t *v)
{
	*v = 0;
	return vmem_read(&w->vm, va, v, guest_ptr_size(w->r));
}

static int64_t off(const struct walker *w, enum task_field f)
{
	return offset_usable(&w->r->task[f]) ? w->r->task[f].offset : -1;
}

static int read_task(struct walker *w, uint64_t t, struct guest_task *g)
{
	uint32_t v32;
	uint64_t p;

	memset(g, 0, sizeof(*g));
	g->addr = t;
	if (vmem_read(&w->vm, t + w->r->task[TF_COMM].offset, g->comm, 16))
		return -EFAULT;
	g->comm[16] = 0;
	for (int i = 0; i < 16 && g->comm[i]; i++)   /* hostile names: keep them printable */
		if ((unsigned char)g->comm[i] < 0x20 || (unsigned char)g->comm[i] > 0x7e)
			g->comm[i] = '?';
	g->pid = off(w, TF_PID) >= 0 && !vmem_read_u32(&w->vm, t + off(w, TF_PID), &v32) ? (int32_t)v32 : -1;
	g->tgid = off(w, TF_TGID) >= 0 && !vmem_read_u32(&w->vm, t + off(w, TF_TGID), &v32) ? (int32_t)v32 : g->pid;
	g->ppid = -1;
	/* ppid as /proc shows it: the parent's tgid */
	int64_t id_off = off(w, TF_TGID) >= 0 ? off(w, TF_TGID) : off(w, TF_PID);
	if (off(w, TF_REAL_PARENT) >= 0 && id_off >= 0 && !rd_ptr(w, t + off(w, TF_REAL_PARENT), &p) &&
	    p && !vmem_read_u32(&w->vm, p + id_off, &v32))
		g->ppid = (int32_t)v32;
	if (off(w, TF_MM) >= 0 && !rd_ptr(w, t + off(w, TF_MM), &p)) {
		g->mm = p;
		g->kernel_thread = !p;
		uint64_t pgd;
		if (p && w->r->mm_pgd.found && !rd_ptr(w, p + w->r->mm_pgd.offset, &pgd))
			vmem_translate(&w->vm, pgd, &g->pgd_pa);
	}
	return 0;
}

int guest_task_at(struct physmem *pm, const struct discovery_result *res, uint64_t addr, struct guest_task *g)
{
	struct walker *w = malloc(sizeof(*w));
	int err;

	if (!w)
		return -ENOMEM;
	memset(w, 0, sizeof(*w));
	w->r = res;
	kernel_vmem_init(&w->vm, pm, res);
	err = read_task(w, addr, g);
	free(w);
	return err;
}

static int push(struct walker *w, uint64_t t)
{
	if (w->n >= w->max)
		return -E2BIG;
	if (w->n == w->cap) {
		size_t cap = w->cap ? w->cap * 2 : 256;
		struct guest_task *p = realloc(w->v, cap * sizeof(*p));
		if (!p)
			return -ENOMEM;
		w->v = p;
		w->cap = cap;
	}
	if (read_task(w, t, &w->v[w->n]))
		return -EFAULT;
	w->n++;
	return 0;
}

int guest_tasks_list(struct physmem *pm, const struct discovery_result *res, const struct discovery_opts *opts,
		     struct guest_task **tasks, size_t *ntasks)
{
	struct walker w = { .r = res, .max = opts && opts->max_tasks ? opts->max_tasks : 65536 };
	int64_t tasks_off = res->task[TF_TASKS].offset;
	uint64_t head, cur, next;
	int err = 0;

	*tasks = NULL;
	*ntasks = 0;
	if (!res->task[TF_TASKS].found || !res->task[TF_COMM].found || !res->init_task)
		return -ENOENT;
	kernel_vmem_init(&w.vm, pm, res);

	head = res->init_task + tasks_off;
	cur = head;
	/* Bounded walk: at most max tasks, each next->prev must point back (a crafted list cannot loop us). */
	for (size_t i = 0; i <= w.max; i++) {
		uint64_t t = cur - tasks_off, back;
		if ((err = push(&w, t)))
			break;
		if (res->thread_ring >= 0 && w.v[w.n - 1].mm) {
			uint64_t th = t + res->thread_ring, tn;
			for (size_t k = 0; k < 4096 && !rd_ptr(&w, th, &tn) && tn != t + res->thread_ring; k++) {
				uint64_t x = tn - res->thread_ring, mm, back;

				/* next->prev must point back: a task being forked still holds a copy of its
				 * parent's ring node, which is not on its own ring (seen: one task pushed 18 times) */
				if (rd_ptr(&w, tn + guest_ptr_size(res), &back) || back != th)
					break;
				th = tn;
				/* skip the signal_struct's list head: not a task of this group */
				if (rd_ptr(&w, x + res->task[TF_MM].offset, &mm) || mm != w.v[w.n - 1].mm)
					continue;
				if (x == t || (err = push(&w, x)))
					break;
			}
			if (err == -EFAULT)
				err = 0;
			if (err)
				break;
		}
		if (rd_ptr(&w, cur, &next) || rd_ptr(&w, next + guest_ptr_size(res), &back) || back != cur) {
			err = -EFAULT;
			break;
		}
		cur = next;
		if (cur == head)
			break;
	}
	if (cur != head && !err)
		err = -E2BIG;
	if (err && pm->source_err)   /* the source went away: say so, not "bad address" */
		err = pm->source_err;
	*tasks = w.v;
	*ntasks = w.n;
	return err;
}

void kernel_vmem_init(struct vmem *vm, struct physmem *pm, const struct discovery_result *res)
{
	if (res->paging32) {   /* lowmem is the direct map, up to its end (vmalloc and highmem above walk) */
		vmem_init_32(vm, pm, res->kernel_cr3, res->paging32);
		vmem_set_direct_map(vm, res->page_offset_base, res->lowmem_size);
		return;
	}
	if (res->arm64) {   /* the linear map's VAs translate without a walk, up to the end of RAM */
		vmem_init_arm64(vm, pm, 0, res->kernel_cr3, 0, res->va_bits1, res->lpa2);
		vmem_set_direct_map(vm, res->page_offset_base, 0);
		return;
	}
	vmem_init(vm, pm, res->kernel_cr3, res->la57);
	vm->page_offset_base = res->page_offset_base;
}

void process_vmem_init(struct vmem *vm, struct physmem *pm, const struct discovery_result *res, uint64_t pgd_pa)
{
	if (res->paging32)
		vmem_init_32(vm, pm, pgd_pa, res->paging32);
	else if (res->arm64)
		vmem_init_arm64(vm, pm, pgd_pa, res->kernel_cr3, res->va_bits0, res->va_bits1, res->lpa2);
	else
		vmem_init(vm, pm, pgd_pa, res->la57);
}

struct vmem *kernel_vmem_new(struct physmem *pm, const struct discovery_result *res)
{
	struct vmem *vm = malloc(sizeof(*vm));

	if (vm)
		kernel_vmem_init(vm, pm, res);
	return vm;
}

uint64_t percpu_base_vm(struct vmem *vm, const struct discovery_result *r, uint64_t hint)
{
	uint64_t pa;

	if (!r->paging32)
		return hint;
	uint64_t back;

	/* lowmem_size may stop short of lowmem's end (the search stops once most of RAM is covered): the page's
	 * lowmem address must map it back */
	if (!hint || vmem_translate(vm, hint, &pa) || r->page_offset_base + pa > 0xffffffffULL ||
	    vmem_translate(vm, r->page_offset_base + pa, &back) || back != pa)
		return 0;
	return r->page_offset_base + pa;
}

uint64_t percpu_base(struct physmem *pm, const struct discovery_result *r, uint64_t hint)
{
	struct vmem *vm;
	uint64_t base;

	if (!r->paging32)
		return hint;
	vm = kernel_vmem_new(pm, r);
	base = vm ? percpu_base_vm(vm, r, hint) : 0;
	free(vm);
	return base;
}
