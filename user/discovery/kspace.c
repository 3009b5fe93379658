/*
 * The kernel's address space, found from observed CR3s alone: which root maps the kernel, the paging
 * mode, the direct map, and where in the kernel image's writable data a "swapper/0" comm lies
 * (init_task is statically allocated there).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "common/log.h"
#include "arch/x86_32.h"
#include "discovery/internal.h"

#define KERNEL_IMAGE_START 0xffffffff80000000ULL   /* __START_KERNEL_map, every x86-64 kernel */
#define KERNEL_IMAGE_END   0xffffffffc0000000ULL   /* + KERNEL_IMAGE_SIZE (1 GiB with KASLR) */
#define X86_CR4_LA57       (1ULL << 12)

bool comm_valid(const char *s)
{
	int i;

	for (i = 0; i < 16 && s[i]; i++)
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
			return false;
	return i > 0 && i < 16;
}

/* A PGD that maps the kernel: the last top-level entry (kernel image, modules) and a few others in the
 * kernel half are present, and every present kernel-half entry looks like one Linux writes there (a
 * writable table: RW set, PS clear — PS is reserved at this level). The shape check matters: a page of
 * PTEs next to an observed root also has many present entries, and read as a PGD its garbage can even
 * "map" all of RAM with one 1 GiB leaf. Reads one 4 KiB page. */
static bool root_maps_kernel(struct physmem *pm, uint64_t root)
{
	uint64_t pgd[512];
	int present = 0;

	if (physmem_read(pm, root, pgd, sizeof(pgd)))
		return false;
	if (!(pgd[511] & 1))
		return false;
	for (int i = 256; i < 512; i++) {
		if (!(pgd[i] & 1))
			continue;
		if ((pgd[i] & 0x82) != 0x2)   /* RW, not PS */
			return false;
		present++;
	}
	return present >= 2;
}

int kernel_root_find(struct physmem *pm, const uint64_t *roots, size_t nroots, bool *la57, uint64_t *root,
		     uint64_t *page_offset_base)
{
	bool la57_known = false;

	/* LA57 from CR4 where a source told us, otherwise from the table's shape. */
	for (size_t i = 0; i < pm->nvcpus; i++)
		if (pm->vcpus[i].valid && pm->vcpus[i].cr4) {
			*la57 = !!(pm->vcpus[i].cr4 & X86_CR4_LA57);
			la57_known = true;
		}

	/* The observed root itself comes first: without PTI any process's PGD maps the kernel, and it may
	 * sit at an odd page whose even neighbour is anything (seen: a page of PTEs). Under PTI a user-mode
	 * CR3 names the user half of a pair (+4 KiB), which has no direct map, so the page with bit 12
	 * cleared (LibVMI's ~0x1fff) is tried next. A candidate counts only if the direct map is found
	 * through it; it is then used exactly (X86_CR3_EXACT), never guessed at again. */
	for (size_t i = 0; i < nroots && i < 16; i++) {
		uint64_t cands[2] = { roots[i] & X86_CR3_ADDR_MASK, roots[i] & X86_CR3_ADDR_MASK & ~0x1fffULL };

		for (int k = 0; k < 2; k++) {
			bool l57 = *la57;
			uint64_t pob;

			if ((k && cands[1] == cands[0]) || !root_maps_kernel(pm, cands[k]))
				continue;
			if (!la57_known)
				l57 = x86_detect_la57(pm, cands[k] | X86_CR3_EXACT);
			if (x86_find_direct_map(pm, cands[k] | X86_CR3_EXACT, l57, &pob))
				continue;
			*root = cands[k] | X86_CR3_EXACT;
			*la57 = l57;
			*page_offset_base = pob;
			return 0;
		}
	}
	return -ENOENT;
}

/* A 32-bit x86 guest: its paging mode (2 or 3 levels) from a vCPU's control registers; 0 if the vCPUs run long
 * mode or tell nothing (no register state: a raw image). */
static int vcpus_paging32(const struct physmem *pm)
{
	for (size_t i = 0; i < pm->nvcpus; i++) {
		const struct vcpu_state *v = &pm->vcpus[i];

		if (v->valid && v->cr0) {
			int levels = x86_32_paging_levels(v->cr0, v->cr4, v->efer);

			return levels > 0 ? levels : 0;   /* -EINVAL: long mode */
		}
	}
	return 0;
}

