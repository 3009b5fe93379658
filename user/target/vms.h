/*
 * The VMs on this host: QEMU processes found in /proc, with what their command line, threads and (when a
 * QMP socket answers) monitor say about them. Used by `list` and by `-a` (trace every VM).
 */
#ifndef VMOT_TRACE_VMS_H
#define VMOT_TRACE_VMS_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "mem/observe.h"

#define VM_MAX_VCPUS VMOT_MAX_VCPUS

struct vm_info {
	pid_t pid;
	char name[128];           /* -name NAME / guest=NAME (libvirt); "" when none */
	char accel[8];            /* "kvm", "tcg", "?" */
	uint32_t nvcpus;          /* vCPU threads found (or -smp when threads are not per vCPU) */
	uint32_t nthreads;        /* entries in vcpu_tid */
	pid_t vcpu_tid[VM_MAX_VCPUS];
	uint32_t vcpu_id[VM_MAX_VCPUS];
	uint64_t mem_bytes;       /* 0 unknown */
	char mem_source[8];       /* "qmp", "cmdline", "" */
	char qmp[256];            /* QMP socket path, "" if none on the command line */
	char exe[64];             /* basename of the executable */
	char uuid[37];            /* -uuid (libvirt passes the domain's) or -smbios type=1,uuid=; "" none */
	uint64_t start_ticks;     /* the process's start time (/proc/PID/stat field 22): with pid, one QEMU run */
};

/* Fill vi for QEMU process pid. query_qmp: also ask QMP for the memory size (1 s timeout, silent on
 * failure). 0, -ESRCH (gone), -ENOENT (not QEMU). */
int vm_info_read(pid_t pid, bool query_qmp, struct vm_info *vi);
/* Every QEMU process, sorted by pid. Caller frees *out. */
int vm_list(bool query_qmp, struct vm_info **out, size_t *n);

/* A UUID (8-4-4-4-12 hex digits) into out[37], lower case; false when arg is not one. */
bool vm_parse_uuid(const char *arg, char out[37]);
/* Pure parsers (unit-testable): the VM name from a -name argument ("NAME", "guest=NAME,debug-threads=on",
 * "NAME,process=X"); a -m argument ("512", "512M", "2G", "size=1G,slots=2,maxmem=4G") in bytes (MiB
 * default as QEMU's). */
bool vm_parse_name(const char *arg, char *out, size_t len);
bool vm_parse_mem(const char *arg, uint64_t *bytes);

#endif
