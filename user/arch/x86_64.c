/*
 * x86-64 page walker: 4- and 5-level paging, 1 GiB / 2 MiB / 4 KiB pages.
 *
 * A pure function of (physical memory, CR3, paging mode, VA). Page tables come from the guest and are
 * hostile input: every entry read is bounds-checked by physmem_read, large-page entries with reserved
 * bits set and PS at PML5/PML4 level are faults, and a walk visits at most `levels` tables per
 * translation, so self-referencing tables cannot loop. x86_walk additionally bounds the work of a range
 * walk (leaf limit, table-read limit, a per-walk memo of empty shared tables, and a cap on tables met
 * again within one walk).
 *
 * CR3: bits 0-11 are PCID (or PWT/PCD) and are dropped. With PTI the kernel PGD is the even page of an
 * 8 KiB pair and the user PGD is kernel|0x1000; like LibVMI we first use the root with bit 12 cleared
 * (the kernel PGD maps everything, user space included) and, if that fails, retry with the exact page
 * from CR3 (a kernel without CONFIG_PAGE_TABLE_ISOLATION may place its PGD on an odd page).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "arch/x86_64.h"
#include "common/log.h"

#define PTE_P     (1ULL << 0)
#define PTE_RW    (1ULL << 1)
#define PTE_US    (1ULL << 2)
#define PTE_PS    (1ULL << 7)
#define PTE_NX    (1ULL << 63)
#define PTE_ADDR  0x000ffffffffff000ULL
#define PTE_ADDR_1G 0x000fffffc0000000ULL
#define PTE_ADDR_2M 0x000fffffffe00000ULL
#define PTE_RSVD_1G 0x000000003fffe000ULL   /* bits 29:13 (bit 12 is PAT) */
#define PTE_RSVD_2M 0x00000000001fe000ULL   /* bits 20:13 */

#define WALK_MAX_TABLE_READS (1u << 18)     /* 1 GiB of table reads per walk */
#define WALK_DEFAULT_MAX_LEAVES (1ULL << 24)
/* A table met again within one walk is shared (KASAN's zero shadow) or crafted — Linux maps every other
 * table once. Re-walk this many (64 KiB), then skip repeats: shared tables cannot multiply the reads,
 * nor a crafted self-referencing table turn into millions of leaves. */
#define WALK_MAX_REVISITS 16u

static inline unsigned level_shift(int lvl) { return 12 + 9 * (unsigned)(lvl - 1); }
static inline unsigned va_bits(int levels) { return 12 + 9 * (unsigned)levels; }

static bool canonical(uint64_t va, int levels)
{
	unsigned s = 64 - va_bits(levels);

	return (uint64_t)((int64_t)(va << s) >> s) == va;
}

/* Check a present entry at level lvl; returns page size if it is a leaf, 0 for a table, -EFAULT if
 * malformed. */
static int64_t entry_kind(uint64_t e, int lvl)
{
	if (lvl == 1)
		return 4096;
	if (!(e & PTE_PS))
		return 0;
	if (lvl >= 4)
		return -EFAULT;                 /* PS is reserved in PML4E/PML5E */
	if (lvl == 3)
		return (e & PTE_RSVD_1G) ? -EFAULT : (int64_t)(1ULL << 30);
	return (e & PTE_RSVD_2M) ? -EFAULT : (int64_t)(1ULL << 21);
}

static uint64_t leaf_pa(uint64_t e, int64_t size)
{
	if (size == (1LL << 30))
		return e & PTE_ADDR_1G;
	if (size == (1LL << 21))
		return e & PTE_ADDR_2M;
	return e & PTE_ADDR;
}

