/* The per-CPU current-task slot: candidates, user-space evidence, confirmation and replacement; see slot.h. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "arch/x86_64.h"
#include "common/log.h"
#include "mem/qmp.h"
#include "trace/cache.h"
#include "trace/tracer.h"
#include "trace/tracer_internal.h"

#define PERCPU_SPAN        (256 << 10)   /* bytes of each per-CPU area searched for task pointers */
#define SLOT_BEFORE_GDT    (16 << 10)    /* 32-bit: searched before gdt_page's per-CPU copy as well */
#define SETUP_MIN_ROUNDS   5
#define ROUND_GAP_NS       10000000ULL   /* between set-up rounds: let the vCPUs move on */
#define FAST_PER_GAP       5             /* fast samples of every slot in that gap */
#define CHECK_CONFIRMED_NS 1000000000ULL /* while tracing: a round a second once confirmed ... */
#define CHECK_OPEN_NS      100000000ULL  /* ... ten a second while not */
#define RESCAN_GAP_NS      5000000000ULL
#define COUNT_CAP          64            /* counts are halved past this: recent evidence weighs more */

static uint64_t now_ns(void) { return vmt_now_ns(); }

struct taskset { uint64_t *addr; size_t n; };

static bool in_set(const struct taskset *s, uint64_t a)
{
	size_t lo = 0, hi = s->n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (s->addr[mid] == a)
			return true;
		if (s->addr[mid] < a)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

/* A task: a listed one, an idle task (pid 0, "swapper/N": not on the task list), or one the walk did not
 * see (forked since: under churn the current task often is) that reads back like a task — ids in range, a
 * printable name, a kernel pointer or NULL for mm. */
static bool is_task(struct vm_tracer *t, const struct taskset *s, uint64_t p)
{
	struct vmt_task k;
	char comm[16];

	if (!vmt_kptr(t, p))
		return false;
	if (s && in_set(s, p))
		return true;
	/* ids in range, a name, mm a kernel pointer or NULL (vmt_read_task); the name printable as read */
	if (vmt_read_task(t, p, &k) || vmem_read(&t->vm, p + t->res.task[TF_COMM].offset, comm, sizeof(comm)))
		return false;
	if (k.pid == 0)
		return !strncmp(k.comm, "swapper/", 8);
	for (size_t i = 0; i < sizeof(comm) && comm[i]; i++)
		if ((unsigned char)comm[i] < 0x20 || (unsigned char)comm[i] > 0x7e)
			return false;
	return true;
}

/* The page-table root that task p's mm (user: mm) or active_mm (any) runs, as a physical address. */
static bool task_root(struct vm_tracer *t, uint64_t p, bool user, uint64_t *pa)
{
	const struct discovery_result *r = &t->res;
	uint64_t mm, pgd;

	return !vmt_read_ptr(t, p + r->task[user ? TF_MM : TF_ACTIVE_MM].offset, &mm) &&
	       vmt_kptr(t, mm) && !vmt_read_ptr(t, mm + r->mm_pgd.offset, &pgd) &&
	       !vmem_translate(&t->vm, pgd, pa);
}

/* Candidate slots in [base, base + PERCPU_SPAN) past each vCPU's GS base (u64 arithmetic: base may be a
 * kernel-image address): on every vCPU a task, distinct tasks on distinct vCPUs. Appended to s. */
static void scan_window(struct vm_tracer *t, const struct taskset *set, uint64_t base, uint8_t *area)
{
	struct slot_state *s = &t->slot;

	for (uint32_t v = 0; v < t->nvcpu; v++)
		for (uint64_t off = 0; off < PERCPU_SPAN; off += 4096)
			if (vmem_read(&t->vm, t->vcpu[v].gs + base + off, area + (size_t)v * PERCPU_SPAN + off, 4096))
				memset(area + (size_t)v * PERCPU_SPAN + off, 0, 4096);
	const unsigned psz = guest_ptr_size(&t->res);

	for (int64_t off = 0; off + psz <= PERCPU_SPAN && s->n < SLOT_MAX_CAND; off += psz) {
		uint64_t p[VM_MAX_VCPUS];
		bool ok = true;

		for (uint32_t v = 0; v < t->nvcpu && ok; v++) {
			p[v] = 0;
			memcpy(&p[v], area + (size_t)v * PERCPU_SPAN + off, psz);
			ok = is_task(t, set, p[v]);
			for (uint32_t w = 0; w < v && ok; w++)
				ok = p[w] != p[v];
		}
		if (!ok)
			continue;
		memset(&s->c[s->n], 0, sizeof(s->c[s->n]));
		s->c[s->n].off = (int64_t)(base + (uint64_t)off);
		memcpy(s->c[s->n].last, p, sizeof(uint64_t) * t->nvcpu);
		s->n++;
	}
}

#define THIS_CPU_OFF_SCAN (16ULL << 30)   /* guest RAM searched for this_cpu_off */

/* Offsets Y (from the GS base) at which every vCPU's per-CPU memory holds that vCPU's own GS base: the
 * this_cpu_off variable. Found by searching guest RAM (through the direct map) for vCPU 0's GS base. */
static size_t find_this_cpu_off(struct vm_tracer *t, uint64_t *out, size_t max)
{
	const size_t chunk = 2u << 20;
	uint8_t *buf = malloc(chunk);
	uint64_t scanned = 0, gs0 = t->vcpu[0].gs;
	uint64_t image = t->text_base ? t->text_base : 0xffffffff80000000ULL;
	size_t n = 0;

	if (!buf || !t->res.page_offset_base)
		goto out;
	/* y lies in the image, so the variable's physical address gs0 + y - page_offset_base lies in the
	 * 1 GiB from gs0 + image - page_offset_base: only that part of RAM is searched, lowest first */
	uint64_t lo_pa = gs0 + image - t->res.page_offset_base, hi_pa = lo_pa + (1ULL << 30);

	for (size_t r = 0; r < t->tg.pm->nranges && n < max && scanned < THIS_CPU_OFF_SCAN; r++) {
		const struct phys_range *pr = &t->tg.pm->ranges[r];
		uint64_t from = pr->start > lo_pa ? pr->start : lo_pa & ~7ULL;
		uint64_t to = pr->start + pr->len < hi_pa ? pr->start + pr->len : hi_pa;

		for (uint64_t pa = from; pa < to && n < max && scanned < THIS_CPU_OFF_SCAN; pa += chunk) {
			size_t len = to - pa < chunk ? (size_t)(to - pa) : chunk;

			scanned += len;
			if (physmem_read(t->tg.pm, pa, buf, len))
				continue;
			for (size_t i = 0; i + 8 <= len && n < max; i += 8) {
				uint64_t v, y;
				bool all = true;

				memcpy(&v, buf + i, 8);
				if (v != gs0)
					continue;
				y = t->res.page_offset_base + pa + i - gs0;
				for (uint32_t k = 1; k < t->nvcpu && all; k++) {
					uint64_t w;
					all = !vmem_read_u64(&t->vm, t->vcpu[k].gs + y, &w) && w == t->vcpu[k].gs;
				}
				/* y = __per_cpu_start + offset of this_cpu_off: inside the kernel image (a copy of the
				 * GS base elsewhere, e.g. in __per_cpu_offset[], gives another y) */
				if (all && y >= image && y < image + (1ULL << 30))
					out[n++] = y;
			}
		}
	}
out:
	free(buf);
	return n;
}

/* Search the per-CPU areas for candidate slots (replacing the list). set: the tasks of a walk. */
static void scan(struct vm_tracer *t, const struct taskset *set)
{
	uint8_t *area = malloc((size_t)PERCPU_SPAN * t->nvcpu);
	int64_t prior = t->res.percpu_current;

	t->slot.n = 0;
	t->slot.unexplained = 0;
	if (!area)
		return;
	bool image_prior = prior != -1 && (prior < 0 || prior >= PERCPU_SPAN);

	if (image_prior)   /* an image address (not zero-based; from the cache): around it first */
		scan_window(t, set, ((uint64_t)prior & ~0xfffULL) - PERCPU_SPAN / 2, area);
	/* arm64: TPIDR_EL1 is an offset and a per-CPU variable lives at it + its link address, in the image:
	 * around the slots discovery saw holding each vCPU's running task (when it could not tell them apart) */
	for (uint32_t i = 0; i < t->res.nrunning_slots && !t->slot.n && t->res.arm64; i++)
		scan_window(t, set, ((uint64_t)t->res.running_slots[i] & ~0xfffULL) - PERCPU_SPAN / 2, area);
	if (!t->slot.n && !t->res.arm64)   /* 32-bit: the base is gdt_page's copy, and variables may lie before it */
		scan_window(t, set, t->res.paging32 ? (uint64_t)-(int64_t)SLOT_BEFORE_GDT : 0, area);
	if (!t->slot.n && !t->res.paging32 && !t->res.arm64) {
		/* Not zero-based (x86-64 since 6.15): a per-CPU variable lives at GS base + its link-time
		 * address, __per_cpu_start + offset, inside the KASLR-shifted image. Find that shift from
		 * this_cpu_off, the per-CPU variable holding each CPU's own GS base. */
		uint64_t y[4];
		size_t ny = find_this_cpu_off(t, y, 4);

		for (size_t i = 0; i < ny && !t->slot.n; i++) {
			p_dbg("per-CPU areas are not zero-based: this_cpu_off at GS base %+" PRId64 ", searching around it",
			      (int64_t)y[i]);
			scan_window(t, set, (y[i] & ~0xfffULL) - PERCPU_SPAN / 2, area);
		}
	}
	free(area);
}

/* The prior choice (discovery's, the cache's or the user's) stays a candidate even when the scan did not
 * find it, so that evidence can confirm or refute it. */
static void keep_prior(struct vm_tracer *t)
{
	struct slot_state *s = &t->slot;
	int64_t prior = t->res.percpu_current;

	if (prior == -1 || s->n >= SLOT_MAX_CAND)
		return;
	for (size_t i = 0; i < s->n; i++)
		if (s->c[i].off == prior)
			return;
	memset(&s->c[s->n], 0, sizeof(s->c[s->n]));
	s->c[s->n].off = prior;
	for (uint32_t v = 0; v < t->nvcpu; v++)
		if (vmt_read_ptr(t, t->vcpu[v].gs + prior, &s->c[s->n].last[v]))
			s->c[s->n].last[v] = 0;
	s->n++;
}

static void halve_counts(struct slot_state *s)
{
	for (size_t i = 0; i < s->n; i++) {
		s->c[i].hit /= 2;
		s->c[i].miss /= 2;
	}
}

#define TASK_READ_MAX (16u << 10)   /* bytes of a task_struct searched for the saved FS base */

/* Does task p hold the value v (8-aligned) within its task_struct? */
static bool task_holds(struct vm_tracer *t, uint64_t p, uint64_t v)
{
	uint32_t len = t->res.task_stride && t->res.task_stride < TASK_READ_MAX ? t->res.task_stride : TASK_READ_MAX;
	uint64_t buf[512];

	for (uint32_t off = 0; off < len; off += sizeof(buf)) {
		uint32_t n = len - off < sizeof(buf) ? len - off : sizeof(buf);

		if (vmem_read(&t->vm, p + off, buf, n))
			return false;
		for (uint32_t k = 0; k < n / 8; k++)
			if (buf[k] == v)
				return true;
	}
	return false;
}

/* Of the matching candidates, keep those whose task saved this FS base — when any candidate that fits the
 * CR3 (held still across the round or not) names a task that does. */
static void refine_by_fs_base(struct vm_tracer *t, const struct slot_state *s, const uint64_t *val,
			      const bool *fits, bool *match, uint64_t fs_base)
{
	bool holds[SLOT_MAX_CAND], any = false;

	for (size_t i = 0; i < s->n; i++) {
		holds[i] = false;
		for (size_t j = 0; j < i && fits[i]; j++)   /* one read per distinct task */
			if (fits[j] && val[j] == val[i]) {
				holds[i] = holds[j];
				goto next;
			}
		holds[i] = fits[i] && task_holds(t, val[i], fs_base);
next:
		any |= holds[i];
	}
	for (size_t i = 0; i < s->n && any; i++)
		match[i] = match[i] && holds[i];
}

/*
 * One evidence round: every live candidate read on every vCPU, the vCPUs' registers over QMP, the
 * candidates read again. set: tasks for the "is a task" test (NULL while tracing: any task that reads
 * back). Returns the registers (caller frees) or NULL when QMP did not answer.
 */
static struct vcpu_state *evidence_round(struct vm_tracer *t, struct qmp *q, const struct taskset *set, size_t *nv)
{
	struct slot_state *s = &t->slot;
	uint64_t (*before)[VM_MAX_VCPUS] = calloc(s->n ? s->n : 1, sizeof(*before));
	struct vcpu_state *vs = NULL;

	*nv = 0;
	if (!before)
		return NULL;
	for (size_t i = 0; i < s->n; i++)
		for (uint32_t v = 0; v < t->nvcpu && !s->c[i].dead; v++)
			if (vmt_read_ptr(t, t->vcpu[v].gs + s->c[i].off, &before[i][v]))
				before[i][v] = 0;
	if (qmp_read_vcpus(q, &vs, nv)) {
		free(before);
		return NULL;
	}
	s->rounds++;
	for (uint32_t v = 0; v < t->nvcpu; v++) {
		const struct vcpu_state *r = NULL;
		uint64_t after[SLOT_MAX_CAND];
		uint64_t first = 0, root;
		bool stable[SLOT_MAX_CAND], valid[SLOT_MAX_CAND], disagree = false, user, any_match = false;

		for (size_t k = 0; k < *nv; k++)
			if (vs[k].id == t->vcpu[v].id && vs[k].valid)
				r = &vs[k];
		if (!r)
			continue;
		root = vmt_root_of(t, r->cr3);
		user = r->cr3 && vmt_vcpu_in_user(t, r);   /* in user space: the current task's mm runs this CR3 */
		for (size_t i = 0; i < s->n; i++) {
			struct slot_cand *c = &s->c[i];
			uint64_t pa;

			stable[i] = valid[i] = false;
			if (c->dead)
				continue;
			if (vmt_read_ptr(t, t->vcpu[v].gs + c->off, &after[i]) || !is_task(t, set, after[i])) {
				/* a slot that ever holds a non-task is out; while tracing only a non-pointer
				 * is (a task may have exited and been freed between two reads) */
				if (set || !vmt_kptr(t, after[i]))
					c->dead = true;
				continue;
			}
			valid[i] = true;
			c->changes += after[i] != c->last[v];
			c->last[v] = after[i];
			c->fits += r->cr3 && task_root(t, after[i], false, &pa) && root_matches_pgd(&t->res, pa, root);
			stable[i] = after[i] == before[i][v];
			if (stable[i] && !first)
				first = after[i];
			disagree |= stable[i] && after[i] != first;
		}
		if (!user)
			continue;
		s->user_samples++;
		if (!disagree)
			continue;
		bool match[SLOT_MAX_CAND], fits[SLOT_MAX_CAND], any_fits = false;

		for (size_t i = 0; i < s->n; i++) {
			uint64_t pa;

			fits[i] = valid[i] && task_root(t, after[i], true, &pa) && root_matches_pgd(&t->res, pa, root);
			match[i] = stable[i] && fits[i];
			any_fits |= fits[i];
		}
		/* Threads of one process share the CR3: a slot stuck on one thread fits whenever another runs
		 * (and the real slot, which moves, is often not still across the round to say otherwise). The
		 * FS base (the running thread's TLS) tells them apart: the task switched in last saved it in its
		 * thread_struct, inside its task_struct. Used where some candidate names a task that holds it. */
		if (any_fits && r->fs_base && !t->res.paging32)   /* a 32-bit kernel's FS is its per-CPU offset */
			refine_by_fs_base(t, s, after, fits, match, r->fs_base);
		for (size_t i = 0; i < s->n; i++) {
			if (!stable[i])
				continue;
			any_match |= match[i];
			if (match[i])
				s->c[i].hit++;
			else
				s->c[i].miss++;
			if (s->c[i].hit > COUNT_CAP || s->c[i].miss > COUNT_CAP)
				halve_counts(s);
		}
		s->unexplained += !any_match;
	}
	free(before);
	return vs;
}

static bool confirmed(const struct slot_cand *c)
{
	return !c->dead && c->hit >= SLOT_MIN_HITS && c->miss * 10 <= c->hit;
}

static int64_t net(const struct slot_cand *c) { return (int64_t)c->hit - 3 * (int64_t)c->miss; }

/* Fast samples (set-up, between rounds): every live slot on every vCPU, a bit for each that moved. */
static void fast_sample(struct vm_tracer *t)
{
	struct slot_state *s = &t->slot;

	for (uint32_t v = 0; v < t->nvcpu && s->nfast < SLOT_FAST_MAX; v++, s->nfast++)
		for (size_t i = 0; i < s->n; i++) {
			struct slot_cand *c = &s->c[i];
			uint64_t val;

			if (c->dead || vmt_read_ptr(t, t->vcpu[v].gs + c->off, &val))
				continue;
			if (s->nfast >= t->nvcpu && val != c->fast_last[v])   /* not the first pass */
				c->moved[s->nfast / 64] |= 1ULL << (s->nfast % 64);
			c->fast_last[v] = val;
		}
}

/* Fast samples at which a moved and b did not. */
static uint32_t moved_alone(const struct slot_cand *a, const struct slot_cand *b)
{
	uint32_t n = 0;

	for (size_t w = 0; w < SLOT_FAST_MAX / 64; w++)
		n += (uint32_t)__builtin_popcountll(a->moved[w] & ~b->moved[w]);
	return n;
}

/* b is a stale copy of a: a moved without b at least 3 times, b without a at most a tenth as often. */
static bool stale_copy(const struct slot_cand *b, const struct slot_cand *a)
{
	uint32_t ab = moved_alone(a, b);

	return ab >= 3 && moved_alone(b, a) * 10 <= ab;
}

static bool no_misses(const struct slot_cand *c) { return !c->dead && c->hit && c->miss * 10 <= c->hit; }

/* The best candidate (slot.h): user-space evidence first; then having changed at all (a slot that never moves
 * while the guest runs is a static pointer, whatever it fits); then the weak evidence (active_mm fits);
 * then the prior choice (discovery or the cache), then changes. -1 when none is alive. */
static bool moves(const struct slot_cand *c)
{
	for (size_t w = 0; w < SLOT_FAST_MAX / 64; w++)
		if (c->moved[w])
			return true;
	return c->changes > 0;
}

ssize_t slot_best(const struct slot_state *s, int64_t prior)
{
	ssize_t best = -1;
	bool switching = false;

	/* The guest switches tasks when a slot that held running tasks (its active_mm ran the CR3) moved: the
	 * current-task pointer then moves too, so a slot that never did is a static one, however many samples it
	 * fitted (on one vCPU a pointer stuck on one thread of the busy process fits whenever that thread runs,
	 * while the real slot, moving, is seldom still across a round to score) */
	for (size_t i = 0; i < s->n && !switching; i++)
		switching = !s->c[i].dead && s->c[i].fits && moves(&s->c[i]);
	for (size_t i = 0; i < s->n; i++) {
		const struct slot_cand *c = &s->c[i], *b = best >= 0 ? &s->c[best] : NULL;

		if (c->dead || (switching && !moves(c)))
			continue;
		if (!b || net(c) > net(b) ||
		    (net(c) == net(b) &&
		     ((c->changes > 0) > (b->changes > 0) ||
		      ((c->changes > 0) == (b->changes > 0) &&
		       (c->fits > b->fits ||
			(c->fits == b->fits &&
			 (c->off == prior || (b->off != prior && c->changes > b->changes))))))))
			best = (ssize_t)i;
	}
	/* a slot with evidence and no misses whose changes another such slot's include is a stale copy */
	for (size_t round = 0; best >= 0 && round < s->n; round++) {
		ssize_t better = -1;

		for (size_t i = 0; i < s->n && no_misses(&s->c[best]); i++)
			if ((ssize_t)i != best && no_misses(&s->c[i]) && stale_copy(&s->c[best], &s->c[i]) &&
			    (better < 0 || s->c[i].changes > s->c[better].changes))
				better = (ssize_t)i;
		if (better < 0)
			break;
		best = better;
	}
	return best;
}

static struct qmp *open_monitor(const char *path)
{
	struct qmp *q = NULL;
	bool json = log_json, quiet = log_quiet;

	if (!path || !path[0])
		return NULL;
	log_json = false;
	log_quiet = true;   /* a monitor that is busy or gone is not news here */
	if (qmp_open(path, 1000, &q))
		q = NULL;
	log_json = json;
	log_quiet = quiet;
	return q;
}

void slot_setup(struct vm_tracer *t, const char *qmp_path, double max_s)
{
	struct slot_state *s = &t->slot;
	struct discovery_opts d = { 0 };
	struct guest_task *g = NULL;
	struct taskset set = { 0 };
	struct qmp *q = NULL;
	size_t n = 0;
	uint64_t deadline;
	ssize_t best;

	slot_free(s);
	if (!t->nvcpu || guest_tasks_list(t->tg.pm, &t->res, &d, &g, &n) || !n)
		goto out;
	set.addr = calloc(n, sizeof(uint64_t));
	s->c = calloc(SLOT_MAX_CAND, sizeof(*s->c));
	if (!set.addr || !s->c)
		goto out;
	for (size_t i = 0; i < n; i++)
		set.addr[i] = g[i].addr;
	set.n = n;
	qsort(set.addr, n, sizeof(uint64_t), cmp_u64);
	scan(t, &set);
	keep_prior(t);
	p_dbg("per-CPU current task: %zu candidate slot(s) over %u vCPU(s), %zu tasks listed", s->n, t->nvcpu, n);
	if (!s->n)
		goto out;
	q = max_s > 0 ? open_monitor(qmp_path) : NULL;
	deadline = now_ns() + (uint64_t)(max_s * 1e9);
	while (q) {
		struct vcpu_state *vs;
		size_t nv;

		vs = evidence_round(t, q, &set, &nv);
		free(vs);
		if (!vs)
			break;
		best = slot_best(s, t->res.percpu_current);
		if ((s->rounds >= SETUP_MIN_ROUNDS && best >= 0 && confirmed(&s->c[best])) || now_ns() >= deadline)
			break;
		/* the gap between rounds: fast samples of every slot (which moves with which) */
		for (int k = 0; k < FAST_PER_GAP; k++) {
			struct timespec ts = { 0, (long)(ROUND_GAP_NS / FAST_PER_GAP) };

			fast_sample(t);
			nanosleep(&ts, NULL);
		}
	}
	for (size_t i = 0; i < s->n; i++)
		p_dbg("  slot %+" PRId64 ": %s, user-space evidence %u hit(s) %u miss(es); active_mm fits %u, %u change(s), "
		      "moved in %u of %u fast samples", s->c[i].off, s->c[i].dead ? "dead" : "live", s->c[i].hit,
		      s->c[i].miss, s->c[i].fits, s->c[i].changes, moved_alone(&s->c[i], &(struct slot_cand){ 0 }),
		      s->nfast);
	best = slot_best(s, t->res.percpu_current);
	if (best >= 0) {
		if (s->c[best].off != t->res.percpu_current)
			p_dbg("per-CPU current task: %+" PRId64 " instead of %+" PRId64, s->c[best].off,
			      t->res.percpu_current);
		t->res.percpu_current = s->c[best].off;
		s->confirmed = confirmed(&s->c[best]);
	}
	p_dbg("per-CPU current task %+" PRId64 ": %s after %u round(s) (%u vCPU sample(s) in user space)",
	      t->res.percpu_current, s->confirmed ? "confirmed" : "provisional", s->rounds, s->user_samples);
out:
	if (q)
		qmp_close(q);
	free(g);
	free(set.addr);
}

/* While tracing: a fresh candidate list from the last walk's tasks, keeping the chosen slot. */
static void rescan(struct vm_tracer *t)
{
	struct taskset set = { calloc(t->ntasks + 1, sizeof(uint64_t)), 0 };

	if (!set.addr)
		return;
	for (size_t i = 0; i < t->ntasks; i++)
		if (!t->tasks[i].exited)
			set.addr[set.n++] = t->tasks[i].addr;
	qsort(set.addr, set.n, sizeof(uint64_t), cmp_u64);
	scan(t, &set);
	keep_prior(t);
	free(set.addr);
	p_dbg("per-CPU current task: searched again, %zu candidate slot(s)", t->slot.n);
}

bool slot_check(struct vm_tracer *t, uint64_t now, struct vcpu_state **vsp, size_t *nvp)
{
	struct slot_state *s = &t->slot;
	struct vcpu_state *vs;
	struct qmp *q;
	ssize_t cur = -1, best;
	size_t nv = 0;
	bool replaced = false;

	*vsp = NULL;
	*nvp = 0;
	if (now < s->next_check || !s->c)
		return false;
	s->next_check = now + (s->confirmed ? CHECK_CONFIRMED_NS : CHECK_OPEN_NS);
	q = open_monitor(t->qmp_path);
	if (!q)
		return false;
	vs = evidence_round(t, q, NULL, &nv);
	qmp_close(q);
	if (!vs)
		return false;
	*vsp = vs;
	*nvp = nv;
	for (size_t i = 0; i < s->n; i++)
		if (s->c[i].off == t->res.percpu_current)
			cur = (ssize_t)i;
	best = slot_best(s, t->res.percpu_current);
	if (cur >= 0 && !s->confirmed && confirmed(&s->c[cur]) && best == cur) {
		s->confirmed = true;
		p_dbg("%s (pid %d): per-CPU current task %+" PRId64 " confirmed while tracing (%u hit(s), %u miss(es))",
		      t->info.name, (int)t->info.pid, s->c[cur].off, s->c[cur].hit, s->c[cur].miss);
	}
	/* refuted: it holds no task, more than a third of its user-space samples missed, or it never moved while
	 * the guest switches (slot_best) */
	bool refuted = cur < 0 || s->c[cur].dead ||
		       (s->c[cur].miss >= SLOT_MIN_HITS && s->c[cur].miss * 2 > s->c[cur].hit) ||
		       (best >= 0 && best != cur && !moves(&s->c[cur]));
	if (refuted && best >= 0 && best != cur && confirmed(&s->c[best])) {
		if (cur >= 0 && !s->c[cur].dead && !moves(&s->c[cur]))
			p_warn("%s (pid %d): the per-CPU current-task slot %+" PRId64 " never moved while the guest "
			       "switches tasks; following slot %+" PRId64 " (%u of %u user-space checks agree)",
			       t->info.name, (int)t->info.pid, s->c[cur].off, s->c[best].off, s->c[best].hit,
			       s->c[best].hit + s->c[best].miss);
		else if (cur >= 0 && !s->c[cur].dead)
			p_warn("%s (pid %d): the per-CPU current-task slot %+" PRId64 " stopped agreeing with the vCPUs' "
			       "CR3s (%u of %u user-space checks missed); following slot %+" PRId64 " (%u of %u agree)",
			       t->info.name, (int)t->info.pid, s->c[cur].off, s->c[cur].miss,
			       s->c[cur].hit + s->c[cur].miss, s->c[best].off, s->c[best].hit,
			       s->c[best].hit + s->c[best].miss);
		else
			p_warn("%s (pid %d): the per-CPU current-task slot %+" PRId64 " no longer holds a task; following "
			       "slot %+" PRId64 " (%u of %u user-space checks agree)", t->info.name, (int)t->info.pid,
			       t->res.percpu_current, s->c[best].off, s->c[best].hit, s->c[best].hit + s->c[best].miss);
		t->res.percpu_current = s->c[best].off;
		s->confirmed = true;
		s->replaced++;
		replaced = true;
		vmt_slot_changed(t);
	} else if (refuted && s->unexplained >= SLOT_MIN_HITS && now >= s->next_rescan) {
		/* no candidate explains what the vCPUs run: the right slot is not among them */
		int64_t prev = t->res.percpu_current;

		s->next_rescan = now + RESCAN_GAP_NS;
		rescan(t);
		best = slot_best(s, prev);
		if (best >= 0 && s->c[best].off != prev) {
			p_warn("%s (pid %d): the per-CPU current-task slot %+" PRId64 " does not explain the vCPUs' CR3s; "
			       "trying slot %+" PRId64 " (provisional)", t->info.name, (int)t->info.pid, prev, s->c[best].off);
			t->res.percpu_current = s->c[best].off;
			s->confirmed = false;
			replaced = true;
			vmt_slot_changed(t);
		}
	}
	return replaced;
}

void slot_free(struct slot_state *s)
{
	free(s->c);
	memset(s, 0, sizeof(*s));
}
