/* cmocka: x86-64 page walker, range walk, direct-map and LA57 detection, vmem cache — on real page
 * tables built in a memory buffer (tests/unit/x86_pt.h). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>
#include "arch/x86_64.h"
#include "x86_pt.h"

#define MEM_SIZE (64ULL << 20)
#define TABLES   (32ULL << 20)       /* tables live in [32 MiB, 64 MiB) */

struct fx {
	unsigned char *mem;
	struct physmem *pm;
	struct pt_builder b;
};

static struct fx *fx_new(bool la57)
{
	struct fx *f = calloc(1, sizeof(*f));

	f->mem = calloc(1, MEM_SIZE);
	assert_non_null(f->mem);
	for (uint64_t i = 0; i < TABLES; i += 8)
		*(uint64_t *)(f->mem + i) = 0x1122334455667788ULL ^ i;   /* recognisable data */
	pt_init(&f->b, f->mem, MEM_SIZE, TABLES, la57);
	assert_int_equal(physmem_open_buffer(f->mem, MEM_SIZE, NULL, 0, &f->pm), 0);
	return f;
}

static void fx_free(struct fx *f)
{
	physmem_close(f->pm);
	free(f->mem);
	free(f);
}

static void check_page_sizes(bool la57)
{
	struct fx *f = fx_new(la57);
	uint64_t va4k = la57 ? 0xff11000000003000ULL : 0xffff888000003000ULL;
	uint64_t va2m = 0x00007f0000200000ULL, va1g = 0xffffffffc0000000ULL;
	struct x86_map m;

	pt_map(&f->b, va4k, 0x5000, PT_4K, PT_RW | PT_NX);
	pt_map(&f->b, va2m, 0x400000, PT_2M, PT_US);
	pt_map(&f->b, va1g, 0, PT_1G, PT_RW);

	assert_int_equal(x86_translate(f->pm, f->b.root, la57, va4k + 0x123, &m), 0);
	assert_int_equal(m.pa, 0x5123);
	assert_int_equal(m.page_size, 4096);
	assert_true(m.writable);
	assert_false(m.user);    /* intermediate US=1, leaf US=0 */
	assert_true(m.nx);

	assert_int_equal(x86_translate(f->pm, f->b.root, la57, va2m + 0x1fffff, &m), 0);
	assert_int_equal(m.pa, 0x400000 + 0x1fffff);
	assert_int_equal(m.page_size, PT_2M);
	assert_false(m.writable);
	assert_true(m.user);
	assert_false(m.nx);

	assert_int_equal(x86_translate(f->pm, f->b.root, la57, va1g + 0x3456789, &m), 0);
	assert_int_equal(m.pa, 0x3456789);
	assert_int_equal(m.page_size, PT_1G);

	/* neighbours are not mapped */
	assert_int_equal(x86_translate(f->pm, f->b.root, la57, va4k + 4096, &m), -EFAULT);
	assert_int_equal(x86_translate(f->pm, f->b.root, la57, va2m - 1, &m), -EFAULT);
	fx_free(f);
}

/* 4K/2M/1G pages translate with offsets; RW/US are ANDed and NX ORed over levels. */
static void test_page_sizes_4level(void **state) { check_page_sizes(false); }
static void test_page_sizes_5level(void **state) { check_page_sizes(true); }

/* Non-canonical addresses fault without reading memory; 5-level widens the canonical range. */
static void test_non_canonical(void **state)
{
	struct fx *f = fx_new(false);
	struct x86_map m;
	uint64_t reads;

	pt_map(&f->b, 0x0000800000000000ULL & 0, 0, PT_4K, 0);
	reads = f->pm->reads;
	assert_int_equal(x86_translate(f->pm, f->b.root, false, 0x0000800000000000ULL, &m), -EFAULT);
	assert_int_equal(x86_translate(f->pm, f->b.root, false, 0xff11000000000000ULL, &m), -EFAULT);
	assert_int_equal(x86_translate(f->pm, f->b.root, true, 0x0100000000000000ULL, &m), -EFAULT);
	assert_int_equal(f->pm->reads, reads);
	assert_int_equal(x86_translate(f->pm, f->b.root, false, 0, &m), 0);
	fx_free(f);
}