static int translate_root(struct physmem *pm, uint64_t root, int levels, uint64_t va, struct x86_map *map)
{
	uint64_t table = root;
	bool w = true, u = true, nx = false;

	for (int lvl = levels; lvl >= 1; lvl--) {
		uint64_t idx = (va >> level_shift(lvl)) & 511, e;
		int64_t size;
		int err = physmem_read_u64(pm, table + idx * 8, &e);

		if (err)
			return err;
		if (!(e & PTE_P))
			return -EFAULT;
		w = w && (e & PTE_RW);
		u = u && (e & PTE_US);
		nx = nx || (e & PTE_NX);
		size = entry_kind(e, lvl);
		if (size < 0)
			return (int)size;
		if (size > 0) {
			map->page_size = (uint64_t)size;
			map->pa = leaf_pa(e, size) | (va & ((uint64_t)size - 1));
			map->writable = w;
			map->user = u;
			map->nx = nx;
			return 0;
		}
		table = e & PTE_ADDR;
	}
	return -EFAULT;   /* not reached */
}

int x86_translate(struct physmem *pm, uint64_t cr3, bool la57, uint64_t va, struct x86_map *map)
{
	int levels = la57 ? 5 : 4;
	struct x86_map m;
	int err;

	if (!pm || !map)
		return -EINVAL;
	if (!canonical(va, levels))
		return -EFAULT;
	err = translate_root(pm, x86_cr3_root(cr3), levels, va, &m);
	if (err == -EFAULT && (cr3 & X86_CR3_PTI_BIT) && !(cr3 & X86_CR3_EXACT))
		err = translate_root(pm, cr3 & X86_CR3_ADDR_MASK, levels, va, &m);
	if (!err)
		*map = m;
	return err;
}

/* ---- range walk ---- */

struct memo {
	uint64_t *keys;       /* table_pa | level; 0 = empty slot */
	size_t cap, n;
};

static bool memo_has(const struct memo *m, uint64_t key)
{
	if (!m->cap)
		return false;
	for (size_t i = (key * 0x9e3779b97f4a7c15ULL) >> 40 & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
		if (m->keys[i] == key)
			return true;
		if (!m->keys[i])
			return false;
	}
}

static void memo_add(struct memo *m, uint64_t key)
{
	if ((m->n + 1) * 2 > m->cap) {
		size_t ncap = m->cap ? m->cap * 2 : 256;
		uint64_t *nk = calloc(ncap, sizeof(*nk));

		if (!nk)
			return;   /* memo is an optimisation only */
		for (size_t j = 0; j < m->cap; j++) {
			uint64_t k = m->keys[j];

			if (!k)
				continue;
			for (size_t i = (k * 0x9e3779b97f4a7c15ULL) >> 40 & (ncap - 1);; i = (i + 1) & (ncap - 1))
				if (!nk[i]) {
					nk[i] = k;
					break;
				}
		}
		free(m->keys);
		m->keys = nk;
		m->cap = ncap;
	}
	for (size_t i = (key * 0x9e3779b97f4a7c15ULL) >> 40 & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
		if (m->keys[i] == key)
			return;
		if (!m->keys[i]) {
			m->keys[i] = key;
			m->n++;
			return;
		}
	}
}

struct walker {
	struct physmem *pm;
	int levels;
	x86_leaf_cb cb;
	void *arg;
	uint64_t max_leaves, nleaves;
	uint64_t tables_read, bad_entries, unreadable;
	int err;              /* source error other than -EFAULT */
	bool stop;
	struct memo empty;    /* tables fully walked that held no leaf */
	struct memo seen;     /* every table visited (table_pa | level) */
	uint64_t revisits;
};

static uint64_t sign_extend(uint64_t idx, int levels)
{
	unsigned b = va_bits(levels);

	if (idx & (1ULL << (b - 1)))
		idx |= ~((1ULL << b) - 1);
	return idx;
}

