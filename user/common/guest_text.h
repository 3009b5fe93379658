/*
 * Guest strings on a terminal and in JSON: bytes read from guest memory are hostile input, so text output
 * shows them as printable ASCII, and argv-style buffers (NUL-separated, as /proc/PID/cmdline) become one
 * line or a JSON array of strings.
 */
#ifndef VMOT_GUEST_TEXT_H
#define VMOT_GUEST_TEXT_H
#include <stddef.h>
#include "common/json_writer.h"

/* s[0..len) (stopping at a NUL unless nul_as is not 0, which then stands for it) as printable ASCII into out
 * (cap bytes, always terminated): other bytes as '?', trailing nul_as characters dropped. Returns out. */
char *guest_text(const char *s, size_t len, char nul_as, char *out, size_t cap);
/* A NUL-separated buffer (the last NUL optional) as a JSON array of strings. */
void jsonw_nul_strings(json_writer_t *w, const char *buf, size_t len);

#endif
