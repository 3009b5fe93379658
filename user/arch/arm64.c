/*
 * AArch64 stage-1 page walker, 4 KiB granule: 3 levels for 39-bit VAs, 4 for 48, 5 for 52 (FEAT_LPA2).
 *
 * Levels are numbered here as in x86_64.c, from the page level (1) up: a leaf at level 1 is a 4 KiB page, at 2 a
 * 2 MiB block, at 3 a 1 GiB block (the architecture's levels 3, 2 and 1). Blocks elsewhere (LPA2's 512 GiB level-0
 * blocks, which Linux never writes) and a level-1 descriptor with bit 1 clear are reserved encodings: faults.
 *
 * Descriptors come from the guest and are hostile input: every read is bounds-checked by physmem_read; the depth
 * is fixed per translation; a range walk reads at most 2^18 tables and walks a table met again at most 16 more
 * times (a crafted table that points at itself cannot multiply the work).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "arch/arm64.h"
#include "common/oatab.h"

#define D_VALID     (1ULL << 0)
#define D_TABLE     (1ULL << 1)     /* table (levels above the page level) or page (page level) */
#define D_AP_EL0    (1ULL << 6)     /* AP[1]: EL0 may access */
#define D_AP_RO     (1ULL << 7)     /* AP[2]: read-only */
#define D_PXN       (1ULL << 53)
#define T_PXN       (1ULL << 59)    /* PXNTable */
#define T_AP_NOEL0  (1ULL << 61)    /* APTable[0]: no EL0 access below */
#define T_AP_RO     (1ULL << 62)    /* APTable[1]: no writes below */
#define OA_48       0x0000fffffffff000ULL
#define OA_50       0x0003fffffffff000ULL   /* LPA2: bits 49:12, and OA[51:50] from bits 9:8 */

#define WALK_MAX_TABLE_READS (1u << 18)
#define WALK_DEFAULT_MAX_LEAVES (1ULL << 24)
#define WALK_MAX_REVISITS 16u

static unsigned levels_of(unsigned va_bits) { return (va_bits - 12 + 8) / 9; }
static unsigned level_shift(int lvl) { return 12 + 9 * (unsigned)(lvl - 1); }

/* Entries in the top-level table of a va_bits walk. */
static uint64_t top_entries(unsigned va_bits)
{
	return 1ULL << (va_bits - level_shift((int)levels_of(va_bits)));
}

static bool va_bits_ok(unsigned b) { return b >= 25 && b <= 52; }

uint64_t arm64_ttbr_root(uint64_t ttbr, unsigned va_bits, bool lpa2)
{
	uint64_t size = va_bits_ok(va_bits) ? top_entries(va_bits) * 8 : 4096, baddr = ttbr & 0x0000fffffffffffeULL;

	if (size < 64)
		size = 64;   /* BADDR is at least 64-byte aligned */
	if (lpa2)        /* DS=1, 52-bit output addresses: BADDR[51:48] sit in TTBR bits 5:2 */
		baddr = (ttbr & 0x0000ffffffffffc0ULL) | ((ttbr >> 2) & 0xfULL) << 48;
	return baddr & ~(size - 1);
}

static uint64_t desc_oa(uint64_t d, bool lpa2)
{
	return lpa2 ? (d & OA_50) | ((d >> 8) & 3ULL) << 50 : d & OA_48;
}

/* A valid descriptor at level lvl of a walk with `levels` levels: page/block size if a leaf, 0 for a table,
 * -EFAULT if reserved. */
static int64_t desc_kind(uint64_t d, int lvl)
{
	if (lvl == 1)
		return (d & D_TABLE) ? 4096 : -EFAULT;
	if (d & D_TABLE)
		return 0;
	if (lvl == 2)
		return 2LL << 20;
	if (lvl == 3)
		return 1LL << 30;
	return -EFAULT;
}

