/*
 * gen_seeds OUTDIR — write the small seed corpus of every fuzz target into OUTDIR/<target>/ (checked in as
 * tests/fuzz/corpus/; `make fuzz-seeds`). Every seed is a valid input of its kind, < 200 KiB:
 *   elfcore    QEMU-style cores: two vCPUs with CORE+QEMU notes, an old QEMU note, overlapping loads,
 *              PN_XNUM program header count
 *   qmp        captured HMP text (tests/unit/data) and whole QMP conversations (greeting, event, replies)
 *   x86        page tables built with tests/unit/x86_pt.h: 4- and 5-level, 4K/2M/1G, PTI pair, loops; and
 *              32-bit ones (x86_pt32.h): 2-level and PAE lowmem, a PDPT inside its page, loops
 *   arm64      AArch64 tables (arm64_pt.h): 48-bit kernel and user halves, 39-bit, 52-bit LPA2, a self-loop
 *   discovery  mutated-synthetic-guest inputs (no patch, a few patches) and raw crafted images
 *   session    session files written by the real writer, and structured block lists
 */
#include <elf.h>
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "mem/physmem.h"
#include "x86_pt.h"
#include "x86_pt32.h"
#include "arm64_pt.h"
#if __has_include("session/session.h")
#include "session/session.h"
#define HAVE_SESSION 1
#endif

static const char *outdir;

static void put_file(const char *target, const char *name, const void *data, size_t len)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", outdir, target);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/%s/%s", outdir, target, name);
	f = fopen(path, "wb");
	if (!f || fwrite(data, 1, len, f) != len || fclose(f)) {
		fprintf(stderr, "gen_seeds: cannot write %s\n", path);
		exit(1);
	}
	if (len > 200 << 10) {
		fprintf(stderr, "gen_seeds: %s is %zu bytes (> 200 KiB)\n", path, len);
		exit(1);
	}
}

/* ---- growable byte buffer ---- */
struct buf { unsigned char *p; size_t len, cap; };

static void put(struct buf *b, const void *p, size_t n)
{
	if (b->len + n > b->cap) {
		b->cap = (b->len + n) * 2 + 64;
		b->p = realloc(b->p, b->cap);
	}
	memcpy(b->p + b->len, p, n);
	b->len += n;
}

static void put_str(struct buf *b, const char *s) { put(b, s, strlen(s)); }

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *s;
	long n;

	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	s = calloc(1, (size_t)n + 1);
	if (fread(s, 1, (size_t)n, f) != (size_t)n) {
		free(s);
		s = NULL;
	}
	fclose(f);
	if (len)
		*len = (size_t)n;
	return s;
}

/* ---- ELF cores ---- */

static void note(struct buf *b, const char *name, uint32_t type, const void *desc, uint32_t descsz)
{
	uint32_t hdr[3] = { (uint32_t)strlen(name) + 1, descsz, type };
	static const unsigned char zero[8];

	put(b, hdr, sizeof(hdr));
	put(b, name, hdr[0]);
	put(b, zero, ((hdr[0] + 3) & ~3u) - hdr[0]);
	put(b, desc, descsz);
	put(b, zero, ((descsz + 3) & ~3u) - descsz);
}

struct qseg { uint32_t selector, limit, flags, pad; uint64_t base; };
struct qstate {
	uint32_t version, size;
	uint64_t gpr[16], rip, rflags;
	struct qseg cs, ds, es, fs, gs, ss, ldt, tr, gdt, idt;
	uint64_t cr[5];
	uint64_t kernel_gs_base;
};

