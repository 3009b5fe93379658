/* The guest options every discovery subcommand takes; see target_opts.h. */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include "arch/x86_64.h"
#include "cmd/cmd.h"
#include "cmd/target_opts.h"
#include "common/log.h"
#include "common/units.h"

static int add_cr3_list(struct target_opts *t, const char *arg)
{
	char *copy = strdup(arg), *save = NULL;
	int err = 0;

	if (!copy)
		return -ENOMEM;
	for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		char *end;
		uint64_t v, *n;

		errno = 0;
		v = strtoull(tok, &end, 16);   /* hex with or without 0x */
		if (errno || end == tok || *end || !x86_cr3_root(v)) {
			p_err("--cr3: '%s' is not a CR3 value (hex, page-table root above 0)", tok);
			err = -EINVAL;
			break;
		}
		n = realloc(t->cr3s, (t->ncr3 + 1) * sizeof(*n));
		if (!n) {
			err = -ENOMEM;
			break;
		}
		t->cr3s = n;
		t->cr3s[t->ncr3++] = v;
	}
	free(copy);
	return err;
}

int target_opt(void *t, int c, const char *arg)
{
	return target_parse_opt(t, c, arg);
}

int target_parse_opt(struct target_opts *t, int c, const char *arg)
{
	switch (c) {
	case 'p':
		if (parse_pid(arg, &t->pid)) {
			p_err("--pid: '%s' is not a process id", arg);
			return -EINVAL;
		}
		return 1;
	case 'c':
		t->core = arg;
		return 1;
	case 'r':
		t->raw = arg;
		return 1;
	case TOPT_CR3:
		return add_cr3_list(t, arg) ? -EINVAL : 1;
	case TOPT_QMP:
		t->qmp = arg;
		return 1;
	case TOPT_TIMEOUT:
		if (parse_duration(arg, 0, 3600, &t->timeout_s)) {
			p_err("--timeout: '%s' is not a duration in 0..3600 s (seconds, or with ms, s, m, h)", arg);
			return -EINVAL;
		}
		return 1;
	case TOPT_RAW_BASE: {
		char *end;
		uint64_t v;

		errno = 0;
		v = strtoull(arg, &end, 0);
		if (errno || end == arg || *end || (v & 4095) || *arg == '-') {
			p_err("--raw-base: '%s' is not a page-aligned physical address (e.g. 0x40000000)", arg);
			return -EINVAL;
		}
		t->raw_base = v;
		return 1;
	}
	case TOPT_MAX_BYTES:
		if (parse_size(arg, &t->max_bytes) || !t->max_bytes) {
			p_err("--max-bytes: '%s' is not a size (e.g. 64M)", arg);
			return -EINVAL;
		}
		return 1;
	}
	return 0;
}

int target_check(const struct target_opts *t)
{
	int n = (t->pid > 0) + (t->core != NULL) + (t->raw != NULL);

	if (n != 1) {
		p_err(n ? "give only one of --pid, --core, --raw" : "no guest given: use --pid, --core or --raw");
		return -EINVAL;
	}
	if (t->raw_base && !t->raw) {
		p_err("--raw-base goes with --raw");
		return -EINVAL;
	}
	if (t->qmp && t->core) {
		p_err("--qmp samples a running guest; it cannot be used with --core");
		return -EINVAL;
	}
	return 0;
}

int target_discover_reported(const struct target_opts *t, struct target *tg, struct discovery_result *res)
{
	int err = target_discover(t, tg, res);

	if (!tg->pm)   /* the source or its observations failed; the error is printed (not "undetermined") */
		return err && err != -ENOENT ? err : -EIO;
	if (err && err != -ENOENT && !physmem_source_gone(tg->pm))   /* else the source said so, once */
		p_err("discovery on %s failed: %s", tg->desc, res->reason[0] ? res->reason : strerror(-err));
	return err;
}

int target_open_tasks(const struct target_opts *t, struct target *tg, struct discovery_result *res,
		      struct guest_task **tasks, size_t *ntasks)
{
	struct discovery_opts d;
	int err = target_discover_reported(t, tg, res);

	if (err == -ENOENT) {
		p_err("undetermined: %s (cannot read processes without task_struct offsets)",
		      res->reason[0] ? res->reason : "offsets not found");
		return EXIT_UNDETERMINED;
	}
	if (err)
		return EXIT_FAIL;
	if (!res->validated)
		p_warn("offsets not validated by observations (%s); reading anyway",
		       res->reason[0] ? res->reason : "no observations");
	target_discovery_opts(t, &d);
	err = guest_tasks_list(tg->pm, res, &d, tasks, ntasks);
	if (err) {
		p_err("walking the task list of %s: %s", tg->desc, strerror(-err));
		return EXIT_FAIL;
	}
	return 0;
}
