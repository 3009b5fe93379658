/*
 * Command lines without a profile (issue 14): mm_struct's arg_start, arg_end, env_start and env_end, found on
 * the listed processes by what they hold, in any member order (RANDSTRUCT shuffles mm_struct too):
 *   - arg_end == env_start on every process (the kernel copies the environment right after the arguments);
 *   - [arg_start, arg_end) in the process's own address space is NUL-terminated strings, the first of which
 *     names the program comm was taken from (its basename's first 15 bytes are comm, for ordinary programs);
 *   - [env_start, env_end) is NUL-terminated KEY=VALUE strings (saved_auxv's AT_EXECFN points at env_end too:
 *     the entry after the tag 31 is not taken for it).
 * Then guest_task_cmdline reads a process's argv through its page tables, bounded.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "common/log.h"
#include "discovery/discover.h"
#include "discovery/internal.h"   /* set_undetermined */

#define ARGS_WINDOW 2048          /* the members lie in mm_struct's first 2 KiB (0x100..0x200 in known kernels) */
#define ARGS_MAX    (256 << 10)   /* longest argv or environment believed (Linux's ARG_MAX is 128 KiB..) */
#define MAX_PROCS   64            /* processes checked */

/* A user-space address: below the kernel's half (a 32-bit guest's: below PAGE_OFFSET) */
static bool user_addr(uint64_t v, const struct discovery_result *r)
{
	if (r->paging32)
		return v && v < r->page_offset_base;
	return v && v < guest_user_top(r);
}

/* A process to read: its task and its address space (a vmem through its own page tables, made once). */
struct proc {
	const struct guest_task *t;
	struct vmem *vm;
	uint64_t *w;   /* its mm_struct's first ARGS_WINDOW bytes */
	unsigned psz;  /* the guest's pointer and long size */
};

/* the pointer-sized member at byte offset off of a process's window */
static uint64_t W(const struct proc *p, int64_t off)
{
	uint64_t v = 0;

	memcpy(&v, (const uint8_t *)p->w + off, p->psz);
	return v;
}

/* the first string of [a, a+len): does its basename begin with comm? */
static bool argv0_names(struct proc *p, uint64_t a, uint64_t len)
{
	char s[256];
	size_t n = len < sizeof(s) ? (size_t)len : sizeof(s);

	if (!n || vmem_read(p->vm, a, s, n))
		return false;
	s[n - 1] = 0;
	const char *base = strrchr(s, '/') ? strrchr(s, '/') + 1 : s;
	return p->t->comm[0] && !strncmp(base, p->t->comm, strlen(p->t->comm));
}

/* [a, a+len) ends with a NUL and (env) every string in it holds a '=' */
static bool strings_ok(struct proc *p, uint64_t a, uint64_t len, bool env)
{
	char s[4096];
	size_t n = len < sizeof(s) ? (size_t)len : sizeof(s);
	bool eq = false;

	if (!len || len > ARGS_MAX || vmem_read(p->vm, a, s, n))
		return false;
	if (n == len && s[n - 1])
		return false;
	for (size_t i = 0; i < n && env; i++) {
		eq |= s[i] == '=';
		if (!s[i] && !eq)
			return false;
		if (!s[i])
			eq = false;
	}
	return true;
}

const char *const mm_args_names[4] = { "arg_start", "arg_end", "env_start", "env_end" };

