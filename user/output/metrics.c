/* Prometheus text exposition of a trace, its HTTP endpoint and its textfile; see metrics.h. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include "common/log.h"
#include "output/metrics.h"

/* ---- the text ---- */

/* A label value: backslash, double quote and newline escaped, as the format asks. */
static void label_value(FILE *f, const char *s)
{
	for (; *s; s++) {
		if (*s == '\\' || *s == '"')
			fprintf(f, "\\%c", *s);
		else if (*s == '\n')
			fputs("\\n", f);
		else
			fputc(*s, f);
	}
}

static void family(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP vmoffset_trace_%s %s\n# TYPE vmoffset_trace_%s %s\n", name, help, name, type);
}

static void vm_labels(FILE *f, const struct metrics_vm *v)
{
	fputs("vm=\"", f);
	label_value(f, v->name[0] ? v->name : "?");
	fprintf(f, "\",qemu_pid=\"%d\"", v->pid);
}

/* One sample per VM of the u64 member at off. */
static void per_vm(FILE *f, const struct metrics_snapshot *s, const char *name, const char *type, const char *help,
		   size_t off)
{
	family(f, name, type, help);
	for (size_t i = 0; i < s->nvms; i++) {
		fprintf(f, "vmoffset_trace_%s{", name);
		vm_labels(f, &s->vm[i]);
		fprintf(f, "} %" PRIu64 "\n", *(const uint64_t *)((const char *)&s->vm[i] + off));
	}
}

static void per_vm_bool(FILE *f, const struct metrics_snapshot *s, const char *name, const char *help, size_t off)
{
	family(f, name, "gauge", help);
	for (size_t i = 0; i < s->nvms; i++) {
		fprintf(f, "vmoffset_trace_%s{", name);
		vm_labels(f, &s->vm[i]);
		fprintf(f, "} %d\n", *((const bool *)((const char *)&s->vm[i] + off)) ? 1 : 0);
	}
}

#define VM_U64(s, f, name, type, help, member) per_vm(f, s, name, type, help, offsetof(struct metrics_vm, member))
#define VM_BOOL(s, f, name, help, member) per_vm_bool(f, s, name, help, offsetof(struct metrics_vm, member))

