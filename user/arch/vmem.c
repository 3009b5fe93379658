/*
 * Cached virtual view over x86_translate (x86_32_translate for a 32-bit guest, arm64_translate for an AArch64
 * one): a 256-entry direct-mapped TLB
 * keyed by 4 KiB page number
 * (an entry remembers the real page size, so one entry serves a whole 4 KiB slot of a large page),
 * plus a direct-map shortcut once page_offset_base is known. The TLB belongs to one (cr3, mode):
 * vmem_init/vmem_flush reset it. Counters tlb_hits/tlb_misses are for benchmarks.
 */
#include <errno.h>
#include <string.h>
#include "arch/arm64.h"
#include "arch/x86_32.h"
#include "arch/x86_64.h"

#define TLB_SLOTS (sizeof(((struct vmem *)0)->tlb) / sizeof(((struct vmem *)0)->tlb[0]))

void vmem_init(struct vmem *vm, struct physmem *pm, uint64_t cr3, bool la57)
{
	memset(vm, 0, sizeof(*vm));
	vm->pm = pm;
	vm->cr3 = cr3;
	vm->la57 = la57;
}

void vmem_init_32(struct vmem *vm, struct physmem *pm, uint64_t cr3, int levels)
{
	vmem_init(vm, pm, cr3, false);
	vm->levels32 = levels == 3 ? 3 : 2;
}

void vmem_init_arm64(struct vmem *vm, struct physmem *pm, uint64_t ttbr0, uint64_t ttbr1, unsigned va_bits0,
		     unsigned va_bits1, bool lpa2)
{
	vmem_init(vm, pm, ttbr1, false);
	vm->arm64 = true;
	vm->ttbr0 = ttbr0;
	vm->va_bits0 = (uint8_t)va_bits0;
	vm->va_bits1 = (uint8_t)va_bits1;
	vm->lpa2 = lpa2;
}

static int vmem_walk(struct vmem *vm, uint64_t va, struct x86_map *m)
{
	if (vm->arm64) {
		struct arm64_mmu mmu = { .ttbr0 = vm->ttbr0, .ttbr1 = vm->cr3, .va_bits0 = vm->va_bits0,
					 .va_bits1 = vm->va_bits1, .lpa2 = vm->lpa2 };

		return arm64_translate(vm->pm, &mmu, va, m);
	}
	if (vm->levels32)
		return x86_32_translate(vm->pm, vm->cr3, vm->levels32 == 3, va, m);
	return x86_translate(vm->pm, vm->cr3, vm->la57, va, m);
}

void vmem_flush(struct vmem *vm)
{
	for (size_t i = 0; i < TLB_SLOTS; i++)
		vm->tlb[i].valid = false;
}

void vmem_set_direct_map(struct vmem *vm, uint64_t page_offset_base, uint64_t size)
{
	vm->page_offset_base = page_offset_base;
	vm->direct_map_size = size;
	vmem_flush(vm);
}

int vmem_translate_page(struct vmem *vm, uint64_t va, uint64_t *pa, uint64_t *page_size)
{
	struct vmem_tlb_entry *e = &vm->tlb[(va >> 12) % TLB_SLOTS];
	struct x86_map m;
	int err;

	if (vm->page_offset_base && va >= vm->page_offset_base) {
		uint64_t size = vm->direct_map_size ? vm->direct_map_size : physmem_end(vm->pm);

		if (va - vm->page_offset_base < size) {
			*pa = va - vm->page_offset_base;
			*page_size = 4096;
			return 0;
		}
	}
	if (e->valid && (va & ~(e->size - 1)) == e->vpage) {
		vm->tlb_hits++;
		*pa = e->ppage | (va & (e->size - 1));
		*page_size = e->size;
		return 0;
	}
	vm->tlb_misses++;
	err = vmem_walk(vm, va, &m);
	if (err)
		return err;
	e->size = m.page_size;
	e->vpage = va & ~(m.page_size - 1);
	e->ppage = m.pa & ~(m.page_size - 1);
	e->valid = true;
	*pa = m.pa;
	*page_size = m.page_size;
	return 0;
}

int vmem_translate(struct vmem *vm, uint64_t va, uint64_t *pa)
{
	uint64_t size;

	return vmem_translate_page(vm, va, pa, &size);
}

int vmem_read(struct vmem *vm, uint64_t va, void *buf, size_t len)
{
	unsigned char *out = buf;

	while (len) {
		uint64_t pa, size, chunk;
		int err = vmem_translate_page(vm, va, &pa, &size);

		if (err)
			return err;
		chunk = size - (va & (size - 1));
		if (chunk > len)
			chunk = len;
		err = physmem_read(vm->pm, pa, out, (size_t)chunk);
		if (err)
			return err;
		out += chunk;
		len -= chunk;
		if (va + chunk < va && len)
			return -EFAULT;   /* wrapped the address space */
		va += chunk;
	}
	return 0;
}

int vmem_read_u64(struct vmem *vm, uint64_t va, uint64_t *val)
{
	uint64_t v;
	int err = vmem_read(vm, va, &v, sizeof(v));

	if (!err)
		*val = v;
	return err;
}

int vmem_read_u32(struct vmem *vm, uint64_t va, uint32_t *val)
{
	uint32_t v;
	int err = vmem_read(vm, va, &v, sizeof(v));

	if (!err)
		*val = v;
	return err;
}
