/* Session file blocks: writer and damage-tolerant reader; see session.h for the format. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <json-c/json.h>
#include <zlib.h>
#include "common/json_writer.h"
#include "session/session.h"

const char *sess_event_name(unsigned type)
{
	static const char *const n[SEV_NR] = {
		[SEV_SWITCH] = "switch", [SEV_FORK] = "fork", [SEV_EXEC] = "exec", [SEV_EXIT] = "exit",
		[SEV_RENAME] = "rename", [SEV_RESTART] = "restart", [SEV_LOST] = "lost",
	};
	return type < SEV_NR && n[type] ? n[type] : "?";
}

const char *sess_block_name(unsigned type)
{
	static const char *const n[SB_NR] = {
		[SB_HEADER] = "header", [SB_VM] = "vm", [SB_EVENTS] = "events", [SB_COUNTERS] = "counters",
		[SB_TRAILER] = "trailer", [SB_SCHED] = "sched", [SB_EXEC] = "exec",
	};
	return type < SB_NR && n[type] ? n[type] : "?";
}

static void put16(uint8_t *p, uint16_t v) { p[0] = v; p[1] = v >> 8; }
static void put32(uint8_t *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = v >> (8 * i); }
static uint16_t get16(const uint8_t *p) { return p[0] | p[1] << 8; }
static uint32_t get32(const uint8_t *p) { return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24; }

/* ------------------------------------------------------------------------------------------------ */

struct sess_writer {
	int fd;
	uint32_t seq;
	uint64_t events;
	struct sess_event *pend;
	size_t npend;
	uint8_t *zbuf;
	size_t zcap;
	int err;              /* first write error: later writes fail fast */
};

