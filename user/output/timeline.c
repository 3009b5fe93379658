/* The runs and lifecycle marks of a session, cut to a window; see timeline.h. */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include "common/oatab.h"
#include "output/timeline.h"

static uint64_t mix(uint64_t h)
{
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	return h;
}

static uint64_t tkey_hash(const void *p)
{
	const struct tl_tkey *k = p;
	uint64_t c0, c1;

	memcpy(&c0, k->comm, 8);
	memcpy(&c1, k->comm + 8, 8);
	return mix(((uint64_t)k->vm << 32 ^ (uint32_t)k->pid) * 31 + (uint32_t)k->tgid + mix(c0) * 7 + mix(c1 + 1));
}

static bool tkey_same(const void *a, const void *b)
{
	const struct tl_tkey *x = a, *y = b;

	return x->vm == y->vm && x->pid == y->pid && x->tgid == y->tgid && !memcmp(x->comm, y->comm, 16);
}

static const struct oatab_type tkey_type = { sizeof(struct tl_tkey), offsetof(struct tl_tkey, used), 1024,
					     tkey_hash, tkey_same };

static uint64_t pkey_hash(const void *p)
{
	const struct tl_pkey *k = p;

	return mix((uint64_t)k->vm << 32 ^ (uint32_t)k->tgid);
}

static bool pkey_same(const void *a, const void *b)
{
	const struct tl_pkey *x = a, *y = b;

	return x->vm == y->vm && x->tgid == y->tgid;
}

static const struct oatab_type pkey_type = { sizeof(struct tl_pkey), offsetof(struct tl_pkey, used), 256,
					     pkey_hash, pkey_same };

/* Grow *arr (elements of size sz) to hold one more than *n. */
static int grow(void **arr, size_t *cap, size_t n, size_t sz)
{
	void *p;
	size_t ncap;

	if (n < *cap)
		return 0;
	ncap = *cap ? *cap * 2 : 1024;
	p = realloc(*arr, ncap * sz);
	if (!p)
		return -ENOMEM;
	*arr = p;
	*cap = ncap;
	return 0;
}

/* The process (vm, tgid): its index, created on first sight. -1 when out of memory. */
static int64_t proc_of(struct timeline *tl, uint32_t vm, int32_t tgid, int32_t pid, const char comm[16])
{
	struct tl_pkey key = { .vm = vm, .tgid = tgid }, *k;
	struct tl_proc *p;
	bool fresh;

	k = oatab_slot(&pkey_type, (void **)&tl->pk, &tl->pk_cap, &tl->pk_n, &key, &fresh);
	if (!k)
		return -1;
	if (fresh) {
		if (grow((void **)&tl->procs, &tl->procs_cap, tl->nprocs, sizeof(*tl->procs))) {
			k->used = false;   /* not taken after all (a later lookup will retry) */
			tl->pk_n--;
			return -1;
		}
		k->idx = (uint32_t)tl->nprocs;
		tl->procs[tl->nprocs++] = (struct tl_proc){ .vm = vm, .tgid = tgid };
		memcpy(tl->procs[k->idx].comm, comm, 16);
	}
	p = &tl->procs[k->idx];
	if (pid == tgid && !p->leader_named) {   /* a process is named after its leader */
		memcpy(p->comm, comm, 16);
		p->leader_named = true;
	}
	return k->idx;
}

