/* cmocka: 32-bit x86 page walker (2-level and PAE), range walk, lowmem map and PAE detection, vmem over
 * 32-bit tables, hostile tables — on real page tables built in a memory buffer (tests/unit/x86_pt32.h). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "arch/x86_32.h"
#include "x86_pt32.h"

#define MEM_SIZE (32ULL << 20)
#define TABLES   (24ULL << 20)       /* tables live in [24 MiB, 32 MiB) */

struct fx {
	unsigned char *mem;
	struct physmem *pm;
	struct pt32_builder b;
};

static struct fx *fx_new_at(bool pae, unsigned root_offset)
{
	struct fx *f = calloc(1, sizeof(*f));

	f->mem = calloc(1, MEM_SIZE);
	assert_non_null(f->mem);
	for (uint64_t i = 0; i < TABLES; i += 4)
		*(uint32_t *)(f->mem + i) = 0x11223344u ^ (uint32_t)i;   /* recognisable data */
	pt32_init_at(&f->b, f->mem, MEM_SIZE, TABLES, pae, root_offset);
	assert_int_equal(physmem_open_buffer(f->mem, MEM_SIZE, NULL, 0, &f->pm), 0);
	return f;
}

static struct fx *fx_new(bool pae) { return fx_new_at(pae, 0); }

static void fx_free(struct fx *f)
{
	physmem_close(f->pm);
	free(f->mem);
	free(f);
}

static void test_two_level_pages(void **state)
{
	struct fx *f = fx_new(false);
	struct x86_map m;

	(void)state;
	pt32_map(&f->b, 0x08048000, 0x5000, PT32_4K, PT32_US);
	pt32_map(&f->b, 0xc0400000, 0x800000, PT32_4M, PT32_RW);
	assert_int_equal(x86_32_translate(f->pm, f->b.root, false, 0x08048123, &m), 0);
	assert_int_equal(m.pa, 0x5123);
	assert_int_equal(m.page_size, 4096);
	assert_true(m.user);
	assert_false(m.writable);   /* PDE RW=1, PTE RW=0 */
	assert_false(m.nx);
	assert_int_equal(x86_32_translate(f->pm, f->b.root, false, 0xc0712345, &m), 0);
	assert_int_equal(m.pa, 0x800000 + 0x312345);
	assert_int_equal(m.page_size, 4ULL << 20);
	assert_true(m.writable);
	assert_false(m.user);
	/* not present, above 4 GiB, a PCD/PWT-flagged CR3 (low bits dropped) */
	assert_int_equal(x86_32_translate(f->pm, f->b.root, false, 0x08049000, &m), -EFAULT);
	assert_int_equal(x86_32_translate(f->pm, f->b.root, false, 0x1c0400000ULL, &m), -EFAULT);
	assert_int_equal(x86_32_translate(f->pm, f->b.root | 0x18, false, 0xc0400000, &m), 0);
	fx_free(f);
}

static void test_two_level_pse36_and_reserved(void **state)
{
	struct fx *f = fx_new(false);
	struct x86_map m;
	uint64_t slot;

	(void)state;
	slot = pt32_map(&f->b, 0xd0000000, 0x300000000ULL | 0x1400000, PT32_4M, PT32_RW);
	assert_int_equal(x86_32_translate(f->pm, f->b.root, false, 0xd0000010, &m), 0);
	assert_int_equal(m.pa, 0x301400010ULL);   /* beyond RAM: the caller's read faults, not the walk */
	*(uint32_t *)(f->mem + slot) |= 1u << 21;  /* reserved in a 4 MiB PDE */
	assert_int_equal(x86_32_translate(f->pm, f->b.root, false, 0xd0000010, &m), -EFAULT);
	fx_free(f);
}

