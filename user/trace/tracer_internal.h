/* What the files of one VM's tracer (tracer.c, poll.c, restart.c, exact.c) share; not for other layers. */
#ifndef VMOT_TRACE_TRACER_INTERNAL_H
#define VMOT_TRACE_TRACER_INTERNAL_H
#include <stdbool.h>
#include <stdint.h>
#include "arch/x86_64.h"
#include "trace/tracer.h"

/* Either paging mode's kernel half (the top 8 bits set holds for both) */
static inline bool vmt_kernel_ptr(uint64_t va) { return x86_kernel_ptr(va, true); }
/* Non-printable bytes of a comm read from the guest become '?'. */
void vmt_sanitize_comm(char c[16]);
/* err says the memory source (the QEMU process) is gone. */
bool vmt_source_gone(int err);
/* An event of type about task k of this VM at now. */
void vmt_fill_event(struct sess_event *e, const struct vm_tracer *t, uint64_t now, uint16_t type,
		    const struct vmt_task *k);
/* restart.c: init_task still holds "swapper"; a vCPU's per-CPU base moved (vs: one QMP sample's registers);
 * every task exits and RESTART; rediscovery (VMT_REDISCOVERED when it succeeded). */
bool vmt_kernel_still_there(struct vm_tracer *t);
bool vmt_percpu_bases_moved(const struct vm_tracer *t, const struct vcpu_state *vs, size_t nv);
void vmt_kernel_gone(struct vm_tracer *t, uint64_t now, vmt_emit_fn emit, void *ctx);
int vmt_try_rediscover(struct vm_tracer *t, uint64_t now);
/* exact.c: the first window waits this long for a confirmed current-task slot, then opens without */
#define SCHED_WAIT_NS 5000000000ULL
/* exact.c: drop the window under way (its samples no longer count). */
void vmt_sched_stop(struct vm_tracer *t);

#endif