static void render(FILE *f, const struct metrics_snapshot *s)
{
	family(f, "build_info", "gauge", "The vmoffset-trace build (always 1).");
	fputs("vmoffset_trace_build_info{version=\"", f);
	label_value(f, s->version ? s->version : "?");
	fputs("\"} 1\n", f);
	family(f, "start_time_seconds", "gauge", "Unix time the trace started.");
	fprintf(f, "vmoffset_trace_start_time_seconds %.3f\n", s->start_time_s);

	family(f, "vm_info", "gauge", "A traced VM (always 1): its UUID, accelerator and guest boot identity.");
	for (size_t i = 0; i < s->nvms; i++) {
		const struct metrics_vm *v = &s->vm[i];

		fputs("vmoffset_trace_vm_info{", f);
		vm_labels(f, v);
		fputs(",vm_uuid=\"", f);
		label_value(f, v->uuid);
		fputs("\",accel=\"", f);
		label_value(f, v->accel);
		fputs("\",boot_id=\"", f);
		label_value(f, v->boot_id);
		fputs("\"} 1\n", f);
	}
	VM_BOOL(s, f, "vm_up", "1 while the VM's QEMU process runs.", up);
	VM_BOOL(s, f, "vm_validated", "1 when the discovered offsets were validated against the guest's own "
		"process switches.", validated);
	VM_BOOL(s, f, "vm_exact_counters", "1 when the guest scheduler's own counters were found (exact CPU time "
		"and switch counts).", exact);
	family(f, "vm_vcpus", "gauge", "vCPUs of the VM.");
	for (size_t i = 0; i < s->nvms; i++) {
		fputs("vmoffset_trace_vm_vcpus{", f);
		vm_labels(f, &s->vm[i]);
		fprintf(f, "} %u\n", s->vm[i].nvcpu);
	}
	VM_U64(s, f, "vm_tasks", "gauge", "Tasks (threads) on the guest's task list at the last walk.", tasks);
	VM_U64(s, f, "vm_processes", "gauge", "Processes (thread-group leaders) at the last walk.", processes);

	family(f, "switches_total", "counter", "Process switches seen per vCPU (sampled: the current task read at "
	       "the poll rate).");
	for (size_t i = 0; i < s->nvms; i++)
		for (uint32_t c = 0; c < s->vm[i].nvcpu && c < METRICS_MAX_VCPUS; c++) {
			fputs("vmoffset_trace_switches_total{", f);
			vm_labels(f, &s->vm[i]);
			fprintf(f, ",vcpu=\"%u\"} %" PRIu64 "\n", c, s->vm[i].switches[c]);
		}
	VM_U64(s, f, "forks_total", "counter", "Tasks that appeared (fork events).", forks);
	VM_U64(s, f, "execs_total", "counter", "Programs executed (exec events).", execs);
	VM_U64(s, f, "exits_total", "counter", "Tasks that ended (exit events).", exits);
	VM_U64(s, f, "renames_total", "counter", "Tasks renamed (rename events).", renames);
	VM_U64(s, f, "lost_processes_total", "counter", "Pids the guest handed out that no task-list walk saw "
	       "(processes that started and ended in between).", lost);
	VM_U64(s, f, "restarts_total", "counter", "Guest kernel restarts seen (reboots, kexec).", restarts);
	VM_U64(s, f, "offsets_cache_hits_total", "counter", "Set-ups (and rediscoveries) that took the offsets from "
	       "the cache after the guest's switches confirmed them.", cache_hits);

	family(f, "capture_attached", "gauge", "1 when the BPF capture on KVM's tracepoints is attached.");
	fprintf(f, "vmoffset_trace_capture_attached %d\n", s->capture ? 1 : 0);
	if (s->capture) {
		family(f, "capture_events_total", "counter", "KVM tracepoint events by stage of the BPF capture (seen, "
		       "filtered out, deduplicated, emitted, dropped because the ring buffer was full).");
		fprintf(f, "vmoffset_trace_capture_events_total{stage=\"seen\"} %" PRIu64 "\n", s->cap_seen);
		fprintf(f, "vmoffset_trace_capture_events_total{stage=\"filtered\"} %" PRIu64 "\n", s->cap_filtered);
		fprintf(f, "vmoffset_trace_capture_events_total{stage=\"deduped\"} %" PRIu64 "\n", s->cap_deduped);
		fprintf(f, "vmoffset_trace_capture_events_total{stage=\"emitted\"} %" PRIu64 "\n", s->cap_emitted);
		fprintf(f, "vmoffset_trace_capture_events_total{stage=\"dropped\"} %" PRIu64 "\n", s->cap_dropped);
	}
	if (s->nexits) {
		family(f, "kvm_exits_total", "counter", "KVM exits by reason (where the host's kvm_exit tracepoint "
		       "fires).");
		for (size_t i = 0; i < s->nexits; i++) {
			const struct metrics_exit *e = &s->exits[i];

			if (e->vm >= s->nvms)
				continue;
			fputs("vmoffset_trace_kvm_exits_total{", f);
			vm_labels(f, &s->vm[e->vm]);
			fputs(",reason=\"", f);
			label_value(f, e->reason);
			fprintf(f, "\"} %" PRIu64 "\n", e->count);
		}
	}
	family(f, "output_events_total", "counter", "Event lines written (the last event's seq).");
	fprintf(f, "vmoffset_trace_output_events_total %" PRIu64 "\n", s->events_written);
	family(f, "output_rotations_total", "counter", "Rotations of the --output file.");
	fprintf(f, "vmoffset_trace_output_rotations_total %" PRIu64 "\n", s->rotations);
}

