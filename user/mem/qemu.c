/*
 * Live QEMU guest by host pid: guest RAM is read out of the QEMU process with process_vm_readv(2)
 * (never written; no ptrace attach, the guest keeps running).
 *
 * Where is guest RAM inside QEMU?  QEMU keeps each RAM block (pc.ram, or a memory-backend's block) in
 * one host mapping: anonymous memory, a memfd, or a file (hugetlbfs, memory-backend-file). We
 *   1. ask QEMU over QMP for its own description: query-memory-size-summary (RAM size), `info mtree -f`
 *      (guest-physical ranges of the "memory" address space, each with its RAM block and the offset in
 *      it: e.g. pc.ram 0-0x9ffff, ..., 0x100000-0xbfffffff @0x100000 and, above 4G,
 *      0x100000000- @0xc0000000), and `info ramblock` (block sizes);
 *   2. list candidate mappings of /proc/PID/maps: readable+writable, at least the block's size
 *      (exact-size mappings first: QEMU maps a block at exactly its size, followed by a guard page);
 *   3. verify a candidate by comparing bytes read through process_vm_readv with QMP `xp` reads of the
 *      same guest-physical addresses, at several non-zero guest pages (the vCPUs' CR3 pages first, then
 *      firmware and kernel-load pages, then 256 pages spread over the block). A candidate is taken only with ≥ 2 matching non-zero pages and
 *      matches > 2 × mismatches (a page may change between the two reads on a running guest; a
 *      mismatch is re-read once before it counts). No heuristic guess is ever used unverified.
 * For KVM guests KVM's memslots are the authoritative GPA→HVA map: physmem_qemu_set_memslots() cross-
 * checks the QMP-derived map against them and re-points any disagreeing range.
 *
 * The QMP connection is closed once the map is built (a QEMU -qmp socket accepts one client at a time,
 * and the --qmp observation source may need it). A QEMU that exits makes reads fail with -ESRCH.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>
#include "common/log.h"
#include "mem/physmem.h"
#include "mem/qemu_proc.h"
#include "mem/qmp.h"

struct qemu_priv {
	pid_t pid;
	int pidfd;            /* -1 if pidfd_open is unavailable */
	uint64_t *hva;        /* host VA of pm->ranges[i].start */
	bool gone;
};

static bool qemu_exited(struct qemu_priv *p)
{
	char path[64], buf[256];
	ssize_t n;
	int fd;

	if (p->pidfd >= 0) {
		struct pollfd pfd = { .fd = p->pidfd, .events = POLLIN };

		if (poll(&pfd, 1, 0) == 1)
			return true;
	}
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)p->pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return true;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return true;
	buf[n] = 0;
	char *rp = strrchr(buf, ')');
	return rp && (rp[2] == 'Z' || rp[2] == 'X');
}

static int pvm_read(pid_t pid, uint64_t hva, void *buf, size_t len)
{
	unsigned char *out = buf;

	while (len) {
		struct iovec l = { out, len }, r = { (void *)(uintptr_t)hva, len };
		ssize_t n = process_vm_readv(pid, &l, 1, &r, 1, 0);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO;
		out += n;
		hva += (uint64_t)n;
		len -= (size_t)n;
	}
	return 0;
}

static int qemu_read(struct physmem *pm, uint64_t gpa, void *buf, size_t len)
{
	struct qemu_priv *p = pm->priv;
	long i = physmem_find_range(pm, gpa);
	int err;

	if (i < 0)
		return -EFAULT;
	if (p->gone)
		return -ESRCH;
	err = pvm_read(p->pid, p->hva[i] + (gpa - pm->ranges[i].start), buf, len);
	if (!err)
		return 0;
	if (err == -ESRCH || qemu_exited(p)) {
		p->gone = true;
		p_err("QEMU pid %d exited while reading guest memory", (int)p->pid);
		return -ESRCH;
	}
	if (err == -EPERM) {
		p_err("not permitted to read QEMU pid %d memory (needs root or CAP_SYS_PTRACE)", (int)p->pid);
		return -EPERM;
	}
	p_err("QEMU pid %d: reading GPA %#llx at host %#llx failed: %s", (int)p->pid, (unsigned long long)gpa,
	      (unsigned long long)(p->hva[i] + (gpa - pm->ranges[i].start)), strerror(-err));
	return -EIO;
}

