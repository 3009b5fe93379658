// SPDX-License-Identifier: GPL-2.0
/*
 * btf-extract — the vmlinux BTF inside a kernel boot image that is no ELF (arm64's Image), found by its header
 * (tests/tools/btf_image.h: the largest blob libbpf parses that has struct task_struct).
 *
 *   btf-extract IMAGE [OUT]
 *
 * Prints "IMAGE: BTF at 0xOFF, N bytes, N types (N candidate header(s))" and, with OUT, writes the raw blob there
 * (through a temporary file in OUT's directory and a rename: never half a file). The image is read whole, up to
 * 512 MiB. Exit 0; 1 with one line on stderr when there is no such BTF or a file cannot be read or written; 64 on
 * usage.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include "btf_image.h"

#define IMAGE_MAX (512u << 20)   /* Debian's arm64 Images are 30–50 MiB */

static int usage(void)
{
	fprintf(stderr, "usage: btf-extract IMAGE [OUT]\n"
			"Example: btf-extract /var/cache/vmoffset-trace/kernels/6.1.0-50-arm64/Image vmlinux.btf\n");
	return 64;
}

/* The whole file, bounded: NULL with a message in err. */
static unsigned char *read_image(const char *path, size_t *size, char *err, size_t errlen)
{
	unsigned char *buf = NULL;
	struct stat st;
	size_t got = 0;
	FILE *f = fopen(path, "rb");

	if (!f) {
		snprintf(err, errlen, "%s", strerror(errno));
		return NULL;
	}
	if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "not a regular file");
		goto fail;
	}
	if ((unsigned long long)st.st_size > IMAGE_MAX) {
		snprintf(err, errlen, "%lld bytes, more than a kernel image's %u MiB", (long long)st.st_size,
			 IMAGE_MAX >> 20);
		goto fail;
	}
	buf = malloc(st.st_size ? (size_t)st.st_size : 1);
	if (!buf) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	/* read what stat promised; a file shrinking underneath is read as it is now */
	while (got < (size_t)st.st_size) {
		size_t n = fread(buf + got, 1, (size_t)st.st_size - got, f);

		if (n == 0)
			break;
		got += n;
	}
	if (ferror(f)) {
		snprintf(err, errlen, "read error");
		free(buf);
		buf = NULL;
		goto fail;
	}
	*size = got;
fail:
	fclose(f);
	return buf;
}

/* buf[0, len) to path, whole or not at all: 0 or -errno. */
static int write_atomic(const char *path, const unsigned char *buf, size_t len)
{
	size_t n = strlen(path) + 8;
	char *tmp = malloc(n);
	FILE *f = NULL;
	int fd, rc = 0;

	if (!tmp)
		return -ENOMEM;
	snprintf(tmp, n, "%s.XXXXXX", path);
	fd = mkstemp(tmp);
	if (fd < 0) {
		rc = -errno;
		free(tmp);
		return rc;
	}
	fchmod(fd, 0644);   /* mkstemp's 0600 would hide the truth from other users of the cache */
	f = fdopen(fd, "wb");
	if (!f) {
		rc = -errno;
		close(fd);
	} else if (fwrite(buf, 1, len, f) != len) {
		rc = -(errno ? errno : EIO);
		fclose(f);
	} else if (fclose(f) != 0 || rename(tmp, path) != 0) {
		rc = -errno;
	}
	if (rc)
		unlink(tmp);
	free(tmp);
	return rc;
}

int main(int argc, char **argv)
{
	struct btf_image_hit hit;
	unsigned char *buf;
	size_t size = 0;
	char err[128];
	int rc;

	if (argc < 2 || argc > 3 || argv[1][0] == '-' || (argc == 3 && argv[2][0] == '-'))
		return usage();
	buf = read_image(argv[1], &size, err, sizeof(err));
	if (!buf) {
		fprintf(stderr, "btf-extract: %s: %s\n", argv[1], err);
		return 1;
	}
	libbpf_set_print(NULL);   /* a rejected candidate is expected, not news */
	rc = btf_image_find(buf, size, &hit);
	if (rc == -E2BIG) {
		fprintf(stderr, "btf-extract: %s: more than %u headers look like BTF: not a kernel image\n", argv[1],
			BTF_IMAGE_MAX_TRIES);
		free(buf);
		return 1;
	}
	if (rc) {
		fprintf(stderr, "btf-extract: %s: no BTF with struct task_struct (%u header(s) looked like BTF, %u parsed)\n",
			argv[1], hit.candidates, hit.parsed);
		free(buf);
		return 1;
	}
	if (argc == 3 && (rc = write_atomic(argv[2], buf + hit.off, hit.len)) != 0) {
		fprintf(stderr, "btf-extract: %s: cannot write: %s\n", argv[2], strerror(-rc));
		free(buf);
		return 1;
	}
	printf("%s: BTF at 0x%zx, %zu bytes, %u types (%u candidate header(s))\n", argv[1], hit.off, hit.len, hit.types,
	       hit.candidates);
	free(buf);
	return 0;
}