/* Which half a VA belongs to: 1 (TTBR1), 0 (TTBR0), -1 neither. */
static int va_half(const struct arm64_mmu *m, uint64_t va)
{
	if (va_bits_ok(m->va_bits1) && va >> m->va_bits1 == ~0ULL >> m->va_bits1)
		return 1;
	if (va_bits_ok(m->va_bits0) && !(va >> m->va_bits0))
		return 0;
	return -1;
}

int arm64_translate(struct physmem *pm, const struct arm64_mmu *mmu, uint64_t va, struct x86_map *map)
{
	int half;
	unsigned vb;
	uint64_t table;
	bool w = true, u = true, pxn = false;

	if (!pm || !mmu || !map)
		return -EINVAL;
	half = va_half(mmu, va);
	if (half < 0)
		return -EFAULT;
	vb = half ? mmu->va_bits1 : mmu->va_bits0;
	table = arm64_ttbr_root(half ? mmu->ttbr1 : mmu->ttbr0, vb, mmu->lpa2);
	for (int lvl = (int)levels_of(vb); lvl >= 1; lvl--) {
		uint64_t idx = (va >> level_shift(lvl)) & (lvl == (int)levels_of(vb) ? top_entries(vb) - 1 : 511), d;
		int64_t size;
		int err = physmem_read_u64(pm, table + idx * 8, &d);

		if (err)
			return err;
		if (!(d & D_VALID))
			return -EFAULT;
		size = desc_kind(d, lvl);
		if (size < 0)
			return (int)size;
		if (size == 0) {
			w = w && !(d & T_AP_RO);
			u = u && !(d & T_AP_NOEL0);
			pxn = pxn || (d & T_PXN);
			table = desc_oa(d, mmu->lpa2);
			continue;
		}
		map->page_size = (uint64_t)size;
		map->pa = (desc_oa(d, mmu->lpa2) & ~((uint64_t)size - 1)) | (va & ((uint64_t)size - 1));
		map->writable = w && !(d & D_AP_RO);
		map->user = u && (d & D_AP_EL0);
		map->nx = pxn || (d & D_PXN);
		return 0;
	}
	return -EFAULT;   /* not reached */
}

/* ---- range walk ---- */

struct seen_slot {
	uint64_t key;   /* table PA | level */
	bool used;
};

static uint64_t seen_hash(const void *s) { return ((const struct seen_slot *)s)->key * 0x9e3779b97f4a7c15ULL; }
static bool seen_same(const void *a, const void *b)
{
	return ((const struct seen_slot *)a)->key == ((const struct seen_slot *)b)->key;
}

static const struct oatab_type seen_type = {
	.size = sizeof(struct seen_slot), .used_off = offsetof(struct seen_slot, used), .min_cap = 256,
	.hash = seen_hash, .same = seen_same,
};

struct walker64 {
	struct physmem *pm;
	bool lpa2;
	unsigned va_bits;
	uint64_t va_base;     /* VA of index 0: 0 for TTBR0, 2^64 - 2^va_bits for TTBR1 */
	x86_leaf_cb cb;
	void *arg;
	uint64_t max_leaves, nleaves, tables_read, revisits;
	int err;
	bool stop;
	struct seen_slot *seen;
	size_t seen_cap, seen_n;
};