static void qemu_close(struct physmem *pm)
{
	struct qemu_priv *p = pm->priv;

	if (!p)
		return;
	if (p->pidfd >= 0)
		close(p->pidfd);
	free(p->hva);
	free(p);
}

static const struct physmem_ops qemu_ops = {
	.kind = "qemu",
	.read = qemu_read,
	.close = qemu_close,
};

/* ---- the QEMU process ---- */

static int check_qemu_pid(pid_t pid)
{
	char path[64], exe[PATH_MAX], comm[64] = "";
	ssize_t n;
	FILE *f;

	if (pid <= 0) {
		p_err("invalid pid %d", (int)pid);
		return -EINVAL;
	}
	snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
	f = fopen(path, "r");
	if (!f) {
		p_err("no process with pid %d", (int)pid);
		return -ESRCH;
	}
	if (fgets(comm, sizeof(comm), f))
		comm[strcspn(comm, "\n")] = 0;
	fclose(f);
	snprintf(path, sizeof(path), "/proc/%d/exe", (int)pid);
	n = readlink(path, exe, sizeof(exe) - 1);
	exe[n > 0 ? n : 0] = 0;
	if (!qemu_proc_is_qemu(pid)) {   /* the same test as `list` and -a */
		p_err("pid %d (%s%s%s) is not a QEMU process", (int)pid, comm, *exe ? ", " : "", exe);
		return -EINVAL;
	}
	return 0;
}

/* ---- locating RAM blocks ---- */

struct vma {
	uint64_t start, end;
	bool rw;
	char path[128];
};

static int read_maps(pid_t pid, struct vma **out, size_t *n)
{
	char path[64], line[512];
	struct vma *v = NULL;
	size_t cnt = 0, cap = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		unsigned long long s, e, off;
		char perms[8], dev[16], name[256] = "";
		unsigned long ino;

		if (sscanf(line, "%llx-%llx %7s %llx %15s %lu %255[^\n]", &s, &e, perms, &off, dev, &ino, name) < 6)
			continue;
		if (cnt == cap) {
			struct vma *nv = realloc(v, (cap = cap ? cap * 2 : 256) * sizeof(*nv));

			if (!nv) {
				free(v);
				fclose(f);
				return -ENOMEM;
			}
			v = nv;
		}
		v[cnt].start = s;
		v[cnt].end = e;
		v[cnt].rw = perms[0] == 'r' && perms[1] == 'w';
		snprintf(v[cnt].path, sizeof(v[cnt].path), "%s", name + strspn(name, " "));
		cnt++;
	}
	fclose(f);
	*out = v;
	*n = cnt;
	return 0;
}

struct block {
	char name[128];
	uint64_t used;
	uint64_t hva;
};

struct sample {
	uint64_t gpa, off;       /* guest-physical address and offset inside the block */
	bool have_xp, xp_fault;
	unsigned char xp[256];
};

static bool all_zero(const unsigned char *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (b[i])
			return false;
	return true;
}

/* Offset of gpa inside block blk, via the mtree ranges; false if gpa is not in that block. */
static bool gpa_to_off(const struct qemu_ram_range *r, size_t nr, const char *blk, uint64_t gpa, uint64_t *off)
{
	for (size_t i = 0; i < nr; i++)
		if (!strcmp(r[i].block, blk) && gpa >= r[i].gpa && gpa - r[i].gpa < r[i].len) {
			*off = r[i].offset + (gpa - r[i].gpa);
			return true;
		}
	return false;
}

