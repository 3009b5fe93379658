#!/usr/bin/env bash
# test_arm64_memory.sh — arm64 guests, layers 1 and 2 (issue 17, first part): live QEMU memory and AArch64 stage-1
# translation (user/arch/arm64.c) held against the guest's own build and QEMU's own page walker.
#
# Debian's arm64 kernels from the zoo (scripts/fetch-kernel.sh SUITE arm64), each booted under
# qemu-system-aarch64 -M virt (TCG, 2 vCPUs, 1 GiB) with the same suite's busybox-static:arm64. With the guest
# halted by QEMU's gdbstub, gdb-multiarch reads each vCPU's TTBR0_EL1, TTBR1_EL1, TCR_EL1 and PC (what the
# product cannot see yet: it will find the kernel root from memory). Then, per vCPU, through build/tools/memcheck
# on the live QEMU source:
#   - TCR_EL1 decodes to the kernel's CONFIG_ARM64_VA_BITS with the 4 KiB granule (CONFIG_ARM64_4K_PAGES);
#   - 2000 reads at random places of random leaves of both halves' tables that map RAM, and 64 bytes at the
#     vCPU's PC, read equal to QEMU's own `x` through that vCPU: none faults, none differs; and 300 more in the
#     user half alone (TTBR0: the process that vCPU runs; the kernel half's leaves outnumber it 1000 to 1) —
#     a vCPU halted in a kernel thread or idle has an empty user half, but one of the two must have one.
# VMOT_ARM64_KERNELS (default "bookworm sid": 48-bit VAs, and 52-bit with LPA2 as trixie too) picks the suites. Exit 0 pass, 77 skip (one line why), 1 fail.
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
M=${VMOT_TOOLS:-$ROOT/build/tools}/memcheck
QC=${VMOT_TOOLS:-$ROOT/build/tools}/qmp-cmd
SUITES=${VMOT_ARM64_KERNELS:-bookworm sid}

skip() { echo "SKIP: $*"; exit 77; }
[[ -x "$M" ]] || skip "build/tools/memcheck not built (run make)"
for t in qemu-system-aarch64 gdb-multiarch cpio gzip; do
	command -v $t >/dev/null || skip "$t missing (make deps: qemu-system-arm, gdb-multiarch)"
done
TMP=$(mktemp -d /tmp/vmot-arm64.XXXXXX)
qpid= gpid=
trap '[[ -n "$gpid" ]] && kill "$gpid" 2>/dev/null; [[ -n "$qpid" ]] && kill "$qpid" 2>/dev/null; rm -rf "$TMP"' EXIT
# shellcheck source=../../scripts/lib/guest-lib.sh
source "$ROOT/scripts/lib/guest-lib.sh"

make_initramfs() {   # make_initramfs KDIR OUT
	local r=$TMP/root
	rm -rf "$r"; mkdir -p "$r"/{bin,proc,dev,tmp}
	cp "$1/busybox" "$r/bin/busybox"
	cat >"$r/init" <<-'EOS'
	#!/bin/busybox sh
	/bin/busybox mount -t proc proc /proc
	for i in 1 2 3; do /bin/busybox sleep 100000 & done
	echo VMOT-READY
	while :; do /bin/busybox sleep 1; done
	EOS
	chmod +x "$r/init"
	(cd "$r" && find . | cpio -o -H newc 2>/dev/null | gzip -1) >"$2"
}
reg() { awk -v r="$2" '$1 == r { print $2; exit }' <<<"$1"; }

