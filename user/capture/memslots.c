/*
 * capture_read_memslots: the GPA → QEMU-VA map of a VM, straight from KVM. A BPF task_file iterator visits the
 * process's files, finds its "kvm-vm" anon file, follows file->private_data to struct kvm and writes each
 * memslot of kvm->memslots[as] as a struct capture_memslot_rec into the iterator's seq_file, which we read
 * like a file. No KVM event is needed, so it works on a paused or idle guest.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "capture/capture.h"
#include "capture/internal.h"
#include "capture.skel.h"
#include "common/log.h"

static int cmp_slot(const void *a, const void *b)
{
	const struct memslot *x = a, *y = b;

	if (x->as_id != y->as_id)
		return x->as_id < y->as_id ? -1 : 1;
	return x->gpa < y->gpa ? -1 : x->gpa > y->gpa;
}

int capture_read_memslots(pid_t pid, struct memslot *out, size_t max)
{
	struct capture_memslot_rec rec[64];
	struct bpf_link *link = NULL;
	struct capture_bpf *skel;
	struct memslot *all = NULL;
	struct bpf_program *p;
	size_t n = 0, cap = 0;
	const char *missing;
	int err, fd = -1;
	ssize_t got;

	if (pid <= 0)
		return -EINVAL;
	if (kill(pid, 0) && errno == ESRCH)
		return -ESRCH;
	err = capture_check_privilege(&missing);
	if (err)
		return err;
	capture_libbpf_log_init();
	skel = capture_bpf__open();
	if (!skel)
		return -errno;
	bpf_object__for_each_program(p, skel->obj)
		bpf_program__set_autoload(p, p == skel->progs.dump_memslots);
	err = capture_bpf__load(skel);
	if (err) {
		p_dbg("loading the memslot iterator failed: %s", strerror(-err));
		err = err == -EINVAL || err == -ENOENT ? -EOPNOTSUPP : err;
		goto out;
	}
	skel->bss->memslot_tgid = (__u32)pid;
	/* Since 6.1 the kernel walks only that process's files; before, the program's tgid check filters. */
	{
		union bpf_iter_link_info linfo = { .task = { .pid = (__u32)pid } };
		LIBBPF_OPTS(bpf_iter_attach_opts, iopts, .link_info = &linfo, .link_info_len = sizeof(linfo));

		link = bpf_program__attach_iter(skel->progs.dump_memslots, &iopts);
		if (!link)
			link = bpf_program__attach_iter(skel->progs.dump_memslots, NULL);
	}
	if (!link) {
		err = -errno;
		goto out;
	}
	fd = bpf_iter_create(bpf_link__fd(link));
	if (fd < 0) {
		err = -errno;
		goto out;
	}
	while ((got = read(fd, rec, sizeof(rec))) > 0) {
		for (size_t i = 0; i < (size_t)got / sizeof(rec[0]); i++) {
			if (n == cap) {
				struct memslot *m = realloc(all, (cap ? cap * 2 : 32) * sizeof(*m));

				if (!m) {
					err = -ENOMEM;
					goto out;
				}
				all = m;
				cap = cap ? cap * 2 : 32;
			}
			all[n++] = (struct memslot){
				.gpa = rec[i].base_gfn << 12,
				.size = rec[i].npages << 12,
				.hva = rec[i].userspace_addr,
				.flags = rec[i].flags,
				.id = rec[i].id,
				.as_id = rec[i].as_id,
			};
		}
	}
	if (got < 0) {
		err = -errno;
		goto out;
	}
	if (!n) {
		err = -ESRCH;   /* no kvm-vm file in that process */
		goto out;
	}
	qsort(all, n, sizeof(*all), cmp_slot);
	memcpy(out, all, (n < max ? n : max) * sizeof(*out));
	err = (int)n;
out:
	if (fd >= 0)
		close(fd);
	bpf_link__destroy(link);
	capture_bpf__destroy(skel);
	free(all);
	return err;
}