char *metrics_render(const struct metrics_snapshot *s, size_t *len)
{
	char *buf = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&buf, &n);

	if (!f)
		return NULL;
	render(f, s);
	if (fclose(f)) {
		free(buf);
		return NULL;
	}
	*len = n;
	return buf;
}

/* ---- the textfile ---- */

int metrics_file_write(const char *path, const char *text, size_t len)
{
	size_t n = strlen(path) + 32;
	char *tmp = malloc(n);
	int fd, err = 0;

	if (!tmp)
		return -ENOMEM;
	snprintf(tmp, n, "%s.tmp.%d", path, (int)getpid());
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		err = -errno;
		free(tmp);
		return err;
	}
	for (size_t done = 0; done < len && !err;) {
		ssize_t w = write(fd, text + done, len - done);

		if (w < 0 && errno != EINTR)
			err = -errno;
		else if (w > 0)
			done += (size_t)w;
	}
	if (close(fd) && !err)
		err = -errno;
	if (!err && rename(tmp, path))
		err = -errno;
	if (err)
		unlink(tmp);
	free(tmp);
	return err;
}

/* ---- the HTTP endpoint ---- */

struct metrics_server {
	int fd;
	pthread_t thread;
	bool running;
	volatile bool stop;
	pthread_mutex_t lock;
	char *text;
	size_t len;
	char address[80];
};

/* "PORT", ":PORT", "ADDR:PORT", "[ADDR]:PORT" → host (default 127.0.0.1) and port. */
static int parse_spec(const char *spec, char *host, size_t hlen, char *port, size_t plen)
{
	const char *colon = strrchr(spec, ':');
	char *end;
	long p;

	if (spec[0] == '[') {
		const char *close = strchr(spec, ']');

		if (!close || close[1] != ':' || (size_t)(close - spec - 1) >= hlen)
			return -EINVAL;
		snprintf(host, hlen, "%.*s", (int)(close - spec - 1), spec + 1);
		colon = close + 1;
	} else if (!colon) {
		snprintf(host, hlen, "127.0.0.1");
		colon = spec - 1;
	} else if (colon == spec) {
		snprintf(host, hlen, "127.0.0.1");
	} else {
		if ((size_t)(colon - spec) >= hlen)
			return -EINVAL;
		snprintf(host, hlen, "%.*s", (int)(colon - spec), spec);
	}
	errno = 0;
	p = strtol(colon + 1, &end, 10);
	if (errno || *end || end == colon + 1 || p < 1 || p > 65535)
		return -EINVAL;
	snprintf(port, plen, "%ld", p);
	return 0;
}

static void respond(int fd, const char *status, const char *type, const char *body, size_t len, bool head)
{
	char hdr[256];
	int n = snprintf(hdr, sizeof(hdr), "HTTP/1.0 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
			 "Connection: close\r\n\r\n", status, type, len);

	if (send(fd, hdr, (size_t)n, MSG_NOSIGNAL) != n || head)
		return;
	for (size_t done = 0; done < len;) {
		ssize_t w = send(fd, body + done, len - done, MSG_NOSIGNAL);

		if (w <= 0)
			return;
		done += (size_t)w;
	}
}

