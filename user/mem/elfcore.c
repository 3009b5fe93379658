/*
 * ELF core source: guest memory dumps written by QEMU's `dump-guest-memory` (QMP/HMP) and by
 * `virsh dump --memory-only` (which asks QEMU for the same thing).
 *
 * Layout (QEMU dump/dump.c, target/i386/arch_dump.c; target/arm/arch_dump.c for EM_AARCH64, ELF64 only, whose
 * NT_PRSTATUS holds x0..x30, sp, pc and pstate and which has no "QEMU" CPU note):
 *   - ELF64, ET_CORE, EM_X86_64 (QEMU picks EM_X86_64 when the first vCPU is in long mode); for a 32-bit
 *     guest EM_386, ELF32 unless RAM reaches above 4 GiB (then ELF64). Both classes are read into the
 *     ELF64 structures below.
 *   - PT_LOAD: p_paddr = guest-physical address, p_offset/p_filesz = the bytes. With `-p` (paging)
 *     p_vaddr is a guest VA and several segments may describe the same physical pages.
 *   - PT_NOTE: one NT_PRSTATUS "CORE" note per vCPU (general registers, pid = cpu index + 1; the i386
 *     elf_prstatus for EM_386), then one "QEMU" note per vCPU (struct QEMUCPUState, the same for both
 *     machines: control registers, segment bases, kernel_gs_base),
 *     possibly a "VMCOREINFO" note.
 *   - e_phnum == PN_XNUM: the real count is in section header 0's sh_info.
 * kdump-compressed dumps (-z/-l/-s) are a different format and are rejected with a clear message.
 *
 * Hostile input: every header, note and segment is checked against the file size with overflow-safe
 * arithmetic before use. Overlapping PT_LOADs are resolved first-come (lowest p_paddr, then file order)
 * and trimmed so the resulting RAM ranges never overlap.
 */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include "common/log.h"
#include "mem/physmem.h"

#define MAX_PHDRS  (1u << 22)
#define MAX_VCPUS  4096u

/* target/i386/arch_dump.c */
struct qemu_cpu_segment {
	uint32_t selector, limit, flags, pad;
	uint64_t base;
};

struct qemu_cpu_state {
	uint32_t version, size;
	uint64_t rax, rbx, rcx, rdx, rsi, rdi, rsp, rbp;
	uint64_t r8, r9, r10, r11, r12, r13, r14, r15;
	uint64_t rip, rflags;
	struct qemu_cpu_segment cs, ds, es, fs, gs, ss;
	struct qemu_cpu_segment ldt, tr, gdt, idt;
	uint64_t cr[5];
	uint64_t kernel_gs_base;   /* added in QEMU 3.0; absent when size is smaller */
};
_Static_assert(sizeof(struct qemu_cpu_state) == 440, "QEMUCPUState layout");
#define QEMU_CPU_STATE_V1_SIZE offsetof(struct qemu_cpu_state, kernel_gs_base)

struct x86_64_user_regs {
	uint64_t r15, r14, r13, r12, rbp, rbx, r11, r10;
	uint64_t r9, r8, rax, rcx, rdx, rsi, rdi, orig_rax;
	uint64_t rip, cs, eflags;
	uint64_t rsp, ss;
	uint64_t fs_base, gs_base;
	uint64_t ds, es, fs, gs;
};

struct x86_64_elf_prstatus {
	char pad1[32];
	uint32_t pid;
	char pad2[76];
	struct x86_64_user_regs regs;
	char pad3[8];
};
_Static_assert(sizeof(struct x86_64_elf_prstatus) == 336, "x86_64 prstatus layout");

/* EM_386: the i386 elf_prstatus (17 32-bit user registers) */
struct i386_elf_prstatus {
	char pad1[24];
	uint32_t pid;
	char pad2[44];
	uint32_t ebx, ecx, edx, esi, edi, ebp, eax, ds, es, fs, gs, orig_eax, eip, cs, eflags, esp, ss;
	char pad3[4];
};
_Static_assert(sizeof(struct i386_elf_prstatus) == 144, "i386 prstatus layout");

/* EM_AARCH64: the generic 64-bit elf_prstatus around struct user_pt_regs (x0..x30, sp, pc, pstate); QEMU
 * (target/arm/arch_dump.c) writes no system registers, so TTBR0/TTBR1/TCR stay unknown (target.c finds the
 * kernel's root in memory) */