port=$((20000 + $$ % 20000))
for suite in $SUITES; do
	kdir=$("$ROOT/scripts/fetch-kernel.sh" "$suite" arm64) || { bad "fetch $suite arm64"; continue; }
	release=$(cat "$kdir/release")
	want_bits=$(sed -n 's/^CONFIG_ARM64_VA_BITS=//p' "$kdir/config")
	echo "== $release ($suite): CONFIG_ARM64_VA_BITS=$want_bits, $(grep -c '^CONFIG_ARM64_4K_PAGES=y' "$kdir/config") x 4K pages"
	make_initramfs "$kdir" "$TMP/initrd.gz"
	rm -f "$TMP/serial.log" "$TMP/qmp.sock" "$TMP/ready" "$TMP/done"
	port=$((port + 1))
	timeout 900 qemu-system-aarch64 -M virt -cpu max -smp 2 -m 1024 -nodefaults -display none -no-user-config \
		-kernel "$kdir/Image" -initrd "$TMP/initrd.gz" -append "console=ttyAMA0 rdinit=/init" \
		-serial "file:$TMP/serial.log" -qmp "unix:$TMP/qmp.sock,server=on,wait=off" -gdb "tcp:127.0.0.1:$port" \
		</dev/null >"$TMP/qemu.log" 2>&1 &
	qpid=$!
	if ! wait_for "$TMP/serial.log" VMOT-READY 180; then
		bad "$release: no VMOT-READY within 180 s"; tail -n 5 "$TMP/serial.log" "$TMP/qemu.log" | sed 's/^/       /'
		kill "$qpid" 2>/dev/null; wait "$qpid" 2>/dev/null; qpid=; continue
	fi
	sleep 1
	pid=$(pgrep -P "$qpid" -f qemu-system-aarch64 | head -n1); pid=${pid:-$qpid}
	# gdb halts the guest and keeps it halted until the checks are done (its shell command waits for them).
	# A vCPU halted in the kernel runs with PSTATE.PAN set, and QEMU's own walker then refuses EL0 pages to
	# debug reads as the CPU would: PAN is cleared while the guest is halted (so QEMU shows the user half
	# too) and restored before it runs again. Each vCPU is picked by QEMU's thread id (its cpu index + 1), not
	# by gdb's own thread numbers, which follow the order gdb met the threads in (the stop reply's first).
	cat >"$TMP/gdb.py" <<-'EOP'
	import gdb
	def vcpus():
	    return sorted(((t.ptid[1] or t.ptid[2]) - 1, t) for t in gdb.selected_inferior().threads())
	def clear_pan():
	    global saved
	    saved = {}
	    for cpu, t in vcpus():
	        t.switch()
	        print("VCPU %d" % cpu)
	        gdb.execute("info registers TTBR0_EL1 TTBR1_EL1 TCR_EL1 pc")
	        saved[cpu] = int(gdb.parse_and_eval("$cpsr"))
	        gdb.execute("set $cpsr = %d" % (saved[cpu] & ~0x400000))
	        print("PSTATE %d 0x%x -> 0x%x" % (cpu, saved[cpu], int(gdb.parse_and_eval("$cpsr"))))
	def restore_pan():
	    for cpu, t in vcpus():
	        t.switch()
	        gdb.execute("set $cpsr = %d" % saved[cpu])
	EOP
	gdb-multiarch -batch -nx -ex 'set architecture aarch64' -ex "target remote 127.0.0.1:$port" \
		-ex "source $TMP/gdb.py" -ex 'python clear_pan()' \
		-ex "shell touch $TMP/ready; while [ ! -e $TMP/done ]; do sleep 0.2; done" \
		-ex 'python restore_pan()' >"$TMP/gdb.log" 2>&1 &
	gpid=$!
	wait_for "$TMP/ready" "" 60 || [[ -e "$TMP/ready" ]] || { bad "$release: gdb did not attach"; cat "$TMP/gdb.log"; }
	user_halves=0
	for cpu in 0 1; do
		regs=$(awk -v n=$cpu '$1 == "VCPU" { on = $2 == n; next } on' "$TMP/gdb.log" | head -n 4)
		t0=$(reg "$regs" TTBR0_EL1) t1=$(reg "$regs" TTBR1_EL1) tcr=$(reg "$regs" TCR_EL1) pc=$(reg "$regs" pc)
		if [[ -z "$t1" || -z "$tcr" || -z "$pc" ]]; then bad "vCPU $cpu: no registers from gdb"; sed 's/^/       /' "$TMP/gdb.log"; continue; fi
		tbits=$((64 - ((tcr >> 16) & 0x3f))) tg1=$(((tcr >> 30) & 3))
		if [[ $tbits == "$want_bits" && $tg1 == 2 ]]; then ok "vCPU $cpu: TCR_EL1 $tcr: $tbits-bit kernel VAs, 4 KiB granule, as the kernel was built"
		else bad "vCPU $cpu: TCR_EL1 $tcr decodes to $tbits bits, TG1 $tg1; kernel built for $want_bits"; fi
		out=$("$M" --pid "$pid" --qmp "$TMP/qmp.sock" --cpu "$cpu" --virt --compare "$TMP/qmp.sock" \
			--ttbr0 "$t0" --ttbr1 "$t1" --tcr "$tcr" --leaves 2000 "$pc:64" 2>&1)
		read -r e z d < <(awk '/^compare:/ { gsub(/\(/, "", $4); print $2, $4, $6 }' <<<"$out")
		faults=$(grep -c '^FAULT' <<<"$out")
		if [[ "${d:-x}" == 0 && "${e:-0}" -ge 2001 && "${z:-0}" -ge 20 && $faults == 0 ]]; then
			ok "vCPU $cpu (TTBR1 $t1, TTBR0 $t0): $e reads equal to QEMU's through both halves and at PC ($z non-zero)"
		else
			bad "vCPU $cpu: equal=${e:-?} non-zero=${z:-?} different=${d:-?} faults=$faults"
			grep -m3 -E '^(DIFF|FAULT|Error)' <<<"$out" | sed 's/^/       /'
		fi
		# the user half alone: TCR_EL1.EPD1 set turns TTBR1 walks off
		out=$("$M" --pid "$pid" --qmp "$TMP/qmp.sock" --cpu "$cpu" --virt --compare "$TMP/qmp.sock" \
			--ttbr0 "$t0" --ttbr1 "$t1" --tcr $((tcr | (1 << 23))) --leaves 300 2>&1)
		read -r e z d < <(awk '/^compare:/ { gsub(/\(/, "", $4); print $2, $4, $6 }' <<<"$out")
		faults=$(grep -c '^FAULT' <<<"$out"); user=$(grep -c '^V 0000' <<<"$out")
		if grep -q 'map no RAM' <<<"$out"; then
			echo "  --   vCPU $cpu: no user address space (TTBR0 $t0 maps nothing: a kernel thread or idle)"
			continue
		fi
		user_halves=$((user_halves + 1))
		if [[ "${d:-x}" == 0 && "${e:-0}" -ge 300 && "${z:-0}" -ge 20 && $faults == 0 && $user -ge 300 ]]; then
			ok "vCPU $cpu: the user half alone (TTBR0 $t0): $e reads equal to QEMU's ($z non-zero)"
		else
			bad "vCPU $cpu, user half: equal=${e:-?} non-zero=${z:-?} different=${d:-?} faults=$faults user VAs=$user"
			grep -m3 -E '^(DIFF|FAULT|Error)' <<<"$out" | sed 's/^/       /'
			# what each side saw of the vCPU's state (PSTATE.PAN is bit 22): gdb's before/after, QEMU's now
			grep '^PSTATE' "$TMP/gdb.log" | sed 's/^/       gdb: /'
			"$QC" "$TMP/qmp.sock" --hmp 'info registers' "$cpu" 2>&1 |
				grep -o 'PSTATE=[0-9a-f]* [^ ]* [^ ]*' | sed 's/^/       QEMU: /'
		fi
	done
	((user_halves > 0)) || bad "$release: neither vCPU ran a user address space to compare"
	touch "$TMP/done"; wait "$gpid" 2>/dev/null; gpid=
	kill "$qpid" 2>/dev/null; wait "$qpid" 2>/dev/null; qpid=
done

((fails == 0)) || { echo "$fails check(s) failed"; exit 1; }
echo "all checks passed"
