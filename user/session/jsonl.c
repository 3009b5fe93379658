/*
 * Reading the JSON-lines event file of `live --output` (issue 15); see jsonl.h.
 *
 * Schema 1: one object per line, the envelope keys of live's events added to what `live --json` prints, in
 * this order (live writes them so; this reader takes them in any order and ignores keys it does not know):
 *   schema, seq, ts, host, vm, vm_pid, vm_uuid, boot_id, time, t, vcpu, event, then
 *   switch, fork, exec, exit, rename, restart:  pid, tgid, ppid, comm,
 *       switch: prev_pid, sampled;  exec: uid, euid, argv, argv_truncated;  then task ("0x...")
 *   lost:  count, pids, range ([first, last]; no pid, tgid, ppid, comm or task; vcpu null)
 * Required: schema, seq, ts, vm, vm_pid, event; pid, tgid, ppid, comm (lost: count, range); switch: vcpu and
 * prev_pid. Checked where present: host, vm_uuid, boot_id (string or null), time (string), t (number), vcpu,
 * task, uid, euid, argv, argv_truncated, pids. "ts" (UTC, RFC 3339 with nanoseconds) is the event's time;
 * "time" (local wall clock, microseconds) and "t" (seconds since the trace started) only say it again.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <json-c/json.h>
#include "mem/observe.h"
#include "session/jsonl.h"

#define JSONL_DEPTH 8   /* the deepest real line: an object holding argv (2) */

struct rd {
	struct jsonl_summary *s;
	const char *name;         /* file name for messages, NULL: only one file */
	uint64_t lineno;
	char why[200];
};

int jsonl_sniff(const char *path)
{
	FILE *f = fopen(path, "rb");
	int ch, kind = JSONL_KIND_EMPTY, err;
	char magic[4];

	if (!f)
		return -errno;
	if (fread(magic, 1, 4, f) == 4 && !memcmp(magic, SESS_MAGIC, 4)) {
		fclose(f);
		return JSONL_KIND_SESSION;
	}
	rewind(f);
	while ((ch = getc(f)) != EOF) {
		if (ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n') {
			kind = JSONL_KIND_BLANK;
			continue;
		}
		kind = ch == '{' ? JSONL_KIND_JSONL : JSONL_KIND_OTHER;
		break;
	}
	err = ferror(f) ? (errno ? -errno : -EIO) : 0;
	fclose(f);
	return err ? err : kind;
}