static int write_all(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int write_block(struct sess_writer *w, enum sess_block type, const void *raw, size_t raw_len, uint32_t nrec)
{
	uLongf clen;
	uint8_t *blk;
	uint32_t crc;
	int err;

	if (w->err)
		return w->err;
	if (raw_len > SESS_MAX_RAW)
		return -E2BIG;
	clen = compressBound(raw_len);
	if (SESS_BLOCK_HDR + clen > w->zcap) {
		uint8_t *n = realloc(w->zbuf, SESS_BLOCK_HDR + clen);
		if (!n)
			return -ENOMEM;
		w->zbuf = n;
		w->zcap = SESS_BLOCK_HDR + clen;
	}
	blk = w->zbuf;
	if (compress2(blk + SESS_BLOCK_HDR, &clen, raw, raw_len, Z_DEFAULT_COMPRESSION) != Z_OK)
		return -EIO;
	memcpy(blk, SESS_MAGIC, 4);
	put16(blk + 4, SESS_VERSION);
	put16(blk + 6, type);
	put32(blk + 8, w->seq);
	put32(blk + 12, (uint32_t)raw_len);
	put32(blk + 16, (uint32_t)clen);
	put32(blk + 20, nrec);
	crc = crc32(0, blk, 24);
	crc = crc32(crc, blk + SESS_BLOCK_HDR, clen);
	put32(blk + 24, crc);
	/* one write per block: a kill between blocks leaves whole blocks only */
	err = write_all(w->fd, blk, SESS_BLOCK_HDR + clen);
	if (err) {
		w->err = err;
		return err;
	}
	w->seq++;
	return 0;
}

int sess_create(const char *path, const char *header_json, struct sess_writer **out)
{
	struct sess_writer *w = calloc(1, sizeof(*w));
	int err;

	*out = NULL;
	if (!w)
		return -ENOMEM;
	w->pend = calloc(SESS_BLOCK_EVENTS, sizeof(*w->pend));
	if (!w->pend) {
		free(w);
		return -ENOMEM;
	}
	w->fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (w->fd < 0) {
		err = -errno;
		free(w->pend);
		free(w);
		return err;
	}
	err = write_block(w, SB_HEADER, header_json, strlen(header_json), 0);
	if (err) {
		sess_abort(w);
		return err;
	}
	*out = w;
	return 0;
}

int sess_flush(struct sess_writer *w)
{
	int err;

	if (!w->npend)
		return w->err;
	err = write_block(w, SB_EVENTS, w->pend, w->npend * sizeof(*w->pend), (uint32_t)w->npend);
	if (!err) {
		w->events += w->npend;
		w->npend = 0;
	}
	return err;
}

int sess_add_event(struct sess_writer *w, const struct sess_event *ev)
{
	if (w->err)
		return w->err;
	w->pend[w->npend++] = *ev;
	return w->npend == SESS_BLOCK_EVENTS ? sess_flush(w) : 0;
}

int sess_write_json(struct sess_writer *w, enum sess_block type, const char *json)
{
	int err = sess_flush(w);

	return err ? err : write_block(w, type, json, strlen(json), 0);
}

int sess_write_sched(struct sess_writer *w, const struct sess_sched_hdr *h, const struct sess_sched_rec *r)
{
	size_t len = sizeof(*h) + (size_t)h->n * sizeof(*r);
	uint8_t *buf;
	int err = sess_flush(w);

	if (err)
		return err;
	if (len > SESS_MAX_RAW)
		return -E2BIG;
	buf = malloc(len);
	if (!buf)
		return -ENOMEM;
	memcpy(buf, h, sizeof(*h));
	if (h->n)
		memcpy(buf + sizeof(*h), r, (size_t)h->n * sizeof(*r));
	err = write_block(w, SB_SCHED, buf, len, 0);
	free(buf);
	return err;
}

int sess_sched_parse(const void *data, size_t len, struct sess_sched_hdr *h, const struct sess_sched_rec **r)
{
	if (len < sizeof(*h))
		return -EINVAL;
	memcpy(h, data, sizeof(*h));
	if ((len - sizeof(*h)) % sizeof(**r) || (len - sizeof(*h)) / sizeof(**r) != h->n)
		return -EINVAL;
	*r = (const struct sess_sched_rec *)((const uint8_t *)data + sizeof(*h));
	return 0;
}

uint64_t sess_writer_events(const struct sess_writer *w)
{
	return w->events + w->npend;
}

static void writer_free(struct sess_writer *w)
{
	if (w->fd >= 0)
		close(w->fd);
	free(w->pend);
	free(w->zbuf);
	free(w);
}

struct trailer { const struct sess_writer *w; double duration_s; const char *stopped; };

static void trailer_fill(json_writer_t *j, void *arg)
{
	const struct trailer *t = arg;

	jsonw_start_object(j);
	jsonw_u64_field(j, "events", t->w->events);
	jsonw_u64_field(j, "blocks", t->w->seq + 1);   /* every block, this trailer included */
	jsonw_bool_field(j, "clean", true);
	if (t->duration_s >= 0)
		jsonw_float_field_fmt(j, "duration_s", "%.3f", t->duration_s);
	if (t->stopped)
		jsonw_string_field(j, "stopped", t->stopped);
	jsonw_end_object(j);
}

int sess_close(struct sess_writer *w, double duration_s, const char *stopped)
{
	struct trailer tr = { w, duration_s, stopped };
	int err = sess_flush(w);

	if (!err) {
		char *t = jsonw_text(trailer_fill, &tr);

		err = !t ? -ENOMEM : write_block(w, SB_TRAILER, t, strlen(t), 0);
		free(t);
	}
	if (!err && fsync(w->fd) && errno != EINVAL)
		err = -errno;
	if (close(w->fd) && !err)
		err = -errno;
	w->fd = -1;
	writer_free(w);
	return err;
}

void sess_abort(struct sess_writer *w)
{
	if (w)
		writer_free(w);
}

/* ------------------------------------------------------------------------------------------------ */

/* Check the block at p (avail bytes to EOF). Returns its total size, 0 if it is not an intact block;
 * *short_read set when the header is plausible but the block runs past EOF. */
static size_t block_check(const uint8_t *p, size_t avail, bool *short_read)
{
	uint32_t raw_len, comp_len, crc;

	*short_read = false;
	if (avail < 4 || memcmp(p, SESS_MAGIC, 4))
		return 0;
	if (avail < SESS_BLOCK_HDR) {
		*short_read = true;
		return 0;
	}
	raw_len = get32(p + 12);
	comp_len = get32(p + 16);
	if (raw_len > SESS_MAX_RAW || comp_len > compressBound(SESS_MAX_RAW) || get16(p + 4) != SESS_VERSION)
		return 0;
	if (comp_len > avail - SESS_BLOCK_HDR) {
		*short_read = true;
		return 0;
	}
	crc = crc32(0, p, 24);
	crc = crc32(crc, p + SESS_BLOCK_HDR, comp_len);
	return crc == get32(p + 24) ? SESS_BLOCK_HDR + comp_len : 0;
}

/* A non-negative integer member of a JSON object read from the file (untrusted): 0 when absent or not one. */
static uint64_t json_u64(struct json_object *o, const char *key)
{
	struct json_object *v;

	if (!o || !json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_int))
		return 0;
	return json_object_get_uint64(v);
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

int sess_read_buf(const void *buf, size_t len, sess_block_fn fn, void *ctx, struct sess_summary *sum)
{
	const uint8_t *b = buf;
	uint8_t *raw = NULL;
	size_t pos = 0, rawcap = 0, bad_start = 0;
	bool in_bad = false, seen_seq = false;
	uint32_t *seqs = NULL;  /* seq numbers read, one per intact block: O(blocks), whatever values the
				 * file claims (a bitmap indexed by seq let one crafted block cost 64 MiB) */
	size_t nseqs = 0, seqcap = 0;
	int ret = 0;

	memset(sum, 0, sizeof(*sum));
	sum->file_size = len;
	while (pos < len) {
		bool short_read;
		size_t blen = block_check(b + pos, len - pos, &short_read);
		const uint8_t *next;

		if (blen) {
			uint32_t raw_len = get32(b + pos + 12), type = get16(b + pos + 6), seq = get32(b + pos + 8);
			uint32_t nrec = get32(b + pos + 20);
			uLongf out = raw_len;

			if (raw_len + 1 > rawcap) {
				uint8_t *n = realloc(raw, raw_len + 1);
				if (!n) {
					ret = -ENOMEM;
					break;
				}
				raw = n;
				rawcap = raw_len + 1;
			}
			if (uncompress(raw, &out, b + pos + SESS_BLOCK_HDR, get32(b + pos + 16)) != Z_OK ||
			    out != raw_len || (type == SB_EVENTS && (uint64_t)nrec * sizeof(struct sess_event) != raw_len)) {
				blen = 0;   /* CRC matched but the content is not what the header says: damaged */
			} else {
				raw[raw_len] = 0;
				if (in_bad) {
					sum->damaged++;
					sum->bytes_damaged += pos - bad_start;
					in_bad = false;
				}
				sum->blocks_ok++;
				if (type == SB_EVENTS)
					sum->events_ok += nrec;
				else if (type == SB_HEADER)
					sum->header = true;
				else if (type == SB_TRAILER) {
					struct json_object *t = json_tokener_parse((char *)raw);

					sum->trailer = true;
					sum->trailer_events = json_u64(t, "events");
					sum->trailer_blocks = (uint32_t)json_u64(t, "blocks");
					json_object_put(t);
				}
				if (!seen_seq || seq > sum->max_seq)
					sum->max_seq = seq;
				seen_seq = true;
				if (nseqs == seqcap) {
					size_t ncap = seqcap ? seqcap * 2 : 64;
					uint32_t *n = realloc(seqs, ncap * sizeof(*n));
					if (n) {
						seqs = n;
						seqcap = ncap;
					}
				}
				if (nseqs < seqcap)
					seqs[nseqs++] = seq;
				if (fn && type < SB_NR) {
					ret = fn(ctx, type, seq, raw, raw_len, type == SB_EVENTS ? nrec : 0);
					if (ret)
						break;
				}
				pos += blen;
				continue;
			}
		}
		/* not a block here: damage from here to the next magic that starts an intact block */
		if (!in_bad) {
			in_bad = true;
			bad_start = pos;
			if (!sum->damaged)
				sum->first_damage = pos;
		}
		next = memmem(b + pos + 1, len - pos - 1, SESS_MAGIC, 4);
		pos = next ? (size_t)(next - b) : len;
	}
	if (in_bad) {
		sum->damaged++;
		sum->bytes_damaged += len - bad_start;
		sum->truncated = true;
	}
	if (seen_seq) {
		/* seq numbers come from the file (up to 2^32 - 1): count the distinct ones read up to the top
		 * rather than test every number below it */
		uint64_t top = sum->max_seq, have = 0;
		if (sum->trailer && sum->trailer_blocks > top + 1)
			top = sum->trailer_blocks - 1;
		if (nseqs)
			qsort(seqs, nseqs, sizeof(*seqs), cmp_u32);
		for (size_t i = 0; i < nseqs; i++)
			have += (!i || seqs[i] != seqs[i - 1]) && seqs[i] <= top;
		sum->seq_missing = top + 1 - have > UINT32_MAX ? UINT32_MAX : (uint32_t)(top + 1 - have);
	}
	free(seqs);
	free(raw);
	if (!ret && !sum->blocks_ok)
		ret = -ENODATA;
	return ret;
}

int sess_read_file(const char *path, sess_block_fn fn, void *ctx, struct sess_summary *sum)
{
	struct stat st;
	void *map;
	int fd, ret;

	memset(sum, 0, sizeof(*sum));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st)) {
		ret = -errno;
		close(fd);
		return ret;
	}
	if (!st.st_size) {
		close(fd);
		return -ENODATA;
	}
	map = mmap(NULL, st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	ret = map == MAP_FAILED ? -errno : 0;
	close(fd);
	if (ret)
		return ret;
	ret = sess_read_buf(map, st.st_size, fn, ctx, sum);
	munmap(map, st.st_size);
	return ret;
}

