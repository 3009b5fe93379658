/*
 * Session files (`record` writes, `report` reads): a sequence of independently zlib-compressed,
 * CRC-32-checked blocks, so that a file cut anywhere (Ctrl-C, SIGKILL, a full disk) or damaged anywhere
 * still yields every intact block, and the reader can say exactly what was lost.
 *
 * On disk (little endian), block after block, nothing outside blocks:
 *
 *   off  size  field
 *     0     4  magic     "VMTB"
 *     4     2  version   SESS_VERSION (format of this block)
 *     6     2  type      enum sess_block
 *     8     4  seq       0, 1, 2, ... in file order (gaps = lost blocks)
 *    12     4  raw_len   payload bytes after decompression (<= SESS_MAX_RAW)
 *    16     4  comp_len  payload bytes in the file (zlib stream)
 *    20     4  nrec      EVENTS: number of events; else 0
 *    24     4  crc       CRC-32 of bytes 0..23 and the comp_len payload bytes
 *    28  comp_len        payload
 *
 * Payloads: HEADER, VM, COUNTERS and TRAILER carry one JSON object (text); EVENTS carries nrec struct
 * sess_event records (64 bytes each). The first block is HEADER, VM blocks precede the events of their VM,
 * TRAILER (totals) is written only by a clean close: its absence means the recording was interrupted.
 * A reader resynchronises on the next magic whose block checks out, so one bad byte costs one block.
 */
#ifndef VMOT_SESSION_H
#define VMOT_SESSION_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SESS_MAGIC        "VMTB"
#define SESS_VERSION      1
#define SESS_BLOCK_HDR    28
#define SESS_MAX_RAW      (16u << 20)
#define SESS_BLOCK_EVENTS 4096           /* events buffered before a block is written */

enum sess_block {
	SB_HEADER = 1,    /* {"format":"vmoffset-trace session","version":1,"created":...,"host":...} */
	SB_VM,            /* identity + offsets of one traced VM (see cmd/ and trace/) */
	SB_EVENTS,        /* struct sess_event[nrec] */
	SB_COUNTERS,      /* counters, exit statistics */
	SB_TRAILER,       /* {"events":N,"blocks":B,...}: written by a clean close */
	SB_SCHED,         /* struct sess_sched_hdr + struct sess_sched_rec[n]: the guest scheduler's counters of
			   * every task of one VM at one moment (older files have none) */
	SB_EXEC,          /* {"vm":i,"time_ns":t,"pid":p,"task":"0x..","uid":u,"euid":e,"argv":[..],"argv_truncated":b}:
			   * what one EXEC event ran (uid/euid/argv null where not read), written right after it */
	SB_NR,
};

enum sess_ev_type {
	SEV_SWITCH = 1,   /* vCPU now runs pid (prev_pid before) */
	SEV_FORK,         /* a new task appeared (ppid = its parent) */
	SEV_EXEC,         /* same pid, new address space (comm = new name) */
	SEV_EXIT,         /* the task is gone */
	SEV_RENAME,       /* same pid and address space, new comm (prctl PR_SET_NAME, thread names) */
	SEV_RESTART,      /* the guest kernel restarted (reboot, kexec: init_task gone); pid -1. Every task
			   * before it has exited; the tasks found afterwards are forks. */
	SEV_LOST,         /* pids pid..prev_pid (inclusive, one range) were allocated by the guest kernel between
			   * two task-list walks and no walk saw them: processes/threads that lived and died unseen.
			   * tgid = ppid = -1, task 0. Readers older than this type skip it. */
	SEV_NR,
};

#define SESS_VCPU_NONE 0xffffffffu

/* One event: 64 bytes, the same in memory and on disk (x86-64 is little endian). */
struct sess_event {
	uint64_t time_ns;     /* CLOCK_MONOTONIC */
	uint64_t task;        /* task_struct VA (0 unknown) */
	uint32_t vm;          /* VM index in the session (VM block "index") */
	uint32_t vcpu;        /* SWITCH: the vCPU; else SESS_VCPU_NONE */
	uint16_t type;        /* enum sess_ev_type */
	uint16_t flags;
	int32_t  pid, tgid, ppid;
	int32_t  prev_pid;    /* SWITCH: pid the vCPU ran before (-1 unknown) */
	char     comm[16];    /* not NUL-terminated when 16 bytes long */
	uint32_t pad;
};
_Static_assert(sizeof(struct sess_event) == 64, "session event layout");

/* SB_SCHED payload: the scheduler's own cumulative counters per task, read at one task walk. Exact where
 * switch events are samples; a window's figures are differences between two such blocks. */