static const char *fail(struct rd *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static const char *fail(struct rd *r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(r->why, sizeof(r->why), fmt, ap);
	va_end(ap);
	return r->why;
}

static const char *type_name(enum json_type t)
{
	switch (t) {
	case json_type_int: return "an integer";
	case json_type_string: return "a string";
	case json_type_array: return "an array";
	case json_type_boolean: return "a boolean";
	case json_type_double: return "a number";
	default: return "of the expected type";
	}
}

/* Member k of type t (null too when null_ok; absent too when !required, *x = NULL then): NULL, or why not. */
static const char *member(struct rd *r, struct json_object *o, const char *k, enum json_type t, bool null_ok,
			  bool required, struct json_object **x)
{
	*x = NULL;
	if (!json_object_object_get_ex(o, k, x))
		return required ? fail(r, "no \"%s\"", k) : NULL;
	if (!*x ? null_ok : json_object_is_type(*x, t) || (t == json_type_double && json_object_is_type(*x, json_type_int)))
		return NULL;
	return fail(r, "\"%s\" is not %s%s", k, type_name(t), null_ok ? " or null" : "");
}

/* An integer member in [lo, hi] (required; null_ok: *v = def when null or absent). */
static const char *int_member(struct rd *r, struct json_object *o, const char *k, int64_t lo, int64_t hi, bool null_ok,
			      int64_t def, int64_t *v)
{
	struct json_object *x;
	const char *why = member(r, o, k, json_type_int, null_ok, !null_ok, &x);

	*v = def;
	if (why || !x)
		return why;
	*v = json_object_get_int64(x);
	return *v < lo || *v > hi ? fail(r, "\"%s\" %" PRId64 " out of range", k, *v) : NULL;
}

static int digits(const char *s, int n)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

/* RFC 3339 "YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM)" into ns since the epoch (1970..2261). */
static bool parse_ts(const char *s, uint64_t *ns)
{
	static const int mdays[12] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	int y = digits(s, 4), mo, d, h, mi, sec, off = 0;
	int64_t frac = 0, t;
	const char *p;

	if (strnlen(s, 19) < 19)
		return false;
	if (y < 1970 || y > 2261 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't') || s[13] != ':' ||
	    s[16] != ':')
		return false;
	mo = digits(s + 5, 2), d = digits(s + 8, 2), h = digits(s + 11, 2), mi = digits(s + 14, 2);
	sec = digits(s + 17, 2);
	if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || (mo == 2 && d == 29 && (y % 4 || (y % 100 == 0 && y % 400))) ||
	    h < 0 || h > 23 || mi < 0 || mi > 59 || sec < 0 || sec > 60)
		return false;
	p = s + 19;
	if (*p == '.') {
		int n = 0;

		for (p++; *p >= '0' && *p <= '9'; p++, n++)
			if (n < 9)
				frac = frac * 10 + (*p - '0');
		if (!n)
			return false;
		for (; n < 9; n++)
			frac *= 10;
	}
	if ((*p == 'Z' || *p == 'z') && !p[1]) {
		off = 0;
	} else if ((*p == '+' || *p == '-') && digits(p + 1, 2) >= 0 && digits(p + 1, 2) < 24 && p[3] == ':' &&
		   digits(p + 4, 2) >= 0 && digits(p + 4, 2) < 60 && !p[6]) {
		off = (digits(p + 1, 2) * 60 + digits(p + 4, 2)) * (*p == '+' ? 1 : -1);
	} else {
		return false;
	}
	t = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - off * 60;
	if (t < 0)
		return false;
	*ns = (uint64_t)t * 1000000000u + (uint64_t)frac;
	return true;
}

/* "0x" and 1 to 16 hex digits. */
static bool parse_task(const char *s, uint64_t *v)
{
	size_t n = 0;

	*v = 0;
	if (s[0] != '0' || (s[1] != 'x' && s[1] != 'X'))
		return false;
	for (s += 2; *s; s++, n++) {
		int c = *s >= '0' && *s <= '9' ? *s - '0' : (*s | 0x20) >= 'a' && (*s | 0x20) <= 'f' ? (*s | 0x20) - 'a' + 10 : -1;

		if (c < 0 || n >= 16)
			return false;
		*v = *v << 4 | (uint64_t)c;
	}
	return n > 0;
}

static void track_seq(struct jsonl_summary *s, uint64_t seq)
{
	if (!s->have_seq) {
		s->have_seq = true;
		s->first_seq = seq;
	} else if (seq > s->last_seq + 1) {
		s->missing += seq - s->last_seq - 1;
	} else if (seq <= s->last_seq) {
		s->backwards++;   /* another run, or files out of order: what came before is not "missing" */
	}
	if (seq < s->first_seq)
		s->first_seq = seq;
	s->last_seq = seq;
}

/* What one line says besides the event, applied only once the whole line checked out. */
struct line_vm {
	int64_t vm_pid, vcpu;
	const char *name, *uuid, *boot_id, *host;
	bool have_t;
	double t;
};