static void test_pae_pages(void **state)
{
	struct fx *f = fx_new_at(true, 0x7e0);   /* a PDPT not at a page start, as Linux's 32-byte PGDs */
	struct x86_map m;
	uint64_t slot;

	(void)state;
	assert_int_equal(f->b.root & 0xfff, 0x7e0);
	pt32_map(&f->b, 0x0804a000, 0x123000, PT32_4K, PT32_US | PT32_RW | PT32_NX);
	pt32_map(&f->b, 0xc1000000, 0x1000000, PT32_2M, PT32_RW);
	pt32_map(&f->b, 0xf7800000, 0x140000000ULL, PT32_4K, PT32_RW);   /* PAE reaches above 4 GiB */
	assert_int_equal(x86_32_translate(f->pm, f->b.root, true, 0x0804a00c, &m), 0);
	assert_int_equal(m.pa, 0x12300c);
	assert_true(m.user && m.writable && m.nx);
	assert_int_equal(x86_32_translate(f->pm, f->b.root, true, 0xc11fffff, &m), 0);
	assert_int_equal(m.pa, 0x11fffff);
	assert_int_equal(m.page_size, 2ULL << 20);
	assert_false(m.nx || m.user);
	assert_int_equal(x86_32_translate(f->pm, f->b.root, true, 0xf7800004, &m), 0);
	assert_int_equal(m.pa, 0x140000004ULL);
	/* reserved bits: a 2 MiB PDE's bits 20:13, a PDPTE's bits 2:1 (RW/US do not exist there) or NX */
	slot = pt32_slot(&f->b, f->b.root, 0xc1000000, 3);
	uint64_t pdpte = pt32_get(&f->b, slot);
	uint64_t pd = pdpte & 0x000ffffffffff000ULL, pde_slot = pt32_slot(&f->b, pd, 0xc1000000, 2);
	uint64_t pde = pt32_get(&f->b, pde_slot);

	pt32_set(&f->b, pde_slot, pde | (1ULL << 13));
	assert_int_equal(x86_32_translate(f->pm, f->b.root, true, 0xc1000000, &m), -EFAULT);
	pt32_set(&f->b, pde_slot, pde);
	pt32_set(&f->b, slot, pdpte | PT32_RW);
	assert_int_equal(x86_32_translate(f->pm, f->b.root, true, 0xc1000000, &m), -EFAULT);
	pt32_set(&f->b, slot, pdpte | PT32_NX);
	assert_int_equal(x86_32_translate(f->pm, f->b.root, true, 0xc1000000, &m), -EFAULT);
	pt32_set(&f->b, slot, pdpte | (1ULL << 5));   /* A, as guests have it (Intel reserves it, CPUs set it) */
	assert_int_equal(x86_32_translate(f->pm, f->b.root, true, 0xc1000000, &m), 0);
	fx_free(f);
}

static void test_paging_levels(void **state)
{
	(void)state;
	assert_int_equal(x86_32_paging_levels(0x80050033, 0x10, 0), 2);           /* PG, PSE */
	assert_int_equal(x86_32_paging_levels(0x80050033, 0x30, 0x800), 3);       /* PG, PAE, NXE */
	assert_int_equal(x86_32_paging_levels(0x00000011, 0x30, 0), -EINVAL);     /* paging off */
	assert_int_equal(x86_32_paging_levels(0x80050033, 0x20, 0xd01), -EINVAL); /* long mode */
}

struct leaves {
	uint64_t n, last_va, first_va, bytes;
	bool ordered;
};

static int count_cb(uint64_t va, const struct x86_map *m, void *arg)
{
	struct leaves *l = arg;

	if (!l->n)
		l->first_va = va;
	else if (va <= l->last_va)
		l->ordered = false;
	l->n++;
	l->last_va = va;
	l->bytes += m->page_size;
	return 0;
}

