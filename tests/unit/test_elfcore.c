/* cmocka: ELF core source on crafted QEMU-style cores — good ones and truncated/corrupt ones. */
#include <elf.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include "mem/physmem.h"

/* ---- a tiny core writer ---- */

struct seg {
	uint32_t type;
	uint64_t paddr, filesz;
	uint64_t offset;        /* 0 = place automatically */
	const void *data;
};

struct core {
	unsigned char *buf;
	size_t len, cap;
};

static void put(struct core *c, const void *p, size_t n)
{
	if (c->len + n > c->cap) {
		c->cap = (c->len + n) * 2;
		c->buf = realloc(c->buf, c->cap);
	}
	memcpy(c->buf + c->len, p, n);
	c->len += n;
}

static void put_note(struct core *c, const char *name, uint32_t type, const void *desc, uint32_t descsz)
{
	uint32_t hdr[3] = { (uint32_t)strlen(name) + 1, descsz, type };
	static const unsigned char zero[8];

	put(c, hdr, sizeof(hdr));
	put(c, name, hdr[0]);
	put(c, zero, ((hdr[0] + 3) & ~3u) - hdr[0]);
	put(c, desc, descsz);
	put(c, zero, ((descsz + 3) & ~3u) - descsz);
}

/* QEMUCPUState as in target/i386/arch_dump.c */
struct qseg { uint32_t selector, limit, flags, pad; uint64_t base; };
struct qstate {
	uint32_t version, size;
	uint64_t gpr[16], rip, rflags;
	struct qseg cs, ds, es, fs, gs, ss, ldt, tr, gdt, idt;
	uint64_t cr[5];
	uint64_t kernel_gs_base;
};

static void put_cpu_notes(struct core *notes, int ncpu, bool kgs)
{
	for (int i = 0; i < ncpu; i++) {
		unsigned char pr[336] = { 0 };
		uint32_t pid = (uint32_t)i + 1;
		uint64_t rip = 0xffffffff81000000ULL + i;

		memcpy(pr + 32, &pid, 4);
		memcpy(pr + 112 + 16 * 8, &rip, 8);
		put_note(notes, "CORE", NT_PRSTATUS, pr, sizeof(pr));
	}
	for (int i = 0; i < ncpu; i++) {
		struct qstate q = { .version = 1 };

		q.size = kgs ? sizeof(q) : offsetof(struct qstate, kernel_gs_base);
		q.cr[0] = 0x80050033;
		q.cr[3] = 0x10a000 + 0x2000ULL * i + 0x1001;   /* PCID + PTI bits as QEMU reports them */
		q.cr[4] = 0x3706f0;
		q.gs.base = 0xffff88807fc00000ULL + 0x100000ULL * i;
		q.kernel_gs_base = 0x7f0000001000ULL;
		q.rip = 0xffffffff81000000ULL + i;
		put_note(notes, "QEMU", 0, &q, q.size);
	}
}

/* Lay out: ehdr, phdrs, then segment data in order. seg.offset overrides placement. */
static struct core build(const struct seg *segs, int n, uint16_t e_phnum_override)
{
	struct core c = { 0 };
	Elf64_Ehdr eh = { 0 };
	uint64_t off = sizeof(eh) + n * sizeof(Elf64_Phdr);

	memcpy(eh.e_ident, ELFMAG, SELFMAG);
	eh.e_ident[EI_CLASS] = ELFCLASS64;
	eh.e_ident[EI_DATA] = ELFDATA2LSB;
	eh.e_ident[EI_VERSION] = EV_CURRENT;
	eh.e_type = ET_CORE;
	eh.e_machine = EM_X86_64;
	eh.e_version = EV_CURRENT;
	eh.e_phoff = sizeof(eh);
	eh.e_ehsize = sizeof(eh);
	eh.e_phentsize = sizeof(Elf64_Phdr);
	eh.e_phnum = e_phnum_override ? e_phnum_override : (uint16_t)n;
	put(&c, &eh, sizeof(eh));
	for (int i = 0; i < n; i++) {
		Elf64_Phdr ph = {
			.p_type = segs[i].type, .p_paddr = segs[i].paddr, .p_filesz = segs[i].filesz,
			.p_memsz = segs[i].filesz, .p_offset = segs[i].offset ? segs[i].offset : off,
		};
		put(&c, &ph, sizeof(ph));
		if (!segs[i].offset)
			off += segs[i].filesz;
	}
	for (int i = 0; i < n; i++)
		if (!segs[i].offset && segs[i].data)
			put(&c, segs[i].data, segs[i].filesz);
	return c;
}

