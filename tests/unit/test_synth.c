/* cmocka: the synthetic-memory generator's own invariants, read back through the real page walker
 * (x86_translate / vmem) with the known layout — this tests the generator, not discovery. */
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
#include "arch/x86_32.h"
#include "arch/x86_64.h"
#include "../synth/synth.h"

static struct synth_layout *layouts;
static size_t nlayouts;

static int load(void **state)
{
	const char *csv = synth_find_layouts_csv();

	(void)state;
	if (!csv)
		return 0;
	return synth_load_layouts(csv, &layouts, &nlayouts) ? -1 : 0;
}

static int unload(void **state)
{
	(void)state;
	free(layouts);
	return 0;
}

static uint64_t rd64(struct vmem *vm, uint64_t va)
{
	uint64_t v = 0;

	assert_int_equal(vmem_read_u64(vm, va, &v), 0);
	return v;
}

static uint32_t rd32(struct vmem *vm, uint64_t va)
{
	uint32_t v = 0;

	assert_int_equal(vmem_read_u32(vm, va, &v), 0);
	return v;
}

static const struct synth_task *task_at(const struct synth_image *img, uint64_t va)
{
	for (size_t i = 0; i < img->ntasks; i++)
		if (img->tasks[i].va == va)
			return &img->tasks[i];
	return NULL;
}

/* ring of list_heads at offset off starting from the head at VA head; returns its length (head excluded)
 * and checks next->prev == node everywhere */
static size_t ring_len(struct vmem *vm, uint64_t head, size_t max)
{
	uint64_t node = head;
	size_t n = 0;

	for (;;) {
		uint64_t next = rd64(vm, node);

		assert_int_equal(rd64(vm, next + 8), node);
		if (next == head)
			return n;
		node = next;
		assert_true(++n <= max);
	}
}