struct aarch64_elf_prstatus {
	char pad1[32];
	uint32_t pid;
	char pad2[76];
	uint64_t x[31], sp, pc, pstate;
	uint32_t fpvalid;
	char pad3[4];
};
_Static_assert(sizeof(struct aarch64_elf_prstatus) == 392, "aarch64 prstatus layout");

struct elf_piece {
	uint64_t paddr, len, offset;
	uint32_t order;   /* file order, for stable overlap resolution */
};

struct elfcore_priv {
	int fd;
	const unsigned char *map;
	uint64_t size;
	uint64_t *offsets;   /* file offset of pm->ranges[i].start */
};

static int elfcore_read(struct physmem *pm, uint64_t gpa, void *buf, size_t len)
{
	struct elfcore_priv *c = pm->priv;
	long i = physmem_find_range(pm, gpa);
	uint64_t off;

	if (i < 0)
		return -EFAULT;
	off = c->offsets[i] + (gpa - pm->ranges[i].start);
	if (off > c->size || len > c->size - off)
		return -EIO;
	memcpy(buf, c->map + off, len);
	return 0;
}

static void elfcore_close(struct physmem *pm)
{
	struct elfcore_priv *c = pm->priv;

	if (!c)
		return;
	if (c->map)
		munmap((void *)c->map, c->size);
	if (c->fd >= 0)
		close(c->fd);
	free(c->offsets);
	free(c);
}

static const struct physmem_ops elfcore_ops = {
	.kind = "elfcore",
	.read = elfcore_read,
	.close = elfcore_close,
};

static bool in_file(uint64_t size, uint64_t off, uint64_t len)
{
	return off <= size && len <= size - off;
}

static int piece_cmp(const void *a, const void *b)
{
	const struct elf_piece *x = a, *y = b;

	if (x->paddr != y->paddr)
		return x->paddr < y->paddr ? -1 : 1;
	return x->order < y->order ? -1 : x->order > y->order;
}

struct note_state {
	bool i386;            /* EM_386: the i386 NT_PRSTATUS */
	bool aarch64;         /* EM_AARCH64: the aarch64 one, and no QEMU CPU note */
	struct vcpu_state *v;
	size_t n_prstatus, n_qemu, cap;
};

static struct vcpu_state *vcpu_slot(struct note_state *ns, size_t idx)
{
	if (idx >= MAX_VCPUS)
		return NULL;
	if (idx >= ns->cap) {
		size_t ncap = ns->cap ? ns->cap * 2 : 8;
		struct vcpu_state *nv;

		while (ncap <= idx)
			ncap *= 2;
		nv = realloc(ns->v, ncap * sizeof(*nv));
		if (!nv)
			return NULL;
		memset(nv + ns->cap, 0, (ncap - ns->cap) * sizeof(*nv));
		ns->v = nv;
		ns->cap = ncap;
	}
	return &ns->v[idx];
}

