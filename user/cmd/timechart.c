/* `vmoffset-trace timechart`: a session as one SVG picture of what ran where (perf timechart's shape). */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <json-c/json.h>
#include "cmd/cmd.h"
#include "common/json_writer.h"
#include "common/log.h"
#include "common/units.h"
#include "output/timechart.h"
#include "output/timeline.h"
#include "session/jsonl.h"
#include "session/session.h"

#define TC_DEFAULT_OUTPUT "timechart.svg"

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: vmoffset-trace timechart [-i FILE] [-o OUT.svg] [--vm NAME|PID] [--from T] [--to T]\n"
		"                                [-w PX]\n"
		"\n"
		"Draw a session (what `record` wrote, or live's JSON-lines event file) as one self-contained SVG that\n"
		"any browser opens: a lane per vCPU of each VM, a coloured span per run of a process (one colour per\n"
		"process, the same in every chart of the VM), markers for fork, exec, rename, exit, lost processes and\n"
		"guest kernel restarts, idle (pid 0) as gaps, a time axis in seconds since the session's start, and a\n"
		"legend of the processes that used most vCPU time. Hover a span or marker for pid, comm, start and\n"
		"duration; text can be selected and searched. Runs are SAMPLED (switch events: a run shorter than a\n"
		"poll is not seen). Runs narrower than a pixel are merged with their neighbours into one busy span (its\n"
		"tooltip says how many and whose), so the file stays small whatever the session's length: a few MB for\n"
		"an hour of a 4-vCPU guest at the default width. A damaged session is drawn from its intact blocks and\n"
		"one line says what was lost.\n"
		"Exit status: 0 drawn (even partly), 1 nothing readable or no such VM, 64 usage.\n"
		"\n"
		"Options:\n"
		"  -i, --input FILE       session file (default " CMD_DEFAULT_SESSION ") or JSON-lines event file\n"
		"  -o, --output FILE      the SVG (default " TC_DEFAULT_OUTPUT "; - for stdout); written whole, then\n"
		"                         renamed over FILE\n"
		"      --vm NAME|PID      only this VM (its name or QEMU pid)\n"
		"      --from T           start the chart T after the session's start (10s, 1.5, 250ms, 2m)\n"
		"      --to T             end it T after the session's start (default: the last event)\n"
		"  -w, --width PX         pixels of the time axis, %d..%d (default %d)\n"
		"  -h, --help             this text\n"
		"\n"
		"Examples:\n"
		"  vmoffset-trace record -p 4242 -d 60 -o web.vmot && vmoffset-trace timechart -i web.vmot\n"
		"  vmoffset-trace timechart -i web.vmot -o boot.svg --from 0 --to 5s -w 4000\n"
		"  vmoffset-trace timechart -i fleet.vmot --vm db1 -o db1.svg\n"
		"  vmoffset-trace timechart -i web.vmot -o - | gzip > web.svgz\n"
		"  vmoffset-trace report -i web.vmot --format trace -o web.json    # the same runs for Perfetto\n",
		TC_MIN_WIDTH, TC_MAX_WIDTH, TC_DEFAULT_WIDTH);
}

struct tc_ctx {
	struct timeline tl;
	struct sess_event *ev;     /* JSON lines: read whole, sorted if need be, then fed */
	size_t nev, cap;
};

static int on_block(void *ctx, enum sess_block type, uint32_t seq, const void *data, size_t len, uint32_t nrec)
{
	struct tc_ctx *c = ctx;
	const struct sess_event *ev = data;
	struct json_object *j, *x;

	switch (type) {
	case SB_HEADER:
		if ((j = json_tokener_parse(data))) {
			if (json_object_object_get_ex(j, "t_start_ns", &x) && !c->tl.events)
				tl_set_t0(&c->tl, (uint64_t)json_object_get_uint64(x));
			json_object_put(j);
		}
		break;
	case SB_VM:
		if ((j = json_tokener_parse(data))) {
			struct sess_vm_id id;

			sess_vm_id_parse(j, &id);
			if (id.index >= 0 && id.index < AN_MAX_VMS)
				tl_vm(&c->tl, (uint32_t)id.index, id.name, id.pid, id.nvcpus);
			json_object_put(j);
		}
		break;
	case SB_EVENTS:
		for (uint32_t i = 0; i < nrec; i++)
			tl_event(&c->tl, &ev[i]);
		break;
	default:
		break;
	}
	return c->tl.err;
}

