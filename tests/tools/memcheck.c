/*
 * memcheck: read guest memory through one physmem backend and print it as hex, optionally comparing
 * every read with QEMU's own view over QMP (xp for physical, x for virtual addresses).
 *
 *   memcheck (--raw FILE | --core FILE | --pid PID [--qmp SOCK]) [options] [ADDR[:LEN] ...]
 *     --virt            ADDRs are guest-virtual, translated with --cr3 (default: vCPU 0's CR3)
 *     --cr3 X           page-table root (raw CR3 value; PCID/PTI bits are fine)
 *     --la57 / --no-la57  paging mode (default: from the vCPU's CR4, else x86_detect_la57)
 *     --paging32 2|3    a 32-bit guest's paging, 2-level or PAE (default: from the vCPU's CR0/CR4/EFER when it
 *                       runs 32-bit paging, else x86-64); --info then prints the lowmem map, and --sample
 *                       --virt samples it
 *     --compare SOCK    compare each read with QMP xp/x through SOCK; exit 1 on any difference
 *     --cpu N           vCPU for --compare of virtual reads and for the default CR3 (default 0)
 *     --info            print ranges, vCPU registers, paging mode, direct map
 *     --sample N        also read N pseudo-random addresses (in RAM, or in the direct map with --virt)
 *     --ttbr0 X --ttbr1 X --tcr X
 *                       an arm64 guest: virtual addresses go through arch/arm64.c with these registers (as a
 *                       debugger reads them; --sample does not apply, --leaves does)
 *     --range START:END restrict --sample to guest-physical [START, END)
 *     --leaves N        with --virt: also read at N random places in random present leaves of the whole page
 *                       table that map RAM (user pages, vmalloc, large pages: what --sample's direct map does
 *                       not reach)
 *     --memslots        (--pid) cross-check the QMP-derived RAM map against KVM's memslots (BPF reader)
 *     --memslots-only   (--pid) build the source from KVM's memslots alone, without QMP
 *     --pause           stop the VM over --compare's socket before reading, `cont` at the end
 *     --bench SECONDS   measure translations/s and read bytes/s (prints "key value" lines)
 * Output: "P|V ADDR LEN HEX" per address; "DIFF ..." lines for mismatches; "FAULT ..." for unreadable.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "arch/arm64.h"
#include "arch/x86_32.h"
#include "arch/x86_64.h"
#include "capture/capture.h"
#include "common/log.h"
#include "mem/physmem.h"
#include "mem/qmp.h"

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;
static uint64_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static uint64_t range_lo, range_hi;

static uint64_t random_gpa(struct physmem *pm)
{
	uint64_t t = physmem_total(pm), x = rnd() % t;

	if (range_hi > range_lo) {
		for (int tries = 0; tries < 100000; tries++) {
			uint64_t a = (range_lo + rnd() % (range_hi - range_lo)) & ~7ULL;

			if (physmem_contains(pm, a, 64))
				return a;
		}
	}

	for (size_t i = 0; i < pm->nranges; i++) {
		if (x < pm->ranges[i].len)
			return (pm->ranges[i].start + x) & ~7ULL;
		x -= pm->ranges[i].len;
	}
	return 0;
}

static int count_leaf(uint64_t va, const struct x86_map *m, void *arg)
{
	(*(uint64_t *)arg)++;
	return 0;
}

/* Present leaves of a whole walk that map RAM, for --leaves (QEMU reads device registers behind MMIO leaves
 * such as the local APIC's; a memory source has no such thing to read). */
struct leaf_list {
	struct physmem *pm;
	uint64_t *va, *size;
	size_t n, cap;
};

static int keep_leaf(uint64_t va, const struct x86_map *m, void *arg)
{
	struct leaf_list *l = arg;

	if (physmem_overlap(l->pm, m->pa, m->page_size) != m->page_size)
		return 0;
	if (l->n == l->cap) {
		size_t ncap = l->cap ? l->cap * 2 : 4096;
		uint64_t *nv = realloc(l->va, ncap * sizeof(*nv)), *ns;

		if (!nv)
			return 1;
		l->va = nv;
		ns = realloc(l->size, ncap * sizeof(*ns));
		if (!ns)
			return 1;
		l->size = ns;
		l->cap = ncap;
	}
	l->va[l->n] = va;
	l->size[l->n++] = m->page_size;
	return 0;
}