/* The members of a switch, fork, exec, exit, rename or restart event. */
static const char *task_event(struct rd *r, struct json_object *o, struct sess_event *ev)
{
	struct json_object *x;
	const char *why;
	int64_t v;

	if ((why = int_member(r, o, "pid", ev->type == SEV_RESTART ? -1 : 0, JSONL_PID_MAX, false, 0, &v)))
		return why;
	ev->pid = (int32_t)v;
	if ((why = int_member(r, o, "tgid", -1, JSONL_PID_MAX, false, 0, &v)))
		return why;
	ev->tgid = (int32_t)v;
	if ((why = int_member(r, o, "ppid", -1, JSONL_PID_MAX, false, 0, &v)))
		return why;
	ev->ppid = (int32_t)v;
	if ((why = member(r, o, "comm", json_type_string, false, true, &x)))
		return why;
	memcpy(ev->comm, json_object_get_string(x), (size_t)json_object_get_string_len(x) < 16 ?
	       (size_t)json_object_get_string_len(x) : 16);
	if (ev->type == SEV_SWITCH) {
		if ((why = int_member(r, o, "prev_pid", -1, JSONL_PID_MAX, false, 0, &v)) ||
		    (why = member(r, o, "sampled", json_type_boolean, false, false, &x)))
			return why;
		ev->prev_pid = (int32_t)v;
	}
	if (ev->type == SEV_EXEC) {
		if ((why = int_member(r, o, "uid", 0, UINT32_MAX, true, 0, &v)) ||
		    (why = int_member(r, o, "euid", 0, UINT32_MAX, true, 0, &v)) ||
		    (why = member(r, o, "argv_truncated", json_type_boolean, false, false, &x)) ||
		    (why = member(r, o, "argv", json_type_array, true, false, &x)))
			return why;
		for (size_t i = 0; x && i < json_object_array_length(x); i++)
			if (!json_object_is_type(json_object_array_get_idx(x, i), json_type_string))
				return fail(r, "\"argv\" holds a non-string");
	}
	if ((why = member(r, o, "task", json_type_string, false, false, &x)))
		return why;
	if (x && !parse_task(json_object_get_string(x), &ev->task))
		return fail(r, "\"task\" is not a hex address");
	return NULL;
}

static const char *lost_event(struct rd *r, struct json_object *o, struct sess_event *ev)
{
	struct json_object *x, *a, *b;
	const char *why;
	int64_t count, first, last;

	if ((why = int_member(r, o, "count", 0, JSONL_PID_MAX + 1, false, 0, &count)) ||
	    (why = member(r, o, "pids", json_type_array, false, false, &x)) ||
	    (why = member(r, o, "range", json_type_array, false, true, &x)))
		return why;
	if (json_object_array_length(x) != 2 || !json_object_is_type(a = json_object_array_get_idx(x, 0), json_type_int) ||
	    !json_object_is_type(b = json_object_array_get_idx(x, 1), json_type_int))
		return fail(r, "\"range\" is not [first, last]");
	first = json_object_get_int64(a);
	last = json_object_get_int64(b);
	if (first < 0 || first > last || last > JSONL_PID_MAX)
		return fail(r, "\"range\" [%" PRId64 ", %" PRId64 "] is not a range of pids", first, last);
	if (count != last - first + 1)
		return fail(r, "\"count\" %" PRId64 " does not match \"range\" [%" PRId64 ", %" PRId64 "]", count, first,
			    last);
	ev->pid = (int32_t)first;   /* as a session's LOST event: pid..prev_pid */
	ev->prev_pid = (int32_t)last;
	ev->tgid = ev->ppid = -1;
	return NULL;
}

