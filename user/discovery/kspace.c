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

int kspace_setup(struct disc_ctx *c)
{
	struct discovery_result *r = c->res;
	uint64_t pob = 0;
	size_t max = c->obs->n + 1;

	c->roots = calloc(max, sizeof(*c->roots));
	if (!c->roots)
		return -ENOMEM;
	c->nroots = obs_distinct_roots(c->obs, c->roots, max);
	if (!c->nroots) {
		snprintf(r->reason, sizeof(r->reason), "no CR3 observed: give --cr3, --qmp, or a core with register notes");
		return -ENOENT;
	}
	if (kernel_root_find(c->pm, c->roots, c->nroots, &r->la57, &r->kernel_cr3, &pob)) {
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
struct region_list { struct data_region *v; size_t n, cap; bool want_nx; };

static int collect_data(uint64_t va, const struct x86_map *m, void *arg)
{
	struct region_list *l = arg;

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

/* Find "swapper/0\0" (3.x+) or "swapper\0" (older) in the kernel image's writable data. Stops at the
 * first max hits or when the byte budget is spent; hits are comm VAs in scan order. */
int kspace_find_init_comm(struct disc_ctx *c, uint64_t *hits, size_t max, size_t *nhits)
{
	static const char *const names[] = { "swapper/0", "swapper" };
	struct region_list l = { .want_nx = true };
	enum { CHUNK = 65536, OVERLAP = 16 };
	uint8_t *buf = malloc(CHUNK + OVERLAP);
	int err;

	*nhits = 0;
	if (!buf)
		return -ENOMEM;
	err = x86_walk(c->pm, c->res->kernel_cr3, c->res->la57, KERNEL_IMAGE_START, KERNEL_IMAGE_END, 1 << 20,
		       collect_data, &l);
	if (!err && !l.n) {   /* kernels that map their data executable: take every writable page */
		l.want_nx = false;
		err = x86_walk(c->pm, c->res->kernel_cr3, c->res->la57, KERNEL_IMAGE_START, KERNEL_IMAGE_END,
			       1 << 20, collect_data, &l);
	}
	if (err < 0)
		goto out;
	p_dbg("kernel image: %zu writable data regions (%llu bytes read so far)", l.n,
	      (unsigned long long)(c->pm->bytes_read - c->budget_start));
	for (size_t i = 0; i < l.n; i++)
		p_dbg("  data %#llx-%#llx", (unsigned long long)l.v[i].va, (unsigned long long)(l.v[i].va + l.v[i].len));

	/* init_task sits near the start of .data; once a hit is found, look only a little further for
	 * competing ones, so a large .bss is not read for nothing. */
	uint64_t after_hit = 0;
	for (size_t i = 0; i < l.n && *nhits < max && after_hit < (256 << 10); i++) {
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
					if (*nhits < max)
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
