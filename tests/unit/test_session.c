/*
 * cmocka: session files (user/session). Properties:
 *   - a round trip preserves every event, in order, and the JSON blocks;
 *   - a file cut at every byte offset yields exactly the events of the blocks before the cut, is reported
 *     as damaged/interrupted, and fails only when no block is left;
 *   - every single-bit flip anywhere in a small file costs exactly the block it hits (all other events
 *     are read) and is reported.
 */
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
#include "session/session.h"

struct collect {
	struct sess_event *ev;
	size_t n, cap;
	int vm_blocks, counters, header, trailer;
	char vm_json[256];
};

static int collect_fn(void *ctx, enum sess_block type, uint32_t seq, const void *data, size_t len, uint32_t nrec)
{
	struct collect *c = ctx;

	switch (type) {
	case SB_EVENTS:
		if (c->n + nrec > c->cap) {
			c->cap = (c->n + nrec) * 2;
			c->ev = realloc(c->ev, c->cap * sizeof(*c->ev));
			assert_non_null(c->ev);
		}
		memcpy(c->ev + c->n, data, nrec * sizeof(*c->ev));
		c->n += nrec;
		break;
	case SB_VM:
		c->vm_blocks++;
		snprintf(c->vm_json, sizeof(c->vm_json), "%s", (const char *)data);
		break;
	case SB_COUNTERS: c->counters++; break;
	case SB_HEADER: c->header++; break;
	case SB_TRAILER: c->trailer++; break;
	default: break;
	}
	return 0;
}

static struct sess_event make_event(uint64_t i)
{
	struct sess_event e;

	memset(&e, 0, sizeof(e));
	e.time_ns = 1000000000ULL + i * 12345;
	e.task = 0xffff888000000000ULL + i * 0x2a40;
	e.vm = (uint32_t)(i % 3);
	e.vcpu = i % 5 == 0 ? SESS_VCPU_NONE : (uint32_t)(i % 4);
	e.type = (uint16_t)(1 + i % (SEV_NR - 1));
	e.pid = (int32_t)(100 + i);
	e.tgid = (int32_t)(100 + i - i % 2);
	e.ppid = (int32_t)(1 + i % 7);
	e.prev_pid = (int32_t)i - 1;
	snprintf(e.comm, sizeof(e.comm), "proc-%llu", (unsigned long long)i);
	if (i % 11 == 0)
		memcpy(e.comm, "exactly16bytes!!", 16);   /* no NUL */
	return e;
}

static char tmpdir[] = "/tmp/vmot-test-session.XXXXXX";

static char *path_in_tmp(const char *name)
{
	static char p[256];

	snprintf(p, sizeof(p), "%s/%s", tmpdir, name);
	return p;
}

static uint8_t *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	uint8_t *b;
	long n;

	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	b = malloc(n ? n : 1);
	assert_non_null(b);
	assert_int_equal(fread(b, 1, n, f), (size_t)n);
	fclose(f);
	*len = (size_t)n;
	return b;
}

/* Write a session: header, VM, nev events flushed every `per_block`, counters, trailer. */
static void write_session(const char *path, uint64_t nev, uint64_t per_block, bool clean)
{
	struct sess_writer *w;

	assert_int_equal(sess_create(path, "{\"format\":\"vmoffset-trace session\",\"version\":1}", &w), 0);
	assert_int_equal(sess_write_json(w, SB_VM, "{\"index\":0,\"name\":\"vmot-a\",\"pid\":4242}"), 0);
	for (uint64_t i = 0; i < nev; i++) {
		struct sess_event e = make_event(i);
		assert_int_equal(sess_add_event(w, &e), 0);
		if (per_block && (i + 1) % per_block == 0)
			assert_int_equal(sess_flush(w), 0);
	}
	assert_int_equal(sess_write_json(w, SB_COUNTERS, "{\"polls\":7}"), 0);
	if (clean)
		assert_int_equal(sess_close(w, 1.5, NULL), 0);
	else
		sess_abort(w);
}

static void test_round_trip_preserves_every_event(void **state)
{
	const uint64_t n = 3 * SESS_BLOCK_EVENTS + 17;   /* full blocks written by sess_add_event, then a rest */
	struct collect c = { 0 };
	struct sess_summary sum;
	char line[512];
	char *p = path_in_tmp("rt.vmot");

	write_session(p, n, 0, true);
	assert_int_equal(sess_read_file(p, collect_fn, &c, &sum), 0);
	assert_int_equal(c.n, n);
	for (uint64_t i = 0; i < n; i++) {
		struct sess_event e = make_event(i);
		assert_memory_equal(&c.ev[i], &e, sizeof(e));
	}
	assert_int_equal(c.header, 1);
	assert_int_equal(c.vm_blocks, 1);
	assert_string_equal(c.vm_json, "{\"index\":0,\"name\":\"vmot-a\",\"pid\":4242}");
	assert_int_equal(c.counters, 1);
	assert_int_equal(c.trailer, 1);
	assert_true(sess_intact(&sum));
	assert_int_equal(sum.trailer_events, n);
	assert_int_equal(sum.events_ok, n);
	sess_damage_line(&sum, line, sizeof(line));
	assert_string_equal(line, "");
	free(c.ev);
}

