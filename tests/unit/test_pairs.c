/* cmocka: interchangeable pairs settled over time (pairs_settle, issue 12) on shuffled synthetic guests.
 *
 * Discovery on a shuffled modern layout leaves real_cred/cred tied (the synthetic creds never differ); the
 * test then changes guest memory the way the kernel would — override_creds, a ptrace attach, a kernel thread
 * borrowing an mm — and checks that pairs_settle decides each pair from that memory alone, to the true
 * offsets. The other pairs are handed to pairs_settle with their two true offsets in the wrong order (as a
 * pair carries no order), so the answer is not in the input. With no such task, nothing is decided.
 * pairs_watch: a vCPU switches to a kernel thread while the per-CPU slots are being watched.
 * The per-CPU current task is still found when every vCPU was last observed on a process it no longer runs
 * (memory is read after the observations: a busy guest has switched since). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "arch/x86_64.h"
#include "discovery/discover.h"
#include "../synth/synth.h"

struct fixture {
	struct synth_layout *L;
	size_t n;
	struct synth_image img;
	struct discovery_result res;
	struct guest_task *tasks;
	size_t ntasks;
};

static void put64(struct synth_image *img, uint64_t va, uint64_t v)
{
	uint64_t pa = va - img->page_offset_base;

	assert_true(va >= img->page_offset_base && pa + 8 <= img->ram_size);
	memcpy(img->mem + pa, &v, 8);
}

/* a shuffled 5.x/6.x guest whose discovery validated with real_cred/cred tied */
static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	const char *csv = synth_find_layouts_csv();

	if (!f || !csv) {
		printf("test_pairs: layout table not found (VMOT_LAYOUTS or ../shared/layouts)\n");
		free(f);
		return -1;
	}
	assert_int_equal(synth_load_layouts(csv, &f->L, &f->n), 0);
	for (size_t i = 0; i < f->n; i++) {
		struct synth_opts o = { .seed = 4242 + i, .shuffle = true, .nexited = -1 };
		struct discovery_opts d = { 0 };

		if (f->L[i].kver < SYNTH_KV(5, 0, 0))
			continue;
		assert_int_equal(synth_build(&f->L[i], &o, &f->img), 0);
		memset(&f->res, 0, sizeof(f->res));
		if (discover_offsets(f->img.pm, &f->img.obs, &d, &f->res) == 0 && f->res.validated &&
		    f->res.npairs == 1 && !strcmp(f->res.pairs[0].members[0], "real_cred") &&
		    f->res.task[TF_REAL_PARENT].found && f->res.task[TF_MM].found && f->res.task[TF_TGID].found) {
			assert_int_equal(guest_tasks_list(f->img.pm, &f->res, &d, &f->tasks, &f->ntasks), 0);
			*state = f;
			return 0;
		}
		synth_free(&f->img);
	}
	free(f->L);
	free(f);
	return -1;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	synth_free(&f->img);
	free(f->tasks);
	free(f->L);
	free(f);
	return 0;
}

/* the pair as discovery would give it: the two true offsets, ascending, no order known */
static void tie(struct fixture *f, const char *a, const char *b, enum task_field fa, enum task_field fb)
{
	struct offset_pair p = { { a, b }, { f->img.off[fa], f->img.off[fb] }, { fa, fb } };

	if (p.offsets[0] > p.offsets[1]) {
		p.offsets[0] = f->img.off[fb];
		p.offsets[1] = f->img.off[fa];
	}
	for (int k = 0; k < 2; k++) {
		f->res.task[p.fields[k]].found = false;
		f->res.task[p.fields[k]].tied = true;
		f->res.task[p.fields[k]].offset = p.offsets[0];
	}
	f->res.pairs[f->res.npairs++] = p;
}

static const struct synth_task *find_task(const struct synth_image *img, int kind, int skip)
{
	for (size_t i = 0; i < img->ntasks; i++)
		if (img->tasks[i].kind == kind && img->tasks[i].on_tasks_list && skip-- == 0)
			return &img->tasks[i];
	return NULL;
}

static void test_cred_settled_by_override(void **state)
{
	struct fixture *f = *state;
	char what[400];
	const struct synth_task *x = NULL;

	/* a task whose real cred its family shares (a thread group: fork gives each process its own cred) */
	for (size_t i = 0; i < f->img.ntasks && !x; i++)
		for (size_t j = 0; j < f->img.ntasks && !x; j++)
			if (i != j && f->img.tasks[i].on_tasks_list && f->img.tasks[i].kind == SYNTH_T_PROC &&
			    f->img.tasks[i].real_cred_va == f->img.tasks[j].real_cred_va)
				x = &f->img.tasks[i];
	assert_non_null(x);
	/* nothing differs yet: nothing decided */
	assert_int_equal(pairs_settle(f->img.pm, &f->res, f->tasks, f->ntasks, what, sizeof(what)), 0);
	assert_int_equal(f->res.npairs, 1);
	assert_false(f->res.task[TF_CRED].found);
	/* override_creds: cred points to a private copy (here: any address no task holds), real_cred stays */
	put64(&f->img, x->va + (uint64_t)f->img.off[TF_CRED], x->real_cred_va + 0x40);
	assert_int_equal(pairs_settle(f->img.pm, &f->res, f->tasks, f->ntasks, what, sizeof(what)), 1);
	printf("  settled: %s\n", what);
	assert_true(f->res.task[TF_CRED].found);
	assert_int_equal(f->res.task[TF_CRED].offset, f->img.off[TF_CRED]);
	assert_int_equal(f->res.npairs, 0);
	put64(&f->img, x->va + (uint64_t)f->img.off[TF_CRED], x->cred_va);
}

