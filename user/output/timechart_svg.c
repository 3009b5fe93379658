/* timechart's SVG: lanes, spans, markers, axis, legend; see timechart.h. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include "output/timechart.h"

/* ---- pure parts ------------------------------------------------------------------------------------ */

static double absd(double v)
{
	return v < 0 ? -v : v;
}

/* HSL (h in [0, 360), s and l in [0, 1]) to 0xRRGGBB, without libm */
static uint32_t hsl_rgb(double h, double s, double l)
{
	double c = (1 - absd(2 * l - 1)) * s, hp = h / 60, x, m = l - c / 2;
	double r = 0, g = 0, b = 0;
	int sector = (int)hp;

	x = c * (1 - absd(hp - 2 * (sector / 2) - 1));   /* 1 - |hp mod 2 - 1| */
	switch (sector) {
	case 0: r = c; g = x; break;
	case 1: r = x; g = c; break;
	case 2: g = c; b = x; break;
	case 3: g = x; b = c; break;
	case 4: r = x; b = c; break;
	default: r = c; b = x; break;
	}
	return (uint32_t)((r + m) * 255 + 0.5) << 16 | (uint32_t)((g + m) * 255 + 0.5) << 8 |
	       (uint32_t)((b + m) * 255 + 0.5);
}

uint32_t tc_colour(const char *vm_name, int32_t tgid)
{
	uint64_t h = 0xcbf29ce484222325ULL;   /* FNV-1a over the VM's name, a 0 byte, the tgid (little endian) */
	uint32_t u = (uint32_t)tgid;

	for (const char *p = vm_name ? vm_name : ""; *p; p++)
		h = (h ^ (unsigned char)*p) * 0x100000001b3ULL;
	h *= 0x100000001b3ULL;
	for (int i = 0; i < 4; i++)
		h = (h ^ ((u >> (8 * i)) & 0xff)) * 0x100000001b3ULL;
	h ^= h >> 29;   /* FNV's low bits of close tgids differ little: mix before taking fields */
	h *= 0xbf58476d1ce4e5b9ULL;
	h ^= h >> 32;
	return hsl_rgb((double)(h % 360), (55 + (h >> 16) % 30) / 100.0, (42 + (h >> 24) % 20) / 100.0);
}

/* Length of the valid UTF-8 sequence at s (1..4), with an XML character in it; 0 when not. */
static size_t utf8_len(const unsigned char *s, size_t avail)
{
	uint32_t cp;
	size_t n;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2, cp = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		n = 3, cp = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		n = 4, cp = s[0] & 0x07;
	else
		return 0;
	if (n > avail)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff) || cp == 0xfffe || cp == 0xffff || (cp >= 0x80 && cp <= 0x9f))
		return 0;   /* overlong, surrogates, beyond Unicode, not XML characters; C1 controls as bytes */
	return n;
}

void tc_xml_text(FILE *f, const char *s, size_t max)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t len = s ? strnlen(s, max) : 0;

	for (size_t i = 0; i < len;) {
		unsigned char c = p[i];
		size_t n;

		switch (c) {
		case '&': fputs("&amp;", f); i++; continue;
		case '<': fputs("&lt;", f); i++; continue;
		case '>': fputs("&gt;", f); i++; continue;
		case '"': fputs("&quot;", f); i++; continue;
		case '\'': fputs("&#39;", f); i++; continue;
		case '\\': fputs("\\\\", f); i++; continue;   /* so that \xNN below is never ambiguous */
		}
		n = c < 0x20 || c == 0x7f ? 0 : utf8_len(p + i, len - i);
		if (!n) {
			fprintf(f, "\\x%02x", c);
			i++;
			continue;
		}
		fwrite(p + i, 1, n, f);
		i += n;
	}
}

/* A group of sub-pixel runs being merged. */
#define TC_CAND 8
struct group {
	struct tc_box box;
	uint32_t ncand;
	uint32_t cand[TC_CAND];
	uint64_t cand_ns[TC_CAND];
};

