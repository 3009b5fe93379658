#!/usr/bin/env bash
# test_guest_boot.sh — the guest harness itself: boot Debian 5.10 (1 vCPU; 4-level paging, PTI off) and 6.12
# (2 vCPUs, PTI forced on, LA57 CPU → 5-level paging)
# under TCG and check that the serial process lists show the whole workload with the right relationships:
# named processes, the 15-byte comm truncation, a prctl rename, 4 named threads in one thread group, the
# 3-deep tree, the ptrace pair whose tracee's parent (tracer) differs from its real parent (init), no leftover
# churn processes, a stable process set after READY, and that guest_stop and the owner watchdog kill QEMU.
# Exit 0 pass, 1 fail.
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=../../scripts/lib/guest-lib.sh
source "$ROOT/scripts/lib/guest-lib.sh"

check() { local what=$1; shift; if "$@"; then ok "$what"; else bad "$what"; fi; }

comm_pid() { awk -v c="$2" '$4 == c && $1 == $3 { print $1; exit }' <<<"$1"; }   # leader pid by comm
field()    { awk -v p="$2" -v f="$3" '$1 == p { print $f; exit }' <<<"$1"; }

check_list() {   # check_list LABEL LIST TRACED
	local label=$1 list=$2 traced=$3 c n mt t0 t1 t2 tracee tracer
	echo " $label: $(wc -l <<<"$list") tasks"
	check "$label: init is pid 1" [ "$(field "$list" 1 4)" = init ]
	check "$label: kthreadd is pid 2" [ "$(field "$list" 2 4)" = kthreadd ]
	for c in vmot-sleep-a vmot-sleep-b vmot-sleep-c vmot-long-name- vmot-renamed vmot-tracee vmot-tracer; do
		n=$(awk -v c="$c" '$4 == c && $1 == $3 && $2 == 1' <<<"$list" | wc -l)
		check "$label: one '$c' process, child of init" [ "$n" -eq 1 ]
	done
	check "$label: two busybox 'sleep' processes" [ "$(awk '$4 == "sleep" && $2 == 1' <<<"$list" | wc -l)" -eq 2 ]
	check "$label: long name truncated to 15 bytes" [ -z "$(awk '$4 ~ /^vmot-long-name-./' <<<"$list")" ]
	mt=$(comm_pid "$list" vmot-mt)
	check "$label: vmot-mt leader exists" [ -n "$mt" ]
	for n in 1 2 3 4; do
		t0=$(awk -v c="vmot-thr-$n" '$4 == c { print $1 " " $3 }' <<<"$list")
		check "$label: thread vmot-thr-$n in vmot-mt's group (tid != tgid)" \
			[ -n "$t0" -a "${t0#* }" = "$mt" -a "${t0% *}" != "$mt" ]
	done
	t0=$(comm_pid "$list" vmot-tree0); t1=$(comm_pid "$list" vmot-tree1); t2=$(comm_pid "$list" vmot-tree2)
	check "$label: tree vmot-tree0 → tree1 → tree2, tree0 child of init" \
		[ -n "$t0" -a -n "$t1" -a -n "$t2" -a "$(field "$list" "$t0" 2)" = 1 \
		  -a "$(field "$list" "$t1" 2)" = "$t0" -a "$(field "$list" "$t2" 2)" = "$t1" ]
	tracee=$(comm_pid "$list" vmot-tracee); tracer=$(comm_pid "$list" vmot-tracer)
	check "$label: vmot-tracee traced by vmot-tracer" grep -qx "$tracee $tracer" <<<"$traced"
	check "$label: tracee's real parent (init) is not its tracer" \
		[ "$(field "$list" "$tracee" 2)" = 1 -a "$tracer" != 1 ]
	check "$label: no churn process left" [ -z "$(awk '$4 ~ /^vmot-churn/' <<<"$list")" ]
}