static void check_image(const struct synth_image *img)
{
	const int32_t *off = img->off;
	uint64_t roots[512];
	size_t nroots = obs_distinct_roots(&img->obs, roots, 512);
	struct vmem vm;
	uint64_t pob = 0;
	struct x86_map m;

	/* the kernel's own root maps init_task (kernel image) and the direct map the generator chose */
	assert_int_equal(x86_translate(img->pm, img->swapper_pgd_pa, img->la57, img->init_task_va, &m), 0);
	assert_int_equal(m.pa, synth_kva_to_pa(img, img->init_task_va));
	assert_true(m.writable && m.nx && !m.user);
	assert_int_equal(x86_find_direct_map(img->pm, img->swapper_pgd_pa, img->la57, &pob), 0);
	assert_int_equal(pob, img->page_offset_base);
	assert_int_equal(x86_detect_la57(img->pm, img->swapper_pgd_pa), img->la57);

	/* every observed root: kernel half reaches init_task; roots are swapper, live or exited mm PGDs */
	assert_true(nroots >= 3);
	for (size_t i = 0; i < nroots; i++) {
		/* PTI: a user-mode CR3 is the kernel PGD + 4 KiB; without PTI, CR3 is the PGD page itself */
		uint64_t kroot = img->pti ? roots[i] & ~0x1000ULL : roots[i];
		bool known = kroot == img->swapper_pgd_pa;

		for (size_t k = 0; k < img->nmms && !known; k++)
			known = img->mms[k].pgd_pa == kroot;
		assert_true(known);
		assert_int_equal(x86_translate(img->pm, kroot, img->la57, img->init_task_va, &m), 0);
		assert_int_equal(m.pa, synth_kva_to_pa(img, img->init_task_va));
		if (img->pti) {   /* the PTI user copy does not map the direct map */
			unsigned idx = (unsigned)((img->page_offset_base >> (img->la57 ? 48 : 39)) & 511);
			uint64_t e = 1;

			assert_int_equal(physmem_read_u64(img->pm, kroot + 0x1000 + idx * 8, &e), 0);
			assert_int_equal(e & 1, 0);
		}
	}
	for (size_t i = 0; i < img->obs.n; i++) {
		const struct observation *o = &img->obs.v[i];

		assert_true(o->vcpu < img->ncpus);
		assert_int_equal(o->gs_base, img->gs_base[o->vcpu]);
		if (!img->pcid)
			assert_int_equal(o->cr3 & 0xfff, 0);
	}

	vmem_init(&vm, img->pm, img->swapper_pgd_pa, img->la57);
	/* init_task: swapper, pid 0, mm NULL, parents = itself, children = pid 1 and kthreadd */
	{
		char comm[16];
		uint64_t it = img->init_task_va, c1, c2;

		assert_int_equal(vmem_read(&vm, it + off[TF_COMM], comm, 16), 0);
		assert_int_equal(strncmp(comm, "swapper", 7), 0);
		assert_int_equal(rd32(&vm, it + off[TF_PID]), 0);
		assert_int_equal(rd64(&vm, it + off[TF_MM]), 0);
		if (off[TF_REAL_PARENT] >= 0)
			assert_int_equal(rd64(&vm, it + off[TF_REAL_PARENT]), it);
		assert_int_equal(rd64(&vm, it + off[TF_PARENT]), it);
		assert_int_equal(rd64(&vm, it + off[TF_SIBLING]), it + off[TF_SIBLING]);
		c1 = rd64(&vm, it + off[TF_CHILDREN]) - off[TF_SIBLING];
		c2 = rd64(&vm, c1 + off[TF_SIBLING]) - off[TF_SIBLING];
		assert_int_equal(rd32(&vm, c1 + off[TF_PID]), 1);
		if (img->layout.kver >= SYNTH_KV(2, 6, 22)) {   /* kthreadd */
			assert_int_equal(rd32(&vm, c2 + off[TF_PID]), 2);
			assert_int_equal(ring_len(&vm, it + off[TF_CHILDREN], 8), 2);
		} else {
			assert_int_equal(ring_len(&vm, it + off[TF_CHILDREN], 8), 1);
		}
		if (off[TF_CRED] >= 0)
			assert_int_equal(rd64(&vm, it + off[TF_CRED]), img->init_cred_va);
	}
	/* tasks list: circular, n_on_list nodes, leaders only, in pid order after the kernel threads */
	{
		uint64_t node = img->init_task_va + off[TF_TASKS];
		size_t n = 1;

		assert_int_equal(ring_len(&vm, node, 100000) + 1, img->n_on_list);
		for (uint64_t cur = rd64(&vm, node); cur != node; cur = rd64(&vm, cur), n++) {
			uint64_t t = cur - off[TF_TASKS];
			const struct synth_task *st = task_at(img, t);
			char comm[16];

			assert_non_null(st);
			assert_true(st->on_tasks_list);
			assert_int_equal(rd32(&vm, t + off[TF_PID]), (uint32_t)st->pid);
			assert_int_equal(rd32(&vm, t + off[TF_TGID]), (uint32_t)st->pid);
			assert_int_equal(vmem_read(&vm, t + off[TF_COMM], comm, 16), 0);
			assert_memory_equal(comm, st->comm, strnlen(st->comm, 16));
			assert_int_equal(rd64(&vm, t + off[TF_MM]), st->mm_va);
			assert_int_equal(rd64(&vm, t + off[TF_ACTIVE_MM]), st->active_mm_va);
			if (st->mm >= 0) {
				/* mm->pgd is the direct-map VA of the PGD page */
				uint64_t pgd = rd64(&vm, st->mm_va + img->layout.mm_pgd), pa = 0;

				assert_int_equal(vmem_translate(&vm, pgd, &pa), 0);
				assert_int_equal(pa, img->mms[st->mm].pgd_pa);
				assert_int_equal(st->active_mm_va, st->mm_va);
			}
		}
		assert_int_equal(n, img->n_on_list);
	}
	/* threads share mm and tgid; the thread rings hold the whole group; idle tasks are off the list */
	for (size_t i = 0; i < img->ntasks; i++) {
		const struct synth_task *st = &img->tasks[i];
		uint64_t t = st->va;
		size_t group = 0;

		for (size_t k = 0; k < img->ntasks; k++)
			group += img->tasks[k].leader == st->leader && st->kind != SYNTH_T_INIT;
		if (off[SM_GROUP_LEADER] >= 0)
			assert_int_equal(rd64(&vm, t + off[SM_GROUP_LEADER]), img->tasks[st->leader].va);
		if (st->kind == SYNTH_T_THREAD) {
			const struct synth_task *l = &img->tasks[st->leader];

			assert_int_equal(rd32(&vm, t + off[TF_TGID]), (uint32_t)l->pid);
			assert_int_not_equal(rd32(&vm, t + off[TF_PID]), (uint32_t)l->pid);
			assert_int_equal(rd64(&vm, t + off[TF_MM]), l->mm_va);
			if (off[TF_REAL_PARENT] >= 0)
				assert_int_equal(rd64(&vm, t + off[TF_REAL_PARENT]), img->tasks[l->real_parent].va);
			if (off[SM_THREAD_GROUP] >= 0)
				assert_int_equal(ring_len(&vm, t + off[SM_THREAD_GROUP], 100) + 1, group);
			if (off[SM_THREAD_NODE] >= 0)
				assert_int_equal(ring_len(&vm, t + off[SM_THREAD_NODE], 100), group);
		}
		if (st->kind == SYNTH_T_IDLE) {
			assert_int_equal(rd32(&vm, t + off[TF_PID]), 0);
			assert_false(st->on_tasks_list);
		}
		if (st->kind == SYNTH_T_KTHREAD || st->kind == SYNTH_T_ZOMBIE) {
			assert_int_equal(rd64(&vm, t + off[TF_MM]), 0);
			if (st->cpu < 0)
				assert_int_equal(rd64(&vm, t + off[TF_ACTIVE_MM]), 0);
		}
		if (st->tracer >= 0 && off[TF_REAL_PARENT] >= 0) {
			assert_int_equal(rd64(&vm, t + off[TF_PARENT]), img->tasks[st->tracer].va);
			if (img->layout.kver >= SYNTH_KV(2, 6, 26))
				assert_true(ring_len(&vm, img->tasks[st->tracer].va + off[SM_PTRACED], 100) >= 1);
		}
		if (off[TF_CRED] >= 0 && off[SM_REAL_CRED] >= 0) {
			assert_int_equal(rd64(&vm, t + off[TF_CRED]), st->cred_va);
			assert_int_equal(rd64(&vm, t + off[SM_REAL_CRED]), st->real_cred_va);
		}
	}
	/* per-CPU current, and the last CR3 of each vCPU is current's address space (or init_mm's) */
	for (uint32_t c = 0; c < img->ncpus; c++) {
		const struct synth_task *cur = task_at(img, img->current[c]);
		uint64_t last = 0, want;

		assert_non_null(cur);
		assert_int_equal(cur->cpu, (int)c);
		assert_int_equal(rd64(&vm, img->gs_base[c] + img->current_off), img->current[c]);
		for (size_t i = 0; i < img->obs.n; i++)
			if (img->obs.v[i].vcpu == c)
				last = img->obs.v[i].cr3 & X86_CR3_ADDR_MASK & (img->pti ? ~0x1000ULL : ~0ULL);
		want = cur->active_mm_va == img->init_mm_va ? img->swapper_pgd_pa : 0;
		for (size_t k = 0; k < img->nmms; k++)
			if (img->mms[k].va == cur->active_mm_va)
				want = img->mms[k].pgd_pa;
		assert_true(last == want || (cur->mm < 0 && last == img->swapper_pgd_pa));
		assert_int_not_equal(cur->active_mm_va, 0);
	}
}