/* Walk one table at level lvl covering index-space [base, base + 512 << shift), clipped to [lo, hi). */
static void walk_table(struct walker *w, int lvl, uint64_t table, uint64_t base, uint64_t lo, uint64_t hi,
		       bool wr, bool us, bool nx)
{
	unsigned shift = level_shift(lvl);
	uint64_t span = 512ULL << shift, key = (table & PTE_ADDR) | (uint64_t)lvl;
	bool full = lo <= base && hi >= base + span;
	uint64_t t[512], before = w->nleaves;
	unsigned first, last;
	int err;

	if (full && memo_has(&w->empty, key))
		return;
	if (memo_has(&w->seen, key)) {
		if (w->revisits >= WALK_MAX_REVISITS)
			return;
		w->revisits++;
	} else {
		memo_add(&w->seen, key);
	}
	if (w->tables_read >= WALK_MAX_TABLE_READS) {
		w->stop = true;
		return;
	}
	w->tables_read++;
	err = physmem_read(w->pm, table, t, sizeof(t));
	if (err) {
		w->unreadable++;
		if (err != -EFAULT) {   /* the source itself failed (QEMU gone, I/O error): stop */
			w->err = err;
			w->stop = true;
		}
		return;
	}
	first = lo > base ? (unsigned)((lo - base) >> shift) : 0;
	last = hi - 1 - base >= span ? 511 : (unsigned)((hi - 1 - base) >> shift);
	for (unsigned i = first; i <= last && !w->stop; i++) {
		uint64_t e = t[i], va_idx = base + ((uint64_t)i << shift);
		bool ewr = wr && (e & PTE_RW), eus = us && (e & PTE_US), enx = nx || (e & PTE_NX);
		int64_t size;

		if (!(e & PTE_P))
			continue;
		size = entry_kind(e, lvl);
		if (size < 0) {
			w->bad_entries++;
			continue;
		}
		if (size == 0) {
			walk_table(w, lvl - 1, e & PTE_ADDR, va_idx, lo, hi, ewr, eus, enx);
			continue;
		}
		struct x86_map m = {
			.pa = leaf_pa(e, size), .page_size = (uint64_t)size,
			.writable = ewr, .user = eus, .nx = enx,
		};
		w->nleaves++;
		if (w->cb(sign_extend(va_idx, w->levels), &m, w->arg) || w->nleaves >= w->max_leaves)
			w->stop = true;
	}
	if (full && !w->stop && w->nleaves == before)
		memo_add(&w->empty, key);
}

/* Canonical VAs map onto one contiguous index space [0, 2^b): the lower half as is, the upper half
 * (0xffff8... / 0xff00...) onto [2^(b-1), 2^b). A VA range therefore becomes one index range and the root
 * is read once, in VA order. */
static int walk_root(struct walker *w, uint64_t root, uint64_t va_start, uint64_t va_end)
{
	unsigned b = va_bits(w->levels);
	uint64_t half = 1ULL << (b - 1), upper = ~(half - 1);   /* first upper-half VA */
	uint64_t idx_mask = (1ULL << b) - 1, lo, hi;

	if (!physmem_contains(w->pm, root & PTE_ADDR, 4096))
		return -EFAULT;
	if (va_end && va_end <= va_start)
		return 0;
	lo = va_start < half ? va_start : va_start < upper ? half : (va_start & idx_mask);
	hi = !va_end ? (1ULL << b) : va_end <= half ? va_end : va_end <= upper ? half : (va_end & idx_mask);
	if (hi > lo)
		walk_table(w, w->levels, root, 0, lo, hi, true, true, false);
	return 0;
}

struct walk_stats {
	uint64_t leaves, tables_read, bad_entries, unreadable;
};

