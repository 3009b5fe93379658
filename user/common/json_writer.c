/* Streaming JSON writer (bpftool's json_writer.c shape); see json_writer.h. */
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "common/json_writer.h"

bool json_pretty;

#define JSONW_MAX_DEPTH 64

struct json_writer {
	FILE *out;
	unsigned depth;
	bool pretty;
	bool have_name;   /* a name was written; the next value belongs to it */
	char sep;         /* ',' once the current container has an element */
	int errors;
	char kind[JSONW_MAX_DEPTH];  /* '{' or '[' per open container */
};

json_writer_t *jsonw_new(FILE *f)
{
	json_writer_t *w = calloc(1, sizeof(*w));

	if (!w)
		return NULL;
	w->out = f;
	w->pretty = json_pretty;
	return w;
}

void jsonw_destroy(json_writer_t **self_p)
{
	json_writer_t *w = *self_p;

	if (!w)
		return;
	fflush(w->out);
	free(w);
	*self_p = NULL;
}

void jsonw_pretty(json_writer_t *self, bool on) { self->pretty = on; }
void jsonw_flush(json_writer_t *self) { fflush(self->out); }
int jsonw_errors(const json_writer_t *self) { return self->errors; }

static void jsonw_eol(json_writer_t *w)
{
	if (!w->pretty)
		return;
	fputc('\n', w->out);
	for (unsigned i = 0; i < w->depth; i++)
		fputs("    ", w->out);
}

/* Length of the valid UTF-8 sequence at s (at most n bytes available), or 0 if invalid. */
static size_t utf8_seq_len(const unsigned char *s, size_t n)
{
	size_t len;
	uint32_t cp;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		len = 2; cp = s[0] & 0x1f;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		len = 3; cp = s[0] & 0x0f;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		len = 4; cp = s[0] & 0x07;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	/* overlong forms, surrogates, beyond U+10FFFF */
	if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

static void jsonw_puts_escaped(json_writer_t *w, const char *str, size_t max)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t n = strnlen(str, max);

	fputc('"', w->out);
	for (size_t i = 0; i < n;) {
		unsigned char c = s[i];
		size_t len;

		switch (c) {
		case '"':  fputs("\\\"", w->out); i++; continue;
		case '\\': fputs("\\\\", w->out); i++; continue;
		case '\b': fputs("\\b", w->out); i++; continue;
		case '\f': fputs("\\f", w->out); i++; continue;
		case '\n': fputs("\\n", w->out); i++; continue;
		case '\r': fputs("\\r", w->out); i++; continue;
		case '\t': fputs("\\t", w->out); i++; continue;
		}
		if (c < 0x20 || c == 0x7f) {
			fprintf(w->out, "\\u%04x", c);
			i++;
			continue;
		}
		len = utf8_seq_len(s + i, n - i);
		if (!len) {   /* not UTF-8: keep the byte's value, stay valid JSON */
			fprintf(w->out, "\\u%04x", c);
			i++;
			continue;
		}
		fwrite(s + i, 1, len, w->out);
		i += len;
	}
	fputc('"', w->out);
}

/* Separator and indentation before a value (or before a name inside an object). */
static void jsonw_begin_value(json_writer_t *w)
{
	if (w->have_name) {
		w->have_name = false;
		return;
	}
	if (w->depth == 0)
		return;
	if (w->kind[w->depth - 1] == '{')
		w->errors++;   /* a value in an object needs a name */
	if (w->sep)
		fputc(w->sep, w->out);
	jsonw_eol(w);
}

static void jsonw_end_value(json_writer_t *w)
{
	if (w->depth == 0) {
		fputc('\n', w->out);   /* one top-level value per line */
		w->sep = '\0';
	} else {
		w->sep = ',';
	}
}

void jsonw_name(json_writer_t *self, const char *name)
{
	if (self->depth == 0 || self->kind[self->depth - 1] != '{' || self->have_name)
		self->errors++;
	if (self->sep)
		fputc(self->sep, self->out);
	jsonw_eol(self);
	jsonw_puts_escaped(self, name, SIZE_MAX);
	fputs(self->pretty ? ": " : ":", self->out);
	self->have_name = true;
}

