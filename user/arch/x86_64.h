/*
 * x86-64 address translation (layer 2): a pure function of (physical memory, CR3, paging mode, VA),
 * plus a small cached virtual-memory view on top of it.
 */
#ifndef VMOT_X86_64_H
#define VMOT_X86_64_H
#include <stdbool.h>
#include <stdint.h>
#include "mem/physmem.h"

#define X86_CR3_ADDR_MASK 0x000ffffffffff000ULL   /* drops PCID (bits 0-11) */
#define X86_CR3_PTI_BIT   0x1000ULL               /* PTI: user PGD = kernel PGD | 4 KiB */
/* Bit 63 is never set in a CR3 that is read (in a MOV to CR3 it only means "no flush"; observations
 * drop it). Set on a value passed here, it says "this page is the root itself": no PTI guess, the
 * caller already knows (a non-PTI kernel's PGD may well sit at an odd 4 KiB page). */
#define X86_CR3_EXACT     (1ULL << 63)

/* Page-table root of a CR3 value: PCID bits dropped, and (pti_kernel) the PTI user/kernel bit cleared. */
static inline uint64_t x86_cr3_root(uint64_t cr3)
{
	return cr3 & X86_CR3_EXACT ? cr3 & X86_CR3_ADDR_MASK : cr3 & X86_CR3_ADDR_MASK & ~X86_CR3_PTI_BIT;
}

/* A pointer a kernel structure may hold: canonical kernel half (the top 8 bits set with 5-level paging,
 * the top 17 with 4-level), 8-byte aligned, not -8 (a poisoned or ERR_PTR-like value). */
static inline bool x86_kernel_ptr(uint64_t va, bool la57)
{
	uint64_t top = la57 ? 0xff00000000000000ULL : 0xffff800000000000ULL;

	return (va & top) == top && !(va & 7) && va != ~0ULL - 7;
}

/* Of GS_BASE and KERNEL_GS_BASE, the kernel's per-CPU base: the one in use when the vCPU was in the kernel
 * (RIP in the upper half), else the swapped-out one; 0 if neither is a kernel pointer. */
static inline uint64_t x86_kernel_gs(uint64_t rip, uint64_t gs_base, uint64_t kernel_gs_base)
{
	uint64_t first = rip >> 63 ? gs_base : kernel_gs_base, second = rip >> 63 ? kernel_gs_base : gs_base;

	if (x86_kernel_ptr(first, true))
		return first;
	return x86_kernel_ptr(second, true) ? second : 0;
}

/* Mapping attributes of a translated address. */
struct x86_map {
	uint64_t pa;        /* physical address of the VA */
	uint64_t page_size; /* 4 KiB, 2 MiB or 1 GiB */
	bool writable, user, nx;
};

/* Translate va; 0, -EFAULT (not present / non-canonical / reserved bits / table outside RAM), or -errno
 * from the source. map->pa may lie outside RAM (MMIO): reading it is the caller's business.
 * writable/user are the AND over all levels, nx the OR. PTI: tries x86_cr3_root(cr3) first, then
 * (if bit 12 was set) the exact CR3 page, as LibVMI does. */
int x86_translate(struct physmem *pm, uint64_t cr3, bool la57, uint64_t va, struct x86_map *map);

/* Walk every present leaf mapping in [va_start, va_end) in VA order; the callback returns non-zero to
 * stop. Bounded: each table is read once per walk and at most max_leaves leaves are reported.
 * va_end == 0 means "to the end of the address space"; non-canonical parts of the range are skipped.
 * Leaves are reported with the VA of their page start (a large page may start before va_start) and
 * map->pa = the page's physical base. max_leaves == 0 means a default cap of 16M leaves; a walk also
 * stops after 2^18 table reads. Unreadable or malformed entries are skipped.
 * Returns the number of leaves reported (≥ 0), -EFAULT if the root table is not in RAM, or the source's
 * error (e.g. -ESRCH: QEMU exited) if a table read failed for another reason than -EFAULT.
 * CR3 is used like x86_translate: x86_cr3_root() first, the exact CR3 page if that yields nothing. */