static bool in_roots(const struct disc_ctx *c, uint64_t v)
{
	for (size_t i = 0; i < c->nroots; i++)
		if (c->roots[i] == v)
			return true;
	return false;
}

/* With the vCPUs' mode known (levels) or not (0: guessed per root), the lowmem map of the first observed CR3 that
 * maps one as 32-bit tables: *root, *page_offset, *size. The raw CR3 values, not c->roots: those drop bits 11:0,
 * and a PAE page-directory-pointer table sits anywhere 32-byte aligned in its page. Under PTI a user-mode CR3
 * names the user copy (+4 KiB of an 8 KiB pgd), which maps no lowmem: the pgd's first page is tried next. */
static bool roots_map_lowmem32(struct disc_ctx *c, int *levels, uint64_t *root, uint64_t *page_offset,
			       uint64_t *size)
{
	uint64_t tried[32], vals[64];
	size_t ntried = 0, nvals = 0, count[64] = { 0 };

	/* the CR3s most often observed first: a long-lived process's (or the kernel's) tables, not those of a
	 * short-lived process that may exit — and its tables be freed — while discovery reads through them */
	for (size_t i = 0; i < c->obs->n; i++) {
		uint64_t raw = c->obs->v[i].cr3 & 0xffffffffULL;
		size_t k = 0;

		while (k < nvals && vals[k] != raw)
			k++;
		if (k == nvals && nvals < 64)
			vals[nvals++] = raw;
		if (k < nvals)
			count[k]++;
	}
	for (size_t a = 1; a < nvals; a++)
		for (size_t b = a; b > 0 && count[b] > count[b - 1]; b--) {
			uint64_t v = vals[b];
			size_t n = count[b];

			vals[b] = vals[b - 1];
			count[b] = count[b - 1];
			vals[b - 1] = v;
			count[b - 1] = n;
		}
	for (size_t i = 0; i < nvals && ntried < 30; i++) {
		uint64_t raw = vals[i];
		uint64_t cands[2] = { raw, raw & ~0x1fffULL };

		for (int k = 0; k < 2; k++) {
			uint64_t cr3 = cands[k];
			bool pae, seen = false;

			for (size_t j = 0; j < ntried && !seen; j++)
				seen = tried[j] == cr3;
			if (seen || !cr3)
				continue;
			tried[ntried++] = cr3;
			pae = *levels ? *levels == 3 : x86_32_detect_pae(c->pm, cr3);
			if (!x86_32_find_lowmem(c->pm, cr3, pae, page_offset, size)) {
				*levels = pae ? 3 : 2;
				*root = cr3;
				return true;
			}
		}
	}
	return false;
}

/* A 32-bit x86 guest: 4-byte pointers, the lowmem map as the direct map, and roots kept to the bits CR3 has
 * (a PAE root is 32-byte aligned). */
static int kspace_setup32(struct disc_ctx *c, int levels)
{
	struct discovery_result *r = c->res;
	uint64_t root = 0, lowmem = 0, size = 0;

	if (!roots_map_lowmem32(c, &levels, &root, &lowmem, &size)) {
		snprintf(r->reason, sizeof(r->reason), "a 32-bit x86 guest, but none of the %zu observed CR3 values maps "
			 "the kernel's lowmem", c->nroots);
		return -ENOENT;
	}
	c->psz = 4;
	r->paging32 = levels;
	r->kernel_cr3 = root;
	r->page_offset_base = lowmem;
	r->lowmem_size = size;
	vmem_init_32(&c->vm, c->pm, root, levels);
	vmem_set_direct_map(&c->vm, lowmem, size);
	c->nroots = 0;
	for (size_t i = 0; i < c->obs->n; i++) {
		uint64_t v = c->obs->v[i].cr3 & (levels == 3 ? 0xffffffe0ULL : 0xfffff000ULL);

		if (v && !in_roots(c, v))
			c->roots[c->nroots++] = v;
	}
	p_dbg("32-bit guest: %s paging, kernel root %#llx, lowmem at %#llx (%llu MiB)", levels == 3 ? "PAE" : "2-level",
	      (unsigned long long)root, (unsigned long long)lowmem, (unsigned long long)(size >> 20));
	return 0;
}

