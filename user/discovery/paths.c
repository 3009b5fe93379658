/*
 * File paths without a profile (issue 14): struct file's f_path (a dentry and a vfsmount), a dentry's name
 * and parent, the mount a vfsmount sits in (its parent mount and mountpoint) and whether a dentry is still
 * hashed (unhashed: deleted) — found on the executables of the listed processes (mm->exe_file):
 *   - a dentry's d_name.name points into the dentry itself for short names (d_iname), the string as long as
 *     the qstr's len just before the pointer says; d_parent leads through such dentries to a root that is its
 *     own parent;
 *   - f_path.dentry is one; f_path.mnt beside it a vfsmount whose mnt_root is that chain's end;
 *   - struct mount holds its vfsmount: the root mount is its own mnt_parent and its mnt_mountpoint is its root;
 *   - d_hash.pprev points at a pointer back to the dentry's d_hash (NULL once unlinked: " (deleted)").
 * Then guest_file_path builds a path the way the kernel's d_path does, across mounts, bounded in depth.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "common/log.h"
#include "discovery/discover.h"

#define FILE_WINDOW   256
#define DENTRY_WINDOW 256
#define MOUNT_BELOW   512       /* where a vfsmount may sit in struct mount */
#define MAX_FILES     32
#define MAX_DEPTH     256       /* path components followed (PATH_MAX / 2 + slack) */
#define MAX_MOUNTS    64        /* mounts crossed */
#define NAME_MAX_LEN  255

static void set_found(struct offset_result *r, int64_t off, const char *how)
{
	r->offset = off;
	r->found = true;
	r->tied = false;
	r->confidence = 1.0;
	snprintf(r->how, sizeof(r->how), "%s", how);
}

/* The name of dentry d (name pointer at +nm, the qstr's len 4 bytes below it): 0 and the string, or -1. */
static int dentry_name(struct vmem *kv, uint64_t d, int64_t nm, char *buf, size_t cap)
{
	uint64_t p;
	uint32_t len;

	if (vmem_read_u64(kv, d + (uint64_t)nm, &p) || vmem_read_u32(kv, d + (uint64_t)nm - 4, &len) ||
	    (p >> 56) != 0xff || !len || len > NAME_MAX_LEN || len + 1 > cap || vmem_read(kv, p, buf, len + 1) ||
	    buf[len])
		return -1;
	for (uint32_t i = 0; i < len; i++)
		if (!buf[i] || (buf[i] == '/' && len > 1))
			return -1;
	return 0;
}

/* d's name is inline: the pointer at +nm points into the dentry (d_iname), not at the qstr itself */
static bool name_inline(struct vmem *kv, uint64_t d, int64_t nm)
{
	uint64_t p;
	char s[NAME_MAX_LEN + 1];

	return !vmem_read_u64(kv, d + (uint64_t)nm, &p) && p >= d && p < d + DENTRY_WINDOW &&
	       (p + 8 <= d + (uint64_t)nm - 8 || p >= d + (uint64_t)nm + 8) && !dentry_name(kv, d, nm, s, sizeof(s));
}

/* Follow d_parent (at +pp) from d: every dentry named, ending at one that is its own parent within MAX_DEPTH.
 * *root the end, *len the components (0: d is a root). */
static int dentry_chain(struct vmem *kv, uint64_t d, int64_t nm, int64_t pp, uint64_t *root, int *len)
{
	char s[NAME_MAX_LEN + 1];

	for (int i = 0; i < MAX_DEPTH; i++) {
		uint64_t parent;

		if (dentry_name(kv, d, nm, s, sizeof(s)) || vmem_read_u64(kv, d + (uint64_t)pp, &parent) ||
		    !x86_kernel_ptr(parent, true))
			return -EFAULT;
		if (parent == d) {
			*root = d;
			*len = i;
			return 0;
		}
		d = parent;
	}
	return -ELOOP;
}