/* One request: read the request line and headers (bounded, 2 s), answer, close. */
static void serve_one(struct metrics_server *s, int fd)
{
	char req[4096];
	size_t got = 0;
	struct timeval tv = { .tv_sec = 2 };

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	while (got < sizeof(req) - 1) {
		ssize_t r = recv(fd, req + got, sizeof(req) - 1 - got, 0);

		if (r <= 0)
			break;
		got += (size_t)r;
		req[got] = 0;
		if (strstr(req, "\r\n\r\n") || strstr(req, "\n\n"))
			break;
	}
	req[got] = 0;
	bool get = !strncmp(req, "GET ", 4), head = !strncmp(req, "HEAD ", 5);
	const char *path = get ? req + 4 : head ? req + 5 : NULL;

	if (!path) {
		respond(fd, "405 Method Not Allowed", "text/plain", "only GET\n", 9, false);
	} else if (!strncmp(path, "/metrics ", 9) || !strncmp(path, "/metrics?", 9)) {
		pthread_mutex_lock(&s->lock);
		respond(fd, "200 OK", "text/plain; version=0.0.4; charset=utf-8", s->text ? s->text : "",
			s->text ? s->len : 0, head);
		pthread_mutex_unlock(&s->lock);
	} else if (!strncmp(path, "/ ", 2)) {
		static const char page[] = "vmoffset-trace: metrics at /metrics\n";

		respond(fd, "200 OK", "text/plain", page, sizeof(page) - 1, head);
	} else {
		respond(fd, "404 Not Found", "text/plain", "not found: try /metrics\n", 24, head);
	}
}

static void *serve(void *arg)
{
	struct metrics_server *s = arg;

	while (!s->stop) {
		struct pollfd p = { .fd = s->fd, .events = POLLIN };
		int c;

		if (poll(&p, 1, 200) <= 0)
			continue;
		c = accept4(s->fd, NULL, NULL, SOCK_CLOEXEC);
		if (c < 0)
			continue;
		serve_one(s, c);
		close(c);
	}
	return NULL;
}

int metrics_server_start(const char *spec, struct metrics_server **out)
{
	char host[64], port[8];
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_PASSIVE | AI_NUMERICSERV };
	struct addrinfo *ai = NULL;
	struct metrics_server *s;
	int one = 1, err, gai;

	*out = NULL;
	if (parse_spec(spec, host, sizeof(host), port, sizeof(port))) {
		p_err("--metrics: '%s' is not [ADDR:]PORT (e.g. 9867, 127.0.0.1:9867, [::1]:9867)", spec);
		return -EINVAL;
	}
	gai = getaddrinfo(host, port, &hints, &ai);
	if (gai || !ai) {
		p_err("--metrics: address '%s': %s", host, gai ? gai_strerror(gai) : "no address");
		return -EINVAL;
	}
	s = calloc(1, sizeof(*s));
	if (!s) {
		freeaddrinfo(ai);
		return -ENOMEM;
	}
	pthread_mutex_init(&s->lock, NULL);
	s->fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s->fd < 0 || setsockopt(s->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(s->fd, ai->ai_addr, ai->ai_addrlen) || listen(s->fd, 16)) {
		err = -errno;
		p_err("--metrics %s: cannot listen on %s port %s: %s", spec, host, port, strerror(-err));
		freeaddrinfo(ai);
		metrics_server_stop(&s);
		return err;
	}
	freeaddrinfo(ai);
	snprintf(s->address, sizeof(s->address), strchr(host, ':') ? "[%s]:%s" : "%s:%s", host, port);
	err = -pthread_create(&s->thread, NULL, serve, s);
	if (err) {
		p_err("--metrics: no thread to serve it: %s", strerror(-err));
		metrics_server_stop(&s);
		return err;
	}
	s->running = true;
	*out = s;
	return 0;
}

void metrics_server_publish(struct metrics_server *s, const char *text, size_t len)
{
	char *copy = malloc(len + 1);

	if (!copy)
		return;   /* the previous text stays served */
	memcpy(copy, text, len);
	copy[len] = 0;
	pthread_mutex_lock(&s->lock);
	free(s->text);
	s->text = copy;
	s->len = len;
	pthread_mutex_unlock(&s->lock);
}

const char *metrics_server_address(const struct metrics_server *s) { return s->address; }

void metrics_server_stop(struct metrics_server **sp)
{
	struct metrics_server *s = *sp;

	if (!s)
		return;
	s->stop = true;
	if (s->running)
		pthread_join(s->thread, NULL);
	if (s->fd >= 0)
		close(s->fd);
	pthread_mutex_destroy(&s->lock);
	free(s->text);
	free(s);
	*sp = NULL;
}
