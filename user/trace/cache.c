/* Offsets cache by kernel fingerprint; see cache.h for the choice of fingerprint. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <json-c/json.h>
#include "arch/x86_64.h"
#include "common/log.h"
#include "trace/cache.h"

#define IMAGE_SPAN   (1ULL << 30)     /* KASLR moves the image within 1 GiB */
#define SCAN_MAX     (96ULL << 20)    /* bytes of image searched for the banner */
#define CHUNK        (256u << 10)
static const char BANNER[] = "Linux version ";

struct leaves {
	struct { uint64_t va, pa, size; } v[65536];
	size_t n;
	uint64_t first_va, covered;
};

static int leaf_cb(uint64_t va, const struct x86_map *m, void *arg)
{
	struct leaves *l = arg;

	if (!l->n)
		l->first_va = va;
	if (va - l->first_va >= SCAN_MAX || l->n >= 65536)
		return 1;
	/* merge physically and virtually contiguous leaves */
	if (l->n && l->v[l->n - 1].va + l->v[l->n - 1].size == va && l->v[l->n - 1].pa + l->v[l->n - 1].size == m->pa) {
		l->v[l->n - 1].size += m->page_size;
	} else {
		l->v[l->n].va = va;
		l->v[l->n].pa = m->pa;
		l->v[l->n++].size = m->page_size;
	}
	return 0;
}

