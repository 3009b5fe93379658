/*
 * libFuzzer target: offset discovery and the task walk over hostile guest memory, with small budgets.
 *
 * Two kinds of input (first byte, bit 0):
 *   0 — raw: [1] budget, [2] task cap, [3] ncr3 (≤ 8), ncr3 CR3 values (8 bytes LE), then a small
 *       guest-physical image (GPA 0 = first byte, ≤ 256 KiB) — page tables and kernel structures
 *       crafted from nothing;
 *   1 — mutated guest: a realistic synthetic guest (tests/synth, built once) with patches applied:
 *       [1] budget, [2] task cap, then records {anchor u8, offset u16 LE, len u8 (≤ 64), bytes}. The
 *       anchor picks a kernel structure (init_task, a task_struct, an mm, a PGD, the kernel root, a
 *       per-CPU area, ...) so mutations land where discovery looks; anchor 255 adds an observed CR3
 *       (8 bytes). Patches are undone after each run. Without the layout table (../shared) mode 1
 *       falls back to mode 0.
 * discover_offsets must return, within its byte budget (plus the page-table walks of kernel-space
 * setup, which have their own caps), and guest_tasks_list must respect its task cap and return
 * printable, terminated names; the command-line, ids, memory-map and path members found on it and the walks
 * over them (maps, exe paths) stay bounded.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "discovery/discover.h"
#include "../synth/synth.h"

#define MAX_IMAGE (256u << 10)
#define MAX_ANCHORS 128

static struct synth_image base;
static bool have_base;
static uint64_t anchors[MAX_ANCHORS];
static size_t nanchors;

static void add_anchor_va(uint64_t va)
{
	uint64_t pa = va ? synth_kva_to_pa(&base, va) : ~0ULL;

	if (pa != ~0ULL && pa < base.ram_size && nanchors < MAX_ANCHORS)
		anchors[nanchors++] = pa;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static struct synth_layout *layouts;
	size_t n = 0;
	const char *csv = getenv("VMOT_LAYOUTS") ? getenv("VMOT_LAYOUTS") : synth_find_layouts_csv();
	struct synth_opts o = { .seed = 7, .ncpus = 2, .nprocs = 4, .nkthreads = 3, .nobs_per_cpu = 6,
				.junk_pct = -1, .nexited = -1 };

	if (!csv || synth_load_layouts(csv, &layouts, &n) || !n) {
		fprintf(stderr, "fuzz_discovery: no layout table: mutated-guest inputs run as raw images\n");
		return 0;
	}
	/* the newest layout: the kernels the tool meets most */
	if (synth_build(&layouts[n - 1], &o, &base)) {
		fprintf(stderr, "fuzz_discovery: synth_build failed: mutated-guest inputs run as raw images\n");
		return 0;
	}
	have_base = true;
	anchors[nanchors++] = base.swapper_pgd_pa;
	add_anchor_va(base.init_task_va);
	add_anchor_va(base.init_mm_va);
	add_anchor_va(base.init_cred_va);
	for (uint32_t i = 0; i < base.ncpus; i++)
		add_anchor_va(base.gs_base[i]);
	for (size_t i = 0; i < base.nmms; i++) {
		add_anchor_va(base.mms[i].va);
		if (base.mms[i].pgd_pa < base.ram_size && nanchors < MAX_ANCHORS)
			anchors[nanchors++] = base.mms[i].pgd_pa;
	}
	for (size_t i = 0; i < base.ntasks; i++)
		add_anchor_va(base.tasks[i].va);
	fprintf(stderr, "fuzz_discovery: synthetic guest of %zu tasks, %zu anchors\n", base.ntasks, nanchors);
	return 0;
}