/* A non-present entry at any level faults. */
static void test_not_present_each_level(void **state)
{
	for (int levels = 4; levels <= 5; levels++) {
		for (int lvl = levels; lvl >= 1; lvl--) {
			struct fx *f = fx_new(levels == 5);
			uint64_t va = 0xffffc90000001000ULL;
			struct x86_map m;

			pt_map(&f->b, va, 0x9000, PT_4K, PT_RW);
			assert_int_equal(x86_translate(f->pm, f->b.root, levels == 5, va, &m), 0);
			*(uint64_t *)(f->mem + pt_entry_gpa(&f->b, va, lvl)) &= ~PT_P;
			assert_int_equal(x86_translate(f->pm, f->b.root, levels == 5, va, &m), -EFAULT);
			fx_free(f);
		}
	}
}

/* PCID bits are dropped; with PTI a user CR3 (kernel|0x1000) resolves through the kernel PGD, and a
 * non-PTI PGD on an odd page still works through the retry. */
static void test_cr3_pcid_and_pti(void **state)
{
	struct fx *f = fx_new(false);
	uint64_t kva = 0xffff888000010000ULL, uva = 0x400000;
	struct x86_map m;
	uint64_t kpgd, upgd;

	/* PTI pair: kernel PGD at an 8K-aligned page, user PGD right after it */
	f->b.next = TABLES + 0x100000;
	kpgd = pt_alloc(&f->b);
	upgd = pt_alloc(&f->b);
	assert_int_equal(kpgd & 0x1fff, 0);
	assert_int_equal(upgd, kpgd | 0x1000);
	f->b.root = kpgd;
	pt_map(&f->b, kva, 0x10000, PT_4K, PT_RW);
	pt_map(&f->b, uva, 0x20000, PT_4K, PT_US);
	/* user PGD: only the user half (copied entry), as PTI does */
	memcpy(f->mem + upgd, f->mem + kpgd, 256 * 8);

	assert_int_equal(x86_cr3_root(kpgd | 0x1000 | 0x5), kpgd);
	assert_int_equal(x86_translate(f->pm, kpgd | 0x7, false, kva, &m), 0);
	assert_int_equal(m.pa, 0x10000);
	assert_int_equal(x86_translate(f->pm, upgd | 0x7, false, kva, &m), 0);   /* user CR3, kernel VA */
	assert_int_equal(m.pa, 0x10000);
	assert_int_equal(x86_translate(f->pm, upgd | 0x8000000000000003ULL, false, uva + 8, &m), 0);
	assert_int_equal(m.pa, 0x20008);

	/* non-PTI kernel, PGD on an odd page: the even neighbour is empty */
	f->b.next = TABLES + 0x200000;
	assert_int_equal(pt_alloc(&f->b), TABLES + 0x200000);
	f->b.root = pt_alloc(&f->b);
	assert_true(f->b.root & 0x1000);
	pt_map(&f->b, kva, 0x30000, PT_4K, PT_RW);
	assert_int_equal(x86_translate(f->pm, f->b.root | 0x2, false, kva, &m), 0);
	assert_int_equal(m.pa, 0x30000);
	fx_free(f);
}

/* Reserved bits in large-page entries and PS at PML4/PML5 level are faults, not translations. */
static void test_reserved_bits(void **state)
{
	struct fx *f = fx_new(false);
	uint64_t va1g = 0xffff888040000000ULL, va2m = 0xffff888000200000ULL;
	struct x86_map m;
	uint64_t e1g, e2m, e4;

	e1g = pt_map(&f->b, va1g, 0x40000000, PT_1G, PT_RW);
	e2m = pt_map(&f->b, va2m, 0x200000, PT_2M, PT_RW);
	assert_int_equal(x86_translate(f->pm, f->b.root, false, va1g, &m), 0);
	assert_int_equal(x86_translate(f->pm, f->b.root, false, va2m, &m), 0);
	*(uint64_t *)(f->mem + e1g) |= 1ULL << 13;
	*(uint64_t *)(f->mem + e2m) |= 1ULL << 20;
	assert_int_equal(x86_translate(f->pm, f->b.root, false, va1g, &m), -EFAULT);
	assert_int_equal(x86_translate(f->pm, f->b.root, false, va2m, &m), -EFAULT);
	/* PAT bit (12) in a large page is fine */
	*(uint64_t *)(f->mem + e2m) &= ~(1ULL << 20);
	*(uint64_t *)(f->mem + e2m) |= 1ULL << 12;
	assert_int_equal(x86_translate(f->pm, f->b.root, false, va2m + 5, &m), 0);
	assert_int_equal(m.pa, 0x200005);
	/* PS in a PML4E */
	e4 = pt_entry_gpa(&f->b, va2m, 4);
	*(uint64_t *)(f->mem + e4) |= PT_PS;
	assert_int_equal(x86_translate(f->pm, f->b.root, false, va2m, &m), -EFAULT);
	fx_free(f);
}

