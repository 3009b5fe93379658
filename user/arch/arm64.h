/*
 * AArch64 stage-1 address translation (layer 2, arm64 guests): the 4 KiB granule Linux uses, with 39-, 48- or
 * 52-bit virtual addresses (3, 4 or 5 levels; 52 bits with FEAT_LPA2's 52-bit output addresses), 1 GiB and
 * 2 MiB blocks, and the TTBR0 (user, the low VAs) / TTBR1 (kernel, the high VAs) split. A pure function of
 * (physical memory, the translation registers, VA), like the x86 walkers.
 */
#ifndef VMOT_ARM64_H
#define VMOT_ARM64_H
#include <stdbool.h>
#include <stdint.h>
#include "arch/x86_64.h"   /* struct x86_map, x86_leaf_cb: the mapping a leaf describes is the same */

/* What a vCPU's TTBR0_EL1, TTBR1_EL1 and TCR_EL1 say, as the walker needs it. */
struct arm64_mmu {
	uint64_t ttbr0, ttbr1;    /* raw register values: ASID in bits 63:48 and CnP in bit 0 are dropped */
	unsigned va_bits0;        /* 64 - TCR_EL1.T0SZ: 39, 48 or 52 (0: TTBR0 not used) */
	unsigned va_bits1;        /* 64 - TCR_EL1.T1SZ (0: TTBR1 not used) */
	bool lpa2;                /* TCR_EL1.DS: 52-bit output addresses, OA[51:50] in descriptor bits 9:8 */
};

/* Table root named by a TTBR value for a walk of va_bits: BADDR with the ASID and CnP dropped, aligned to
 * the top-level table's size (smaller than a page when va_bits leaves the top level fewer entries). */
uint64_t arm64_ttbr_root(uint64_t ttbr, unsigned va_bits, bool lpa2);

/* Translate va: TTBR1 when its bits above va_bits1 are all ones, TTBR0 when those above va_bits0 are all
 * zeros, else -EFAULT. 0, -EFAULT (invalid descriptor, reserved encoding, table outside RAM) or -errno from the
 * source. map->page_size is 4 KiB, 2 MiB or 1 GiB; user = EL0 may access (AP[1]), writable = not read-only
 * (AP[2]), nx = privileged execute-never (PXN); table descriptors' APTable/PXNTable bits apply below them. */
int arm64_translate(struct physmem *pm, const struct arm64_mmu *mmu, uint64_t va, struct x86_map *map);

/* Walk every valid leaf in [va_start, va_end) (va_end 0: to the top of the address space) in VA order, the
 * TTBR0 half then the TTBR1 half; the callback returns non-zero to stop. Bounded like x86_walk: at most 2^18
 * table reads, a table met again is walked at most 16 more times per walk, max_leaves (0 = 2^24) leaves.
 * Returns the number of leaves, -EFAULT if no root is in RAM, or the source's error. */
int arm64_walk(struct physmem *pm, const struct arm64_mmu *mmu, uint64_t va_start, uint64_t va_end,
	       uint64_t max_leaves, x86_leaf_cb cb, void *arg);

/* A kernel pointer: in the TTBR1 half of a va_bits1 address space (all bits above va_bits1 set), 8-byte
 * aligned, not -8. */
static inline bool arm64_kernel_ptr(uint64_t va, unsigned va_bits1)
{
	return va_bits1 >= 25 && va_bits1 <= 52 && va >> va_bits1 == ~0ULL >> va_bits1 && !(va & 7) && va != ~0ULL - 7;
}

/* The linear map, found not assumed: of the TTBR1 half's leaves, the constant VA - PA that maps the most RAM
 * (KASLR moves it: VA = PA - memstart_addr + PAGE_OFFSET). *base is the VA PA 0 would have (base + pa for
 * any RAM address), *covered the RAM bytes it maps. 0; -ENOENT if no offset maps a quarter of RAM;
 * -errno from the walk. */
int arm64_find_linear_map(struct physmem *pm, const struct arm64_mmu *mmu, uint64_t *base, uint64_t *covered);

/* The kernel's TTBR1 root found in memory alone (an ELF core or a raw image holds no TTBR1_EL1): among the
 * page-aligned pages of RAM (at most max_scan bytes read), those that read as a top-level table Linux writes
 * (arm64_user_root_plausible, at least two entries) for 48-bit VAs or for 52-bit VAs with LPA2 — the two 4 KiB
 * configurations Debian ships — whose TTBR1 half maps a linear map of RAM (arm64_find_linear_map), and the
 * table itself outside it (swapper_pg_dir is in the kernel image), with no block above 1 GiB; of those, the
 * one with the most mappings (an early boot table left in RAM maps less than the kernel's own). *out gets the root (ttbr1 = ttbr0 = its address) and VA sizes, *tcr a
 * TCR_EL1 that says the same (4 KiB granules, T0SZ = T1SZ, DS for LPA2). 0, -ENOENT (none), -errno. */
int arm64_find_kernel_root(struct physmem *pm, uint64_t max_scan, struct arm64_mmu *out, uint64_t *tcr);

/* A top-level table with no valid entry (Linux's reserved_pg_dir, TTBR0 of a CPU with no user mm loaded).
 * False when unreadable. */
bool arm64_table_empty(struct physmem *pm, uint64_t ttbr, unsigned va_bits);

/* A top-level table as Linux writes one for a process (TTBR0): some entries valid, every valid one a table
 * descriptor naming a page of RAM (only the table attribute bits 63:59 besides), the others zero. */
bool arm64_user_root_plausible(struct physmem *pm, uint64_t root, unsigned va_bits, bool lpa2);

/* Bytes of a va_bits walk's top-level table (at least 64): 4096, or less where the top level is partial (52-bit
 * VAs: 16 entries; Linux then allocates pgds from a slab cache, aligned to their size only). */
unsigned arm64_top_table_bytes(unsigned va_bits);

/* TCR_EL1's T0SZ/T1SZ/DS into mmu->va_bits0/va_bits1/lpa2 (EPD0/EPD1 set: that half not used). */
void arm64_mmu_from_tcr(struct arm64_mmu *mmu, uint64_t tcr);

#endif