static void group_add(const struct timeline *tl, struct group *g, const struct tl_run *r)
{
	uint32_t proc = tl->thr_list[r->thr].proc;
	uint64_t d = r->end - r->start;
	uint32_t i;

	if (!g->box.merged) {
		g->box.start = r->start;
		g->box.thr = r->thr;
	}
	g->box.end = r->end;
	g->box.merged++;
	g->box.busy_ns += d;
	for (i = 0; i < g->ncand && g->cand[i] != proc; i++)
		;
	if (i < g->ncand) {
		g->cand_ns[i] += d;
	} else if (g->ncand < TC_CAND) {   /* beyond TC_CAND processes in one span the rest count as "other" */
		g->cand[g->ncand] = proc;
		g->cand_ns[g->ncand++] = d;
	}
}

static void group_flush(struct group *g, struct tc_box *out, size_t *n)
{
	if (!g->box.merged)
		return;
	for (uint32_t k = 0; k < TC_TOP && k < g->ncand; k++) {   /* the TC_TOP largest, most first */
		uint32_t best = k;

		for (uint32_t i = k + 1; i < g->ncand; i++)
			if (g->cand_ns[i] > g->cand_ns[best])
				best = i;
		uint32_t c = g->cand[k];
		uint64_t cn = g->cand_ns[k];
		g->cand[k] = g->cand[best];
		g->cand_ns[k] = g->cand_ns[best];
		g->cand[best] = c;
		g->cand_ns[best] = cn;
		g->box.top[k] = g->cand[k];
		g->box.top_ns[k] = g->cand_ns[k];
		g->box.ntop = k + 1;
	}
	out[(*n)++] = g->box;
	memset(g, 0, sizeof(*g));
}

size_t tc_merge(const struct timeline *tl, const struct tl_run *runs, size_t n, double ns_per_px, struct tc_box *out)
{
	struct group g = { 0 };
	size_t k = 0;

	for (size_t i = 0; i < n; i++) {
		const struct tl_run *r = &runs[i];

		if ((double)(r->end - r->start) >= ns_per_px) {   /* wide enough to be seen alone */
			group_flush(&g, out, &k);
			group_add(tl, &g, r);
			group_flush(&g, out, &k);
			continue;
		}
		if (g.box.merged && (double)(r->start - g.box.end) >= ns_per_px)   /* a visible gap before it */
			group_flush(&g, out, &k);
		group_add(tl, &g, r);
		if ((double)(g.box.end - g.box.start) >= ns_per_px)   /* a pixel wide: one span */
			group_flush(&g, out, &k);
	}
	group_flush(&g, out, &k);
	return k;
}

/* ---- drawing ------------------------------------------------------------------------------------- */

enum {
	LEFT = 170,          /* label column */
	RIGHT = 24,
	TOP = 64,            /* title, subtitle, note, axis labels */
	VM_HEAD = 20,        /* a VM's name line */
	MARK_ROW = 7,        /* one row of markers per kind */
	LANE_H = 18,
	LANE_GAP = 3,
	LEGEND_ROW = 16,
	LEGEND_COLS = 3,
	MARK_MERGE_PX = 3,   /* markers are 6 px wide: events of a kind within 3 px of a marker's first are in it */
	MARK_LIST = 3,       /* events a merged marker's tooltip lists */
};

/* marker kinds, one row each in a VM's "processes" lane */
static const struct {
	uint16_t type;
	const char *kind, *colour, *label;
} KINDS[] = {
	{ SEV_FORK,    "fork",    "#2e9e44", "fork" },
	{ SEV_EXEC,    "exec",    "#1f5fbf", "exec" },
	{ SEV_RENAME,  "rename",  "#8e44ad", "rename" },
	{ SEV_EXIT,    "exit",    "#c62828", "exit" },
	{ SEV_LOST,    "lost",    "#e67e22", "lost (started and ended unseen)" },
	{ SEV_RESTART, "restart", "#000000", "guest kernel restart" },
};
#define NKINDS (sizeof(KINDS) / sizeof(KINDS[0]))

struct draw {
	FILE *f;
	const struct timeline *tl;
	double ns_per_px;
	unsigned width;
	uint32_t *colour;          /* per process */
	struct tc_stats st;
};

static double xpos(const struct draw *d, uint64_t t)
{
	return LEFT + (t < d->tl->begin ? 0 : (double)(t - d->tl->begin) / d->ns_per_px);
}