static void test_parents_settled_by_ptrace(void **state)
{
	struct fixture *f = *state;
	char what[400];
	const struct synth_task *x = find_task(&f->img, SYNTH_T_PROC, 1), *tracer = find_task(&f->img, SYNTH_T_PROC, 2);

	assert_non_null(x);
	assert_non_null(tracer);
	tie(f, "real_parent", "parent", TF_REAL_PARENT, TF_PARENT);
	/* ptrace attach: parent becomes the tracer; the tracee stays on its real parent's children ring */
	put64(&f->img, x->va + (uint64_t)f->img.off[TF_PARENT], tracer->va);
	assert_int_equal(pairs_settle(f->img.pm, &f->res, f->tasks, f->ntasks, what, sizeof(what)), 1);
	printf("  settled: %s\n", what);
	assert_int_equal(f->res.task[TF_REAL_PARENT].offset, f->img.off[TF_REAL_PARENT]);
	assert_int_equal(f->res.task[TF_PARENT].offset, f->img.off[TF_PARENT]);
	assert_true(f->res.task[TF_REAL_PARENT].found && f->res.task[TF_PARENT].found);
}

static void test_mm_settled_by_kernel_thread(void **state)
{
	struct fixture *f = *state;
	char what[400];
	const struct synth_task *k = find_task(&f->img, SYNTH_T_KTHREAD, 0), *p = find_task(&f->img, SYNTH_T_PROC, 0);

	assert_non_null(k);
	assert_non_null(p);
	tie(f, "mm", "active_mm", TF_MM, TF_ACTIVE_MM);
	/* a kernel thread switched in: mm NULL, active_mm borrowed from the process it followed */
	put64(&f->img, k->va + (uint64_t)f->img.off[TF_ACTIVE_MM], p->mm_va);
	assert_int_equal(pairs_settle(f->img.pm, &f->res, f->tasks, f->ntasks, what, sizeof(what)), 1);
	printf("  settled: %s\n", what);
	assert_int_equal(f->res.task[TF_MM].offset, f->img.off[TF_MM]);
	assert_int_equal(f->res.task[TF_ACTIVE_MM].offset, f->img.off[TF_ACTIVE_MM]);
}

static void test_pid_settled_by_thread(void **state)
{
	struct fixture *f = *state;
	char what[400];

	assert_true(f->img.n_threads > 0);
	tie(f, "pid", "tgid", TF_PID, TF_TGID);
	assert_int_equal(pairs_settle(f->img.pm, &f->res, f->tasks, f->ntasks, what, sizeof(what)), 1);
	printf("  settled: %s\n", what);
	assert_int_equal(f->res.task[TF_PID].offset, f->img.off[TF_PID]);
	assert_int_equal(f->res.task[TF_TGID].offset, f->img.off[TF_TGID]);
}

/* pairs_watch reads the per-CPU current-task slots in a loop; this source switches vCPU 0 to a kernel thread
 * (mm NULL, active_mm borrowed) after `after` reads of that slot, the way the guest would while we watch. */
struct switching_src {
	const struct physmem_ops *orig;
	struct physmem_ops ops;
	void *orig_priv;
	struct synth_image *img;
	uint64_t slot_pa, kthread, kthread_active_mm_pa, borrowed;
	unsigned reads, after;
};
static struct switching_src sw;

static int switching_read(struct physmem *pm, uint64_t gpa, void *buf, size_t len)
{
	if (gpa == sw.slot_pa && ++sw.reads == sw.after) {
		memcpy(sw.img->mem + sw.kthread_active_mm_pa, &sw.borrowed, 8);
		memcpy(sw.img->mem + sw.slot_pa, &sw.kthread, 8);
	}
	pm->priv = sw.orig_priv;
	int err = sw.orig->read(pm, gpa, buf, len);
	pm->priv = &sw;
	return err;
}

