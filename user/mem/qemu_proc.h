/*
 * The QEMU process as the host sees it: is a pid QEMU, what its command line says (QEMU's "a,b=c,,d"
 * option syntax), where its QMP socket is. One parser for `list`/`-a`, `--pid` and the memory source, so
 * that they agree on what a QEMU is and where its monitor listens.
 */
#ifndef VMOT_MEM_QEMU_PROC_H
#define VMOT_MEM_QEMU_PROC_H
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* pid is qemu-system-* or qemu-kvm: its executable's name or its comm (a wrapper, or another user's). */
bool qemu_proc_is_qemu(pid_t pid);
/* The next element of an option string ("a,b=c,,d": ",," is a literal comma) into out, truncated to len;
 * returns the rest, or NULL at the end. *whole (may be NULL): the element fit. */
const char *qemu_opt_next(const char *s, char *out, size_t len, bool *whole);
/* The value of key= in an option string (key NULL: the first element), non-empty and whole: true. */
bool qemu_opt(const char *s, const char *key, char *out, size_t len);
/* The QMP UNIX socket on pid's command line: `-qmp unix:PATH[,...]` (or -qmp-pretty), or a
 * `-chardev socket,id=ID,path=PATH` that a `-mon chardev=ID,mode=control` uses (not a readline monitor). A
 * relative path is taken from QEMU's working directory (/proc/PID/cwd/PATH). 0, -ENOENT (none), -errno. */
int qemu_proc_find_qmp(pid_t pid, char *path, size_t len);

#endif