static int walk_internal(struct physmem *pm, uint64_t cr3, bool la57, uint64_t va_start, uint64_t va_end,
			 uint64_t max_leaves, x86_leaf_cb cb, void *arg, struct walk_stats *st)
{
	struct walker w = {
		.pm = pm, .levels = la57 ? 5 : 4, .cb = cb, .arg = arg,
		.max_leaves = max_leaves ? max_leaves : WALK_DEFAULT_MAX_LEAVES,
	};
	int err;

	if (!pm || !cb)
		return -EINVAL;
	err = walk_root(&w, x86_cr3_root(cr3), va_start, va_end);
	if ((err || (!w.nleaves && !w.stop)) && (cr3 & X86_CR3_PTI_BIT) && !(cr3 & X86_CR3_EXACT)) {
		free(w.empty.keys);
		free(w.seen.keys);
		memset(&w.empty, 0, sizeof(w.empty));
		memset(&w.seen, 0, sizeof(w.seen));
		w.revisits = 0;
		err = walk_root(&w, cr3 & X86_CR3_ADDR_MASK, va_start, va_end);
	}
	free(w.empty.keys);
	free(w.seen.keys);
	if (!err && w.err)
		err = w.err;
	if (st) {
		st->leaves = w.nleaves;
		st->tables_read = w.tables_read;
		st->bad_entries = w.bad_entries;
		st->unreadable = w.unreadable;
	}
	if (err)
		return err;
	return w.nleaves > INT32_MAX ? INT32_MAX : (int)w.nleaves;
}

int x86_walk(struct physmem *pm, uint64_t cr3, bool la57, uint64_t va_start, uint64_t va_end,
	     uint64_t max_leaves, x86_leaf_cb cb, void *arg)
{
	return walk_internal(pm, cr3, la57, va_start, va_end, max_leaves, cb, arg, NULL);
}

int x86_paging_levels(uint64_t cr0, uint64_t cr4, uint64_t efer)
{
	if (!(cr0 & (1ULL << 31)))     /* CR0.PG */
		return -EINVAL;
	if (!(cr4 & (1ULL << 5)))      /* CR4.PAE */
		return -EINVAL;
	if (!(efer & (1ULL << 10)))    /* EFER.LMA */
		return -EINVAL;
	return (cr4 & (1ULL << 12)) ? 5 : 4;   /* CR4.LA57 */
}

/* ---- direct map ---- */

/* VA - PA deltas of leaves mapping RAM, summed per delta in an open-addressing hash table. Consecutive
 * leaves usually share a delta (a direct map is one long run), so the last delta is checked first. */
struct delta_acc {
	struct physmem *pm;
	uint64_t *keys, *bytes;   /* keys[i] == 0 && bytes[i] == 0: empty (delta 0 is a valid key) */
	bool *used;
	size_t cap, n;
	uint64_t last_delta, last_slot;
	bool have_last, oom;
	uint64_t stop_at;         /* stop the walk once one delta covers this many RAM bytes (0: never) */
};

#define DELTA_MAX_DISTINCT (1u << 12)   /* the direct map comes first in VA order (KASLR keeps the order) */

static size_t delta_slot(const struct delta_acc *a, uint64_t d)
{
	uint64_t h = d;
	size_t i;

	h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9ULL;   /* splitmix64 finalizer: deltas differ in high bits */
	h = (h ^ (h >> 27)) * 0x94d049bb133111ebULL;
	h ^= h >> 31;
	i = (size_t)h & (a->cap - 1);
	while (a->used[i] && a->keys[i] != d)
		i = (i + 1) & (a->cap - 1);
	return i;
}

static bool delta_grow(struct delta_acc *a)
{
	size_t ncap = a->cap ? a->cap * 2 : 1024;
	struct delta_acc b = { .cap = ncap };

	b.keys = calloc(ncap, sizeof(*b.keys));
	b.bytes = calloc(ncap, sizeof(*b.bytes));
	b.used = calloc(ncap, sizeof(*b.used));
	if (!b.keys || !b.bytes || !b.used) {
		free(b.keys);
		free(b.bytes);
		free(b.used);
		return false;
	}
	for (size_t i = 0; i < a->cap; i++) {
		if (!a->used[i])
			continue;
		size_t j = delta_slot(&b, a->keys[i]);

		b.used[j] = true;
		b.keys[j] = a->keys[i];
		b.bytes[j] = a->bytes[i];
	}
	free(a->keys);
	free(a->bytes);
	free(a->used);
	a->keys = b.keys;
	a->bytes = b.bytes;
	a->used = b.used;
	a->cap = ncap;
	a->have_last = false;
	return true;
}