/* One executable's mount chain under a candidate struct mount layout (vfsmount at M, mnt_parent at q1,
 * mnt_mountpoint at q2): up through parents to the root mount (its own parent, its root as mountpoint), each
 * other mountpoint a named dentry. *crossed counts the mounts below the root. */
static bool mount_chain_fits(struct vmem *kv, uint64_t v, int64_t M, int64_t q1, int64_t q2, int64_t rslot, int64_t nmo,
			     int64_t ppo, int *crossed)
{
	uint64_t B = v - (uint64_t)M, mnt_root, par, mp, root;
	char s[NAME_MAX_LEN + 1];
	int len;

	if (vmem_read_u64(kv, v + (uint64_t)rslot, &mnt_root))
		return false;
	for (int hop = 0; hop < MAX_MOUNTS; hop++) {
		if (vmem_read_u64(kv, B + (uint64_t)q1, &par) || vmem_read_u64(kv, B + (uint64_t)q2, &mp) ||
		    !x86_kernel_ptr(par, true))
			return false;
		if (par == B)
			return mp == mnt_root;
		if (dentry_name(kv, mp, nmo, s, sizeof(s)) || dentry_chain(kv, mp, nmo, ppo, &root, &len) ||
		    vmem_read_u64(kv, par + (uint64_t)M + (uint64_t)rslot, &mnt_root))
			return false;
		B = par;
		(*crossed)++;
	}
	return false;
}

/* struct mount around the executables' vfsmounts: the vfsmount at M inside it, mnt_parent at q1, mnt_mountpoint
 * at q2 (anywhere in the struct: RANDSTRUCT shuffles it). A parent is the mount itself or one whose root is a
 * root dentry (the rootfs may sit on another mount: 7.x's nullfs), which keeps the search small; every chain
 * must fit. An empty list head (pointing at itself) mimics a root
 * mount's parent: an executable on a mount other than the root refutes those, and of what still fits the
 * smallest M is taken. */
static void find_mount(struct vmem *kv, struct discovery_result *res, const uint64_t *files, size_t nf, int64_t mo,
		       int64_t rslot, int64_t nmo, int64_t ppo)
{
	enum { REGION = 768 };
	uint64_t mnts[MAX_FILES], R[REGION / 8];
	size_t nm = 0;

	for (size_t k = 0; k < nf; k++) {
		uint64_t v;
		bool dup = false;
		if (vmem_read_u64(kv, files[k] + (uint64_t)mo, &v))
			return;
		for (size_t i = 0; i < nm && !dup; i++)
			dup = mnts[i] == v;
		if (!dup)
			mnts[nm++] = v;
	}
	for (int64_t M = 0; M <= MOUNT_BELOW; M += 8) {
		uint64_t B0 = mnts[0] - (uint64_t)M, root0;
		if (vmem_read(kv, B0, R, sizeof(R)) || vmem_read_u64(kv, mnts[0] + (uint64_t)rslot, &root0))
			continue;
		for (int64_t q1 = 0; q1 < REGION; q1 += 8) {
			uint64_t par = R[q1 / 8], pr, pp;
			/* the parent: this mount, or one whose vfsmount's root is a root dentry */
			if (q1 >= M && q1 < M + 32)
				continue;   /* inside the vfsmount */
			if (par != B0 && (!x86_kernel_ptr(par, true) || vmem_read_u64(kv, par + (uint64_t)M + (uint64_t)rslot, &pr) ||
					  !x86_kernel_ptr(pr, true) || vmem_read_u64(kv, pr + (uint64_t)ppo, &pp) || pp != pr))
				continue;
			for (int64_t q2 = 0; q2 < REGION; q2 += 8) {
				int crossed = 0;
				bool all = q2 != q1 && !(q2 >= M && q2 < M + 32) && x86_kernel_ptr(R[q2 / 8], true);
				for (size_t i = 0; i < nm && all; i++)
					all = mount_chain_fits(kv, mnts[i], M, q1, q2, rslot, nmo, ppo, &crossed);
				if (!all)
					continue;
				set_found(&res->maps[MOUNT_MNT], M, crossed ? "the vfsmount inside struct mount, across mounts" :
					  "the vfsmount inside struct mount (root mount only: smallest fit)");
				set_found(&res->maps[MOUNT_PARENT], q1, "the root mount's own address; other mounts' lead to it");
				set_found(&res->maps[MOUNT_MOUNTPOINT], q2, "the root mount's root dentry; a named dentry elsewhere");
				return;
			}
		}
	}
}

