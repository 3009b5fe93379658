/* What the files of one VM's tracer (tracer.c, poll.c, restart.c, exact.c) share; not for other layers. */
#ifndef VMOT_TRACE_TRACER_INTERNAL_H
#define VMOT_TRACE_TRACER_INTERNAL_H
#include <stdbool.h>
#include <stdint.h>
#include "arch/x86_64.h"
#include "trace/tracer.h"

/* Either paging mode's kernel half (the top 8 bits set holds for both) */
static inline bool vmt_kernel_ptr(uint64_t va) { return x86_kernel_ptr(va, true); }
/* The same for this guest: on a 32-bit one, at or above PAGE_OFFSET and 4-byte aligned */
static inline bool vmt_kptr(const struct vm_tracer *t, uint64_t va)
{
	return guest_kernel_ptr(&t->res, va);
}
/* A guest pointer (4 bytes on a 32-bit guest), zero-extended */
static inline int vmt_read_ptr(struct vm_tracer *t, uint64_t va, uint64_t *v)
{
	*v = 0;
	return vmem_read(&t->vm, va, v, guest_ptr_size(&t->res));
}
/* A CR3 as a page-table root (a 32-bit PAE root is 32-byte aligned), PTI bit kept */
static inline uint64_t vmt_root_of(const struct vm_tracer *t, uint64_t cr3)
{
	return cr3_root_of(&t->res, cr3);
}
/* The vCPU runs user space: its instruction pointer below the kernel's half (x86), at EL0 (arm64) */
static inline bool vmt_vcpu_in_user(const struct vm_tracer *t, const struct vcpu_state *v)
{
	if (v->aarch64)
		return !v->el1;
	return t->res.paging32 ? v->rip < t->res.page_offset_base : !(v->rip >> 63);
}
/* Per-CPU bases from the observed hints once the offsets are known (a 32-bit guest's hint is its GDT);
 * vCPUs whose hint does not resolve are dropped. */
void vmt_resolve_percpu(struct vm_tracer *t);
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
