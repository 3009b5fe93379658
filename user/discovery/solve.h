/*
 * The constraint solver's shared state (fields.c and its member solvers fields_*.c): one attempt at one
 * init_task base, the tasks sampled, and how a member is set — found, decided by declaration order only
 * (kept if the layout shows that order), or tied in an interchangeable pair. Internal to discovery/.
 */
#ifndef VMOT_DISCOVERY_SOLVE_H
#define VMOT_DISCOVERY_SOLVE_H
#include <stdlib.h>
#include "discovery/internal.h"

#define MM_WINDOW 2048      /* mm_struct.pgd lies in the first 2 KiB (72..152 in every known kernel) */
#define MM_FIRST  512       /* ... and is looked for in the first 512 bytes before the rest */
#define MM_OBS_TARGETS 512  /* mm_structs looked at for an observed root (16 of them for the PGD itself) */
#define CRED_WINDOW 256     /* struct cred is 160..200 bytes; its capability sets lie in the first 256 */
#define MAX_CANDS (TASK_WINDOW / 8)

struct ring {
	uint64_t *el;          /* elements (list_head VAs), head excluded */
	size_t n;
};

/* state of one attempt (one comm hit, one base) */
struct solve {
	struct disc_ctx *c;
	uint64_t init;            /* init_task VA */
	int64_t tasks, comm;
	uint64_t *all;            /* sorted VAs of every known task (leaders + threads) */
	size_t nall;
	int64_t win;              /* usable window: no member lies at or beyond it */
	int64_t mm, active_mm, pgd;
	int64_t rp[2];            /* parent pointer candidates */
	size_t nrp;
	uint32_t by_order;        /* members decided by declaration order (bit per enum task_field) */
	struct offset_pair order_pairs[VMOT_MAX_PAIRS];   /* pairs split by declaration order alone */
	size_t norder_pairs;
};

static inline bool in_set(const uint64_t *v, size_t n, uint64_t x)
{
	for (size_t i = 0; i < n; i++)
		if (v[i] == x)
			return true;
	return false;
}

static inline int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static inline bool is_task(const struct solve *s, uint64_t va)
{
	return bsearch(&va, s->all, s->nall, sizeof(*s->all), cmp_u64) != NULL;
}

/* Walk a circular list from head: every element's next->prev must point back. Bounded. 0 or -EINVAL. */
int ring_walk(struct disc_ctx *c, uint64_t head, size_t max, struct ring *r);
/* A valid task name (comm) at va; out gets it NUL-terminated. */
bool read_comm(struct disc_ctx *c, uint64_t va, char out[17]);
/* s->all again from the leaders and threads found so far */
void rebuild_all(struct solve *s);
/* A member decided only by declaration order (check_canonical keeps it where the layout shows that order). */
void set_by_order(struct solve *s, enum task_field f, int64_t off, const char *how);
/* Two members equal on every task with nothing but declaration order to split them: a pair. */
void set_pair(struct solve *s, const struct offset_pair *p, const char *why);
/* Both members of a pair decided by declaration order (p->offsets in that order): kept, or a pair. */
void set_pair_by_order(struct solve *s, const struct offset_pair *p, const char *how_a, const char *how_b);

/* The member solvers, in the order solve_with_base runs them. */
int solve_mm(struct solve *s);                 /* fields_mm.c: mm, active_mm, mm_struct.pgd */
void solve_threads(struct solve *s);           /* fields_mm.c: the thread ring */
int solve_pid_tgid(struct solve *s);           /* fields_ids.c */
size_t solve_cred(struct solve *s);            /* fields_cred.c: members pointing to a struct cred */
void parent_candidates(struct solve *s);       /* fields_family.c */
int solve_children(struct solve *s);           /* fields_family.c: the real parent's index, or -1 */
void solve_parents(struct solve *s, int real_idx);

#endif
