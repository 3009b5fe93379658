/*
 * libFuzzer target: QMP replies and the HMP text QEMU sends back.
 *  1. The pure parsers (qmp_parse_registers / _mtree / _ramblocks / _memdump) on the input as text.
 *  2. The wire protocol: the input is what "QEMU" writes on the socket (greeting, events, replies, one
 *     JSON object per line); qmp_open_fd + the commands physmem_open_qemu issues run against it.
 *     The peer end is shut for writing after the input, so a short conversation ends in a clean
 *     -ECONNRESET rather than a timeout.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "mem/qmp.h"

static void parsers(const char *text)
{
	struct vcpu_state *v = NULL;
	struct qemu_ram_range *r = NULL;
	struct qemu_ramblock *b = NULL;
	unsigned char mem[256];
	size_t n = 0;
	static const size_t lens[] = { 1, 8, 24, 256 };

	if (!qmp_parse_registers(text, &v, &n) && (!v || !n))
		abort();
	free(v);
	if (!qmp_parse_mtree(text, NULL, &r, &n))
		for (size_t i = 0; i < n; i++)
			if (!r[i].len || r[i].gpa + r[i].len - 1 < r[i].gpa || !memchr(r[i].block, 0, sizeof(r[i].block)))
				abort();
	free(r);
	r = NULL;
	if (!qmp_parse_mtree(text, "cpu-memory-0", &r, &n))
		free(r);
	if (!qmp_parse_ramblocks(text, &b, &n))
		for (size_t i = 0; i < n; i++)
			if (!memchr(b[i].name, 0, sizeof(b[i].name)))
				abort();
	free(b);
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		qmp_parse_memdump(text, 0, mem, lens[i]);
		qmp_parse_memdump(text, 0xffffffffac00dfe0ULL, mem, lens[i]);
	}
}

static void conversation(const uint8_t *data, size_t size)
{
	struct qmp *q = NULL;
	struct vcpu_state *v = NULL;
	struct qemu_ram_range *r = NULL;
	struct qemu_ramblock *b = NULL;
	uint64_t base, plugged;
	unsigned char mem[64];
	size_t n;
	int sv[2], sz = 1 << 20;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
		abort();
	setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
	setsockopt(sv[0], SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
	for (size_t off = 0; off < size;) {
		ssize_t w = write(sv[1], data + off, size - off);

		if (w <= 0)
			break;   /* socket buffer full: the rest is lost, like a stalled QEMU */
		off += (size_t)w;
	}
	shutdown(sv[1], SHUT_WR);
	if (qmp_open_fd(sv[0], "fuzz", 2000, &q)) {
		close(sv[0]);
		close(sv[1]);
		return;
	}
	if (!qmp_query_ram_size(q, &base, &plugged) && !base)
		abort();
	if (!qmp_read_mtree(q, &r, &n))
		free(r);
	if (!qmp_read_ramblocks(q, &b, &n))
		free(b);
	if (!qmp_read_vcpus(q, &v, &n))
		free(v);
	qmp_xp(q, 0x1000, mem, sizeof(mem));
	qmp_close(q);   /* closes sv[0] */
	close(sv[1]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1);

	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = 0;
	parsers(text);
	free(text);
	conversation(data, size);
	return 0;
}