/* seconds since the session's start */
static double rel_s(const struct timeline *tl, uint64_t t)
{
	return t >= tl->t0 ? (t - tl->t0) / 1e9 : -((tl->t0 - t) / 1e9);
}

static void fmt_dur(char *buf, size_t len, uint64_t ns)
{
	if (ns < 1000000)
		snprintf(buf, len, "%.1f us", ns / 1e3);
	else if (ns < 1000000000)
		snprintf(buf, len, "%.3f ms", ns / 1e6);
	else
		snprintf(buf, len, "%.3f s", ns / 1e9);
}

static const char *vm_name(const struct timeline *tl, uint32_t vm)
{
	return vm < AN_MAX_VMS && tl->vms[vm].known ? tl->vms[vm].name : "?";
}

static void rgb(char out[8], uint32_t c)
{
	snprintf(out, 8, "#%06x", c & 0xffffff);
}

static void draw_span(struct draw *d, const struct tc_box *b, uint32_t vcpu)
{
	const struct timeline *tl = d->tl;
	double x0 = xpos(d, b->start), x1 = xpos(d, b->end);
	char col[8], dur[32], busy[32];

	if (b->merged == 1) {
		const struct tl_thread *t = &tl->thr_list[b->thr];

		rgb(col, d->colour[t->proc]);
		fmt_dur(dur, sizeof(dur), b->end - b->start);
		fprintf(d->f, "<rect x=\"%.2f\" width=\"%.2f\" height=\"%d\" fill=\"%s\" data-pid=\"%d\" data-tgid=\"%d\" "
			"data-start-ns=\"%" PRIu64 "\" data-end-ns=\"%" PRIu64 "\"><title>", x0, x1 - x0, LANE_H, col,
			t->pid, t->tgid, b->start - tl->t0, b->end - tl->t0);
		tc_xml_text(d->f, t->comm, 16);
		fprintf(d->f, " pid %d tgid %d on vCPU %u: %.6f s, %s</title></rect>\n", t->pid, t->tgid, vcpu,
			rel_s(tl, b->start), dur);
		d->st.spans++;
		return;
	}
	/* merged: the colour of the process that held most of it when that is at least half, else grey */
	if (b->ntop && b->top_ns[0] * 2 >= b->busy_ns)
		rgb(col, d->colour[b->top[0]]);
	else
		snprintf(col, sizeof(col), "#9e9e9e");
	fmt_dur(dur, sizeof(dur), b->end - b->start);
	fmt_dur(busy, sizeof(busy), b->busy_ns);
	fprintf(d->f, "<rect x=\"%.2f\" width=\"%.2f\" height=\"%d\" fill=\"%s\" data-merged=\"%u\" data-tgid=\"%d\" "
		"data-start-ns=\"%" PRIu64 "\" data-end-ns=\"%" PRIu64 "\"><title>%u runs merged (each narrower than a "
		"pixel) on vCPU %u: %.6f s, %s, busy %s:", x0, x1 - x0 < 0.05 ? 0.05 : x1 - x0, LANE_H, col,
		b->merged, b->ntop ? tl->procs[b->top[0]].tgid : -1, b->start - tl->t0, b->end - tl->t0, b->merged,
		vcpu, rel_s(tl, b->start), dur, busy);
	for (uint32_t i = 0; i < b->ntop; i++) {
		const struct tl_proc *p = &tl->procs[b->top[i]];

		fputs(i ? ", " : " ", d->f);
		tc_xml_text(d->f, p->comm, 16);
		fprintf(d->f, " (tgid %d) %.0f%%", p->tgid, b->busy_ns ? 100.0 * b->top_ns[i] / b->busy_ns : 0);
	}
	fputs("</title></rect>\n", d->f);
	d->st.spans++;
	d->st.merged_spans++;
	d->st.runs_merged += b->merged;
}