static char *write_core(const struct core *c, size_t len)
{
	char *path = strdup("/tmp/vmot-core-XXXXXX");
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	if (len)
		assert_int_equal(write(fd, c->buf, len), (ssize_t)len);
	close(fd);
	return path;
}

static unsigned char *pattern(size_t len, unsigned seed)
{
	unsigned char *b = malloc(len);

	for (size_t i = 0; i < len; i++)
		b[i] = (unsigned char)(i * 13 + seed + (i >> 12));
	return b;
}

static int open_core(const struct core *c, size_t len, struct physmem **pm)
{
	char *path = write_core(c, len);
	int err = physmem_open_elfcore(path, pm);

	unlink(path);
	free(path);
	return err;
}

/* A QEMU-style core: RAM below 640K, 1M-3G-ish and above 4G; two vCPUs with CR3 and GS bases. */
static void test_qemu_core(void **state)
{
	struct core notes = { 0 };
	unsigned char *low = pattern(0xa0000, 1), *mid = pattern(0x100000, 2), *high = pattern(0x3000, 3), out[64];
	struct physmem *pm;

	put_cpu_notes(&notes, 2, true);
	struct seg segs[] = {
		{ PT_NOTE, 0, notes.len, 0, notes.buf },
		{ PT_LOAD, 0, 0xa0000, 0, low },
		{ PT_LOAD, 0x100000, 0x100000, 0, mid },
		{ PT_LOAD, 0x100000000ULL, 0x3000, 0, high },
	};
	struct core c = build(segs, 4, 0);

	assert_int_equal(open_core(&c, c.len, &pm), 0);
	assert_string_equal(pm->ops->kind, "elfcore");
	assert_int_equal(pm->nranges, 3);
	assert_int_equal(physmem_total(pm), 0xa0000 + 0x100000 + 0x3000);
	assert_int_equal(physmem_read(pm, 0x9fff0, out, 16), 0);
	assert_memory_equal(out, low + 0x9fff0, 16);
	assert_int_equal(physmem_read(pm, 0x1ffff8, out, 8), 0);
	assert_memory_equal(out, mid + 0xffff8, 8);
	assert_int_equal(physmem_read(pm, 0x100002000ULL, out, 64), 0);
	assert_memory_equal(out, high + 0x2000, 64);
	assert_int_equal(physmem_read(pm, 0xa0000, out, 8), -EFAULT);      /* VGA hole */
	assert_int_equal(physmem_read(pm, 0x1ffffc, out, 8), -EFAULT);     /* end of RAM */

	assert_int_equal(pm->nvcpus, 2);
	assert_true(pm->vcpus[1].valid);
	assert_int_equal(pm->vcpus[0].cr3, 0x10a000 + 0x1001);
	assert_int_equal(pm->vcpus[1].cr3, 0x10c000 + 0x1001);
	assert_int_equal(pm->vcpus[1].cr0, 0x80050033);
	assert_int_equal(pm->vcpus[1].cr4, 0x3706f0);
	assert_int_equal(pm->vcpus[1].efer & 0x500, 0x500);    /* inferred: long mode */
	assert_int_equal(pm->vcpus[1].gs_base, 0xffff88807fd00000ULL);
	assert_int_equal(pm->vcpus[1].kernel_gs_base, 0x7f0000001000ULL);
	assert_int_equal(pm->vcpus[1].rip, 0xffffffff81000001ULL);
	physmem_close(pm);
	free(c.buf);
	free(notes.buf);
	free(low);
	free(mid);
	free(high);
}

/* A 32-bit guest's core as QEMU writes it without long mode: ELF32, EM_386, the i386 NT_PRSTATUS (EIP, ESP)
 * and the same QEMUCPUState (a PAE CR3: a PDPT 32-byte aligned inside its page). EFER stays 0 (not long mode). */