static int on_jsonl_event(void *ctx, const struct sess_event *ev, struct json_object *line)
{
	struct tc_ctx *c = ctx;

	if (c->nev == c->cap) {
		size_t ncap = c->cap ? c->cap * 2 : 4096;
		struct sess_event *n = realloc(c->ev, ncap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		c->ev = n;
		c->cap = ncap;
	}
	c->ev[c->nev++] = *ev;
	return 0;
}

/* Read file into c->tl; 0, or an exit code with the error said. lost: what was lost ("" nothing). */
static int read_input(struct tc_ctx *c, const char *file, char *lost, size_t lost_len)
{
	int kind = jsonl_sniff(file), err;

	lost[0] = 0;
	if (kind < 0) {
		p_err("cannot read %s: %s", file, strerror(-kind));
		return EXIT_FAIL;
	}
	if (kind == JSONL_KIND_JSONL || kind == JSONL_KIND_BLANK) {
		struct jsonl_summary js;
		const char *files[1] = { file };
		size_t bad = 0, off = 0;

		err = jsonl_read_files(files, 1, on_jsonl_event, c, &js, &bad);
		for (int i = 0; i < JSONL_NOTES && off + 1 < lost_len; i++) {
			char note[400];

			if (jsonl_note(&js, (enum jsonl_note)i, note, sizeof(note)))
				off += (size_t)snprintf(lost + off, lost_len - off, "%s%s", off ? "; " : "", note);
		}
		if (err == -ENODATA) {
			p_err("%s: nothing readable%s%s", file, lost[0] ? ": " : " (no event lines)", lost);
			return EXIT_FAIL;
		}
		if (err) {
			p_err("cannot read %s: %s", file, strerror(-err));
			return EXIT_FAIL;
		}
		if (js.time_backwards && jsonl_sort_events(c->ev, c->nev))
			p_warn("%s: out of memory sorting the events by time: left in file order", file);
		for (size_t i = 0; i < js.nvms; i++)
			tl_vm(&c->tl, (uint32_t)i, js.vms[i].name, js.vms[i].pid, js.vms[i].nvcpus);
		if (js.have_t0)
			tl_set_t0(&c->tl, js.t0_ns);
		for (size_t i = 0; i < c->nev; i++)
			tl_event(&c->tl, &c->ev[i]);
		if (c->tl.err) {
			p_err("out of memory");
			return EXIT_FAIL;
		}
	} else {
		struct sess_summary sum = { 0 };

		err = sess_read_file(file, on_block, c, &sum);
		sess_damage_line(&sum, lost, lost_len);
		if (err == -ENODATA && kind == JSONL_KIND_OTHER)
			p_err("%s: %s: neither a session file (no \"" SESS_MAGIC "\" at its start) nor JSON lines (its first "
			      "non-blank byte is not '{')", file, lost);
		else if (err == -ENODATA)
			p_err("%s: %s", file, sum.file_size ? lost : "empty file: nothing readable");
		else if (err)
			p_err("cannot read %s: %s", file, strerror(-err));
		if (err)
			return EXIT_FAIL;
	}
	if (lost[0])
		p_warn("%s: damaged or incomplete: %s", file, lost);
	return 0;
}

/* "a (pid 1), b (pid 2)" */
static void vm_list(const struct timeline *tl, char *buf, size_t len)
{
	size_t off = 0;

	buf[0] = 0;
	for (int i = 0; i < AN_MAX_VMS && off + 1 < len; i++)
		if (tl->vms[i].known)
			off += (size_t)snprintf(buf + off, len - off, "%s%s (pid %d)", off ? ", " : "", tl->vms[i].name,
						tl->vms[i].pid);
	if (!buf[0])
		snprintf(buf, len, "none named");
}

static int write_svg(const struct timeline *tl, const struct tc_opts *o, const char *out, struct tc_stats *st,
		     long *bytes)
{
	char tmp[4096];
	FILE *f;
	int err;

	if (!strcmp(out, "-")) {
		err = tc_render_svg(stdout, tl, o, st);
		fflush(stdout);
		*bytes = -1;
		return err ? err : ferror(stdout) ? -EIO : 0;
	}
	if (snprintf(tmp, sizeof(tmp), "%s.tmp.%d", out, (int)getpid()) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	f = fopen(tmp, "w");
	if (!f)
		return -errno;
	err = tc_render_svg(f, tl, o, st);
	*bytes = ftell(f);
	if (fclose(f) && !err)
		err = -EIO;
	if (!err && rename(tmp, out))
		err = -errno;
	if (err)
		unlink(tmp);
	return err;
}

int cmd_timechart(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "input",  required_argument, NULL, 'i' },
		{ "output", required_argument, NULL, 'o' },
		{ "vm",     required_argument, NULL, 0x100 },
		{ "from",   required_argument, NULL, 0x101 },
		{ "to",     required_argument, NULL, 0x102 },
		{ "width",  required_argument, NULL, 'w' },
		{ "help",   no_argument,       NULL, 'h' },
		{},
	};
	struct tc_ctx c;
	struct tl_opts to = { 0 };
	struct tc_opts o = { .width = TC_DEFAULT_WIDTH };
	struct tc_stats st = { 0 };
	const char *file = CMD_DEFAULT_SESSION, *out = TC_DEFAULT_OUTPUT;
	char lost[1024], vms[1024];
	double v;
	long bytes = -1;
	int ch, err, ret;

	while ((ch = getopt_long(argc, argv, "i:o:w:h", opts, NULL)) != -1) {
		switch (ch) {
		case 'i': file = optarg; break;
		case 'o': out = optarg; break;
		case 0x100:
			if (!*optarg) {
				p_err("--vm: give a VM name or QEMU pid");
				return EXIT_USAGE;
			}
			to.vm = optarg;
			break;
		case 0x101:
		case 0x102:
			if (parse_duration(optarg, 0, 1e7, &v)) {
				p_err("--%s: '%s' is not a duration since the session's start (10s, 1.5, 250ms, 2m)",
				      ch == 0x101 ? "from" : "to", optarg);
				return EXIT_USAGE;
			}
			if (ch == 0x101) {
				to.have_from = true;
				to.from_ns = (uint64_t)(v * 1e9 + 0.5);
			} else {
				to.have_to = true;
				to.to_ns = (uint64_t)(v * 1e9 + 0.5);
			}
			break;
		case 'w':
			if (parse_number(optarg, TC_MIN_WIDTH, TC_MAX_WIDTH, &v) || v != (unsigned)v) {
				p_err("--width: '%s' is not a whole number of pixels in %d..%d", optarg, TC_MIN_WIDTH,
				      TC_MAX_WIDTH);
				return EXIT_USAGE;
			}
			o.width = (unsigned)v;
			break;
		case 'h': usage(stdout); return EXIT_OK;
		default: return cmd_bad_option(argv, usage);
		}
	}
	if (cmd_no_operands(argc, argv))
		return EXIT_USAGE;
	if (to.have_from && to.have_to && to.to_ns <= to.from_ns) {
		p_err("--to (%.6f s) must be after --from (%.6f s)", to.to_ns / 1e9, to.from_ns / 1e9);
		return EXIT_USAGE;
	}
	if (!*out) {
		p_err("--output: give a file name (- for stdout)");
		return EXIT_USAGE;
	}

	memset(&c, 0, sizeof(c));
	tl_init(&c.tl, &to);
	ret = read_input(&c, file, lost, sizeof(lost));
	if (ret)
		goto cleanup;
	ret = EXIT_FAIL;
	if (!tl_vm_matched(&c.tl)) {
		vm_list(&c.tl, vms, sizeof(vms));
		p_err("--vm %s: no such VM in %s (its VMs: %s)", to.vm, file, vms);
		goto cleanup;
	}
	if (tl_finish(&c.tl)) {
		p_err("out of memory");
		goto cleanup;
	}
	if (!c.tl.nruns && !c.tl.nmarks)
		p_warn("%s: nothing ran in the window drawn (%.6f s to %.6f s)", file,
		       (c.tl.begin - c.tl.t0) / 1e9, (c.tl.end - c.tl.t0) / 1e9);
	o.source = file;
	o.note = lost;
	err = write_svg(&c.tl, &o, out, &st, &bytes);
	if (err) {
		p_err("cannot write %s: %s", out, strerror(-err));
		goto cleanup;
	}
	if (log_json && strcmp(out, "-")) {
		json_writer_t *w = jsonw_new(stdout);

		if (w) {
			jsonw_start_object(w);
			jsonw_string_field(w, "output", out);
			jsonw_int_field(w, "bytes", bytes);
			jsonw_float_field_fmt(w, "from_s", "%.6f", (c.tl.begin - c.tl.t0) / 1e9);
			jsonw_float_field_fmt(w, "to_s", "%.6f", (c.tl.end - c.tl.t0) / 1e9);
			jsonw_u64_field(w, "lanes", st.lanes);
			jsonw_u64_field(w, "runs", c.tl.nruns);
			jsonw_u64_field(w, "spans", st.spans);
			jsonw_u64_field(w, "merged_spans", st.merged_spans);
			jsonw_u64_field(w, "runs_merged", st.runs_merged);
			jsonw_u64_field(w, "markers", st.markers);
			jsonw_u64_field(w, "events_marked", st.events_marked);
			jsonw_string_field(w, "lost", lost);
			jsonw_end_object(w);
			jsonw_destroy(&w);
		}
	} else if (strcmp(out, "-")) {
		fprintf(stderr, "Written %.1f s of trace to %s: %zu lanes, %zu runs as %zu spans (%zu merged), %zu markers, "
			"%.1f KB.\n", (c.tl.end - c.tl.begin) / 1e9, out, st.lanes, c.tl.nruns, st.spans, st.merged_spans,
			st.markers, bytes / 1024.0);
	}
	ret = EXIT_OK;
cleanup:
	tl_free(&c.tl);
	free(c.ev);
	return ret;
}