static uint64_t fnv1a(const char *s, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (size_t i = 0; i < n; i++) {
		h ^= (uint8_t)s[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

/* A banner at p: "Linux version " then printable text up to '\n' (at least a release and a '#'). */
static size_t banner_len(const char *p, size_t avail)
{
	size_t n = sizeof(BANNER) - 1;

	while (n < avail && n < 400 && p[n] >= 0x20 && p[n] < 0x7f)
		n++;
	if (n >= avail || p[n] != '\n' || n < sizeof(BANNER) + 8 || !memchr(p, '#', n))
		return 0;
	return n;
}

int kernel_fingerprint(struct physmem *pm, uint64_t kernel_cr3, bool la57, uint64_t *fp, char *banner,
		       size_t len, uint64_t *text_base)
{
	struct leaves *l = calloc(1, sizeof(*l));
	char *buf = malloc(CHUNK + 512);
	int err = -ENOENT;

	if (!l || !buf) {
		free(l);
		free(buf);
		return -ENOMEM;
	}
	int w = x86_walk(pm, kernel_cr3, la57, KERNEL_TEXT_BASE, KERNEL_TEXT_BASE + IMAGE_SPAN, 0, leaf_cb, l);

	if (w < 0 || !l->n) {
		p_dbg("kernel image: page walk from %#" PRIx64 " (la57 %d) found nothing (%d)", kernel_cr3, la57, w);
		goto out;
	}
	*text_base = l->v[0].va & ~0x1fffffULL;
	p_dbg("kernel image: %zu mapped runs from %#" PRIx64, l->n, l->v[0].va);
	for (size_t i = 0; i < l->n && err; i++) {
		for (uint64_t off = 0; off < l->v[i].size && err; off += CHUNK) {
			size_t n = l->v[i].size - off < CHUNK ? (size_t)(l->v[i].size - off) : CHUNK;
			size_t extra = l->v[i].size - off - n >= 512 ? 512 : (size_t)(l->v[i].size - off - n);
			const char *p;
			size_t at = 0;

			if (physmem_read(pm, l->v[i].pa + off, buf, n + extra))
				continue;
			while ((p = memmem(buf + at, n - at, BANNER, sizeof(BANNER) - 1))) {
				size_t bl = banner_len(p, buf + n + extra - p);

				at = (size_t)(p - buf) + 1;
				if (!bl)
					continue;
				*fp = fnv1a(p, bl);
				snprintf(banner, len, "%.*s", (int)bl, p);
				err = 0;
				break;
			}
		}
	}
out:
	free(l);
	free(buf);
	return err;
}

const char *offsets_cache_dir(void)
{
	static char dir[512];
	const char *base = getenv("VMOFFSET_CACHE");

	snprintf(dir, sizeof(dir), "%s/offsets", base && *base ? base : "/var/cache/vmoffset-trace");
	return dir;
}

static void cache_path(uint64_t fp, char *p, size_t len)
{
	snprintf(p, len, "%s/%016" PRIx64 ".json", offsets_cache_dir(), fp);
}

static bool get_i64(struct json_object *o, const char *k, int64_t *v)
{
	struct json_object *x;

	if (!json_object_object_get_ex(o, k, &x) || !json_object_is_type(x, json_type_int))
		return false;
	*v = json_object_get_int64(x);
	return true;
}

/* Interchangeable pairs: [{"members":[A,B],"offsets":[a,b]}]; members as task_field_names spell them, or
 * real_cred (not one of ours). Names out of that set make the entry unreadable. */
static const char *const pair_member_names[] = { "mm", "active_mm", "real_parent", "parent", "pid", "tgid",
						 "real_cred", "cred" };

static bool load_pairs(struct json_object *root, struct discovery_result *res)
{
	struct json_object *arr;

	if (!json_object_object_get_ex(root, "pairs", &arr))
		return true;   /* written before pairs existed: none */
	if (!json_object_is_type(arr, json_type_array) || json_object_array_length(arr) > VMOT_MAX_PAIRS)
		return false;
	for (size_t i = 0; i < json_object_array_length(arr); i++) {
		struct json_object *e = json_object_array_get_idx(arr, i), *m, *o;
		struct offset_pair *p = &res->pairs[res->npairs];

		if (!json_object_object_get_ex(e, "members", &m) || !json_object_object_get_ex(e, "offsets", &o) ||
		    json_object_array_length(m) != 2 || json_object_array_length(o) != 2)
			return false;
		for (int k = 0; k < 2; k++) {
			const char *name = json_object_get_string(json_object_array_get_idx(m, k));
			size_t n = 0;

			while (name && n < sizeof(pair_member_names) / sizeof(pair_member_names[0]) &&
			       strcmp(pair_member_names[n], name))
				n++;
			if (!name || n == sizeof(pair_member_names) / sizeof(pair_member_names[0]))
				return false;
			p->members[k] = pair_member_names[n];
			p->fields[k] = TF_NR;
			for (int f = 0; f < TF_NR; f++)
				if (!strcmp(task_field_names[f], name))
					p->fields[k] = (enum task_field)f;
			p->offsets[k] = json_object_get_int64(json_object_array_get_idx(o, k));
			if (p->offsets[k] < 0 || p->offsets[k] > 65536)
				return false;
		}
		for (int k = 0; k < 2; k++) {
			if (p->fields[k] == TF_NR)
				continue;
			res->task[p->fields[k]].found = false;
			res->task[p->fields[k]].tied = true;
			res->task[p->fields[k]].offset = p->offsets[0];
			snprintf(res->task[p->fields[k]].how, sizeof(res->task[p->fields[k]].how),
				 "offsets cache; interchangeable with %s", p->members[!k]);
		}
		res->npairs++;
	}
	return true;
}

int offsets_cache_load(uint64_t fp, uint64_t text_base, struct discovery_result *res)
{
	char path[600];
	struct json_object *root, *task;
	int64_t v;
	int err = -EINVAL;

	cache_path(fp, path, sizeof(path));
	if (access(path, R_OK))
		return -ENOENT;
	root = json_object_from_file(path);
	if (!root)
		return -EINVAL;
	memset(res, 0, sizeof(*res));
	res->thread_ring = -1;
	res->percpu_current = -1;
	if (!json_object_object_get_ex(root, "task_struct", &task))
		goto out;
	for (int f = 0; f < TF_NR; f++) {
		if (!get_i64(task, task_field_names[f], &v) || v < 0 || v > 65536)
			goto out;
		res->task[f].offset = v;
		res->task[f].found = true;
		res->task[f].confidence = 1;
		snprintf(res->task[f].how, sizeof(res->task[f].how), "offsets cache");
	}
	if (!get_i64(root, "mm_pgd", &v) || v < 0 || v > 65536)
		goto out;
	res->mm_pgd.offset = v;
	res->mm_pgd.found = true;
	res->mm_pgd.confidence = 1;
	snprintf(res->mm_pgd.how, sizeof(res->mm_pgd.how), "offsets cache");
	if (!get_i64(root, "init_task_rel", &v) || !load_pairs(root, res))
		goto out;
	res->init_task = text_base + (uint64_t)v;
	if (get_i64(root, "thread_ring", &v))
		res->thread_ring = v;
	if (get_i64(root, "percpu_current", &v))
		res->percpu_current = v;
	else if (get_i64(root, "percpu_current_rel_text", &v))   /* not zero-based: moves with KASLR */
		res->percpu_current = (int64_t)(text_base + (uint64_t)v);
	if (get_i64(root, "task_stride", &v))
		res->task_stride = (uint32_t)v;
	err = 0;
out:
	json_object_put(root);
	return err;
}

int offsets_cache_store(uint64_t fp, const char *banner, uint64_t text_base, const struct discovery_result *res)
{
	char path[600], tmp[640];
	struct json_object *root = json_object_new_object(), *task = json_object_new_object();
	int err = 0;

	if (!root || !task) {
		json_object_put(root);
		json_object_put(task);
		return -ENOMEM;
	}
	for (int f = 0; f < TF_NR; f++)
		json_object_object_add(task, task_field_names[f], json_object_new_int64(res->task[f].offset));
	json_object_object_add(root, "banner", json_object_new_string(banner));
	json_object_object_add(root, "task_struct", task);
	json_object_object_add(root, "mm_pgd", json_object_new_int64(res->mm_pgd.offset));
	json_object_object_add(root, "init_task_rel", json_object_new_int64((int64_t)(res->init_task - text_base)));
	json_object_object_add(root, "thread_ring", json_object_new_int64(res->thread_ring));
	if ((uint64_t)res->percpu_current >= 0xffffffff80000000ULL && res->percpu_current != -1)
		json_object_object_add(root, "percpu_current_rel_text",
				       json_object_new_int64((int64_t)((uint64_t)res->percpu_current - text_base)));
	else
		json_object_object_add(root, "percpu_current", json_object_new_int64(res->percpu_current));
	json_object_object_add(root, "task_stride", json_object_new_int64(res->task_stride));
	struct json_object *pairs = json_object_new_array();
	for (uint32_t i = 0; pairs && i < res->npairs && i < VMOT_MAX_PAIRS; i++) {
		struct json_object *e = json_object_new_object(), *m = json_object_new_array(),
				   *o = json_object_new_array();
		for (int k = 0; k < 2; k++) {
			json_object_array_add(m, json_object_new_string(res->pairs[i].members[k]));
			json_object_array_add(o, json_object_new_int64(res->pairs[i].offsets[k]));
		}
		json_object_object_add(e, "members", m);
		json_object_object_add(e, "offsets", o);
		json_object_array_add(pairs, e);
	}
	json_object_object_add(root, "pairs", pairs);

	/* mkdir -p: an existing directory is fine, any other failure is the answer */
	snprintf(tmp, sizeof(tmp), "%s", offsets_cache_dir());
	for (char *s = tmp + 1; *s && !err; s++)
		if (*s == '/') {
			*s = 0;
			if (mkdir(tmp, 0755) && errno != EEXIST)
				err = -errno;
			*s = '/';
		}
	if (!err && mkdir(tmp, 0755) && errno != EEXIST)
		err = -errno;
	if (err) {
		json_object_put(root);
		return err;
	}
	/* A temporary file of our own in the target directory (mkstemp: O_EXCL and an unpredictable name, so
	 * nothing planted there is followed), renamed over the entry: readers see the old or the new file. */
	cache_path(fp, path, sizeof(path));
	snprintf(tmp, sizeof(tmp), "%s.XXXXXX", path);
	int fd = mkstemp(tmp);
	const char *text = json_object_to_json_string_ext(root, JSON_C_TO_STRING_PRETTY);
	size_t len = text ? strlen(text) : 0;

	if (fd < 0) {
		err = -errno;
	} else {
		if (!text || write(fd, text, len) != (ssize_t)len || write(fd, "\n", 1) != 1 ||
		    fchmod(fd, 0644))   /* mkstemp makes it 0600; an entry is as readable as its directory */
			err = -EIO;
		if (close(fd) && !err)
			err = -EIO;
		if (!err && rename(tmp, path))
			err = -errno;
		if (err)
			unlink(tmp);
	}
	json_object_put(root);
	return err;
}
