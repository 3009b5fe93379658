/*
 * Weak fallbacks for discovery symbols, so output/observe tests link (and test what they own) even in a
 * tree where user/discovery/discover.c is not there yet. A real definition always wins at link time;
 * these are never used when it exists.
 */
#ifndef VMOT_TEST_STUBS_H
#define VMOT_TEST_STUBS_H
#include <errno.h>
#include "discovery/discover.h"

__attribute__((weak)) const char *const task_field_names[TF_NR] = {
	"tasks", "pid", "tgid", "comm", "mm", "active_mm", "real_parent", "parent", "children", "sibling", "cred",
};

__attribute__((weak)) int discover_offsets(struct physmem *pm, const struct obs_set *obs,
					   const struct discovery_opts *opts, struct discovery_result *res)
{
	return -ENOSYS;
}

__attribute__((weak)) int guest_tasks_list(struct physmem *pm, const struct discovery_result *res,
					   const struct discovery_opts *opts, struct guest_task **tasks,
					   size_t *ntasks)
{
	return -ENOSYS;
}

#endif