/* Tables (or the root) pointing outside RAM or into a hole fault cleanly. */
static void test_tables_outside_ram(void **state)
{
	struct fx *f = fx_new(false);
	uint64_t va = 0xffffc90000000000ULL;
	struct x86_map m;
	uint64_t e3;

	pt_map(&f->b, va, 0x1000, PT_4K, PT_RW);
	assert_int_equal(x86_translate(f->pm, 0x7ffffffff000ULL, false, va, &m), -EFAULT);
	assert_int_equal(x86_translate(f->pm, MEM_SIZE, false, va, &m), -EFAULT);
	e3 = pt_entry_gpa(&f->b, va, 3);
	*(uint64_t *)(f->mem + e3) = 0x000ffffffffff000ULL | PT_P;
	assert_int_equal(x86_translate(f->pm, f->b.root, false, va, &m), -EFAULT);
	*(uint64_t *)(f->mem + e3) = (MEM_SIZE - 8) | PT_P;   /* low bits masked: an empty table in RAM */
	assert_int_equal(x86_translate(f->pm, f->b.root, false, va, &m), -EFAULT);
	fx_free(f);
}

/* A leaf may point outside RAM (MMIO): translation reports it, reading it faults. */
static void test_leaf_outside_ram(void **state)
{
	struct fx *f = fx_new(false);
	uint64_t va = 0xffffc90000000000ULL;
	struct x86_map m;
	struct vmem vm;
	uint64_t v;

	pt_map(&f->b, va, 0xfee00000, PT_4K, PT_RW);
	assert_int_equal(x86_translate(f->pm, f->b.root, false, va, &m), 0);
	assert_int_equal(m.pa, 0xfee00000);
	vmem_init(&vm, f->pm, f->b.root, false);
	assert_int_equal(vmem_read_u64(&vm, va, &v), -EFAULT);
	fx_free(f);
}

struct leaves {
	uint64_t va[64], pa[64], size[64];
	size_t n, stop_after;
};

static int collect(uint64_t va, const struct x86_map *m, void *arg)
{
	struct leaves *l = arg;

	if (l->n < 64) {
		l->va[l->n] = va;
		l->pa[l->n] = m->pa;
		l->size[l->n] = m->page_size;
	}
	l->n++;
	return l->stop_after && l->n >= l->stop_after;
}

static void check_walk(bool la57)
{
	struct fx *f = fx_new(la57);
	struct leaves l = { 0 };
	uint64_t kbase = la57 ? 0xff11000000000000ULL : 0xffff888000000000ULL;

	pt_map(&f->b, 0x1000, 0x1000, PT_4K, PT_US);
	pt_map(&f->b, 0x7fffffe00000ULL, 0x200000, PT_2M, PT_US);
	pt_map(&f->b, kbase, 0, PT_1G, PT_RW);
	pt_map(&f->b, kbase + PT_1G + 0x5000, 0x7000, PT_4K, PT_RW);
	pt_map(&f->b, 0xffffffff81000000ULL, 0x1000000, PT_2M, PT_RW);
	pt_map(&f->b, 0xfffffffffffff000ULL, 0x2000, PT_4K, PT_RW);

	/* whole address space, VA order, sign-extended */
	assert_int_equal(x86_walk(f->pm, f->b.root, la57, 0, 0, 0, collect, &l), 6);
	assert_int_equal(l.n, 6);
	assert_int_equal(l.va[0], 0x1000);
	assert_int_equal(l.va[1], 0x7fffffe00000ULL);
	assert_int_equal(l.size[1], PT_2M);
	assert_int_equal(l.va[2], kbase);
	assert_int_equal(l.size[2], PT_1G);
	assert_int_equal(l.va[3], kbase + PT_1G + 0x5000);
	assert_int_equal(l.pa[3], 0x7000);
	assert_int_equal(l.va[4], 0xffffffff81000000ULL);
	assert_int_equal(l.va[5], 0xfffffffffffff000ULL);

	/* kernel half only */
	memset(&l, 0, sizeof(l));
	assert_int_equal(x86_walk(f->pm, f->b.root, la57, 1ULL << 63, 0, 0, collect, &l), 4);
	assert_int_equal(l.va[0], kbase);

	/* clipped: a range inside the 1G page reports the page; end is exclusive */
	memset(&l, 0, sizeof(l));
	assert_int_equal(x86_walk(f->pm, f->b.root, la57, kbase + 0x1000, kbase + PT_1G + 0x5000, 0, collect, &l), 1);
	assert_int_equal(l.va[0], kbase);
	memset(&l, 0, sizeof(l));
	assert_int_equal(x86_walk(f->pm, f->b.root, la57, kbase + PT_1G, kbase + PT_1G + 0x5001, 0, collect, &l), 1);
	assert_int_equal(l.va[0], kbase + PT_1G + 0x5000);

	/* max_leaves and callback stop */
	memset(&l, 0, sizeof(l));
	assert_int_equal(x86_walk(f->pm, f->b.root, la57, 0, 0, 2, collect, &l), 2);
	memset(&l, 0, sizeof(l));
	l.stop_after = 3;
	assert_int_equal(x86_walk(f->pm, f->b.root, la57, 0, 0, 0, collect, &l), 3);

	/* non-canonical only range: nothing */
	memset(&l, 0, sizeof(l));
	if (!la57)
		assert_int_equal(x86_walk(f->pm, f->b.root, la57, 0x0000800000000000ULL, 0xffff800000000000ULL, 0,
					  collect, &l), 0);
	/* root outside RAM */
	assert_int_equal(x86_walk(f->pm, MEM_SIZE + 0x1000, la57, 0, 0, 0, collect, &l), -EFAULT);
	fx_free(f);
}