/* Walk the table at lvl covering index space [base, base + entries << shift), clipped to [lo, hi). */
static void walk_table(struct walker64 *w, int lvl, uint64_t table, uint64_t base, uint64_t lo, uint64_t hi,
		       bool wr, bool us, bool pxn)
{
	unsigned shift = level_shift(lvl);
	uint64_t entries = lvl == (int)levels_of(w->va_bits) ? top_entries(w->va_bits) : 512;
	uint64_t span = entries << shift, t[512], first, last;
	struct seen_slot key = { .key = table | (uint64_t)lvl };
	bool fresh = true;
	int err;

	if (!oatab_slot(&seen_type, (void **)&w->seen, &w->seen_cap, &w->seen_n, &key, &fresh) || !fresh) {
		if (w->revisits >= WALK_MAX_REVISITS)
			return;
		w->revisits++;
	}
	if (w->tables_read >= WALK_MAX_TABLE_READS) {
		w->stop = true;
		return;
	}
	w->tables_read++;
	err = physmem_read(w->pm, table, t, entries * 8);
	if (err) {
		if (err != -EFAULT) {
			w->err = err;
			w->stop = true;
		}
		return;
	}
	first = lo > base ? (lo - base) >> shift : 0;
	last = hi - 1 - base >= span ? entries - 1 : (hi - 1 - base) >> shift;
	for (uint64_t i = first; i <= last && !w->stop; i++) {
		uint64_t d = t[i], idx = base + (i << shift);
		int64_t size;

		if (!(d & D_VALID))
			continue;
		size = desc_kind(d, lvl);
		if (size < 0)
			continue;
		if (size == 0) {
			walk_table(w, lvl - 1, desc_oa(d, w->lpa2), idx, lo, hi, wr && !(d & T_AP_RO),
				   us && !(d & T_AP_NOEL0), pxn || (d & T_PXN));
			continue;
		}
		struct x86_map m = {
			.pa = desc_oa(d, w->lpa2) & ~((uint64_t)size - 1), .page_size = (uint64_t)size,
			.writable = wr && !(d & D_AP_RO), .user = us && (d & D_AP_EL0), .nx = pxn || (d & D_PXN),
		};
		w->nleaves++;
		if (w->cb(w->va_base + idx, &m, w->arg) || w->nleaves >= w->max_leaves)
			w->stop = true;
	}
}

/* One half: its VA window [va_base, va_base + 2^va_bits) clipped to [va_start, va_end]. */
static int walk_half(struct walker64 *w, uint64_t ttbr, unsigned va_bits, bool high, uint64_t va_start,
		     uint64_t va_last)
{
	uint64_t size = 1ULL << va_bits, base = high ? 0 - size : 0, last = base + (size - 1), lo, hi, root;

	if (!va_bits_ok(va_bits) || va_last < base || va_start > last)
		return 1;   /* nothing of this half asked for */
	root = arm64_ttbr_root(ttbr, va_bits, w->lpa2);
	if (!physmem_contains(w->pm, root, top_entries(va_bits) * 8))
		return -EFAULT;
	w->va_bits = va_bits;
	w->va_base = base;
	lo = va_start > base ? va_start - base : 0;
	hi = va_last < last ? va_last - base + 1 : size;
	walk_table(w, (int)levels_of(va_bits), root, 0, lo, hi, true, true, false);
	return 0;
}

int arm64_walk(struct physmem *pm, const struct arm64_mmu *mmu, uint64_t va_start, uint64_t va_end,
	       uint64_t max_leaves, x86_leaf_cb cb, void *arg)
{
	struct walker64 w = {
		.pm = pm, .lpa2 = mmu ? mmu->lpa2 : false, .cb = cb, .arg = arg,
		.max_leaves = max_leaves ? max_leaves : WALK_DEFAULT_MAX_LEAVES,
	};
	uint64_t va_last = va_end ? va_end - 1 : ~0ULL;
	int r0, r1;

	if (!pm || !mmu || !cb)
		return -EINVAL;
	if (va_end && va_end <= va_start)
		return 0;
	r0 = walk_half(&w, mmu->ttbr0, mmu->va_bits0, false, va_start, va_last);
	r1 = w.stop ? 1 : walk_half(&w, mmu->ttbr1, mmu->va_bits1, true, va_start, va_last);
	free(w.seen);
	if (w.err)
		return w.err;
	if (r0 < 0 && r1 != 0)
		return r0;   /* no root of an asked-for half in RAM, and the other gave nothing */
	if (r1 < 0 && r0 != 0)
		return r1;
	return w.nleaves > INT32_MAX ? INT32_MAX : (int)w.nleaves;
}

