/*
 * Users without a profile (issue 14): struct cred's uid, gid, euid and egid, found on the listed processes by
 * what they hold.
 *   - The eight ids (uid gid suid sgid euid egid fsuid fsgid) are one block of u32 in declaration order: all 0
 *     on init_task's cred (kernel threads, init), fsuid = euid and fsgid = egid on every process (setfsuid is
 *     rare), and every value a plausible id.
 *   - uid is anchored outside the block: cred->user points to the real uid's user_struct, which holds that uid
 *     (set_user() keeps them together on every setuid) — so the block cannot be shifted onto other fields.
 * A guest where every process is root shows nothing to tell ids from other zero fields: undetermined then.
 * A layout that shuffles struct cred (RANDSTRUCT) keeps no such block: undetermined too (said so).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "arch/x86_64.h"
#include "common/log.h"
#include "discovery/discover.h"

#define CRED_WINDOW 192   /* the ids lie in cred's first bytes in every kernel (usage, debug fields, then the ids) */
#define USER_WINDOW 128   /* and user_struct's uid within its first 128 */
#define MAX_CREDS   64
#define ID_MAX      0x7fffffffU

const char *const cred_id_names[4] = { "uid", "gid", "euid", "egid" };
static const int id_pos[4] = { 0, 4, 16, 20 };   /* in the block: uid gid suid sgid euid egid fsuid fsgid */

struct cred_img {
	uint32_t w[CRED_WINDOW / 4];
};

static uint32_t at(const struct cred_img *c, int off) { return c->w[off / 4]; }

/* a pointer (psz bytes) at off */
static uint64_t ptr_at(const struct cred_img *c, int off, unsigned psz)
{
	return psz == 4 ? c->w[off / 4] : (uint64_t)c->w[off / 4] | (uint64_t)c->w[off / 4 + 1] << 32;
}

/* a kernel pointer of this guest (32-bit: at or above PAGE_OFFSET) */
static bool kptr(const struct discovery_result *r, uint64_t v)
{
	return guest_kernel_ptr(r, v);
}

/* the task's cred pointer (psz bytes), or -EFAULT */
static int read_cred_ptr(struct vmem *vm, const struct discovery_result *r, uint64_t task, int64_t coff, uint64_t *cred)
{
	*cred = 0;
	return vmem_read(vm, task + (uint64_t)coff, cred, guest_ptr_size(r)) || !kptr(r, *cred) ? -EFAULT : 0;
}

/* the cred pointer of a task: cred, or the first offset of a real_cred/cred pair (the values are equal) */
static int64_t cred_offset(const struct discovery_result *res)
{
	if (offset_usable(&res->task[TF_CRED]))
		return res->task[TF_CRED].offset;
	return -1;
}

/* the block at b fits every cred: plausible ids, all 0 on init's (creds[0]), fs ids = effective ids */
static bool block_fits(const struct cred_img *c, size_t n, int b, bool *nonroot)
{
	*nonroot = false;
	for (size_t k = 0; k < n; k++) {
		for (int i = 0; i < 8; i++)
			if (at(&c[k], b + 4 * i) > ID_MAX || (k == 0 && at(&c[k], b + 4 * i)))
				return false;
		if (at(&c[k], b + 24) != at(&c[k], b + 16) || at(&c[k], b + 28) != at(&c[k], b + 20))
			return false;
		for (int i = 0; i < 8; i++)
			*nonroot |= at(&c[k], b + 4 * i) != 0;
	}
	return true;
}

/* some pointer slot p of cred leads to a user_struct holding the uid at b, on every cred (q the same) */
static bool uid_anchored(struct vmem *vm, const struct discovery_result *r, const struct cred_img *c, size_t n, int b,
			 int *pp, int *qq)
{
	uint32_t u[MAX_CREDS][USER_WINDOW / 4];
	const int psz = (int)guest_ptr_size(r);

	for (int p = 0; p + psz <= CRED_WINDOW; p += psz) {
		bool ok = true;

		if (p + psz > b && p < b + 32)
			continue;
		for (size_t k = 0; k < n && ok; k++)
			ok = kptr(r, ptr_at(&c[k], p, psz)) && !vmem_read(vm, ptr_at(&c[k], p, psz), u[k], USER_WINDOW);
		for (int q = 0; ok && q < USER_WINDOW; q += 4) {
			bool all = true;
			for (size_t k = 0; k < n && all; k++)
				all = u[k][q / 4] == at(&c[k], b);
			if (all) {
				*pp = p;
				*qq = q;
				return true;
			}
		}
	}
	return false;
}

