/*
 * Generic guest-physical memory: bounds checks, counters and the range list every source shares.
 * Sources (raw.c, elfcore.c, qemu.c, the in-memory buffer below) only implement ops->read for a span
 * that lies inside one of their ranges; everything else is checked here.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "common/log.h"
#include "mem/physmem.h"

struct physmem *physmem_alloc(const struct physmem_ops *ops, void *priv)
{
	struct physmem *pm = calloc(1, sizeof(*pm));

	if (!pm)
		return NULL;
	pm->ops = ops;
	pm->priv = priv;
	return pm;
}

int physmem_add_range(struct physmem *pm, uint64_t start, uint64_t len)
{
	struct phys_range *r;

	if (!len)
		return 0;
	if (start + len < start)
		return -EINVAL;
	r = realloc(pm->ranges, (pm->nranges + 1) * sizeof(*r));
	if (!r)
		return -ENOMEM;
	r[pm->nranges].start = start;
	r[pm->nranges].len = len;
	pm->ranges = r;
	pm->nranges++;
	return 0;
}

static int range_cmp(const void *a, const void *b)
{
	const struct phys_range *x = a, *y = b;

	return x->start < y->start ? -1 : x->start > y->start;
}

int physmem_finalize_ranges(struct physmem *pm)
{
	if (pm->nranges > 1)
		qsort(pm->ranges, pm->nranges, sizeof(*pm->ranges), range_cmp);
	for (size_t i = 1; i < pm->nranges; i++) {
		const struct phys_range *p = &pm->ranges[i - 1];

		if (p->start + p->len > pm->ranges[i].start)
			return -EINVAL;
	}
	return 0;
}

long physmem_find_range(const struct physmem *pm, uint64_t gpa)
{
	size_t lo = 0, hi = pm->nranges;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct phys_range *r = &pm->ranges[mid];

		if (gpa < r->start)
			hi = mid;
		else if (gpa - r->start >= r->len)
			lo = mid + 1;
		else
			return (long)mid;
	}
	return -1;
}

/* Does [gpa, gpa+len) lie in range i and its contiguous successors? */
static bool covered_from(const struct physmem *pm, long i, uint64_t gpa, size_t len)
{
	if (i < 0 || gpa + len < gpa)
		return false;
	for (;;) {
		const struct phys_range *r = &pm->ranges[i];
		uint64_t end = r->start + r->len;

		if (gpa + len <= end)
			return true;
		if ((size_t)i + 1 >= pm->nranges || pm->ranges[i + 1].start != end)
			return false;
		i++;
	}
}

bool physmem_contains(const struct physmem *pm, uint64_t gpa, size_t len)
{
	return pm && covered_from(pm, physmem_find_range(pm, gpa), gpa, len);
}

uint64_t physmem_overlap(const struct physmem *pm, uint64_t start, uint64_t len)
{
	uint64_t end = start + len, total = 0;

	if (end < start)
		end = UINT64_MAX;
	for (size_t i = 0; i < pm->nranges; i++) {
		uint64_t rs = pm->ranges[i].start, re = rs + pm->ranges[i].len;
		uint64_t s = rs > start ? rs : start, e = re < end ? re : end;

		if (rs >= end)
			break;
		if (e > s)
			total += e - s;
	}
	return total;
}

uint64_t physmem_total(const struct physmem *pm)
{
	uint64_t total = 0;

	for (size_t i = 0; pm && i < pm->nranges; i++)
		total += pm->ranges[i].len;
	return total;
}

uint64_t physmem_end(const struct physmem *pm)
{
	if (!pm || !pm->nranges)
		return 0;
	return pm->ranges[pm->nranges - 1].start + pm->ranges[pm->nranges - 1].len;
}

int physmem_read(struct physmem *pm, uint64_t gpa, void *buf, size_t len)
{
	unsigned char *out = buf;
	long i;
	int err;

	if (!pm || !pm->ops || !pm->ops->read)
		return -EINVAL;
	if (!len)
		return 0;
	i = physmem_find_range(pm, gpa);
	if (!covered_from(pm, i, gpa, len))
		return -EFAULT;
	if (pm->read_limit && pm->bytes_read + len > pm->read_limit) {
		pm->read_limit_hit = true;
		return -E2BIG;
	}
	while (len) {
		const struct phys_range *r = &pm->ranges[i++];
		uint64_t avail = r->start + r->len - gpa;
		size_t n = len < avail ? len : (size_t)avail;

		err = pm->ops->read(pm, gpa, out, n);
		if (err == -ESRCH)
			pm->source_err = -ESRCH;
		if (err)
			return err < 0 ? err : -EIO;
		pm->reads++;
		pm->bytes_read += n;
		gpa += n;
		out += n;
		len -= n;
	}
	return 0;
}

int physmem_read_u64(struct physmem *pm, uint64_t gpa, uint64_t *val)
{
	uint64_t v;
	int err = physmem_read(pm, gpa, &v, sizeof(v));

	if (!err)
		*val = v;
	return err;
}

void physmem_close(struct physmem *pm)
{
	if (!pm)
		return;
	if (pm->ops && pm->ops->close)
		pm->ops->close(pm);
	free(pm->ranges);
	free(pm->vcpus);
	free(pm);
}

/* ---- in-memory source ---- */

struct buffer_priv {
	const unsigned char *buf;
	size_t len;
};

static int buffer_read(struct physmem *pm, uint64_t gpa, void *buf, size_t len)
{
	const struct buffer_priv *b = pm->priv;

	if (gpa > b->len || len > b->len - gpa)
		return -EFAULT;
	memcpy(buf, b->buf + gpa, len);
	return 0;
}

static void buffer_close(struct physmem *pm)
{
	free(pm->priv);
}

static const struct physmem_ops buffer_ops = {
	.kind = "buffer",
	.read = buffer_read,
	.close = buffer_close,
};

int physmem_open_buffer(const void *buf, size_t len, const struct phys_range *ranges, size_t nranges,
			struct physmem **out)
{
	struct buffer_priv *b;
	struct physmem *pm;
	int err = 0;

	*out = NULL;
	b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	b->buf = buf;
	b->len = len;
	pm = physmem_alloc(&buffer_ops, b);
	if (!pm) {
		free(b);
		return -ENOMEM;
	}
	if (!ranges || !nranges) {
		err = physmem_add_range(pm, 0, len);
	} else {
		for (size_t i = 0; i < nranges && !err; i++) {
			if (ranges[i].start > len || ranges[i].len > len - ranges[i].start)
				err = -EINVAL;
			else
				err = physmem_add_range(pm, ranges[i].start, ranges[i].len);
		}
	}
	if (!err)
		err = physmem_finalize_ranges(pm);
	if (err) {
		physmem_close(pm);
		return err;
	}
	*out = pm;
	return 0;
}
