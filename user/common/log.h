/* Diagnostics: one line per error, JSON-aware (bpftool's p_err/p_info). */
#ifndef VMOT_LOG_H
#define VMOT_LOG_H
#include <stdbool.h>

extern int  log_verbose;   /* -v: debug lines and libbpf chatter */
extern bool log_json;      /* -j: errors as {"error": "..."} on stdout */
extern bool log_quiet;     /* retries that are expected to fail: errors, warnings and info only with -v */

void p_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void p_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void p_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void p_dbg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