static struct core build_i386(const void *notes, uint32_t notes_len, const void *ram, uint32_t ram_len)
{
	struct core c = { 0 };
	Elf32_Ehdr eh = { 0 };
	Elf32_Phdr ph[2] = {
		{ .p_type = PT_NOTE, .p_offset = sizeof(eh) + 2 * sizeof(Elf32_Phdr), .p_filesz = notes_len },
		{ .p_type = PT_LOAD, .p_paddr = 0x100000, .p_vaddr = 0xc0100000, .p_filesz = ram_len,
		  .p_memsz = ram_len, .p_offset = sizeof(eh) + 2 * sizeof(Elf32_Phdr) + notes_len },
	};

	memcpy(eh.e_ident, ELFMAG, SELFMAG);
	eh.e_ident[EI_CLASS] = ELFCLASS32;
	eh.e_ident[EI_DATA] = ELFDATA2LSB;
	eh.e_ident[EI_VERSION] = EV_CURRENT;
	eh.e_type = ET_CORE;
	eh.e_machine = EM_386;
	eh.e_version = EV_CURRENT;
	eh.e_phoff = sizeof(eh);
	eh.e_ehsize = sizeof(eh);
	eh.e_phentsize = sizeof(Elf32_Phdr);
	eh.e_phnum = 2;
	put(&c, &eh, sizeof(eh));
	put(&c, ph, sizeof(ph));
	put(&c, notes, notes_len);
	put(&c, ram, ram_len);
	return c;
}

static void test_i386_core(void **state)
{
	struct core notes = { 0 };
	unsigned char *ram = pattern(0x20000, 7), out[32];
	struct physmem *pm;

	for (int i = 0; i < 2; i++) {
		unsigned char pr[144] = { 0 };
		uint32_t eip = 0xc1000000u + (uint32_t)i, esp = 0xc7c53f28u;

		memcpy(pr + 72 + 12 * 4, &eip, 4);
		memcpy(pr + 72 + 15 * 4, &esp, 4);
		put_note(&notes, "CORE", NT_PRSTATUS, pr, sizeof(pr));
	}
	struct qstate q = { .version = 1, .size = sizeof(q) };

	q.cr[0] = 0x80050033;
	q.cr[3] = 0x12a5b00;
	q.cr[4] = 0x350ef0;
	q.fs.base = 0x1e163000;
	put_note(&notes, "QEMU", 0, &q, q.size);

	struct core c = build_i386(notes.buf, (uint32_t)notes.len, ram, 0x20000);

	assert_int_equal(open_core(&c, c.len, &pm), 0);
	assert_int_equal(pm->nranges, 1);
	assert_int_equal(physmem_read(pm, 0x11fff0, out, 16), 0);
	assert_memory_equal(out, ram + 0x1fff0, 16);
	assert_int_equal(physmem_read(pm, 0x120000, out, 1), -EFAULT);
	assert_int_equal(pm->nvcpus, 2);
	assert_true(pm->vcpus[0].valid);
	assert_int_equal(pm->vcpus[0].cr3, 0x12a5b00);
	assert_int_equal(pm->vcpus[0].cr4, 0x350ef0);
	assert_int_equal(pm->vcpus[0].efer, 0);                 /* not long mode: nothing inferred */
	assert_int_equal(pm->vcpus[0].fs_base, 0x1e163000);
	assert_int_equal(pm->vcpus[1].rip, 0xc1000001u);        /* from the i386 NT_PRSTATUS */
	assert_int_equal(pm->vcpus[1].rsp, 0xc7c53f28u);
	assert_false(pm->vcpus[1].valid);                       /* one QEMU note: vCPU 1 has no CR3 */
	physmem_close(pm);
	/* truncated inside the program headers; an x86-64 prstatus size in an EM_386 core */
	assert_int_equal(open_core(&c, sizeof(Elf32_Ehdr) + 8, &pm), -EINVAL);
	free(c.buf);
	free(notes.buf);
	notes = (struct core){ 0 };
	unsigned char pr64[336] = { 0 };

	put_note(&notes, "CORE", NT_PRSTATUS, pr64, 100);
	c = build_i386(notes.buf, (uint32_t)notes.len, ram, 0x1000);
	assert_int_equal(open_core(&c, c.len, &pm), -EINVAL);
	free(c.buf);
	free(notes.buf);
	free(ram);
}