/* An arm64 guest: the kernel root from a vCPU's TTBR1 (under KPTI a vCPU at EL0 shows the trampoline's table,
 * which maps no linear map: each distinct TTBR1 is tried), VA sizes from its TCR_EL1, the linear map found
 * through it, and the observed TTBR0 roots with their ASIDs dropped. */
static int kspace_setup_arm64(struct disc_ctx *c)
{
	struct discovery_result *r = c->res;
	uint64_t tried[8], base = 0, covered = 0;
	size_t ntried = 0;
	struct arm64_mmu m = { 0 };
	bool found = false;

	for (size_t i = 0; i < c->pm->nvcpus && !found && ntried < 8; i++) {
		const struct vcpu_state *v = &c->pm->vcpus[i];
		bool seen = false;

		if (!v->valid || !v->aarch64 || !v->ttbr1)
			continue;
		for (size_t j = 0; j < ntried && !seen; j++)
			seen = tried[j] == v->ttbr1;
		if (seen)
			continue;
		tried[ntried++] = v->ttbr1;
		memset(&m, 0, sizeof(m));
		arm64_mmu_from_tcr(&m, v->tcr);
		m.ttbr1 = v->ttbr1;
		found = m.va_bits1 && !arm64_find_linear_map(c->pm, &m, &base, &covered);
	}
	if (!found) {
		snprintf(r->reason, sizeof(r->reason), "an arm64 guest, but none of the %zu TTBR1 values seen maps a "
			 "linear map of its RAM", ntried);
		return -ENOENT;
	}
	c->psz = 8;
	r->arm64 = true;
	r->va_bits0 = (uint8_t)m.va_bits0;
	r->va_bits1 = (uint8_t)m.va_bits1;
	r->lpa2 = m.lpa2;
	r->kernel_cr3 = arm64_ttbr_root(m.ttbr1, m.va_bits1, m.lpa2);
	r->page_offset_base = base;
	kernel_vmem_init(&c->vm, c->pm, r);
	c->nroots = 0;
	for (size_t i = 0; i < c->obs->n; i++) {
		uint64_t v = cr3_root_of(r, c->obs->v[i].cr3);

		if (v && !in_roots(c, v))
			c->roots[c->nroots++] = v;
	}
	p_dbg("arm64 guest: %u/%u-bit VAs%s, kernel root %#llx, linear map: PA 0 at %#llx (%llu MiB of RAM)",
	      r->va_bits1, r->va_bits0, r->lpa2 ? " (LPA2)" : "", (unsigned long long)r->kernel_cr3,
	      (unsigned long long)base, (unsigned long long)(covered >> 20));
	return 0;
}

int kspace_setup(struct disc_ctx *c)
{
	struct discovery_result *r = c->res;
	uint64_t pob = 0;
	size_t max = c->obs->n + 1;

	c->roots = calloc(max, sizeof(*c->roots));
	if (!c->roots)
		return -ENOMEM;
	c->nroots = obs_distinct_roots(c->obs, c->roots, max);
	if (!c->nroots && !physmem_aarch64(c->pm)) {   /* arm64: the root is TTBR1's (an ELF core's: found in memory) */
		snprintf(r->reason, sizeof(r->reason), "no CR3 observed: give --cr3, --qmp, or a core with register notes");
		return -ENOENT;
	}
	if (physmem_aarch64(c->pm))
		return kspace_setup_arm64(c);
	int levels32 = vcpus_paging32(c->pm);

	if (levels32)
		return kspace_setup32(c, levels32);
	if (kernel_root_find(c->pm, c->roots, c->nroots, &r->la57, &r->kernel_cr3, &pob)) {
		/* no register state (a raw image): a 32-bit guest shows itself only by its tables */
		if (!c->pm->nvcpus && !kspace_setup32(c, 0))
			return 0;
		snprintf(r->reason, sizeof(r->reason),
			 "none of the %zu observed CR3 values is a page-table root that maps a kernel and its direct map", c->nroots);
		return -ENOENT;
	}
	r->page_offset_base = pob;
	vmem_init(&c->vm, c->pm, r->kernel_cr3, r->la57);
	c->vm.page_offset_base = pob;
	c->vm.direct_map_size = physmem_total(c->pm) ? c->pm->ranges[c->pm->nranges - 1].start + c->pm->ranges[c->pm->nranges - 1].len : 0;
	p_dbg("kernel root %#llx la57=%d page_offset_base %#llx", (unsigned long long)r->kernel_cr3, r->la57,
	      (unsigned long long)pob);
	return 0;
}