int discover_mm_args(struct physmem *pm, struct discovery_result *res, const struct guest_task *tasks, size_t n)
{
	struct proc p[MAX_PROCS];
	size_t np = 0, nw = 0;
	int found = -ENOENT;
	struct vmem *kvm = kernel_vmem_new(pm, res);

	const unsigned psz = guest_ptr_size(res);
	for (int k = 0; k < 4; k++) {
		res->mm_args[k].found = false;
		res->mm_args[k].offset = -1;
		snprintf(res->mm_args[k].how, sizeof(res->mm_args[k].how), "undetermined: no process to read");
	}
	if (!kvm)
		return -ENOMEM;
	/* leaders with an address space and a page-table root, each mm once, whose mm_struct reads */
	for (size_t i = 0; i < n && np < MAX_PROCS; i++) {
		bool dup = false;
		if (!tasks[i].mm || !tasks[i].pgd_pa || tasks[i].pid != tasks[i].tgid)
			continue;
		for (size_t k = 0; k < np && !dup; k++)
			dup = p[k].t->mm == tasks[i].mm;
		if (dup)
			continue;
		p[np] = (struct proc){ &tasks[i], malloc(sizeof(struct vmem)), calloc(ARGS_WINDOW / 8, 8), psz };
		if (!p[np].vm || !p[np].w || vmem_read(kvm, tasks[i].mm, p[np].w, ARGS_WINDOW)) {
			free(p[np].vm);
			free(p[np].w);
			continue;
		}
		process_vmem_init(p[np].vm, pm, res, tasks[i].pgd_pa);
		np++;
	}
	free(kvm);
	nw = np;
	if (!nw)
		goto out;

	/* arg_end/env_start: two members equal (a user address) on every process; then arg_start below and
	 * env_end above, whose spans read as argv (argv[0] names comm on most) and as KEY=VALUE strings */
	int64_t best[4] = { -1, -1, -1, -1 };
	int nbest = 0;
	for (int64_t e = 0; e < ARGS_WINDOW; e += psz) {
		for (int64_t s = e + psz; s < ARGS_WINDOW; s += psz) {   /* the pair unordered: e below s */
			/* a process in the middle of an exec has a new mm whose arguments are not set up yet (both
			 * members 0): it says nothing either way; the others must agree, and be at least half */
			bool use[MAX_PROCS];
			size_t nuse = 0, asked = 0;
			for (size_t k = 0; k < nw; k++) {
				bool says = W(&p[k], e) || W(&p[k], s);
				use[k] = says && W(&p[k], e) == W(&p[k], s) && user_addr(W(&p[k], e), res);
				asked += says;
				nuse += use[k];
			}
			if (!fits_but_few(nuse, asked) || nuse * 2 < nw)
				continue;
			for (int64_t a = 0; a < ARGS_WINDOW; a += psz) {
				size_t named = 0, ok = 0;
				if (a == e || a == s)
					continue;
				for (size_t k = 0; k < nw; k++) {
					uint64_t A = W(&p[k], a), E = W(&p[k], e);
					if (!use[k])
						continue;
					if (!user_addr(A, res) || A >= E || !strings_ok(&p[k], A, E - A, false))
						continue;
					ok++;
					named += argv0_names(&p[k], A, E - A);
				}
				/* programs may rename themselves (prctl): a third naming comm is enough */
				if (!fits_but_few(ok, asked) || !named || named * 3 < nuse)
					continue;
				p_dbg("mm args? arg_start %lld, arg_end %lld: argv on %zu of %zu, %zu naming comm", (long long)a,
				      (long long)e, ok, asked, named);
				for (int64_t d = 0; d < ARGS_WINDOW; d += psz) {
					size_t good = 0;
					if (d == a || d == e || d == s)
						continue;
					/* saved_auxv's AT_EXECFN (tag 31, then the value) points where env_end does: the
					 * executable's name follows the environment on the stack */
					bool auxv = d >= (int64_t)psz;
					for (size_t k = 0; k < nw && auxv; k++)
						auxv = !use[k] || W(&p[k], d - psz) == 31;
					if (auxv)
						continue;
					for (size_t k = 0; k < nw; k++) {
						uint64_t S = W(&p[k], s), D = W(&p[k], d);
						if (!use[k])
							continue;
						if (!user_addr(D, res) || D <= S || !strings_ok(&p[k], S, D - S, true))
							continue;
						good++;
					}
					if (!fits_but_few(good, asked))
						continue;
					p_dbg("mm args fit: arg_start %lld, arg_end/env_start %lld/%lld, env_end %lld", (long long)a,
					      (long long)e, (long long)s, (long long)d);
					if (nbest++ == 0) {
						best[0] = a;
						best[1] = e;
						best[2] = s;
						best[3] = d;
					}
				}
			}
		}
	}
	if (nbest == 1) {
		/* arg_end and env_start hold one value: which offset is which only declaration order says, kept
		 * where the four sit in that order; otherwise both are usable, tied (the value is the same) */
		bool ordered = best[1] == best[0] + psz && best[2] == best[1] + psz && best[3] == best[2] + psz;
		static const char *const how[4] = {
			"argv: NUL-terminated strings up to arg_end, argv[0] naming comm",
			"equal to env_start on every process: the environment follows the arguments",
			"equal to arg_end on every process: the environment follows the arguments",
			"environment: NUL-terminated KEY=VALUE strings from env_start",
		};
		for (int k = 0; k < 4; k++) {
			bool tie = !ordered && (k == 1 || k == 2);
			res->mm_args[k].offset = tie ? best[1] : best[k];
			res->mm_args[k].found = !tie;
			res->mm_args[k].tied = tie;
			res->mm_args[k].confidence = 1.0;
			snprintf(res->mm_args[k].how, sizeof(res->mm_args[k].how), "%s%s (%zu processes)", how[k],
				 tie ? "; interchangeable with the other" : k == 1 || k == 2 ? "; declaration order" : "", nw);
		}
		found = 0;
	} else {
		for (int k = 0; k < 4; k++)
			snprintf(res->mm_args[k].how, sizeof(res->mm_args[k].how), "undetermined: %s",
				 nbest ? "more than one set of members fits" : "no members fit argv and environment");
	}
out:
	for (size_t k = 0; k < np; k++) {
		free(p[k].vm);
		free(p[k].w);
	}
	return found;
}

int guest_task_cmdline(struct physmem *pm, const struct discovery_result *res, const struct guest_task *t, char *buf,
		       size_t cap, size_t *len)
{
	uint64_t a, e;
	struct vmem *vm;
	int err;

	*len = 0;
	if (!res->mm_args[0].found || !offset_usable(&res->mm_args[1]) || !t->mm || !t->pgd_pa || cap < 2)
		return -ENOENT;
	vm = kernel_vmem_new(pm, res);
	if (!vm)
		return -ENOMEM;
	a = e = 0;
	err = vmem_read(vm, t->mm + res->mm_args[0].offset, &a, guest_ptr_size(res)) ||
	      vmem_read(vm, t->mm + res->mm_args[1].offset, &e, guest_ptr_size(res)) ? -EFAULT : 0;
	if (!err && (!user_addr(a, res) || e <= a || e - a > ARGS_MAX))
		err = -EINVAL;   /* not set up yet (exec in progress) or not a command line */
	if (err) {
		free(vm);
		return err;
	}
	size_t n = e - a < cap - 1 ? (size_t)(e - a) : cap - 1;
	process_vmem_init(vm, pm, res, t->pgd_pa);   /* now through the process's own page tables */
	err = vmem_read(vm, a, buf, n);
	free(vm);
	if (err)
		return err;
	buf[n] = 0;
	*len = n;
	return 0;
}
