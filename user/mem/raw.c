/*
 * Raw guest-physical image: a flat file whose byte at offset x is GPA x (QEMU `pmemsave 0 SIZE`, a
 * memory-backend-file, /dev/shm RAM of a guest). Opened O_RDONLY and mapped read-only; when the file
 * cannot be mapped (block/char devices, zero length) reads fall back to pread(2).
 * The whole file is one RAM range [base, base + size): a raw image carries no holes (base 0 unless given:
 * an arm64 virt machine's RAM starts at 1 GiB, and a file of its RAM alone starts there).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include "common/log.h"
#include "mem/physmem.h"

struct raw_priv {
	uint64_t base;              /* the guest-physical address of the file's first byte */
	int fd;
	const unsigned char *map;   /* NULL when using pread */
	uint64_t size;
};

static int raw_read(struct physmem *pm, uint64_t gpa, void *buf, size_t len)
{
	struct raw_priv *r = pm->priv;
	unsigned char *out = buf;

	if (gpa < r->base)
		return -EFAULT;
	gpa -= r->base;
	if (gpa > r->size || len > r->size - gpa)
		return -EFAULT;
	if (r->map) {
		memcpy(buf, r->map + gpa, len);
		return 0;
	}
	while (len) {
		ssize_t n = pread(r->fd, out, len, (off_t)gpa);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO;   /* file shrank under us */
		out += n;
		gpa += (uint64_t)n;
		len -= (size_t)n;
	}
	return 0;
}

static void raw_close(struct physmem *pm)
{
	struct raw_priv *r = pm->priv;

	if (!r)
		return;
	if (r->map)
		munmap((void *)r->map, r->size);
	if (r->fd >= 0)
		close(r->fd);
	free(r);
}

static const struct physmem_ops raw_ops = {
	.kind = "raw",
	.read = raw_read,
	.close = raw_close,
};

int physmem_open_raw(const char *path, struct physmem **out)
{
	return physmem_open_raw_at(path, 0, out);
}

int physmem_open_raw_at(const char *path, uint64_t base, struct physmem **out)
{
	struct raw_priv *r;
	struct physmem *pm;
	struct stat st;
	int err;

	*out = NULL;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->base = base;
	r->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (r->fd < 0) {
		err = -errno;
		p_err("cannot open raw memory image %s: %s", path, strerror(errno));
		free(r);
		return err;
	}
	if (fstat(r->fd, &st)) {
		err = -errno;
		p_err("cannot stat %s: %s", path, strerror(errno));
		goto fail;
	}
	if (S_ISREG(st.st_mode)) {
		r->size = (uint64_t)st.st_size;
	} else if (S_ISBLK(st.st_mode)) {
		uint64_t sz = 0;

		if (ioctl(r->fd, BLKGETSIZE64, &sz)) {
			err = -errno;
			p_err("cannot size block device %s: %s", path, strerror(errno));
			goto fail;
		}
		r->size = sz;
	} else {
		err = -EINVAL;
		p_err("%s is not a regular file or block device", path);
		goto fail;
	}
	if (!r->size) {
		err = -EINVAL;
		p_err("raw memory image %s is empty", path);
		goto fail;
	}
	if (S_ISREG(st.st_mode)) {
		void *m = mmap(NULL, r->size, PROT_READ, MAP_PRIVATE, r->fd, 0);

		if (m != MAP_FAILED)
			r->map = m;
	}
	pm = physmem_alloc(&raw_ops, r);
	if (!pm) {
		err = -ENOMEM;
		goto fail;
	}
	if (r->size > UINT64_MAX - base) {
		physmem_close(pm);
		p_err("raw memory image %s at %#llx would end past the physical address space", path,
		      (unsigned long long)base);
		return -EINVAL;
	}
	err = physmem_add_range(pm, base, r->size);
	if (err) {
		physmem_close(pm);
		return err;
	}
	*out = pm;
	return 0;
fail:
	if (r->map)
		munmap((void *)r->map, r->size);
	close(r->fd);
	free(r);
	return err;
}