/* Writable data of the kernel image, in VA order. */
struct data_region { uint64_t va, pa, len; };
struct region_list {
	struct data_region *v;
	size_t n, cap;
	bool want_nx;
	uint64_t ro_start, ro_end, best_ro_start, best_ro_end;   /* read-only runs (32-bit lowmem) */
};

static int collect_data(uint64_t va, const struct x86_map *m, void *arg)
{
	struct region_list *l = arg;

	if (!m->writable) {   /* runs of read-only leaves: in a 32-bit lowmem, the longest is the kernel's text */
		if (va != l->ro_end)
			l->ro_start = va;
		l->ro_end = va + m->page_size;
		if (l->ro_end - l->ro_start > l->best_ro_end - l->best_ro_start) {
			l->best_ro_start = l->ro_start;
			l->best_ro_end = l->ro_end;
		}
	}
	if (!m->writable || (l->want_nx && !m->nx))
		return 0;
	if (l->n && l->v[l->n - 1].va + l->v[l->n - 1].len == va && l->v[l->n - 1].pa + l->v[l->n - 1].len == m->pa) {
		l->v[l->n - 1].len += m->page_size;   /* merge physically and virtually contiguous leaves */
		return 0;
	}
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 64;
		void *p = realloc(l->v, cap * sizeof(*l->v));
		if (!p)
			return -ENOMEM;
		l->v = p;
		l->cap = cap;
	}
	l->v[l->n++] = (struct data_region){ va, m->pa, m->page_size };
	return 0;
}

/* arm64: the image sits in the vmalloc area (KASLR: anywhere in it), below the linear map before 5.4 and above
 * it since. The TTBR1 half is walked around the linear map (which maps all RAM writable, the image's alias
 * included); the image's data follows its text and read-only data, the longest read-only run. */
static int walk_image_arm64(struct disc_ctx *c, struct region_list *l)
{
	const struct discovery_result *r = c->res;
	struct arm64_mmu m = { .ttbr1 = r->kernel_cr3, .va_bits1 = r->va_bits1, .lpa2 = r->lpa2 };
	uint64_t half = 0 - (1ULL << r->va_bits1), lin_lo = half, lin_hi = half;
	int n = 0, k;

	if (c->pm->nranges) {   /* the linear map's VAs of RAM */
		lin_lo = r->page_offset_base + c->pm->ranges[0].start;
		lin_hi = r->page_offset_base + c->pm->ranges[c->pm->nranges - 1].start + c->pm->ranges[c->pm->nranges - 1].len;
	}
	if (lin_lo > half && (k = arm64_walk(c->pm, &m, half, lin_lo, 1 << 20, collect_data, l)) > 0)
		n += k;
	if (lin_hi && (k = arm64_walk(c->pm, &m, lin_hi, 0, 1 << 20, collect_data, l)) > 0)
		n += k;
	size_t w = 0;

	for (size_t i = 0; i < l->n; i++)
		if (l->v[i].va >= l->best_ro_end && l->best_ro_end)
			l->v[w++] = l->v[i];
	l->n = w;
	/* the init section (the per-CPU variables' link addresses) lay between them; freed and unmapped after boot */
	c->image_gap_lo = l->best_ro_end;
	c->image_gap_hi = l->n ? l->v[0].va : 0;
	return n;
}

/* The kernel image's leaves: x86-64's image map, or a 32-bit guest's lowmem (the image lies in it; 2-level
 * paging has no NX bit). A walk's leaf count (>= 0) or -errno. */