boot_and_check() {   # boot_and_check KERNEL SMP [guest.sh options]
	local kernel=$1 smp=$2; shift 2
	echo "== kernel $kernel, $smp vCPU(s) $*"
	if ! guest_start --kernel "$kernel" --smp "$smp" "$@"; then bad "boot of $kernel"; return; fi
	echo " $GUEST_RELEASE ready in ${GUEST_BOOT_SECONDS}s (qemu pid $GUEST_PID, paging $GUEST_PAGING, pti $GUEST_PTI)"
	local log first traced second again
	log=$(tr -d '\r' <"$GUEST_SERIAL")
	check "QEMU -name is $GUEST_NAME" grep -q -- " -name $GUEST_NAME " <(tr '\0' ' ' <"/proc/$GUEST_PID/cmdline")
	[[ " $* " == *" --la57 "* ]] || check "4-level paging without --la57" [ "$GUEST_PAGING" = 4 ]
	[[ " $* " == *" --pti on "* ]] || check "PTI off without --pti on (TCG CPU is not Meltdown-affected)" [ "$GUEST_PTI" = off ]
	check "guest saw $smp CPU(s)" grep -qx "VMOT-INFO cpus=$smp" <<<"$log"
	check "guest runs $GUEST_RELEASE" grep -qx "VMOT-INFO release=$GUEST_RELEASE" <<<"$log"
	check "kaslr on the command line" grep -q '^VMOT-INFO cmdline=.* kaslr' <<<"$log"
	check "no workload error" [ -z "$(grep '^VMOT-ERROR' <<<"$log")" ]
	first=$(awk '$0 == "VMOT-PS-BEGIN 0" { on = 1; next } $0 == "VMOT-PS-END 0" { exit } on' <<<"$log")
	traced=$(awk '$1 == "VMOT-TRACE" && $2 == 0 { print $3, $4 }' <<<"$log")
	check_list "boot list" "$first" "$traced"
	second=$(guest_ps); traced=$(guest_traced)
	check_list "guest_ps" "$second" "$traced"
	again=$(guest_ps)
	check "user-space process set stable across lists" \
		[ "$(awk '$1 != 2 && $2 != 2' <<<"$second")" = "$(awk '$1 != 2 && $2 != 2' <<<"$again")" ]
	check "boot list and guest_ps agree on user space" \
		[ "$(awk '$1 != 2 && $2 != 2' <<<"$first" | sort)" = "$(awk '$1 != 2 && $2 != 2' <<<"$second" | sort)" ]
	local pid=$GUEST_PID
	guest_stop
	sleep 0.5
	check "guest_stop killed QEMU $pid" bash -c "! kill -0 $pid 2>/dev/null"
}

boot_and_check 5.10 1
boot_and_check 6.12 2 --pti on --la57
check "PTI in effect with --pti on" [ "$GUEST_PTI" = on ]
check "5-level paging in use with --la57 (Debian 6.12 has CONFIG_X86_5LEVEL=y)" [ "$GUEST_PAGING" = 5 ]

# The watchdog: a guest whose owner dies (here by SIGKILL, so no EXIT trap runs) must not outlive it.
echo "== owner watchdog"
out=$(mktemp)
{ bash -c 'source "$1/scripts/lib/guest-lib.sh"; guest_start --kernel 6.12 --smp 1 >/dev/null 2>&1 || exit 1
	echo "$GUEST_PID"; kill -9 $$' _ "$ROOT" >"$out"; } 2>/dev/null
qpid=$(head -n1 "$out"); rm -f "$out"
if [[ -z "$qpid" ]]; then
	bad "watchdog test: guest did not boot"
else
	for _ in $(seq 1 20); do kill -0 "$qpid" 2>/dev/null || break; sleep 0.5; done
	check "QEMU $qpid killed after its owner was SIGKILLed" bash -c "! kill -0 $qpid 2>/dev/null"
	kill -9 "$qpid" 2>/dev/null || true
fi

if ((fails)); then echo "test_guest_boot: $fails check(s) failed"; exit 1; fi
echo "test_guest_boot: all checks passed"
