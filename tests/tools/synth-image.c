/*
 * synth-image: build one synthetic guest (tests/synth) from a layout row and write it as a raw image,
 * printing what a hypervisor would have observed and, separately, the ground truth.
 *
 *   synth-image [-c CSV] [-r RELEASE | -l LINE] [-s SEED] [-S] [-p on|off] [-5] [-n CPUS] [-m MiB]
 *               [-o FILE] [-O OBSFILE] [-t] [-q]
 *
 * Output, one "key value" per line: layout, cr3 0x.. vcpu N gs 0x.. (one per observation, unless -q),
 * gs_base vcpu N 0x.., then "truth <member> <offset>" lines and truth_* addresses.
 * -O writes the observations as "--cr3" style lines "vcpu cr3 gs_base". Exit 0, 1 on error, 64 on usage.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "../synth/synth.h"

static void usage(FILE *f)
{
	fprintf(f, "Usage: synth-image [-c CSV] [-r RELEASE | -l LINE] [-s SEED] [-S] [-p on|off] [-5] [-n CPUS]\n"
		   "                   [-m MiB] [-o FILE] [-O OBSFILE] [-t] [-q]\n"
		   "  -c  layout table (default: $VMOT_LAYOUTS or ../shared/layouts/task_struct_layouts.csv)\n"
		   "  -r  first x86_64 row whose release starts with RELEASE (default: the first row)\n"
		   "  -l  the row at CSV line LINE\n"
		   "  -s  seed (default 1)      -S  shuffle the layout (randstruct-like)\n"
		   "  -p  PTI on/off (default: by kernel version)   -5  5-level paging\n"
		   "  -n  vCPUs (default 4)     -m  RAM in MiB (default 64)\n"
		   "  -o  write the raw image   -O  write observations   -t  time N=100 builds   -q  no cr3 lines\n"
		   "Example: synth-image -r 6.1.0-47 -S -s 3 -o /tmp/g.raw\n");
}

int main(int argc, char **argv)
{
	const char *csv = NULL, *rel = NULL, *out = NULL, *obsout = NULL;
	struct synth_opts o = { .seed = 1 };
	struct synth_layout *L = NULL, *row = NULL;
	struct synth_image img;
	size_t n = 0;
	int line = 0, opt, err, timing = 0, quiet = 0;

	while ((opt = getopt(argc, argv, "c:r:l:s:Sp:5n:m:o:O:tqh")) != -1) {
		switch (opt) {
		case 'c': csv = optarg; break;
		case 'r': rel = optarg; break;
		case 'l': line = atoi(optarg); break;
		case 's': o.seed = strtoull(optarg, NULL, 0); break;
		case 'S': o.shuffle = true; break;
		case 'p': o.pti = !strcmp(optarg, "on") ? SYNTH_ON : SYNTH_OFF; break;
		case '5': o.la57 = SYNTH_ON; break;
		case 'n': o.ncpus = (uint32_t)atoi(optarg); break;
		case 'm': o.ram_size = strtoull(optarg, NULL, 0) << 20; break;
		case 'o': out = optarg; break;
		case 'O': obsout = optarg; break;
		case 't': timing = 1; break;
		case 'q': quiet = 1; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 64;
		}
	}
	if (!csv)
		csv = synth_find_layouts_csv();
	if (!csv) {
		fprintf(stderr, "Error: layout table not found (use -c or VMOT_LAYOUTS)\n");
		return 1;
	}
	err = synth_load_layouts(csv, &L, &n);
	if (err || !n) {
		fprintf(stderr, "Error: %s: %s\n", csv, err ? strerror(-err) : "no x86_64 rows");
		return 1;
	}
	for (size_t i = 0; i < n && !row; i++)
		if ((!rel || !strncmp(L[i].release, rel, strlen(rel))) && (!line || L[i].line == line))
			row = &L[i];
	if (!row) {
		fprintf(stderr, "Error: no x86_64 row matches\n");
		free(L);
		return 1;
	}
	if (timing) {
		struct timespec t0, t1;

		clock_gettime(CLOCK_MONOTONIC, &t0);
		for (int i = 0; i < 100; i++) {
			o.seed++;
			if (synth_build(row, &o, &img))
				return 1;
			synth_free(&img);
		}
		clock_gettime(CLOCK_MONOTONIC, &t1);
		printf("ms_per_image %.2f\n", ((t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6) / 100);
		free(L);
		return 0;
	}
	err = synth_build(row, &o, &img);
	if (err) {
		fprintf(stderr, "Error: build: %s\n", strerror(-err));
		free(L);
		return 1;
	}
	printf("layout %s %s line %d%s\n", row->source, row->release, row->line, o.shuffle ? " shuffled" : "");
	printf("ram_size %llu\n", (unsigned long long)img.ram_size);
	for (size_t i = 0; i < img.obs.n && !quiet; i++)
		printf("cr3 0x%llx vcpu %u gs 0x%llx\n", (unsigned long long)img.obs.v[i].cr3, img.obs.v[i].vcpu,
		       (unsigned long long)img.obs.v[i].gs_base);
	for (uint32_t c = 0; c < img.ncpus; c++)
		printf("gs_base vcpu %u 0x%llx\n", c, (unsigned long long)img.gs_base[c]);
	for (int i = 0; i < SM_NR; i++)
		printf("truth %s %d\n", synth_member_names[i], img.off[i]);
	printf("truth mm_pgd %d\n", img.layout.mm_pgd);
	printf("truth_init_task 0x%llx\ntruth_page_offset_base 0x%llx\ntruth_swapper_pgd_pa 0x%llx\n"
	       "truth_kernel_va 0x%llx\ntruth_kernel_pa 0x%llx\ntruth_current_off 0x%llx\n",
	       (unsigned long long)img.init_task_va, (unsigned long long)img.page_offset_base,
	       (unsigned long long)img.swapper_pgd_pa, (unsigned long long)img.kernel_va,
	       (unsigned long long)img.kernel_pa, (unsigned long long)img.current_off);
	printf("truth_platform pti %d pcid %d la57 %d kaslr %d pda %d\n", img.pti, img.pcid, img.la57, img.kaslr,
	       img.pda);
	printf("truth_tasks %zu on_list %u threads %u stale %u mms %zu obs %zu\n", img.ntasks, img.n_on_list,
	       img.n_threads, img.n_stale, img.nmms, img.obs.n);
	if (out && (err = synth_write_raw(&img, out)))
		fprintf(stderr, "Error: %s: %s\n", out, strerror(-err));
	if (!err && obsout) {
		FILE *f = fopen(obsout, "w");

		if (!f) {
			err = -errno;
		} else {
			for (size_t i = 0; i < img.obs.n; i++)
				fprintf(f, "%u 0x%llx 0x%llx\n", img.obs.v[i].vcpu, (unsigned long long)img.obs.v[i].cr3,
					(unsigned long long)img.obs.v[i].gs_base);
			fclose(f);
		}
	}
	synth_free(&img);
	free(L);
	return err ? 1 : 0;
}
