/* Private to user/discovery: the state one discovery run shares between its steps. */
#ifndef VMOT_DISCOVERY_INTERNAL_H
#define VMOT_DISCOVERY_INTERNAL_H
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "discovery/discover.h"

/* Largest task_struct we consider (the biggest known x86_64 one is ~9.8 KiB; randstruct adds none). */
#define TASK_WINDOW      16384
/* Tasks whose whole window is read to find candidates; the rest are checked field by field. */
#define SAMPLE_TASKS     96
#define MAX_RING         65536
#define PID_MAX_LIMIT    4194304

struct task_win {
	uint64_t base;        /* task_struct VA */
	uint8_t *buf;         /* TASK_WINDOW bytes from base, or NULL when unreadable */
	bool leader;          /* on the tasks list */
};

struct disc_ctx {
	struct physmem *pm;
	const struct obs_set *obs;
	struct discovery_opts opts;
	struct discovery_result *res;
	struct vmem vm;
	uint64_t budget_start;       /* pm->bytes_read when the run started */

	uint64_t *roots;             /* distinct observed CR3 roots */
	size_t nroots;

	/* every leader on the tasks list (VA of task_struct), init_task first */
	uint64_t *leaders;
	size_t nleaders;
	/* windows of a sample of tasks (leaders first, then threads found) */
	struct task_win *win;
	size_t nwin;
	/* threads found through the thread ring (not on the tasks list) */
	uint64_t *threads;
	size_t nthreads;
	int64_t thread_ring_off;     /* list_head linking a group's threads, -1 if not found */
	unsigned psz;                /* the guest's pointer size: 8, or 4 on a 32-bit x86 guest */
	/* arm64: the hole in the image's mapping between its read-only part and its data, where the freed init
	 * section (with the per-CPU variables' link addresses) was; 0 when not seen */
	uint64_t image_gap_lo, image_gap_hi;
	bool no_task_list;           /* fields_solve: none of the comm hits starts a task list */
};

/* Budgeted, checked reads of kernel virtual memory (inline: the solvers call them in their inner loops). */
static inline int dctx_read(struct disc_ctx *c, uint64_t va, void *buf, size_t len)
{
	if (c->pm->bytes_read - c->budget_start + len > c->opts.max_bytes)
		return -E2BIG;
	return vmem_read(&c->vm, va, buf, len);
}

static inline int dctx_read_u64(struct disc_ctx *c, uint64_t va, uint64_t *v)
{
	return dctx_read(c, va, v, sizeof(*v));
}

/* A pointer-sized value (4 bytes on a 32-bit guest, c->psz) at va, zero-extended. */
static inline int dctx_read_ptr(struct disc_ctx *c, uint64_t va, uint64_t *v)
{
	*v = 0;
	return dctx_read(c, va, v, c->psz);
}

/* A kernel pointer of the guest (guest_kernel_ptr). */
static inline bool dctx_is_kernel_ptr(const struct disc_ctx *c, uint64_t va)
{
	return guest_kernel_ptr(c->res, va);
}

/* A pointer-sized value in a byte buffer. */
static inline uint64_t buf_ptr(const struct disc_ctx *c, const uint8_t *p)
{
	uint64_t v = 0;
	__builtin_memcpy(&v, p, c->psz);
	return v;
}

bool comm_valid(const char *s);

/* steps */
int kspace_setup(struct disc_ctx *c);                 /* kernel root, paging mode, direct map */
int kspace_find_init_comm(struct disc_ctx *c, uint64_t after, uint64_t *hits, size_t max, size_t *nhits);
int fields_solve(struct disc_ctx *c, const uint64_t *comm_hits, size_t nhits);
void validate_observations(struct disc_ctx *c);
void find_current_tasks(struct disc_ctx *c);

/* set a field */
void set_offset(struct offset_result *r, int64_t off, double conf, const char *how);
void set_undetermined(struct offset_result *r, const char *why);

/* Window access helpers (bounds-checked against TASK_WINDOW). */
static inline uint64_t win_u64(const struct task_win *w, int64_t off)
{
	uint64_t v = 0;
	if (w->buf && off >= 0 && off + 8 <= TASK_WINDOW)
		__builtin_memcpy(&v, w->buf + off, 8);
	return v;
}
static inline uint32_t win_u32(const struct task_win *w, int64_t off)
{
	uint32_t v = 0;
	if (w->buf && off >= 0 && off + 4 <= TASK_WINDOW)
		__builtin_memcpy(&v, w->buf + off, 4);
	return v;
}
/* An observed CR3 as c->roots holds it: bits 51:12 (PTI bit kept), or a 32-bit guest's root (PAE: 32-byte
 * aligned). */
static inline uint64_t dctx_root_of(const struct disc_ctx *c, uint64_t cr3)
{
	return cr3_root_of(c->res, cr3);
}

/* A pointer-sized member of a window. */
static inline uint64_t win_ptr(const struct disc_ctx *c, const struct task_win *w, int64_t off)
{
	return c->psz == 4 ? win_u32(w, off) : win_u64(w, off);
}

/* A live guest moves while it is read: a process that exits between the task-list walk and the read of its
 * mm_struct leaves a freed (or reused) mm behind, one caught in exec a half-built one, one in brk() a heap VMA
 * and a brk from different moments. Members read on every process (mm args, brk) may be disagreed with by up
 * to one in eight of those asked (seen: 1 of 8 on a 5.10 guest forking a process every half second, once in ~70
 * runs; brk on 1 of 16 in one CI run). */
static inline bool fits_but_few(size_t fit, size_t asked)
{
	return fit >= 2 && (asked - fit) * 8 <= asked;
}

#endif