/* The thread (vm, pid, tgid, comm): its index in thr_list. -1 when out of memory. */
static int64_t thread_of(struct timeline *tl, uint32_t vm, int32_t pid, int32_t tgid, const char comm[16])
{
	struct tl_tkey key = { .vm = vm, .pid = pid, .tgid = tgid }, *k;
	uint32_t slot = (uint32_t)(mix((uint64_t)vm << 32 ^ (uint32_t)pid) & 1023), c = tl->tcache[slot];
	int64_t proc;
	bool fresh;

	if (c) {
		const struct tl_thread *t = &tl->thr_list[c - 1];

		if (t->vm == vm && t->pid == pid && t->tgid == tgid && !memcmp(t->comm, comm, 16))
			return c - 1;
	}
	memcpy(key.comm, comm, 16);
	k = oatab_slot(&tkey_type, (void **)&tl->thr, &tl->thr_cap, &tl->thr_n, &key, &fresh);
	if (!k)
		return -1;
	if (!fresh) {
		tl->tcache[slot] = k->idx + 1;
		return k->idx;
	}
	proc = proc_of(tl, vm, tgid, pid, comm);
	if (proc < 0 || grow((void **)&tl->thr_list, &tl->thr_list_cap, tl->thr_n - 1, sizeof(*tl->thr_list))) {
		k->used = false;
		tl->thr_n--;
		return -1;
	}
	k->idx = (uint32_t)(tl->thr_n - 1);
	tl->thr_list[k->idx] = (struct tl_thread){ .vm = vm, .pid = pid, .tgid = tgid, .proc = (uint32_t)proc };
	memcpy(tl->thr_list[k->idx].comm, comm, 16);
	tl->tcache[slot] = k->idx + 1;
	return k->idx;
}

static uint64_t win_from(const struct timeline *tl)
{
	return tl->o.have_from ? tl->t0 + tl->o.from_ns : 0;
}

static uint64_t win_to(const struct timeline *tl)
{
	return tl->o.have_to ? tl->t0 + tl->o.to_ns : UINT64_MAX;
}

/* The analysis' hook: a run as it is attributed. */
static void on_run(void *ctx, const struct an_vcpu *s, uint64_t from, uint64_t to)
{
	struct timeline *tl = ctx;
	uint64_t lo = win_from(tl), hi = win_to(tl);
	struct tl_lane *lane;
	int64_t thr;

	if (s->pid == 0)   /* the idle tasks: a gap */
		return;
	if (s->vcpu >= TL_MAX_VCPUS || s->vm >= AN_MAX_VMS) {
		tl->runs_dropped++;
		return;
	}
	if (from < lo)
		from = lo;
	if (to > hi)
		to = hi;
	if (to <= from)
		return;
	if (!tl->lanes && !(tl->lanes = calloc((size_t)AN_MAX_VMS * TL_MAX_VCPUS, sizeof(*tl->lanes)))) {
		tl->err = -ENOMEM;
		return;
	}
	lane = &tl->lanes[TL_LANE(s->vm, s->vcpu)];
	thr = thread_of(tl, s->vm, s->pid, s->tgid, s->comm);
	if (thr < 0 || grow((void **)&lane->runs, &lane->cap, lane->n, sizeof(*lane->runs))) {
		tl->err = -ENOMEM;
		return;
	}
	lane->runs[lane->n++] = (struct tl_run){ .start = from, .end = to, .thr = (uint32_t)thr,
						 .lane = TL_LANE(s->vm, s->vcpu) };
	tl->nruns++;
}

void tl_init(struct timeline *tl, const struct tl_opts *o)
{
	memset(tl, 0, sizeof(*tl));
	if (o)
		tl->o = *o;
	an_init(&tl->an);
	tl->an.on_run = on_run;
	tl->an.on_run_ctx = tl;
}

void tl_free(struct timeline *tl)
{
	an_free(&tl->an);
	free(tl->thr);
	free(tl->thr_list);
	free(tl->pk);
	free(tl->procs);
	for (size_t l = 0; tl->lanes && l < (size_t)AN_MAX_VMS * TL_MAX_VCPUS; l++)
		free(tl->lanes[l].runs);
	free(tl->lanes);
	free(tl->marks);
	memset(tl, 0, sizeof(*tl));
}

void tl_set_t0(struct timeline *tl, uint64_t t0)
{
	tl->t0 = t0;
	tl->have_t0 = true;
}

bool tl_vm_matches(const char *want, const char *name, int32_t pid)
{
	char *end;
	long v;

	if (!want)
		return true;
	if (name && !strcmp(want, name))
		return true;
	v = strtol(want, &end, 10);
	return *want && !*end && v > 0 && v == pid;
}

