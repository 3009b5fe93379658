/* The constraint solver's credentials: real_cred and cred, in declaration order or (RANDSTRUCT) any order. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "common/log.h"
#include "discovery/solve.h"

/* init_cred: root ids and capability sets inheritable = 0, permitted/effective/bounding full. Returns
 * the offset of the capability sets, or -1. */
static int init_cred_caps(struct disc_ctx *c, uint64_t va)
{
	uint8_t b[160];
	uint64_t q[4];

	if (dctx_read(c, va, b, sizeof(b)))
		return -1;
	for (int p = 36; p + 32 <= (int)sizeof(b); p += 4) {
		int zeros = 0;
		memcpy(q, b + p, sizeof(q));
		/* permitted = CAP_FULL_SET, a run of low ones (not a pointer); effective and bounding
		 * nearly full subsets of it (old kernels dropped CAP_SETPCAP from them) */
		if (q[0] != 0 || (q[1] & (q[1] + 1)) || __builtin_popcountll(q[1]) < 30 ||
		    (q[2] & ~q[1]) || __builtin_popcountll(q[2]) < 29 || (q[3] & ~q[1]) ||
		    __builtin_popcountll(q[3]) < 29)
			continue;
		for (int z = p - 36; z < p; z++)   /* the eight ids and securebits before them */
			zeros += b[z] == 0;
		if (zeros >= 32)
			return p;
	}
	return -1;
}

/* Any task's cred: the ids before the capability sets come as uid, gid, suid, sgid, euid, egid,
 * fsuid, fsgid — and outside set-id programs uid == suid == euid == fsuid and likewise for gids. */
static bool cred_ids_plausible(struct disc_ctx *c, uint64_t va, int caps)
{
	uint32_t id[10];

	if (dctx_read(c, va + caps - 40, id, sizeof(id)))
		return false;
	for (int k = 0; k <= 1; k++) {   /* ids end 4 or 8 bytes before the caps (securebits, padding) */
		uint32_t *u = id + k;
		if (u[0] == u[2] && u[0] == u[4] && u[0] == u[6] && u[1] == u[3] && u[1] == u[5] && u[1] == u[7])
			return true;
	}
	return false;
}

/* init_cred in any member order (RANDSTRUCT shuffles struct cred as well): its capability sets permitted,
 * effective and bounding, and no other 8 bytes, are CAP_FULL_SET — a run of low ones, 38..48 of them in the
 * kernels that have randstruct (4.13+: CAP_LAST_CAP >= 37) — at 4-aligned offsets (kernel_cap_t was two u32
 * until 6.3). Stores their offsets and the full set; returns 3, or 0 when it does not look like init_cred. */
static int init_cred_cap_slots(struct disc_ctx *c, uint64_t va, int slot[3], uint64_t *full)
{
	uint8_t b[CRED_WINDOW];
	int n = 0;

	if (dctx_read(c, va, b, sizeof(b)))
		return 0;
	*full = 0;
	for (int p = 0; p + 8 <= (int)sizeof(b); p += 4) {
		uint64_t q;
		memcpy(&q, b + p, 8);
		if (q & (q + 1) || __builtin_popcountll(q) < 38 || __builtin_popcountll(q) > 48)
			continue;
		if ((*full && q != *full) || n == 3)
			return 0;
		*full = q;
		slot[n++] = p;
		p += 4;   /* the next set starts 8 bytes on at the earliest */
	}
	return n == 3 ? n : 0;
}

/* Any task's cred in that order: every capability set a subset of the full set, and some of them not empty
 * (the bounding set is full outside of hardened sandboxes). */
static bool cred_caps_plausible(struct disc_ctx *c, uint64_t va, const int *slot, int n, uint64_t full)
{
	uint8_t b[CRED_WINDOW];
	bool some = false;

	if (dctx_read(c, va, b, sizeof(b)))
		return false;
	for (int k = 0; k < n; k++) {
		uint64_t q;
		memcpy(&q, b + slot[k], 8);
		if (q & ~full)
			return false;
		some |= q != 0;
	}
	return some;
}