/* x86_walk enumerates leaves of every size in VA order, clips, and stops on request. */
static void test_walk_4level(void **state) { check_walk(false); }
static void test_walk_5level(void **state) { check_walk(true); }

static int count_cb(uint64_t va, const struct x86_map *m, void *arg)
{
	(*(uint64_t *)arg)++;
	return 0;
}

/* Self-referencing and all-aliased tables terminate: translate is bounded by the level count, walk by
 * max_leaves and the table-read budget, and empty shared tables are read once. */
static void test_loops_are_bounded(void **state)
{
	struct fx *f = fx_new(false);
	uint64_t root = f->b.root, n = 0, empty = pt_alloc(&f->b), mid = pt_alloc(&f->b);
	struct x86_map m;
	struct timespec t0, t1;
	int ret;

	/* every PML4 entry points to the PML4 itself */
	for (int i = 0; i < 512; i++)
		*(uint64_t *)(f->mem + root + i * 8) = root | PT_P | PT_RW;
	assert_int_equal(x86_translate(f->pm, root, false, 0xffff888000000000ULL, &m), 0);
	assert_int_equal(m.pa, root);   /* the recursive mapping maps the table itself */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	ret = x86_walk(f->pm, root, false, 0, 0, 100000, count_cb, &n);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	/* the revisit cap ends it first: a few dozen re-walks of the one table, not 512^4 leaves */
	assert_true(ret > 0 && ret < 100000);
	assert_int_equal(n, ret);
	n = 0;
	assert_int_equal(x86_walk(f->pm, root, false, 0, 0, 1000, count_cb, &n), 1000);   /* max_leaves */
	assert_int_equal(n, 1000);
	n = 0;
	ret = x86_walk(f->pm, root, false, 0, 0, 0, count_cb, &n);   /* default cap */
	assert_true(ret > 0 && n <= (1ULL << 24));
	assert_true((t1.tv_sec - t0.tv_sec) < 2);

	/* every PML4E points to one PDPT whose every entry points to one empty PD: 512*512 aliases */
	for (int i = 0; i < 512; i++) {
		*(uint64_t *)(f->mem + root + i * 8) = mid | PT_P;
		*(uint64_t *)(f->mem + mid + i * 8) = empty | PT_P;
	}
	f->pm->reads = 0;
	n = 0;
	assert_int_equal(x86_walk(f->pm, root, false, 0, 0, 0, count_cb, &n), 0);
	assert_int_equal(n, 0);
	/* the empty PD and then the PDPT are remembered as empty: a handful of reads, not 512^2 */
	assert_true(f->pm->reads < 16);
	fx_free(f);
}

