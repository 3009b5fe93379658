#!/usr/bin/env bash
# test_i386_memory.sh — 32-bit x86 guests (issue 16): live QEMU memory and 32-bit address translation held
# against the guest's own build and QEMU's own page walker, then discovery, ps and live on them.
#
# Debian's i386 kernels from the zoo (scripts/fetch-kernel.sh SUITE 686|686-pae: bookworm and bullseye, the
# suites that still ship them), each booted under qemu-system-i386 (TCG, 2 vCPUs) with an initramfs of the same
# suite's busybox-static:i386; the guest prints its kernel's _text from its own /proc/kallsyms. Then, per kernel,
# through build/tools/memcheck on the live QEMU source:
#   - the vCPUs' paging mode read from CR0/CR4/EFER (2-level or PAE) is the one the kernel was built for
#     (CONFIG_X86_PAE in its config), and x86_32_detect_pae, which sees only memory, says the same;
#   - the lowmem map found from the page tables alone starts at the kernel's CONFIG_PAGE_OFFSET and maps at
#     least half of RAM (all of lowmem: 512 MiB guests; 1.5 GiB guests have highmem beyond it);
#   - with the guest paused, 300 random lowmem reads, 300 reads in random leaves of the whole page table (user
#     pages, vmalloc, fixmap, large pages) and 64 bytes at _text read equal to QEMU's own `x` through the same
#     vCPU, for vCPU 0 and vCPU 1 (whose CR3 differ: each a process's page tables);
#   - the paused guest's ELF core from dump-guest-memory (EM_386; ELF64 under -cpu max, which has long mode)
#     carries each vCPU's CR3 as `info registers -a` shows it and the same paging mode, and reads through it
#     (lowmem, leaves, _text) equal QEMU's; a raw pmemsave image with the CR3 and mode given reads the same;
#   - task_struct discovery (4-byte pointers): `offsets` on the live guest is validated and, where the kernel's
#     DWARF truth is cached (fetch-kernel.sh with VMOFFSET_DBG=1), every member equals it; its ELF core and raw image give the same offsets; `ps --threads`
#     equals the guest's own /proc (user space, printed over the serial console); `live` follows the vCPUs (per-CPU
#     current task through the GDT) and sees the guest's busy loop run; libvmi.conf names LibVMI's 32-bit page
#     mode (VMI_PM_PAE / VMI_PM_LEGACY) and the ISF 4-byte pointers and list heads; command lines and ids equal
#     the guest's /proc (a process su'd to uid 1000); the pid allocator (lost counting), found while `live` watches
#     the guest's new pids, sits where the DWARF says.
# VMOT_I386_KERNELS (default "bookworm:686 bookworm:686-pae bullseye:686 bullseye:686-pae bookworm:686-pae:x86_64";
# a third field x86_64 boots the kernel under qemu-system-x86_64, whose vCPUs then run 32-bit paging) picks them,
# VMOT_I386_DWARF_SUITES (default "bookworm bullseye") the suites whose DWARF truth is fetched if not cached.
# Exit 0 pass, 77 skip (one line why), 1 fail.
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
M=${VMOT_TOOLS:-$ROOT/build/tools}/memcheck
BIN=${VMOT_BIN:-$ROOT/vmoffset-trace}
KERNELS=${VMOT_I386_KERNELS:-bookworm:686 bookworm:686-pae bullseye:686 bullseye:686-pae bookworm:686-pae:x86_64}
# suites whose kernels' DWARF truth is fetched when missing (about a minute each on a cold machine: the -dbg
# package is ~765 MB); other kernels are checked against it only where it is cached
DWARF_SUITES=${VMOT_I386_DWARF_SUITES-bookworm bullseye}

skip() { echo "SKIP: $*"; exit 77; }
[[ -x "$M" && -x "$BIN" ]] || skip "vmoffset-trace or build/tools/memcheck not built (run make)"
command -v qemu-system-i386 >/dev/null || skip "qemu-system-i386 not installed (make deps)"
for t in cpio gzip socat jq; do command -v $t >/dev/null || skip "$t missing (make deps)"; done
TMP=$(mktemp -d /tmp/vmot-i386.XXXXXX)
qpid=
trap '[[ -n "$qpid" ]] && kill "$qpid" 2>/dev/null; rm -rf "$TMP"' EXIT
# shellcheck source=../../scripts/lib/guest-lib.sh
source "$ROOT/scripts/lib/guest-lib.sh"