/* shuffled layouts keep every member inside the struct, aligned, without overlap */
static void check_layout(const struct synth_image *img)
{
	static const uint8_t sz[TF_NR] = { 16, 4, 4, 16, 8, 8, 8, 8, 16, 16, 8 };
	uint8_t *occ = calloc(img->layout.size, 1);

	assert_non_null(occ);
	for (int i = 0; i < TF_NR; i++) {
		int32_t o = img->off[i];

		if (img->layout.off[i] < 0) {
			assert_int_equal(o, -1);
			continue;
		}
		assert_true(o >= 0 && (uint32_t)o + sz[i] <= img->layout.size);
		if (i != TF_COMM)
			assert_int_equal(o % (sz[i] >= 8 ? 8 : 4), 0);
		for (int k = 0; k < sz[i]; k++) {
			assert_int_equal(occ[o + k], 0);
			occ[o + k] = 1;
		}
		if (!img->shuffled)
			assert_int_equal(o, img->layout.off[i]);
	}
	free(occ);
}

static const struct synth_layout *pick(const char *release_prefix, bool need_real_parent)
{
	for (size_t i = 0; i < nlayouts; i++)
		if (!strncmp(layouts[i].release, release_prefix, strlen(release_prefix)) &&
		    (!need_real_parent || layouts[i].off[TF_REAL_PARENT] >= 0))
			return &layouts[i];
	return NULL;
}

static void build_and_check(const struct synth_layout *L, struct synth_opts *o)
{
	struct synth_image img;

	assert_non_null(L);
	assert_int_equal(synth_build(L, o, &img), 0);
	check_layout(&img);
	check_image(&img);
	synth_free(&img);
}