/* The envelope and the event of one parsed line into ev and lv: NULL, or why the line is skipped. */
static const char *check_line(struct rd *r, struct json_object *o, struct sess_event *ev, struct line_vm *lv)
{
	struct json_object *x;
	const char *why;
	int64_t schema, seq;

	if (!json_object_is_type(o, json_type_object))
		return "not a JSON object";
	if ((why = member(r, o, "schema", json_type_int, false, true, &x)))
		return why;
	schema = json_object_get_int64(x);
	if (schema > JSONL_SCHEMA) {
		if (!int_member(r, o, "seq", 1, INT64_MAX, false, 0, &seq))
			track_seq(r->s, (uint64_t)seq);   /* its events are not missing, only unread */
		if (!r->s->newer++)
			r->s->newer_schema = schema;
		return fail(r, "schema %" PRId64 " is newer than this reader (%d)", schema, JSONL_SCHEMA);
	}
	if (schema < 1)
		return fail(r, "schema %" PRId64 " unknown", schema);
	if ((why = int_member(r, o, "seq", 1, INT64_MAX, false, 0, &seq)))
		return why;
	track_seq(r->s, (uint64_t)seq);   /* a line skipped from here on is damaged, not missing */
	if ((why = member(r, o, "ts", json_type_string, false, true, &x)))
		return why;
	if (!parse_ts(json_object_get_string(x), &ev->time_ns))
		return fail(r, "\"ts\" is not an RFC 3339 time");
	if ((why = member(r, o, "event", json_type_string, false, true, &x)))
		return why;
	for (unsigned t = SEV_SWITCH; t < SEV_NR && !ev->type; t++)
		if (!strcmp(json_object_get_string(x), sess_event_name(t)))
			ev->type = (uint16_t)t;
	if (!ev->type)
		return fail(r, "unknown event \"%.32s\"", json_object_get_string(x));
	if ((why = member(r, o, "vm", json_type_string, false, true, &x)))
		return why;
	lv->name = json_object_get_string(x);
	if ((why = int_member(r, o, "vm_pid", 1, JSONL_PID_MAX, false, 0, &lv->vm_pid)) ||
	    (why = int_member(r, o, "vcpu", 0, VMOT_MAX_VCPUS - 1, true, -1, &lv->vcpu)))
		return why;
	if (ev->type == SEV_SWITCH && lv->vcpu < 0)
		return "a switch without a vcpu";
	if (ev->type == SEV_LOST)
		lv->vcpu = -1;   /* null in what live writes: a lost range belongs to no vCPU */
	ev->vcpu = lv->vcpu < 0 ? SESS_VCPU_NONE : (uint32_t)lv->vcpu;
	if ((why = member(r, o, "host", json_type_string, false, false, &x)))
		return why;
	lv->host = x ? json_object_get_string(x) : NULL;
	if ((why = member(r, o, "vm_uuid", json_type_string, true, false, &x)))
		return why;
	lv->uuid = x ? json_object_get_string(x) : NULL;
	if ((why = member(r, o, "boot_id", json_type_string, true, false, &x)))
		return why;
	lv->boot_id = x ? json_object_get_string(x) : NULL;
	if ((why = member(r, o, "time", json_type_string, false, false, &x)) ||
	    (why = member(r, o, "t", json_type_double, false, false, &x)))
		return why;
	lv->have_t = x != NULL;
	lv->t = x ? json_object_get_double(x) : 0;
	return ev->type == SEV_LOST ? lost_event(r, o, ev) : task_event(r, o, ev);
}

static int vm_index(struct jsonl_summary *s, int64_t pid)
{
	for (size_t i = 0; i < s->nvms; i++)
		if (s->vms[i].pid == pid)
			return (int)i;
	return s->nvms < JSONL_MAX_VMS ? (int)s->nvms : -1;
}

/* A checked line's VM, host and time into the summary. */
static void apply(struct rd *r, struct sess_event *ev, const struct line_vm *lv, int vm)
{
	struct jsonl_summary *s = r->s;
	struct jsonl_vm *v = &s->vms[vm];

	if ((size_t)vm == s->nvms) {
		s->nvms++;
		v->pid = (int32_t)lv->vm_pid;
		snprintf(v->name, sizeof(v->name), "%s", lv->name);
	}
	ev->vm = (uint32_t)vm;
	if (lv->uuid && !v->uuid[0])
		snprintf(v->uuid, sizeof(v->uuid), "%s", lv->uuid);
	if (lv->boot_id && strncmp(v->boot_id, lv->boot_id, sizeof(v->boot_id) - 1)) {
		snprintf(v->boot_id, sizeof(v->boot_id), "%s", lv->boot_id);
		v->boots++;
	}
	if (lv->vcpu >= 0 && (uint32_t)lv->vcpu + 1 > v->nvcpus)
		v->nvcpus = (uint32_t)lv->vcpu + 1;
	v->events++;
	if (lv->host && !s->host[0])
		snprintf(s->host, sizeof(s->host), "%s", lv->host);
	else if (lv->host && strncmp(s->host, lv->host, sizeof(s->host) - 1))
		s->hosts_differ = true;
	if (!s->events && lv->have_t && lv->t >= 0 && lv->t * 1e9 <= (double)ev->time_ns) {
		s->have_t0 = true;
		s->t0_ns = ev->time_ns - (uint64_t)(lv->t * 1e9 + 0.5);
	} else if (!s->events) {
		s->have_t0 = true;
		s->t0_ns = ev->time_ns;
	}
	if (s->events && ev->time_ns < s->last_time_ns)
		s->time_backwards = true;
	s->last_time_ns = ev->time_ns;
}

