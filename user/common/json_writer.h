/*
 * Small streaming JSON writer in bpftool's jsonw_* shape.
 *
 * Values are written as they come (no tree is built), so `live` output can stream one object per line:
 * every top-level value ends with a newline, in compact and pretty mode alike. Strings are escaped and
 * always come out as valid UTF-8 (guest strings are hostile input: each byte that is not part of a
 * valid UTF-8 sequence is written as \u00XX). Integers are exact u64/i64, never doubles.
 */
#ifndef VMOT_JSON_WRITER_H
#define VMOT_JSON_WRITER_H
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

typedef struct json_writer json_writer_t;

/* Set by the global -p option: new writers start in pretty mode. */
extern bool json_pretty;

json_writer_t *jsonw_new(FILE *f);           /* NULL on ENOMEM; pretty mode = json_pretty */
void jsonw_destroy(json_writer_t **self_p);  /* flushes; closes nothing */
void jsonw_pretty(json_writer_t *self, bool on);
void jsonw_flush(json_writer_t *self);
/* fill(w, arg) written compactly to a malloc'd string (no trailing newline); NULL on ENOMEM. */
char *jsonw_text(void (*fill)(json_writer_t *w, void *arg), void *arg);
/* Number of errors seen (unbalanced calls, a name outside an object); 0 for well-formed output. */
int jsonw_errors(const json_writer_t *self);

void jsonw_name(json_writer_t *self, const char *name);
void jsonw_start_object(json_writer_t *self);
void jsonw_end_object(json_writer_t *self);
void jsonw_start_array(json_writer_t *self);
void jsonw_end_array(json_writer_t *self);

void jsonw_string(json_writer_t *self, const char *value);
/* A string of at most len bytes (stops at NUL), for fixed-size guest buffers like comm[16]. */
void jsonw_string_len(json_writer_t *self, const char *value, size_t len);
void jsonw_bool(json_writer_t *self, bool value);
void jsonw_null(json_writer_t *self);
void jsonw_u64(json_writer_t *self, uint64_t value);
void jsonw_int(json_writer_t *self, int64_t value);
void jsonw_hex(json_writer_t *self, uint64_t value);   /* "0x1f" as a string: JSON has no hex */
void jsonw_float_fmt(json_writer_t *self, const char *fmt, double value);  /* NaN/inf → null */
/* Raw JSON text as a value (caller guarantees it is valid JSON). */
void jsonw_printf(json_writer_t *self, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* name + value in one call */
void jsonw_string_field(json_writer_t *self, const char *name, const char *value);
void jsonw_bool_field(json_writer_t *self, const char *name, bool value);
void jsonw_null_field(json_writer_t *self, const char *name);
void jsonw_u64_field(json_writer_t *self, const char *name, uint64_t value);
void jsonw_int_field(json_writer_t *self, const char *name, int64_t value);
void jsonw_hex_field(json_writer_t *self, const char *name, uint64_t value);
void jsonw_float_field_fmt(json_writer_t *self, const char *name, const char *fmt, double value);

#endif