static void test_generator_invariants(void **state)
{
	static const char *const rel[] = { "2.6.18-8.el5", "2.6.18-6-amd64", "2.6.24", "2.6.32-71", "3.2.0",
		"3.10.0-693.21", "4.4.0-135", "4.9.0", "4.15.0", "5.10.0", "6.1.0-47-cloud", "6.12.107",
		"7.2.13" };

	(void)state;
	if (!nlayouts)
		skip();
	for (size_t i = 0; i < sizeof(rel) / sizeof(rel[0]); i++) {
		for (int shuffle = 0; shuffle < 2; shuffle++) {
			for (uint64_t seed = 1; seed <= 3; seed++) {
				struct synth_opts o = { .seed = seed, .shuffle = shuffle };

				build_and_check(pick(rel[i], false), &o);
			}
		}
	}
}

/* every x86_64 row, as-is and shuffled: the generator's invariants hold on all of them */
static void test_every_layout(void **state)
{
	(void)state;
	if (!nlayouts)
		skip();
	for (size_t i = 0; i < nlayouts; i++)
		for (int shuffle = 0; shuffle < 2; shuffle++) {
			struct synth_opts o = { .seed = 100 + i, .shuffle = shuffle };

			build_and_check(&layouts[i], &o);
		}
}

static void test_platform_variants(void **state)
{
	const struct synth_layout *L;

	(void)state;
	if (!nlayouts)
		skip();
	L = pick("6.1.0-47-cloud", false);
	for (int pti = 1; pti <= 2; pti++)
		for (int la57 = 1; la57 <= 2; la57++)
			for (int pcid = 1; pcid <= 2; pcid++) {
				struct synth_opts o = { .seed = 7, .pti = pti, .la57 = la57, .pcid = pcid,
							.kaslr = SYNTH_ON, .ncpus = 1 + (unsigned)(pti + la57 + pcid) };
				struct synth_image img;

				assert_int_equal(synth_build(L, &o, &img), 0);
				assert_int_equal(img.pti, pti == SYNTH_ON);
				assert_int_equal(img.la57, la57 == SYNTH_ON);
				assert_int_equal(img.paging_levels, la57 == SYNTH_ON ? 5 : 4);
				check_image(&img);
				synth_free(&img);
			}
}

/* PTI + PCID CR3s carry kernel PCIDs, user PCIDs (bit 11) and the user-copy bit 12; the no-flush bit of
 * a MOV to CR3 is not part of the register, and obs_add drops it */
static void test_cr3_shapes(void **state)
{
	struct synth_opts o = { .seed = 3, .pti = SYNTH_ON, .pcid = SYNTH_ON };
	struct synth_image img;
	size_t user = 0, noflush = 0, pcid = 0;

	(void)state;
	if (!nlayouts)
		skip();
	assert_int_equal(synth_build(pick("6.12.107", false), &o, &img), 0);
	for (size_t i = 0; i < img.obs.n; i++) {
		uint64_t v = img.obs.v[i].cr3;

		user += (v & 0x1800) == 0x1800;
		noflush += v >> 63;
		pcid += (v & 0x7ff) != 0;
	}
	assert_true(user > 0 && pcid > 0);
	assert_int_equal(noflush, 0);
	synth_free(&img);
}