static int parse_notes(const char *path, const unsigned char *p, uint64_t len, struct note_state *ns)
{
	uint64_t pos = 0;

	while (pos < len) {
		uint32_t namesz, descsz, type;
		uint64_t name_off, desc_off, next;
		const char *name;

		if (len - pos < 12) {
			/* trailing padding is tolerated, anything else is corruption */
			for (; pos < len; pos++)
				if (p[pos])
					goto corrupt;
			break;
		}
		memcpy(&namesz, p + pos, 4);
		memcpy(&descsz, p + pos + 4, 4);
		memcpy(&type, p + pos + 8, 4);
		name_off = pos + 12;
		desc_off = name_off + (((uint64_t)namesz + 3) & ~3ULL);
		next = desc_off + (((uint64_t)descsz + 3) & ~3ULL);
		if (desc_off > len || next > len || desc_off + descsz > len)
			goto corrupt;
		name = (const char *)p + name_off;
		if (namesz == 5 && !memcmp(name, "CORE", 5) && type == NT_PRSTATUS) {
			size_t want = ns->i386 ? sizeof(struct i386_elf_prstatus) : ns->aarch64 ?
				      sizeof(struct aarch64_elf_prstatus) : sizeof(struct x86_64_elf_prstatus);
			struct vcpu_state *v;

			if (descsz < want) {
				p_err("%s: NT_PRSTATUS note of %u bytes, expected %zu (not an %s QEMU dump?)", path, descsz,
				      want, ns->i386 ? "i386" : ns->aarch64 ? "aarch64" : "x86-64");
				return -EINVAL;
			}
			v = vcpu_slot(ns, ns->n_prstatus);
			if (!v)
				goto too_many;
			v->id = (uint32_t)ns->n_prstatus;
			if (ns->aarch64) {   /* the only note of an arm64 vCPU: the exception level from PSTATE.M[3:2] */
				struct aarch64_elf_prstatus st;

				memcpy(&st, p + desc_off, sizeof(st));
				v->valid = v->aarch64 = true;
				v->pc = st.pc;
				v->rsp = st.sp;
				v->el1 = (st.pstate >> 2 & 3) == 1;
			} else if (ns->i386) {
				struct i386_elf_prstatus st;

				memcpy(&st, p + desc_off, sizeof(st));
				v->rip = st.eip;
				v->rsp = st.esp;
			} else {
				struct x86_64_elf_prstatus st;

				memcpy(&st, p + desc_off, sizeof(st));
				v->rip = st.regs.rip;
				v->rsp = st.regs.rsp;
				v->fs_base = st.regs.fs_base;
				if (!v->gs_base)
					v->gs_base = st.regs.gs_base;
			}
			ns->n_prstatus++;
		} else if (namesz == 5 && !memcmp(name, "QEMU", 5)) {
			struct qemu_cpu_state st = { 0 };
			struct vcpu_state *v;
			uint32_t size;

			if (descsz < QEMU_CPU_STATE_V1_SIZE)
				goto corrupt;
			memcpy(&st, p + desc_off, descsz < sizeof(st) ? descsz : sizeof(st));
			size = st.size;
			if (st.version != 1 || size < QEMU_CPU_STATE_V1_SIZE || size > descsz) {
				p_err("%s: QEMU CPU note version %u size %u (descsz %u) not understood", path,
				      st.version, size, descsz);
				return -EINVAL;
			}
			v = vcpu_slot(ns, ns->n_qemu);
			if (!v)
				goto too_many;
			v->id = (uint32_t)ns->n_qemu;
			v->valid = true;
			v->cr0 = st.cr[0];
			v->cr3 = st.cr[3];
			v->cr4 = st.cr[4];
			v->rip = st.rip;
			v->rsp = st.rsp;
			v->fs_base = st.fs.base;
			v->gs_base = st.gs.base;
			if (size >= sizeof(st))
				v->kernel_gs_base = st.kernel_gs_base;
			ns->n_qemu++;
		}
		pos = next;
	}
	return 0;
corrupt:
	p_err("%s: corrupt ELF note at offset %llu of a PT_NOTE segment", path, (unsigned long long)pos);
	return -EINVAL;
too_many:
	p_err("%s: more than %u vCPU notes", path, MAX_VCPUS);
	return -E2BIG;
}

/* The ELF header fields used here, from either class. */
struct core_hdr {
	unsigned cls, machine, type;
	uint64_t phoff, shoff, phnum;
	unsigned phentsize, shentsize;
};

static void read_hdr(const unsigned char *map, struct core_hdr *h)
{
	h->cls = map[EI_CLASS];
	if (h->cls == ELFCLASS32) {
		Elf32_Ehdr e;

		memcpy(&e, map, sizeof(e));
		*h = (struct core_hdr){ .cls = h->cls, .machine = e.e_machine, .type = e.e_type, .phoff = e.e_phoff,
					.shoff = e.e_shoff, .phnum = e.e_phnum, .phentsize = e.e_phentsize,
					.shentsize = e.e_shentsize };
	} else {
		Elf64_Ehdr e;

		memcpy(&e, map, sizeof(e));
		*h = (struct core_hdr){ .cls = h->cls, .machine = e.e_machine, .type = e.e_type, .phoff = e.e_phoff,
					.shoff = e.e_shoff, .phnum = e.e_phnum, .phentsize = e.e_phentsize,
					.shentsize = e.e_shentsize };
	}
}

/* Program header i (in the file: checked by the caller) as an Elf64_Phdr. */
static void read_phdr(const unsigned char *map, const struct core_hdr *h, uint64_t i, Elf64_Phdr *ph)
{
	if (h->cls == ELFCLASS32) {
		Elf32_Phdr p;

		memcpy(&p, map + h->phoff + i * sizeof(p), sizeof(p));
		*ph = (Elf64_Phdr){ .p_type = p.p_type, .p_offset = p.p_offset, .p_vaddr = p.p_vaddr,
				    .p_paddr = p.p_paddr, .p_filesz = p.p_filesz, .p_memsz = p.p_memsz };
	} else {
		memcpy(ph, map + h->phoff + i * sizeof(*ph), sizeof(*ph));
	}
}