/* Whether the process t, whose mm held file as its executable, is gone from it: t re-read names another pid or
 * mm, or its mm another file (it exited or exec'd since it was listed, and the file may have been freed). */
static bool exe_gone(struct physmem *pm, const struct discovery_result *res, const struct guest_task *t, uint64_t file)
{
	struct guest_task now;
	uint64_t f;

	return guest_task_at(pm, res, t->addr, &now) || now.pid != t->pid || now.mm != t->mm ||
	       guest_task_exe_file(pm, res, &now, &f) || f != file;
}

int discover_paths(struct physmem *pm, struct discovery_result *res, const struct guest_task *tasks, size_t n)
{
	enum maps_member members[] = { FILE_DENTRY, FILE_MNT, DENTRY_PARENT, DENTRY_NAME, DENTRY_HASH, VFSMOUNT_ROOT, MOUNT_MNT,
				       MOUNT_PARENT, MOUNT_MOUNTPOINT };
	struct vmem *kv = kernel_vmem_new(pm, res);
	uint64_t files[MAX_FILES], fw[FILE_WINDOW / 8];
	size_t owner[MAX_FILES], nf = 0;   /* owner: the task whose mm held the file */
	int8_t gone[MAX_FILES];            /* exe_gone of each file's owner: -1 not asked yet */
	int nfit = 0, err = -ENOENT;   /* (f_path, d_name, d_parent) that fit */
	int64_t fo = -1, mo = -1, nmo = -1, ppo = -1;
	const char *why = "no executable file to read";

	for (size_t i = 0; i < sizeof(members) / sizeof(members[0]); i++) {
		res->maps[members[i]].found = false;
		res->maps[members[i]].offset = -1;
	}
	if (!kv)
		return -ENOMEM;
	for (size_t i = 0; i < n && nf < MAX_FILES; i++) {
		uint64_t f;
		bool dup = false;
		if (guest_task_exe_file(pm, res, &tasks[i], &f) || !f)
			continue;
		for (size_t k = 0; k < nf && !dup; k++)
			dup = files[k] == f;
		if (!dup) {
			gone[nf] = -1;
			owner[nf] = i;
			files[nf++] = f;
		}
	}
	p_dbg("paths: %zu executable files", nf);
	if (!nf)
		goto out;
	/* f_path.dentry at fo; d_name.name at nmo; d_parent at ppo: one set fits every file but those whose process
	 * exited or exec'd since it was listed (up to a quarter: the file may have been freed meanwhile, as with a
	 * guest starting a process every half second); a file of a process still there with it must fit. The
	 * candidates come from the first file's dentry: that of the first process listed (init). */
	why = "no (f_path, d_name, d_parent) fits every executable";
	if (vmem_read(kv, files[0], fw, sizeof(fw)))
		goto out;
	for (int64_t o = 0; o < FILE_WINDOW; o += 8) {
		uint64_t d0 = fw[o / 8];
		if (!x86_kernel_ptr(d0, true))
			continue;
		for (int64_t nm = 8; nm < DENTRY_WINDOW; nm += 8) {
			if (!name_inline(kv, d0, nm))
				continue;
			for (int64_t pp = 0; pp < DENTRY_WINDOW; pp += 8) {
				size_t nmiss = 0;
				bool all = pp != nm;
				for (size_t k = 0; k < nf && all; k++) {
					uint64_t d, root;
					int len;
					if (!vmem_read_u64(kv, files[k] + (uint64_t)o, &d) &&
					    !dentry_chain(kv, d, nm, pp, &root, &len) && len >= 1)
						continue;
					nmiss++;
					if (gone[k] < 0)
						gone[k] = exe_gone(pm, res, &tasks[owner[k]], files[k]);
					all = gone[k] && nmiss * 4 <= nf;
				}
				if (all)
					p_dbg("paths? f_path %lld, d_name.name %lld, d_parent %lld", (long long)o, (long long)nm,
					      (long long)pp);
				if (all && nfit++ == 0) {
					fo = o;
					nmo = nm;
					ppo = pp;
				}
			}
		}
	}
	/* the window holds the next dentry of the slab too, which fits again further on: the first fit is
	 * this one's (smallest f_path, then name, then parent offset) */
	if (!nfit)
		goto out;
	for (size_t k = 0; k < nf;) {   /* the rest is searched on the files that fit */
		uint64_t d, root;
		int len;
		if (!vmem_read_u64(kv, files[k] + (uint64_t)fo, &d) && !dentry_chain(kv, d, nmo, ppo, &root, &len) &&
		    len >= 1) {
			k++;
			continue;
		}
		p_dbg("paths: the executable of pid %d left out (its process exited or exec'd)", tasks[owner[k]].pid);
		files[k] = files[--nf];
		owner[k] = owner[nf];
	}
	set_found(&res->maps[FILE_DENTRY], fo, "a named dentry of every executable's file");
	set_found(&res->maps[DENTRY_NAME], nmo - 8, "qstr: its name inline in the dentry, as long as its len");
	set_found(&res->maps[DENTRY_PARENT], ppo, "named dentries up to a root that is its own parent");
	err = 0;

	/* d_hash.pprev: on hashed dentries it points at a pointer back to the node (pprev is the node's second
	 * word); NULL once unhashed. Any hlist node does that (d_u.d_alias too), so also: where the dentry is first
	 * in its bucket, pprev is the bucket, dentry_hashtable + (d_name.hash >> shift) * 8 — one table base and
	 * one shift for all. Looked at on every non-root dentry of the executables' paths. */
	int64_t ho = -1;
	for (int64_t h = 8; h < DENTRY_WINDOW && ho < 0; h += 8) {
		enum { MAXE = 256 };
		uint64_t pp[MAXE];
		uint32_t hv[MAXE];
		size_t hits = 0, zeros = 0, ne = 0;
		bool ok = h != nmo && h != ppo && h != nmo - 8;
		for (size_t k = 0; k < nf && ok; k++) {
			uint64_t d, parent, pprev, back = 0;
			uint32_t hash;
			if (vmem_read_u64(kv, files[k] + (uint64_t)fo, &d))
				ok = false;
			for (int depth = 0; ok && depth < MAX_DEPTH; depth++) {
				if (vmem_read_u64(kv, d + (uint64_t)ppo, &parent) || parent == d)
					break;
				if (vmem_read_u64(kv, d + (uint64_t)h, &pprev) || vmem_read_u32(kv, d + (uint64_t)nmo - 8, &hash))
					ok = false;
				else if (!pprev)
					zeros++;
				else if (x86_kernel_ptr(pprev, true) && !vmem_read_u64(kv, pprev, &back) &&
					 (back & ~1ULL) == d + (uint64_t)h - 8) {
					bool dup = false;   /* one entry per dentry: /bin is on many paths */
					hits++;
					for (size_t i = 0; i < ne && !dup; i++)
						dup = pp[i] == pprev;
					if (!dup && ne < MAXE) {
						pp[ne] = pprev;
						hv[ne++] = hash;
					}
				} else {
					ok = false;
				}
				d = parent;
			}
		}
		if (!ok || hits < 2 || zeros * 4 > hits)
			continue;
		/* the bucket rule: the shift and base most entries agree on. A dentry behind others in its bucket points
		 * at the one before it (its node's first word), whose pprev leads on: up to 8 steps back, one of them is
		 * the bucket. */
		enum { BACK = 8 };
		uint64_t chain[MAXE][BACK];
		size_t best = 0;
		for (size_t i = 0; i < ne; i++) {
			uint64_t c = pp[i];
			for (int b = 0; b < BACK; b++) {
				chain[i][b] = c;
				if (c && (!x86_kernel_ptr(c, true) || vmem_read_u64(kv, c + 8, &c)))
					c = 0;
			}
		}
		for (int shift = 8; shift < 32; shift++)
			for (size_t i = 0; i < ne; i++)
				for (int b = 0; b < BACK && chain[i][b]; b++) {
					uint64_t base = chain[i][b] - (uint64_t)(hv[i] >> shift) * 8;
					size_t agree = 0;
					for (size_t j = 0; j < ne; j++) {
						bool any = false;
						for (int e = 0; e < BACK && chain[j][e] && !any; e++)
							any = chain[j][e] - (uint64_t)(hv[j] >> shift) * 8 == base;
						agree += any;
					}
					if (agree > best)
						best = agree;
				}
		p_dbg("d_hash? %lld: %zu hashed (%zu dentries), %zu unhashed, %zu agree on a bucket table", (long long)h - 8,
		      hits, ne, zeros, best);
		if (best >= 2 && best * 4 >= ne * 3)
			ho = h;
	}
	if (ho >= 0)
		set_found(&res->maps[DENTRY_HASH], ho - 8, "hlist_bl_node: pprev a bucket of one table by d_name.hash");

	/* f_path.mnt beside the dentry (struct path: either order under RANDSTRUCT), whose mnt_root (at rslot) is the
	 * top of every executable's dentry chain */
	int64_t rslot = -1;
	for (int64_t mc = fo - 8; mc <= fo + 8 && rslot < 0; mc += 16)
		for (int64_t r = 0; mc >= 0 && r < 64 && rslot < 0; r += 8) {
			bool all = true;
			for (size_t k = 0; k < nf && all; k++) {
				uint64_t v, d, mr, root;
				int len;
				all = !vmem_read_u64(kv, files[k] + (uint64_t)mc, &v) && x86_kernel_ptr(v, true) &&
				      !vmem_read_u64(kv, files[k] + (uint64_t)fo, &d) && !vmem_read_u64(kv, v + (uint64_t)r, &mr) &&
				      !dentry_chain(kv, d, nmo, ppo, &root, &len) && mr == root;
			}
			if (all) {
				rslot = r;
				mo = mc;
			}
		}
	if (rslot < 0)
		goto out;
	set_found(&res->maps[FILE_MNT], mo, "beside f_path.dentry: a vfsmount whose mnt_root tops its chain");
	set_found(&res->maps[VFSMOUNT_ROOT], rslot, "the root of every executable's dentry chain");
	find_mount(kv, res, files, nf, mo, rslot, nmo, ppo);
	why = "no single member fits";
out:
	for (size_t i = 0; i < sizeof(members) / sizeof(members[0]); i++)
		if (!res->maps[members[i]].found)
			snprintf(res->maps[members[i]].how, sizeof(res->maps[members[i]].how), "undetermined: %.80s", why);
	free(kv);
	return err;
}

