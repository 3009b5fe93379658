#!/usr/bin/env bash
# test_memory.sh — guest memory backends against QEMU's own view (issue 3).
#
# Boots TCG guests from the kernel zoo and reads memory through every backend with build/tools/memcheck,
# comparing each read with QMP xp (physical) / x (virtual, through that vCPU's page tables):
#   1. live QEMU (process_vm_readv), 2 vCPUs, 512M: physical + virtual bytes equal, direct map found from the
#      page tables alone; an ELF core from dump-guest-memory and a raw pmemsave image of the same (paused)
#      guest give the same bytes, and the core's CR3s equal what `info registers -a` reports (a paging dump
#      with overlapping PT_LOADs too);
#      a wrong pid / non-QEMU pid fail with one clear line; a QEMU that exits mid-read gives "exited".
#   2. -m 5G: RAM above the 4G split (GPA 0x100000000 = pc.ram @0xc0000000) reads equal, the PCI hole faults.
#   3. -cpu max,+la57 with a 5-level kernel: CR4.LA57 seen, LA57 detected from the tables, virtual reads equal.
#   4. KVM (if /dev/kvm works): the QMP-derived map agrees with KVM's memslots (BPF reader), and a source built
#      from memslots alone reads the same bytes as QMP xp. This QEMU is started directly (no READY wait:
#      firmware pages are enough), so a slow nested KVM still gets tested.
# Exit 0 pass, 77 skip (one line why), 1 fail.
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
M=${VMOT_TOOLS:-$ROOT/build/tools}/memcheck   # make test SAN=1: the sanitized tools
QC=$ROOT/build/tools/qmp-cmd
KERNEL=${VMOT_MEM_KERNEL:-bookworm}

skip() { echo "SKIP: $*"; exit 77; }
[[ -x "$M" && -x "$QC" ]] || skip "build/tools/memcheck or qmp-cmd not built (run make)"
command -v qemu-system-x86_64 >/dev/null || skip "qemu-system-x86_64 not installed"
if [[ $(id -u) != 0 ]] && [[ "$(cat /proc/sys/kernel/yama/ptrace_scope 2>/dev/null || echo 0)" != 0 ]]; then
	skip "process_vm_readv of a non-child QEMU needs root or ptrace_scope=0"
fi
TMP=$(mktemp -d /tmp/vmot-memtest.XXXXXX)
kvm_pid=
trap '[[ -n "$kvm_pid" ]] && kill "$kvm_pid" 2>/dev/null; rm -rf "$TMP"' EXIT   # guest-lib chains this after its own
# shellcheck source=../../scripts/lib/guest-lib.sh
source "$ROOT/scripts/lib/guest-lib.sh"
check() { local what=$1; shift; if "$@"; then ok "$what"; else bad "$what"; fi; }

# compare-line helpers: "compare: N equal (Z non-zero), D different"
cmp_diff()    { awk '/^compare:/ { print $6 }' <<<"$1"; }
cmp_nonzero() { awk '/^compare:/ { gsub(/\(/, "", $4); print $4 }' <<<"$1"; }
cmp_equal()   { awk '/^compare:/ { print $2 }' <<<"$1"; }
same_bytes() {   # same_bytes LABEL OUTPUT MIN_NONZERO
	local d z e
	d=$(cmp_diff "$2"); z=$(cmp_nonzero "$2"); e=$(cmp_equal "$2")
	if [[ "$d" == 0 && -n "$z" && "$z" -ge "$3" ]]; then
		ok "$1 ($e reads equal, $z non-zero)"
	else
		bad "$1 (equal=${e:-?} non-zero=${z:-?} different=${d:-?})"
		grep -m3 '^DIFF' <<<"$2" | sed 's/^/       /'
	fi
}
qemu_cr3s() { "$QC" "$1" --hmp "info registers -a" | tr -d '\r' | grep -o 'CR3=[0-9a-f]*' | sed 's/CR3=//' | while read -r h; do printf '%#x\n' "0x$h"; done; }
src_cr3s()  { awk '/^vcpu/ { for (i = 1; i < NF; i++) if ($i == "cr3") print $(i + 1) }' <<<"$1"; }