static void draw_lane(struct draw *d, uint32_t vm, uint32_t vcpu, double y, struct tc_box *boxes)
{
	const struct timeline *tl = d->tl;
	size_t n, nb;
	const struct tl_run *runs = tl_lane_runs(tl, TL_LANE(vm, vcpu), &n);

	fprintf(d->f, "<g class=\"lane\" data-vm=\"%u\" data-vcpu=\"%u\" transform=\"translate(0,%.0f)\">\n"
		"<text class=\"lbl\" x=\"%d\" y=\"%d\">vCPU %u</text>"
		"<rect class=\"bg\" x=\"%d\" width=\"%u\" height=\"%d\"/>\n", vm, vcpu, y, LEFT - 8, LANE_H - 5, vcpu, LEFT,
		d->width, LANE_H);
	nb = tc_merge(tl, runs, n, d->ns_per_px, boxes);
	for (size_t i = 0; i < nb; i++)
		draw_span(d, &boxes[i], vcpu);
	fputs("</g>\n", d->f);
	d->st.lanes++;
}

/* One marker for marks[0..n) (one kind, one VM, within MARK_MERGE_PX of the first). */
static void draw_marker(struct draw *d, const struct tl_mark *m, size_t n, unsigned row, double y)
{
	const struct timeline *tl = d->tl;
	double x = xpos(d, m[0].t), top = y + row * MARK_ROW;

	switch (KINDS[row].type) {
	case SEV_FORK:   fprintf(d->f, "<path class=\"mk k-fork\" d=\"M%.2f %.1fl3 %dh-6z\"", x, top, MARK_ROW - 1); break;
	case SEV_EXIT:   fprintf(d->f, "<path class=\"mk k-exit\" d=\"M%.2f %.1fl3 -%dh-6z\"", x, top + MARK_ROW - 1, MARK_ROW - 1); break;
	case SEV_EXEC:   fprintf(d->f, "<path class=\"mk k-exec\" d=\"M%.2f %.1fl3 3l-3 3l-3 -3z\"", x, top); break;
	default:
		fprintf(d->f, "<rect class=\"mk k-%s\" x=\"%.2f\" y=\"%.1f\" width=\"%d\" height=\"%d\"", KINDS[row].kind,
			x - (KINDS[row].type == SEV_RESTART ? 1 : 3), top, KINDS[row].type == SEV_RESTART ? 2 : 6,
			MARK_ROW - 1);
	}
	fprintf(d->f, " data-kind=\"%s\" data-count=\"%zu\" data-start-ns=\"%" PRIu64 "\" data-end-ns=\"%" PRIu64 "\"><title>",
		KINDS[row].kind, n, m[0].t - tl->t0, m[n - 1].t - tl->t0);
	if (n > 1)
		fprintf(d->f, "%zu %s events, %.6f s to %.6f s:", n, KINDS[row].kind, rel_s(tl, m[0].t), rel_s(tl, m[n - 1].t));
	for (size_t i = 0; i < n && i < MARK_LIST; i++) {
		const struct tl_mark *e = &m[i];

		fputs(n > 1 ? "\n" : "", d->f);
		if (e->type == SEV_LOST) {
			int64_t cnt = e->last >= e->pid && e->pid >= 0 ? (int64_t)e->last - e->pid + 1 : 0;

			fprintf(d->f, "lost %.6f s: %" PRId64 " pid(s) %d-%d started and ended unseen", rel_s(tl, e->t), cnt,
				e->pid, e->last);
			continue;
		}
		if (e->type == SEV_RESTART) {
			fprintf(d->f, "restart %.6f s: the guest kernel restarted", rel_s(tl, e->t));
			continue;
		}
		fprintf(d->f, "%s %.6f s: pid %d", KINDS[row].kind, rel_s(tl, e->t), e->pid);
		if (e->tgid != e->pid)
			fprintf(d->f, " tgid %d", e->tgid);
		if (e->type == SEV_FORK)
			fprintf(d->f, " ppid %d", e->ppid);
		fputc(' ', d->f);
		tc_xml_text(d->f, e->comm, 16);
	}
	if (n > MARK_LIST)
		fprintf(d->f, "\n... and %zu more", n - MARK_LIST);
	fputs("</title>", d->f);
	fputs(KINDS[row].type == SEV_FORK || KINDS[row].type == SEV_EXIT || KINDS[row].type == SEV_EXEC ? "</path>\n" :
	      "</rect>\n", d->f);
	d->st.markers++;
	d->st.events_marked += n;
}