/* same seed, same image; fast enough for the breadth test */
static void test_deterministic_and_fast(void **state)
{
	const struct synth_layout *L;
	struct synth_opts o = { .seed = 11, .shuffle = true };
	struct synth_image a, b;
	struct timespec t0, t1;
	double ms;

	(void)state;
	if (!nlayouts)
		skip();
	L = pick("6.1.0-47-cloud", false);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(synth_build(L, &o, &a), 0);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	assert_int_equal(synth_build(L, &o, &b), 0);
	assert_int_equal(a.ram_size, b.ram_size);
	assert_memory_equal(a.off, b.off, sizeof(a.off));
	assert_int_equal(memcmp(a.mem, b.mem, a.ram_size), 0);
	assert_int_equal(a.obs.n, b.obs.n);
	ms = (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6;
	printf("synth: one image in %.1f ms (%zu tasks, %u on the list, %u threads, %u stale, %zu obs)\n", ms,
	       a.ntasks, a.n_on_list, a.n_threads, a.n_stale, a.obs.n);
	synth_free(&a);
	synth_free(&b);
}

/* i386 rows make 32-bit guests: checked with the 32-bit translator, not the generator's bookkeeping alone.
 * Both paging modes and both splits: lowmem found at PAGE_OFFSET, the image's text read-only and its data
 * writable (NX under PAE), every task_struct and PGD where the generator says, 4-byte current_task pointers
 * behind each GDTR alias, vCPU registers that say 32-bit paging. */
static void test_i386_invariants(void **state)
{
	struct synth_layout *L = NULL;
	size_t n = 0;
	const char *csv = synth_find_layouts_csv();

	(void)state;
	if (!csv)
		skip();
	assert_int_equal(synth_load_layouts_arch(csv, "i386", &L, &n), 0);
	assert_true(n > 0);
	for (int k = 0; k < 4; k++) {
		const struct synth_layout *row = &L[(size_t)k * (n - 1) / 3];
		struct synth_opts o = { .seed = 5 + k, .shuffle = k & 1, .paging32 = k & 1 ? 2 : 3,
					.page_offset32 = k >= 2 ? 0x80000000ULL : 0 };
		struct synth_image img;
		struct x86_map m;
		bool pae = !(k & 1);
		uint64_t root, pob = 0, size = 0;

		assert_int_equal(synth_build(row, &o, &img), 0);
		assert_int_equal(img.psz, 4);
		assert_int_equal(img.paging_levels, pae ? 3 : 2);
		assert_int_equal(img.page_offset_base, k >= 2 ? 0x80000000ULL : 0xc0000000ULL);
		root = img.swapper_pgd_pa;
		assert_int_equal(x86_32_find_lowmem(img.pm, root, pae, &pob, &size), 0);
		assert_int_equal(pob, img.page_offset_base);
		assert_true(x86_32_detect_pae(img.pm, root) == pae);
		/* text read-only, init_task in writable data */
		assert_int_equal(x86_32_translate(img.pm, root, pae, img.kernel_va, &m), 0);
		assert_false(m.writable);
		assert_int_equal(x86_32_translate(img.pm, root, pae, img.init_task_va, &m), 0);
		assert_true(m.writable);
		assert_true(m.nx == pae);
		assert_int_equal(m.pa, synth_kva_to_pa(&img, img.init_task_va));
		for (size_t i = 0; i < img.ntasks; i++) {
			assert_int_equal(x86_32_translate(img.pm, root, pae, img.tasks[i].va, &m), 0);
			assert_int_equal(m.pa, synth_kva_to_pa(&img, img.tasks[i].va));
			assert_true(img.tasks[i].va < 0x100000000ULL);
		}
		for (size_t i = 0; i < img.nmms; i++) {
			assert_int_equal(img.mms[i].pgd_pa & (pae ? 31 : 4095), 0);
			assert_int_equal(img.mms[i].pgd_va, img.page_offset_base + img.mms[i].pgd_pa);
			/* the process PGD maps the kernel's lowmem too */
			assert_int_equal(x86_32_translate(img.pm, img.mms[i].pgd_pa, pae, img.init_task_va, &m), 0);
		}
		for (uint32_t c = 0; c < img.ncpus; c++) {
			uint32_t cur;

			assert_true(img.gs_base[c] >= 0xff400000ULL);
			assert_int_equal(x86_32_translate(img.pm, root, pae, img.gs_base[c], &m), 0);
			assert_false(m.writable);   /* the read-only GDT alias */
			memcpy(&cur, img.mem + m.pa + img.current_off, 4);
			assert_int_equal(cur, img.current[c]);
			assert_int_equal(img.pm->nvcpus, img.ncpus);
			assert_int_equal(x86_32_paging_levels(img.pm->vcpus[c].cr0, img.pm->vcpus[c].cr4,
							      img.pm->vcpus[c].efer), pae ? 3 : 2);
			assert_int_equal(img.pm->vcpus[c].gdt_base, img.gs_base[c]);
		}
		for (size_t i = 0; i < img.obs.n; i++)
			assert_true(img.obs.v[i].cr3 < 0x100000000ULL && !(img.obs.v[i].cr3 & (pae ? 31 : 4095)));
		synth_free(&img);
	}
	free(L);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_generator_invariants),
		cmocka_unit_test(test_every_layout),
		cmocka_unit_test(test_platform_variants),
		cmocka_unit_test(test_cr3_shapes),
		cmocka_unit_test(test_deterministic_and_fast),
		cmocka_unit_test(test_i386_invariants),
	};

	if (!synth_find_layouts_csv())
		printf("test_synth: layout table not found (set VMOT_LAYOUTS or keep ../shared); skipping\n");
	return cmocka_run_group_tests(tests, load, unload);
}