static int delta_cb(uint64_t va, const struct x86_map *m, void *arg)
{
	struct delta_acc *a = arg;
	uint64_t bytes = physmem_overlap(a->pm, m->pa, m->page_size), delta = va - m->pa;
	size_t i;

	if (!bytes)
		return 0;
	if (a->have_last && a->last_delta == delta) {
		a->bytes[a->last_slot] += bytes;
		/* the direct map comes first in the kernel half: once it covers most of RAM, the rest of
		 * the half (vmalloc, vmemmap, the image: megabytes of tables) cannot beat it */
		return a->stop_at && a->bytes[a->last_slot] >= a->stop_at;
	}
	if ((a->n + 1) * 2 > a->cap) {
		if (a->n >= DELTA_MAX_DISTINCT)
			return 1;   /* nothing coherent in here; stop the walk */
		if (!delta_grow(a)) {
			a->oom = true;
			return 1;
		}
	}
	i = delta_slot(a, delta);
	if (!a->used[i]) {
		a->used[i] = true;
		a->keys[i] = delta;
		a->n++;
	}
	a->bytes[i] += bytes;
	a->last_delta = delta;
	a->last_slot = i;
	a->have_last = true;
	return 0;
}

/* Best constant VA-PA over the kernel half: the delta in *best and the RAM bytes it covers in *covered. */
static int best_delta(struct physmem *pm, uint64_t cr3, bool la57, uint64_t max_leaves, uint64_t *best,
		      uint64_t *covered)
{
	struct delta_acc a = { .pm = pm, .stop_at = physmem_total(pm) / 10 * 9 };
	uint64_t top = 0, top_delta = 0;
	int err;

	err = walk_internal(pm, cr3, la57, 1ULL << 63, 0, max_leaves, delta_cb, &a, NULL);
	if (err > 0)
		err = 0;   /* leaf count */
	if (!err && a.oom)
		err = -ENOMEM;
	for (size_t i = 0; !err && i < a.cap; i++) {
		if (a.used[i] && (a.bytes[i] > top || (a.bytes[i] == top && a.keys[i] < top_delta))) {
			top = a.bytes[i];
			top_delta = a.keys[i];
		}
	}
	free(a.keys);
	free(a.bytes);
	free(a.used);
	if (err < 0)
		return err;
	*best = top_delta;
	*covered = top;
	return 0;
}

bool x86_detect_la57(struct physmem *pm, uint64_t cr3)
{
	uint64_t d4 = 0, d5 = 0, c4 = 0, c5 = 0;

	if (best_delta(pm, cr3, false, 1ULL << 17, &d4, &c4) < 0)
		c4 = 0;
	/* a 4-level reading that maps most of RAM at one delta settles it (the walk stopped there, so a
	 * 5-level reading that aliases the same tables could only count more of the same) */
	if (c4 >= physmem_total(pm) / 10 * 9)
		return false;
	if (best_delta(pm, cr3, true, 1ULL << 17, &d5, &c5) < 0)
		c5 = 0;
	p_dbg("la57 probe: 4-level best map covers %llu bytes, 5-level %llu",
	      (unsigned long long)c4, (unsigned long long)c5);
	return c5 > c4;
}

int x86_find_direct_map(struct physmem *pm, uint64_t cr3, bool la57, uint64_t *page_offset_base)
{
	uint64_t delta = 0, covered = 0;
	int err;

	if (!pm || !page_offset_base)
		return -EINVAL;
	err = best_delta(pm, cr3, la57, 1ULL << 21, &delta, &covered);
	if (err < 0)
		return err;
	/* The direct map is in the kernel half and covers a real share of RAM (at least a quarter). */
	if (!covered || !(delta >> 63) || covered * 4 < physmem_total(pm))
		return -ENOENT;
	p_dbg("direct map at %#llx covers %llu of %llu RAM bytes", (unsigned long long)delta,
	      (unsigned long long)covered, (unsigned long long)physmem_total(pm));
	*page_offset_base = delta;
	return 0;
}