static void test_walk(void **state)
{
	for (int pae = 0; pae < 2; pae++) {
		struct fx *f = fx_new(pae);
		struct leaves l = { .ordered = true };
		uint64_t big = pae ? PT32_2M : PT32_4M;

		(void)state;
		pt32_map_range(&f->b, 0xc0000000, 0, 16ULL << 20, big, PT32_RW);
		pt32_map_range(&f->b, 0x08048000, 0x200000, 5 * 4096, PT32_4K, PT32_US);
		pt32_map(&f->b, 0xfffff000, 0x7000, PT32_4K, 0);
		int n = x86_32_walk(f->pm, f->b.root, pae, 0, 0, 0, count_cb, &l);

		assert_int_equal(n, (int)l.n);
		assert_int_equal(l.n, 16ULL * 1024 * 1024 / big + 5 + 1);
		assert_true(l.ordered);
		assert_int_equal(l.first_va, 0x08048000);
		assert_int_equal(l.last_va, 0xfffff000);
		/* a sub-range, a leaf cap, a root outside RAM */
		memset(&l, 0, sizeof(l));
		l.ordered = true;
		assert_int_equal(x86_32_walk(f->pm, f->b.root, pae, 0x08049000, 0x0804b000, 0, count_cb, &l), 2);
		assert_int_equal(l.first_va, 0x08049000);
		memset(&l, 0, sizeof(l));
		assert_int_equal(x86_32_walk(f->pm, f->b.root, pae, 0, 0, 3, count_cb, &l), 3);
		assert_int_equal(x86_32_walk(f->pm, MEM_SIZE + 0x1000, pae, 0, 0, 0, count_cb, &l), -EFAULT);
		fx_free(f);
	}
}

/* A kernel's view: user pages low, lowmem from PA 0 at page_offset, then vmalloc/fixmap mappings of other
 * deltas above it; lowmem found at page_offset and no other. */
static void check_lowmem(bool pae, uint64_t page_offset, uint64_t page)
{
	struct fx *f = fx_new(pae);
	uint64_t off = 0, size = 0;

	pt32_map_range(&f->b, 0x08048000, 0x300000, 16 * 4096, PT32_4K, PT32_US | PT32_RW);
	pt32_map_range(&f->b, page_offset, 0, TABLES, page, PT32_RW);
	pt32_map_range(&f->b, page_offset + TABLES + (8ULL << 20), 0x100000, 64 * 4096, PT32_4K, PT32_RW);
	assert_int_equal(x86_32_find_lowmem(f->pm, f->b.root, pae, &off, &size), 0);
	assert_int_equal(off, page_offset);
	assert_int_equal(size, TABLES);
	assert_int_equal(x86_32_detect_pae(f->pm, f->b.root), pae);
	fx_free(f);
}

static void test_lowmem(void **state)
{
	(void)state;
	check_lowmem(false, 0xc0000000, PT32_4M);   /* VMSPLIT_3G, the default */
	check_lowmem(false, 0x80000000, PT32_4K);   /* VMSPLIT_2G, no PSE */
	check_lowmem(true, 0xc0000000, PT32_2M);
	check_lowmem(true, 0x78000000, PT32_4K);    /* VMSPLIT_2G_OPT */
	check_lowmem(true, 0x40000000, PT32_2M);    /* VMSPLIT_1G */
}

static void test_lowmem_absent(void **state)
{
	struct fx *f = fx_new(false);
	uint64_t off, size;

	(void)state;
	/* a big linear map that does not start at PA 0 (no lowmem), a user-accessible one from PA 0 */
	pt32_map_range(&f->b, 0xc0000000, 0x400000, 16ULL << 20, PT32_4M, PT32_RW);
	pt32_map_range(&f->b, 0x40000000, 0, 16ULL << 20, PT32_4M, PT32_RW | PT32_US);
	assert_int_equal(x86_32_find_lowmem(f->pm, f->b.root, false, &off, &size), -ENOENT);
	fx_free(f);
}

static void test_detect_pae_by_cr3(void **state)
{
	struct fx *f = fx_new(false);

	(void)state;
	assert_true(x86_32_detect_pae(f->pm, f->b.root | 0x20));   /* only a PDPT can sit there */
	fx_free(f);
}