static bool off_to_gpa(const struct qemu_ram_range *r, size_t nr, const char *blk, uint64_t off, uint64_t *gpa)
{
	for (size_t i = 0; i < nr; i++)
		if (!strcmp(r[i].block, blk) && off >= r[i].offset && off - r[i].offset < r[i].len) {
			*gpa = r[i].gpa + (off - r[i].offset);
			return true;
		}
	return false;
}

static int verify_candidate(struct qmp *q, pid_t pid, uint64_t base, struct sample *s, size_t ns,
			    unsigned *matches_out)
{
	unsigned matches = 0, mism = 0;
	unsigned char host[256];

	for (size_t i = 0; i < ns && matches < 4 && mism < 3; i++) {
		int err = pvm_read(pid, base + s[i].off, host, sizeof(host));

		if (err)
			return err == -ESRCH ? err : 0;   /* mapping too small for this block: not it */
		if (all_zero(host, sizeof(host)))
			continue;
		if (!s[i].have_xp) {
			err = qmp_xp(q, s[i].gpa, s[i].xp, sizeof(s[i].xp));
			if (err && err != -EFAULT)
				return err;
			s[i].have_xp = true;
			s[i].xp_fault = err == -EFAULT;
		}
		if (s[i].xp_fault)
			continue;
		if (!memcmp(host, s[i].xp, sizeof(host))) {
			matches++;
			continue;
		}
		/* racing guest write? re-read both once */
		if (qmp_xp(q, s[i].gpa, s[i].xp, sizeof(s[i].xp)) == 0 &&
		    pvm_read(pid, base + s[i].off, host, sizeof(host)) == 0 && !memcmp(host, s[i].xp, sizeof(host)))
			matches++;
		else
			mism++;
	}
	*matches_out = matches;
	return matches >= 2 && matches > 2 * mism;
}

static int locate_block(struct qmp *q, pid_t pid, struct block *b, const struct qemu_ram_range *r, size_t nr,
			const struct vcpu_state *vc, size_t nvc, const struct vma *vmas, size_t nvmas)
{
	struct sample s[300];
	size_t ns = 0;
	uint64_t off, gpa;

	/* samples: the vCPUs' page-table roots (never zero on a booted guest), then a spread */
	for (size_t i = 0; i < nvc && ns < 16; i++) {
		gpa = vc[i].cr3 & 0x000ffffffffff000ULL;
		if (vc[i].valid && gpa_to_off(r, nr, b->name, gpa, &off))
			s[ns++] = (struct sample){ .gpa = gpa, .off = off };
	}
	/* pages that are non-zero from the firmware on: IVT/BDA, EBDA, shadowed BIOS, the usual kernel load
	 * addresses (so even a guest still in its firmware can be verified) */
	static const uint64_t fixed[] = { 0x0, 0x9f000, 0xe0000, 0xe8000, 0xf0000, 0xf8000, 0xfe000, 0x100000,
					  0x1000000, 0x1001000, 0x2000000 };
	for (size_t k = 0; k < sizeof(fixed) / sizeof(fixed[0]); k++)
		if (gpa_to_off(r, nr, b->name, fixed[k], &off) && off + 256 <= b->used)
			s[ns++] = (struct sample){ .gpa = fixed[k], .off = off };
	for (unsigned k = 0; k < 256 && ns < sizeof(s) / sizeof(s[0]); k++) {
		off = (b->used / 256 * k + 0x1000 * 17) & ~0xfffULL;   /* skip page 0 and its neighbours */
		if (off < b->used && off_to_gpa(r, nr, b->name, off, &gpa))
			s[ns++] = (struct sample){ .gpa = gpa, .off = off };
	}
	/* candidates: exact-size mappings first, then larger ones (block at their start or end) */
	for (int pass = 0; pass < 2; pass++) {
		for (size_t i = 0; i < nvmas; i++) {
			uint64_t size = vmas[i].end - vmas[i].start, bases[2] = { vmas[i].start, vmas[i].end - b->used };
			unsigned matches = 0;

			if (!vmas[i].rw || size < b->used || (pass == 0) != (size == b->used))
				continue;
			if (vmas[i].path[0] == '[')   /* [heap], [stack] */
				continue;
			for (int j = 0; j < (size == b->used ? 1 : 2); j++) {
				int ok = verify_candidate(q, pid, bases[j], s, ns, &matches);

				if (ok == -ESRCH)
					p_err("QEMU pid %d exited while locating guest RAM", (int)pid);
				if (ok < 0)
					return ok;
				if (ok) {
					b->hva = bases[j];
					p_dbg("RAM block %s (%llu bytes) at host %#llx in %s mapping %llx-%llx: %u pages "
					      "match QMP xp", b->name, (unsigned long long)b->used,
					      (unsigned long long)b->hva, vmas[i].path[0] ? vmas[i].path : "anonymous",
					      (unsigned long long)vmas[i].start, (unsigned long long)vmas[i].end, matches);
					return 0;
				}
			}
		}
	}
	p_err("cannot locate RAM block %s (%llu bytes) in QEMU pid %d: no mapping matched QMP xp reads",
	      b->name, (unsigned long long)b->used, (int)pid);
	return -ENOENT;
}

