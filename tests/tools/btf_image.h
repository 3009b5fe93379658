/*
 * Finding a kernel's vmlinux BTF inside a boot image that is no ELF (arm64's Image: objcopy has no .BTF
 * section to dump). The raw .BTF section is copied into the Image byte for byte, so it is found by its header:
 *
 *   struct btf_header { u16 magic 0xeB9F; u8 version 1; u8 flags; u32 hdr_len; u32 type_off, type_len,
 *                       str_off, str_len; }      blob = hdr_len + max(type_off+type_len, str_off+str_len)
 *
 * Every place with the little-endian magic and version 1 is a candidate; cheap header checks drop the random
 * hits, then libbpf must parse the blob and it must hold struct task_struct. The largest such blob wins
 * (vmlinux's; a BPF object embedded in the kernel carries a small BTF of its own). Header-only: shared by
 * tests/tools/btf-extract.c and tests/unit/test_btf_image.c. Uses libbpf and libc only.
 */
#ifndef VMOT_TEST_BTF_IMAGE_H
#define VMOT_TEST_BTF_IMAGE_H
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#define BTF_IMAGE_HDR_MIN 24u
#define BTF_IMAGE_HDR_MAX 256u      /* 24 today; room for a grown header, not for a random one */
#define BTF_IMAGE_MAX_TRIES 64u     /* blobs handed to libbpf at most: each parse costs a copy of the blob */

struct btf_image_hit {
	size_t off, len;            /* the blob within the image */
	unsigned types;             /* its type count */
	unsigned candidates;        /* headers that passed the cheap checks */
	unsigned parsed;            /* of those, blobs libbpf parsed */
};

static inline uint32_t btf_image_le32(const unsigned char *p)
{
	return p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Length of a plausible BTF blob at p (at most `left` bytes to the end of the image), 0 if the header is not one.
 * Only checks that need no parse: lengths inside the image, sections in libbpf's order, strings NUL-framed. */
static inline size_t btf_image_blob_len(const unsigned char *p, size_t left)
{
	uint32_t hdr_len, type_off, type_len, str_off, str_len;
	uint64_t types_end, strs_end, len;

	if (left < BTF_IMAGE_HDR_MIN || p[0] != 0x9f || p[1] != 0xeb || p[2] != 1)
		return 0;
	hdr_len = btf_image_le32(p + 4);
	type_off = btf_image_le32(p + 8);
	type_len = btf_image_le32(p + 12);
	str_off = btf_image_le32(p + 16);
	str_len = btf_image_le32(p + 20);
	if (hdr_len < BTF_IMAGE_HDR_MIN || hdr_len > BTF_IMAGE_HDR_MAX)
		return 0;
	/* 64-bit sums: a fake header's u32 lengths must not wrap */
	types_end = (uint64_t)type_off + type_len;
	strs_end = (uint64_t)str_off + str_len;
	len = hdr_len + (types_end > strs_end ? types_end : strs_end);
	if (len > left || len > UINT32_MAX)
		return 0;
	/* libbpf wants types 4-aligned and before the strings; the string section starts and ends with a NUL */
	if (type_len == 0 || type_off % 4 || type_len % 4 || types_end > str_off || str_len < 2)
		return 0;
	if (p[hdr_len + str_off] != 0 || p[hdr_len + strs_end - 1] != 0)
		return 0;
	return (size_t)len;
}

/* The largest blob in buf[0, size) that libbpf parses and that has struct task_struct: 0 and *hit; -ENOENT if
 * none, -E2BIG if more than BTF_IMAGE_MAX_TRIES headers passed the cheap checks (hostile input: each parse
 * copies its blob). hit's counters say how far the candidates got. */
static inline int btf_image_find(const unsigned char *buf, size_t size, struct btf_image_hit *hit)
{
	const unsigned char *p = buf, *end = buf + size;

	memset(hit, 0, sizeof(*hit));
	while (p < end && (p = memchr(p, 0x9f, (size_t)(end - p))) != NULL) {
		size_t len = btf_image_blob_len(p, (size_t)(end - p));
		struct btf *btf;

		/* on to the next byte whatever happens: a fake header may cover the real blob */
		p++;
		if (len == 0)
			continue;
		if (++hit->candidates > BTF_IMAGE_MAX_TRIES)
			return -E2BIG;
		btf = btf__new(p - 1, (uint32_t)len);
		if (!btf)
			continue;
		hit->parsed++;
		if (btf__find_by_name_kind(btf, "task_struct", BTF_KIND_STRUCT) > 0 && len > hit->len) {
			hit->off = (size_t)(p - 1 - buf);
			hit->len = len;
			hit->types = btf__type_cnt(btf) - 1;
		}
		btf__free(btf);
	}
	return hit->len ? 0 : -ENOENT;
}

#endif