static void cpu_notes(struct buf *n, int ncpu, bool kgs)
{
	for (int i = 0; i < ncpu; i++) {
		unsigned char pr[336] = { 0 };
		uint32_t pid = (uint32_t)i + 1;

		memcpy(pr + 32, &pid, 4);
		note(n, "CORE", NT_PRSTATUS, pr, sizeof(pr));
	}
	for (int i = 0; i < ncpu; i++) {
		struct qstate q = { .version = 1 };

		q.size = kgs ? sizeof(q) : offsetof(struct qstate, kernel_gs_base);
		q.cr[0] = 0x80050033;
		q.cr[3] = 0x1000 + 0x1001ULL * (uint64_t)i;
		q.cr[4] = 0x3706f0;
		q.gs.base = 0xffff88807fc00000ULL + 0x100000ULL * i;
		q.rip = 0xffffffff81000000ULL + i;
		note(n, "QEMU", 0, &q, q.size);
	}
	note(n, "VMCOREINFO", 0, "OSRELEASE=6.1.0\n", 16);
}

struct seg { uint32_t type; uint64_t paddr, len; const void *data; };

static void core(const char *name, const struct seg *s, int n, bool xnum)
{
	struct buf b = { 0 };
	Elf64_Ehdr eh = { 0 };
	uint64_t off = sizeof(eh) + (uint64_t)n * sizeof(Elf64_Phdr) + (xnum ? sizeof(Elf64_Shdr) : 0);

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
	eh.e_phnum = xnum ? PN_XNUM : (uint16_t)n;
	if (xnum) {
		eh.e_shoff = sizeof(eh) + (uint64_t)n * sizeof(Elf64_Phdr);
		eh.e_shentsize = sizeof(Elf64_Shdr);
		eh.e_shnum = 1;
	}
	put(&b, &eh, sizeof(eh));
	for (int i = 0; i < n; i++) {
		Elf64_Phdr ph = { .p_type = s[i].type, .p_paddr = s[i].paddr, .p_filesz = s[i].len,
				  .p_memsz = s[i].len, .p_offset = off };
		put(&b, &ph, sizeof(ph));
		off += s[i].len;
	}
	if (xnum) {
		Elf64_Shdr sh = { .sh_info = (uint32_t)n };
		put(&b, &sh, sizeof(sh));
	}
	for (int i = 0; i < n; i++)
		put(&b, s[i].data, s[i].len);
	put_file("elfcore", name, b.p, b.len);
	free(b.p);
}

static void gen_elfcore(void)
{
	struct buf n2 = { 0 }, n1 = { 0 };
	unsigned char *ram = malloc(16384);

	for (int i = 0; i < 16384; i++)
		ram[i] = (unsigned char)(i * 13 + (i >> 8));
	cpu_notes(&n2, 2, true);
	cpu_notes(&n1, 1, false);
	struct seg a[] = { { PT_NOTE, 0, n2.len, n2.p }, { PT_LOAD, 0, 8192, ram }, { PT_LOAD, 0x100000, 8192, ram + 8192 } };
	core("qemu-2cpu.core", a, 3, false);
	struct seg b[] = { { PT_NOTE, 0, n1.len, n1.p }, { PT_LOAD, 0x1000, 4096, ram } };
	core("old-qemu-note.core", b, 2, false);
	struct seg c[] = { { PT_NOTE, 0, n1.len, n1.p }, { PT_LOAD, 0, 8192, ram }, { PT_LOAD, 0x1000, 8192, ram + 4096 },
			   { PT_LOAD, 0x3000, 4096, ram + 12288 } };
	core("overlapping-loads.core", c, 4, false);
	core("pn-xnum.core", a, 3, true);
	free(n1.p);
	free(n2.p);
	free(ram);
}

/* ---- QMP ---- */

static void reply(struct buf *b, int id, const char *text_or_json, bool is_text)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "return", is_text ? json_object_new_string(text_or_json)
						    : json_tokener_parse(text_or_json));
	json_object_object_add(o, "id", json_object_new_int(id));
	put_str(b, json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	put_str(b, "\r\n");
	json_object_put(o);
}