static bool is_main_ram_block(const char *name)
{
	static const char *const firmware[] = { "pc.bios", "pc.rom", "isa-bios", "pc.flash0", "pc.flash1",
						"system.flash0", "system.flash1" };

	if (strchr(name, '/'))   /* device-owned blocks: "0000:00:02.0/vga.vram", "/rom@etc/..." */
		return false;
	for (size_t i = 0; i < sizeof(firmware) / sizeof(firmware[0]); i++)
		if (!strcmp(name, firmware[i]))
			return false;
	return true;
}

static struct physmem *new_qemu_pm(pid_t pid)
{
	struct qemu_priv *p = calloc(1, sizeof(*p));
	struct physmem *pm;

	if (!p)
		return NULL;
	p->pid = pid;
#ifdef SYS_pidfd_open
	p->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
#else
	p->pidfd = -1;
#endif
	pm = physmem_alloc(&qemu_ops, p);
	if (!pm) {
		if (p->pidfd >= 0)
			close(p->pidfd);
		free(p);
	}
	return pm;
}

static int add_qemu_range(struct physmem *pm, uint64_t gpa, uint64_t len, uint64_t hva)
{
	struct qemu_priv *p = pm->priv;
	size_t n = pm->nranges;
	uint64_t *nh;

	/* merge with the previous range when both GPA and HVA continue */
	if (n && pm->ranges[n - 1].start + pm->ranges[n - 1].len == gpa &&
	    p->hva[n - 1] + pm->ranges[n - 1].len == hva) {
		pm->ranges[n - 1].len += len;
		return 0;
	}
	nh = realloc(p->hva, (n + 1) * sizeof(*nh));
	if (!nh)
		return -ENOMEM;
	p->hva = nh;
	nh[n] = hva;
	return physmem_add_range(pm, gpa, len);
}