/* A VM's markers: each kind in its own row, those within MARK_MERGE_PX of a marker's first event merged into it. */
static void draw_marks(struct draw *d, uint32_t vm, double y, double vm_bottom)
{
	const struct timeline *tl = d->tl;
	struct tl_mark *m = malloc((tl->nmarks ? tl->nmarks : 1) * sizeof(*m));

	if (!m)
		return;
	for (unsigned row = 0; row < NKINDS; row++) {
		size_t n = 0;

		for (size_t i = 0; i < tl->nmarks; i++)   /* this kind's marks of this VM, in time order */
			if (tl->marks[i].vm == vm && tl->marks[i].type == KINDS[row].type)
				m[n++] = tl->marks[i];
		for (size_t i = 0, j; i < n; i = j) {
			for (j = i + 1; j < n && (double)(m[j].t - m[i].t) < MARK_MERGE_PX * d->ns_per_px; j++)
				;
			draw_marker(d, m + i, j - i, row, y);
			if (KINDS[row].type == SEV_RESTART)   /* and a line across the VM's lanes */
				fprintf(d->f, "<line class=\"rs\" x1=\"%.2f\" x2=\"%.2f\" y1=\"%.1f\" y2=\"%.1f\"/>\n",
					xpos(d, m[i].t), xpos(d, m[i].t), y, vm_bottom);
		}
	}
	free(m);
}

/* A "nice" tick step (1, 2 or 5 times a power of ten ns) giving at most ~12 ticks. */
static uint64_t tick_step(uint64_t span)
{
	uint64_t p = 1;

	while (p <= UINT64_MAX / 10) {
		if (span / p <= 12) return p;
		if (span / (2 * p) <= 12) return 2 * p;
		if (span / (5 * p) <= 12) return 5 * p;
		p *= 10;
	}
	return p;
}

static void draw_axis(struct draw *d, double y_top, double y_bottom)
{
	const struct timeline *tl = d->tl;
	uint64_t step = tick_step(tl->end - tl->begin);
	int dec = 0;
	/* ticks at multiples of step since the session's start */
	uint64_t rel0 = tl->begin >= tl->t0 ? tl->begin - tl->t0 : 0, t;

	for (uint64_t s = step; s < 1000000000ULL && dec < 9; s *= 10)
		dec++;
	fputs("<g class=\"axis\">\n", d->f);
	fprintf(d->f, "<line class=\"ax\" x1=\"%d\" x2=\"%u\" y1=\"%.1f\" y2=\"%.1f\"/>\n", LEFT, LEFT + d->width, y_top, y_top);
	for (t = (rel0 + step - 1) / step * step; tl->t0 + t <= tl->end; t += step) {
		double x = xpos(d, tl->t0 + t);

		fprintf(d->f, "<line class=\"grid\" x1=\"%.2f\" x2=\"%.2f\" y1=\"%.1f\" y2=\"%.1f\"/>"
			"<text class=\"tick\" x=\"%.2f\" y=\"%.1f\">%.*f s</text>\n", x, x, y_top - 4, y_bottom, x, y_top - 7,
			dec, t / 1e9);
		if (t > UINT64_MAX - step)
			break;
	}
	fputs("</g>\n", d->f);
}

static const struct timeline *cmp_tl;

static int cmp_proc_time(const void *a, const void *b)
{
	const struct tl_proc *x = &cmp_tl->procs[*(const uint32_t *)a], *y = &cmp_tl->procs[*(const uint32_t *)b];

	if (x->run_ns != y->run_ns)
		return x->run_ns < y->run_ns ? 1 : -1;
	if (x->vm != y->vm)
		return x->vm < y->vm ? -1 : 1;
	return (x->tgid > y->tgid) - (x->tgid < y->tgid);
}