/* Malformed entries in a walk are skipped, the rest is still reported. */
static void test_walk_skips_malformed(void **state)
{
	struct fx *f = fx_new(false);
	uint64_t va = 0xffff888000000000ULL, n = 0, e;

	pt_map(&f->b, va, 0, PT_2M, PT_RW);
	e = pt_map(&f->b, va + PT_2M, PT_2M, PT_2M, PT_RW);
	pt_map(&f->b, va + 2 * PT_2M, 2 * PT_2M, PT_2M, PT_RW);
	pt_map(&f->b, 0xffffc90000000000ULL, 0, PT_4K, PT_RW);
	*(uint64_t *)(f->mem + e) |= 1ULL << 14;                               /* reserved */
	*(uint64_t *)(f->mem + pt_entry_gpa(&f->b, 0xffffc90000000000ULL, 3)) = 0x00ff00000000ULL | PT_P;   /* outside RAM */
	assert_int_equal(x86_walk(f->pm, f->b.root, false, 1ULL << 63, 0, 0, count_cb, &n), 2);
	fx_free(f);
}

static void build_kernel_like(struct fx *f, uint64_t pob, uint64_t ram, bool use_1g)
{
	/* direct map of all RAM, kernel text, some vmalloc 4K pages, vmemmap-ish 2M pages */
	if (use_1g)
		pt_map_range(&f->b, pob, 0, ram, PT_1G, PT_RW | PT_NX);
	else
		pt_map_range(&f->b, pob, 0, ram, PT_2M, PT_RW | PT_NX);
	pt_map_range(&f->b, 0xffffffff81000000ULL, 0x1000000, 0x800000, PT_2M, PT_RW);
	for (int i = 0; i < 64; i++)
		pt_map(&f->b, 0xffffc90000000000ULL + i * 4096ULL, (uint64_t)(i * 37 % 1000) * 4096, PT_4K, PT_RW);
	pt_map_range(&f->b, 0xffffea0000000000ULL, 0x2000000, 0x400000, PT_2M, PT_RW);
}

/* The direct map is found from the page tables alone, for a KASLR base, 1G or 2M pages, 4 or 5 levels. */
static void test_find_direct_map(void **state)
{
	uint64_t bases4[] = { 0xffff888000000000ULL, 0xffff9a2cc0000000ULL };
	uint64_t pob;

	for (int i = 0; i < 2; i++) {
		struct fx *f = fx_new(false);

		build_kernel_like(f, bases4[i], MEM_SIZE, i == 0);
		assert_int_equal(x86_find_direct_map(f->pm, f->b.root, false, &pob), 0);
		assert_int_equal(pob, bases4[i]);
		fx_free(f);
	}
	struct fx *f = fx_new(true);

	build_kernel_like(f, 0xff11000000000000ULL, MEM_SIZE, false);
	assert_int_equal(x86_find_direct_map(f->pm, f->b.root, true, &pob), 0);
	assert_int_equal(pob, 0xff11000000000000ULL);
	fx_free(f);

	/* no direct map: only a few 4K mappings → -ENOENT */
	f = fx_new(false);
	pt_map(&f->b, 0xffffc90000000000ULL, 0x1000, PT_4K, PT_RW);
	assert_int_equal(x86_find_direct_map(f->pm, f->b.root, false, &pob), -ENOENT);
	fx_free(f);
}

/* LA57 is told apart from 4-level by which interpretation yields a consistent direct map. */
static void test_detect_la57(void **state)
{
	struct fx *f = fx_new(false);

	build_kernel_like(f, 0xffff888000000000ULL, MEM_SIZE, false);
	assert_false(x86_detect_la57(f->pm, f->b.root));
	fx_free(f);
	f = fx_new(false);
	build_kernel_like(f, 0xffff888000000000ULL, MEM_SIZE, true);
	assert_false(x86_detect_la57(f->pm, f->b.root));
	fx_free(f);
	f = fx_new(true);
	build_kernel_like(f, 0xff11000000000000ULL, MEM_SIZE, false);
	assert_true(x86_detect_la57(f->pm, f->b.root));
	fx_free(f);
	f = fx_new(true);
	build_kernel_like(f, 0xff11000000000000ULL, MEM_SIZE, true);
	assert_true(x86_detect_la57(f->pm, f->b.root));
	fx_free(f);
}

static void test_paging_levels(void **state)
{
	uint64_t cr0 = 0x80050033, cr4 = 0x3706f0, efer = 0xd01;

	assert_int_equal(x86_paging_levels(cr0, cr4, efer), 4);
	assert_int_equal(x86_paging_levels(cr0, cr4 | (1 << 12), efer), 5);
	assert_int_equal(x86_paging_levels(cr0 & ~0x80000000ULL, cr4, efer), -EINVAL);
	assert_int_equal(x86_paging_levels(cr0, cr4 & ~0x20ULL, efer), -EINVAL);
	assert_int_equal(x86_paging_levels(cr0, cr4, 0x100), -EINVAL);   /* LME without LMA */
}