static void test_vmem_32(void **state)
{
	for (int pae = 0; pae < 2; pae++) {
		struct fx *f = fx_new(pae);
		struct vmem vm;
		unsigned char buf[16], want[16];

		(void)state;
		/* two VA-adjacent pages on non-adjacent PAs: a read across the boundary */
		pt32_map(&f->b, 0xc8000000, 0x10000, PT32_4K, 0);
		pt32_map(&f->b, 0xc8001000, 0x30000, PT32_4K, 0);
		memcpy(want, f->mem + 0x10ff8, 8);
		memcpy(want + 8, f->mem + 0x30000, 8);
		vmem_init_32(&vm, f->pm, f->b.root, pae ? 3 : 2);
		assert_int_equal(vmem_read(&vm, 0xc8000ff8, buf, 16), 0);
		assert_memory_equal(buf, want, 16);
		assert_int_equal(vmem_read(&vm, 0xc8001ff8, buf, 16), -EFAULT);
		assert_int_equal(vmem_read(&vm, 0xfffffff8, buf, 16), -EFAULT);   /* runs past 4 GiB */
		fx_free(f);
	}
}

/* Hostile tables: a directory whose entries all point back at itself, one page table shared by every
 * directory entry (all 4 GiB mapped), a PDPT pointing at itself. Every walk ends, within its bounds. */
static void test_hostile(void **state)
{
	for (int pae = 0; pae < 2; pae++) {
		struct fx *f = fx_new(pae);
		struct leaves l = { .ordered = true };
		unsigned esz = pae ? 8 : 4, n = pae ? 512 : 1024;
		uint64_t off, size, pt;
		struct x86_map m;

		(void)state;
		/* self-reference: the root read as the next level's table, then as a page table */
		if (pae) {
			for (unsigned i = 0; i < 4; i++)
				pt32_set(&f->b, f->b.root + i * 8ULL, (f->b.root & ~0xfffULL) | PT32_P);
		}
		uint64_t dir = pae ? f->b.root & ~0xfffULL : f->b.root;

		for (unsigned i = pae ? 4 : 0; i < n; i++)
			pt32_set(&f->b, dir + i * (uint64_t)esz, dir | PT32_P | PT32_RW);
		assert_true(x86_32_walk(f->pm, f->b.root, pae, 0, 0, 0, count_cb, &l) >= 0);
		x86_32_translate(f->pm, f->b.root, pae, 0xc0000000, &m);
		x86_32_find_lowmem(f->pm, f->b.root, pae, &off, &size);
		/* every directory entry → one page table with every entry present: all of 4 GiB mapped */
		pt = pt32_alloc(&f->b);
		for (unsigned i = 0; i < n; i++)
			pt32_set(&f->b, pt + i * (uint64_t)esz, (uint64_t)i << 12 | PT32_P);
		if (pae) {
			uint64_t pd = pt32_alloc(&f->b);

			for (unsigned i = 0; i < n; i++)
				pt32_set(&f->b, pd + i * 8ULL, pt | PT32_P);
			for (unsigned i = 0; i < 4; i++)
				pt32_set(&f->b, f->b.root + i * 8ULL, pd | PT32_P);
		} else {
			for (unsigned i = 0; i < n; i++)
				pt32_set(&f->b, f->b.root + i * 4ULL, pt | PT32_P);
		}
		memset(&l, 0, sizeof(l));
		assert_int_equal(x86_32_walk(f->pm, f->b.root, pae, 0, 0, 0, count_cb, &l), 1 << 20);
		assert_int_equal(l.bytes, 1ULL << 32);
		/* the same 2 or 4 MiB of PA over and over: no run from PA 0 long enough to be lowmem */
		assert_int_equal(x86_32_find_lowmem(f->pm, f->b.root, pae, &off, &size), -ENOENT);
		fx_free(f);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_two_level_pages),
		cmocka_unit_test(test_two_level_pse36_and_reserved),
		cmocka_unit_test(test_pae_pages),
		cmocka_unit_test(test_paging_levels),
		cmocka_unit_test(test_walk),
		cmocka_unit_test(test_lowmem),
		cmocka_unit_test(test_lowmem_absent),
		cmocka_unit_test(test_detect_pae_by_cr3),
		cmocka_unit_test(test_vmem_32),
		cmocka_unit_test(test_hostile),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