/* Old QEMU (QEMUCPUState without kernel_gs_base) is accepted; kernel_gs_base stays 0. */
static void test_old_qemu_note(void **state)
{
	struct core notes = { 0 };
	unsigned char *ram = pattern(0x2000, 4);
	struct physmem *pm;

	put_cpu_notes(&notes, 1, false);
	struct seg segs[] = { { PT_NOTE, 0, notes.len, 0, notes.buf }, { PT_LOAD, 0, 0x2000, 0, ram } };
	struct core c = build(segs, 2, 0);

	assert_int_equal(open_core(&c, c.len, &pm), 0);
	assert_int_equal(pm->nvcpus, 1);
	assert_int_equal(pm->vcpus[0].kernel_gs_base, 0);
	assert_int_equal(pm->vcpus[0].cr3, 0x10a000 + 0x1001);
	physmem_close(pm);
	free(c.buf);
	free(notes.buf);
	free(ram);
}

/* An aarch64 core as QEMU writes it (target/arm/arch_dump.c): per vCPU an NT_PRSTATUS around user_pt_regs
 * (x0..x30, sp, pc, pstate at 112) and NT_FPREGSET, no QEMU note. PC and the exception level are read; the
 * translation registers stay unknown (0). */
static void test_aarch64_core(void **state)
{
	struct core notes = { 0 };
	unsigned char *ram = pattern(0x2000, 5), st[392] = { 0 }, fp[528] = { 0 };
	struct physmem *pm;
	const uint64_t pc[2] = { 0xffff800080012340ULL, 0x0000aaaabbbb0000ULL }, pstate[2] = { 0x3c5, 0x0 };

	(void)state;
	for (int i = 0; i < 2; i++) {   /* vCPU 0 at EL1h, vCPU 1 at EL0 */
		memcpy(st + 112 + 32 * 8, pc + i, 8);
		memcpy(st + 112 + 33 * 8, pstate + i, 8);
		put_note(&notes, "CORE", NT_PRSTATUS, st, sizeof(st));
		put_note(&notes, "CORE", NT_PRFPREG, fp, sizeof(fp));
	}
	struct seg segs[] = { { PT_NOTE, 0, notes.len, 0, notes.buf }, { PT_LOAD, 0x40000000, 0x2000, 0, ram } };
	struct core c = build(segs, 2, 0);

	((Elf64_Ehdr *)c.buf)->e_machine = EM_AARCH64;
	assert_int_equal(open_core(&c, c.len, &pm), 0);
	assert_int_equal(pm->nvcpus, 2);
	assert_true(physmem_aarch64(pm));
	assert_int_equal(pm->vcpus[0].pc, pc[0]);
	assert_true(pm->vcpus[0].el1);
	assert_int_equal(pm->vcpus[1].pc, pc[1]);
	assert_false(pm->vcpus[1].el1);
	assert_int_equal(pm->vcpus[0].ttbr1, 0);
	assert_int_equal(pm->ranges[0].start, 0x40000000);
	physmem_close(pm);
	free(c.buf);
	free(notes.buf);
	free(ram);
}

