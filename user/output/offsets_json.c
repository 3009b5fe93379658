/* Our own JSON for a discovery result, plus the output-format helpers shared by the three writers. */
#include <errno.h>
#include <string.h>
#include "common/json_writer.h"
#include "output/output.h"

static const char *const format_names[] = {
	[OUT_JSON] = "json",
	[OUT_LIBVMI] = "libvmi",
	[OUT_ISF] = "isf",
};

int output_format_parse(const char *s, enum output_format *fmt)
{
	for (size_t i = 0; i < sizeof(format_names) / sizeof(format_names[0]); i++) {
		if (!strcmp(s, format_names[i])) {
			*fmt = (enum output_format)i;
			return 0;
		}
	}
	return -EINVAL;
}

const char *output_format_name(enum output_format fmt)
{
	return (unsigned)fmt < sizeof(format_names) / sizeof(format_names[0]) ? format_names[fmt] : "?";
}

bool output_libvmi_ready(const struct discovery_result *res)
{
	return res->task[TF_TASKS].found && offset_usable(&res->task[TF_MM]) && offset_usable(&res->task[TF_PID]) &&
	       res->task[TF_COMM].found && res->mm_pgd.found && res->init_task;
}

int output_write(FILE *f, enum output_format fmt, const struct discovery_result *res,
		 const struct output_opts *o)
{
	switch (fmt) {
	case OUT_JSON:   return output_offsets_json(f, res, o);
	case OUT_LIBVMI: return output_libvmi_conf(f, res, o);
	case OUT_ISF:    return output_isf(f, res, o);
	}
	return -EINVAL;
}

static void offset_value(json_writer_t *w, const char *name, const struct offset_result *r)
{
	if (r->found)
		jsonw_int_field(w, name, r->offset);
	else
		jsonw_null_field(w, name);
}

static void offset_evidence(json_writer_t *w, const char *name, const struct offset_result *r)
{
	jsonw_name(w, name);
	jsonw_start_object(w);
	jsonw_bool_field(w, "found", r->found);
	if (r->tied)
		jsonw_bool_field(w, "interchangeable", true);
	jsonw_float_field_fmt(w, "confidence", "%.3f", r->confidence);
	jsonw_name(w, "how");
	jsonw_string_len(w, r->how, sizeof(r->how));
	jsonw_end_object(w);
}

static void hex_or_null(json_writer_t *w, const char *name, uint64_t v)
{
	if (v)
		jsonw_hex_field(w, name, v);
	else
		jsonw_null_field(w, name);
}

/* the VMAs' root is mm_mt (maple tree, 6.1+) or mmap (a list) */
static const char *maps_json_name(const struct discovery_result *res, int k)
{
	return k == MM_MAP_ROOT && !res->maple ? "mmap" : maps_member_names[k];
}

