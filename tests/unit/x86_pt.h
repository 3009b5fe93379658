/*
 * Test helper: build real x86-64 page tables (4- or 5-level, 4K/2M/1G pages) inside a memory buffer that
 * then serves as guest-physical memory (physmem_open_buffer). Header-only so any test can use it.
 *
 *   struct pt_builder b;
 *   pt_init(&b, mem, mem_size, 0x100000, false);   // tables allocated from GPA 1 MiB up, 4-level
 *   pt_map(&b, 0xffff888000000000, 0, PT_2M, PT_RW);
 *   x86_translate(pm, b.root, false, va, &m);
 */
#ifndef VMOT_TEST_X86_PT_H
#define VMOT_TEST_X86_PT_H
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#define PT_P   (1ULL << 0)
#define PT_RW  (1ULL << 1)
#define PT_US  (1ULL << 2)
#define PT_PS  (1ULL << 7)
#define PT_NX  (1ULL << 63)
#define PT_4K  (1ULL << 12)
#define PT_2M  (1ULL << 21)
#define PT_1G  (1ULL << 30)
#define PT_ADDR 0x000ffffffffff000ULL

struct pt_builder {
	unsigned char *mem;
	uint64_t mem_size;
	uint64_t next;      /* next free table GPA */
	uint64_t root;      /* GPA of the top-level table */
	int levels;
};

static inline uint64_t *pt_entry(struct pt_builder *b, uint64_t table, unsigned idx)
{
	return (uint64_t *)(b->mem + table + idx * 8ULL);
}

static inline uint64_t pt_alloc(struct pt_builder *b)
{
	uint64_t t = b->next;

	if (t + 4096 > b->mem_size)
		return 0;
	memset(b->mem + t, 0, 4096);
	b->next += 4096;
	return t;
}

static inline void pt_init(struct pt_builder *b, void *mem, uint64_t mem_size, uint64_t table_area, bool la57)
{
	b->mem = mem;
	b->mem_size = mem_size;
	b->next = table_area;
	b->levels = la57 ? 5 : 4;
	b->root = pt_alloc(b);
}

/* Map one page of `size` at va → pa with flags (PT_RW/PT_US/PT_NX); intermediate entries get P|RW|US.
 * Returns the GPA of the leaf entry (0 on failure). */
static inline uint64_t pt_map(struct pt_builder *b, uint64_t va, uint64_t pa, uint64_t size, uint64_t flags)
{
	int leaf_lvl = size == PT_1G ? 3 : size == PT_2M ? 2 : 1;
	uint64_t table = b->root;

	for (int lvl = b->levels; lvl > leaf_lvl; lvl--) {
		unsigned idx = (unsigned)(va >> (12 + 9 * (lvl - 1))) & 511;
		uint64_t *e = pt_entry(b, table, idx);

		if (!(*e & PT_P)) {
			uint64_t t = pt_alloc(b);

			if (!t)
				return 0;
			*e = t | PT_P | PT_RW | PT_US;
		}
		table = *e & PT_ADDR;
	}
	unsigned idx = (unsigned)(va >> (12 + 9 * (leaf_lvl - 1))) & 511;
	uint64_t *e = pt_entry(b, table, idx);

	*e = pa | PT_P | flags | (leaf_lvl > 1 ? PT_PS : 0);
	return table + idx * 8ULL;
}

/* Map [va, va+len) → [pa, ...) with pages of `size`. */
static inline void pt_map_range(struct pt_builder *b, uint64_t va, uint64_t pa, uint64_t len, uint64_t size,
				uint64_t flags)
{
	for (uint64_t off = 0; off < len; off += size)
		pt_map(b, va + off, pa + off, size, flags);
}

/* GPA of the entry for va at level lvl (5..1), 0 if an upper level is not present. */
static inline uint64_t pt_entry_gpa(struct pt_builder *b, uint64_t va, int lvl)
{
	uint64_t table = b->root;

	for (int l = b->levels; l > lvl; l--) {
		uint64_t e = *pt_entry(b, table, (unsigned)(va >> (12 + 9 * (l - 1))) & 511);

		if (!(e & PT_P) || (e & PT_PS))
			return 0;
		table = e & PT_ADDR;
	}
	return table + ((va >> (12 + 9 * (lvl - 1))) & 511) * 8ULL;
}

#endif
