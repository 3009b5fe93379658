#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "common/json_writer.h"
#include "common/log.h"

int  log_verbose;
bool log_json;
bool log_quiet;

static void error_fill(json_writer_t *w, void *msg)
{
	jsonw_start_object(w);
	jsonw_string_field(w, "error", msg);
	jsonw_end_object(w);
}

void p_err(const char *fmt, ...)
{
	char buf[1024];
	va_list ap;

	if (log_quiet && !log_verbose)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (log_json) {
		char *j = jsonw_text(error_fill, buf);   /* one writer for every JSON we print */

		puts(j ? j : "{\"error\":\"out of memory\"}");
		free(j);
		fflush(stdout);
	} else {
		fprintf(stderr, "Error: %s\n", buf);
	}
}

#define LOG_FN(name, prefix, cond)                          \
	void name(const char *fmt, ...)                     \
	{                                                   \
		va_list ap;                                 \
		if (!(cond))                                \
			return;                             \
		fputs(prefix, stderr);                      \
		va_start(ap, fmt);                          \
		vfprintf(stderr, fmt, ap);                  \
		va_end(ap);                                 \
		fputc('\n', stderr);                        \
	}

LOG_FN(p_warn, "Warning: ", !log_quiet || log_verbose)
LOG_FN(p_info, "", !log_quiet || log_verbose)

/* -vv: debug lines carry the seconds since the first one (where set-up time goes) */
void p_dbg(const char *fmt, ...)
{
	static double t0;
	struct timespec ts;
	va_list ap;

	if (!log_verbose)
		return;
	fputs("debug: ", stderr);
	if (log_verbose > 1) {
		clock_gettime(CLOCK_MONOTONIC, &ts);
		if (!t0)
			t0 = ts.tv_sec + ts.tv_nsec / 1e9;
		fprintf(stderr, "[%7.3f] ", ts.tv_sec + ts.tv_nsec / 1e9 - t0);
	}
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}
