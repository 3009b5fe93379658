#!/usr/bin/env bash
# test_arm64_discovery.sh — arm64 guests, discovery and ps (issue 17): Debian's arm64 kernels from the zoo booted
# under qemu-system-aarch64 -M virt (TCG, 2 vCPUs, 1 GiB, KASLR on) with the suite's busybox-static:arm64, three
# sleeping processes and a busy one; the guest prints its own process list (from /proc, shell builtins only)
# over the serial console. Then, with nothing but the QEMU pid and its QMP socket (the vCPUs' TTBR/TCR/SP_EL0
# come from QEMU's gdbstub, which the tool starts and stops itself):
#   - `offsets --format json` validates, and all 11 task_struct members and mm_struct.pgd equal the kernel's own
#     BTF (read from the Image by build/tools/btf-truth);
#   - the current task of each vCPU is found (at a per-CPU slot: TPIDR_EL1 + a variable's link address), each
#     the idle task or a process of the guest's list;
#   - `ps --json`: every user process of the guest's list is there with its pid, ppid and comm, and no other;
#     the sleepers' command lines equal what init started;
#   - the guest keeps running afterwards (the gdbstub was detached): it still answers on the serial console.
# VMOT_ARM64_KERNELS (default "bookworm trixie sid": 48-bit VAs, and 52-bit with LPA2) picks the suites.
# Exit 0 pass, 77 skip (one line why), 1 fail.
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BIN=${VMOT_BIN:-$ROOT/vmoffset-trace}
TRUTH=${VMOT_TOOLS:-$ROOT/build/tools}/btf-truth
SUITES=${VMOT_ARM64_KERNELS:-bookworm trixie sid}

skip() { echo "SKIP: $*"; exit 77; }
[[ -x "$BIN" && -x "$TRUTH" ]] || skip "build vmoffset-trace and build/tools/btf-truth first (make)"
for t in qemu-system-aarch64 cpio gzip jq socat; do command -v $t >/dev/null || skip "$t missing (make deps)"; done
TMP=$(mktemp -d /tmp/vmot-arm64d.XXXXXX)
qpid=
trap '[[ -n "$qpid" ]] && kill "$qpid" 2>/dev/null; rm -rf "$TMP"' EXIT
# shellcheck source=../../scripts/lib/guest-lib.sh
source "$ROOT/scripts/lib/guest-lib.sh"

# The guest: devtmpfs (background jobs need /dev/null), the workload, its own list ("P pid ppid comm" from
# /proc/PID/status), READY; then it answers "ping N" on the serial line with "PONG N".
make_initramfs() {   # make_initramfs KDIR OUT
	local r=$TMP/root
	rm -rf "$r"; mkdir -p "$r"/{bin,proc,dev,tmp}
	cp "$1/busybox" "$r/bin/busybox"
	cat >"$r/init" <<-'EOS'
	#!/bin/busybox sh
	/bin/busybox mount -t proc proc /proc
	/bin/busybox mount -t devtmpfs dev /dev
	for i in 1 2 3; do /bin/busybox sleep 100000 & done
	(while :; do :; done) &
	/bin/busybox sleep 1
	echo VMOT-LIST-BEGIN
	for d in /proc/[0-9]*; do
		n=""; pp=""; p=""
		while read -r k v; do
			case $k in Name:) n=$v ;; Pid:) p=$v ;; PPid:) pp=$v; break ;; esac
		done <"$d/status" 2>/dev/null
		[ -n "$p" ] && echo "P $p $pp $n"
	done
	echo VMOT-LIST-END
	echo VMOT-READY
	while read -r cmd arg; do [ "$cmd" = ping ] && echo "PONG $arg"; done </dev/ttyAMA0
	EOS
	chmod +x "$r/init"
	(cd "$r" && find . | cpio -o -H newc 2>/dev/null | gzip -1) >"$2"
}