int physmem_open_qemu(pid_t pid, const char *qmp_path, struct physmem **out)
{
	char sock[PATH_MAX] = "";
	struct qmp *q = NULL;
	struct qemu_ram_range *r = NULL;
	struct qemu_ramblock *rb = NULL;
	struct vcpu_state *vc = NULL;
	struct block *blocks = NULL;
	struct vma *vmas = NULL;
	size_t nr = 0, nrb = 0, nvc = 0, nblocks = 0, nvmas = 0;
	uint64_t base = 0, plugged = 0, sum = 0;
	struct physmem *pm = NULL;
	int err;

	*out = NULL;
	err = check_qemu_pid(pid);
	if (err)
		return err;
	if (!qmp_path) {
		err = qemu_proc_find_qmp(pid, sock, sizeof(sock));
		if (err == -ENOENT)
			p_err("QEMU pid %d has no QMP UNIX socket on its command line (-qmp unix:PATH); pass one",
			      (int)pid);
		if (err)
			return err == -ESRCH || err == -ENOMEM ? err : -ENOENT;
		qmp_path = sock;
	}
	err = qmp_open(qmp_path, 0, &q);
	if (err)
		return err;
	err = qmp_query_ram_size(q, &base, &plugged);
	if (!err)
		err = qmp_read_mtree(q, &r, &nr);
	if (!err)
		err = qmp_read_ramblocks(q, &rb, &nrb);
	if (err)
		goto out;
	if (qmp_read_vcpus(q, &vc, &nvc))
		p_warn("QEMU pid %d: no vCPU registers over QMP; verifying the RAM map without them", (int)pid);

	blocks = calloc(nrb, sizeof(*blocks));
	if (!blocks) {
		err = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < nrb; i++) {
		bool mapped = false;

		if (!is_main_ram_block(rb[i].name) || !rb[i].used)
			continue;
		for (size_t j = 0; j < nr && !mapped; j++)
			mapped = !strcmp(r[j].block, rb[i].name);
		if (!mapped)
			continue;
		snprintf(blocks[nblocks].name, sizeof(blocks[nblocks].name), "%s", rb[i].name);
		blocks[nblocks].used = rb[i].used;
		sum += rb[i].used;
		nblocks++;
	}
	if (!nblocks) {
		p_err("QEMU pid %d: no guest RAM block found in `info ramblock` / `info mtree -f`", (int)pid);
		err = -ENOENT;
		goto out;
	}
	if (sum != base + plugged)
		p_warn("QEMU pid %d: RAM blocks total %llu bytes but QEMU reports %llu bytes of RAM", (int)pid,
		       (unsigned long long)sum, (unsigned long long)(base + plugged));
	err = read_maps(pid, &vmas, &nvmas);
	if (err) {
		p_err("cannot read /proc/%d/maps: %s", (int)pid, strerror(-err));
		goto out;
	}
	for (size_t i = 0; i < nblocks; i++) {
		err = locate_block(q, pid, &blocks[i], r, nr, vc, nvc, vmas, nvmas);
		if (err)
			goto out;
	}

	pm = new_qemu_pm(pid);
	if (!pm) {
		err = -ENOMEM;
		goto out;
	}
	for (size_t j = 0; j < nr; j++) {
		const struct block *b = NULL;
		uint64_t len = r[j].len;

		for (size_t i = 0; i < nblocks && !b; i++)
			if (!strcmp(blocks[i].name, r[j].block))
				b = &blocks[i];
		if (!b)
			continue;
		if (r[j].offset >= b->used)
			continue;
		if (len > b->used - r[j].offset)
			len = b->used - r[j].offset;   /* never read past the block's mapping */
		err = add_qemu_range(pm, r[j].gpa, len, b->hva + r[j].offset);
		if (err)
			goto out;
	}
	err = physmem_finalize_ranges(pm);
	if (err) {
		p_err("QEMU pid %d: overlapping RAM ranges in `info mtree -f`", (int)pid);
		goto out;
	}
	pm->vcpus = vc;
	pm->nvcpus = nvc;
	vc = NULL;
	*out = pm;
	pm = NULL;
out:
	physmem_close(pm);
	qmp_close(q);
	free(r);
	free(rb);
	free(vc);
	free(blocks);
	free(vmas);
	return err;
}

uint64_t physmem_qemu_hva(const struct physmem *pm, uint64_t gpa)
{
	const struct qemu_priv *p;
	long i;

	if (!pm || pm->ops != &qemu_ops)
		return 0;
	p = pm->priv;
	i = physmem_find_range(pm, gpa);
	return i < 0 ? 0 : p->hva[i] + (gpa - pm->ranges[i].start);
}