static void jsonw_open(json_writer_t *w, char kind)
{
	jsonw_begin_value(w);
	fputc(kind, w->out);
	if (w->depth >= JSONW_MAX_DEPTH) {
		w->errors++;
		return;
	}
	w->kind[w->depth++] = kind;
	w->sep = '\0';
}

static void jsonw_close(json_writer_t *w, char kind)
{
	bool had_elements = w->sep != '\0';

	if (w->depth == 0 || w->kind[w->depth - 1] != kind || w->have_name) {
		w->errors++;
		w->have_name = false;
		if (w->depth == 0)
			return;
	}
	w->depth--;
	if (had_elements)
		jsonw_eol(w);
	fputc(kind == '{' ? '}' : ']', w->out);
	jsonw_end_value(w);
}

void jsonw_start_object(json_writer_t *self) { jsonw_open(self, '{'); }
void jsonw_end_object(json_writer_t *self) { jsonw_close(self, '{'); }
void jsonw_start_array(json_writer_t *self) { jsonw_open(self, '['); }
void jsonw_end_array(json_writer_t *self) { jsonw_close(self, '['); }

void jsonw_printf(json_writer_t *self, const char *fmt, ...)
{
	va_list ap;

	jsonw_begin_value(self);
	va_start(ap, fmt);
	vfprintf(self->out, fmt, ap);
	va_end(ap);
	jsonw_end_value(self);
}

void jsonw_string_len(json_writer_t *self, const char *value, size_t len)
{
	jsonw_begin_value(self);
	jsonw_puts_escaped(self, value ? value : "", len);
	jsonw_end_value(self);
}

void jsonw_string(json_writer_t *self, const char *value) { jsonw_string_len(self, value, SIZE_MAX); }
void jsonw_bool(json_writer_t *self, bool value) { jsonw_printf(self, "%s", value ? "true" : "false"); }
void jsonw_null(json_writer_t *self) { jsonw_printf(self, "null"); }
void jsonw_u64(json_writer_t *self, uint64_t value) { jsonw_printf(self, "%" PRIu64, value); }
void jsonw_int(json_writer_t *self, int64_t value) { jsonw_printf(self, "%" PRId64, value); }
void jsonw_hex(json_writer_t *self, uint64_t value) { jsonw_printf(self, "\"0x%" PRIx64 "\"", value); }

void jsonw_float_fmt(json_writer_t *self, const char *fmt, double value)
{
	if (!isfinite(value)) {
		jsonw_null(self);
		return;
	}
	jsonw_printf(self, fmt, value);
}

void jsonw_string_field(json_writer_t *self, const char *name, const char *value)
{
	jsonw_name(self, name);
	jsonw_string(self, value);
}

void jsonw_bool_field(json_writer_t *self, const char *name, bool value)
{
	jsonw_name(self, name);
	jsonw_bool(self, value);
}

void jsonw_null_field(json_writer_t *self, const char *name)
{
	jsonw_name(self, name);
	jsonw_null(self);
}

void jsonw_u64_field(json_writer_t *self, const char *name, uint64_t value)
{
	jsonw_name(self, name);
	jsonw_u64(self, value);
}

void jsonw_int_field(json_writer_t *self, const char *name, int64_t value)
{
	jsonw_name(self, name);
	jsonw_int(self, value);
}

void jsonw_hex_field(json_writer_t *self, const char *name, uint64_t value)
{
	jsonw_name(self, name);
	jsonw_hex(self, value);
}

void jsonw_float_field_fmt(json_writer_t *self, const char *name, const char *fmt, double value)
{
	jsonw_name(self, name);
	jsonw_float_fmt(self, fmt, value);
}

char *jsonw_text(void (*fill)(json_writer_t *w, void *arg), void *arg)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	json_writer_t *w = f ? jsonw_new(f) : NULL;

	if (!w) {
		if (f)
			fclose(f);
		free(buf);
		return NULL;
	}
	jsonw_pretty(w, false);
	fill(w, arg);
	jsonw_destroy(&w);
	fclose(f);
	if (len && buf[len - 1] == '\n')
		buf[len - 1] = 0;
	return buf;
}
