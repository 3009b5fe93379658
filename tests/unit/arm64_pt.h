/*
 * Test helper: build real AArch64 stage-1 tables (4 KiB granule; 39-, 48- or 52-bit VAs; pages and 2 MiB /
 * 1 GiB blocks) inside a memory buffer that then serves as guest-physical memory. Header-only, like x86_pt.h.
 * One builder per TTBR: a kernel (TTBR1) and a user (TTBR0) table each get their own root.
 *
 *   struct a64_builder k;
 *   a64_init(&k, mem, size, 0x100000, 48);
 *   a64_map(&k, 0xffff000000200000, 0x200000, A64_2M, A64_RO);
 *   struct arm64_mmu m = { .ttbr1 = k.root, .va_bits1 = 48 };
 */
#ifndef VMOT_TEST_ARM64_PT_H
#define VMOT_TEST_ARM64_PT_H
#include <stdint.h>
#include <string.h>

#define A64_VALID  (1ULL << 0)
#define A64_TABLE  (1ULL << 1)   /* table, or page at the last level */
#define A64_EL0    (1ULL << 6)   /* AP[1] */
#define A64_RO     (1ULL << 7)   /* AP[2] */
#define A64_AF     (1ULL << 10)
#define A64_PXN    (1ULL << 53)
#define A64_UXN    (1ULL << 54)
#define A64_4K     (1ULL << 12)
#define A64_2M     (1ULL << 21)
#define A64_1G     (1ULL << 30)
#define A64_ADDR   0x0000fffffffff000ULL

struct a64_builder {
	unsigned char *mem;
	uint64_t mem_size, next, root;
	unsigned va_bits, levels;
};

static inline uint64_t a64_alloc(struct a64_builder *b)
{
	uint64_t t = b->next;

	if (t + 4096 > b->mem_size)
		return 0;
	memset(b->mem + t, 0, 4096);
	b->next += 4096;
	return t;
}

static inline void a64_init(struct a64_builder *b, void *mem, uint64_t mem_size, uint64_t table_area, unsigned va_bits)
{
	b->mem = mem;
	b->mem_size = mem_size;
	b->next = table_area;
	b->va_bits = va_bits;
	b->levels = (va_bits - 12 + 8) / 9;
	b->root = a64_alloc(b);
}

/* index of va in a table at level lvl (1 = page level) */
static inline uint64_t a64_index(const struct a64_builder *b, uint64_t va, unsigned lvl)
{
	unsigned shift = 12 + 9 * (lvl - 1);
	uint64_t mask = lvl == b->levels ? (1ULL << (b->va_bits - shift)) - 1 : 511;

	return (va >> shift) & mask;
}

static inline uint64_t *a64_entry(struct a64_builder *b, uint64_t table, uint64_t idx)
{
	return (uint64_t *)(b->mem + table + idx * 8);
}

/* Map one page or block; `flags` adds A64_EL0/A64_RO/A64_PXN/A64_UXN. Returns the descriptor's GPA. */
static inline uint64_t a64_map(struct a64_builder *b, uint64_t va, uint64_t pa, uint64_t size, uint64_t flags)
{
	unsigned leaf = size == A64_1G ? 3 : size == A64_2M ? 2 : 1;
	uint64_t table = b->root;

	for (unsigned lvl = b->levels; lvl > leaf; lvl--) {
		uint64_t *e = a64_entry(b, table, a64_index(b, va, lvl));

		if (!(*e & A64_VALID)) {
			uint64_t t = a64_alloc(b);

			if (!t)
				return 0;
			*e = t | A64_VALID | A64_TABLE;
		}
		table = *e & A64_ADDR;
	}
	uint64_t *e = a64_entry(b, table, a64_index(b, va, leaf));

	*e = pa | A64_VALID | A64_AF | (leaf == 1 ? A64_TABLE : 0) | flags;
	return table + a64_index(b, va, leaf) * 8;
}

static inline void a64_map_range(struct a64_builder *b, uint64_t va, uint64_t pa, uint64_t len, uint64_t size,
				 uint64_t flags)
{
	for (uint64_t off = 0; off < len; off += size)
		a64_map(b, va + off, pa + off, size, flags);
}

#endif