static int walk_image(struct disc_ctx *c, struct region_list *l)
{
	const struct discovery_result *r = c->res;

	if (r->paging32) {
		/* lowmem maps all of RAM writable: the image's data follows its text and read-only data, the
		 * longest read-only run */
		l->want_nx &= r->paging32 == 3;
		/* to the top: lowmem_size may stop short of lowmem's end (its search stops once most of RAM is
		 * covered), and KASLR puts the image anywhere in lowmem (seen: the last 32 MiB of a 512 MiB guest) */
		int n = x86_32_walk(c->pm, r->kernel_cr3, r->paging32 == 3, r->page_offset_base, 1ULL << 32, 1 << 20,
				    collect_data, l);
		size_t w = 0;

		for (size_t i = 0; i < l->n; i++)
			if (l->v[i].va >= l->best_ro_end && l->best_ro_end)
				l->v[w++] = l->v[i];
		l->n = w;
		return n;
	}
	if (r->arm64)
		return walk_image_arm64(c, l);
	return x86_walk(c->pm, r->kernel_cr3, r->la57, KERNEL_IMAGE_START, KERNEL_IMAGE_END, 1 << 20, collect_data, l);
}

/* Find "swapper/0\0" (3.x+) or "swapper\0" (older) in the kernel image's writable data, at VAs above `after`
 * (0: all). Stops at the first max hits or when the byte budget is spent; hits are comm VAs in scan order. */
int kspace_find_init_comm(struct disc_ctx *c, uint64_t after, uint64_t *hits, size_t max, size_t *nhits)
{
	static const char *const names[] = { "swapper/0", "swapper" };
	struct region_list l = { .want_nx = true };
	enum { CHUNK = 65536, OVERLAP = 16 };
	uint8_t *buf = malloc(CHUNK + OVERLAP);
	int err;

	*nhits = 0;
	if (!buf)
		return -ENOMEM;
	err = walk_image(c, &l);
	if (!err && !l.n) {   /* kernels that map their data executable: take every writable page */
		l.want_nx = false;
		err = walk_image(c, &l);
	}
	if (err < 0)
		goto out;
	if (c->res->arm64)
		p_dbg("kernel image: read-only run ends at %#llx, data starts at %#llx", (unsigned long long)c->image_gap_lo,
		      (unsigned long long)c->image_gap_hi);
	p_dbg("kernel image: %zu writable data regions (%llu bytes read so far)", l.n,
	      (unsigned long long)(c->pm->bytes_read - c->budget_start));
	for (size_t i = 0; i < l.n; i++)
		p_dbg("  data %#llx-%#llx", (unsigned long long)l.v[i].va, (unsigned long long)(l.v[i].va + l.v[i].len));

	/* init_task sits near the start of .data; once a hit is found, look only a little further for
	 * competing ones, so a large .bss is not read for nothing. */
	uint64_t after_hit = 0;
	for (size_t i = 0; i < l.n && *nhits < max && after_hit < (256 << 10); i++) {
		if (l.v[i].va + l.v[i].len <= after)
			continue;
		for (uint64_t off = 0; off < l.v[i].len && *nhits < max && after_hit < (256 << 10); off += CHUNK) {
			size_t len = l.v[i].len - off < CHUNK + OVERLAP ? l.v[i].len - off : CHUNK + OVERLAP;

			if (c->pm->bytes_read - c->budget_start + len > c->opts.max_bytes / 2) {
				err = -E2BIG;
				goto out;
			}
			if (*nhits)
				after_hit += CHUNK;
			if (physmem_read(c->pm, l.v[i].pa + off, buf, len))
				continue;   /* a hole: keep scanning */
			for (size_t k = 0; k < sizeof(names) / sizeof(names[0]); k++) {
				size_t nl = strlen(names[k]) + 1;
				for (uint8_t *p = buf; (p = memmem(p, buf + len - p, names[k], nl)); p++) {
					uint64_t va = l.v[i].va + off + (p - buf);
					if (p - buf >= CHUNK)   /* belongs to the next chunk */
						break;
					if (va > after && *nhits < max)
						hits[(*nhits)++] = va;
				}
			}
		}
	}
	err = 0;
out:
	free(l.v);
	free(buf);
	return err;
}