/* vmem: reads cross non-contiguous pages, the TLB hits on repeat, the direct map skips walks. */
static void test_vmem(void **state)
{
	struct fx *f = fx_new(false);
	uint64_t va = 0xffffc90000000000ULL, v, pa;
	unsigned char buf[8192], want[8192];
	struct vmem vm;

	pt_map(&f->b, va, 0x10000, PT_4K, PT_RW);
	pt_map(&f->b, va + 4096, 0x3000, PT_4K, PT_RW);
	pt_map_range(&f->b, 0xffff888000000000ULL, 0, MEM_SIZE, PT_2M, PT_RW);
	vmem_init(&vm, f->pm, f->b.root | 0x800, false);
	memcpy(want, f->mem + 0x10000 + 100, 4096 - 100);
	memcpy(want + 4096 - 100, f->mem + 0x3000, 200);
	assert_int_equal(vmem_read(&vm, va + 100, buf, 4096 + 100), 0);
	assert_memory_equal(buf, want, 4096 + 100);
	assert_int_equal(vm.tlb_misses, 2);
	assert_int_equal(vmem_read_u64(&vm, va + 8, &v), 0);
	assert_memory_equal(&v, f->mem + 0x10008, 8);
	assert_int_equal(vm.tlb_hits, 1);
	assert_int_equal(vmem_read_u64(&vm, va + 2 * 4096, &v), -EFAULT);
	assert_int_equal(vmem_read_u64(&vm, va + 2 * 4096 - 4, &v), -EFAULT);   /* straddles into unmapped */

	/* direct map shortcut: no walk */
	vmem_set_direct_map(&vm, 0xffff888000000000ULL, 0);
	uint64_t misses = vm.tlb_misses;
	assert_int_equal(vmem_translate(&vm, 0xffff888000123456ULL, &pa), 0);
	assert_int_equal(pa, 0x123456);
	assert_int_equal(vm.tlb_misses, misses);
	assert_int_equal(vmem_read_u64(&vm, 0xffff888000000000ULL + MEM_SIZE, &v), -EFAULT);
	uint32_t v32;
	assert_int_equal(vmem_read_u32(&vm, 0xffff888000000000ULL + 0x3004, &v32), 0);
	assert_memory_equal(&v32, f->mem + 0x3004, 4);
	fx_free(f);
}

/* Speed: a kernel-half walk of a 64 MiB 4K-mapped direct map and 1M cached translations are fast. */
static void test_speed(void **state)
{
	struct fx *f = fx_new(false);
	struct timespec t0, t1;
	uint64_t n = 0, pa;
	struct vmem vm;
	double dt;

	pt_map_range(&f->b, 0xffff888000000000ULL, 0, MEM_SIZE, PT_4K, PT_RW);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(x86_walk(f->pm, f->b.root, false, 1ULL << 63, 0, 0, count_cb, &n), MEM_SIZE / 4096);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	dt = (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
	print_message("walk: %llu leaves in %.3f s\n", (unsigned long long)n, dt);
	assert_true(dt < 1.0);
	vmem_init(&vm, f->pm, f->b.root, false);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (uint64_t i = 0; i < 1000000; i++)
		assert_int_equal(vmem_translate(&vm, 0xffff888000000000ULL + (i * 4096 * 7) % MEM_SIZE, &pa), 0);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	dt = (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
	print_message("translate: 1M in %.3f s (%llu TLB hits)\n", dt, (unsigned long long)vm.tlb_hits);
	fx_free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_page_sizes_4level),
		cmocka_unit_test(test_page_sizes_5level),
		cmocka_unit_test(test_non_canonical),
		cmocka_unit_test(test_not_present_each_level),
		cmocka_unit_test(test_cr3_pcid_and_pti),
		cmocka_unit_test(test_reserved_bits),
		cmocka_unit_test(test_tables_outside_ram),
		cmocka_unit_test(test_leaf_outside_ram),
		cmocka_unit_test(test_walk_4level),
		cmocka_unit_test(test_walk_5level),
		cmocka_unit_test(test_loops_are_bounded),
		cmocka_unit_test(test_walk_skips_malformed),
		cmocka_unit_test(test_find_direct_map),
		cmocka_unit_test(test_detect_la57),
		cmocka_unit_test(test_paging_levels),
		cmocka_unit_test(test_vmem),
		cmocka_unit_test(test_speed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