for suite in $SUITES; do
	kdir=$("$ROOT/scripts/fetch-kernel.sh" "$suite" arm64) || { bad "fetch $suite arm64"; continue; }
	release=$(cat "$kdir/release")
	echo "== $release ($suite)"
	want=$("$TRUTH" "$kdir/vmlinux.btf") || { bad "$release: btf-truth on $kdir/vmlinux.btf"; continue; }
	make_initramfs "$kdir" "$TMP/initrd.gz"
	rm -f "$TMP/serial.log" "$TMP/qmp.sock" "$TMP/serial.sock"
	timeout 900 qemu-system-aarch64 -M virt -cpu max -smp 2 -m 1024 -nodefaults -display none -no-user-config \
		-kernel "$kdir/Image" -initrd "$TMP/initrd.gz" -append "console=ttyAMA0 rdinit=/init" \
		-chardev "socket,id=s0,path=$TMP/serial.sock,server=on,wait=off,logfile=$TMP/serial.log" -serial chardev:s0 \
		-qmp "unix:$TMP/qmp.sock,server=on,wait=off" </dev/null >"$TMP/qemu.log" 2>&1 &
	qpid=$!
	if ! wait_for "$TMP/serial.log" VMOT-READY 180; then
		bad "$release: no VMOT-READY within 180 s"; tail -n 5 "$TMP/serial.log" "$TMP/qemu.log" | sed 's/^/       /'
		kill "$qpid" 2>/dev/null; wait "$qpid" 2>/dev/null; qpid=; continue
	fi
	pid=$(pgrep -P "$qpid" -f qemu-system-aarch64 | head -n1); pid=${pid:-$qpid}
	list=$(tr -d '\r' <"$TMP/serial.log" | awk '/^VMOT-LIST-BEGIN/ { on = 1; next } /^VMOT-LIST-END/ { exit } on && $1 == "P"')

	got=$("$BIN" offsets --pid "$pid" --qmp "$TMP/qmp.sock" --format json 2>"$TMP/offsets.err"); rc=$?
	diffs=""
	for f in tasks pid tgid comm mm active_mm real_parent parent children sibling cred mm_pgd; do
		g=$(jq -r --arg f "$f" 'if $f == "mm_pgd" then .mm_struct.pgd else .task_struct[$f] end' <<<"$got" 2>/dev/null)
		w=$(jq -r --arg f "$f" '.[$f]' <<<"$want")
		[[ "$g" == "$w" ]] || diffs+=" $f=$g(BTF $w)"
	done
	if ((rc == 0)) && [[ -z "$diffs" && $(jq -r .validated <<<"$got") == true ]]; then
		ok "$release: validated, 12 offsets equal BTF ($(jq -r '.paging' <<<"$got"), $(jq -r '"\(.roots_explained)/\(.roots_observed) TTBR0 roots explained"' <<<"$got"))"
	else
		bad "$release: offsets exit $rc, validated $(jq -r .validated <<<"$got" 2>/dev/null), differ:${diffs:- none}"
		head -n 3 "$TMP/offsets.err" | sed 's/^/       /'
	fi

	# the current task of each vCPU, read at a per-CPU slot (TPIDR_EL1 + a per-CPU variable's link address; when
	# several slots give the same answer, as the runqueue's curr and __entry_task do, percpu_current_task stays
	# null until `live` tells them apart): one per vCPU, each the idle task (pid 0) or a process of the guest's list
	curs=$(jq -r '.current[] | "\(.vcpu) \(.pid) \(.comm)"' <<<"$got" 2>/dev/null)
	vcpus=$(awk '{ print $1 }' <<<"$curs" | sort -u | tr '\n' ' ')
	# (a pid above the list's highest was born after it: a kworker, say)
	stray=$(awk 'NR == FNR { if ($1 == "P") { known[$2] = 1; if ($2 > top) top = $2 }; next } $2 != 0 && !known[$2] && $2 <= top' \
		<(echo "$list") <(echo "$curs"))
	if [[ "$vcpus" == "0 1 " && $(wc -l <<<"$curs") == 2 && -z "$stray" ]]; then
		ok "$release: the current task of both vCPUs ($(paste -sd';' <<<"$curs"))"
	else
		bad "$release: current tasks: $(paste -sd';' <<<"$curs"); not in the guest's list: ${stray:-none}"
	fi

	ps=$("$BIN" ps --json --pid "$pid" --qmp "$TMP/qmp.sock" 2>"$TMP/ps.err"); rc=$?
	ours=$(jq -r '.[] | select(.kernel_thread == false and .pid == .tgid) | "P \(.pid) \(.ppid) \(.comm)"' <<<"$ps" 2>/dev/null | sort)
	theirs=$(awk '$4 != "" && $3 != 2 && $2 != 2' <<<"$list" | sort)   # user processes: not kthreadd's children
	sleepers=$(jq '[.[] | select(.cmdline == ["/bin/busybox", "sleep", "100000"])] | length' <<<"$ps" 2>/dev/null)
	if ((rc == 0)) && [[ -n "$ours" && "$ours" == "$theirs" && "$sleepers" == 3 ]]; then
		ok "$release: ps equals the guest's /proc ($(wc -l <<<"$ours") user processes; 3 sleepers' command lines)"
	else
		bad "$release: ps exit $rc, sleepers' command lines $sleepers of 3; ours vs the guest's list:"
		diff <(echo "$theirs") <(echo "$ours") | head -n 8 | sed 's/^/       /'; head -n 3 "$TMP/ps.err" | sed 's/^/       /'
	fi

	printf 'ping 7\n' | timeout 10 socat -t 0.5 - "UNIX-CONNECT:$TMP/serial.sock" >/dev/null 2>&1
	if wait_for "$TMP/serial.log" "PONG 7" 30; then ok "$release: the guest runs on after the gdbstub was detached"
	else bad "$release: no answer from the guest after the runs"; fi
	kill "$qpid" 2>/dev/null; wait "$qpid" 2>/dev/null; qpid=
done

((fails == 0)) || { echo "$fails check(s) failed"; exit 1; }
echo "all checks passed"