static void run(struct physmem *pm, const struct obs_set *obs, uint8_t budget, uint8_t taskcap)
{
	struct discovery_opts opts = {
		.max_bytes = (64ULL << 10) << (budget % 9),     /* 64 KiB .. 16 MiB */
		.max_tasks = 8u << (taskcap % 10),              /* 8 .. 4096 */
	};
	struct discovery_result *res = calloc(1, sizeof(*res));
	struct guest_task *tasks = NULL;
	size_t nt = 0;
	int err;

	if (!res)
		return;
	err = discover_offsets(pm, obs, &opts, res);
	if (getenv("VMOT_FUZZ_DEBUG"))
		fprintf(stderr, "discover_offsets: %d, init_task %#llx, %llu bytes, budget %llu, reason: %s\n", err,
			(unsigned long long)res->init_task, (unsigned long long)res->bytes_read,
			(unsigned long long)opts.max_bytes, res->reason);
	if (err == 0 && !res->init_task)
		abort();
	if (!memchr(res->reason, 0, sizeof(res->reason)))
		abort();
	for (int f = 0; f < TF_NR; f++)
		if (!memchr(res->task[f].how, 0, sizeof(res->task[f].how)))
			abort();
	if (res->task[TF_TASKS].found && res->task[TF_COMM].found && res->init_task) {
		err = guest_tasks_list(pm, res, &opts, &tasks, &nt);
		if (nt > opts.max_tasks || (nt && !tasks))
			abort();
		for (size_t i = 0; i < nt; i++) {
			if (!memchr(tasks[i].comm, 0, sizeof(tasks[i].comm)))
				abort();
			for (const char *p = tasks[i].comm; *p; p++)
				if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
					abort();
		}
		/* the optional members walk what the tasks point to (mm_struct, user memory, cred, user_struct) */
		if (!err) {
			uint32_t ids[4];
			char line[256];
			size_t len;

			discover_mm_args(pm, res, tasks, nt);
			discover_cred_ids(pm, res, tasks, nt);
			discover_mm_maps(pm, res, tasks, nt);
			for (size_t i = 0; i < nt && i < 8; i++) {
				struct guest_vma *v = NULL;
				size_t nv = 0;
				const char *why = NULL;
				uint64_t file;
				char path[512];

				if (!guest_task_cmdline(pm, res, &tasks[i], line, sizeof(line), &len) && len >= sizeof(line))
					abort();
				guest_task_ids(pm, res, &tasks[i], ids);
				/* maps: the walk's bounds hold; a failure says why */
				if (guest_task_maps(pm, res, &tasks[i], &v, &nv, &why) && (!why || v || nv))
					abort();
				for (size_t j = 0; j < nv; j++)
					if (v[j].start >= v[j].end || (j && v[j].start < v[j - 1].end) ||
					    !memchr(v[j].name, 0, sizeof(v[j].name)))
						abort();
				free(v);
				if (!guest_task_exe_file(pm, res, &tasks[i], &file) && file &&
				    !guest_file_path(pm, res, file, path, sizeof(path)) && !memchr(path, 0, sizeof(path)))
					abort();
			}
			for (int k = 0; k < 4; k++)
				if (!memchr(res->mm_args[k].how, 0, sizeof(res->mm_args[k].how)) ||
				    !memchr(res->cred_ids[k].how, 0, sizeof(res->cred_ids[k].how)))
					abort();
			for (int k = 0; k < MAPS_NR; k++)
				if (!memchr(res->maps[k].how, 0, sizeof(res->maps[k].how)))
					abort();
		}
		free(tasks);
	}
	free(res);
}

static int run_raw(const uint8_t *data, size_t size)
{
	struct obs_set obs = { 0 };
	struct physmem *pm = NULL;
	size_t ncr3, len;

	if (size < 4)
		return 0;
	ncr3 = data[3] % 9;
	if (size < 4 + ncr3 * 8)
		return 0;
	for (size_t i = 0; i < ncr3; i++) {
		struct observation o = { .time_ns = i, .vcpu = (uint32_t)(i & 1), .source = OBS_CLI };

		memcpy(&o.cr3, data + 4 + i * 8, 8);
		obs_add(&obs, &o);
	}
	len = size - 4 - ncr3 * 8;
	if (len > MAX_IMAGE)
		len = MAX_IMAGE;
	if (!len) {
		obs_free(&obs);
		return 0;
	}
	/* the image is the input's tail, read in place: libFuzzer's copy of the input ends where the image
	 * does, so ASan still catches a read past it (a copy cost a 256 KiB allocation per run) */
	if (!physmem_open_buffer(data + 4 + ncr3 * 8, len, NULL, 0, &pm)) {
		run(pm, &obs, data[1], data[2]);
		physmem_close(pm);
	}
	obs_free(&obs);
	return 0;
}

struct undo {
	uint64_t pa;
	uint8_t len;
	uint8_t old[64];
};

static int run_mutated(const uint8_t *data, size_t size)
{
	static struct undo undo[256];
	struct obs_set obs = { 0 };
	size_t nundo = 0, p = 3;

	if (size < 3)
		return 0;
	for (size_t i = 0; i < base.obs.n; i++)
		obs_add(&obs, &base.obs.v[i]);
	while (p + 4 <= size && nundo < 256) {
		uint8_t a = data[p], len = data[p + 3] % 65;
		uint16_t off;

		memcpy(&off, data + p + 1, 2);
		p += 4;
		if (a == 255) {
			struct observation o = { .time_ns = obs.n, .vcpu = 0, .source = OBS_CLI };

			if (p + 8 > size)
				break;
			memcpy(&o.cr3, data + p, 8);
			obs_add(&obs, &o);
			p += 8;
			continue;
		}
		if (len > size - p)
			len = (uint8_t)(size - p);
		uint64_t pa = anchors[a % nanchors] + off;
		if (pa >= base.ram_size || len > base.ram_size - pa) {
			p += len;
			continue;
		}
		undo[nundo].pa = pa;
		undo[nundo].len = len;
		memcpy(undo[nundo].old, base.mem + pa, len);
		nundo++;
		memcpy(base.mem + pa, data + p, len);
		p += len;
	}
	run(base.pm, &obs, data[1], data[2]);
	while (nundo--)   /* in reverse: overlapping patches restore correctly */
		memcpy(base.mem + undo[nundo].pa, undo[nundo].old, undo[nundo].len);
	obs_free(&obs);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!size)
		return 0;
	if ((data[0] & 1) && have_base)
		return run_mutated(data, size);
	return run_raw(data, size);
}
