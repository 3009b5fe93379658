/* `vmoffset-trace list`: the QEMU VMs on this host. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cmd/cmd.h"
#include "common/json_writer.h"
#include "common/log.h"
#include "target/vms.h"

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: vmoffset-trace list [--no-qmp] [--json]\n"
		"\n"
		"List the VMs (QEMU processes) on this host: QEMU pid, VM name (-name NAME, libvirt's guest=NAME),\n"
		"vCPU threads (\"CPU n/KVM\", \"CPU n/TCG\"), memory (QMP query-memory-size-summary when a QMP socket\n"
		"on the command line answers, else -m), and KVM or TCG. Use the pid with --pid in other commands.\n"
		"\n"
		"Options:\n"
		"      --no-qmp           do not connect to QMP sockets (memory from -m only)\n"
		"  -j, --json             JSON array (as does the global -j)\n"
		"  -h, --help             this text\n"
		"\n"
		"Examples:\n"
		"  vmoffset-trace list\n"
		"  vmoffset-trace -j list | jq '.[] | select(.accel == \"kvm\") | .pid'\n");
}

static void mem_str(uint64_t b, char *out, size_t len)
{
	if (!b)
		snprintf(out, len, "?");
	else if (b % (1ULL << 30) == 0)
		snprintf(out, len, "%lluG", (unsigned long long)(b >> 30));
	else
		snprintf(out, len, "%lluM", (unsigned long long)(b >> 20));
}

int cmd_list(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "no-qmp", no_argument, NULL, 0x100 },
		{ "json",   no_argument, NULL, 'j' },
		{ "help",   no_argument, NULL, 'h' },
		{},
	};
	bool json = log_json, qmp = true;
	struct vm_info *v = NULL;
	size_t n = 0;
	int c, err;

	while ((c = getopt_long(argc, argv, "jh", opts, NULL)) != -1) {
		switch (c) {
		case 0x100: qmp = false; break;
		case 'j': json = log_json = true; break;
		case 'h': usage(stdout); return EXIT_OK;
		default: return cmd_bad_option(argv, usage);
		}
	}
	if (cmd_no_operands(argc, argv))
		return EXIT_USAGE;
	err = vm_list(qmp, &v, &n);
	if (err) {
		p_err("reading /proc: %s", strerror(-err));
		return EXIT_FAIL;
	}
	if (json) {
		json_writer_t *w = jsonw_new(stdout);

		if (!w) {
			free(v);
			p_err("out of memory");
			return EXIT_FAIL;
		}
		jsonw_start_array(w);
		for (size_t i = 0; i < n; i++) {
			jsonw_start_object(w);
			jsonw_int_field(w, "pid", v[i].pid);
			jsonw_string_field(w, "name", v[i].name);
			jsonw_string_field(w, "accel", v[i].accel);
			jsonw_u64_field(w, "vcpus", v[i].nvcpus);
			jsonw_name(w, "vcpu_threads");
			jsonw_start_array(w);
			for (uint32_t k = 0; k < v[i].nthreads; k++) {
				jsonw_start_object(w);
				jsonw_u64_field(w, "vcpu", v[i].vcpu_id[k]);
				jsonw_int_field(w, "tid", v[i].vcpu_tid[k]);
				jsonw_end_object(w);
			}
			jsonw_end_array(w);
			/* QEMU names vCPU threads only with -name ...,debug-threads=on; vcpus is then -smp's */
			jsonw_bool_field(w, "vcpu_threads_named", v[i].nthreads > 0);
			jsonw_u64_field(w, "memory_bytes", v[i].mem_bytes);
			jsonw_string_field(w, "memory_source", v[i].mem_source);
			if (v[i].qmp[0])
				jsonw_string_field(w, "qmp", v[i].qmp);
			else
				jsonw_null_field(w, "qmp");
			jsonw_string_field(w, "exe", v[i].exe);
			jsonw_end_object(w);
		}
		jsonw_end_array(w);
		jsonw_destroy(&w);
	} else {
		printf("%8s  %-28s %-5s %5s %7s  %s\n", "PID", "NAME", "ACCEL", "VCPUS", "MEMORY", "VCPU THREADS");
		for (size_t i = 0; i < n; i++) {
			char mem[32], thr[256] = "";
			size_t k = 0;

			mem_str(v[i].mem_bytes, mem, sizeof(mem));
			for (uint32_t t = 0; t < v[i].nthreads && k + 16 < sizeof(thr); t++)
				k += snprintf(thr + k, sizeof(thr) - k, "%s%u:%d", t ? " " : "", v[i].vcpu_id[t], v[i].vcpu_tid[t]);
			if (!v[i].nthreads)
				snprintf(thr, sizeof(thr), "(threads unnamed: QEMU without -name ...,debug-threads=on)");
			printf("%8d  %-28.28s %-5s %5u %7s  %s\n", v[i].pid, v[i].name[0] ? v[i].name : "-", v[i].accel,
			       v[i].nvcpus, mem, thr);
		}
		if (!n)
			fprintf(stderr, "no QEMU VM runs on this host\n");
	}
	free(v);
	fflush(stdout);
	return ferror(stdout) ? EXIT_FAIL : EXIT_OK;
}