static void test_mm_settled_by_watching(void **state)
{
	struct fixture *f = *state;
	char what[400];
	const struct synth_task *k = find_task(&f->img, SYNTH_T_KTHREAD, 1), *p = find_task(&f->img, SYNTH_T_PROC, 1);
	uint64_t gs[SYNTH_MAX_CPUS], slot_va, kam_va;

	assert_non_null(k);
	assert_non_null(p);
	assert_true(f->res.nrunning_slots > 0);   /* discovery found slots that hold the running tasks */
	int64_t slot = f->res.percpu_current != -1 ? f->res.percpu_current : f->res.running_slots[0];
	for (uint32_t v = 0; v < f->img.ncpus; v++)
		gs[v] = f->img.gs_base[v];
	tie(f, "mm", "active_mm", TF_MM, TF_ACTIVE_MM);
	/* every vCPU runs a process (a saturated guest), and keeps running it: nothing to decide in the time given */
	for (uint32_t v = 0; v < f->img.ncpus; v++) {
		const struct synth_task *u = find_task(&f->img, SYNTH_T_PROC, 2 + (int)v);
		assert_non_null(u);
		for (uint32_t j = 0; j < f->res.nrunning_slots; j++)
			memcpy(f->img.mem + synth_kva_to_pa(&f->img, gs[v] + (uint64_t)f->res.running_slots[j]), &u->va, 8);
	}
	assert_int_equal(pairs_watch(f->img.pm, &f->res, gs, f->img.ncpus, 20000000ULL, what, sizeof(what)), 0);
	assert_int_equal(f->res.npairs, 1);

	slot_va = f->img.gs_base[0] + (uint64_t)slot;
	kam_va = k->va + (uint64_t)f->img.off[TF_ACTIVE_MM];
	sw = (struct switching_src){ .orig = f->img.pm->ops, .orig_priv = f->img.pm->priv, .img = &f->img,
				     .slot_pa = synth_kva_to_pa(&f->img, slot_va), .kthread = k->va,
				     .kthread_active_mm_pa = synth_kva_to_pa(&f->img, kam_va), .borrowed = p->mm_va,
				     .after = 200 };
	assert_true(sw.slot_pa != ~0ULL && sw.kthread_active_mm_pa != ~0ULL);
	sw.ops = *sw.orig;
	sw.ops.read = switching_read;
	f->img.pm->ops = &sw.ops;
	f->img.pm->priv = &sw;
	int settled = pairs_watch(f->img.pm, &f->res, gs, f->img.ncpus, 2000000000ULL, what, sizeof(what));
	f->img.pm->ops = sw.orig;
	f->img.pm->priv = sw.orig_priv;
	assert_int_equal(settled, 1);
	printf("  settled after %u reads of the slot: %s\n", sw.reads, what);
	assert_true(sw.reads >= sw.after);
	assert_int_equal(f->res.task[TF_MM].offset, f->img.off[TF_MM]);
	assert_int_equal(f->res.task[TF_ACTIVE_MM].offset, f->img.off[TF_ACTIVE_MM]);
	assert_int_equal(f->res.npairs, 0);
}

static void test_current_found_after_vcpus_moved_on(void **state)
{
	struct fixture *f = *state;
	struct discovery_opts d = { 0 };
	struct discovery_result r;
	size_t n0 = f->img.obs.n;

	/* each vCPU's latest observation: a process other than the task it runs now */
	for (uint32_t v = 0; v < f->img.ncpus; v++) {
		struct observation o = { 0 };
		for (size_t i = 0; i < n0; i++)
			if (f->img.obs.v[i].vcpu == v)
				o = f->img.obs.v[i];
		for (size_t i = 0; i < f->img.ntasks; i++) {
			const struct synth_task *t = &f->img.tasks[i];
			uint64_t pa = t->mm >= 0 ? f->img.mms[t->mm].pgd_pa : 0;
			if (t->kind == SYNTH_T_PROC && t->on_tasks_list && t->va != f->img.current[v] && pa &&
			    t->mm_va != f->img.tasks[0].mm_va && pa != (o.cr3 & X86_CR3_ADDR_MASK & ~0x1000ULL)) {
				o.cr3 = pa;
				break;
			}
		}
		o.time_ns += 1000;
		assert_int_equal(obs_add(&f->img.obs, &o), 0);
	}
	memset(&r, 0, sizeof(r));
	int err = discover_offsets(f->img.pm, &f->img.obs, &d, &r);
	f->img.obs.n = n0;
	assert_true(err == 0 || err == -ENOENT);
	assert_int_equal(r.ncurrent, f->img.ncpus);   /* before: none, no slot fit the latest CR3s */
	for (uint32_t v = 0; v < r.ncurrent; v++)
		assert_int_equal(r.current[v].task, f->img.current[r.current[v].vcpu]);
	assert_true(r.nrunning_slots > 0);
	printf("  every vCPU moved on: current tasks found, %u slot(s) to watch\n", r.nrunning_slots);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_current_found_after_vcpus_moved_on),   /* first: the others change who runs */
		cmocka_unit_test(test_cred_settled_by_override),
		cmocka_unit_test(test_parents_settled_by_ptrace),
		cmocka_unit_test(test_mm_settled_by_kernel_thread),
		cmocka_unit_test(test_pid_settled_by_thread),
		cmocka_unit_test(test_mm_settled_by_watching),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
