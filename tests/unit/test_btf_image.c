/* cmocka: the vmlinux BTF found inside a kernel image by its header (tests/tools/btf_image.h, btf-extract) —
 * on images made of junk and BTF that libbpf builds here; hostile headers (huge or wrapping lengths, truncation,
 * a header at the very end, a fake covering the real blob, a flood of fakes) are rejected within the buffer. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "../tools/btf_image.h"

/* A raw BTF with `extra` more ints and, if asked, struct task_struct; malloc'd copy in *raw. */
static size_t make_btf(int with_task, int extra, unsigned char **raw)
{
	struct btf *btf = btf__new_empty();
	const void *data;
	__u32 size;
	int l;

	assert_non_null(btf);
	l = btf__add_int(btf, "long", 8, BTF_INT_SIGNED);
	assert_true(l > 0);
	if (with_task) {
		assert_true(btf__add_struct(btf, "task_struct", 16) > 0);
		assert_int_equal(btf__add_field(btf, "pid", l, 0, 0), 0);
		assert_int_equal(btf__add_field(btf, "tgid", l, 64, 0), 0);
	}
	for (int i = 0; i < extra; i++) {
		char name[16];

		snprintf(name, sizeof(name), "t%d", i);
		assert_true(btf__add_int(btf, name, 4, 0) > 0);
	}
	data = btf__raw_data(btf, &size);
	assert_non_null(data);
	*raw = malloc(size);
	assert_non_null(*raw);
	memcpy(*raw, data, size);
	btf__free(btf);
	return size;
}

/* Junk that holds the magic now and then (never a valid header on its own). */
static void junk(unsigned char *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++) {
		seed = seed * 1103515245u + 12345u;
		p[i] = (unsigned char)(seed >> 16);
		if (i % 997 == 0 && i + 3 <= n) {
			p[i] = 0x9f; p[i + 1] = 0xeb; p[i + 2] = 1;
			i += 2;
		}
	}
}