int discover_cred_ids(struct physmem *pm, struct discovery_result *res, const struct guest_task *tasks, size_t n)
{
	int64_t coff = cred_offset(res);
	struct cred_img *c = calloc(MAX_CREDS, sizeof(*c));
	uint64_t seen[MAX_CREDS];
	struct vmem *vm = kernel_vmem_new(pm, res);
	size_t nc = 0;
	int found = -ENOENT, nfit = 0, bfit = -1, p = -1, q = -1;
	bool any_nonroot = false;

	const char *why = "no struct cred pointer";

	for (int k = 0; k < 4; k++) {
		res->cred_ids[k].found = false;
		res->cred_ids[k].offset = -1;
	}
	if (!c || !vm) {
		free(c);
		free(vm);
		return -ENOMEM;
	}
	if (coff < 0 || !res->init_task)
		goto out;
	/* init's cred first (init_task: the kernel threads' cred), then each process's, each cred once */
	for (size_t i = 0; i <= n && nc < MAX_CREDS; i++) {
		uint64_t task = i == 0 ? res->init_task : tasks[i - 1].addr, cred;
		bool dup = false;

		if (i > 0 && (tasks[i - 1].kernel_thread || tasks[i - 1].pid != tasks[i - 1].tgid))
			continue;
		if (read_cred_ptr(vm, res, task, coff, &cred))
			continue;
		for (size_t k = 0; k < nc && !dup; k++)
			dup = seen[k] == cred;
		if (dup || vmem_read(vm, cred, c[nc].w, CRED_WINDOW)) {
			if (i == 0)
				break;   /* without init's cred nothing is anchored */
			continue;
		}
		seen[nc++] = cred;
	}
	why = "init_task's cred unreadable";
	if (!nc || seen[0] == 0)
		goto out;
	for (int b = 0; b + 32 <= CRED_WINDOW; b += 4) {
		bool nonroot, anchored;
		int pp, qq;

		if (!block_fits(c, nc, b, &nonroot))
			continue;
		any_nonroot |= nonroot;
		if (!nonroot)
			continue;
		anchored = uid_anchored(vm, res, c, nc, b, &pp, &qq);
		p_dbg("cred ids? block at %d fits %zu creds, uid %sanchored in user_struct", b, nc, anchored ? "" : "not ");
		if (anchored && nfit++ == 0) {
			bfit = b;
			p = pp;
			q = qq;
		}
	}
	if (nfit == 1) {
		for (int k = 0; k < 4; k++) {
			res->cred_ids[k].offset = bfit + id_pos[k];
			res->cred_ids[k].found = true;
			res->cred_ids[k].confidence = 1.0;
			snprintf(res->cred_ids[k].how, sizeof(res->cred_ids[k].how),
				 "ids block at %d (0 on init, fs ids = effective, %zu creds); uid = user_struct +%d via +%d",
				 bfit, nc, q, p);
		}
		found = 0;
		goto out;
	}
	why = nfit > 1 ? "more than one block of ids fits" :
	      !any_nonroot ? "every process is root: ids look like any zero field" :
			     "no block of 8 ids in order anchored by cred->user (shuffled?)";
out:
	if (found)
		for (int k = 0; k < 4; k++)
			snprintf(res->cred_ids[k].how, sizeof(res->cred_ids[k].how), "undetermined: %.80s", why);
	free(c);
	free(vm);
	return found;
}

int guest_task_ids(struct physmem *pm, const struct discovery_result *res, const struct guest_task *t, uint32_t ids[4])
{
	int64_t coff = cred_offset(res);
	struct vmem *vm;
	uint64_t cred;
	int err = 0;

	for (int k = 0; k < 4; k++)
		if (!res->cred_ids[k].found)
			return -ENOENT;
	if (coff < 0)
		return -ENOENT;
	vm = kernel_vmem_new(pm, res);
	if (!vm)
		return -ENOMEM;
	if (read_cred_ptr(vm, res, t->addr, coff, &cred))
		err = -EFAULT;
	for (int k = 0; k < 4 && !err; k++)
		if (vmem_read_u32(vm, cred + (uint64_t)res->cred_ids[k].offset, &ids[k]))
			err = -EFAULT;
	free(vm);
	return err;
}
