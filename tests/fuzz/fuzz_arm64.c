/*
 * libFuzzer target: AArch64 stage-1 translation over arbitrary descriptors (issue 17).
 *
 * Input: ttbr0 (8 bytes LE), ttbr1 (8), mode (1 byte: bits 1:0 TTBR0's VA size, bits 3:2 TTBR1's — 0 off, 1 39-bit,
 * 2 48-bit, 3 52-bit; bit 4 LPA2), nva (1 byte, ≤ 16), nva VAs (8 bytes each), then the guest-physical memory image
 * (GPA 0 = first image byte; at most 32 KiB). arm64_translate (each VA) and arm64_walk (whole space and a
 * sub-range) run over it; none may crash, hang, read outside RAM, break its leaf cap, report leaves out of VA
 * order, or return an impossible mapping.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "arch/arm64.h"

#define MAX_IMAGE (32u << 10)

static const unsigned VA_BITS[4] = { 0, 39, 48, 52 };

struct leaf_check {
	uint64_t n, max, last;
	bool have_last;
};

static int leaf_cb(uint64_t va, const struct x86_map *m, void *arg)
{
	struct leaf_check *c = arg;

	if (++c->n > c->max)
		abort();
	if (m->page_size != 4096 && m->page_size != (2u << 20) && m->page_size != (1u << 30))
		abort();
	if ((va & (m->page_size - 1)) || (m->pa & (m->page_size - 1)))
		abort();
	if (c->have_last && va <= c->last)
		abort();
	c->last = va;
	c->have_last = true;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct arm64_mmu mmu = { 0 };
	uint64_t vas[16] = { 0 };
	struct physmem *pm = NULL;
	unsigned char *img;
	size_t nva, len;
	uint8_t mode;

	if (size < 18)
		return 0;
	memcpy(&mmu.ttbr0, data, 8);
	memcpy(&mmu.ttbr1, data + 8, 8);
	mode = data[16];
	nva = data[17] % 17;
	if (size < 18 + nva * 8)
		return 0;
	memcpy(vas, data + 18, nva * 8);
	data += 18 + nva * 8;
	size -= 18 + nva * 8;
	len = size < MAX_IMAGE ? size : MAX_IMAGE;
	if (!len)
		return 0;
	mmu.va_bits0 = VA_BITS[mode & 3];
	mmu.va_bits1 = VA_BITS[(mode >> 2) & 3];
	mmu.lpa2 = mode & 16;
	img = malloc(len);   /* exactly sized: ASan catches any read past the image */
	memcpy(img, data, len);
	if (physmem_open_buffer(img, len, NULL, 0, &pm)) {
		free(img);
		return 0;
	}
	for (size_t i = 0; i < nva; i++) {
		struct x86_map m;

		if (!arm64_translate(pm, &mmu, vas[i], &m)) {
			if (m.page_size != 4096 && m.page_size != (2u << 20) && m.page_size != (1u << 30))
				abort();
			if ((m.pa & (m.page_size - 1)) != (vas[i] & (m.page_size - 1)))
				abort();
		}
	}
	struct leaf_check c = { .max = 4096 };
	int n = arm64_walk(pm, &mmu, 0, 0, c.max, leaf_cb, &c);

	if (n >= 0 && (uint64_t)n != c.n)
		abort();
	if (nva >= 2) {
		struct leaf_check c2 = { .max = 512 };
		uint64_t lo = vas[0] < vas[1] ? vas[0] : vas[1], hi = vas[0] < vas[1] ? vas[1] : vas[0];

		n = arm64_walk(pm, &mmu, lo, hi, c2.max, leaf_cb, &c2);
		if (n >= 0 && (uint64_t)n != c2.n)
			abort();
	}
	arm64_mmu_from_tcr(&mmu, vas[0]);
	physmem_close(pm);
	free(img);
	return 0;
}
