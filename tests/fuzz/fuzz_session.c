/*
 * libFuzzer target: the session file reader (sess_read_buf, what `report` runs on a file) on arbitrary
 * bytes. Every block handed to the callback must be within the limits the format promises (payload
 * ≤ SESS_MAX_RAW, EVENTS payload = nrec × 64 bytes, JSON payloads NUL-terminated), the summary must add
 * up, and the damage line must be a terminated string.
 *
 * Blocks carry a CRC-32 and a zlib stream, which random mutation almost never gets right, so inputs
 * whose first byte is odd are structured: a list of block descriptions {type u16, seq u32, nrec u32,
 * raw_len delta i8, payload_len u16, payload} that the harness compresses and checksums into a real file,
 * then damages at one spot ([1..4]: offset u16, xor byte) — so the reader's logic past the checks is
 * reached too (seq numbers, trailer totals, events, resynchronisation).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include "session/session.h"

struct acc {
	uint64_t blocks, events, bytes;
};

static int block_cb(void *ctx, enum sess_block type, uint32_t seq, const void *data, size_t len, uint32_t nrec)
{
	struct acc *a = ctx;
	const unsigned char *d = data;

	if (len > SESS_MAX_RAW || (len && !data))
		abort();
	if (type == SB_EVENTS) {
		if ((uint64_t)nrec * sizeof(struct sess_event) != len)
			abort();
		for (uint32_t i = 0; i < nrec; i++) {
			struct sess_event ev;

			memcpy(&ev, d + (size_t)i * sizeof(ev), sizeof(ev));
			a->bytes += ev.type + (unsigned char)ev.comm[15];
			(void)sess_event_name(ev.type);
		}
		a->events += nrec;
	} else if (data && d[len] != 0) {
		abort();   /* JSON payloads are NUL-terminated after len bytes */
	}
	(void)sess_block_name(type);
	a->blocks++;
	a->bytes += len ? d[len - 1] : 0;
	return 0;
}

static void put32(uint8_t *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i)); }

/* Structured input → a session file of intact (then once damaged) blocks. Returns its length. */
static size_t build_file(const uint8_t *data, size_t size, uint8_t *out, size_t cap)
{
	size_t p = 5, len = 0;
	uint16_t dmg_off;

	if (size < 5)
		return 0;
	memcpy(&dmg_off, data + 1, 2);
	while (p + 13 <= size) {
		uint16_t type, plen;
		uint32_t seq, nrec;
		int8_t delta;
		uLongf clen;

		memcpy(&type, data + p, 2);
		memcpy(&seq, data + p + 2, 4);
		memcpy(&nrec, data + p + 6, 4);
		delta = (int8_t)data[p + 10];
		memcpy(&plen, data + p + 11, 2);
		p += 13;
		if (plen > size - p)
			plen = (uint16_t)(size - p);
		clen = compressBound(plen);
		if (len + SESS_BLOCK_HDR + clen > cap)
			break;
		if (compress2(out + len + SESS_BLOCK_HDR, &clen, data + p, plen, 1) != Z_OK)
			break;
		memcpy(out + len, SESS_MAGIC, 4);
		out[len + 4] = SESS_VERSION;
		out[len + 5] = 0;
		out[len + 6] = (uint8_t)type;
		out[len + 7] = (uint8_t)(type >> 8);
		put32(out + len + 8, seq);
		put32(out + len + 12, (uint32_t)((int64_t)plen + (delta == 1 || delta == -1 ? delta : 0)));
		put32(out + len + 16, (uint32_t)clen);
		put32(out + len + 20, nrec);
		uint32_t crc = (uint32_t)crc32(0, out + len, 24);
		crc = (uint32_t)crc32(crc, out + len + SESS_BLOCK_HDR, (uInt)clen);
		put32(out + len + 24, crc);
		len += SESS_BLOCK_HDR + clen;
		p += plen;
	}
	if (len && data[4])
		out[dmg_off % len] ^= data[3] ? data[3] : 0xff;
	return len;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t file[1 << 20];
	struct sess_summary sum;
	struct acc a = { 0 };
	char line[512];
	int err;

	if (size && (data[0] & 1)) {
		size = build_file(data, size, file, sizeof(file));
		data = file;
	}
	err = sess_read_buf(data, size, block_cb, &a, &sum);
	if (err && err != -61 /* ENODATA */)
		abort();
	if (a.blocks > sum.blocks_ok || sum.events_ok != a.events || sum.file_size != size ||
	    sum.bytes_damaged > size)
		abort();
	sess_damage_line(&sum, line, sizeof(line));
	if (!memchr(line, 0, sizeof(line)))
		abort();
	(void)sess_intact(&sum);
	return 0;
}
