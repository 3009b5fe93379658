/*
 * 32-bit x86 page walker: 2-level (PD of 1024 4-byte entries, 4 KiB or 4 MiB pages) and PAE 3-level (PDPT
 * of 4 8-byte entries, PD and PT of 512, 4 KiB or 2 MiB pages).
 *
 * Page tables come from the guest and are hostile input: every entry read is bounds-checked by
 * physmem_read; reserved bits (PDPTE bits 2:1, a large page's reserved low address bits, bit 21 of a
 * 4 MiB PDE) make an entry a fault; the depth is fixed, so a table that points at itself is read as a
 * lower-level table once more and no walk can recurse. A whole walk reads at most 2053 tables.
 *
 * Bits 62:52 of PAE entries are left alone as on x86-64 (ignored or available to software); bit 63 is NX.
 * CR4.PSE is taken as set: every kernel that maps lowmem with large pages enables it.
 */
#include <errno.h>
#include <string.h>
#include "arch/x86_32.h"
#include "common/log.h"

#define PTE_P      (1ULL << 0)
#define PTE_RW     (1ULL << 1)
#define PTE_US     (1ULL << 2)
#define PTE_PS     (1ULL << 7)
#define PTE_NX     (1ULL << 63)
#define PAE_ADDR   0x000ffffffffff000ULL
#define PAE_ADDR_2M 0x000fffffffe00000ULL
#define PAE_RSVD_2M 0x00000000001fe000ULL   /* bits 20:13 (bit 12 is PAT) */
/* PDPTE bits 2:1 (RW/US do not exist there). Intel also reserves bits 8:5, but guests run with bit 5 (A)
 * set in them (Debian's 686-pae kernels under QEMU), and a CPU that accepts them is what counts. */
#define PDPTE_RSVD 0x0000000000000006ULL
#define PDE32_RSVD_4M (1ULL << 21)
#define VA_LIMIT   (1ULL << 32)
#define WALK_DEFAULT_MAX_LEAVES (1ULL << 21)

/* The shape of one level: entries per table, entry size and the VA bits an entry spans. */
struct level {
	unsigned entries, esize, shift;
};

static const struct level LV_2L[3] = { [1] = { 1024, 4, 12 }, [2] = { 1024, 4, 22 } };
static const struct level LV_PAE[4] = { [1] = { 512, 8, 12 }, [2] = { 512, 8, 21 }, [3] = { 4, 8, 30 } };

static inline const struct level *levels_of(bool pae) { return pae ? LV_PAE : LV_2L; }

/* A present entry at level lvl: its page size if it is a leaf, 0 for a table, -EFAULT if malformed.
 * *pa receives the leaf's page base or the next table's address. */
static int64_t entry_decode(uint64_t e, int lvl, bool pae, uint64_t *pa)
{
	if (!pae) {
		if (lvl == 1) {
			*pa = e & 0xfffff000ULL;
			return 4096;
		}
		if (!(e & PTE_PS)) {
			*pa = e & 0xfffff000ULL;
			return 0;
		}
		if (e & PDE32_RSVD_4M)
			return -EFAULT;
		*pa = (e & 0xffc00000ULL) | ((e >> 13) & 0xffULL) << 32;   /* PSE-36: bits 20:13 are PA 39:32 */
		return 4ULL << 20;
	}
	if (lvl == 3) {
		if (e & (PDPTE_RSVD | PTE_NX))
			return -EFAULT;
		*pa = e & PAE_ADDR;
		return 0;
	}
	if (lvl == 2 && (e & PTE_PS)) {
		if (e & PAE_RSVD_2M)
			return -EFAULT;
		*pa = e & PAE_ADDR_2M;
		return 2ULL << 20;
	}
	*pa = e & PAE_ADDR;
	return lvl == 1 ? 4096 : 0;
}

static int read_entry(struct physmem *pm, uint64_t table, unsigned idx, unsigned esize, uint64_t *e)
{
	uint32_t v32;
	int err;

	if (esize == 8)
		return physmem_read_u64(pm, table + idx * 8ULL, e);
	err = physmem_read(pm, table + idx * 4ULL, &v32, 4);
	if (!err)
		*e = v32;
	return err;
}