# "compare: N equal (Z non-zero), D different"
same_bytes() {   # same_bytes LABEL OUTPUT MIN_EQUAL
	local e z d
	read -r e z d < <(awk '/^compare:/ { gsub(/\(/, "", $4); print $2, $4, $6 }' <<<"$2")
	if [[ "${d:-x}" == 0 && "${e:-0}" -ge "$3" && "${z:-0}" -gt 0 ]]; then
		ok "$1 ($e reads equal to QEMU's, $z non-zero)"
	else
		bad "$1 (equal=${e:-?} non-zero=${z:-?} different=${d:-?})"
		grep -m3 -E '^(DIFF|Error)' <<<"$2" | sed 's/^/       /'
	fi
}
field() { awk -v k="$2" '{ for (i = 1; i < NF; i++) if ($i == k) { print $(i + 1); exit } }' <<<"$1"; }

# the guest's userland: the suite's own static busybox for i386, and an init that reports _text
make_initramfs() {   # make_initramfs KDIR OUT
	local r=$TMP/root
	rm -rf "$r"; mkdir -p "$r"/{bin,proc,dev,tmp}
	cp "$1/busybox" "$r/bin/busybox"
	ln -s busybox "$r/bin/sh"
	mkdir -p "$r/etc"   # a user for su: a process whose ids are not root's
	printf 'root:x:0:0::/:/bin/sh\nvmot:x:1000:100::/:/bin/sh\n' >"$r/etc/passwd"
	printf 'root:x:0:\nusers:x:100:\n' >"$r/etc/group"
	cat >"$r/init" <<-'EOF'
	#!/bin/busybox sh
	/bin/busybox mount -t proc proc /proc
	/bin/busybox mount -t devtmpfs dev /dev   # background jobs read /dev/null
	echo "VMOT-TEXT $(/bin/busybox awk '$3 == "_text" { print $1 }' /proc/kallsyms)"
	for i in 1 2 3; do /bin/busybox sleep 100000 & done
	( while :; do :; done ) &
	echo "VMOT-BUSY $!"
	/bin/busybox su vmot -c "/bin/busybox sleep 1000001" &
	/bin/busybox sleep 1000000 &   # started before the listing: init then only waits
	/bin/busybox sleep 1
	# the guest's own process list (user space: pid ppid tgid comm), every thread
	for t in /proc/[0-9]*/task/[0-9]*; do
		set -- $(/bin/busybox cat "$t/stat" 2>/dev/null) || continue
		c=${2#(}; tg=${t#/proc/}; echo "VMOT-P $1 $4 ${tg%%/*} ${c%)}"
	done
	# and each process's command line (NULs as spaces) and ids (uid euid gid egid)
	for d in /proc/[0-9]*; do
		echo "VMOT-C ${d#/proc/} $(/bin/busybox tr '\0' ' ' <"$d/cmdline" 2>/dev/null)"
		/bin/busybox awk -v p="${d#/proc/}" '$1 == "Uid:" { u = $2 " " $3 } $1 == "Gid:" { g = $2 " " $3 }
			END { split(u, a, " "); split(g, b, " "); print "VMOT-U", p, a[1], a[2], b[1], b[2] }' "$d/status" 2>/dev/null
	done
	echo VMOT-READY
	# then a short-lived process every half second: new pids for the pid allocator (lost counting)
	while :; do /bin/busybox sleep 0.5; done
	EOF
	chmod +x "$r/init"
	(cd "$r" && find . | cpio -o -H newc 2>/dev/null | gzip -1) >"$2"
}

for spec in $KERNELS; do
	# SUITE:FLAVOUR[:x86_64] — the last form boots the 32-bit kernel under qemu-system-x86_64
	IFS=: read -r suite flavour emu <<<"$spec"
	qemu=qemu-system-${emu:-i386}
	dbg=0; [[ " $DWARF_SUITES " == *" $suite "* ]] && dbg=1
	kdir=$(VMOFFSET_DBG=$dbg "$ROOT/scripts/fetch-kernel.sh" "$suite" "$flavour") || { bad "fetch $suite $flavour"; continue; }
	release=$(cat "$kdir/release")
	want_levels=2; grep -q '^CONFIG_X86_PAE=y' "$kdir/config" && want_levels=3
	page_offset=$(sed -n 's/^CONFIG_PAGE_OFFSET=//p' "$kdir/config")
	mem=512; ((want_levels == 3)) && mem=1536   # PAE: RAM beyond lowmem (highmem)
	echo "== $release ($suite $flavour, $qemu): CONFIG_PAGE_OFFSET=$page_offset, $want_levels-level paging, ${mem}M"
	make_initramfs "$kdir" "$TMP/initrd.gz"
	rm -f "$TMP/serial.log" "$TMP/qmp.sock"
	timeout 600 "$qemu" -nodefaults -display none -no-user-config -accel tcg -cpu max -smp 2 -m "$mem" \
		-kernel "$kdir/vmlinuz" -initrd "$TMP/initrd.gz" -append "console=ttyS0 quiet rdinit=/init" \
		-serial "file:$TMP/serial.log" -qmp "unix:$TMP/qmp.sock,server=on,wait=off" </dev/null >"$TMP/qemu.log" 2>&1 &
	qpid=$!
	if ! wait_for "$TMP/serial.log" VMOT-READY 120; then
		bad "$release: no VMOT-READY within 120 s"; tail -n 5 "$TMP/serial.log" "$TMP/qemu.log" | sed 's/^/       /'
		kill "$qpid" 2>/dev/null; wait "$qpid" 2>/dev/null; qpid=; continue
	fi
	sleep 1   # the sleeps start; vCPUs run them and init
	text=$(tr -d '\r' <"$TMP/serial.log" | sed -n 's/^VMOT-TEXT //p' | head -n1)
	# the QEMU process itself (timeout's child)
	pid=$(pgrep -P "$qpid" -f "$qemu" | head -n1); pid=${pid:-$qpid}

	info=$("$M" --pid "$pid" --qmp "$TMP/qmp.sock" --info 2>&1)
	levels=$(field "$info" levels32)
	if [[ "$levels" == "$want_levels" ]]; then ok "paging mode from CR0/CR4/EFER: $levels-level"; else bad "paging mode ${levels:-?}, the kernel was built for $want_levels-level"; fi
	pae=$(field "$info" detect_pae)
	if [[ "$pae" == $((want_levels == 3)) ]]; then ok "PAE detected from memory alone: $pae"; else bad "x86_32_detect_pae says ${pae:-?}"; fi
	lowmem=$(field "$info" lowmem) lowmem_bytes=$(field "$info" lowmem_bytes) total=$(awk '/^source/ { print $6 }' <<<"$info")
	if [[ -n "$lowmem" && $((lowmem)) == $((page_offset)) && ${lowmem_bytes:-0} -ge $((${total:-1} / 2)) ]]; then
		ok "lowmem map found at $lowmem = CONFIG_PAGE_OFFSET, $((lowmem_bytes >> 20)) MiB of $((total >> 20)) MiB RAM"
	else
		bad "lowmem ${lowmem:-none} (${lowmem_bytes:-0} bytes of ${total:-?}), CONFIG_PAGE_OFFSET $page_offset"
		grep -m2 -E '^(Error|cr3)' <<<"$info" | sed 's/^/       /'
	fi
	[[ -n "$text" ]] || bad "the guest printed no _text from /proc/kallsyms"
	for cpu in 0 1; do
		out=$("$M" --pid "$pid" --qmp "$TMP/qmp.sock" --cpu "$cpu" --pause --virt --compare "$TMP/qmp.sock" \
			--sample 300 --leaves 300 ${text:+0x$text:64} 2>&1)
		same_bytes "vCPU $cpu (CR3 $(field "$(grep "^vcpu $cpu " <<<"$info")" cr3)): lowmem, every kind of leaf, _text" "$out" 600
	done

	# the same guest, stopped, as an ELF core and as a raw image
	# (qmp-cmd waits for each reply: a dump of 1.5 GiB takes seconds)
	QC=$ROOT/build/tools/qmp-cmd
	QMP_TIMEOUT_MS=120000 "$QC" "$TMP/qmp.sock" stop >/dev/null
	QMP_TIMEOUT_MS=120000 "$QC" "$TMP/qmp.sock" dump-guest-memory "{\"paging\":false,\"protocol\":\"file:$TMP/core\"}" >/dev/null
	QMP_TIMEOUT_MS=120000 "$QC" "$TMP/qmp.sock" pmemsave "{\"val\":0,\"size\":$((mem << 20)),\"filename\":\"$TMP/raw\"}" >/dev/null
	regs=$("$QC" "$TMP/qmp.sock" --hmp "info registers -a" 2>/dev/null | tr -d '\r')
	qemu_cr3s=$(grep -o 'CR3=[0-9a-f]*' <<<"$regs" | sed 's/CR3=/0x/' | while read -r h; do printf '%#x ' "$h"; done)
	cinfo=$("$M" --core "$TMP/core" --info 2>&1)
	core_cr3s=$(awk '/^vcpu/ { for (i = 1; i < NF; i++) if ($i == "cr3") printf "%s ", $(i + 1) }' <<<"$cinfo")
	# QEMU writes EM_386 for a 32-bit guest (ELF64 when its -cpu has long mode, else ELF32: both are read)
	if [[ "$(file -b "$TMP/core")" == "ELF "*" LSB core file, Intel 80386"* && -n "$core_cr3s" && \
	      "$core_cr3s" == "$qemu_cr3s" && "$(field "$cinfo" levels32)" == "$want_levels" ]]; then
		ok "EM_386 core ($(file -b "$TMP/core" | cut -d' ' -f2)): CR3s ${core_cr3s% } as QEMU shows them, $want_levels-level paging"
	else
		bad "ELF core: $(file -b "$TMP/core" | cut -c1-50); CR3s '${core_cr3s}' vs QEMU '${qemu_cr3s}'; levels32 $(field "$cinfo" levels32)"
		grep -m2 '^Error' <<<"$cinfo" | sed 's/^/       /'
	fi
	out=$("$M" --core "$TMP/core" --cpu 1 --virt --compare "$TMP/qmp.sock" --sample 300 --leaves 300 \
		${text:+0x$text:64} 2>&1)
	same_bytes "ELF core through vCPU 1's page tables" "$out" 600
	cr3=$(awk '{ print $2 }' <<<"$qemu_cr3s")
	out=$("$M" --raw "$TMP/raw" --cr3 "$cr3" --paging32 "$want_levels" --virt --cpu 1 --compare "$TMP/qmp.sock" \
		--sample 300 --leaves 300 ${text:+0x$text:64} 2>&1)
	same_bytes "raw image with CR3 $cr3 and $want_levels-level paging given" "$out" 600
	# discovery on the stopped guest's core and raw image: the offsets the live guest gives below
	core_json=$("$BIN" offsets --core "$TMP/core" --format json 2>"$TMP/core.err"); core_rc=$?
	raw_json=$("$BIN" offsets --raw "$TMP/raw" --cr3 "$cr3" --format json 2>"$TMP/raw.err"); raw_rc=$?
	rm -f "$TMP/core" "$TMP/raw"
	QMP_TIMEOUT_MS=20000 "$QC" "$TMP/qmp.sock" cont >/dev/null

	# discovery on the live guest: validated, init_task where the guest's kallsyms has it, every member equal to
	# the DWARF truth where it is cached (fetch-kernel.sh with VMOFFSET_DBG=1)
	got=$("$BIN" offsets --pid "$pid" --qmp "$TMP/qmp.sock" --format json 2>"$TMP/offsets.err"); rc=$?
	if ((rc == 0)) && [[ $(jq -r .validated <<<"$got") == true ]]; then
		ok "offsets: validated, $(jq -r '"\(.roots_explained)/\(.roots_observed) roots, \(.elapsed_s) s"' <<<"$got")"
	else
		bad "offsets: exit $rc, $(jq -r .reason <<<"$got" 2>/dev/null) $(tail -n1 "$TMP/offsets.err")"
	fi
	truth=
	[[ -s $kdir/vmlinux.dwarf.btf ]] && truth=$("$ROOT/build/tools/btf-truth" "$kdir/vmlinux.dwarf.btf" 2>/dev/null)
	if [[ -n $truth ]]; then
		wrong=""
		for f in tasks pid tgid comm mm active_mm real_parent parent children sibling cred; do
			[[ $(jq -r ".task_struct.$f" <<<"$got") == "$(jq -r ".$f" <<<"$truth")" ]] || wrong+=" $f=$(jq -r ".task_struct.$f" <<<"$got")/$(jq -r ".$f" <<<"$truth")"
		done
		[[ $(jq -r .mm_struct.pgd <<<"$got") == "$(jq -r .mm_pgd <<<"$truth")" ]] || wrong+=" pgd=$(jq -r .mm_struct.pgd <<<"$got")/$(jq -r .mm_pgd <<<"$truth")"
		if [[ -z $wrong ]]; then ok "11 task_struct members and mm_struct.pgd equal the kernel's DWARF"; else bad "offsets differ from DWARF (ours/truth):$wrong"; fi
	else
		echo "  (no DWARF truth cached for $release: offsets checked through ps and validation only; VMOFFSET_DBG=1 scripts/fetch-kernel.sh $suite $flavour caches it)"
	fi
	# LibVMI's outputs for a 32-bit guest: its page mode, 4-byte pointers, the offsets above
	conf=$("$BIN" offsets --pid "$pid" --qmp "$TMP/qmp.sock" --format libvmi 2>"$TMP/conf.err")
	isf=$("$BIN" offsets --pid "$pid" --qmp "$TMP/qmp.sock" --format isf 2>"$TMP/isf.err")
	want_pm=VMI_PM_LEGACY; ((want_levels == 3)) && want_pm=VMI_PM_PAE
	hexof() { printf '%d' "$(sed -n "s/.*$1 = \(0x[0-9a-f]*\);.*/\1/p" <<<"$conf")" 2>/dev/null; }
	if grep -q "pagemode = \"$want_pm\";" <<<"$conf" && [[ $(hexof linux_tasks) == "$(jq .task_struct.tasks <<<"$got")" &&
	   $(hexof linux_mm) == "$(jq .task_struct.mm <<<"$got")" && $(hexof linux_pid) == "$(jq .task_struct.pid <<<"$got")" &&
	   $(hexof linux_name) == "$(jq .task_struct.comm <<<"$got")" && $(hexof linux_pgd) == "$(jq .mm_struct.pgd <<<"$got")" ]]; then
		ok "libvmi.conf: pagemode $want_pm, linux_tasks/mm/pid/name/pgd as discovered"
	else
		bad "libvmi.conf: $(grep -E 'pagemode|linux_(tasks|mm|pid|name|pgd)' <<<"$conf" | tr -d ' \n') $(tail -n1 "$TMP/conf.err")"
	fi
	if [[ $(jq -c '[.base_types.pointer.size, .user_types.list_head.size, .user_types.list_head.fields.prev.offset]' <<<"$isf" 2>/dev/null) == "[4,8,4]" &&
	      $(jq -c '[.user_types.task_struct.fields | .tasks.offset, .pid.offset, .comm.offset, .mm.offset]' <<<"$isf") == \
	      "$(jq -c '[.task_struct | .tasks, .pid, .comm, .mm]' <<<"$got")" ]]; then
		ok "ISF: 4-byte pointers, an 8-byte list_head, task_struct members as discovered"
	else
		bad "ISF: $(jq -c '[.base_types.pointer, .user_types.list_head.size, .user_types.task_struct.fields.tasks]' <<<"$isf" 2>/dev/null | head -c 300) $(tail -n1 "$TMP/isf.err")"
	fi
	for src in core raw; do
		j=core_json; r=core_rc; [[ $src == raw ]] && { j=raw_json; r=raw_rc; }
		if [[ ${!r} == 0 && $(jq -c '[.task_struct, .mm_struct.pgd, .init_task]' <<<"${!j}") == "$(jq -c '[.task_struct, .mm_struct.pgd, .init_task]' <<<"$got")" ]]; then
			ok "offsets on its $src: the same offsets and init_task (validated: $(jq -r .validated <<<"${!j}"))"
		else
			bad "offsets on its $src: exit ${!r}: $(jq -c '.task_struct' <<<"${!j}" 2>/dev/null) $(tail -n1 "$TMP/$src.err")"
		fi
	done
	# ps against the guest's own /proc (user space, every thread) as it listed them: the processes started after
	# the listing (the half-second sleeps; higher pids) are not in it
	theirs=$(tr -d '\r' <"$TMP/serial.log" | awk '$1 == "VMOT-P" && $2 != 2 && $3 != 2 { print $2, $3, $4, $5 }' | sort)
	maxpid=$(tr -d '\r' <"$TMP/serial.log" | awk '$1 == "VMOT-P" && $2 > m { m = $2 } END { print m + 0 }')
	ours=$("$BIN" ps --pid "$pid" --qmp "$TMP/qmp.sock" --threads --json 2>"$TMP/ps.err" |
		jq -r --argjson m "$maxpid" '.[] | select(.pid != 0 and .pid <= $m and .kernel_thread == false) |
		"\(.pid) \(.ppid) \(.tgid) \(.comm)"' | sort)
	if [[ -n $ours && $ours == "$theirs" ]]; then
		ok "ps equals the guest's /proc ($(wc -l <<<"$ours") user threads)"
	else
		bad "ps differs from the guest's /proc (< /proc, > ps):"; diff <(echo "$theirs") <(echo "$ours") | head -8 | sed 's/^/       /'
	fi
	# command lines and ids against the guest's own /proc (processes with a command line; ids of every process)
	psj=$("$BIN" ps --pid "$pid" --qmp "$TMP/qmp.sock" --json 2>/dev/null)
	theirs=$(tr -d '\r' <"$TMP/serial.log" | awk '$1 == "VMOT-C" && NF > 2 { $1 = ""; sub(/^ /, ""); sub(/ +$/, ""); print }' | sort)
	ours=$(jq -r --argjson m "$maxpid" '.[] | select(.kernel_thread == false and .pid == .tgid and .pid <= $m and (.cmdline | length) > 0) |
		"\(.pid) \(.cmdline | join(" "))"' <<<"$psj" | sort)
	if [[ -n $ours && $ours == "$theirs" ]]; then
		ok "command lines equal /proc/PID/cmdline ($(wc -l <<<"$ours") processes)"
	else
		bad "command lines differ (< /proc, > ps):"; diff <(echo "$theirs") <(echo "$ours") | head -6 | sed 's/^/       /'
	fi
	# user-space processes: the guest's listing without kthreadd and its children
	theirs=$(tr -d '\r' <"$TMP/serial.log" | awk '$1 == "VMOT-P" && $2 == $4 && $2 != 2 && $3 != 2 { user[$2] = 1 }
		$1 == "VMOT-U" && NF == 6 && user[$2] { print $2, $3, $4, $5, $6 }' | sort)
	ours=$(jq -r --argjson m "$maxpid" '.[] | select(.pid == .tgid and .pid != 0 and .pid <= $m and .kernel_thread == false) |
		"\(.pid) \(.uid) \(.euid) \(.gid) \(.egid)"' <<<"$psj" | sort)
	if [[ -n $ours && $ours == "$theirs" ]] && grep -q ' 1000 1000 100 100$' <<<"$ours"; then
		ok "uid/euid/gid/egid equal /proc/PID/status ($(wc -l <<<"$ours") processes, one of them 1000/100)"
	else
		bad "ids differ (< /proc, > ps):"; diff <(echo "$theirs") <(echo "$ours") | head -6 | sed 's/^/       /'
	fi
	# live: the current task of each vCPU, switch events naming the guest's own processes
	timeout 60 "$BIN" live --pid "$pid" --qmp "$TMP/qmp.sock" --json -d 4 >"$TMP/live.jsonl" 2>"$TMP/live.err"; rc=$?
	nsw=$(jq -s '[.[] | select(.event == "switch")] | length' "$TMP/live.jsonl" 2>/dev/null)
	busy=$(tr -d '\r' <"$TMP/serial.log" | sed -n 's/^VMOT-BUSY //p' | head -n1)
	onbusy=$(jq -s --argjson p "${busy:-0}" '[.[] | select(.event == "switch" and .pid == $p)] | length' "$TMP/live.jsonl" 2>/dev/null)
	if ((rc == 0 && ${nsw:-0} > 0 && ${onbusy:-0} > 0)) && ! grep -q 'gone\|Error' "$TMP/live.err"; then
		ok "live: $nsw switch events, $onbusy onto the guest's busy loop (pid $busy); $(grep -o 'current task at [^;]*' "$TMP/live.err" | head -n1)"
	else
		# with --json an error may come as a JSON line on stdout: both are shown
		bad "live: exit $rc, ${nsw:-0} switches, ${onbusy:-0} onto pid ${busy:-?}: $(grep -v '^mode:\|^switch events' "$TMP/live.err" | head -n2) $(grep -v '"event"' "$TMP/live.jsonl" | head -n2)"
	fi
	# record and report: a session of the same guest, its busy loop on top of the sampled on-CPU time
	timeout 60 "$BIN" record --pid "$pid" --qmp "$TMP/qmp.sock" -d 3 -o "$TMP/s.vmot" >/dev/null 2>"$TMP/rec.err"; rc=$?
	rep=$("$BIN" -j report -i "$TMP/s.vmot" 2>"$TMP/rep.err")
	top=$(jq -r '[.processes[]? | select(.pid != 0)] | max_by(.sampled_vcpu_time_ns // 0) | .pid' <<<"$rep" 2>/dev/null)
	if ((rc == 0)) && [[ $(jq -r .integrity.intact <<<"$rep" 2>/dev/null) == true && $top == "$busy" ]]; then
		ok "record/report: session intact, $(jq '.events | length' <<<"$rep") events, the busy loop (pid $busy) on top"
	else
		bad "record exit $rc, report: intact $(jq -r .integrity.intact <<<"$rep" 2>/dev/null), top pid ${top:-?} (busy $busy): $(tail -n1 "$TMP/rec.err" "$TMP/rep.err" | tr '\n' ' ')"
	fi
	# the pid allocator (lost counting), found by watching it step with the guest's new pids: where it is and
	# what points to it equal the DWARF
	line=$(grep -m1 "pid allocator" "$TMP/live.err")
	if [[ $line == *"pid allocator found"* ]]; then
		off=$(sed -n 's/.*init_pid_ns 0x[0-9a-f]* +\([0-9]*\) .*/\1/p' <<<"$line")
		reaper=$(sed -n 's/.*child_reaper +\([0-9]*\).*/\1/p' <<<"$line")
		tpid=$(sed -n 's/.*thread_pid +\([0-9]*\).*/\1/p' <<<"$line")
		nr=$(sed -n 's/.*upid.nr +\([0-9]*\).*/\1/p' <<<"$line")
		if [[ -z $truth ]]; then
			ok "pid allocator found: init_pid_ns +$off, child_reaper +$reaper, thread_pid +$tpid, upid.nr +$nr (no DWARF to compare)"
		elif [[ $off == "$(jq -r '.pidns_idr_next // .pidns_last_pid' <<<"$truth")" && $reaper == "$(jq -r .pidns_child_reaper <<<"$truth")" &&
		      $tpid == "$(jq -r .thread_pid <<<"$truth")" && $nr == "$(jq -r .pid_numbers <<<"$truth")" ]]; then
			ok "pid allocator at init_pid_ns +$off, child_reaper +$reaper, thread_pid +$tpid, upid.nr +$nr = DWARF"
		else
			bad "pid allocator +$off/+$reaper/+$tpid/+$nr, DWARF $(jq -c '{pidns_idr_next, pidns_last_pid, pidns_child_reaper, thread_pid, pid_numbers}' <<<"$truth")"
		fi
	else
		bad "pid allocator: ${line:-not found in 4 s of new pids}"
	fi
	kill "$qpid" 2>/dev/null; wait "$qpid" 2>/dev/null; qpid=
done

((fails == 0)) || { echo "$fails check(s) failed"; exit 1; }
echo "all checks passed"