static void gen_qmp(void)
{
	static const char *const files[] = { "qmp-info-registers.txt", "qmp-info-registers-a.txt",
					     "qmp-info-mtree-f-512m.txt", "qmp-info-ramblock-5g.txt",
					     "qmp-x-24xb.txt", "qmp-xp-fault.txt" };
	char *text[6];
	struct buf b = { 0 };

	for (int i = 0; i < 6; i++) {
		char path[256];
		size_t len;

		snprintf(path, sizeof(path), "tests/unit/data/%s", files[i]);
		text[i] = slurp(path, &len);
		if (!text[i]) {
			fprintf(stderr, "gen_seeds: run from the repository root (%s)\n", path);
			exit(1);
		}
		put_file("qmp", files[i], text[i], len);
	}
	/* what QEMU says to physmem_open_qemu's sequence of commands (ids 1..6) */
	put_str(&b, "{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 2, \"minor\": 2, \"major\": 7}, \"package\": \"\"}, "
		    "\"capabilities\": [\"oob\"]}}\r\n");
	reply(&b, 1, "{}", false);
	put_str(&b, "{\"timestamp\": {\"seconds\": 1, \"microseconds\": 2}, \"event\": \"RESUME\"}\r\n");
	reply(&b, 2, "{\"base-memory\": 536870912}", false);
	reply(&b, 3, text[2], true);
	reply(&b, 4, text[3], true);
	reply(&b, 5, text[1], true);
	reply(&b, 6, "0000000000001000: 0x00 0x01 0x02 0x03 0x04 0x05 0x06 0x07\r\n", true);
	put_file("qmp", "conversation.qmp", b.p, b.len);
	b.len = 0;
	put_str(&b, "{\"QMP\": {\"version\": {}, \"capabilities\": []}}\r\n");
	reply(&b, 1, "{}", false);
	put_str(&b, "{\"id\": 2, \"error\": {\"class\": \"GenericError\", \"desc\": \"no\"}}\r\n");
	put_str(&b, "{\"id\": 99, \"return\": {}}\r\n\r\n");
	reply(&b, 3, "FlatView #0\n AS \"memory\", root: system\n Root memory region: system\n"
		     "  0000000000000000-000000001fffffff (prio 0, ram): pc.ram\n", true);
	put_file("qmp", "conversation-errors.qmp", b.p, b.len);
	free(b.p);
	for (int i = 0; i < 6; i++)
		free(text[i]);
}

/* ---- page tables ---- */

static void x86_seed_flags(const char *name, uint64_t cr3, uint8_t flags, const uint64_t *vas, int nva, const void *img,
			   size_t len)
{
	struct buf b = { 0 };
	uint8_t n = (uint8_t)nva;

	put(&b, &cr3, 8);
	put(&b, &flags, 1);
	put(&b, &n, 1);
	put(&b, vas, (size_t)nva * 8);
	put(&b, img, len);
	put_file("x86", name, b.p, b.len);
	free(b.p);
}

static void x86_seed(const char *name, uint64_t cr3, bool la57, const uint64_t *vas, int nva, const void *img, size_t len)
{
	x86_seed_flags(name, cr3, la57 ? 1 : 0, vas, nva, img, len);
}

#define IMG (64u << 10)

