/* cmocka: QMP client (against a scripted fake QEMU on a UNIX socket) and the HMP-output parsers on
 * output captured from QEMU 7.2 (tests/unit/data/qmp-*.txt). */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <cmocka.h>
#include "mem/gdbstub.h"
#include "mem/qmp.h"

#ifndef DATA_DIR
#define DATA_DIR "tests/unit/data"
#endif

static char *slurp(const char *name)
{
	const char *d = getenv("VMOT_TEST_DATA");
	char path[512];
	FILE *f;
	char *buf;
	long len;

	snprintf(path, sizeof(path), "%s/%s", d ? d : DATA_DIR, name);
	f = fopen(path, "r");
	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	len = ftell(f);
	rewind(f);
	buf = calloc(1, (size_t)len + 1);
	assert_int_equal(fread(buf, 1, (size_t)len, f), (size_t)len);
	fclose(f);
	return buf;
}

/* `info registers -a`: two CPUs, one in the kernel (GS base = per-CPU area), one in user mode. */
static void test_parse_registers(void **state)
{
	char *t = slurp("qmp-info-registers-a.txt");
	struct vcpu_state *v;
	size_t n;

	assert_int_equal(qmp_parse_registers(t, &v, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(v[0].id, 0);
	assert_int_equal(v[1].id, 1);
	assert_true(v[0].valid && v[1].valid);
	assert_int_equal(v[0].cr0, 0x80050033);
	assert_int_equal(v[0].cr3, 0x1066000);
	assert_int_equal(v[0].cr4, 0x6b0);
	assert_int_equal(v[0].efer, 0xd01);
	assert_int_equal(v[0].gs_base, 0xffff8a191f400000ULL);
	assert_int_equal(v[0].rip, 0xffffffffac00dfebULL);
	assert_int_equal(v[0].rsp, 0xffffffffad003e90ULL);
	assert_int_equal(v[1].cr3, 0x1d73c000);
	assert_int_equal(v[1].gs_base, 0);
	assert_int_equal(v[1].fs_base, 0xf2043c0);
	assert_int_equal(v[1].rip, 0x4ec5b4);
	free(v);
	free(t);

	/* without -a there is no CPU# header */
	t = slurp("qmp-info-registers.txt");
	assert_int_equal(qmp_parse_registers(t, &v, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(v[0].efer, 0xd01);
	free(v);
	free(t);

	/* KernelGSbase when a QEMU prints it; PCID bits kept in CR3 */
	const char *synth = "CPU#3\nRAX=0 RBX=0\nCR0=80050033 CR2=0 CR3=000000000a3e2805 CR4=00370ef0\n"
			    "KernelGSbase=ffff88807fd80000\nEFER=0000000000000d01\n";
	assert_int_equal(qmp_parse_registers(synth, &v, &n), 0);
	assert_int_equal(v[0].id, 3);
	assert_int_equal(v[0].cr3, 0xa3e2805);
	assert_int_equal(v[0].kernel_gs_base, 0xffff88807fd80000ULL);
	free(v);
	/* a 32-bit PAE guest (Debian's 686-pae under qemu-system-i386): 32-bit names, PDPTs 32-byte aligned */
	t = slurp("qmp-info-registers-a-i386-pae.txt");
	assert_int_equal(qmp_parse_registers(t, &v, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(v[0].rip, 0xd792fcf3);
	assert_int_equal(v[0].rsp, 0xd7c53f28);
	assert_int_equal(v[0].cr0, 0x80050033);
	assert_int_equal(v[0].cr4, 0x350ef0);
	assert_int_equal(v[0].efer, 0x800);
	assert_int_equal(v[0].fs_base, 0x1e142000);
	assert_int_equal(v[1].cr3, 0x12a5b00);
	assert_true(v[1].valid);
	free(v);
	free(t);
	assert_int_equal(qmp_parse_registers("garbage\n", &v, &n), -ENOENT);
	assert_int_equal(qmp_parse_registers("", &v, &n), -ENOENT);
}

/* mtree of a 5 GiB pc guest: pc.ram below 4G (with the PAM rom/ram pieces) and above 4G at pc.ram
 * offset 0xc0000000; MMIO and i/o are not RAM. */
static void test_parse_mtree_5g(void **state)
{
	char *t = slurp("qmp-info-mtree-f-5g.txt");
	struct qemu_ram_range *r;
	size_t n, pcram = 0;
	uint64_t pc_total = 0;

	assert_int_equal(qmp_parse_mtree(t, NULL, &r, &n), 0);
	for (size_t i = 0; i < n; i++) {
		if (!strcmp(r[i].block, "pc.ram")) {
			pcram++;
			pc_total += r[i].len;
			assert_int_equal(r[i].offset, r[i].gpa < (4ULL << 30) ? r[i].gpa : r[i].gpa - (1ULL << 30));
		}
	}
	assert_int_equal(pcram, 8);
	assert_int_equal(pc_total, (5ULL << 30) - 0x20000);    /* minus the VGA window */
	assert_int_equal(r[0].gpa, 0);
	assert_int_equal(r[0].len, 0xa0000);
	assert_true(r[1].rom);
	assert_int_equal(r[n - 1].gpa, 0x100000000ULL);
	assert_int_equal(r[n - 1].len, 0x80000000ULL);
	assert_int_equal(r[n - 1].offset, 0xc0000000ULL);
	assert_string_equal(r[n - 2].block, "pc.bios");
	assert_string_equal(r[n - 3].block, "vga.vram");
	free(r);
	/* the SMM view is a different flat view */
	assert_int_equal(qmp_parse_mtree(t, "cpu-smm-0", &r, &n), 0);
	assert_int_equal(r[0].len, 0xc0000);
	free(r);
	assert_int_equal(qmp_parse_mtree(t, "nonexistent", &r, &n), -ENOENT);
	free(t);

	t = slurp("qmp-info-mtree-f-512m.txt");
	assert_int_equal(qmp_parse_mtree(t, NULL, &r, &n), 0);
	assert_int_equal(r[6].gpa, 0x100000);
	assert_int_equal(r[6].len, 0x1ff00000);
	free(r);
	free(t);
}

static void test_parse_ramblocks(void **state)
{
	char *t = slurp("qmp-info-ramblock-5g.txt");
	struct qemu_ramblock *b;
	size_t n;

	assert_int_equal(qmp_parse_ramblocks(t, &b, &n), 0);
	assert_int_equal(n, 9);
	assert_string_equal(b[0].name, "pc.ram");
	assert_int_equal(b[0].used, 0x140000000ULL);
	assert_int_equal(b[0].page_size, 4096);
	assert_string_equal(b[1].name, "0000:00:02.0/vga.vram");
	assert_int_equal(b[2].total, 0x200000);
	free(b);
	free(t);
}

static void test_parse_memdump(void **state)
{
	char *t = slurp("qmp-x-24xb.txt");
	unsigned char buf[24];
	static const unsigned char want[8] = { 0xeb, 0x07, 0x0f, 0x00, 0x2d, 0xa9, 0xad, 0x5f };

	assert_int_equal(qmp_parse_memdump(t, 0xffffffffac00dfe0ULL, buf, 24), 0);
	assert_memory_equal(buf, want, 8);
	assert_int_equal(buf[23], 0x5f);
	assert_int_equal(qmp_parse_memdump(t, 0xffffffffac00dfe1ULL, buf, 24), -EPROTO);   /* wrong address */
	assert_int_equal(qmp_parse_memdump(t, 0xffffffffac00dfe0ULL, buf, 23), 0);
	free(t);
	t = slurp("qmp-xp-fault.txt");
	assert_int_equal(qmp_parse_memdump(t, 0x30000000, buf, 8), -EFAULT);
	free(t);
	assert_int_equal(qmp_parse_memdump("", 0, buf, 8), -EPROTO);
}

/* ---- fake QEMU ---- */

struct fake {
	char path[108];
	int lfd;
	pthread_t th;
	int mode;
};

enum { FAKE_GOOD, FAKE_SILENT, FAKE_CLOSE, FAKE_NOT_QMP };

static void send_line(int fd, const char *s)
{
	assert_int_equal(write(fd, s, strlen(s)), (ssize_t)strlen(s));
}

static int read_line(int fd, char *buf, size_t cap)
{
	size_t n = 0;

	while (n + 1 < cap) {
		char c;

		if (read(fd, &c, 1) != 1)
			return -1;
		if (c == '\n')
			break;
		buf[n++] = c;
	}
	buf[n] = 0;
	return 0;
}

static long get_id(const char *line)
{
	const char *p = strstr(line, "\"id\":");

	return p ? strtol(p + 5, NULL, 10) : -1;
}

static void *fake_main(void *arg)
{
	struct fake *f = arg;
	char line[4096], out[8192];
	int fd = accept(f->lfd, NULL, NULL);

	if (fd < 0)
		return NULL;
	if (f->mode == FAKE_NOT_QMP) {
		send_line(fd, "{\"hello\": 1}\r\n");
		goto out;
	}
	send_line(fd, "{\"QMP\": {\"version\": {}, \"capabilities\": []}}\r\n");
	if (read_line(fd, line, sizeof(line)))
		goto out;
	/* an event before the reply */
	send_line(fd, "{\"timestamp\": {\"seconds\": 1, \"microseconds\": 2}, \"event\": \"RTC_CHANGE\", \"data\": {}}\r\n");
	snprintf(out, sizeof(out), "{\"return\": {}, \"id\": %ld}\r\n", get_id(line));
	send_line(fd, out);
	while (!read_line(fd, line, sizeof(line))) {
		long id = get_id(line);

		if (f->mode == FAKE_SILENT)
			continue;
		if (f->mode == FAKE_CLOSE)
			break;
		if (strstr(line, "query-memory-size-summary")) {
			/* a stale reply, an event, then ours, split across writes */
			snprintf(out, sizeof(out), "{\"return\": {}, \"id\": %ld}\r\n", id - 1);
			send_line(fd, out);
			send_line(fd, "{\"event\": \"STOP\", \"timestamp\": {}}\r\n{\"event\": \"RE");
			usleep(20000);
			snprintf(out, sizeof(out), "SUME\", \"timestamp\": {}}\r\n{\"return\": {\"base-memory\": "
				 "5368709120, \"plugged-memory\": 0}, \"id\": %ld}\r\n", id);
			send_line(fd, out);
		} else if (strstr(line, "info registers -a")) {
			snprintf(out, sizeof(out), "{\"return\": \"CPU#0\\r\\nRAX=0\\r\\nRIP=ffffffff81000000 RFL=0\\r\\n"
				 "GS =0000 ffff88807fc00000 00000000 00000000\\r\\nCR0=80050033 CR2=0 CR3=0000000012345805 "
				 "CR4=003706f0\\r\\nEFER=0000000000000d01\\r\\n\", \"id\": %ld}\r\n", id);
			send_line(fd, out);
		} else if (strstr(line, "xp /")) {
			snprintf(out, sizeof(out), "{\"return\": \"0000000000001000: 0x01 0x02 0x03 0x04\\r\\n\", "
				 "\"id\": %ld}\r\n", id);
			send_line(fd, out);
		} else {
			snprintf(out, sizeof(out), "{\"error\": {\"class\": \"CommandNotFound\", \"desc\": "
				 "\"The command nope has not been found\"}, \"id\": %ld}\r\n", id);
			send_line(fd, out);
		}
	}
out:
	close(fd);
	return NULL;
}

static struct fake *fake_start(int mode)
{
	struct fake *f = calloc(1, sizeof(*f));
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	snprintf(f->path, sizeof(f->path), "/tmp/vmot-qmp-test-%d-%d.sock", getpid(), mode);
	unlink(f->path);
	strcpy(sa.sun_path, f->path);
	f->mode = mode;
	f->lfd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_int_equal(bind(f->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(f->lfd, 1), 0);
	pthread_create(&f->th, NULL, fake_main, f);
	return f;
}

static void fake_stop(struct fake *f)
{
	shutdown(f->lfd, SHUT_RDWR);
	close(f->lfd);
	pthread_join(f->th, NULL);
	unlink(f->path);
	free(f);
}

/* Replies are matched by id across interleaved events, stale replies and split reads. */
static void test_client_events_and_ids(void **state)
{
	struct fake *f = fake_start(FAKE_GOOD);
	struct obs_set s = { 0 };
	struct vcpu_state *v;
	struct qmp *q;
	uint64_t base, plugged;
	unsigned char b[4];
	size_t n;

	assert_int_equal(qmp_open(f->path, 2000, &q), 0);
	assert_int_equal(qmp_events_seen(q), 1);
	assert_int_equal(qmp_query_ram_size(q, &base, &plugged), 0);
	assert_int_equal(base, 5ULL << 30);
	assert_int_equal(qmp_events_seen(q), 3);
	assert_int_equal(qmp_read_vcpus(q, &v, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(v[0].cr3, 0x12345805);
	free(v);
	assert_int_equal(qmp_xp(q, 0x1000, b, 4), 0);
	assert_int_equal(b[3], 4);
	assert_int_equal(qmp_command(q, "nope", NULL, NULL), -EREMOTEIO);
	assert_int_equal(qmp_sample_observations(q, &s, 3, 1), 0);
	assert_int_equal(s.n, 3);
	assert_int_equal(s.v[2].cr3, 0x12345805);
	assert_int_equal(s.v[2].gs_base, 0xffff88807fc00000ULL);
	assert_int_equal(s.v[2].source, OBS_QMP);
	obs_free(&s);
	qmp_close(q);
	fake_stop(f);
}

/* A QEMU that never answers times out; one that hangs up gives ECONNRESET; non-QMP is EPROTO. */
static void test_client_failures(void **state)
{
	struct fake *f = fake_start(FAKE_SILENT);
	struct qmp *q;

	assert_int_equal(qmp_open(f->path, 300, &q), 0);
	assert_int_equal(qmp_command(q, "query-status", NULL, NULL), -ETIMEDOUT);
	qmp_close(q);
	fake_stop(f);

	f = fake_start(FAKE_CLOSE);
	assert_int_equal(qmp_open(f->path, 1000, &q), 0);
	assert_int_equal(qmp_command(q, "query-status", NULL, NULL), -ECONNRESET);
	qmp_close(q);
	fake_stop(f);

	f = fake_start(FAKE_NOT_QMP);
	assert_int_equal(qmp_open(f->path, 1000, &q), -EPROTO);
	assert_null(q);
	fake_stop(f);

	assert_int_equal(qmp_open("/nonexistent/qmp.sock", 100, &q), -ENOENT);
}

/* The gdbstub's framing (arm64 guests' registers): a reply after acks and an unasked stop packet, a bad
 * checksum, a packet cut short, one longer than the buffer, stray '$'. */
static void test_gdb_packets(void **state)
{
	char out[32];
	size_t used;
	const char *two = "+$T02thread:01;#04+$OK#9a";

	(void)state;
	assert_int_equal(gdb_parse_packet(two, strlen(two), out, sizeof(out), &used), 0);
	assert_string_equal(out, "T02thread:01;");
	assert_int_equal(gdb_parse_packet(two + used, strlen(two + used), out, sizeof(out), &used), 0);
	assert_string_equal(out, "OK");
	assert_int_equal(gdb_parse_packet("$OK#9b", 6, out, sizeof(out), &used), -EPROTO);    /* checksum */
	assert_int_equal(gdb_parse_packet("$OK#9", 5, out, sizeof(out), &used), -EAGAIN);     /* cut short */
	assert_int_equal(used, 0);
	assert_int_equal(gdb_parse_packet("+++", 3, out, sizeof(out), &used), -EAGAIN);       /* acks only */
	assert_int_equal(used, 3);
	assert_int_equal(gdb_parse_packet("$aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa#00", 48, out, sizeof(out), &used),
			 -EPROTO);                                                              /* too long */
	assert_int_equal(gdb_parse_packet("$O$OK#9a", 8, out, sizeof(out), &used), -EPROTO); /* '$' inside */
	assert_int_equal(gdb_parse_packet("$OK#zz", 6, out, sizeof(out), &used), -EPROTO);
}

/* Register numbers from target descriptions: GDB's order where no regnum is given, QEMU's regnum attributes in
 * its system-register file; hostile tags (no '>', a name too long) end or skip cleanly. */
static void test_gdb_regnums(void **state)
{
	static const char *const names[] = { "pc", "cpsr", "TTBR0_EL1", "TCR_EL1", "SP_EL0" };
	const char *core = "<feature><reg name=\"x0\" bitsize=\"64\"/><reg name=\"sp\" bitsize=\"64\"/>"
			   "<reg name=\"pc\" bitsize=\"64\"/><reg name=\"cpsr\" bitsize=\"32\"/></feature>";
	const char *sys = "<feature><reg name=\"TTBR0_EL1\" bitsize=\"64\" regnum=\"120\" group=\"cp_regs\"/>"
			  "<reg name=\"TCR_EL1\" bitsize=\"64\" regnum=\"121\"/><reg name=\"SP_EL0\" regnum=\"200\"/>"
			  "<reg name=\"" "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx" "\"/><reg name=\"pc";
	int nums[5] = { -1, -1, -1, -1, -1 }, next = 0;

	(void)state;
	gdb_xml_regnums(core, names, nums, 5, &next);
	assert_int_equal(next, 4);
	gdb_xml_regnums(sys, names, nums, 5, &next);
	assert_int_equal(nums[0], 2);
	assert_int_equal(nums[1], 3);
	assert_int_equal(nums[2], 120);
	assert_int_equal(nums[3], 121);
	assert_int_equal(nums[4], 200);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_registers),
		cmocka_unit_test(test_parse_mtree_5g),
		cmocka_unit_test(test_parse_ramblocks),
		cmocka_unit_test(test_parse_memdump),
		cmocka_unit_test(test_client_events_and_ids),
		cmocka_unit_test(test_client_failures),
		cmocka_unit_test(test_gdb_packets),
		cmocka_unit_test(test_gdb_regnums),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