static void draw_legend(struct draw *d, double y, bool multi_vm)
{
	const struct timeline *tl = d->tl;
	uint32_t *order = malloc((tl->nprocs ? tl->nprocs : 1) * sizeof(*order));
	size_t n = 0;
	double colw = d->width / (double)LEGEND_COLS;

	if (!order)
		return;
	for (size_t i = 0; i < tl->nprocs; i++)
		if (tl->procs[i].run_ns)
			order[n++] = (uint32_t)i;
	cmp_tl = tl;
	qsort(order, n, sizeof(*order), cmp_proc_time);
	fprintf(d->f, "<g class=\"legend\">\n<text class=\"lbl\" x=\"%d\" y=\"%.1f\">most CPU</text>\n", LEFT - 8, y + 11);
	for (size_t i = 0; i < n && i < TC_LEGEND; i++) {
		const struct tl_proc *p = &tl->procs[order[i]];
		double x = LEFT + (i % LEGEND_COLS) * colw, yy = y + (i / LEGEND_COLS) * LEGEND_ROW;
		char col[8], dur[32];

		rgb(col, d->colour[order[i]]);
		fmt_dur(dur, sizeof(dur), p->run_ns);
		fprintf(d->f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"12\" height=\"12\" fill=\"%s\" data-tgid=\"%d\"/>"
			"<text x=\"%.1f\" y=\"%.1f\">", x, yy, col, p->tgid, x + 16, yy + 10);
		tc_xml_text(d->f, p->comm, 16);
		fprintf(d->f, " (tgid %d%s", p->tgid, multi_vm ? ", " : "");
		if (multi_vm)
			tc_xml_text(d->f, vm_name(tl, p->vm), 128);
		fprintf(d->f, ") %s, %" PRIu64 " runs</text>\n", dur, p->runs);
	}
	if (!n)
		fprintf(d->f, "<text x=\"%d\" y=\"%.1f\">no process ran in this window</text>\n", LEFT, y + 10);
	fputs("</g>\n", d->f);
	free(order);
}

static size_t shown_vms(const struct timeline *tl, uint32_t *vms)
{
	size_t n = 0;

	for (uint32_t v = 0; v < AN_MAX_VMS; v++)
		if (tl->vms[v].selected && (tl->vms[v].known || tl->vms[v].seen))
			vms[n++] = v;
	return n;
}