static void gen_x86(void)
{
	unsigned char *m = calloc(1, IMG);
	struct pt_builder b;
	uint64_t vas[6] = { 0xffff888000001000ULL, 0xffffffff81000000ULL, 0x400000, 0xffff888000201234ULL,
			    0xffffffff81001ff9ULL, 0xff11000000000000ULL };

	/* 4-level: a direct map of the image (2 MiB page at 0xffff888000000000 → 0), a kernel image in 4K
	 * pages, a user page, a 1 GiB page */
	pt_init(&b, m, IMG, 0x8000, false);
	pt_map(&b, 0xffff888000000000ULL, 0, PT_2M, PT_RW | PT_NX);
	pt_map_range(&b, 0xffffffff81000000ULL, 0x2000, 0x4000, PT_4K, 0);
	pt_map(&b, 0x400000, 0x6000, PT_4K, PT_RW | PT_US);
	pt_map(&b, 0xffffc90000000000ULL, 0, PT_1G, PT_RW);
	x86_seed("4level.x86", b.root | 0x5, false, vas, 5, m, IMG);
	/* PTI pair: user PGD at root+4K with only the user half (+ trampoline) */
	memcpy(m + b.root + 4096, m + b.root, 2048);
	x86_seed("pti.x86", (b.root + 4096) | 0x801, false, vas, 5, m, IMG);
	/* 5-level */
	memset(m, 0, IMG);
	pt_init(&b, m, IMG, 0x8000, true);
	pt_map(&b, 0xff11000000000000ULL, 0, PT_2M, PT_RW | PT_NX);
	pt_map_range(&b, 0xffffffff81000000ULL, 0x2000, 0x2000, PT_4K, 0);
	x86_seed("5level.x86", b.root, true, vas + 1, 5, m, IMG);
	/* a table pointing to itself at every level */
	memset(m, 0, 16384);
	for (int i = 0; i < 512; i++)
		((uint64_t *)(m + 0x1000))[i] = 0x1000 | PT_P | PT_RW;
	x86_seed("self-loop.x86", 0x1000, false, vas, 3, m, 16384);
	/* everything present, 1 GiB pages everywhere (PML4 → one PDPT of 1G leaves) */
	memset(m, 0, 16384);
	for (int i = 0; i < 512; i++) {
		((uint64_t *)(m + 0x1000))[i] = 0x2000 | PT_P | PT_RW;
		((uint64_t *)(m + 0x2000))[i] = ((uint64_t)i << 30) | PT_P | PT_RW | PT_PS;
	}
	x86_seed("map-all-1g.x86", 0x1000, false, vas, 3, m, 16384);

	/* 32-bit: lowmem at 3G in 4 MiB pages (2-level), at 2G in 4 KiB pages with the PDPT 0x20 into its page
	 * (PAE), user pages low; then a directory whose every entry points at itself */
	uint64_t v32[4] = { 0xc0001234, 0x08048010, 0x80003ff9, 0xfffffff0 };
	struct pt32_builder b32;

	memset(m, 0, IMG);
	pt32_init(&b32, m, IMG, 0x8000, false);
	pt32_map(&b32, 0xc0000000, 0, PT32_4M, PT32_RW);
	pt32_map_range(&b32, 0x08048000, 0x3000, 0x2000, PT32_4K, PT32_US);
	x86_seed_flags("2level.x86", b32.root, 0, v32, 4, m, IMG);
	memset(m, 0, IMG);
	pt32_init_at(&b32, m, IMG, 0x8000, true, 0x20);
	pt32_map_range(&b32, 0x80000000, 0, 0x8000, PT32_4K, PT32_RW | PT32_NX);
	pt32_map(&b32, 0x08048000, 0x3000, PT32_4K, PT32_US);
	x86_seed_flags("pae.x86", b32.root, 8, v32, 4, m, IMG);
	memset(m, 0, 16384);
	for (int i = 0; i < 1024; i++)
		((uint32_t *)(m + 0x1000))[i] = 0x1000 | PT32_P | PT32_RW;
	x86_seed_flags("self-loop-32.x86", 0x1000, 0, v32, 4, m, 16384);
	x86_seed_flags("self-loop-pae.x86", 0x1000, 8, v32, 4, m, 16384);
	free(m);
}

static void arm64_seed(const char *name, uint64_t ttbr0, uint64_t ttbr1, uint8_t mode, const uint64_t *vas, int nva,
		       const void *img, size_t len)
{
	struct buf b = { 0 };
	uint8_t n = (uint8_t)nva;

	put(&b, &ttbr0, 8);
	put(&b, &ttbr1, 8);
	put(&b, &mode, 1);
	put(&b, &n, 1);
	put(&b, vas, (size_t)nva * 8);
	put(&b, img, len);
	put_file("arm64", name, b.p, b.len);
	free(b.p);
}

