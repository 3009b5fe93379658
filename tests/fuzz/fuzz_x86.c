/*
 * libFuzzer target: x86-64 address translation over arbitrary page tables.
 *
 * Input: cr3 (8 bytes LE), flags (1 byte: bit 0 = la57, bit 1 = cut a hole into RAM, bit 2 = RAM starts
 * at 1 MiB like a real PC's second range, bit 3 = PAE for the 32-bit walkers), nva (1 byte, ≤ 16), nva VAs
 * (8 bytes each), then the guest-physical memory image (GPA 0 = first image byte; at most 32 KiB).
 * x86_translate, vmem_read, x86_walk (whole space and a sub-range), x86_find_direct_map and
 * x86_detect_la57 run over it, and their 32-bit counterparts (x86_32_translate in both modes, vmem over
 * 32-bit tables, x86_32_walk, x86_32_find_lowmem, x86_32_detect_pae); none may crash, hang, read outside
 * RAM (the buffer source faults instead), break its leaf cap, or return an impossible mapping.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "arch/x86_32.h"
#include "arch/x86_64.h"

#define MAX_IMAGE (32u << 10)   /* 8 pages: enough tables for every shape, fast enough for 10^7 runs */

struct leaf_check {
	uint64_t n, max;
	int levels;
	uint64_t last_va;
	bool have_last;
};

static bool canonical(uint64_t va, int levels)
{
	unsigned s = 64 - (12 + 9 * (unsigned)levels);

	return (uint64_t)((int64_t)(va << s) >> s) == va;
}

static int leaf_cb(uint64_t va, const struct x86_map *m, void *arg)
{
	struct leaf_check *c = arg;

	c->n++;
	if (c->n > c->max)
		abort();   /* more leaves than the cap */
	if (m->page_size != 4096 && m->page_size != (1u << 21) && m->page_size != (1u << 30))
		abort();
	if ((va & (m->page_size - 1)) || (m->pa & (m->page_size - 1)) || !canonical(va, c->levels))
		abort();
	c->last_va = va;
	c->have_last = true;
	return 0;
}

static int leaf32_cb(uint64_t va, const struct x86_map *m, void *arg)
{
	struct leaf_check *c = arg;

	c->n++;
	if (c->n > c->max)
		abort();
	if (m->page_size != 4096 && m->page_size != (2u << 20) && m->page_size != (4u << 20))
		abort();
	if ((va & (m->page_size - 1)) || (m->pa & (m->page_size - 1)) || va >= (1ULL << 32))
		abort();
	if (c->have_last && va <= c->last_va)
		abort();   /* VA order */
	c->last_va = va;
	c->have_last = true;
	return 0;
}

/* The 32-bit walkers over the same image. */
static void fuzz_32(struct physmem *pm, uint64_t cr3, bool pae, const uint64_t *vas, size_t nva)
{
	unsigned char buf[64];
	uint64_t off, size;

	for (size_t i = 0; i < nva; i++) {
		for (int p = 0; p < 2; p++) {
			struct x86_map m;

			if (!x86_32_translate(pm, cr3, p, vas[i], &m)) {
				if (m.page_size != 4096 && m.page_size != (2u << 20) && m.page_size != (4u << 20))
					abort();
				if ((m.pa & (m.page_size - 1)) != (vas[i] & (m.page_size - 1)) || vas[i] >> 32)
					abort();
			}
		}
		struct vmem vm;
		vmem_init_32(&vm, pm, cr3, pae ? 3 : 2);
		vmem_read(&vm, (uint32_t)vas[i] - 7, buf, sizeof(buf));
		vmem_read(&vm, (uint32_t)vas[i], buf, sizeof(buf));
	}
	struct leaf_check c = { .max = 4096 };
	int n = x86_32_walk(pm, cr3, pae, 0, 0, c.max, leaf32_cb, &c);
	if (n >= 0 && (uint64_t)n != c.n)
		abort();
	if (!x86_32_find_lowmem(pm, cr3, pae, &off, &size) && (off < (1ULL << 30) || off >> 32 || !size))
		abort();
	x86_32_detect_pae(pm, cr3);
	x86_32_paging_levels(vas[0], cr3, pae);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint64_t cr3, vas[16] = { 0 }, pob;
	struct phys_range r[2];
	struct physmem *pm = NULL;
	unsigned char *img, buf[64];
	size_t nva, len, nr = 0;
	uint8_t flags;

	if (size < 10)
		return 0;
	memcpy(&cr3, data, 8);
	flags = data[8];
	nva = data[9] % 17;
	if (size < 10 + nva * 8)
		return 0;
	memcpy(vas, data + 10, nva * 8);
	data += 10 + nva * 8;
	size -= 10 + nva * 8;
	len = size < MAX_IMAGE ? size : MAX_IMAGE;
	if (!len)
		return 0;
	/* an exactly-sized heap copy: ASan catches any read past the image */
	img = malloc(len);
	memcpy(img, data, len);
	if ((flags & 2) && len >= 3 * 4096) {
		uint64_t cut = (len / 2) & ~4095ULL;
		r[nr++] = (struct phys_range){ 0, cut };
		r[nr++] = (struct phys_range){ cut + 4096, len - cut - 4096 };
	}
	if (physmem_open_buffer(img, len, nr ? r : NULL, nr, &pm)) {
		free(img);
		return 0;
	}
	bool la57 = flags & 1;
	int levels = la57 ? 5 : 4;

	for (size_t i = 0; i < nva; i++) {
		for (int m57 = 0; m57 < 2; m57++) {
			struct x86_map m;

			if (!x86_translate(pm, cr3, m57, vas[i], &m)) {
				if (m.page_size != 4096 && m.page_size != (1u << 21) && m.page_size != (1u << 30))
					abort();
				if ((m.pa & (m.page_size - 1)) != (vas[i] & (m.page_size - 1)))
					abort();
			}
		}
		struct vmem vm;
		vmem_init(&vm, pm, cr3, la57);
		vmem_read(&vm, vas[i] - 7, buf, sizeof(buf));   /* crosses a page when mapped so */
		vmem_read(&vm, vas[i], buf, sizeof(buf));       /* now through the TLB */
	}
	struct leaf_check c = { .max = 4096, .levels = levels };
	int n = x86_walk(pm, cr3, la57, 0, 0, c.max, leaf_cb, &c);
	if (n >= 0 && (uint64_t)n != c.n)
		abort();
	if (nva >= 2) {
		struct leaf_check c2 = { .max = 512, .levels = levels };
		uint64_t lo = vas[0] < vas[1] ? vas[0] : vas[1], hi = vas[0] < vas[1] ? vas[1] : vas[0];

		n = x86_walk(pm, cr3, la57, lo, hi, c2.max, leaf_cb, &c2);
		if (n >= 0 && (uint64_t)n != c2.n)
			abort();
	}
	if (!x86_find_direct_map(pm, cr3, la57, &pob) && !(pob >> 63))
		abort();   /* the direct map is in the kernel half */
	x86_detect_la57(pm, cr3);
	x86_paging_levels(vas[0], cr3, flags);
	fuzz_32(pm, cr3, flags & 8, vas, nva);
	physmem_close(pm);
	free(img);
	return 0;
}