# ---------------------------------------------------------------------------------------------------------
echo "1. live TCG guest ($KERNEL, 2 vCPUs, 512M)"
guest_start --kernel "$KERNEL" --smp 2 --mem 512M >/dev/null || { echo "FAIL: guest did not boot"; exit 1; }
P=$GUEST_PID S=$GUEST_QMP KDIR=$GUEST_KERNEL
info=$("$M" --pid "$P" --info 2>&1)
check "live source opens and finds guest RAM" grep -q '^source qemu ranges' <<<"$info"
total=$(awk '/^source/ { print $6 }' <<<"$info")
check "RAM total within 512M ($total)" test "${total:-0}" -gt $((500 << 20)) -a "${total:-0}" -le $((512 << 20))
check "direct map found from page tables alone" grep -Eq 'direct_map 0xffff[0-9a-f]+ ' <<<"$info"
check "two vCPUs with CR3 over QMP" test "$(grep -c '^vcpu . valid 1' <<<"$info")" -eq 2

out=$("$M" --pid "$P" --compare "$S" --pause --sample 400 2>&1)
same_bytes "live GPA reads == QMP xp" "$out" 10
for cpu in 0 1; do
	out=$("$M" --pid "$P" --compare "$S" --pause --virt --cpu "$cpu" --sample 150 2>&1)
	same_bytes "live GVA reads (vCPU $cpu's CR3, direct map) == QMP x" "$out" 3
done
# kernel text at each vCPU's RIP when it is in the kernel
rips=$(awk '/^vcpu/ { for (i = 1; i < NF; i++) if ($i == "rip") print $(i + 1) }' <<<"$info")
kr=$(grep -m1 '^0xffff' <<<"$rips")
if [[ -n "$kr" ]]; then
	out=$("$M" --pid "$P" --compare "$S" --pause --virt "$kr:256" 2>&1)
	same_bytes "kernel text at RIP $kr == QMP x" "$out" 1
fi

# ELF core and raw image of the paused guest
"$QC" "$S" stop >/dev/null
QMP_TIMEOUT_MS=120000 "$QC" "$S" dump-guest-memory "{\"paging\":false,\"protocol\":\"file:$TMP/g.core\"}" >/dev/null ||
	bad "dump-guest-memory"
QMP_TIMEOUT_MS=120000 "$QC" "$S" pmemsave "{\"val\":0,\"size\":$((512 << 20)),\"filename\":\"$TMP/g.raw\"}" >/dev/null ||
	bad "pmemsave"
cinfo=$("$M" --core "$TMP/g.core" --info 2>&1)
check "ELF core opens" grep -q '^source elfcore' <<<"$cinfo"
check "ELF core CR3s == info registers -a CR3s ($(src_cr3s "$cinfo" | tr '\n' ' '))" \
	test "$(src_cr3s "$cinfo")" = "$(qemu_cr3s "$S")"
check "ELF core finds the same direct map" test "$(grep -o 'direct_map [^ ]*' <<<"$cinfo")" = "$(grep -o 'direct_map [^ ]*' <<<"$info")"
out=$("$M" --core "$TMP/g.core" --compare "$S" --sample 400 --range 0:0x20000000 2>&1)
same_bytes "ELF core GPA reads == QMP xp" "$out" 10
out=$("$M" --core "$TMP/g.core" --compare "$S" --virt --sample 150 2>&1)
same_bytes "ELF core GVA reads == QMP x" "$out" 3
out=$("$M" --raw "$TMP/g.raw" --compare "$S" --range 0:0xa0000 --sample 20 2>&1)
out2=$("$M" --raw "$TMP/g.raw" --compare "$S" --range 0x100000:0x20000000 --sample 400 2>&1)
same_bytes "raw pmemsave reads == QMP xp (below 640K)" "$out" 0
same_bytes "raw pmemsave reads == QMP xp (1M-512M)" "$out2" 10
# the core, the raw image and the live guest agree byte for byte at the same addresses
addrs=$(awk '/^P / { print "0x" $2 ":64" }' <<<"$out2" | head -100)
# shellcheck disable=SC2086
a=$("$M" --core "$TMP/g.core" $addrs | md5sum); b=$("$M" --raw "$TMP/g.raw" $addrs | md5sum); c=$("$M" --pid "$P" $addrs | md5sum)
check "core, raw image and live process give identical bytes at 100 addresses" test "$a" = "$b" -a "$b" = "$c"
rm -f "$TMP/g.core" "$TMP/g.raw"
# a paging dump (-p): PT_LOADs per guest mapping, the same physical pages described many times
QMP_TIMEOUT_MS=120000 "$QC" "$S" dump-guest-memory "{\"paging\":true,\"protocol\":\"file:$TMP/p.core\"}" >/dev/null ||
	bad "dump-guest-memory -p"