static void skip(struct rd *r, const char *why, bool newer)
{
	struct jsonl_summary *s = r->s;

	if (!s->skipped++) {
		if (r->name)
			snprintf(s->first_skip, sizeof(s->first_skip), "%s:%" PRIu64 ": %s", r->name, r->lineno, why);
		else
			snprintf(s->first_skip, sizeof(s->first_skip), "line %" PRIu64 ": %s", r->lineno, why);
		s->first_skip_newer = newer;
	}
}

/* One non-blank line (len bytes, NUL-terminated; cut: the file ended inside it): 0, or the callback's value. */
static int one_line(struct rd *r, struct json_tokener *tok, const char *line, size_t len, bool cut,
		    jsonl_event_fn fn, void *ctx)
{
	struct sess_event ev = { .prev_pid = -1 };
	struct line_vm lv = { .vcpu = -1 };
	struct json_object *o;
	enum json_tokener_error jerr;
	const char *why;
	uint64_t newer = r->s->newer;
	int vm, ret;

	if (memchr(line, 0, len)) {
		skip(r, "a NUL byte in the line", false);
		return 0;
	}
	json_tokener_reset(tok);
	o = json_tokener_parse_ex(tok, line, (int)len);
	jerr = json_tokener_get_error(tok);
	if (!o || jerr != json_tokener_success) {
		json_object_put(o);
		if (cut)
			skip(r, "the last line is cut short (no newline at the end)", false);
		else
			skip(r, fail(r, "not valid JSON (%s)", jerr == json_tokener_continue ? "incomplete" :
				     json_tokener_error_desc(jerr)), false);
		return 0;
	}
	if (strspn(line + json_tokener_get_parse_end(tok), " \t") != len - json_tokener_get_parse_end(tok)) {
		json_object_put(o);
		skip(r, "text after the JSON object", false);
		return 0;
	}
	why = check_line(r, o, &ev, &lv);
	vm = why ? -1 : vm_index(r->s, lv.vm_pid);
	if (!why && vm < 0)
		why = fail(r, "vm_pid %" PRId64 ": more than %d VMs", lv.vm_pid, JSONL_MAX_VMS);
	if (why) {
		json_object_put(o);
		skip(r, why, r->s->newer != newer);
		return 0;
	}
	apply(r, &ev, &lv, vm);
	ret = fn(ctx, &ev, o);
	json_object_put(o);
	if (!ret)
		r->s->events++;
	return ret;
}

void jsonl_summary_init(struct jsonl_summary *sum)
{
	memset(sum, 0, sizeof(*sum));
}

int jsonl_read_stream(FILE *f, const char *name, jsonl_event_fn fn, void *ctx, struct jsonl_summary *sum)
{
	struct rd r = { .s = sum, .name = name };
	struct json_tokener *tok = json_tokener_new_ex(JSONL_DEPTH);
	size_t cap = 4096, len = 0;
	char *buf = malloc(cap);
	bool longer = false;
	int ch = 0, ret = 0;

	sum->files++;
	if (!tok || !buf) {
		ret = -ENOMEM;
		goto out;
	}
	while (!ret && ch != EOF) {
		ch = getc_unlocked(f);
		if (ch != EOF && ch != '\n') {
			if (len >= JSONL_MAX_LINE) {
				longer = true;   /* read on to the newline, keep nothing */
			} else {
				if (len + 1 >= cap) {
					char *n = realloc(buf, cap * 2);

					if (!n) {
						ret = -ENOMEM;
						break;
					}
					buf = n;
					cap *= 2;
				}
				buf[len++] = (char)ch;
			}
			continue;
		}
		if (ch == EOF && !len && !longer)
			break;
		r.lineno++;
		if (len && buf[len - 1] == '\r')
			len--;
		buf[len] = 0;
		if (longer) {
			sum->lines++;
			skip(&r, fail(&r, "longer than %u bytes", JSONL_MAX_LINE), false);
		} else if (strspn(buf, " \t") != len) {   /* a NUL byte stops strspn too: not blank */
			sum->lines++;
			ret = one_line(&r, tok, buf, len, ch == EOF, fn, ctx);
		}
		len = 0;
		longer = false;
	}
	if (!ret && ferror(f))
		ret = -EIO;
out:
	if (tok)
		json_tokener_free(tok);
	free(buf);
	return ret;
}