void arm64_mmu_from_tcr(struct arm64_mmu *mmu, uint64_t tcr)
{
	unsigned t0sz = tcr & 0x3f, t1sz = (tcr >> 16) & 0x3f, tg0 = (tcr >> 14) & 3, tg1 = (tcr >> 30) & 3;

	/* only the 4 KiB granule is walked: TG0 = 0b00, TG1 = 0b10 */
	mmu->va_bits0 = (tcr & (1ULL << 7)) || tg0 != 0 ? 0 : 64 - t0sz;
	mmu->va_bits1 = (tcr & (1ULL << 23)) || tg1 != 2 ? 0 : 64 - t1sz;
	if (!va_bits_ok(mmu->va_bits0))
		mmu->va_bits0 = 0;
	if (!va_bits_ok(mmu->va_bits1))
		mmu->va_bits1 = 0;
	mmu->lpa2 = (tcr >> 59) & 1;
}

/* ---- the linear map ---- */

#define LINEAR_MAX_DELTAS 256

struct linear_acc {
	struct physmem *pm;
	uint64_t delta[LINEAR_MAX_DELTAS], bytes[LINEAR_MAX_DELTAS];
	size_t n, last;
	uint64_t stop_at;
};

static int linear_cb(uint64_t va, const struct x86_map *m, void *arg)
{
	struct linear_acc *a = arg;
	uint64_t bytes = physmem_overlap(a->pm, m->pa, m->page_size), delta = va - m->pa;
	size_t i = a->last;

	if (!bytes || !m->writable)   /* the linear map is writable (its read-only aliases are a few MiB) */
		return 0;
	if (i >= a->n || a->delta[i] != delta)
		for (i = 0; i < a->n && a->delta[i] != delta; i++)
			;
	if (i == a->n) {
		/* Full of scattered mappings (vmalloc: a delta per page). Before 5.4 the linear map is the half's upper
		 * part, walked after vmalloc and its stacks: the least-covered delta makes room, or the linear map
		 * would never be counted. */
		if (a->n == LINEAR_MAX_DELTAS) {
			i = 0;
			for (size_t k = 1; k < a->n; k++)
				if (a->bytes[k] < a->bytes[i])
					i = k;
		} else {
			i = a->n++;
		}
		a->delta[i] = delta;
		a->bytes[i] = 0;
	}
	a->bytes[i] += bytes;
	a->last = i;
	/* the linear map comes first in the TTBR1 half since 5.4: once it covers most of RAM, stop */
	return a->bytes[i] >= a->stop_at;
}

/* arm64_find_linear_map over at most max_leaves leaves; *leaves gets how many were walked */
static int linear_map_within(struct physmem *pm, const struct arm64_mmu *mmu, uint64_t max_leaves, uint64_t *base,
			     uint64_t *covered, uint64_t *leaves)
{
	struct linear_acc *a;
	struct arm64_mmu k;
	size_t best = 0;
	int n;

	*leaves = 0;
	if (!pm || !mmu || !base || !covered || !va_bits_ok(mmu->va_bits1))
		return -EINVAL;
	a = calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	a->pm = pm;
	a->stop_at = physmem_total(pm) / 10 * 9;
	k = *mmu;
	k.va_bits0 = 0;   /* the kernel half only */
	n = arm64_walk(pm, &k, 0 - (1ULL << k.va_bits1), 0, max_leaves, linear_cb, a);
	*leaves = n > 0 ? (uint64_t)n : 0;
	for (size_t i = 1; i < a->n; i++)
		if (a->bytes[i] > a->bytes[best])
			best = i;
	if (n >= 0 && (!a->n || a->bytes[best] * 4 < physmem_total(pm)))
		n = -ENOENT;
	if (n >= 0) {
		*base = a->delta[best];
		*covered = a->bytes[best];
	}
	free(a);
	return n < 0 ? n : 0;
}

int arm64_find_linear_map(struct physmem *pm, const struct arm64_mmu *mmu, uint64_t *base, uint64_t *covered)
{
	uint64_t leaves;

	return linear_map_within(pm, mmu, 1ULL << 22, base, covered, &leaves);
}