out=$("$M" --core "$TMP/p.core" --compare "$S" --sample 300 2>&1)
same_bytes "paging ELF core (overlapping PT_LOADs) GPA reads == QMP xp" "$out" 10
rm -f "$TMP/p.core"
"$QC" "$S" cont >/dev/null

# error paths
err=$("$M" --pid 1 2>&1 >/dev/null); rc=$?
check "pid 1 rejected: '$err'" test $rc -ne 0 -a -n "$(grep 'not a QEMU process' <<<"$err")"
err=$("$M" --pid 4194303 2>&1 >/dev/null); rc=$?
check "missing pid rejected: '$err'" test $rc -ne 0 -a -n "$(grep 'no process with pid' <<<"$err")"
"$M" --pid "$P" --bench 20 >"$TMP/bench.out" 2>"$TMP/bench.err" &
mpid=$!
sleep 3
guest_stop >/dev/null 2>&1
wait "$mpid"; rc=$?
check "QEMU exiting mid-read: memcheck fails with '$(head -1 "$TMP/bench.err")'" \
	test $rc -ne 0 -a -n "$(grep -E 'exited' "$TMP/bench.err")"

# ---------------------------------------------------------------------------------------------------------
echo "2. 5 GiB guest: RAM split below/above 4G"
if guest_start --kernel "$KERNEL" --mem 5G >/dev/null; then
	P=$GUEST_PID S=$GUEST_QMP
	info=$("$M" --pid "$P" --info 2>&1)
	check "a RAM range starts at 4G" grep -q '^range 0000000100000000-000000017fffffff' <<<"$info"
	check "RAM below 4G ends at 3G" grep -Eq "^range [0-9a-f]{16}-00000000bfffffff" <<<"$info"
	out=$("$M" --pid "$P" --compare "$S" --pause --range 0x100000000:0x180000000 --sample 600 2>&1)
	same_bytes "GPA reads above 4G == QMP xp" "$out" 1
	out=$("$M" --pid "$P" --compare "$S" --pause 0xbffff000:4096 0x100000000:4096 0x17ffff000:4096 0xbfffffc0:64 2>&1)
	same_bytes "pages at both edges of the split == QMP xp" "$out" 0
	out=$("$M" --pid "$P" 0xbffffff8:16 0xc0000000:8 0x180000000:8 2>&1)
	check "reads into the PCI hole / past RAM fault" test "$(grep -c '^FAULT' <<<"$out")" -eq 3
	out=$("$M" --pid "$P" --compare "$S" --pause --virt --sample 200 2>&1)
	same_bytes "GVA reads through the direct map (5G) == QMP x" "$out" 3
	guest_stop >/dev/null 2>&1
else
	bad "5G guest did not boot"
fi

