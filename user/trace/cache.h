/*
 * Offsets cache, keyed by kernel fingerprint, so a second guest running the same kernel build needs no
 * rediscovery (its own observed switches still validate the cached offsets before they are used).
 *
 * The fingerprint: FNV-1a 64 of the kernel's `linux_banner` ("Linux version <release> (<builder>)
 * (<compiler>) #<n> SMP ... <date>"), the first "Linux version " string in the kernel image mapping
 * (searched from the KASLR-shifted _text through the page tables of an observed CR3). Why that and not
 * hashed text bytes: KASLR relocation rewrites absolute addresses inside .text and boot-time patching
 * (alternatives, static calls, jump labels) rewrites instructions depending on the CPU, so the same build
 * has different text bytes in different guests; the banner is read-only data that neither touches, and
 * it names the exact build (release, build number, compiler, build date). Two builds sharing a banner
 * (a local rebuild without a version bump) would share an entry: that is why cached offsets are
 * re-validated on every guest and rediscovered when they do not explain its switches.
 *
 * What is cached is what does not move with KASLR: every task_struct/mm_struct offset, the thread ring,
 * the per-CPU current-task offset, and init_task relative to _text. Files: DIR/<fingerprint>.json,
 * DIR = $VMOFFSET_CACHE/offsets (default /var/cache/vmoffset-trace/offsets), written atomically.
 */
#ifndef VMOT_TRACE_CACHE_H
#define VMOT_TRACE_CACHE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "discovery/discover.h"

#define KERNEL_TEXT_BASE 0xffffffff81000000ULL

/* Fingerprint of the kernel in pm (kernel_cr3/la57 from an observed CR3): 0 or -ENOENT. banner gets the
 * text (printable, without the newline); text_base the runtime _text (2 MiB aligned). */
int kernel_fingerprint(struct physmem *pm, uint64_t kernel_cr3, bool la57, uint64_t *fp, char *banner,
		       size_t len, uint64_t *text_base);

const char *offsets_cache_dir(void);
/* Load DIR/<fp>.json into res (offsets only; init_task relative to text_base made absolute). 0, -ENOENT
 * (no entry), -EINVAL (unreadable entry). */
int offsets_cache_load(uint64_t fp, uint64_t text_base, struct discovery_result *res);
/* Store a validated result. 0 or -errno (a cache that cannot be written is not an error for callers). */
int offsets_cache_store(uint64_t fp, const char *banner, uint64_t text_base, const struct discovery_result *res);

#endif
