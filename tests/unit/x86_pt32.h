/*
 * Test helper: build real 32-bit x86 page tables — 2-level (4 KiB / 4 MiB pages) or PAE (4 KiB / 2 MiB) —
 * inside a memory buffer that then serves as guest-physical memory. Header-only, like x86_pt.h.
 *
 *   struct pt32_builder b;
 *   pt32_init(&b, mem, mem_size, 0x100000, true);     // PAE: the PDPT at 0x100000, 32 bytes
 *   pt32_map(&b, 0xc0000000, 0, PT32_2M, PT32_RW);
 *   x86_32_translate(pm, b.root, true, va, &m);
 */
#ifndef VMOT_TEST_X86_PT32_H
#define VMOT_TEST_X86_PT32_H
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#define PT32_P   (1ULL << 0)
#define PT32_RW  (1ULL << 1)
#define PT32_US  (1ULL << 2)
#define PT32_PS  (1ULL << 7)
#define PT32_NX  (1ULL << 63)
#define PT32_4K  (1ULL << 12)
#define PT32_2M  (1ULL << 21)
#define PT32_4M  (1ULL << 22)

struct pt32_builder {
	unsigned char *mem;
	uint64_t mem_size;
	uint64_t next;      /* next free table GPA */
	uint64_t root;      /* GPA of the page directory (2-level) or the PDPT (PAE) */
	bool pae;
};

static inline uint64_t pt32_alloc(struct pt32_builder *b)
{
	uint64_t t = b->next;

	if (t + 4096 > b->mem_size)
		return 0;
	memset(b->mem + t, 0, 4096);
	b->next += 4096;
	return t;
}

static inline uint64_t pt32_get(struct pt32_builder *b, uint64_t gpa)
{
	uint32_t v;
	uint64_t v64;

	if (b->pae) {
		memcpy(&v64, b->mem + gpa, 8);
		return v64;
	}
	memcpy(&v, b->mem + gpa, 4);
	return v;
}

static inline void pt32_set(struct pt32_builder *b, uint64_t gpa, uint64_t e)
{
	uint32_t v = (uint32_t)e;

	if (b->pae)
		memcpy(b->mem + gpa, &e, 8);
	else
		memcpy(b->mem + gpa, &v, 4);
}

/* root_offset: where in its page the PAE PDPT sits (a multiple of 32; Linux allocates PAE PGDs of 32 bytes) */
static inline void pt32_init_at(struct pt32_builder *b, void *mem, uint64_t mem_size, uint64_t table_area, bool pae,
				unsigned root_offset)
{
	b->mem = mem;
	b->mem_size = mem_size;
	b->next = table_area;
	b->pae = pae;
	b->root = pt32_alloc(b) + (pae ? root_offset : 0);
}

static inline void pt32_init(struct pt32_builder *b, void *mem, uint64_t mem_size, uint64_t table_area, bool pae)
{
	pt32_init_at(b, mem, mem_size, table_area, pae, 0);
}

/* GPA of the entry for va at level lvl (PAE: 3..1, 2-level: 2..1) in table. */
static inline uint64_t pt32_slot(const struct pt32_builder *b, uint64_t table, uint64_t va, int lvl)
{
	if (b->pae)
		return table + (lvl == 3 ? (va >> 30) & 3 : lvl == 2 ? (va >> 21) & 511 : (va >> 12) & 511) * 8;
	return table + (lvl == 2 ? (va >> 22) & 1023 : (va >> 12) & 1023) * 4;
}

/* Map one page of `size` at va → pa with flags (PT32_RW/PT32_US/PT32_NX); intermediate entries get P|RW|US
 * (a PAE PDPTE only P: its other low bits are reserved). Returns the GPA of the leaf entry, 0 on failure. */
static inline uint64_t pt32_map(struct pt32_builder *b, uint64_t va, uint64_t pa, uint64_t size, uint64_t flags)
{
	int top = b->pae ? 3 : 2, leaf = size == PT32_4K ? 1 : 2;
	uint64_t table = b->root;

	for (int lvl = top; lvl > leaf; lvl--) {
		uint64_t slot = pt32_slot(b, table, va, lvl), e = pt32_get(b, slot);

		if (!(e & PT32_P)) {
			uint64_t t = pt32_alloc(b);

			if (!t)
				return 0;
			e = t | PT32_P | (b->pae && lvl == 3 ? 0 : PT32_RW | PT32_US);
			pt32_set(b, slot, e);
		}
		table = e & 0x000ffffffffff000ULL;
	}
	uint64_t slot = pt32_slot(b, table, va, leaf), e = pa | PT32_P | flags | (leaf == 2 ? PT32_PS : 0);

	if (!b->pae && leaf == 2)   /* PSE-36: PA bits 39:32 go to PDE bits 20:13 */
		e = (pa & 0xffc00000ULL) | ((pa >> 32) & 0xff) << 13 | PT32_P | PT32_PS | (flags & 0xfff);
	pt32_set(b, slot, e);
	return slot;
}

static inline void pt32_map_range(struct pt32_builder *b, uint64_t va, uint64_t pa, uint64_t len, uint64_t size,
				  uint64_t flags)
{
	for (uint64_t off = 0; off < len; off += size)
		pt32_map(b, va + off, pa + off, size, flags);
}

#endif
