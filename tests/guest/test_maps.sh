#!/usr/bin/env bash
# test_maps.sh — who runs what (issue 14), on every kernel of the zoo: boot it (1 vCPU, KASLR on) with the
# harness's workload, which holds a process running as another user (vmot-user), one with ids that all differ
# (vmot-setid), one with a 6 KiB argv and 40 extra mappings (vmot-maps), one run from a copy on /tmp (a tmpfs
# mount: its path crosses a mount), one whose executable was deleted after it started (vmot-del), a threaded
# process and kernel threads. The guest prints its own /proc/PID/cmdline, Uid/Gid, exe link and maps; then
#   - `ps --json`: every user process's cmdline, uid/euid/gid/egid and exe equal the guest's;
#   - `maps --task PID` of every workload process equals /proc/PID/maps line for line (start, end, perms,
#     offset, path; [heap], [stack], [vdso] named; 5.10 walks the VMA list, 6.1+ the maple tree);
#   - `offsets --format json`: the memory-map and path members equal the kernel's own BTF;
#   - a `maps` of a process that does not exist, and of a kernel thread, fail with one line.
# VMOT_MAPS_KERNELS picks kernels ("suite:flavour ...", default all 12). Exit 0 pass, 77 skip, else fail.
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=../../scripts/lib/guest-lib.sh
source "$ROOT/scripts/lib/guest-lib.sh"

BIN=${VMOT_BIN:-$ROOT/vmoffset-trace}
TRUTH=${VMOT_TOOLS:-$ROOT/build/tools}/btf-truth
[[ -x $BIN && -x $TRUTH ]] || { echo "skip: build vmoffset-trace and build/tools/btf-truth first (make)"; exit 77; }
for t in jq socat; do command -v $t >/dev/null || { echo "skip: $t missing (make deps)"; exit 77; }; done
KERNELS=${VMOT_MAPS_KERNELS:-"bullseye:amd64 bullseye:cloud-amd64 bullseye:rt-amd64 bookworm:amd64 bookworm:cloud-amd64
	bookworm:rt-amd64 trixie:amd64 trixie:cloud-amd64 trixie:rt-amd64 sid:amd64 sid:cloud-amd64 sid:rt-amd64"}
t0=$SECONDS

# one kernel's boot and checks; its failures are the subshell's exit status
check_kernel() {
	local k=$1 suite=${1%%:*} flavour=${1#*:} dir want label got psjson long err rc
	fails=0   # this subshell's own
	echo "== $suite $flavour"
	if ! dir=$("$ROOT/scripts/fetch-kernel.sh" "$suite" "$flavour"); then bad "fetch $suite $flavour"; return $fails; fi
	want=$("$TRUTH" "$dir/vmlinux") || { bad "btf-truth on $dir/vmlinux"; return $fails; }
	if ! guest_start --kernel "$dir" --smp 1 --mem 1G; then bad "boot $suite $flavour"; return $fails; fi
	label="$GUEST_RELEASE"
	got=$("$BIN" offsets --pid "$GUEST_PID" --qmp "$GUEST_QMP" --format json 2>/dev/null)
	check_maps_btf "$label" "$got" "$want"
	psjson=$("$BIN" ps --pid "$GUEST_PID" --qmp "$GUEST_QMP" --json)
	check_cmdlines "$label" "$psjson"
	long=$(jq '[.[] | select(.comm == "vmot-maps") | .cmdline | join(" ") | length] | max // 0' <<<"$psjson")
	((long > 4096)) && ok "$label: vmot-maps's argv read whole ($long bytes)" || bad "$label: vmot-maps's argv $long bytes"
	check_ids "$label" "$psjson"
	check_exes_maps "$label" "$psjson" "$BIN"
	# bad requests: one line, exit 1
	err=$("$BIN" maps --pid "$GUEST_PID" --qmp "$GUEST_QMP" --task 99999 2>&1 >/dev/null); rc=$?
	((rc == 1)) && [[ $(wc -l <<<"$err") == 1 && $err == *"no process 99999"* ]] && ok "$label: maps of no process: '$err'" ||
		bad "$label: maps --task 99999: exit $rc, '$err'"
	err=$("$BIN" maps --pid "$GUEST_PID" --qmp "$GUEST_QMP" --task 2 2>&1 >/dev/null); rc=$?
	((rc == 1)) && [[ $(wc -l <<<"$err") == 1 && $err == *"kernel thread"* ]] && ok "$label: maps of a kernel thread: '$err'" ||
		bad "$label: maps --task 2: exit $rc, '$err'"
	guest_stop >/dev/null 2>&1
	return $((fails > 255 ? 255 : fails))
}
# Kernels two at a time (VMOT_MAPS_JOBS): each guest has 1 vCPU and what is checked is a snapshot of it, so a
# second guest on the other core changes no answer. Each kernel's lines are printed together, in order.
# (a guest a killed subshell leaves is stopped by its owner watchdog: QEMU dies with this shell)
TMP=$(mktemp -d /tmp/vmot-maps.XXXXXX)
jobs_max=${VMOT_MAPS_JOBS:-2} n=0 next=0
declare -a pids
for k in $KERNELS; do
	(check_kernel "$k") >"$TMP/$n.log" 2>&1 &
	pids[n]=$!; n=$((n + 1))
	while ((n - next >= jobs_max)); do
		wait "${pids[next]}"; fails=$((fails + $?)); cat "$TMP/$next.log"; next=$((next + 1))
	done
done
while ((next < n)); do
	wait "${pids[next]}"; fails=$((fails + $?)); cat "$TMP/$next.log"; next=$((next + 1))
done
rm -rf "$TMP"
echo "test_maps: $fails failure(s) in $((SECONDS - t0)) s"
((fails == 0))