static void gen_arm64(void)
{
	unsigned char *m = calloc(1, IMG);
	struct a64_builder k, u;
	uint64_t vas[5] = { 0xffff000000201000ULL, 0x400008, 0xffff800008001ff9ULL, 0xffffffc000200000ULL,
			    0xfff0000000003000ULL };

	/* 48-bit: a linear map block, kernel pages, a user page (mode: TTBR0 48, TTBR1 48) */
	a64_init(&k, m, IMG, 0x8000, 48);
	a64_init(&u, m, IMG, 0xc000, 48);
	a64_map(&k, 0xffff000000200000ULL, 0, A64_2M, A64_PXN);
	a64_map_range(&k, 0xffff800008000000ULL, 0x2000, 0x2000, A64_4K, A64_RO);
	a64_map(&u, 0x400000, 0x3000, A64_4K, A64_EL0);
	arm64_seed("48bit.arm64", u.root | (5ULL << 48), k.root, 2 | 2 << 2, vas, 4, m, IMG);
	/* 39-bit kernel half only */
	memset(m, 0, IMG);
	a64_init(&k, m, IMG, 0x8000, 39);
	a64_map(&k, 0xffffffc000200000ULL, 0x1000, A64_4K, 0);
	arm64_seed("39bit.arm64", 0, k.root, 1 << 2, vas, 4, m, IMG);
	/* 52-bit LPA2 */
	memset(m, 0, IMG);
	a64_init(&k, m, IMG, 0x8000, 52);
	a64_map(&k, 0xfff0000000003000ULL, 0x5000, A64_4K, 3ULL << 8);
	arm64_seed("52bit-lpa2.arm64", 0, k.root, 3 << 2 | 16, vas, 5, m, IMG);
	/* a root whose every descriptor points at itself */
	memset(m, 0, 16384);
	for (int i = 0; i < 512; i++)
		((uint64_t *)(m + 0x1000))[i] = 0x1000 | A64_VALID | A64_TABLE;
	arm64_seed("self-loop.arm64", 0x1000, 0x1000, 2 | 2 << 2, vas, 3, m, 16384);
	free(m);
}

/* ---- discovery ---- */

static void gen_discovery(void)
{
	unsigned char *m = calloc(1, IMG);
	struct pt_builder b;
	struct buf s = { 0 };
	/* mode 1: the synthetic guest unpatched, full budget (16 MiB) and task cap (4096) */
	uint8_t full[3] = { 1, 8, 9 };
	put_file("discovery", "synth-clean.bin", full, sizeof(full));
	/* a few patches: init_task region (anchor 1) scribbled, a task's list head made to loop, a PGD */
	uint8_t p1[] = { 1, 8, 9,  1, 0x00, 0x09, 16, 'n','o','t',' ','s','w','a','p','p','e','r',0,0,0,0,0,
			 20, 0x00, 0x03, 16, 0,0,0,0,0,0,0,0, 0xff,0xff,0xff,0xff,0xff,0xff,0xff,0xff,
			 3, 0x08, 0x0f, 8, 0x67,0x10,0,0,0,0,0,0,
			 255, 0, 0, 0, 0x00,0x30,0x00,0x00,0,0,0,0 };
	put_file("discovery", "synth-patched.bin", p1, sizeof(p1));
	uint8_t p2[] = { 1, 4, 3 };   /* small budget, 64 tasks */
	put_file("discovery", "synth-small-budget.bin", p2, sizeof(p2));
	/* mode 0: a crafted 64 KiB guest — kernel root with a direct map and a kernel image, "swapper/0" in
	 * its data, a task list head that points at itself */
	pt_init(&b, m, IMG, 0x8000, false);
	pt_map(&b, 0xffff888000000000ULL, 0, PT_2M, PT_RW | PT_NX);
	pt_map_range(&b, 0xffffffff82000000ULL, 0x2000, 0x4000, PT_4K, PT_RW | PT_NX);
	memcpy(m + 0x2000 + 0x900, "swapper/0", 10);
	uint64_t head = 0xffffffff82000000ULL + 0x500;
	memcpy(m + 0x2000 + 0x500, &head, 8);
	memcpy(m + 0x2000 + 0x508, &head, 8);
	uint8_t hdr[4] = { 0, 8, 9, 2 };
	uint64_t cr3s[2] = { b.root, b.root | 0x1000 };
	put(&s, hdr, 4);
	put(&s, cr3s, sizeof(cr3s));
	put(&s, m, IMG);
	put_file("discovery", "raw-crafted.bin", s.p, s.len);
	free(s.p);
	free(m);
}