static void put_le32(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

/* A header that passes the cheap checks: 24 bytes, `types` bytes of 0xff types, then strings "\0\0". */
static size_t fake_header(unsigned char *p, uint32_t types)
{
	memset(p, 0, 24);
	p[0] = 0x9f; p[1] = 0xeb; p[2] = 1;
	put_le32(p + 4, 24);
	put_le32(p + 8, 0);
	put_le32(p + 12, types);
	put_le32(p + 16, types);
	put_le32(p + 20, 2);
	memset(p + 24, 0xff, types);
	p[24 + types] = 0; p[24 + types + 1] = 0;
	return 24 + types + 2;
}

static void test_found_in_junk(void **state)
{
	struct btf_image_hit hit;
	unsigned char *btf, *img;
	size_t n = make_btf(1, 10, &btf), size = 300001 + n + 5003;

	img = malloc(size);
	assert_non_null(img);
	junk(img, size, 7);
	memcpy(img + 300001, btf, n);   /* an odd offset: the section need not be aligned in the image */
	assert_int_equal(btf_image_find(img, size, &hit), 0);
	assert_int_equal(hit.off, 300001);
	assert_int_equal(hit.len, n);
	assert_int_equal(hit.types, 12);   /* long, task_struct, 10 ints (void, id 0, not counted) */
	assert_int_equal(hit.parsed, 1);
	free(img);
	free(btf);
}

static void test_largest_with_task_struct_wins(void **state)
{
	struct btf_image_hit hit;
	unsigned char *small, *big_no_task, *big, *img;
	size_t ns = make_btf(1, 0, &small), nn = make_btf(0, 500, &big_no_task), nb = make_btf(1, 100, &big);
	size_t size = 64 + ns + 64 + nn + 64 + nb + 64, o1 = 64, o2 = o1 + ns + 64, o3 = o2 + nn + 64;

	img = calloc(1, size);
	assert_non_null(img);
	memcpy(img + o1, small, ns);
	memcpy(img + o2, big_no_task, nn);
	memcpy(img + o3, big, nb);
	assert_int_equal(btf_image_find(img, size, &hit), 0);
	assert_int_equal(hit.off, o3);
	assert_int_equal(hit.len, nb);
	assert_int_equal(hit.candidates, 3);
	assert_int_equal(hit.parsed, 3);
	/* only a BTF without task_struct: parsed, not taken */
	assert_int_equal(btf_image_find(img + o2, nn, &hit), -ENOENT);
	assert_int_equal(hit.parsed, 1);
	free(img);
	free(small);
	free(big_no_task);
	free(big);
}

static void test_truncated(void **state)
{
	struct btf_image_hit hit;
	unsigned char *btf, *img;
	size_t n = make_btf(1, 50, &btf);

	/* cut anywhere inside the blob: no candidate, no read past the end (exact-size buffers for ASan) */
	for (size_t cut = 0; cut < n; cut += cut < 64 ? 1 : 97) {
		img = malloc(cut ? cut : 1);
		assert_non_null(img);
		memcpy(img, btf, cut);
		assert_int_equal(btf_image_find(img, cut, &hit), -ENOENT);
		assert_int_equal(hit.candidates, 0);
		free(img);
	}
	free(btf);
}

static void test_hostile_headers(void **state)
{
	static const uint32_t bad[][5] = {   /* hdr_len, type_off, type_len, str_off, str_len */
		{ 24, 0, 0xfffffffc, 0xfffffffc, 2 },        /* sums wrap in 32 bits */
		{ 24, 0, 8, 8, 0xffffffff },                  /* strings far past the end */
		{ 0xffffffff, 0, 8, 8, 2 },                   /* header longer than anything */
		{ 0, 0, 8, 8, 2 },                            /* header shorter than itself */
		{ 24, 2, 8, 10, 2 },                          /* types not 4-aligned */
		{ 24, 8, 8, 0, 2 },                           /* strings before types */
		{ 24, 0, 0, 0, 2 },                           /* no types */
		{ 24, 0, 8, 8, 1 },                           /* one-byte strings */
	};
	struct btf_image_hit hit;
	unsigned char *img;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		img = calloc(1, 64);
		assert_non_null(img);
		img[0] = 0x9f; img[1] = 0xeb; img[2] = 1;
		for (int k = 0; k < 5; k++)
			put_le32(img + 4 + 4 * k, bad[i][k]);
		assert_int_equal(btf_image_find(img, 64, &hit), -ENOENT);
		assert_int_equal(hit.candidates, 0);
		free(img);
	}
	/* strings not NUL-framed */
	img = calloc(1, 64);
	fake_header(img, 8);
	img[24 + 8] = 'x';
	assert_int_equal(btf_image_find(img, 64, &hit), -ENOENT);
	assert_int_equal(hit.candidates, 0);
	/* plausible header, garbage types: a candidate libbpf refuses */
	fake_header(img, 8);
	assert_int_equal(btf_image_find(img, 64, &hit), -ENOENT);
	assert_int_equal(hit.candidates, 1);
	assert_int_equal(hit.parsed, 0);
	free(img);
	/* the magic in the last bytes of the image: nothing read beyond them */
	for (size_t n = 0; n <= 24; n++) {
		img = malloc(n ? n : 1);
		memset(img, 0, n);
		if (n >= 3) {
			img[n - 3] = 0x9f; img[n - 2] = 0xeb; img[n - 1] = 1;
		} else if (n) {
			img[n - 1] = 0x9f;
		}
		assert_int_equal(btf_image_find(img, n, &hit), -ENOENT);
		free(img);
	}
}

static void test_fake_covering_real(void **state)
{
	struct btf_image_hit hit;
	unsigned char *btf, *img;
	size_t n = make_btf(1, 5, &btf), types = (8 + n + 8 + 3) & ~(size_t)3, size = 24 + types + 2;

	/* a fake header whose types span the real blob: skipping past it would lose the real one */
	img = calloc(1, size);
	assert_non_null(img);
	fake_header(img, (uint32_t)types);
	memcpy(img + 24 + 8, btf, n);
	assert_int_equal(btf_image_find(img, size, &hit), 0);
	assert_int_equal(hit.off, 24 + 8);
	assert_int_equal(hit.candidates, 2);
	free(img);
	free(btf);
}

static void test_flood_of_fakes(void **state)
{
	struct btf_image_hit hit;
	size_t one = 24 + 8 + 2, size = one * (BTF_IMAGE_MAX_TRIES + 1);
	unsigned char *img = calloc(1, size);

	assert_non_null(img);
	for (unsigned i = 0; i <= BTF_IMAGE_MAX_TRIES; i++)
		fake_header(img + i * one, 8);
	assert_int_equal(btf_image_find(img, size, &hit), -E2BIG);
	assert_int_equal(hit.parsed, 0);
	free(img);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_found_in_junk),
		cmocka_unit_test(test_largest_with_task_struct_wins),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_hostile_headers),
		cmocka_unit_test(test_fake_covering_real),
		cmocka_unit_test(test_flood_of_fakes),
	};

	libbpf_set_print(NULL);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