void tl_vm(struct timeline *tl, uint32_t index, const char *name, int32_t pid, uint32_t nvcpus)
{
	struct tl_vm *v;

	if (index >= AN_MAX_VMS)
		return;
	v = &tl->vms[index];
	v->known = true;
	snprintf(v->name, sizeof(v->name), "%s", name && *name ? name : "?");
	v->pid = pid;
	if (nvcpus > TL_MAX_VCPUS)
		nvcpus = TL_MAX_VCPUS;
	if (nvcpus > v->nvcpus)
		v->nvcpus = nvcpus;
	v->selected = tl_vm_matches(tl->o.vm, v->name, pid);
	an_set_vm(&tl->an, index, v->name, pid, v->nvcpus);
}

bool tl_vm_matched(const struct timeline *tl)
{
	for (int i = 0; i < AN_MAX_VMS; i++)
		if (tl->vms[i].known && tl->vms[i].selected)
			return true;
	return !tl->o.vm;
}

void tl_event(struct timeline *tl, const struct sess_event *ev)
{
	struct tl_vm *v;

	if (ev->type == 0 || ev->type >= SEV_NR || ev->vm >= AN_MAX_VMS)
		return;
	if (!tl->have_t0)
		tl_set_t0(tl, ev->time_ns);
	if (ev->time_ns > tl->t_last)
		tl->t_last = ev->time_ns;
	v = &tl->vms[ev->vm];
	if (!v->known && !tl->o.vm)   /* its VM block was lost: shown as "?" */
		v->selected = true;
	if (!v->selected)
		return;
	v->seen = true;
	if (!tl->t_first || ev->time_ns < tl->t_first)
		tl->t_first = ev->time_ns;
	tl->events++;
	if (ev->type == SEV_SWITCH && ev->vcpu < TL_MAX_VCPUS && ev->vcpu + 1 > v->nvcpus)
		v->nvcpus = ev->vcpu + 1;
	an_event(&tl->an, ev);
	if (ev->type != SEV_SWITCH && ev->time_ns >= win_from(tl) && ev->time_ns <= win_to(tl)) {
		struct tl_mark *m;

		if (grow((void **)&tl->marks, &tl->marks_cap, tl->nmarks, sizeof(*tl->marks))) {
			tl->err = -ENOMEM;
			return;
		}
		m = &tl->marks[tl->nmarks++];
		*m = (struct tl_mark){ .t = ev->time_ns, .vm = ev->vm, .type = ev->type, .pid = ev->pid,
				       .tgid = ev->tgid, .ppid = ev->ppid, .last = ev->prev_pid };
		memcpy(m->comm, ev->comm, 16);
	}
}

int tl_finish(struct timeline *tl)
{
	an_close_runs(&tl->an, tl->t_last);   /* the runs still open end at the last event, as report's do */
	if (tl->err)
		return tl->err;
	tl->begin = tl->o.have_from ? tl->t0 + tl->o.from_ns : tl->t0 < tl->t_first || !tl->t_first ? tl->t0 : tl->t_first;
	tl->end = tl->o.have_to ? tl->t0 + tl->o.to_ns : tl->t_last;
	if (tl->end <= tl->begin)
		tl->end = tl->begin + 1000000;   /* an empty window still has a scale: 1 ms */
	for (size_t i = 0; i < tl->nprocs; i++)
		tl->procs[i].run_ns = tl->procs[i].runs = 0;
	for (size_t l = 0; tl->lanes && l < (size_t)AN_MAX_VMS * TL_MAX_VCPUS; l++)
		for (size_t i = 0; i < tl->lanes[l].n; i++) {
			const struct tl_run *r = &tl->lanes[l].runs[i];
			struct tl_proc *p = &tl->procs[tl->thr_list[r->thr].proc];

			p->run_ns += r->end - r->start;
			p->runs++;
		}
	return 0;
}

const struct tl_run *tl_lane_runs(const struct timeline *tl, uint16_t lane, size_t *n)
{
	if (!tl->lanes || lane >= (size_t)AN_MAX_VMS * TL_MAX_VCPUS) {
		*n = 0;
		return NULL;
	}
	*n = tl->lanes[lane].n;
	return tl->lanes[lane].runs;
}
