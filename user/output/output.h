/*
 * Outputs (layer 4): a struct discovery_result as our own JSON, as a libvmi.conf entry, or as a
 * Volatility-3-style ISF that LibVMI's JSON profile reader accepts. Pure functions of the result and
 * these options, so they are tested against golden files.
 */
#ifndef VMOT_OUTPUT_H
#define VMOT_OUTPUT_H
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include "discovery/discover.h"

enum output_format { OUT_JSON, OUT_LIBVMI, OUT_ISF };

struct output_opts {
	const char *name;         /* libvmi.conf domain name; NULL = "guest" */
	const char *version;      /* producer version written into the outputs; NULL = "0.0.0" */
	bool kaslr_known;         /* kaslr_shift was measured (target_kaslr_shift) */
	uint64_t kaslr_shift;     /* runtime kernel text - 0xffffffff81000000 */
	const char *isf_path;     /* libvmi: also reference this ISF (volatility_ist = "..."), or NULL */
};

/* "json", "libvmi", "isf" → format; -EINVAL otherwise. */
int output_format_parse(const char *s, enum output_format *fmt);
const char *output_format_name(enum output_format fmt);

/* Our JSON: every offset (null when undetermined) plus per-field confidence and how. Always writes. */
int output_offsets_json(FILE *f, const struct discovery_result *res, const struct output_opts *o);
/* libvmi.conf entry; -ENOENT (writes nothing) if an offset LibVMI needs is missing, -EINVAL for a
 * name the libvmi.conf grammar cannot parse. */
int output_libvmi_conf(FILE *f, const struct discovery_result *res, const struct output_opts *o);
/* ISF JSON; -ENOENT (writes nothing) if init_task or an offset LibVMI needs is missing. */
int output_isf(FILE *f, const struct discovery_result *res, const struct output_opts *o);

int output_write(FILE *f, enum output_format fmt, const struct discovery_result *res,
		 const struct output_opts *o);

/* The task_struct/mm_struct members LibVMI needs: tasks, mm, pid, comm, mm_struct.pgd (and init_task). */
bool output_libvmi_ready(const struct discovery_result *res);

/* `ps` listings. A row is a task to show and its thread group's size. */
struct ps_row {
	const struct guest_task *t;
	uint32_t threads;     /* tasks sharing its tgid */
	char *cmdline;        /* argv as /proc/PID/cmdline (NUL-separated), NULL when unknown; the caller frees */
	size_t cmdline_len;
	bool have_ids;        /* ids[] read from its cred */
	uint32_t ids[4];      /* uid, gid, euid, egid (cred_id_names) */
	char *exe;            /* the executable's path (/proc/PID/exe), NULL when unknown; the caller frees */
};
/* Rows sorted by PID: group leaders (a group whose leader is missing shows its first thread), or with
 * threads every task. NULL on ENOMEM; the rows point into tasks. */
struct ps_row *ps_rows(const struct guest_task *tasks, size_t n, bool threads, size_t *nrows);
/* PID PPID TGID THREADS USER COMM EXE CMD (EXE the executable's path, - when unknown; USER: the effective uid, numeric, as ps -o user shows it; - when the ids
 * are unknown); kernel threads as [comm]; CMD is argv joined by spaces (ps -o args), or
 * [comm] where none is known; guest bytes shown as printable ASCII. */
void ps_print_table(FILE *f, const struct ps_row *rows, size_t n);
/* ASCII tree by PPID ("|-- ", "`-- "); roots are tasks whose parent is not listed (or themselves);
 * tasks on a parent cycle or past a depth bound are shown as roots too: every row is printed once. */
int ps_print_tree(FILE *f, const struct ps_row *rows, size_t n);
/* JSON array of {pid, ppid, tgid, threads, comm, cmdline (array of strings, or null), exe (or null),
 * uid/gid/euid/egid, kernel_thread, task, mm, pgd}. */
int ps_print_json(FILE *f, const struct ps_row *rows, size_t n);

#endif
