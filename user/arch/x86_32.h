/*
 * 32-bit x86 address translation (layer 2, i386 guests): 2-level paging (4 KiB and 4 MiB pages, PSE-36) and
 * PAE 3-level paging (4 KiB and 2 MiB pages, NX), as pure functions of (physical memory, CR3, mode, VA),
 * plus the kernel's lowmem linear map found from the page tables (PAGE_OFFSET is a build option: 3G/1G is
 * the default, not the rule).
 */
#ifndef VMOT_X86_32_H
#define VMOT_X86_32_H
#include <stdbool.h>
#include <stdint.h>
#include "arch/x86_64.h"   /* struct x86_map, x86_leaf_cb */

/* Page-table root of a CR3 value: the page directory (bits 31:12) without PAE, the 32-byte aligned
 * page-directory-pointer table (bits 31:5) with PAE. */
static inline uint64_t x86_32_cr3_root(uint64_t cr3, bool pae)
{
	return pae ? cr3 & 0xffffffe0ULL : cr3 & 0xfffff000ULL;
}

/* Translate a 32-bit va; 0, -EFAULT (not present / reserved bits / table outside RAM / va above 4 GiB) or
 * -errno from the source. map->page_size is 4 KiB, 4 MiB (2-level) or 2 MiB (PAE); writable/user are the AND
 * over the levels, nx the OR (PAE only). A 4 MiB page's PA takes bits 39:32 from PDE bits 20:13 (PSE-36). */
/* A pointer a 32-bit kernel structure may hold: at or above PAGE_OFFSET (lowmem, vmalloc, fixmap), 4-byte
 * aligned, not -4. */
static inline bool x86_32_kernel_ptr(uint64_t va, uint64_t page_offset)
{
	return va >= page_offset && va < 0xfffffffcULL && !(va & 3);
}

int x86_32_translate(struct physmem *pm, uint64_t cr3, bool pae, uint64_t va, struct x86_map *map);

/* Walk every present leaf in [va_start, va_end) (va_end 0 = to 4 GiB) in VA order; the callback returns
 * non-zero to stop. Bounded by the paging structure itself (at most 1 + 1024 tables without PAE, 1 + 4 +
 * 2048 with PAE, each read once per walk; self-references cannot recurse: the depth is fixed) and by
 * max_leaves (0 = 2^21, every 4 KiB page of 4 GiB and more). Unreadable or malformed entries are skipped.
 * Returns the number of leaves reported, -EFAULT if the root is not in RAM, or the source's error. */
int x86_32_walk(struct physmem *pm, uint64_t cr3, bool pae, uint64_t va_start, uint64_t va_end,
		uint64_t max_leaves, x86_leaf_cb cb, void *arg);

/* Paging mode from control registers: 2 (2-level) or 3 (PAE), -EINVAL without CR0.PG or in long mode
 * (EFER.LMA: use x86_paging_levels). */
int x86_32_paging_levels(uint64_t cr0, uint64_t cr4, uint64_t efer);

/* Guess PAE when CR4 is not known (an ELF core or raw image without registers): a CR3 that is not page
 * aligned can only be PAE; otherwise the reading whose lowmem map covers more RAM wins. */
bool x86_32_detect_pae(struct physmem *pm, uint64_t cr3);

/* The kernel's lowmem linear map, found from the page tables alone: the longest run of supervisor leaves
 * above 1 GiB with one VA - PA that starts at PA 0 (lowmem begins with physical page 0 at PAGE_OFFSET).
 * *page_offset = PAGE_OFFSET, *size = bytes of RAM the run maps. 0, -ENOENT (no such run covering at least a
 * quarter of RAM or 64 MiB), or the walk's error. */
int x86_32_find_lowmem(struct physmem *pm, uint64_t cr3, bool pae, uint64_t *page_offset, uint64_t *size);

#endif
