/* Process listings for `ps` from guest_tasks_list() output: rows, table, tree, JSON; see output.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "common/guest_text.h"
#include "common/json_writer.h"
#include "output/output.h"

#define TREE_MAX_INDENT 64    /* deeper levels are printed at this indentation */
#define TREE_MAX_DEPTH  1024  /* bound on recursion (hostile parent chains); deeper ones restart */

static int cmp_pid(const void *a, const void *b)
{
	const struct ps_row *x = a, *y = b;

	if (x->t->pid != y->t->pid)
		return x->t->pid < y->t->pid ? -1 : 1;
	return x->t->addr < y->t->addr ? -1 : x->t->addr > y->t->addr;
}

static int cmp_tgid(const void *a, const void *b)
{
	const struct guest_task *const *x = a, *const *y = b;

	return (*x)->tgid < (*y)->tgid ? -1 : (*x)->tgid > (*y)->tgid;
}

/* Rows to show: group leaders (or every thread), sorted by PID, each with its group's thread count. */
struct ps_row *ps_rows(const struct guest_task *tasks, size_t n, bool threads, size_t *nrows)
{
	const struct guest_task **by_tgid = calloc(n ? n : 1, sizeof(*by_tgid));
	struct ps_row *rows = calloc(n ? n : 1, sizeof(*rows));
	size_t k = 0;

	if (!by_tgid || !rows) {
		free(by_tgid);
		free(rows);
		return NULL;
	}
	for (size_t i = 0; i < n; i++)
		by_tgid[i] = &tasks[i];
	qsort(by_tgid, n, sizeof(*by_tgid), cmp_tgid);
	for (size_t i = 0; i < n;) {
		size_t j = i;

		while (j < n && by_tgid[j]->tgid == by_tgid[i]->tgid)
			j++;
		bool has_leader = false;

		for (size_t m = i; m < j; m++)
			has_leader |= by_tgid[m]->pid == by_tgid[m]->tgid;
		for (size_t m = i; m < j; m++) {
			/* a group whose leader we did not see still shows, through its first thread */
			bool leader = by_tgid[m]->pid == by_tgid[m]->tgid;

			if (threads || leader || (!has_leader && m == i)) {
				rows[k].t = by_tgid[m];
				rows[k++].threads = (uint32_t)(j - i);
			}
		}
		i = j;
	}
	free(by_tgid);
	qsort(rows, k, sizeof(*rows), cmp_pid);
	*nrows = k;
	return rows;
}

static void comm_display(const struct guest_task *t, char *buf, size_t len)
{
	char c[sizeof(t->comm)];

	/* guest bytes: printable ASCII only on a terminal */
	for (size_t i = 0; i < sizeof(c); i++) {
		unsigned char ch = (unsigned char)t->comm[i];

		c[i] = ch == 0 ? 0 : (ch < 0x20 || ch >= 0x7f) ? '?' : (char)ch;
		if (!ch)
			break;
	}
	c[sizeof(c) - 1] = 0;
	snprintf(buf, len, t->kernel_thread ? "[%s]" : "%s", c);
}

/* argv joined by spaces, printable ASCII, at most len-1 bytes; [comm] when unknown */
static void cmd_display(const struct ps_row *r, char *buf, size_t len)
{
	if (!r->cmdline || !r->cmdline_len) {
		char comm[32];

		comm_display(r->t, comm, sizeof(comm));
		snprintf(buf, len, r->t->kernel_thread ? "%s" : "[%s]", comm);
		return;
	}
	guest_text(r->cmdline, r->cmdline_len, ' ', buf, len);
}

void ps_print_table(FILE *f, const struct ps_row *rows, size_t n)
{
	char comm[32], cmd[4096], exe[4096];

	fprintf(f, "%7s %7s %7s %7s %-8s %-16s %-24s CMD\n", "PID", "PPID", "TGID", "THREADS", "USER", "COMM", "EXE");
	for (size_t i = 0; i < n; i++) {
		char user[12] = "-";

		comm_display(rows[i].t, comm, sizeof(comm));
		cmd_display(&rows[i], cmd, sizeof(cmd));
		if (rows[i].have_ids)
			snprintf(user, sizeof(user), "%u", rows[i].ids[2]);
		fprintf(f, "%7d %7d %7d %7u %-8s %-16s %-24s %s\n", rows[i].t->pid, rows[i].t->ppid, rows[i].t->tgid,
			rows[i].threads, user, comm, rows[i].exe ? guest_text(rows[i].exe, strlen(rows[i].exe), 0, exe, sizeof(exe)) : "-", cmd);
	}
}

/* Tree: rows indexed by parent. kids[] holds row indices sorted by (ppid, pid). */
struct tree {
	FILE *f;
	const struct ps_row *rows;
	size_t n;
	size_t *kids;
	bool *done;
	int32_t *parent;   /* tree parent of each row: a thread's leader when listed, else its ppid */
};