static void test_empty_and_interrupted(void **state)
{
	struct collect c = { 0 };
	struct sess_summary sum;
	char line[512];
	char *p = path_in_tmp("abort.vmot");

	/* no trailer: every event read, reported as interrupted */
	write_session(p, 10, 4, false);
	assert_int_equal(sess_read_file(p, collect_fn, &c, &sum), 0);
	assert_int_equal(c.n, 10);
	assert_false(sess_intact(&sum));
	sess_damage_line(&sum, line, sizeof(line));
	assert_non_null(strstr(line, "no trailer"));
	free(c.ev);
	/* an empty file and garbage: nothing readable */
	assert_int_equal(sess_read_buf("", 0, collect_fn, &c, &sum), -ENODATA);
	assert_int_equal(sess_read_buf("VMTBgarbage-garbage-garbage-garbage", 35, NULL, NULL, &sum), -ENODATA);
	sess_damage_line(&sum, line, sizeof(line));
	assert_non_null(strstr(line, "nothing readable"));
}

/* Block boundaries of an intact file, and the number of events before each block. */
struct layout {
	size_t start[64], end[64];
	uint64_t ev_before[64], nev[64];
	size_t n;
};

static void layout_of(const uint8_t *b, size_t len, struct layout *L)
{
	size_t pos = 0;
	uint64_t ev = 0;

	L->n = 0;
	while (pos < len) {
		uint32_t comp = b[pos + 16] | b[pos + 17] << 8 | b[pos + 18] << 16 | (uint32_t)b[pos + 19] << 24;
		uint32_t nrec = b[pos + 20] | b[pos + 21] << 8 | b[pos + 22] << 16 | (uint32_t)b[pos + 23] << 24;
		assert_true(L->n < 64);
		L->start[L->n] = pos;
		L->end[L->n] = pos + SESS_BLOCK_HDR + comp;
		L->ev_before[L->n] = ev;
		L->nev[L->n] = nrec;
		ev += nrec;
		pos = L->end[L->n];
		L->n++;
	}
	assert_int_equal(pos, len);
}

static void check_events(const struct collect *c, const struct layout *L, size_t skip_block, size_t upto_block)
{
	size_t k = 0;

	for (size_t bi = 0; bi < upto_block; bi++) {
		if (bi == skip_block)
			continue;
		for (uint64_t i = 0; i < L->nev[bi]; i++, k++) {
			struct sess_event e = make_event(L->ev_before[bi] + i);
			assert_true(k < c->n);
			assert_memory_equal(&c->ev[k], &e, sizeof(e));
		}
	}
	assert_int_equal(k, c->n);
}

static void test_truncated_at_every_offset(void **state)
{
	char *p = path_in_tmp("trunc.vmot");
	struct layout L;
	size_t len;
	uint8_t *b;

	write_session(p, 14, 5, true);   /* header, vm, 3 event blocks (5,5,4), counters, trailer */
	b = slurp(p, &len);
	layout_of(b, len, &L);
	assert_int_equal(L.n, 7);
	for (size_t cut = 0; cut < len; cut++) {
		struct collect c = { 0 };
		struct sess_summary sum;
		char line[512];
		size_t whole = 0;
		int ret = sess_read_buf(b, cut, collect_fn, &c, &sum);

		while (whole < L.n && L.end[whole] <= cut)
			whole++;
		if (!whole) {
			assert_int_equal(ret, -ENODATA);
		} else {
			assert_int_equal(ret, 0);
			assert_int_equal(sum.blocks_ok, whole);
		}
		check_events(&c, &L, SIZE_MAX, whole);
		assert_false(sess_intact(&sum));
		sess_damage_line(&sum, line, sizeof(line));
		assert_true(line[0] != 0);
		/* a cut inside a block is reported as such, with the exact number of bytes lost */
		if (whole < L.n && cut > L.start[whole]) {
			assert_true(sum.truncated);
			assert_int_equal(sum.bytes_damaged, cut - L.start[whole]);
			assert_int_equal(sum.first_damage, L.start[whole]);
		}
		free(c.ev);
	}
	free(b);
}

static void test_every_single_bit_flip(void **state)
{
	char *p = path_in_tmp("flip.vmot");
	struct layout L;
	size_t len;
	uint8_t *b;

	write_session(p, 14, 5, true);
	b = slurp(p, &len);
	layout_of(b, len, &L);
	for (size_t byte = 0; byte < len; byte++) {
		size_t hit = 0;

		while (L.end[hit] <= byte)
			hit++;
		for (int bit = 0; bit < 8; bit++) {
			struct collect c = { 0 };
			struct sess_summary sum;
			char line[512];

			b[byte] ^= 1 << bit;
			assert_int_equal(sess_read_buf(b, len, collect_fn, &c, &sum), 0);
			b[byte] ^= 1 << bit;
			check_events(&c, &L, hit, L.n);
			assert_int_equal(sum.blocks_ok, L.n - 1);
			assert_int_equal(sum.damaged, 1);
			assert_int_equal(sum.first_damage, L.start[hit]);
			assert_false(sess_intact(&sum));
			sess_damage_line(&sum, line, sizeof(line));
			assert_true(line[0] != 0);
			/* with the trailer intact, the loss is counted exactly */
			if (hit != L.n - 1 && L.nev[hit]) {
				char want[64];
				snprintf(want, sizeof(want), "%llu of 14 events lost", (unsigned long long)L.nev[hit]);
				assert_non_null(strstr(line, want));
			}
			free(c.ev);
		}
	}
	free(b);
}

static int setup(void **state)
{
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[300];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip_preserves_every_event),
		cmocka_unit_test(test_empty_and_interrupted),
		cmocka_unit_test(test_truncated_at_every_offset),
		cmocka_unit_test(test_every_single_bit_flip),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