bool sess_intact(const struct sess_summary *s)
{
	return !s->damaged && s->header && s->trailer && !s->seq_missing && s->trailer_events == s->events_ok &&
	       s->trailer_blocks == s->blocks_ok;
}

void sess_damage_line(const struct sess_summary *s, char *buf, size_t len)
{
	size_t n = 0;

#define ADD(...) do { if (n < len) n += snprintf(buf + n, len - n, __VA_ARGS__); } while (0)
	buf[0] = 0;
	if (sess_intact(s))
		return;
	if (!s->blocks_ok) {
		ADD("nothing readable: no intact block in %" PRIu64 " bytes", s->file_size);
		return;
	}
	if (s->damaged) {
		ADD("%" PRIu64 " of %" PRIu64 " bytes unreadable in %u region(s) from byte %" PRIu64, s->bytes_damaged,
		    s->file_size, s->damaged, s->first_damage);
		if (s->seq_missing)
			ADD(", %u block(s) lost", s->seq_missing);
		if (s->trailer && s->trailer_events >= s->events_ok)
			ADD(", %" PRIu64 " of %" PRIu64 " events lost", s->trailer_events - s->events_ok, s->trailer_events);
		else if (s->truncated)
			ADD(", %s", s->trailer ? "events lost: unknown" : "file cut mid-block");
		ADD("; ");
	} else if (s->seq_missing) {
		ADD("%u block(s) missing; ", s->seq_missing);
	}
	if (!s->header)
		ADD("header lost; ");
	if (!s->trailer)
		ADD("no trailer (recording interrupted or trailer lost): an unknown number of later events missing; ");
	else if (!s->damaged && s->trailer_events != s->events_ok)
		ADD("trailer counts %" PRIu64 " events, %" PRIu64 " read; ", s->trailer_events, s->events_ok);
	ADD("%" PRIu64 " events in %u intact block(s) read", s->events_ok, s->blocks_ok);
#undef ADD
}

void sess_vm_id_parse(struct json_object *j, struct sess_vm_id *out)
{
	struct json_object *x;
	int64_t nv = json_object_object_get_ex(j, "vcpus", &x) ? json_object_get_int64(x) : 0;

	out->index = json_object_object_get_ex(j, "index", &x) ? json_object_get_int64(x) : -1;
	out->name = json_object_object_get_ex(j, "name", &x) ? json_object_get_string(x) : "?";
	out->pid = json_object_object_get_ex(j, "pid", &x) ? (int32_t)json_object_get_int64(x) : -1;
	out->nvcpus = nv > 0 && nv < 1 << 20 ? (uint32_t)nv : 0;
	if (!out->name)
		out->name = "?";
}