int jsonl_read_files(const char *const *paths, size_t n, jsonl_event_fn fn, void *ctx, struct jsonl_summary *sum,
		     size_t *bad)
{
	int ret = 0;

	jsonl_summary_init(sum);
	*bad = 0;
	for (size_t i = 0; i < n && !ret; i++) {
		FILE *f = fopen(paths[i], "rb");

		if (!f) {
			*bad = i;
			return -errno;
		}
		ret = jsonl_read_stream(f, n > 1 ? paths[i] : NULL, fn, ctx, sum);
		if (ret == -EIO)
			*bad = i;
		fclose(f);
	}
	return ret ? ret : sum->events ? 0 : -ENODATA;
}

bool jsonl_note(const struct jsonl_summary *s, enum jsonl_note which, char *buf, size_t len)
{
	buf[0] = 0;
	switch (which) {
	case JSONL_NOTE_SKIPPED:
		if (!s->skipped)
			return false;
		snprintf(buf, len, "%" PRIu64 " line(s) skipped: %s", s->skipped, s->first_skip);
		return true;
	case JSONL_NOTE_NEWER:
		if (!s->newer || s->first_skip_newer)
			return false;
		snprintf(buf, len, "schema %" PRId64 " is newer than this reader (%d): %" PRIu64 " line(s) skipped",
			 s->newer_schema, JSONL_SCHEMA, s->newer);
		return true;
	case JSONL_NOTE_ROTATED:
		if (!s->have_seq || s->first_seq <= 1)
			return false;
		snprintf(buf, len, "events before seq %" PRIu64 " are not in %s (rotated out?)", s->first_seq,
			 s->files > 1 ? "these files" : "this file");
		return true;
	case JSONL_NOTE_GAPS:
		if (!s->missing)
			return false;
		snprintf(buf, len, "%" PRIu64 " event(s) missing (gaps in seq)", s->missing);
		return true;
	case JSONL_NOTE_BACKWARDS:
		if (!s->backwards)
			return false;
		snprintf(buf, len, "seq went back %" PRIu64 " time(s) (files concatenated out of order, or several runs "
			 "of live in one file): events taken in time order", s->backwards);
		return true;
	default:
		return false;
	}
}

int jsonl_sort_events(struct sess_event *ev, size_t n)
{
	struct sess_event *tmp;

	if (n < 2)
		return 0;
	tmp = malloc(n * sizeof(*tmp));
	if (!tmp)
		return -ENOMEM;
	for (size_t w = 1; w < n; w *= 2) {   /* bottom-up merge sort: equal times keep their order */
		for (size_t lo = 0; lo < n; lo += 2 * w) {
			size_t mid = lo + w < n ? lo + w : n, hi = lo + 2 * w < n ? lo + 2 * w : n, i = lo, j = mid, k = lo;

			while (i < mid && j < hi)
				tmp[k++] = ev[j].time_ns < ev[i].time_ns ? ev[j++] : ev[i++];
			while (i < mid)
				tmp[k++] = ev[i++];
			while (j < hi)
				tmp[k++] = ev[j++];
		}
		memcpy(ev, tmp, n * sizeof(*ev));
	}
	free(tmp);
	return 0;
}