# ---------------------------------------------------------------------------------------------------------
echo "3. 5-level paging guest (-cpu max,+la57)"
if guest_start --kernel "$KERNEL" --la57 --mem 1G >/dev/null; then
	P=$GUEST_PID S=$GUEST_QMP
	if [[ "${GUEST_PAGING:-4}" != 5 ]]; then
		echo "  skip la57 part: the guest kernel runs with ${GUEST_PAGING:-?}-level paging"
	else
		info=$("$M" --pid "$P" --info 2>&1)
		check "CR4.LA57 set, 5 levels" grep -q 'levels 5' <<<"$info"
		check "LA57 detected from the page tables alone" grep -q 'detect_la57 1' <<<"$info"
		check "5-level direct map found (0xff...)" grep -Eq 'direct_map 0xff[0-9a-f]{14} ' <<<"$info"
		out=$("$M" --pid "$P" --compare "$S" --pause --virt --sample 200 2>&1)
		same_bytes "GVA reads (5-level) == QMP x" "$out" 3
		kr=$(awk '/^vcpu/ { for (i = 1; i < NF; i++) if ($i == "rip" && $(i + 1) ~ /^0xffff/) print $(i + 1) }' <<<"$info" | head -1)
		if [[ -n "$kr" ]]; then
			out=$("$M" --pid "$P" --compare "$S" --pause --virt "$kr:256" 2>&1)
			same_bytes "kernel text at RIP $kr (5-level) == QMP x" "$out" 1
		fi
		"$QC" "$S" stop >/dev/null
		QMP_TIMEOUT_MS=120000 "$QC" "$S" dump-guest-memory "{\"paging\":false,\"protocol\":\"file:$TMP/l.core\"}" >/dev/null
		cinfo=$("$M" --core "$TMP/l.core" --info 2>&1)
		check "5-level ELF core: CR3s == info registers, levels 5" \
			test "$(src_cr3s "$cinfo")" = "$(qemu_cr3s "$S")" -a -n "$(grep 'levels 5' <<<"$cinfo")"
		out=$("$M" --core "$TMP/l.core" --compare "$S" --virt --sample 100 2>&1)
		same_bytes "5-level ELF core GVA reads == QMP x" "$out" 3
		rm -f "$TMP/l.core"
		"$QC" "$S" cont >/dev/null
	fi
	guest_stop >/dev/null 2>&1
else
	bad "la57 guest did not boot"
fi

# ---------------------------------------------------------------------------------------------------------
echo "4. KVM guest: QMP-derived map vs KVM memslots"
kvm_pid=
if [[ -w /dev/kvm && -r "$KDIR/vmlinuz" ]]; then
	qemu-system-x86_64 -name vmot-memtest-kvm -machine pc,accel=kvm -cpu qemu64 -m 768M -smp 1 \
		-kernel "$KDIR/vmlinuz" -append console=ttyS0 -display none -serial none -monitor none \
		-qmp "unix:$TMP/kvm.sock,server=on,wait=off" -pidfile "$TMP/kvm.pid" -daemonize >/dev/null 2>&1 &&
		kvm_pid=$(cat "$TMP/kvm.pid")
fi
if [[ -z "$kvm_pid" ]]; then
	echo "  skip KVM part: cannot start QEMU with -accel kvm"
else
	sleep 3
	out=$("$M" --pid "$kvm_pid" --qmp "$TMP/kvm.sock" --memslots --info 2>&1)
	if grep -q 'cannot read KVM memslots' <<<"$out"; then
		echo "  skip memslot checks: $(grep -m1 'memslots' <<<"$out")"
	else
		check "QMP-derived RAM map agrees with KVM memslots ($(grep -m1 '^memslots' <<<"$out"))" \
			grep -Eq '^memslots [1-9][0-9]* disagree 0$' <<<"$out"
		out=$("$M" --pid "$kvm_pid" --memslots-only --compare "$TMP/kvm.sock" --pause --range 0xc0000:0x100000 \
			--sample 60 2>&1)
		same_bytes "memslot-only source reads == QMP xp (firmware area)" "$out" 3
	fi
	out=$("$M" --pid "$kvm_pid" --qmp "$TMP/kvm.sock" --compare "$TMP/kvm.sock" --pause --range 0xc0000:0x100000 \
		--sample 60 2>&1)
	same_bytes "KVM guest: live GPA reads == QMP xp" "$out" 3
	kill "$kvm_pid" 2>/dev/null
fi

if ((fails)); then
	echo "test_memory: $fails check(s) failed"
	exit 1
fi
echo "test_memory: all checks passed"
exit 0