int x86_32_translate(struct physmem *pm, uint64_t cr3, bool pae, uint64_t va, struct x86_map *map)
{
	const struct level *lv = levels_of(pae);
	uint64_t table = x86_32_cr3_root(cr3, pae);
	bool w = true, u = true, nx = false;

	if (!pm || !map)
		return -EINVAL;
	if (va >= VA_LIMIT)
		return -EFAULT;
	for (int lvl = pae ? 3 : 2; lvl >= 1; lvl--) {
		unsigned idx = (unsigned)(va >> lv[lvl].shift) & (lv[lvl].entries - 1);
		uint64_t e, pa;
		int64_t size;
		int err = read_entry(pm, table, idx, lv[lvl].esize, &e);

		if (err)
			return err;
		if (!(e & PTE_P))
			return -EFAULT;
		size = entry_decode(e, lvl, pae, &pa);
		if (size < 0)
			return (int)size;
		if (!(pae && lvl == 3)) {   /* a PDPTE has no RW/US bits */
			w = w && (e & PTE_RW);
			u = u && (e & PTE_US);
			nx = nx || (pae && (e & PTE_NX));
		}
		if (size > 0) {
			map->page_size = (uint64_t)size;
			map->pa = pa | (va & ((uint64_t)size - 1));
			map->writable = w;
			map->user = u;
			map->nx = nx;
			return 0;
		}
		table = pa;
	}
	return -EFAULT;   /* not reached */
}

/* ---- range walk ---- */

struct walker32 {
	struct physmem *pm;
	bool pae;
	x86_leaf_cb cb;
	void *arg;
	uint64_t max_leaves, nleaves;
	int err;      /* source error other than -EFAULT */
	bool stop;
};

/* Walk the table at level lvl covering [base, base + entries << shift), clipped to [lo, hi). */
static void walk_table(struct walker32 *w, int lvl, uint64_t table, uint64_t base, uint64_t lo, uint64_t hi,
		       bool wr, bool us, bool nx)
{
	const struct level *l = &levels_of(w->pae)[lvl];
	uint64_t span = (uint64_t)l->entries << l->shift;
	unsigned char t[4096];
	unsigned first, last;
	int err;

	err = physmem_read(w->pm, table, t, (size_t)l->entries * l->esize);
	if (err) {
		if (err != -EFAULT) {   /* the source itself failed (QEMU gone, I/O error): stop */
			w->err = err;
			w->stop = true;
		}
		return;
	}
	first = lo > base ? (unsigned)((lo - base) >> l->shift) : 0;
	last = hi - 1 - base >= span ? l->entries - 1 : (unsigned)((hi - 1 - base) >> l->shift);
	for (unsigned i = first; i <= last && !w->stop; i++) {
		uint64_t e = 0, pa, va = base + ((uint64_t)i << l->shift);
		bool top = w->pae && lvl == 3;
		int64_t size;

		memcpy(&e, t + (size_t)i * l->esize, l->esize);
		if (!(e & PTE_P))
			continue;
		size = entry_decode(e, lvl, w->pae, &pa);
		if (size < 0)
			continue;
		bool ewr = top ? wr : wr && (e & PTE_RW), eus = top ? us : us && (e & PTE_US);
		bool enx = nx || (w->pae && !top && (e & PTE_NX));

		if (size == 0) {
			walk_table(w, lvl - 1, pa, va, lo, hi, ewr, eus, enx);
			continue;
		}
		struct x86_map m = { .pa = pa, .page_size = (uint64_t)size, .writable = ewr, .user = eus, .nx = enx };

		w->nleaves++;
		if (w->cb(va, &m, w->arg) || w->nleaves >= w->max_leaves)
			w->stop = true;
	}
}

int x86_32_walk(struct physmem *pm, uint64_t cr3, bool pae, uint64_t va_start, uint64_t va_end,
		uint64_t max_leaves, x86_leaf_cb cb, void *arg)
{
	struct walker32 w = {
		.pm = pm, .pae = pae, .cb = cb, .arg = arg,
		.max_leaves = max_leaves ? max_leaves : WALK_DEFAULT_MAX_LEAVES,
	};
	uint64_t root = x86_32_cr3_root(cr3, pae), hi = !va_end || va_end > VA_LIMIT ? VA_LIMIT : va_end;

	if (!pm || !cb)
		return -EINVAL;
	if (!physmem_contains(pm, root, pae ? 32 : 4096))
		return -EFAULT;
	if (va_start < hi)
		walk_table(&w, pae ? 3 : 2, root, 0, va_start, hi, true, true, false);
	if (w.err)
		return w.err;
	return w.nleaves > INT32_MAX ? INT32_MAX : (int)w.nleaves;
}