#define ROOT_WALK_BYTES (8ULL << 20)      /* bytes each candidate root's walks may read */
#define ROOT_WALK_TOTAL (256ULL << 20)    /* and all candidates' together */
#define ROOT_LEAVES_EACH (1ULL << 20)     /* leaves each candidate's walks may visit (the kernel's: ~300000) */
#define ROOT_LEAVES_TOTAL (1ULL << 23)    /* and all candidates' together */

struct self_acc { uint64_t root, linear; bool found, huge; uint64_t leaves; };

static int self_cb(uint64_t va, const struct x86_map *m, void *arg)
{
	struct self_acc *a = arg;

	a->leaves++;
	/* Linux maps nothing with blocks above 1 GiB, and a block's output address is aligned to its size (a
	 * 2 MiB block read one level up as a 1 GiB one is not) */
	if (m->page_size > (1ULL << 30) || (m->pa & (m->page_size - 1))) {
		a->huge = true;
		return 1;
	}
	a->found |= a->root - m->pa < m->page_size && va - m->pa != a->linear;
	return 0;
}

/* swapper_pg_dir lies in the kernel image, which its own TTBR1 half maps outside the linear map (a table below
 * it, from the page allocator, read as a top-level one with its level shifted can still map all of RAM at a
 * constant offset, but through blocks of 512 GiB, which Linux never writes: the walk stops at the first). Its
 * leaves are counted: an early boot table left in RAM (seen at the top of a 7.2 guest's RAM) passes the same
 * tests but maps only the image and the linear map, while the kernel's own maps vmalloc, vmemmap and the rest
 * too. 0 when it does not pass, else the leaves. */
static uint64_t maps_itself_in_image(struct physmem *pm, const struct arm64_mmu *m, uint64_t linear,
				     uint64_t max_leaves, uint64_t *walked)
{
	struct self_acc a = { arm64_ttbr_root(m->ttbr1, m->va_bits1, m->lpa2), linear, false, false, 0 };
	struct arm64_mmu k = *m;
	int n;

	k.va_bits0 = 0;
	n = arm64_walk(pm, &k, 0 - (1ULL << k.va_bits1), 0, max_leaves, self_cb, &a);
	*walked = a.leaves;
	return n >= 0 && a.found && !a.huge ? a.leaves : 0;
}

/* What the candidates of one search have spent, against ROOT_WALK_TOTAL and ROOT_LEAVES_TOTAL. */
struct root_budget { uint64_t bytes, leaves; };

/* One candidate root: its leaves if its TTBR1 half maps a linear map of RAM and itself outside it (0 if not),
 * its walks within a budget of their own and within what the search has left (hostile memory can make every
 * page a table: the kernel's own table takes a few MiB, a process's a few hundred KiB). */
static uint64_t candidate_leaves(struct physmem *pm, const struct arm64_mmu *m, struct root_budget *b)
{
	uint64_t limit = pm->read_limit, before = pm->bytes_read, base, cov, n1 = 0, n2 = 0, leaves;
	uint64_t cap = ROOT_LEAVES_TOTAL - b->leaves < ROOT_LEAVES_EACH ? ROOT_LEAVES_TOTAL - b->leaves : ROOT_LEAVES_EACH;
	bool hit = pm->read_limit_hit;

	if (b->bytes >= ROOT_WALK_TOTAL || b->leaves >= ROOT_LEAVES_TOTAL)
		return 0;
	if (!limit || limit > pm->bytes_read + ROOT_WALK_BYTES)
		pm->read_limit = pm->bytes_read + ROOT_WALK_BYTES;
	leaves = linear_map_within(pm, m, cap, &base, &cov, &n1) ? 0 : maps_itself_in_image(pm, m, base, cap, &n2);
	b->bytes += pm->bytes_read - before;
	b->leaves += n1 + n2;
	pm->read_limit = limit;   /* the caller's own budget and its sticky flag, as they were */
	pm->read_limit_hit = hit;
	return leaves;
}

/* A page that reads as a top-level table of this configuration with at least two entries, and nothing past a
 * partial top level (swapper_pg_dir's page is otherwise zero, a full table below it is not). */