int physmem_open_elfcore(const char *path, struct physmem **out)
{
	struct elfcore_priv *c;
	struct physmem *pm = NULL;
	struct note_state ns = { 0 };
	struct elf_piece *pieces = NULL;
	struct core_hdr h;
	size_t npieces = 0, phsize;
	uint64_t phnum;
	struct stat st;
	int err;

	*out = NULL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (c->fd < 0) {
		err = -errno;
		p_err("cannot open ELF core %s: %s", path, strerror(errno));
		free(c);
		return err;
	}
	if (fstat(c->fd, &st)) {
		err = -errno;
		p_err("cannot stat %s: %s", path, strerror(errno));
		goto fail;
	}
	if (!S_ISREG(st.st_mode) || st.st_size < (off_t)sizeof(Elf64_Ehdr)) {
		err = -EINVAL;
		p_err("%s: not an ELF core (%s)", path, S_ISREG(st.st_mode) ? "too short" : "not a regular file");
		goto fail;
	}
	c->size = (uint64_t)st.st_size;
	c->map = mmap(NULL, c->size, PROT_READ, MAP_PRIVATE, c->fd, 0);
	if (c->map == MAP_FAILED) {
		c->map = NULL;
		err = -errno;
		p_err("cannot map %s: %s", path, strerror(errno));
		goto fail;
	}
	if (!memcmp(c->map, "KDUMP   ", 8) || !memcmp(c->map, "makedumpfile", 12)) {
		err = -EINVAL;
		p_err("%s: kdump-compressed dump; write an ELF dump (dump-guest-memory without -z/-l/-s)", path);
		goto fail;
	}
	if (memcmp(c->map, ELFMAG, SELFMAG)) {
		err = -EINVAL;
		p_err("%s: not an ELF file", path);
		goto fail;
	}
	read_hdr(c->map, &h);
	if ((h.cls != ELFCLASS64 && h.cls != ELFCLASS32) || c->map[EI_DATA] != ELFDATA2LSB || h.type != ET_CORE ||
	    (h.machine != EM_X86_64 && h.machine != EM_386 && (h.machine != EM_AARCH64 || h.cls != ELFCLASS64))) {
		err = -EINVAL;
		p_err("%s: not a little-endian x86-64, i386 or aarch64 ELF core (class %u, type %u, machine %u)", path,
		      h.cls, h.type, h.machine);
		goto fail;
	}
	phsize = h.cls == ELFCLASS32 ? sizeof(Elf32_Phdr) : sizeof(Elf64_Phdr);
	if (h.phentsize != phsize) {
		err = -EINVAL;
		p_err("%s: bad program header size %u", path, h.phentsize);
		goto fail;
	}
	phnum = h.phnum;
	if (phnum == PN_XNUM) {
		/* section header 0's sh_info; copied: e_shoff comes from the file and need not be aligned */
		size_t shsize = h.cls == ELFCLASS32 ? sizeof(Elf32_Shdr) : sizeof(Elf64_Shdr);

		if (!h.shoff || h.shentsize != shsize || !in_file(c->size, h.shoff, shsize)) {
			err = -EINVAL;
			p_err("%s: e_phnum is PN_XNUM but section header 0 is missing or truncated", path);
			goto fail;
		}
		if (h.cls == ELFCLASS32) {
			Elf32_Shdr sh0;

			memcpy(&sh0, c->map + h.shoff, sizeof(sh0));
			phnum = sh0.sh_info;
		} else {
			Elf64_Shdr sh0;

			memcpy(&sh0, c->map + h.shoff, sizeof(sh0));
			phnum = sh0.sh_info;
		}
	}
	if (!phnum || phnum > MAX_PHDRS || h.phoff > c->size || phnum > (c->size - h.phoff) / phsize) {
		err = -EINVAL;
		p_err("%s: %llu program headers at offset %llu do not fit in the file (truncated core?)", path,
		      (unsigned long long)phnum, (unsigned long long)h.phoff);
		goto fail;
	}
	ns.i386 = h.machine == EM_386;
	ns.aarch64 = h.machine == EM_AARCH64;
	pieces = calloc(phnum, sizeof(*pieces));
	if (!pieces) {
		err = -ENOMEM;
		goto fail;
	}
	for (uint64_t i = 0; i < phnum; i++) {
		Elf64_Phdr ph;

		read_phdr(c->map, &h, i, &ph);
		if (ph.p_type == PT_NOTE) {
			if (!in_file(c->size, ph.p_offset, ph.p_filesz)) {
				err = -EINVAL;
				p_err("%s: PT_NOTE %llu extends beyond the file (truncated core?)", path,
				      (unsigned long long)i);
				goto fail;
			}
			err = parse_notes(path, c->map + ph.p_offset, ph.p_filesz, &ns);
			if (err)
				goto fail;
		} else if (ph.p_type == PT_LOAD && ph.p_filesz) {
			if (!in_file(c->size, ph.p_offset, ph.p_filesz)) {
				err = -EINVAL;
				p_err("%s: PT_LOAD %llu (GPA %#llx, %llu bytes at offset %llu) extends beyond the "
				      "file of %llu bytes (truncated core?)", path, (unsigned long long)i,
				      (unsigned long long)ph.p_paddr, (unsigned long long)ph.p_filesz,
				      (unsigned long long)ph.p_offset, (unsigned long long)c->size);
				goto fail;
			}
			if (ph.p_paddr + ph.p_filesz < ph.p_paddr) {
				err = -EINVAL;
				p_err("%s: PT_LOAD %llu wraps the physical address space", path, (unsigned long long)i);
				goto fail;
			}
			pieces[npieces++] = (struct elf_piece){
				.paddr = ph.p_paddr, .len = ph.p_filesz, .offset = ph.p_offset, .order = (uint32_t)i,
			};
		}
	}
	if (!npieces) {
		err = -EINVAL;
		p_err("%s: ELF core has no memory (no PT_LOAD with data)", path);
		goto fail;
	}
	qsort(pieces, npieces, sizeof(*pieces), piece_cmp);

	pm = physmem_alloc(&elfcore_ops, c);
	if (!pm) {
		err = -ENOMEM;
		goto fail;
	}
	c->offsets = calloc(npieces, sizeof(*c->offsets));
	if (!c->offsets) {
		err = -ENOMEM;
		goto fail_pm;
	}
	{
		uint64_t covered_end = 0;
		size_t overlaps = 0;
		bool any = false;

		for (size_t i = 0; i < npieces; i++) {
			struct elf_piece p = pieces[i];
			uint64_t end = p.paddr + p.len;

			if (any && p.paddr < covered_end) {
				overlaps++;
				if (end <= covered_end)
					continue;
				p.offset += covered_end - p.paddr;
				p.len = end - covered_end;
				p.paddr = covered_end;
			}
			c->offsets[pm->nranges] = p.offset;
			err = physmem_add_range(pm, p.paddr, p.len);
			if (err)
				goto fail_pm;
			covered_end = end;
			any = true;
		}
		if (overlaps)
			p_dbg("%s: %zu overlapping PT_LOAD segments trimmed (paging dump?)", path, overlaps);
	}
	err = physmem_finalize_ranges(pm);
	if (err)
		goto fail_pm;
	free(pieces);

	if (ns.n_qemu && ns.n_prstatus && ns.n_qemu != ns.n_prstatus)
		p_warn("%s: %zu NT_PRSTATUS notes but %zu QEMU CPU notes", path, ns.n_prstatus, ns.n_qemu);
	pm->nvcpus = ns.n_qemu > ns.n_prstatus ? ns.n_qemu : ns.n_prstatus;
	pm->vcpus = ns.v;
	/* QEMU writes an EM_X86_64 core only for a long-mode guest but has no EFER in its note: infer
	 * LME|LMA for every vCPU whose CR0.PG and CR4.PAE are set, so x86_paging_levels() works (an EM_386
	 * core's vCPUs are not in long mode: EFER stays 0 and x86_32_paging_levels() reads CR0/CR4). */
	for (size_t i = 0; i < pm->nvcpus && !ns.i386; i++) {
		struct vcpu_state *v = &pm->vcpus[i];

		if (v->valid && (v->cr0 & (1ULL << 31)) && (v->cr4 & (1ULL << 5)))
			v->efer = (1ULL << 8) | (1ULL << 10);
	}
	if (!ns.n_qemu && !ns.aarch64)
		p_dbg("%s: no QEMU CPU notes: control registers unknown", path);
	*out = pm;
	return 0;

fail_pm:
	free(pieces);
	free(ns.v);
	physmem_close(pm);   /* closes c too */
	return err;
fail:
	free(pieces);
	free(ns.v);
	if (c->map)
		munmap((void *)c->map, c->size);
	close(c->fd);
	free(c);
	return err;
}