int tc_render_svg(FILE *f, const struct timeline *tl, const struct tc_opts *o, struct tc_stats *st)
{
	struct draw d = { .f = f, .tl = tl, .width = o->width ? o->width : TC_DEFAULT_WIDTH };
	uint32_t vms[AN_MAX_VMS];
	size_t nvms = shown_vms(tl, vms), maxlane = 1;
	double y, height, legend_y, lanes_top;
	struct tc_box *boxes;
	size_t nlegend = 0;
	char span[32];

	d.ns_per_px = (double)(tl->end - tl->begin) / d.width;
	d.colour = malloc((tl->nprocs ? tl->nprocs : 1) * sizeof(*d.colour));
	for (size_t l = 0; l < (size_t)AN_MAX_VMS * TL_MAX_VCPUS; l++) {
		size_t n;

		tl_lane_runs(tl, (uint16_t)l, &n);
		if (n > maxlane)
			maxlane = n;
	}
	boxes = malloc(maxlane * sizeof(*boxes));
	if (!d.colour || !boxes) {
		free(d.colour);
		free(boxes);
		return -ENOMEM;
	}
	for (size_t i = 0; i < tl->nprocs; i++) {
		d.colour[i] = tc_colour(vm_name(tl, tl->procs[i].vm), tl->procs[i].tgid);
		if (tl->procs[i].run_ns)
			nlegend++;
	}
	if (nlegend > TC_LEGEND)
		nlegend = TC_LEGEND;
	/* the height: per VM its name line, the marker rows and its lanes; then the axis' labels and the legend */
	height = TOP;
	for (size_t i = 0; i < nvms; i++)
		height += VM_HEAD + NKINDS * MARK_ROW + LANE_GAP + tl->vms[vms[i]].nvcpus * (LANE_H + LANE_GAP);
	lanes_top = TOP;
	legend_y = height + 8;
	height = legend_y + ((nlegend ? nlegend : 1) + LEGEND_COLS - 1) / LEGEND_COLS * LEGEND_ROW + 36;

	fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"no\"?>\n"
		"<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"%u\" height=\"%.0f\" "
		"viewBox=\"0 0 %u %.0f\" font-family=\"sans-serif\" font-size=\"11\" data-t0-ns=\"%" PRIu64 "\" "
		"data-begin-ns=\"%" PRIu64 "\" data-end-ns=\"%" PRIu64 "\" data-ns-per-px=\"%.3f\" data-width=\"%u\">\n",
		LEFT + d.width + RIGHT, height, LEFT + d.width + RIGHT, height, tl->t0, tl->begin - tl->t0, tl->end - tl->t0,
		d.ns_per_px, d.width);
	fputs("<style>\n"
	      "text{fill:#222}.title{font-size:14px;font-weight:bold}.sub{fill:#555}.note{fill:#b00020}\n"
	      ".lbl{text-anchor:end}.vmname{font-weight:bold}.tick{text-anchor:middle;fill:#555;font-size:10px}\n"
	      ".bg{fill:#f3f3f3}.grid{stroke:#ddd;stroke-width:0.5}.ax{stroke:#888}.rs{stroke:#000;stroke-dasharray:3 2}\n", f);
	for (size_t k = 0; k < NKINDS; k++)
		fprintf(f, ".k-%s{fill:%s}", KINDS[k].kind, KINDS[k].colour);
	fputs("\n</style>\n<rect width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>\n", f);
	fputs("<text class=\"title\" x=\"10\" y=\"18\">vmoffset-trace timechart: ", f);
	tc_xml_text(f, o->source ? o->source : "", 4096);
	fmt_dur(span, sizeof(span), tl->end - tl->begin);
	fprintf(f, "</text>\n<text class=\"sub\" x=\"10\" y=\"33\">%.6f s to %.6f s (%s) since the session's start; "
		"%zu runs; runs narrower than a pixel (%s) merged into busy spans; idle (pid 0) shows as gaps. Markers:",
		rel_s(tl, tl->begin), rel_s(tl, tl->end), span, tl->nruns, (fmt_dur(span, sizeof(span),
		(uint64_t)d.ns_per_px), span));
	for (size_t k = 0; k < NKINDS; k++)
		fprintf(f, " <tspan fill=\"%s\">%s</tspan>%s", KINDS[k].colour, KINDS[k].label, k + 1 < NKINDS ? "," : "");
	fputs("</text>\n", f);
	if (o->note && *o->note) {
		fputs("<text class=\"note\" x=\"10\" y=\"47\">", f);
		tc_xml_text(f, o->note, 4096);
		fputs("</text>\n", f);
	}
	y = lanes_top;
	draw_axis(&d, lanes_top, legend_y - 8);
	for (size_t i = 0; i < nvms; i++) {
		const struct tl_vm *v = &tl->vms[vms[i]];
		double bottom = y + VM_HEAD + NKINDS * MARK_ROW + LANE_GAP + v->nvcpus * (LANE_H + LANE_GAP);

		fprintf(f, "<g class=\"vm\" data-vm=\"%u\" data-vm-pid=\"%d\" data-vm-name=\"", vms[i], v->pid);
		tc_xml_text(f, vm_name(tl, vms[i]), 128);
		fprintf(f, "\">\n<text class=\"vmname\" x=\"10\" y=\"%.1f\">", y + 14);
		tc_xml_text(f, vm_name(tl, vms[i]), 128);
		fprintf(f, "</text><text class=\"sub\" x=\"%d\" y=\"%.1f\">QEMU pid %d, %u vCPU%s</text>\n", LEFT, y + 14,
			v->pid, v->nvcpus, v->nvcpus == 1 ? "" : "s");
		y += VM_HEAD;
		fprintf(f, "<text class=\"lbl\" x=\"%d\" y=\"%.1f\">processes</text>\n<g class=\"marks\" data-vm=\"%u\">\n",
			LEFT - 8, y + NKINDS * MARK_ROW / 2.0 + 4, vms[i]);
		draw_marks(&d, vms[i], y, bottom);
		fputs("</g>\n", f);
		y += NKINDS * MARK_ROW + LANE_GAP;
		for (uint32_t c = 0; c < v->nvcpus; c++) {
			draw_lane(&d, vms[i], c, y, boxes);
			y += LANE_H + LANE_GAP;
		}
		fputs("</g>\n", f);
	}
	if (!nvms)
		fprintf(f, "<text x=\"%d\" y=\"%.1f\">no VM in this session%s</text>\n", LEFT, y + 14, "");
	draw_legend(&d, legend_y, nvms > 1);
	fputs("</svg>\n", f);
	free(boxes);
	free(d.colour);
	if (st)
		*st = d.st;
	return ferror(f) ? -EIO : 0;
}