/* ---- session ---- */

static void gen_session(void)
{
#ifdef HAVE_SESSION
	char tmpl[] = "/tmp/vmot-seed-XXXXXX";
	int fd = mkstemp(tmpl);
	struct sess_writer *w;
	size_t len;
	char *data;

	close(fd);
	if (sess_create(tmpl, "{\"format\":\"vmoffset-trace session\",\"version\":1}", &w) == 0) {
		sess_write_json(w, SB_VM, "{\"index\":0,\"pid\":1234,\"offsets\":{\"comm\":3016}}");
		for (int i = 0; i < 40; i++) {
			struct sess_event ev = { .time_ns = 1000u * i, .vm = 0, .vcpu = i % 2, .type = 1 + i % 5,
						 .pid = 100 + i, .tgid = 100 + i, .ppid = 1, .prev_pid = -1 };
			snprintf(ev.comm, sizeof(ev.comm), "task%d", i);
			sess_add_event(w, &ev);
			if (i == 20)
				sess_flush(w);
		}
		sess_write_json(w, SB_COUNTERS, "{\"drops\":0}");
		sess_close(w, 1.5, NULL);
		data = slurp(tmpl, &len);
		if (data) {
			put_file("session", "clean.vmts", data, len);
			put_file("session", "cut.vmts", data, len * 2 / 3);
			free(data);
		}
	}
	unlink(tmpl);
	/* structured: [odd][dmg off u16][xor][dmg on] then blocks {type u16, seq u32, nrec u32, delta i8, len u16} */
	struct buf b = { 0 };
	uint8_t h[5] = { 1, 0, 0, 0, 0 };
	put(&b, h, 5);
	const char *hdr = "{\"format\":\"vmoffset-trace session\",\"version\":1}";
	const char *trl = "{\"events\":1,\"blocks\":3,\"clean\":true}";
	struct { uint16_t type; uint32_t seq, nrec; int8_t d; uint16_t len; } __attribute__((packed)) bh;
	bh = (typeof(bh)){ SB_HEADER, 0, 0, 0, (uint16_t)strlen(hdr) };
	put(&b, &bh, sizeof(bh));
	put(&b, hdr, strlen(hdr));
	struct sess_event ev = { .time_ns = 1, .type = SEV_FORK, .pid = 2, .tgid = 2, .ppid = 1, .vcpu = SESS_VCPU_NONE };
	memcpy(ev.comm, "sixteen-chars-xx", 16);
	bh = (typeof(bh)){ SB_EVENTS, 1, 1, 0, sizeof(ev) };
	put(&b, &bh, sizeof(bh));
	put(&b, &ev, sizeof(ev));
	bh = (typeof(bh)){ SB_TRAILER, 2, 0, 0, (uint16_t)strlen(trl) };
	put(&b, &bh, sizeof(bh));
	put(&b, trl, strlen(trl));
	put_file("session", "structured.bin", b.p, b.len);
	free(b.p);
#endif
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: gen_seeds OUTDIR (from the repository root)\n");
		return 64;
	}
	outdir = argv[1];
	mkdir(outdir, 0755);
	gen_elfcore();
	gen_qmp();
	gen_x86();
	gen_arm64();
	gen_discovery();
	gen_session();
	return 0;
}