static const struct ps_row *tree_row_by_pid(const struct tree *tr, int32_t pid)
{
	size_t lo = 0, hi = tr->n;

	while (lo < hi) {   /* rows are sorted by pid */
		size_t mid = lo + (hi - lo) / 2;

		if (tr->rows[mid].t->pid < pid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < tr->n && tr->rows[lo].t->pid == pid ? &tr->rows[lo] : NULL;
}

static int cmp_kid(const void *a, const void *b, void *arg)
{
	const struct tree *tr = arg;
	size_t i = *(const size_t *)a, j = *(const size_t *)b;
	const struct guest_task *x = tr->rows[i].t, *y = tr->rows[j].t;

	if (tr->parent[i] != tr->parent[j])
		return tr->parent[i] < tr->parent[j] ? -1 : 1;
	return x->pid < y->pid ? -1 : x->pid > y->pid;
}

static void tree_print(struct tree *tr, size_t idx, char *prefix, size_t plen, bool last, bool root,
		       unsigned depth)
{
	const struct guest_task *t = tr->rows[idx].t;
	size_t lo = 0, hi = tr->n, first, end, lastk, nplen = plen;
	char comm[32];

	tr->done[idx] = true;
	comm_display(t, comm, sizeof(comm));
	fprintf(tr->f, "%s%s%d %s\n", prefix, root ? "" : (last ? "`-- " : "|-- "), t->pid, comm);
	if (!root && plen / 4 < TREE_MAX_INDENT) {
		memcpy(prefix + plen, last ? "    " : "|   ", 5);
		nplen = plen + 4;
	}
	/* children: the kids[] range whose tree parent is this pid (a task is never its own child) */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (tr->parent[tr->kids[mid]] < t->pid)
			lo = mid + 1;
		else
			hi = mid;
	}
	first = lo;
	for (end = first; end < tr->n && tr->parent[tr->kids[end]] == t->pid; end++)
		;
	if (depth >= TREE_MAX_DEPTH)   /* left undone: printed as a root of its own afterwards */
		goto out;
	for (lastk = end; lastk > first; lastk--)
		if (!tr->done[tr->kids[lastk - 1]] && tr->rows[tr->kids[lastk - 1]].t->pid != t->pid)
			break;
	for (size_t k = first; k < end; k++) {
		size_t c = tr->kids[k];

		if (tr->done[c] || tr->rows[c].t->pid == t->pid)
			continue;
		tree_print(tr, c, prefix, nplen, k + 1 == lastk, false, depth + 1);
	}
out:
	prefix[plen] = 0;
}

int ps_print_tree(FILE *f, const struct ps_row *rows, size_t n)
{
	struct tree tr = { .f = f, .rows = rows, .n = n };
	char *prefix = malloc(TREE_MAX_INDENT * 4 + 8);

	tr.kids = calloc(n ? n : 1, sizeof(*tr.kids));
	tr.done = calloc(n ? n : 1, sizeof(*tr.done));
	tr.parent = calloc(n ? n : 1, sizeof(*tr.parent));
	if (!prefix || !tr.kids || !tr.done || !tr.parent) {
		free(prefix);
		free(tr.kids);
		free(tr.done);
		free(tr.parent);
		return -ENOMEM;
	}
	prefix[0] = 0;
	for (size_t i = 0; i < n; i++) {
		const struct guest_task *t = rows[i].t;
		bool thread = t->pid != t->tgid && t->tgid > 0 && tree_row_by_pid(&tr, t->tgid);
		tr.kids[i] = i;
		tr.parent[i] = thread ? t->tgid : t->ppid;   /* threads hang under their leader */
	}
	qsort_r(tr.kids, n, sizeof(*tr.kids), cmp_kid, &tr);
	/* roots: no parent on the list, or their own parent (pid 0) */
	for (size_t i = 0; i < n; i++) {
		const struct ps_row *p = tree_row_by_pid(&tr, tr.parent[i]);

		if (!tr.done[i] && (!p || p == &rows[i] || tr.parent[i] == rows[i].t->pid))
			tree_print(&tr, i, prefix, 0, true, true, 0);
	}
	/* whatever is left sits on a parent cycle (corrupt or hostile memory): show it anyway */
	for (size_t i = 0; i < n; i++)
		if (!tr.done[i])
			tree_print(&tr, i, prefix, 0, true, true, 0);
	free(prefix);
	free(tr.kids);
	free(tr.done);
	free(tr.parent);
	return 0;
}

int ps_print_json(FILE *f, const struct ps_row *rows, size_t n)
{
	json_writer_t *w = jsonw_new(f);

	if (!w)
		return -ENOMEM;
	jsonw_start_array(w);
	for (size_t i = 0; i < n; i++) {
		const struct guest_task *t = rows[i].t;

		jsonw_start_object(w);
		jsonw_int_field(w, "pid", t->pid);
		jsonw_int_field(w, "ppid", t->ppid);
		jsonw_int_field(w, "tgid", t->tgid);
		jsonw_u64_field(w, "threads", rows[i].threads);
		jsonw_name(w, "comm");
		jsonw_string_len(w, t->comm, sizeof(t->comm));
		jsonw_name(w, "cmdline");   /* argv, as the guest's /proc/PID/cmdline splits it */
		if (rows[i].cmdline) {
			jsonw_nul_strings(w, rows[i].cmdline, rows[i].cmdline_len);
		} else {
			jsonw_null(w);
		}
		static const char *const id_names[4] = { "uid", "gid", "euid", "egid" };
		for (int k = 0; k < 4; k++)   /* null when struct cred's ids were not found */
			if (rows[i].have_ids)
				jsonw_u64_field(w, id_names[k], rows[i].ids[k]);
			else
				jsonw_null_field(w, id_names[k]);
		if (rows[i].exe)   /* as the guest's /proc/PID/exe reads */
			jsonw_string_field(w, "exe", rows[i].exe);
		else
			jsonw_null_field(w, "exe");
		jsonw_bool_field(w, "kernel_thread", t->kernel_thread);
		jsonw_hex_field(w, "task", t->addr);
		if (t->mm)
			jsonw_hex_field(w, "mm", t->mm);
		else
			jsonw_null_field(w, "mm");
		if (t->pgd_pa)
			jsonw_hex_field(w, "pgd", t->pgd_pa);
		else
			jsonw_null_field(w, "pgd");
		jsonw_end_object(w);
	}
	jsonw_end_array(w);
	jsonw_destroy(&w);
	return 0;
}