struct sess_sched_hdr {
	uint64_t time_ns;     /* CLOCK_MONOTONIC of the walk */
	uint32_t vm;
	uint32_t n;           /* records that follow */
};
struct sess_sched_rec {
	uint64_t task;        /* task_struct VA (with tid: a reused tid is another task) */
	uint64_t sum_exec_ns; /* se.sum_exec_runtime */
	uint64_t nvcsw, nivcsw;
	int32_t  tid, tgid;
	char     comm[16];
};
_Static_assert(sizeof(struct sess_sched_hdr) == 16 && sizeof(struct sess_sched_rec) == 56, "sched record layout");

const char *sess_event_name(unsigned type);   /* "switch", "fork", ... or "?" */
const char *sess_block_name(unsigned type);

/* ---- writing ---- */
struct sess_writer;
/* Create (truncate) path and write the HEADER block with header_json (a JSON object). */
int sess_create(const char *path, const char *header_json, struct sess_writer **out);
/* Write a JSON block (SB_VM, SB_COUNTERS) now; pending events are flushed first so order is kept. */
int sess_write_json(struct sess_writer *w, enum sess_block type, const char *json);
/* Write an SB_SCHED block (pending events first). */
int sess_write_sched(struct sess_writer *w, const struct sess_sched_hdr *h, const struct sess_sched_rec *r);
/* The identity of an SB_VM block's JSON object: index (-1 when missing), name ("?"; points into j), QEMU
 * pid (-1), vCPUs (0 when missing or out of range: the file is input, not trusted). */
struct sess_vm_id {
	int64_t index;
	const char *name;
	int32_t pid;
	uint32_t nvcpus;
};
struct json_object;
void sess_vm_id_parse(struct json_object *j, struct sess_vm_id *out);
/* Check an SB_SCHED payload: 0 with *h and *r (n records) or -EINVAL. */
int sess_sched_parse(const void *data, size_t len, struct sess_sched_hdr *h, const struct sess_sched_rec **r);
/* Buffer an event; writes a block when SESS_BLOCK_EVENTS are pending. */
int sess_add_event(struct sess_writer *w, const struct sess_event *ev);
/* Write pending events as one block (no-op when none). Call at least once a second. */
int sess_flush(struct sess_writer *w);
/* Flush, write the TRAILER ({"events":N,"blocks":B,"clean":true,"duration_s":D,"stopped":"why"}; duration_s
 * < 0 and stopped NULL leave those out), fsync, close, free. Always frees w. */
int sess_close(struct sess_writer *w, double duration_s, const char *stopped);
/* Close without a trailer (as if interrupted); for tests. */
void sess_abort(struct sess_writer *w);
uint64_t sess_writer_events(const struct sess_writer *w);

/* ---- reading ---- */
/* Called for every intact block in file order; data is the decompressed payload (NUL-terminated after
 * len bytes for JSON blocks). Non-zero return stops the read and is returned. */
typedef int (*sess_block_fn)(void *ctx, enum sess_block type, uint32_t seq, const void *data, size_t len,
			     uint32_t nrec);

struct sess_summary {
	uint64_t file_size;
	uint32_t blocks_ok;
	uint64_t events_ok;
	uint32_t damaged;            /* damaged regions (each: bytes that did not form an intact block) */
	uint64_t bytes_damaged;
	uint64_t first_damage;       /* offset of the first damaged byte */
	bool truncated;              /* the last region runs to end of file (cut mid-block) */
	bool header;                 /* HEADER block intact */
	bool trailer;                /* TRAILER block intact */
	uint64_t trailer_events;     /* totals the trailer claims */
	uint32_t trailer_blocks;
	uint32_t max_seq;            /* highest seq read (+1 = blocks known to exist) */
	uint32_t seq_missing;        /* seq numbers below max_seq not read */
};

/* Read every intact block of buf. 0 if at least one block was read, -ENODATA if none, or the callback's
 * value. sum is always filled. */
int sess_read_buf(const void *buf, size_t len, sess_block_fn fn, void *ctx, struct sess_summary *sum);
/* Same on a file (mapped). -errno if it cannot be opened. */
int sess_read_file(const char *path, sess_block_fn fn, void *ctx, struct sess_summary *sum);
/* One line saying what was lost (empty string when the file is intact and closed cleanly). */
void sess_damage_line(const struct sess_summary *sum, char *buf, size_t len);
/* true when the file is intact and has a trailer whose totals match. */
bool sess_intact(const struct sess_summary *sum);

#endif