static bool top_table_candidate(struct physmem *pm, uint64_t pa, unsigned va_bits, bool lpa2)
{
	uint64_t t[512], n = top_entries(va_bits);
	int valid = 0;

	if (!arm64_user_root_plausible(pm, pa, va_bits, lpa2) || physmem_read(pm, pa, t, sizeof(t)))
		return false;
	for (uint64_t i = 0; i < 512; i++)
		valid += i < n ? t[i] != 0 : t[i] ? -1024 : 0;
	return valid >= 2;
}

int arm64_find_kernel_root(struct physmem *pm, uint64_t max_scan, struct arm64_mmu *out, uint64_t *tcr)
{
	static const struct { unsigned va_bits; bool lpa2; } cfg[] = { { 48, false }, { 52, true } };
	struct root_budget budget = { 0, 0 };
	uint64_t scanned = 0, best_leaves = 0;
	bool found = false;

	if (!pm || !out || !tcr)
		return -EINVAL;
	for (size_t r = 0; r < pm->nranges && scanned < max_scan; r++) {
		const struct phys_range *pr = &pm->ranges[r];

		for (uint64_t pa = (pr->start + 4095) & ~4095ULL; pa + 4096 <= pr->start + pr->len && scanned < max_scan;
		     pa += 4096, scanned += 4096)
			for (size_t c = 0; c < sizeof(cfg) / sizeof(cfg[0]); c++) {
				struct arm64_mmu m = { .ttbr0 = pa, .ttbr1 = pa, .va_bits0 = cfg[c].va_bits,
						       .va_bits1 = cfg[c].va_bits, .lpa2 = cfg[c].lpa2 };
				uint64_t leaves;

				if (!top_table_candidate(pm, pa, cfg[c].va_bits, cfg[c].lpa2))
					continue;
				leaves = candidate_leaves(pm, &m, &budget);
				if (leaves <= best_leaves)
					continue;
				best_leaves = leaves;
				*out = m;
				found = true;
			}
	}
	if (!found)
		return -ENOENT;
	/* T0SZ = T1SZ = 64 - va_bits, TG0 = 4 KiB (0b00), TG1 = 4 KiB (0b10), DS for LPA2 */
	*tcr = (uint64_t)(64 - out->va_bits0) | (uint64_t)(64 - out->va_bits1) << 16 | 2ULL << 30 |
	       (out->lpa2 ? 1ULL << 59 : 0);
	return 0;
}

bool arm64_table_empty(struct physmem *pm, uint64_t ttbr, unsigned va_bits)
{
	uint64_t t[512], n = va_bits_ok(va_bits) ? top_entries(va_bits) : 512;

	if (n > 512 || physmem_read(pm, arm64_ttbr_root(ttbr, va_bits, false), t, n * 8))
		return false;
	for (uint64_t i = 0; i < n; i++)
		if (t[i] & D_VALID)
			return false;
	return true;
}

bool arm64_user_root_plausible(struct physmem *pm, uint64_t root, unsigned va_bits, bool lpa2)
{
	uint64_t t[512], n = va_bits_ok(va_bits) ? top_entries(va_bits) : 0;
	/* bits a table descriptor leaves zero: the ignored 11:2 (LPA2: 7:2, its 9:8 hold OA[51:50]) and 58:52 */
	const uint64_t zero = (lpa2 ? 0xfcULL : 0xffcULL) | 0x07f0000000000000ULL;
	int valid = 0;

	if (!n || n > 512 || (root & (n * 8 - 1)) || physmem_read(pm, root, t, n * 8))
		return false;
	for (uint64_t i = 0; i < n; i++) {
		if (!t[i])
			continue;
		if ((t[i] & 3) != 3 || (t[i] & zero) || !physmem_contains(pm, desc_oa(t[i], lpa2), 4096))
			return false;
		valid++;
	}
	return valid > 0;
}

unsigned arm64_top_table_bytes(unsigned va_bits)
{
	uint64_t n = va_bits_ok(va_bits) ? top_entries(va_bits) * 8 : 4096;

	return n < 64 ? 64 : (unsigned)n;
}