int physmem_qemu_set_memslots(struct physmem *pm, const struct kvm_memslot_map *slots, size_t n)
{
	struct qemu_priv *p;
	struct phys_range *nr = NULL;
	uint64_t *nh = NULL;
	size_t cnt = 0, cap = 0;
	int disagree = 0;

	if (!pm || pm->ops != &qemu_ops)
		return -EINVAL;
	p = pm->priv;
	/* Re-cut every range at memslot boundaries; each piece takes the memslot's HVA when a slot covers it. */
	for (size_t i = 0; i < pm->nranges; i++) {
		uint64_t g = pm->ranges[i].start, end = g + pm->ranges[i].len;

		while (g < end) {
			uint64_t pend = end, hva = p->hva[i] + (g - pm->ranges[i].start), want = hva;

			for (size_t s = 0; s < n; s++) {
				if (!slots[s].size)
					continue;
				if (g >= slots[s].gpa && g - slots[s].gpa < slots[s].size) {
					want = slots[s].hva + (g - slots[s].gpa);
					if (slots[s].gpa + slots[s].size < pend)
						pend = slots[s].gpa + slots[s].size;
				} else if (slots[s].gpa > g && slots[s].gpa < pend) {
					pend = slots[s].gpa;
				}
			}
			if (want != hva) {
				p_warn("GPA %#llx-%#llx: QMP-derived host address %#llx, KVM memslot says %#llx; using the "
				       "memslot", (unsigned long long)g, (unsigned long long)pend - 1,
				       (unsigned long long)hva, (unsigned long long)want);
				disagree++;
			}
			if (cnt == cap) {
				size_t ncap = cap ? cap * 2 : 16;
				struct phys_range *r2 = realloc(nr, ncap * sizeof(*r2));
				uint64_t *h2 = r2 ? realloc(nh, ncap * sizeof(*h2)) : NULL;

				if (r2)
					nr = r2;
				if (!h2) {
					free(nr);
					free(nh);
					return -ENOMEM;
				}
				nh = h2;
				cap = ncap;
			}
			/* keep pieces merged when both GPA and HVA continue */
			if (cnt && nr[cnt - 1].start + nr[cnt - 1].len == g && nh[cnt - 1] + nr[cnt - 1].len == want) {
				nr[cnt - 1].len += pend - g;
			} else {
				nr[cnt] = (struct phys_range){ .start = g, .len = pend - g };
				nh[cnt++] = want;
			}
			g = pend;
		}
	}
	free(pm->ranges);
	free(p->hva);
	pm->ranges = nr;
	pm->nranges = cnt;
	p->hva = nh;
	return disagree;
}

int physmem_open_qemu_memslots(pid_t pid, const struct kvm_memslot_map *slots, size_t n, struct physmem **out)
{
	struct physmem *pm;
	int err;

	*out = NULL;
	err = check_qemu_pid(pid);
	if (err)
		return err;
	pm = new_qemu_pm(pid);
	if (!pm)
		return -ENOMEM;
	/* sort by GPA through the generic range list: add in GPA order */
	for (size_t done = 0; done < n; done++) {
		size_t best = n;

		for (size_t s = 0; s < n; s++) {
			if (!slots[s].size || (pm->nranges && slots[s].gpa < physmem_end(pm)))
				continue;
			if (best == n || slots[s].gpa < slots[best].gpa)
				best = s;
		}
		if (best == n)
			break;
		err = add_qemu_range(pm, slots[best].gpa, slots[best].size, slots[best].hva);
		if (err)
			goto fail;
	}
	if (!pm->nranges) {
		p_err("no usable KVM memslots for QEMU pid %d", (int)pid);
		err = -ENOENT;
		goto fail;
	}
	err = physmem_finalize_ranges(pm);
	if (err)
		goto fail;
	*out = pm;
	return 0;
fail:
	physmem_close(pm);
	return err;
}
