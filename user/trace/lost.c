/* Lost-pid accounting between task-list walks; see lost.h. */
#include <stdlib.h>
#include <string.h>
#include "trace/lost.h"

static int cmp_i32(const void *x, const void *y)
{
	int32_t a = *(const int32_t *)x, b = *(const int32_t *)y;

	return (a > b) - (a < b);
}

/* Add the walk's pids >= upto; keep the set sorted and unique. */
static int add_seen(struct lost_acct *a, const int32_t *pids, size_t n)
{
	size_t k = a->nseen;

	if (a->nseen + n > a->cap) {
		size_t cap = (a->nseen + n) * 2 + 64;
		int32_t *p = realloc(a->seen, cap * sizeof(*p));

		if (!p)
			return -1;
		a->seen = p;
		a->cap = cap;
	}
	for (size_t i = 0; i < n; i++)
		if (pids[i] >= 0 && (uint32_t)pids[i] >= a->upto)
			a->seen[k++] = pids[i];
	qsort(a->seen, k, sizeof(*a->seen), cmp_i32);
	a->nseen = 0;
	for (size_t i = 0; i < k; i++)
		if (!a->nseen || a->seen[a->nseen - 1] != a->seen[i])
			a->seen[a->nseen++] = a->seen[i];
	return 0;
}

static void rebase(struct lost_acct *a, uint32_t next)
{
	a->based = true;
	a->upto = a->start = next;
	a->nring = 0;
	a->nseen = 0;
}

/* Decide [upto, d): every pid not seen is lost, reported as ranges. */
static void decide(struct lost_acct *a, uint32_t d, void (*out)(void *, int32_t, int32_t), void *ctx)
{
	size_t s = 0;
	int64_t run = -1;

	for (uint32_t p = a->upto; p < d; p++) {
		while (s < a->nseen && (uint32_t)a->seen[s] < p)
			s++;
		bool seen = s < a->nseen && (uint32_t)a->seen[s] == p;

		if (!seen && run < 0)
			run = p;
		if (seen && run >= 0) {
			out(ctx, (int32_t)run, (int32_t)(p - 1));
			a->lost += p - (uint64_t)run;
			run = -1;
		}
	}
	if (run >= 0) {
		out(ctx, (int32_t)run, (int32_t)(d - 1));
		a->lost += d - (uint64_t)run;
	}
	a->decided += d - a->upto;
	/* drop what is decided */
	while (s < a->nseen && (uint32_t)a->seen[s] < d)
		s++;
	memmove(a->seen, a->seen + s, (a->nseen - s) * sizeof(*a->seen));
	a->nseen -= s;
	a->upto = d;
}

enum lost_note lost_walk(struct lost_acct *a, uint64_t now, uint32_t next, const int32_t *pids, size_t n,
			 void (*out)(void *ctx, int32_t first, int32_t last), void *ctx)
{
	enum lost_note note = LOST_OK;
	size_t j;

	if (next > LOST_PID_LIMIT)   /* not an allocator value: the caller checked, but stay bounded */
		return LOST_OK;
	if (!a->based) {
		rebase(a, next);
	} else if (next < a->prev) {
		rebase(a, next);
		note = LOST_WRAP;
	} else if (next - a->prev > LOST_MAX_JUMP) {
		rebase(a, next);
		note = LOST_JUMP;
	}
	a->prev = next;
	if (add_seen(a, pids, n))
		return LOST_NOMEM;
	if (a->nring == LOST_RING) {   /* keep the newest: decide on the oldest first */
		decide(a, a->ring[0].next, out, ctx);
		memmove(a->ring, a->ring + 1, (LOST_RING - 1) * sizeof(a->ring[0]));
		a->nring--;
	}
	a->ring[a->nring].next = next;
	a->ring[a->nring].t = now;
	a->nring++;
	/* the newest walk old enough (walks and time) decides everything allocated before it was taken */
	for (j = a->nring; j-- > 0;)
		if (a->nring - 1 - j >= LOST_LAG_WALKS && now - a->ring[j].t >= LOST_LAG_NS)
			break;
	if (j != (size_t)-1 && j < a->nring) {
		if (a->ring[j].next > a->upto)
			decide(a, a->ring[j].next, out, ctx);
		memmove(a->ring, a->ring + j + 1, (a->nring - j - 1) * sizeof(a->ring[0]));
		a->nring -= j + 1;
	}
	return note;
}

void lost_free(struct lost_acct *a)
{
	free(a->seen);
	memset(a, 0, sizeof(*a));
}