int output_offsets_json(FILE *f, const struct discovery_result *res, const struct output_opts *o)
{
	json_writer_t *w = jsonw_new(f);
	int err;

	if (!w)
		return -ENOMEM;
	jsonw_start_object(w);

	jsonw_name(w, "task_struct");
	jsonw_start_object(w);
	for (int i = 0; i < TF_NR; i++)
		offset_value(w, task_field_names[i], &res->task[i]);
	jsonw_end_object(w);

	jsonw_name(w, "mm_struct");
	jsonw_start_object(w);
	offset_value(w, "pgd", &res->mm_pgd);
	for (int k = 0; k < 4; k++)
		offset_value(w, mm_args_names[k], &res->mm_args[k]);
	jsonw_end_object(w);

	jsonw_name(w, "cred");
	jsonw_start_object(w);
	for (int k = 0; k < 4; k++)
		offset_value(w, cred_id_names[k], &res->cred_ids[k]);
	jsonw_end_object(w);

	/* memory maps and paths: mm_struct, vm_area_struct, file, dentry, vfsmount and mount members */
	jsonw_name(w, "maps");
	jsonw_start_object(w);
	jsonw_bool_field(w, "maple_tree", res->maple);
	for (int k = 0; k < MAPS_NR; k++)
		offset_value(w, maps_json_name(res, k), &res->maps[k]);
	jsonw_end_object(w);

	/* members that held the same value on every task, which is which unknown: both null above */
	jsonw_name(w, "interchangeable");
	jsonw_start_array(w);
	for (uint32_t i = 0; i < res->npairs && i < VMOT_MAX_PAIRS; i++) {
		jsonw_start_object(w);
		jsonw_name(w, "members");
		jsonw_start_array(w);
		jsonw_string(w, res->pairs[i].members[0]);
		jsonw_string(w, res->pairs[i].members[1]);
		jsonw_end_array(w);
		jsonw_name(w, "offsets");
		jsonw_start_array(w);
		jsonw_int(w, res->pairs[i].offsets[0]);
		jsonw_int(w, res->pairs[i].offsets[1]);
		jsonw_end_array(w);
		jsonw_end_object(w);
	}
	jsonw_end_array(w);
	hex_or_null(w, "init_task", res->init_task);
	jsonw_bool_field(w, "validated", res->validated);
	jsonw_u64_field(w, "switches_observed", res->switches_observed);
	jsonw_u64_field(w, "switches_explained", res->switches_explained);
	jsonw_u64_field(w, "roots_observed", res->roots_observed);
	jsonw_u64_field(w, "roots_explained", res->roots_explained);
	jsonw_u64_field(w, "ntasks", res->ntasks);
	jsonw_u64_field(w, "nthreads", res->nthreads);
	hex_or_null(w, "page_offset_base", res->page_offset_base);
	hex_or_null(w, "kernel_cr3", res->kernel_cr3 & X86_CR3_ADDR_MASK);
	char arm[40];

	snprintf(arm, sizeof(arm), "aarch64 %u-bit VA%s", res->va_bits1, res->lpa2 ? " (LPA2)" : "");
	jsonw_string_field(w, "paging", res->arm64 ? arm : res->paging32 == 2 ? "2-level" : res->paging32 == 3 ? "3-level (PAE)"
				      : res->la57 ? "5-level" : "4-level");
	jsonw_bool_field(w, "single_parent", res->single_parent);
	if (o && o->kaslr_known)
		jsonw_hex_field(w, "kaslr_shift", o->kaslr_shift);
	else
		jsonw_null_field(w, "kaslr_shift");

	/* per-vCPU current task, read through the per-CPU area (GS base; TPIDR_EL1 on arm64, where the slot is a
	 * variable's link address, negative as a signed number, as it is on x86-64 since 6.15) */
	if (res->percpu_current != -1)
		jsonw_int_field(w, "percpu_current_task", res->percpu_current);
	else
		jsonw_null_field(w, "percpu_current_task");
	jsonw_name(w, "current");
	jsonw_start_array(w);
	for (uint32_t i = 0; i < res->ncurrent && i < sizeof(res->current) / sizeof(res->current[0]); i++) {
		const struct vcpu_current *c = &res->current[i];

		jsonw_start_object(w);
		jsonw_u64_field(w, "vcpu", c->vcpu);
		jsonw_hex_field(w, "task", c->task);
		jsonw_int_field(w, "pid", c->pid);
		jsonw_name(w, "comm");
		jsonw_string_len(w, c->comm, sizeof(c->comm));
		jsonw_end_object(w);
	}
	jsonw_end_array(w);

	jsonw_name(w, "evidence");
	jsonw_start_object(w);
	jsonw_name(w, "task_struct");
	jsonw_start_object(w);
	for (int i = 0; i < TF_NR; i++)
		offset_evidence(w, task_field_names[i], &res->task[i]);
	jsonw_end_object(w);
	jsonw_name(w, "mm_struct");
	jsonw_start_object(w);
	offset_evidence(w, "pgd", &res->mm_pgd);
	for (int k = 0; k < 4; k++)
		offset_evidence(w, mm_args_names[k], &res->mm_args[k]);
	jsonw_end_object(w);
	jsonw_name(w, "cred");
	jsonw_start_object(w);
	for (int k = 0; k < 4; k++)
		offset_evidence(w, cred_id_names[k], &res->cred_ids[k]);
	jsonw_end_object(w);
	jsonw_name(w, "maps");
	jsonw_start_object(w);
	for (int k = 0; k < MAPS_NR; k++)
		offset_evidence(w, maps_json_name(res, k), &res->maps[k]);
	jsonw_end_object(w);
	jsonw_end_object(w);

	jsonw_name(w, "reason");
	if (res->reason[0])
		jsonw_string_len(w, res->reason, sizeof(res->reason));
	else
		jsonw_null(w);
	jsonw_name(w, "retried");   /* what was sampled and read again before this answer */
	if (res->retried[0])
		jsonw_string_len(w, res->retried, sizeof(res->retried));
	else
		jsonw_null(w);
	jsonw_u64_field(w, "bytes_read", res->bytes_read);
	jsonw_float_field_fmt(w, "elapsed_s", "%.3f", res->elapsed_s);
	jsonw_end_object(w);

	err = jsonw_errors(w) ? -EINVAL : 0;
	jsonw_destroy(&w);
	return ferror(f) ? -EIO : err;
}
