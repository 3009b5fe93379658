#!/usr/bin/env bash
# bench-memory.sh — guest-memory layer speed on a live TCG guest (part of `make bench`):
#   translations per second (uncached 4/5-level page walks of random direct-map addresses, and cached through
#   the vmem TLB), bytes per second of 4 KiB physical reads via process_vm_readv, and the time to walk every
#   leaf of the kernel half (what discovery does), for a 4-level guest and, with --la57, a 5-level one.
# Usage: scripts/bench-memory.sh [-t SECONDS] [-m MEM] [-k KERNEL] [--la57] [-o FILE]   (prints "key value" lines)
# Exit 0 when measured, 77 when QEMU or privilege is missing, 1 on errors.
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
M=$ROOT/${OUT:-build}/tools/memcheck
T=3 MEM=1G KERNEL=bookworm LA57=0 OUTFILE=
while (($#)); do
	case $1 in
	-t) T=$2; shift ;;
	-m) MEM=$2; shift ;;
	-k) KERNEL=$2; shift ;;
	--la57) LA57=1 ;;
	-o) OUTFILE=$2; shift ;;
	*) echo "usage: bench-memory.sh [-t SECONDS] [-m MEM] [-k KERNEL] [--la57] [-o FILE]" >&2; exit 64 ;;
	esac
	shift
done
skip() { echo "bench-memory: skipped: $*" >&2; exit 77; }
command -v qemu-system-x86_64 >/dev/null || skip "qemu-system-x86_64 not installed"
[[ -x "$M" ]] || { echo "bench-memory: $M not built (make all)" >&2; exit 1; }
if [[ $(id -u) != 0 ]] && [[ "$(cat /proc/sys/kernel/yama/ptrace_scope 2>/dev/null || echo 0)" != 0 ]]; then
	skip "process_vm_readv of QEMU needs root or ptrace_scope=0"
fi
# shellcheck source=lib/guest-lib.sh
source "$ROOT/scripts/lib/guest-lib.sh"

run() {   # run LABEL [guest.sh options]
	local label=$1; shift
	guest_start --kernel "$KERNEL" --mem "$MEM" "$@" >/dev/null || { echo "bench-memory: guest did not boot" >&2; return 1; }
	"$M" --pid "$GUEST_PID" --bench "$T" | sed "s/^/memory_${label}_/" || { guest_stop >/dev/null 2>&1; return 1; }
	guest_stop >/dev/null 2>&1
}

{
	echo "memory_guest_mem $MEM"
	echo "memory_guest_kernel $KERNEL"
	run 4level || exit 1
	if ((LA57)); then run 5level --la57 || exit 1; fi
} | if [[ -n "$OUTFILE" ]]; then tee "$OUTFILE"; else cat; fi
exit "${PIPESTATUS[0]}"