int x86_32_paging_levels(uint64_t cr0, uint64_t cr4, uint64_t efer)
{
	if (!(cr0 & (1ULL << 31)) || (efer & (1ULL << 10)))   /* CR0.PG off, or EFER.LMA: not 32-bit paging */
		return -EINVAL;
	return (cr4 & (1ULL << 5)) ? 3 : 2;                   /* CR4.PAE */
}

/* ---- lowmem ---- */

/* Runs of leaves with one VA - PA and contiguous VAs, in VA order; the best run that starts at PA 0. */
struct lowmem_acc {
	struct physmem *pm;
	uint64_t run_va, run_pa, run_end, run_bytes;   /* current run: first VA/PA, VA end, RAM bytes */
	bool in_run;
	uint64_t best_offset, best_bytes;
	uint64_t stop_at;
};

static void lowmem_close_run(struct lowmem_acc *a)
{
	if (a->in_run && a->run_pa == 0 && a->run_bytes > a->best_bytes) {
		a->best_bytes = a->run_bytes;
		a->best_offset = a->run_va;
	}
	a->in_run = false;
}

static int lowmem_cb(uint64_t va, const struct x86_map *m, void *arg)
{
	struct lowmem_acc *a = arg;

	if (m->user) {   /* lowmem is the kernel's: a user-accessible leaf ends any run */
		lowmem_close_run(a);
		return 0;
	}
	if (a->in_run && va == a->run_end && m->pa == a->run_pa + (va - a->run_va)) {
		a->run_end += m->page_size;
		a->run_bytes += physmem_overlap(a->pm, m->pa, m->page_size);
	} else {
		lowmem_close_run(a);
		a->in_run = true;
		a->run_va = va;
		a->run_pa = m->pa;
		a->run_end = va + m->page_size;
		a->run_bytes = physmem_overlap(a->pm, m->pa, m->page_size);
	}
	/* lowmem comes first above PAGE_OFFSET: once a run from PA 0 maps most of RAM, nothing later beats it */
	return a->run_pa == 0 && a->run_bytes >= a->stop_at;
}

static int lowmem_best(struct physmem *pm, uint64_t cr3, bool pae, uint64_t *offset, uint64_t *bytes)
{
	struct lowmem_acc a = { .pm = pm, .stop_at = physmem_total(pm) / 10 * 9 };
	int n;

	/* PAGE_OFFSET is 1 GiB (VMSPLIT_1G) or above. Lowmem maps each RAM page once, so twice as many leaves as
	 * RAM has pages is plenty; tables that map 4 GiB over a few pages again and again stop early. */
	uint64_t cap = physmem_total(pm) / 4096 * 2 + 4096;

	n = x86_32_walk(pm, cr3, pae, 1ULL << 30, 0, cap, lowmem_cb, &a);
	lowmem_close_run(&a);
	if (n < 0)
		return n;
	*offset = a.best_offset;
	*bytes = a.best_bytes;
	return 0;
}

int x86_32_find_lowmem(struct physmem *pm, uint64_t cr3, bool pae, uint64_t *page_offset, uint64_t *size)
{
	uint64_t off = 0, bytes = 0, total;
	int err;

	if (!pm || !page_offset || !size)
		return -EINVAL;
	err = lowmem_best(pm, cr3, pae, &off, &bytes);
	if (err)
		return err;
	total = physmem_total(pm);
	/* a real lowmem map covers RAM up to its 896 MiB-or-so limit; PAGE_OFFSET is PMD-aligned */
	if (!bytes || (bytes * 4 < total && bytes < (64ULL << 20)) || (off & ((2ULL << 20) - 1)))
		return -ENOENT;
	p_dbg("lowmem map at %#llx covers %llu of %llu RAM bytes (%s)", (unsigned long long)off,
	      (unsigned long long)bytes, (unsigned long long)total, pae ? "PAE" : "2-level");
	*page_offset = off;
	*size = bytes;
	return 0;
}

bool x86_32_detect_pae(struct physmem *pm, uint64_t cr3)
{
	uint64_t o2 = 0, b2 = 0, o3 = 0, b3 = 0;

	if (cr3 & 0xfe0)
		return true;   /* a PDPT may sit anywhere 32-byte aligned; a page directory is page aligned */
	if (lowmem_best(pm, cr3, false, &o2, &b2) < 0)
		b2 = 0;
	if (lowmem_best(pm, cr3, true, &o3, &b3) < 0)
		b3 = 0;
	p_dbg("PAE probe: 2-level lowmem covers %llu bytes, PAE %llu", (unsigned long long)b2,
	      (unsigned long long)b3);
	return b3 > b2;
}