typedef int (*x86_leaf_cb)(uint64_t va, const struct x86_map *map, void *arg);
int x86_walk(struct physmem *pm, uint64_t cr3, bool la57, uint64_t va_start, uint64_t va_end,
	     uint64_t max_leaves, x86_leaf_cb cb, void *arg);

/* Paging mode from control registers (LibVMI's get_page_mode): 4 or 5 levels, or -EINVAL if not IA-32e
 * (needs CR0.PG, CR4.PAE and EFER.LMA; LA57 from CR4 bit 12). */
int x86_paging_levels(uint64_t cr0, uint64_t cr4, uint64_t efer);

/* Guess LA57 when CR4 is not known: true if the root only makes sense as a 5-level table. */
bool x86_detect_la57(struct physmem *pm, uint64_t cr3);

/* The kernel's direct map of physical memory (page_offset_base), found from the page tables alone:
 * the kernel-half region whose VA - PA is constant over the most RAM. 0 or -ENOENT. */
int x86_find_direct_map(struct physmem *pm, uint64_t cr3, bool la57, uint64_t *page_offset_base);

/* Cached virtual view: a small direct-mapped TLB over x86_translate. */
struct vmem {
	struct physmem *pm;
	uint64_t cr3;
	bool la57;
	int levels32;               /* 0: IA-32e (4/5 levels, la57); 2 or 3: 32-bit paging without/with PAE */
	/* AArch64 (user/arch/arm64.h): cr3 holds TTBR1 (the kernel root), ttbr0 a process's root or 0 */
	bool arm64, lpa2;
	uint8_t va_bits0, va_bits1;
	uint64_t ttbr0;
	uint64_t page_offset_base;  /* 0 if unknown; lets vmem_read skip walks for direct-map VAs */
	uint64_t direct_map_size;
	uint64_t tlb_hits, tlb_misses;
	struct vmem_tlb_entry { uint64_t vpage, ppage; uint64_t size; bool valid; } tlb[256];
};

void vmem_init(struct vmem *vm, struct physmem *pm, uint64_t cr3, bool la57);
/* The same view over a 32-bit guest's page tables (user/arch/x86_32.h): levels 2 (no PAE) or 3 (PAE). */
void vmem_init_32(struct vmem *vm, struct physmem *pm, uint64_t cr3, int levels);
/* The same view over an AArch64 guest's tables: ttbr1 the kernel's root, ttbr0 a process's (0 with va_bits0 0:
 * kernel addresses only); va_bits and lpa2 as TCR_EL1 says (arm64_mmu_from_tcr). */
void vmem_init_arm64(struct vmem *vm, struct physmem *pm, uint64_t ttbr0, uint64_t ttbr1, unsigned va_bits0,
		     unsigned va_bits1, bool lpa2);
void vmem_flush(struct vmem *vm);
int vmem_translate(struct vmem *vm, uint64_t va, uint64_t *pa);
int vmem_read(struct vmem *vm, uint64_t va, void *buf, size_t len);   /* may cross pages */
int vmem_read_u64(struct vmem *vm, uint64_t va, uint64_t *val);
int vmem_read_u32(struct vmem *vm, uint64_t va, uint32_t *val);
/* Enable the direct-map shortcut: VAs in [page_offset_base, +size) translate as va - page_offset_base
 * without a walk (size 0 = up to the end of guest RAM). Flushes the TLB. */
void vmem_set_direct_map(struct vmem *vm, uint64_t page_offset_base, uint64_t size);
/* Like vmem_translate, also reporting the page size (4 KiB for direct-map shortcuts). */
int vmem_translate_page(struct vmem *vm, uint64_t va, uint64_t *pa, uint64_t *page_size);

#endif