/* Overlapping PT_LOADs (a paging dump) are trimmed so ranges never overlap; the first one wins. */
static void test_overlapping_loads(void **state)
{
	unsigned char *a = pattern(0x3000, 5), *b = pattern(0x3000, 6), *d = pattern(0x1000, 7), out[16];
	struct physmem *pm;
	struct seg segs[] = {
		{ PT_LOAD, 0x1000, 0x3000, 0, a },     /* 0x1000-0x4000 */
		{ PT_LOAD, 0x2000, 0x3000, 0, b },     /* 0x2000-0x5000: overlaps, tail 0x4000-0x5000 kept */
		{ PT_LOAD, 0x2000, 0x1000, 0, d },     /* fully inside: dropped */
	};
	struct core c = build(segs, 3, 0);

	assert_int_equal(open_core(&c, c.len, &pm), 0);
	assert_int_equal(pm->nranges, 2);
	assert_int_equal(physmem_total(pm), 0x4000);
	assert_int_equal(physmem_read(pm, 0x2000, out, 16), 0);
	assert_memory_equal(out, a + 0x1000, 16);
	assert_int_equal(physmem_read(pm, 0x3ff8, out, 16), 0);   /* crosses into the trimmed piece */
	assert_memory_equal(out, a + 0x2ff8, 8);
	assert_memory_equal(out + 8, b + 0x2000, 8);
	assert_int_equal(pm->nvcpus, 0);
	physmem_close(pm);
	free(c.buf);
	free(a);
	free(b);
	free(d);
}

static void expect_fail(const struct core *c, size_t len, int want)
{
	struct physmem *pm = (void *)1;

	assert_int_equal(open_core(c, len, &pm), want);
	assert_null(pm);
}

/* Truncated files fail cleanly at every cut point: header, phdrs, notes, data. */
static void test_truncated(void **state)
{
	struct core notes = { 0 };
	unsigned char *ram = pattern(0x2000, 8);

	put_cpu_notes(&notes, 1, true);
	struct seg segs[] = { { PT_NOTE, 0, notes.len, 0, notes.buf }, { PT_LOAD, 0, 0x2000, 0, ram } };
	struct core c = build(segs, 2, 0);

	for (size_t cut = 0; cut < c.len; cut += (cut < 1200 ? 1 : 512)) {
		struct physmem *pm = (void *)1;
		int err = open_core(&c, cut, &pm);

		assert_true(err < 0);
		assert_null(pm);
	}
	free(c.buf);
	free(notes.buf);
	free(ram);
}

