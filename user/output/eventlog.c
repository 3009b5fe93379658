/* The JSON-lines event file: append, rotate between lines, reopen; see eventlog.h. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "common/log.h"
#include "output/eventlog.h"

struct evlog {
	struct evlog_opts o;
	char *path;
	FILE *f;
	uint64_t size;            /* bytes in the current file (its size at open, plus what we wrote) */
	uint64_t rotations, lines;
	bool regular;
};

static int open_file(struct evlog *l)
{
	struct stat st;
	int fd = open(l->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st)) {
		int err = -errno;

		close(fd);
		return err;
	}
	l->regular = S_ISREG(st.st_mode);   /* a FIFO or /dev/stdout: written, never rotated */
	l->f = fdopen(fd, "a");
	if (!l->f) {
		int err = -errno;

		close(fd);
		return err;
	}
	l->size = (uint64_t)st.st_size;
	return 0;
}

static int close_file(struct evlog *l)
{
	int err = 0;

	if (l->f && fclose(l->f))
		err = -errno;
	l->f = NULL;
	return err;
}

int evlog_open(const struct evlog_opts *opts, struct evlog **out)
{
	struct evlog *l = calloc(1, sizeof(*l));
	int err;

	*out = NULL;
	if (!l || !(l->path = strdup(opts->path))) {
		free(l);
		p_err("out of memory");
		return -ENOMEM;
	}
	l->o = *opts;
	l->o.path = l->path;
	if (l->o.keep > EVLOG_MAX_KEEP)
		l->o.keep = EVLOG_MAX_KEEP;
	err = open_file(l);
	if (err) {
		p_err("--output %s: %s", opts->path, strerror(-err));
		evlog_close(&l);
		return err;
	}
	*out = l;
	return 0;
}

/* FILE.(keep-1) -> FILE.keep, ..., FILE -> FILE.1 (FILE.keep, the oldest, is replaced), then a new FILE. */
static int rotate(struct evlog *l)
{
	size_t n = strlen(l->path) + 16;
	char *from = malloc(n), *to = malloc(n);
	int err = close_file(l);

	if (!from || !to) {
		free(from);
		free(to);
		return -ENOMEM;
	}
	if (!l->o.keep) {
		if (unlink(l->path) && errno != ENOENT && !err)
			err = -errno;
	} else {
		for (unsigned k = l->o.keep; k >= 1; k--) {
			if (k == 1)
				snprintf(from, n, "%s", l->path);
			else
				snprintf(from, n, "%s.%u", l->path, k - 1);
			snprintf(to, n, "%s.%u", l->path, k);
			if (rename(from, to) && errno != ENOENT && !err)
				err = -errno;
		}
	}
	free(from);
	free(to);
	l->rotations++;
	int oerr = open_file(l);

	return oerr ? oerr : err;
}

int evlog_write_line(struct evlog *l, const char *line, size_t len)
{
	bool nl = !len || line[len - 1] != '\n';
	int err;

	if (!l->f && (err = open_file(l)))   /* a failed reopen is retried at the next line */
		return err;
	if (l->o.max_bytes && l->regular && l->size && l->size + len + nl > l->o.max_bytes && (err = rotate(l)))
		return err;
	if (fwrite(line, 1, len, l->f) != len || (nl && fputc('\n', l->f) == EOF))
		return -(errno ? errno : EIO);
	l->size += len + nl;
	l->lines++;
	return 0;
}

int evlog_flush(struct evlog *l)
{
	if (l->f && fflush(l->f))
		return -errno;
	return 0;
}

int evlog_reopen(struct evlog *l)
{
	int err = close_file(l), oerr = open_file(l);

	return oerr ? oerr : err;
}

uint64_t evlog_rotations(const struct evlog *l) { return l->rotations; }
uint64_t evlog_lines(const struct evlog *l) { return l->lines; }

void evlog_close(struct evlog **lp)
{
	struct evlog *l = *lp;

	if (!l)
		return;
	close_file(l);
	free(l->path);
	free(l);
	*lp = NULL;
}