/* Returns how many members point to a struct cred (0 before 2.6.29, when struct cred was added). */
size_t solve_cred(struct solve *s)
{
	struct disc_ctx *c = s->c;
	struct discovery_result *r = c->res;
	int64_t cand[8];
	size_t n = 0;

	for (int64_t o = 0; o + (int64_t)c->psz <= s->win && n < 8; o += c->psz) {
		uint64_t v = win_ptr(c, &c->win[0], o);
		size_t total = 0, plausible = 0;
		int caps = -1, slot[3], nslots = 0;
		uint64_t full = 0;
		bool ok = dctx_is_kernel_ptr(c, v) && v != s->init;   /* init_cred may follow init_task closely */
		if (!ok || ((caps = init_cred_caps(c, v)) < 0 && !(nslots = init_cred_cap_slots(c, v, slot, &full))))
			continue;
		/* A pointer out of the task on (nearly) every task: the guest runs on while we read, and a task
		 * freed between the list walk and the read of its window may hold anything by then. */
		size_t ptrs = 0;
		for (size_t i = 1; i < c->nwin; i++) {
			uint64_t t = win_ptr(c, &c->win[i], o);
			bool p = dctx_is_kernel_ptr(c, t) && (t < c->win[i].base || t >= c->win[i].base + (uint64_t)s->win);
			total++;
			ptrs += p;
			plausible += p && (caps >= 0 ? cred_ids_plausible(c, t, caps)
						     : cred_caps_plausible(c, t, slot, nslots, full));
		}
		ok = ptrs * 20 >= total * 19;
		p_dbg("cred? %lld: %zu of %zu pointers, %zu plausible (init_cred %#llx read %s)", (long long)o, ptrs,
		      total, plausible, (unsigned long long)v, caps >= 0 ? "in declaration order" : "in any order");
		if (ok && plausible * 10 >= total * 9)
			cand[n++] = o;
	}
	for (size_t k = 0; k < n; k++)
		p_dbg("cred candidate %lld", (long long)cand[k]);
	/* Where real_cred and cred differ (override_creds), the overriding cred is private to its task
	 * while the real one is shared with the task's family: the member holding a private value is cred. */
	int vote[2] = { 0, 0 };
	for (size_t i = 0; n == 2 && i < c->nwin; i++) {
		uint64_t a = win_ptr(c, &c->win[i], cand[0]), b = win_ptr(c, &c->win[i], cand[1]);
		bool sa = false, sb = false;
		if (a == b)
			continue;
		for (size_t j = 0; j < c->nwin; j++) {
			if (j == i)
				continue;
			sa |= win_ptr(c, &c->win[j], cand[0]) == a || win_ptr(c, &c->win[j], cand[1]) == a;
			sb |= win_ptr(c, &c->win[j], cand[0]) == b || win_ptr(c, &c->win[j], cand[1]) == b;
		}
		if (sa != sb)
			vote[sb]++;   /* the private one (not shared) is cred */
	}
	if (n == 1)
		set_offset(&r->task[TF_CRED], cand[0], 0.9, "only pointer to a struct cred (init_task's is init_cred)");
	else if (n == 2 && (vote[0] || vote[1]) && !(vote[0] && vote[1]))
		set_offset(&r->task[TF_CRED], cand[vote[1] ? 1 : 0], 0.9,
			   "an overriding cred, private to its task, is held here (real_cred is shared)");
	else if (n == 2 && cand[1] == cand[0] + (int64_t)c->psz) {
		struct offset_pair cp = { { "real_cred", "cred" }, { cand[0], cand[1] }, { TF_NR, TF_CRED } };
		set_pair_by_order(s, &cp, NULL, "two cred pointers; declaration order (real_cred, cred)");
	} else if (n == 2) {
		struct offset_pair cp = { { "real_cred", "cred" }, { cand[0], cand[1] }, { TF_NR, TF_CRED } };
		set_pair(s, &cp, "equal on every task (no override_creds)");
	} else
		set_undetermined(&r->task[TF_CRED], n > 2 ? "more than two members point to a struct cred"
					  : "no pointer to a struct cred");
	return n;
}