/* PT_LOAD beyond the file, huge phnum, bogus note sizes, wrong class/machine, kdump format. */
static void test_corrupt(void **state)
{
	unsigned char ram[0x1000] = { 0 };
	struct core notes = { 0 };

	/* PT_LOAD claims more bytes than the file has */
	struct seg beyond[] = { { PT_LOAD, 0, 0x1000, 0, ram }, { PT_LOAD, 0x1000, 0x100000, 0x40, NULL } };
	struct core c = build(beyond, 2, 0);
	expect_fail(&c, c.len, -EINVAL);
	free(c.buf);

	/* offset far past the end, offset+size wrapping */
	struct seg wrap[] = { { PT_LOAD, 0, 0x1000, UINT64_MAX - 10, NULL } };
	c = build(wrap, 1, 0);
	expect_fail(&c, c.len, -EINVAL);
	free(c.buf);

	/* paddr + size wraps */
	struct seg pwrap[] = { { PT_LOAD, UINT64_MAX - 0x10, 0x1000, 0, ram } };
	c = build(pwrap, 1, 0);
	expect_fail(&c, c.len, -EINVAL);
	free(c.buf);

	/* e_phnum larger than the file can hold */
	struct seg one[] = { { PT_LOAD, 0, 0x1000, 0, ram } };
	c = build(one, 1, 5000);
	expect_fail(&c, c.len, -EINVAL);
	free(c.buf);

	/* PN_XNUM without a section header */
	c = build(one, 1, PN_XNUM);
	expect_fail(&c, c.len, -EINVAL);
	free(c.buf);

	/* note with descsz running past its segment */
	uint32_t bad_note[4] = { 5, 0xfffffff0, NT_PRSTATUS, 0x45524f43 };
	struct seg bn[] = { { PT_NOTE, 0, sizeof(bad_note) + 4, 0, NULL }, { PT_LOAD, 0, 0x1000, 0, ram } };
	unsigned char nb[20] = { 0 };
	memcpy(nb, bad_note, sizeof(bad_note));
	bn[0].data = nb;
	c = build(bn, 2, 0);
	expect_fail(&c, c.len, -EINVAL);
	free(c.buf);

	/* namesz huge */
	uint32_t bad_name[3] = { 0xffffffff, 0, 0 };
	struct seg bnm[] = { { PT_NOTE, 0, sizeof(bad_name), 0, bad_name }, { PT_LOAD, 0, 0x1000, 0, ram } };
	c = build(bnm, 2, 0);
	expect_fail(&c, c.len, -EINVAL);
	free(c.buf);

	/* QEMU note with a size field larger than its descriptor */
	struct qstate q = { .version = 1, .size = 4000 };
	put_note(&notes, "QEMU", 0, &q, sizeof(q));
	struct seg bq[] = { { PT_NOTE, 0, notes.len, 0, notes.buf }, { PT_LOAD, 0, 0x1000, 0, ram } };
	c = build(bq, 2, 0);
	expect_fail(&c, c.len, -EINVAL);
	free(c.buf);
	free(notes.buf);

	/* short PRSTATUS */
	notes = (struct core){ 0 };
	put_note(&notes, "CORE", NT_PRSTATUS, ram, 100);
	struct seg sp[] = { { PT_NOTE, 0, notes.len, 0, notes.buf }, { PT_LOAD, 0, 0x1000, 0, ram } };
	c = build(sp, 2, 0);
	expect_fail(&c, c.len, -EINVAL);
	free(c.buf);
	free(notes.buf);

	/* an aarch64 core whose NT_PRSTATUS is x86-64's size (336 bytes, not 392) */
	notes = (struct core){ 0 };
	put_note(&notes, "CORE", NT_PRSTATUS, ram, 336);
	struct seg sa[] = { { PT_NOTE, 0, notes.len, 0, notes.buf }, { PT_LOAD, 0, 0x1000, 0, ram } };
	c = build(sa, 2, 0);
	((Elf64_Ehdr *)c.buf)->e_machine = EM_AARCH64;
	expect_fail(&c, c.len, -EINVAL);
	free(c.buf);
	free(notes.buf);

	/* wrong machine */
	c = build(one, 1, 0);
	((Elf64_Ehdr *)c.buf)->e_machine = EM_PPC64;
	expect_fail(&c, c.len, -EINVAL);
	((Elf64_Ehdr *)c.buf)->e_machine = EM_X86_64;
	((Elf64_Ehdr *)c.buf)->e_ident[EI_CLASS] = ELFCLASS32;
	expect_fail(&c, c.len, -EINVAL);
	memcpy(c.buf, "KDUMP   ", 8);
	expect_fail(&c, c.len, -EINVAL);
	free(c.buf);

	/* no memory at all */
	struct seg none[] = { { PT_LOAD, 0, 0, 0, NULL } };
	c = build(none, 1, 0);
	expect_fail(&c, c.len, -EINVAL);
	free(c.buf);

	struct physmem *pm = (void *)1;
	assert_int_equal(physmem_open_elfcore("/nonexistent/core", &pm), -ENOENT);
	assert_null(pm);
}

/* PN_XNUM: the real program header count lives in section header 0. */
static void test_pn_xnum(void **state)
{
	unsigned char *ram = pattern(0x1000, 9), out[8];
	struct seg one[] = { { PT_LOAD, 0x5000, 0x1000, 0, ram } };
	struct core c = build(one, 1, PN_XNUM);
	Elf64_Shdr sh = { .sh_info = 1 };
	struct physmem *pm;
	uint64_t shoff = c.len;

	put(&c, &sh, sizeof(sh));
	((Elf64_Ehdr *)c.buf)->e_shoff = shoff;
	((Elf64_Ehdr *)c.buf)->e_shentsize = sizeof(Elf64_Shdr);
	((Elf64_Ehdr *)c.buf)->e_shnum = 0;
	assert_int_equal(open_core(&c, c.len, &pm), 0);
	assert_int_equal(physmem_read(pm, 0x5ff8, out, 8), 0);
	assert_memory_equal(out, ram + 0xff8, 8);
	physmem_close(pm);
	free(c.buf);
	free(ram);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_qemu_core),
		cmocka_unit_test(test_old_qemu_note),
		cmocka_unit_test(test_i386_core),
		cmocka_unit_test(test_aarch64_core),
		cmocka_unit_test(test_overlapping_loads),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_corrupt),
		cmocka_unit_test(test_pn_xnum),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
