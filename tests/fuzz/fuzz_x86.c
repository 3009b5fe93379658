/*
 * libFuzzer target: x86-64 address translation over arbitrary page tables.
 *
 * Input: cr3 (8 bytes LE), flags (1 byte: bit 0 = la57, bit 1 = cut a hole into RAM, bit 2 = RAM starts
 * at 1 MiB like a real PC's second range), nva (1 byte, ≤ 16), nva VAs (8 bytes each), then the
 * guest-physical memory image (GPA 0 = first image byte; at most 32 KiB).
 * x86_translate, vmem_read, x86_walk (whole space and a sub-range), x86_find_direct_map and
 * x86_detect_la57 run over it; none may crash, hang, read outside RAM (the buffer source faults instead),
 * break its leaf cap, or return an impossible mapping.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
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
	physmem_close(pm);
	free(img);
	return 0;
}