/* prepend "/name" to the path being built backwards in buf[*at..] */
static int prepend(char *buf, size_t *at, const char *s, size_t n)
{
	if (*at < n + 1)
		return -ENAMETOOLONG;
	*at -= n;
	memcpy(buf + *at, s, n);
	buf[--*at] = '/';
	return 0;
}

int guest_file_path(struct physmem *pm, const struct discovery_result *res, uint64_t file, char *out, size_t cap)
{
	const struct offset_result *m = res->maps;
	char *buf, name[NAME_MAX_LEN + 1];
	size_t at, size = 4096 + 64;
	uint64_t mnt, d, leaf = 0, mnt_root;
	struct vmem *kv;
	int err = 0, crossed = 0;
	int64_t nm;
	bool mounts = m[MOUNT_MNT].found && m[MOUNT_PARENT].found && m[MOUNT_MOUNTPOINT].found;

	if (!cap)
		return -EINVAL;
	out[0] = 0;
	if (!m[FILE_DENTRY].found || !m[FILE_MNT].found || !m[DENTRY_NAME].found || !m[DENTRY_PARENT].found || !m[VFSMOUNT_ROOT].found)
		return -ENOENT;
	nm = m[DENTRY_NAME].offset + 8;
	kv = kernel_vmem_new(pm, res);
	buf = malloc(size);
	if (!kv || !buf) {
		free(kv);
		free(buf);
		return -ENOMEM;
	}
	at = size - 1;
	buf[at] = 0;
	if (vmem_read_u64(kv, file + (uint64_t)m[FILE_MNT].offset, &mnt) ||
	    vmem_read_u64(kv, file + (uint64_t)m[FILE_DENTRY].offset, &d) || !x86_kernel_ptr(d, true) ||
	    vmem_read_u64(kv, mnt + (uint64_t)m[VFSMOUNT_ROOT].offset, &mnt_root)) {
		err = -EFAULT;
		goto out;
	}
	leaf = d;
	for (int depth = 0;; depth++) {
		uint64_t parent = 0;

		if (depth >= MAX_DEPTH) {
			err = -ELOOP;   /* a dentry chain that loops */
			goto out;
		}
		if (d == mnt_root || (vmem_read_u64(kv, d + (uint64_t)m[DENTRY_PARENT].offset, &parent) == 0 && parent == d)) {
			uint64_t B, par, mp;
			/* the top of this mount: go on from its mountpoint in the parent mount, unless it is the root */
			if (!mounts) {   /* which mount this is, and where it sits, unknown: said, not guessed */
				err = -EFAULT;
				goto out;
			}
			B = mnt - (uint64_t)m[MOUNT_MNT].offset;
			if (vmem_read_u64(kv, B + (uint64_t)m[MOUNT_PARENT].offset, &par) ||
			    vmem_read_u64(kv, B + (uint64_t)m[MOUNT_MOUNTPOINT].offset, &mp)) {
				err = -EFAULT;
				goto out;
			}
			if (par == B)
				break;
			if (++crossed > MAX_MOUNTS || !x86_kernel_ptr(par, true) || !x86_kernel_ptr(mp, true)) {
				err = crossed > MAX_MOUNTS ? -ELOOP : -EFAULT;
				goto out;
			}
			mnt = par + (uint64_t)m[MOUNT_MNT].offset;
			d = mp;
			if (vmem_read_u64(kv, mnt + (uint64_t)m[VFSMOUNT_ROOT].offset, &mnt_root)) {
				err = -EFAULT;
				goto out;
			}
			continue;
		}
		if (dentry_name(kv, d, nm, name, sizeof(name)) || !x86_kernel_ptr(parent, true)) {
			err = -EFAULT;
			goto out;
		}
		if ((err = prepend(buf, &at, name, strlen(name))))
			goto out;
		d = parent;
	}
	if (buf[at] == 0)
		buf[--at] = '/';
out:
	if (err == -EFAULT && buf[at]) {
		/* the part we could not read is marked, never guessed */
		if (at >= 1)
			buf[--at] = '?';
		err = 0;
	}
	if (!err) {
		uint64_t pprev = 1;
		snprintf(out, cap, "%s", buf + at);
		if (m[DENTRY_HASH].found && !vmem_read_u64(kv, leaf + (uint64_t)m[DENTRY_HASH].offset + 8, &pprev) &&
		    !pprev && strcmp(out, "/"))
			snprintf(out + strlen(out), cap - strlen(out), " (deleted)");
	}
	free(kv);
	free(buf);
	return err;
}