/* A virtual read through arm64 tables, page by page. */
static int arm64_read(struct physmem *pm, const struct arm64_mmu *mmu, uint64_t va, unsigned char *buf, size_t len)
{
	while (len) {
		struct x86_map m;
		int err = arm64_translate(pm, mmu, va, &m);
		size_t chunk;

		if (err)
			return err;
		chunk = m.page_size - (va & (m.page_size - 1));
		if (chunk > len)
			chunk = len;
		err = physmem_read(pm, m.pa, buf, chunk);
		if (err)
			return err;
		buf += chunk;
		len -= chunk;
		va += chunk;
	}
	return 0;
}

static void hex(const unsigned char *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		printf("%02x", b[i]);
}

static int usage(void)
{
	fprintf(stderr, "usage: memcheck (--raw FILE | --core FILE | --pid PID [--qmp SOCK]) [--virt] [--cr3 X]\n"
			"                [--la57|--no-la57] [--paging32 2|3] [--compare SOCK] [--cpu N] [--info]\n"
			"                [--sample N] [--leaves N] [--bench SECONDS] [ADDR[:LEN] ...]\n");
	return 64;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "raw", required_argument, NULL, 'r' }, { "core", required_argument, NULL, 'c' },
		{ "pid", required_argument, NULL, 'p' }, { "qmp", required_argument, NULL, 'q' },
		{ "virt", no_argument, NULL, 'V' }, { "cr3", required_argument, NULL, '3' },
		{ "la57", no_argument, NULL, '5' }, { "no-la57", no_argument, NULL, '4' },
		{ "compare", required_argument, NULL, 'C' }, { "cpu", required_argument, NULL, 'u' },
		{ "info", no_argument, NULL, 'i' }, { "sample", required_argument, NULL, 's' },
		{ "bench", required_argument, NULL, 'b' }, { "verbose", no_argument, NULL, 'v' },
		{ "range", required_argument, NULL, 'R' }, { "pause", no_argument, NULL, 'P' },
		{ "memslots", no_argument, NULL, 'm' }, { "memslots-only", no_argument, NULL, 'M' },
		{ "paging32", required_argument, NULL, '2' }, { "leaves", required_argument, NULL, 'L' },
		{ "ttbr0", required_argument, NULL, 'T' }, { "ttbr1", required_argument, NULL, 't' },
		{ "tcr", required_argument, NULL, 'X' },
		{ NULL, 0, NULL, 0 },
	};
	const char *raw = NULL, *core = NULL, *qmp_path = NULL, *compare = NULL;
	int pid = 0, cpu = 0, la57 = -1, levels32 = -1, c, err, rc = 0;
	uint64_t nleaves = 0, lowmem = 0, lowmem_size = 0;
	struct leaf_list leaves_seen = { 0 };
	struct arm64_mmu a64 = { 0 };
	bool arm64 = false;
	uint64_t tcr = 0;
	bool virt = false, info = false, have_cr3 = false, pause = false;
	int memslots = 0;   /* 1 cross-check, 2 memslots only */
	struct kvm_memslot_map kslots[256];
	size_t nkslots = 0;
	uint64_t cr3 = 0, nsample = 0, ndiff = 0, nfault = 0, nok = 0, nonzero = 0;
	double bench = 0;
	struct physmem *pm = NULL;
	struct qmp *q = NULL;
	struct vmem vm;

	while ((c = getopt_long(argc, argv, "v", opts, NULL)) != -1) {
		switch (c) {
		case 'r': raw = optarg; break;
		case 'c': core = optarg; break;
		case 'p': pid = atoi(optarg); break;
		case 'q': qmp_path = optarg; break;
		case 'V': virt = true; break;
		case '3': cr3 = strtoull(optarg, NULL, 0); have_cr3 = true; break;
		case '5': la57 = 1; break;
		case '4': la57 = 0; break;
		case 'C': compare = optarg; break;
		case 'u': cpu = atoi(optarg); break;
		case 'i': info = true; break;
		case 's': nsample = strtoull(optarg, NULL, 0); break;
		case 'b': bench = atof(optarg); break;
		case 'v': log_verbose++; break;
		case 'P': pause = true; break;
		case '2': levels32 = atoi(optarg); break;
		case 'L': nleaves = strtoull(optarg, NULL, 0); break;
		case 'T': a64.ttbr0 = strtoull(optarg, NULL, 0); arm64 = true; break;
		case 't': a64.ttbr1 = strtoull(optarg, NULL, 0); arm64 = true; break;
		case 'X': tcr = strtoull(optarg, NULL, 0); arm64 = true; break;
		case 'm': memslots = 1; break;
		case 'M': memslots = 2; break;
		case 'R': {
			char *e;

			range_lo = strtoull(optarg, &e, 0);
			range_hi = *e == ':' ? strtoull(e + 1, NULL, 0) : 0;
			break;
		}
		default: return usage();
		}
	}
	if (!!raw + !!core + !!pid != 1 || (pause && !compare))
		return usage();
	if (pause) {
		if (qmp_open(compare, 0, &q) || qmp_command(q, "stop", NULL, NULL))
			return 1;
		qmp_close(q);
		q = NULL;
	}
	if (memslots) {
		struct memslot ms[256];
		int n = pid ? capture_read_memslots(pid, ms, 256) : -EINVAL;

		if (n < 0) {
			p_err("cannot read KVM memslots of pid %d: %s", pid, strerror(-n));
			return 1;
		}
		for (int i = 0; i < n && i < 256; i++) {
			if (ms[i].as_id != 0)
				continue;   /* SMM address space */
			kslots[nkslots++] = (struct kvm_memslot_map){
				.slot = ms[i].id, .gpa = ms[i].gpa, .size = ms[i].size, .hva = ms[i].hva,
			};
		}
	}
	if (raw)
		err = physmem_open_raw(raw, &pm);
	else if (core)
		err = physmem_open_elfcore(core, &pm);
	else if (memslots == 2)
		err = physmem_open_qemu_memslots(pid, kslots, nkslots, &pm);
	else
		err = physmem_open_qemu(pid, qmp_path, &pm);
	if (err)
		return 1;
	if (memslots == 1)
		printf("memslots %zu disagree %d\n", nkslots, physmem_qemu_set_memslots(pm, kslots, nkslots));

	const struct vcpu_state *v = (size_t)cpu < pm->nvcpus && pm->vcpus[cpu].valid ? &pm->vcpus[cpu] : NULL;

	if (!have_cr3 && v) {
		cr3 = v->cr3;
		have_cr3 = true;
	}
	if (levels32 < 0 && v && v->cr0)
		levels32 = x86_32_paging_levels(v->cr0, v->cr4, v->efer);   /* -EINVAL in long mode */
	if (levels32 != 2 && levels32 != 3)
		levels32 = 0;
	if (la57 < 0 && v && v->cr4)
		la57 = (v->cr4 >> 12) & 1;
	if (la57 < 0 && have_cr3 && !levels32)
		la57 = x86_detect_la57(pm, cr3);
	if (la57 < 0)
		la57 = 0;
	if (arm64)
		arm64_mmu_from_tcr(&a64, tcr);
	if (virt && !have_cr3 && !arm64) {
		p_err("--virt needs --cr3 (the source carries no vCPU state)");
		return 1;
	}
	if (levels32) {
		vmem_init_32(&vm, pm, cr3, levels32);
		if (have_cr3 && x86_32_find_lowmem(pm, cr3, levels32 == 3, &lowmem, &lowmem_size))
			lowmem = lowmem_size = 0;
	} else {
		vmem_init(&vm, pm, cr3, la57);
	}
	if (nleaves && virt) {
		leaves_seen.pm = pm;
		int n = arm64 ? arm64_walk(pm, &a64, 0, 0, 0, keep_leaf, &leaves_seen)
			: levels32 ? x86_32_walk(pm, cr3, levels32 == 3, 0, 0, 0, keep_leaf, &leaves_seen)
				   : x86_walk(pm, cr3, la57, 0, 0, 0, keep_leaf, &leaves_seen);

		if (n <= 0 || !leaves_seen.n) {
			if (arm64)
				p_err("--leaves: the tables of TTBR0 %#" PRIx64 " / TTBR1 %#" PRIx64 " map no RAM", a64.ttbr0,
				      a64.ttbr1);
			else
				p_err("--leaves: the page tables at %#" PRIx64 " map no RAM", cr3);
			return 1;
		}
	}

	if (info && levels32) {
		printf("source %s ranges %zu total %" PRIu64 "\n", pm->ops->kind, pm->nranges, physmem_total(pm));
		for (size_t i = 0; i < pm->nvcpus; i++) {
			const struct vcpu_state *x = &pm->vcpus[i];

			printf("vcpu %u valid %d cr0 %#" PRIx64 " cr3 %#" PRIx64 " cr4 %#" PRIx64 " efer %#" PRIx64
			       " fs_base %#" PRIx64 " rip %#" PRIx64 " levels32 %d\n", x->id, x->valid, x->cr0, x->cr3,
			       x->cr4, x->efer, x->fs_base, x->rip, x86_32_paging_levels(x->cr0, x->cr4, x->efer));
		}
		if (have_cr3)
			printf("cr3 %#" PRIx64 " levels32 %d detect_pae %d lowmem %s%#" PRIx64 " lowmem_bytes %" PRIu64 "\n",
			       cr3, levels32, x86_32_detect_pae(pm, cr3), lowmem_size ? "" : "none ", lowmem,
			       lowmem_size);
	} else if (info) {
		uint64_t pob = 0;

		printf("source %s ranges %zu total %" PRIu64 "\n", pm->ops->kind, pm->nranges, physmem_total(pm));
		for (size_t i = 0; i < pm->nranges; i++) {
			uint64_t hva = physmem_qemu_hva(pm, pm->ranges[i].start);

			printf("range %016" PRIx64 "-%016" PRIx64, pm->ranges[i].start,
			       pm->ranges[i].start + pm->ranges[i].len - 1);
			if (hva)
				printf(" hva %#" PRIx64, hva);
			printf("\n");
		}
		for (size_t i = 0; i < pm->nvcpus; i++) {
			const struct vcpu_state *x = &pm->vcpus[i];

			printf("vcpu %u valid %d cr0 %#" PRIx64 " cr3 %#" PRIx64 " cr4 %#" PRIx64 " efer %#" PRIx64
			       " gs_base %#" PRIx64 " kernel_gs_base %#" PRIx64 " rip %#" PRIx64 " levels %d\n",
			       x->id, x->valid, x->cr0, x->cr3, x->cr4, x->efer, x->gs_base, x->kernel_gs_base, x->rip,
			       x86_paging_levels(x->cr0, x->cr4, x->efer));
		}
		if (have_cr3) {
			double t0 = now_s();
			int e = x86_find_direct_map(pm, cr3, la57, &pob);

			printf("cr3 %#" PRIx64 " la57 %d detect_la57 %d direct_map %s%#" PRIx64 " (%.3f s)\n", cr3, la57,
			       x86_detect_la57(pm, cr3), e ? "none " : "", pob, now_s() - t0);
		}
	}

	if (compare) {
		err = qmp_open(compare, 0, &q);
		if (err)
			return 1;
	}

	if (arm64 && nsample) {
		p_err("--sample does not apply to an arm64 guest (give addresses, or --leaves)");
		return 1;
	}
	for (int i = optind; i < argc || nsample || (nleaves && leaves_seen.n); ) {
		uint64_t addr, len = 16;
		unsigned char buf[4096], ref[4096];

		if (i < argc) {
			char *colon;

			addr = strtoull(argv[i], &colon, 0);
			if (*colon == ':')
				len = strtoull(colon + 1, NULL, 0);
			i++;
		} else if (!nsample) {
			size_t k = (size_t)(rnd() % leaves_seen.n);

			nleaves--;
			len = 16;
			addr = leaves_seen.va[k] + (rnd() % leaves_seen.size[k] & ~15ULL);
		} else {
			nsample--;
			addr = random_gpa(pm);
			if (virt && levels32) {
				if (!lowmem_size) {
					p_err("--sample with --virt needs the lowmem map");
					return 1;
				}
				while (addr + 64 > lowmem_size)
					addr = random_gpa(pm);
				addr += lowmem;
			} else if (virt) {
				static uint64_t pob;

				if (!pob && x86_find_direct_map(pm, cr3, la57, &pob)) {
					p_err("--sample with --virt needs a direct map");
					return 1;
				}
				addr += pob;
			}
			len = 64;
		}
		if (len > sizeof(buf))
			len = sizeof(buf);
		err = !virt ? physmem_read(pm, addr, buf, len)
		      : arm64 ? arm64_read(pm, &a64, addr, buf, len) : vmem_read(&vm, addr, buf, len);
		if (err == -ESRCH)
			return 1;   /* the source is gone; the error was printed */
		if (err) {
			printf("FAULT %c %016" PRIx64 " %" PRIu64 " %s\n", virt ? 'V' : 'P', addr, len, strerror(-err));
			nfault++;
		} else {
			printf("%c %016" PRIx64 " %" PRIu64 " ", virt ? 'V' : 'P', addr, len);
			hex(buf, len);
			printf("\n");
		}
		if (q) {
			int e2 = virt ? qmp_x(q, cpu, addr, ref, len) : qmp_xp(q, addr, ref, len);

			if (e2 == -EFAULT && err) {
				nok++;   /* both agree it is not accessible */
			} else if (e2 || err || memcmp(buf, ref, len)) {
				printf("DIFF %c %016" PRIx64 " qemu %s ", virt ? 'V' : 'P', addr, e2 ? strerror(-e2) : "");
				if (!e2)
					hex(ref, len);
				printf("\n");
				ndiff++;
			} else {
				nok++;
				for (uint64_t k = 0; k < len; k++)
					if (buf[k]) {
						nonzero++;
						break;
					}
			}
		}
	}

	if (bench > 0) {
		uint64_t pob = 0, ntr = 0, ncached = 0, bytes = 0, leaves = 0, pa;
		double t0, dt_tr, dt_cached, dt_rd, dt_walk;
		unsigned char page[4096];
		struct vmem bv;
		int nl;

		if (!have_cr3 || x86_find_direct_map(pm, cr3, la57, &pob)) {
			p_err("--bench needs a CR3 with a direct map");
			return 1;
		}
		/* full walk of the kernel half, as discovery does */
		t0 = now_s();
		nl = x86_walk(pm, cr3, la57, 1ULL << 63, 0, 0, count_leaf, &leaves);
		dt_walk = now_s() - t0;
		if (nl == -ESRCH)
			return 1;
		/* uncached translations of random direct-map addresses (a full page walk each) */
		t0 = now_s();
		while (now_s() - t0 < bench) {
			for (int k = 0; k < 256; k++) {
				struct x86_map m;
				int e = x86_translate(pm, cr3, la57, pob + random_gpa(pm), &m);

				if (e == -ESRCH)
					return 1;
				if (!e)
					ntr++;
			}
		}
		dt_tr = now_s() - t0;
		/* cached translations (vmem TLB, no direct-map shortcut) over a 1 MiB working set of vmalloc-like
		 * 4 KiB-stride addresses in the direct map */
		vmem_init(&bv, pm, cr3, la57);
		t0 = now_s();
		while (now_s() - t0 < bench / 4) {
			for (int k = 0; k < 4096; k++)
				if (vmem_translate(&bv, pob + 0x1000000 + (uint64_t)(k % 256) * 4096, &pa) == 0)
					ncached++;
		}
		dt_cached = now_s() - t0;
		/* bytes: 4 KiB physical reads at random RAM pages */
		t0 = now_s();
		while (now_s() - t0 < bench) {
			for (int k = 0; k < 64; k++) {
				int e = physmem_read(pm, random_gpa(pm) & ~0xfffULL, page, sizeof(page));

				if (e == -ESRCH)
					return 1;
				if (!e)
					bytes += sizeof(page);
			}
		}
		dt_rd = now_s() - t0;
		printf("source %s\nguest_ram_bytes %" PRIu64 "\nla57 %d\n", pm->ops->kind, physmem_total(pm), la57);
		printf("kernel_half_walk_s %.4f\nkernel_half_leaves %" PRIu64 "\n", dt_walk, leaves);
		printf("translations_per_s %.0f\ncached_translations_per_s %.0f\n", ntr / dt_tr, ncached / dt_cached);
		printf("read_bytes_per_s %.0f\nread_size 4096\n", bytes / dt_rd);
	}

	if (q) {
		printf("compare: %" PRIu64 " equal (%" PRIu64 " non-zero), %" PRIu64 " different\n", nok, nonzero, ndiff);
		if (pause)
			qmp_command(q, "cont", NULL, NULL);
		qmp_close(q);
	}
	if (ndiff)
		rc = 1;
	physmem_close(pm);
	free(leaves_seen.va);
	free(leaves_seen.size);
	(void)nfault;
	return rc;
}
