#!/usr/bin/env bash
# guest.sh — boot a small Debian-kernel guest under QEMU with a known workload, for tests and the demo.
#
#   guest.sh start [options]       boot, wait for VMOT-READY, print shell-sourceable KEY=VALUE lines:
#                                    GUEST_PID GUEST_QMP GUEST_SERIAL GUEST_SERIAL_SOCK GUEST_RUN_DIR GUEST_NAME
#                                    GUEST_KERNEL GUEST_RELEASE GUEST_SMP GUEST_MEM GUEST_ACCEL GUEST_PTI
#                                    GUEST_LA57 GUEST_PAGING GUEST_BOOT_SECONDS
#                                  (GUEST_PTI and GUEST_PAGING are what the guest reports it really uses)
#                                  (also written to RUN_DIR/guest.env)
#   guest.sh stop RUN_DIR|PID      kill that QEMU (TERM, then KILL)
#   guest.sh ps RUN_DIR            ask the guest for a fresh process list; print "pid ppid tgid comm" lines,
#                                  sorted by pid
#   guest.sh traced RUN_DIR        the ptrace pairs of the latest list: "tracee_pid tracer_pid" lines
#   guest.sh acct RUN_DIR [COMM..] the guest's own per-thread CPU accounting now: a first line "uptime S0 S1"
#                                  (the guest's /proc/uptime before and after the listing), /proc/stat's
#                                  "cpu ..." line, then one "tid tgid comm utime stime vcsw nvcsw run_ns
#                                  wait_ns slices" line per thread (of those names, when given)
#   guest.sh cmdline RUN_DIR       every process's argv now: "pid ARGS" lines, the arguments separated by \037
#   guest.sh ids RUN_DIR           every process's real and effective ids now: "pid uid euid gid egid" lines
#   guest.sh maps RUN_DIR          every process's /proc/PID/exe ("E pid path") and each vmot-* process's
#                                  /proc/PID/maps lines ("M pid line")
#                                  (the NULs of /proc/PID/cmdline), sorted by pid; kernel threads "pid " alone
#   guest.sh initramfs             build (or find in the cache) the initramfs and print its path
#
# start options:
#   --kernel DIR|VMLINUZ|SUITE  a kernel-zoo dir (scripts/fetch-kernel.sh output), a bzImage, or a suite/alias
#                               fetched on the fly (bullseye|bookworm|trixie|sid|5.10|6.1|6.12|7); default bookworm
#   --smp N (1..4, default 1)  --mem SIZE (default 512M)
#   --kvm                       -enable-kvm -cpu qemu64,-cx16 (one line and exit 1 if /dev/kvm is unusable);
#                               default TCG with -cpu max,la57=off
#   --pti on|off                pti=on / pti=off on the kernel command line (default: the kernel decides; TCG's
#                               -cpu max is "not affected" by Meltdown, so PTI is off unless --pti on)
#   --la57                      CPU with LA57 (-cpu max,+la57); GUEST_PAGING reports what the guest really uses
#                               (5 only if the kernel was built with 5-level paging support)
#   --nokaslr                   KASLR is on by default (kaslr on the command line)
#   --reboot                    a guest reboot (or QMP system_reset) restarts the guest; by default QEMU
#                               runs with -no-reboot and exits instead
#   --qmp PATH                  QMP socket (default RUN_DIR/qmp.sock)
#   --run-dir DIR               where sockets/logs go (default: a new /tmp/vmot.XXXXXX)
#   --name NAME                 QEMU -name vmot-NAME (default vmot-<release>-<n>)
#   --uuid UUID                 QEMU -uuid UUID (the VM's UUID, as libvirt passes its domain's)
#   --ps-interval SEC           also print a process list (SEQ t1, t2, ...) every SEC seconds of guest
#                               inactivity (default 0: only when asked)
#   --churn MS                  after READY keep starting short-lived "vmot-churn" processes every MS ms
#   --append ARGS               extra kernel command-line arguments
#   --timeout SEC               how long to wait for VMOT-READY (default 180)
#   --owner PID                 kill QEMU when PID exits (default: the caller, $PPID; 0 = never)
#
# The guest (an initramfs with busybox-static and tests/guest/workload.c built with gcc -static) runs, as /init:
#   sleep (x2, busybox applet), vmot-sleep-a/-b/-c (symlinks to workload: comm = link name),
#   vmot-long-name-truncated (comm "vmot-long-name-", 15 bytes), vmot-mt with threads vmot-thr-1..4,
#   vmot-tree0 → vmot-tree1 → vmot-tree2 (3 deep), vmot-tracee and vmot-tracer (the tracer PTRACE_SEIZEs the
#   tracee, which is init's child, not the tracer's: parent != real_parent), vmot-renamed (prctl rename), and
#   before READY a burst of 20 short-lived vmot-churn processes (freed task_structs, pid gaps).
# Everything is started before READY and then sleeps, so after VMOT-READY the user-space process set is stable
# (kernel worker threads may still come and go; --churn adds deliberate instability).
#
# Serial console protocol (RUN_DIR/serial.log; commands go in through RUN_DIR/serial.sock):
#   VMOT-INFO key=value          release, cpus, paging (4|5), pti (on|off: X86_FEATURE_PTI in effect),
#                                meltdown (the sysfs vulnerability line), cmdline
#   VMOT-PS-BEGIN SEQ            then one "pid ppid tgid comm" line per task (threads included, from
#                                /proc/*/task/*/status; ppid = real parent's tgid, as /proc shows it)
#   VMOT-PS-END SEQ
#   VMOT-TRACE SEQ TRACEE TRACER one line per traced task, right after VMOT-PS-END SEQ
#   VMOT-READY                   once, after the first list (SEQ 0)
#   VMOT-ACCT-BEGIN SEQ uptime=S then /proc/stat's "cpu ..." line and per thread "tid tgid comm utime stime
#                                vcsw nvcsw run_ns wait_ns slices" (stat's utime/stime in clock ticks,
#                                status's context switches, schedstat); "acct SEQ COMM..": those threads only
#   VMOT-ACCT-END SEQ uptime=S
#   host → guest: "ps SEQ" (a fresh list), "churn N" (N short-lived processes), "ping" (→ VMOT-PONG),
#                 "acct SEQ" (the accounting above), "busy COMM THREADS DUTY% [PERIOD_MS]" (a CPU-bound
#                 program, see workload.c),
#                 "life TAG [MS]" (a known fork → exec → exit sequence, see workload.c; the guest prints
#                 "VMOT-LIFE TAG start|fork|exec|exit|end pid=P ppid=Q comm=C" lines)
#                 "spawn N MS [GAP]" (N children alive MS ms each, one every GAP ms; the guest prints
#                 "VMOT-SPAWN begin pid=P", "VMOT-SPAWN child pid=C" per child, "VMOT-SPAWN end n=N")
# The listing is done by init itself with shell builtins only, so listing creates no process.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
CACHE=${VMOFFSET_CACHE:-/var/cache/vmoffset-trace}
QEMU=${QEMU:-qemu-system-x86_64}

die() { echo "guest: $*" >&2; exit 1; }
say() { [[ -n "${GUEST_QUIET:-}" ]] || echo "guest: $*" >&2; }

# ---------------------------------------------------------------------------------------------------------
# The guest's /init
# ---------------------------------------------------------------------------------------------------------
read -r -d '' INIT_SCRIPT <<'INIT' || true
#!/bin/sh
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mkdir -p /run /tmp /dev/pts
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /tmp
echo 1 >/proc/sys/kernel/printk
stty -echo -onlcr 2>/dev/null

interval=0; churn=0; tick=0
for a in $(cat /proc/cmdline); do
	case $a in
	vmot.ps=*) interval=${a#vmot.ps=} ;;
	vmot.churn=*) churn=${a#vmot.churn=} ;;
	esac
done

vmot_ps() {
	echo "VMOT-PS-BEGIN $1"
	traced=""
	for t in /proc/[0-9]*/task/[0-9]*; do
		name=""; pid=""; ppid=""; tgid=""; tr=0
		while read -r k v; do
			case $k in
			Name:) name=$v ;;
			Tgid:) tgid=$v ;;
			Pid:) pid=$v ;;
			PPid:) ppid=$v ;;
			TracerPid:) tr=$v; break ;;
			esac
		done <"$t/status" 2>/dev/null
		[ -n "$pid" ] || continue
		echo "$pid $ppid $tgid $name"
		[ "$tr" != 0 ] && traced="$traced $pid:$tr"
	done
	echo "VMOT-PS-END $1"
	for p in $traced; do echo "VMOT-TRACE $1 ${p%%:*} ${p#*:}"; done
}

# Every process's argv: "pid LEN ARGS" with the NULs of /proc/PID/cmdline turned into \037 (unit separator), so
# the argument boundaries survive; kernel threads have none. LEN (the length of ARGS) lets the host notice a line
# the serial transport damaged (seen: a byte doubled in a long listing) and ask again; the end line's count of
# lines, one damaged so badly that it no longer looks like a line of the listing.
vmot_cmdline() {
	echo "VMOT-CMDLINE-BEGIN $1"
	n=0
	for d in /proc/[0-9]*; do
		[ -r "$d/cmdline" ] || continue
		a=$(tr '\000' '\037' <"$d/cmdline" 2>/dev/null)
		echo "${d#/proc/} ${#a} $a"; n=$((n + 1))
	done
	echo "VMOT-CMDLINE-END $1 $n"
}

# Every process's ids as /proc/PID/status says: "pid uid euid gid egid" (real and effective; builtins only).
vmot_ids() {
	echo "VMOT-IDS-BEGIN $1"
	for d in /proc/[0-9]*; do
		u=""; g=""
		[ -r "$d/status" ] || continue
		while read -r k a b c e; do
			case $k in Uid:) u="$a $b" ;; Gid:) g="$a $b" ;; esac
		done <"$d/status" 2>/dev/null
		[ -n "$u" ] && echo "${d#/proc/} $u $g"
	done
	echo "VMOT-IDS-END $1"
}

# Every process's executable (/proc/PID/exe: "E pid LEN path", empty for kernel threads) and the maps of the
# workload's processes ("M pid LEN line" for each line of /proc/PID/maps of every vmot-* process); LEN and the
# end line's count as above.
vmot_maps() {
	echo "VMOT-MAPS-BEGIN $1"
	n=0
	for d in /proc/[0-9]*; do
		read -r c <"$d/comm" 2>/dev/null || continue
		x=$(readlink "$d/exe" 2>/dev/null)
		echo "E ${d#/proc/} ${#x} $x"; n=$((n + 1))
		case $c in vmot-churn*|vmot-spawn) ;; vmot-*) while read -r l; do echo "M ${d#/proc/} ${#l} $l"; n=$((n + 1)); done <"$d/maps" 2>/dev/null ;; esac
	done
	echo "VMOT-MAPS-END $1 $n"
}

# The guest's own CPU accounting, per thread (builtins only): tid tgid comm utime stime (clock ticks, from
# /proc/PID/task/TID/stat) vcsw nvcsw (voluntary/nonvoluntary_ctxt_switches of status) run_ns wait_ns slices
# (schedstat; "- - -" without CONFIG_SCHED_INFO), between lines carrying /proc/uptime, after the cpu line of
# /proc/stat (all CPUs, clock ticks). "acct SEQ COMM..." lists only the threads of those names: on a busy
# guest a full listing takes seconds, and the window's ends should be sharp.
vmot_acct() {
	seq=$1; shift
	read -r up idle </proc/uptime
	echo "VMOT-ACCT-BEGIN $seq uptime=$up"
	read -r cpu rest </proc/stat
	echo "$cpu $rest"
	for t in /proc/[0-9]*/task/[0-9]*; do
		if [ $# -gt 0 ]; then
			read -r c <"$t/comm" 2>/dev/null || continue
			want=0
			for w in "$@"; do [ "$c" = "$w" ] && want=1; done
			[ $want = 1 ] || continue
		fi
		tid=""; tgid=""; vcsw=""; nvcsw=""
		read -r tid comm st ppid pgrp sess tty tpgid flags minflt cminflt majflt cmajflt utime stime rest \
			<"$t/stat" 2>/dev/null || continue
		while read -r k v; do
			case $k in
			Tgid:) tgid=$v ;;
			voluntary_ctxt_switches:) vcsw=$v ;;
			nonvoluntary_ctxt_switches:) nvcsw=$v ;;
			esac
		done <"$t/status" 2>/dev/null
		run="-"; wait="-"; slices="-"
		read -r run wait slices <"$t/schedstat" 2>/dev/null
		comm=${comm#(}; comm=${comm%)}
		[ -n "$tgid" ] && echo "$tid $tgid $comm $utime $stime $vcsw $nvcsw $run $wait $slices"
	done
	read -r up idle </proc/uptime
	echo "VMOT-ACCT-END $seq uptime=$up"
}

echo "VMOT-BOOT"
/bin/sleep 1000000 &
/bin/sleep 1000001 &
/bin/vmot-sleep-a &
/bin/vmot-sleep-b &
/bin/vmot-sleep-c &
/bin/vmot-long-name-truncated &
/bin/workload threads 4 &
/bin/workload tree 3 &
/bin/workload tracee &
tracee=$!
/bin/workload rename vmot-renamed &
/bin/workload ids vmot-user 1000 1000 1000 100 100 100 &
/bin/workload ids vmot-setid 1001 1002 1003 201 202 203 &
# memory maps (issue 14): a process with many mappings and a 6 KiB argv; the same from a copy on /tmp (a tmpfs
# mount: its path crosses a mount) and from a copy deleted once it runs (" (deleted)")
/bin/workload maps vmot-maps 40 &
cp /bin/workload /tmp/vmot-tmp && /tmp/vmot-tmp maps vmot-tmp 6 &
cp /bin/workload /tmp/vmot-del && /tmp/vmot-del maps vmot-del 3 &
/bin/workload churn 20
n=0
while [ ! -e /run/vmot/ready/vmot-tracee ] && [ $n -lt 300 ]; do /bin/sleep 0.1; n=$((n + 1)); done
/bin/workload tracer $tracee &
[ "$churn" != 0 ] && /bin/workload churnd $churn &

want="vmot-sleep-a vmot-sleep-b vmot-sleep-c vmot-long-name- vmot-mt vmot-tree vmot-tracee vmot-tracer vmot-renamed vmot-user vmot-setid vmot-maps vmot-tmp vmot-del"
n=0
while [ $n -lt 600 ]; do
	missing=""
	for w in $want; do [ -e /run/vmot/ready/$w ] || missing="$missing $w"; done
	[ -z "$missing" ] && break
	/bin/sleep 0.1; n=$((n + 1))
done
[ -n "$missing" ] && echo "VMOT-ERROR workload not ready:$missing"
rm -f /tmp/vmot-del

echo "VMOT-INFO release=$(uname -r)"
echo "VMOT-INFO cpus=$(grep -c ^processor /proc/cpuinfo)"
echo "VMOT-INFO paging=$(/bin/workload paging)"
if grep -qw pti /proc/cpuinfo; then echo "VMOT-INFO pti=on"; else echo "VMOT-INFO pti=off"; fi
echo "VMOT-INFO meltdown=$(cat /sys/devices/system/cpu/vulnerabilities/meltdown 2>/dev/null | tr ' ' _)"
echo "VMOT-INFO cmdline=$(cat /proc/cmdline)"
vmot_ps 0
echo "VMOT-READY"

# After READY: no forks unless asked (read, echo, case, [ and the listing are builtins).
while :; do
	if [ "$interval" -gt 0 ]; then
		cmd=""; read -r -t "$interval" cmd arg; rc=$?
		# a timeout is status >128 in bash but 1 in busybox ash: any failure without a command is a tick
		if [ $rc -ne 0 ] && [ -z "$cmd" ]; then tick=$((tick + 1)); vmot_ps "t$tick"; continue; fi
	else
		read -r cmd arg; rc=$?
	fi
	if [ $rc -ne 0 ]; then /bin/sleep 5; continue; fi
	case $cmd in
	ps) vmot_ps "$arg" ;;
	cmdline) vmot_cmdline "$arg" ;;
	ids) vmot_ids "$arg" ;;
	maps) vmot_maps "$arg" ;;
	churn) /bin/workload churn "${arg:-20}" ;;
	life) /bin/workload life $arg & ;;
	spawn) /bin/workload spawn $arg & ;;
	busy) /bin/workload busy $arg & ;;
	mapsproc) /bin/workload maps vmot-bench "${arg:-500}" & ;;
	acct) vmot_acct $arg ;;
	ping) echo "VMOT-PONG $arg" ;;
	esac
done
INIT

# ---------------------------------------------------------------------------------------------------------
# initramfs: busybox-static + workload, cached by content hash
# ---------------------------------------------------------------------------------------------------------
find_busybox() {
	local b
	for b in /bin/busybox /usr/bin/busybox; do
		[[ -x "$b" ]] || continue
		# busybox-static's binary has no PT_INTERP
		if ! LC_ALL=C readelf -l "$b" 2>/dev/null | grep -q 'Requesting program interpreter'; then echo "$b"; return 0; fi
	done
	return 1
}

build_initramfs() {
	local bb key dir out tmp
	bb=$(find_busybox) || die "no static busybox (apt-get install busybox-static)"
	command -v cpio >/dev/null || die "missing cpio (apt-get install cpio)"
	key=$({ printf '%s' "$INIT_SCRIPT"; cat "$ROOT/tests/guest/workload.c"; sha256sum <"$bb"; gcc --version | head -n1; echo v1; } |
		sha256sum | cut -c1-16)
	dir=$CACHE/initramfs; out=$dir/vmot-$key.cpio.gz
	if [[ -s "$out" ]]; then echo "$out"; return 0; fi
	mkdir -p "$dir"
	tmp=$(mktemp -d "$dir/.build.XXXXXX")
	mkdir -p "$tmp/root/bin" "$tmp/root/proc" "$tmp/root/sys" "$tmp/root/dev" "$tmp/root/run" "$tmp/root/tmp"
	cp "$bb" "$tmp/root/bin/busybox"
	local a
	for a in $("$bb" --list); do [[ "$a" == busybox ]] || ln -s busybox "$tmp/root/bin/$a"; done
	gcc -static -pthread -O2 -o "$tmp/root/bin/workload" "$ROOT/tests/guest/workload.c" 2>"$tmp/gcc.log" ||
		{ cat "$tmp/gcc.log" >&2; rm -rf "$tmp"; die "cannot build tests/guest/workload.c (gcc -static -pthread; needs libc6-dev)"; }
	for a in vmot-sleep-a vmot-sleep-b vmot-sleep-c vmot-long-name-truncated; do ln -s workload "$tmp/root/bin/$a"; done
	printf '%s\n' "$INIT_SCRIPT" >"$tmp/root/init"
	chmod 755 "$tmp/root/init"
	# /init runs under busybox sh
	sed -i '1s|.*|#!/bin/busybox sh|' "$tmp/root/init"
	(cd "$tmp/root" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet | gzip -9n) >"$tmp/out.cpio.gz"
	mv "$tmp/out.cpio.gz" "$out"; rm -rf "$tmp"
	echo "$out"
}

# ---------------------------------------------------------------------------------------------------------
# start
# ---------------------------------------------------------------------------------------------------------
resolve_kernel() {   # -> sets KIMG (bzImage) and KDIR (zoo dir or empty)
	local k=$1
	if [[ -d "$k" ]]; then
		KDIR=$(cd "$k" && pwd); KIMG=$KDIR/vmlinuz
		[[ -r "$KIMG" ]] || die "$k has no vmlinuz"
	elif [[ -f "$k" ]]; then
		KIMG=$(cd "$(dirname "$k")" && pwd)/$(basename "$k"); KDIR=""
		[[ -r "$(dirname "$KIMG")/release" ]] && KDIR=$(dirname "$KIMG")
	else
		local flavour=amd64
		case "$k" in *:*) flavour=${k#*:}; k=${k%%:*} ;; esac
		KDIR=$("$HERE/fetch-kernel.sh" "$k" "$flavour") || die "cannot fetch kernel '$k'"
		KIMG=$KDIR/vmlinuz
	fi
}

q() { printf '%q' "$1"; }

cmd_start() {
	local kernel=bookworm smp=1 mem=512M kvm=0 pti="" la57=0 kaslr=1 qmp="" run="" name="" interval=0
	local churn=0 append="" timeout=180 owner=$PPID noreboot=(-no-reboot) uuid=
	while (($#)); do
		case "$1" in
			--kernel) kernel=$2; shift ;;
			--smp) smp=$2; shift ;;
			--mem) mem=$2; shift ;;
			--kvm) kvm=1 ;;
			--pti) pti=$2; shift ;;
			--la57) la57=1 ;;
			--nokaslr) kaslr=0 ;;
			--reboot) noreboot=() ;;
			--qmp) qmp=$2; shift ;;
			--run-dir) run=$2; shift ;;
			--name) name=$2; shift ;;
			--uuid) uuid=$2; shift ;;
			--ps-interval) interval=$2; shift ;;
			--churn) churn=$2; shift ;;
			--append) append=$2; shift ;;
			--timeout) timeout=$2; shift ;;
			--owner) owner=$2; shift ;;
			*) die "unknown option $1 (see the header of scripts/guest.sh)" ;;
		esac
		shift
	done
	[[ "$smp" =~ ^[1-4]$ ]] || die "--smp must be 1..4"
	[[ -z "$pti" || "$pti" == on || "$pti" == off ]] || die "--pti must be on or off"
	command -v "$QEMU" >/dev/null || die "missing $QEMU (apt-get install qemu-system-x86)"

	local accel=() cpu
	if ((kvm)); then
		[[ -e /dev/kvm ]] || die "--kvm: /dev/kvm does not exist (no KVM on this host; drop --kvm to use TCG)"
		[[ -r /dev/kvm && -w /dev/kvm ]] || die "--kvm: /dev/kvm is not accessible (need root or the kvm group)"
		accel=(-enable-kvm); cpu="qemu64,-cx16"; ((la57)) && cpu+=",+la57"
	else
		accel=(-accel tcg); cpu="max,la57=off"; ((la57)) && cpu="max,+la57"
	fi

	local KIMG KDIR release initrd
	resolve_kernel "$kernel"
	release=""; [[ -n "$KDIR" && -r "$KDIR/release" ]] && release=$(cat "$KDIR/release")
	initrd=$(build_initramfs)

	if [[ -z "$run" ]]; then run=$(mktemp -d /tmp/vmot.XXXXXX); else mkdir -p "$run"; run=$(cd "$run" && pwd); fi
	[[ -n "$qmp" ]] || qmp=$run/qmp.sock
	[[ -n "$name" ]] || { name=$(basename "$run"); name=${release:-guest}-${name#vmot.}; }
	local serial=$run/serial.log sock=$run/serial.sock
	rm -f "$serial" "$sock" "$qmp" "$run/qemu.pid"

	# tsc=unstable: the sched_clock static key is never flipped once other vCPUs run. Otherwise late init
	# sets it (TSC stable) and, on a busy host, the clocksource watchdog clears it again; each flip patches
	# code other vCPUs run through, and MTTCG's handling of that cross-modifying code can hit the int3 of
	# text_poke ("Oops: int3" in sched_clock_tick at 2.7 s, in sched_clock_cpu at 16 s: 7.2, 4 vCPUs). KVM
	# guests, which real users run, have no such window.
	local cmdline="console=ttyS0,115200 panic=-1 quiet loglevel=1 rdinit=/init tsc=unstable"
	((kaslr)) && cmdline+=" kaslr" || cmdline+=" nokaslr"
	[[ -n "$pti" ]] && cmdline+=" pti=$pti"
	((interval > 0)) && cmdline+=" vmot.ps=$interval"
	((churn > 0)) && cmdline+=" vmot.churn=$churn"
	[[ -n "$append" ]] && cmdline+=" $append"

	local args=(
		-name "vmot-$name" -nodefaults -no-user-config -display none "${noreboot[@]}"
		"${accel[@]}" -cpu "$cpu" -smp "$smp" -m "$mem"
		-kernel "$KIMG" -initrd "$initrd" -append "$cmdline"
		-chardev "socket,id=ser0,path=$sock,server=on,wait=off,logfile=$serial,logappend=off"
		-serial chardev:ser0
		-qmp "unix:$qmp,server=on,wait=off"
		-pidfile "$run/qemu.pid"
	)
	[[ -n "$uuid" ]] && args+=(-uuid "$uuid")
	printf '%q ' "$QEMU" "${args[@]}" >"$run/qemu.cmd"; echo >>"$run/qemu.cmd"
	local t0 qpid attempt=1
	# A stock kernel that panics before READY under TCG (seen once in ~60 boots of 6.12 cloud, 2 vCPUs: "Fatal
	# exception in interrupt" at 1.2 s; MTTCG's cross-modifying code, like the int3 above) has not met the code
	# under test yet: boot once more, say so, and keep the panicked attempt's serial log.
	while :; do
		rm -f "$sock" "$qmp" "$run/qemu.pid"
		t0=$(date +%s.%N)
		setsid "$QEMU" "${args[@]}" </dev/null >"$run/qemu.log" 2>&1 &
		qpid=$!
		# watchdog: QEMU must not outlive its owner (the calling test), even if the owner is SIGKILLed
		if [[ "$owner" != 0 ]]; then
			setsid bash -c 'while kill -0 "$1" 2>/dev/null && kill -0 "$2" 2>/dev/null; do sleep 1; done
				kill "$2" 2>/dev/null; sleep 3; kill -9 "$2" 2>/dev/null; exit 0' \
				vmot-guest-watchdog "$owner" "$qpid" </dev/null >/dev/null 2>&1 &
		fi
		say "booting ${release:-$KIMG} (smp=$smp, $( ((kvm)) && echo kvm || echo tcg), cpu $cpu) in $run"

		local deadline=$((SECONDS + timeout)) exited=""
		while :; do
			if ! kill -0 "$qpid" 2>/dev/null; then
				exited="$(tail -n 3 "$run/qemu.log" "$serial" 2>/dev/null | tr -d '\r' | grep -v '^$' | tail -n 3 | tr '\n' ' ')"
				break
			fi
			if [[ -f "$serial" ]] && grep -q '^VMOT-READY' <(tr -d '\r' <"$serial"); then break; fi
			if ((SECONDS >= deadline)); then
				kill "$qpid" 2>/dev/null || true
				die "no VMOT-READY within ${timeout}s (serial log: $serial)"
			fi
			sleep 0.2
		done
		[[ -n "$exited" ]] || break
		if ((attempt == 1)) && tr -d '\r' <"$serial" 2>/dev/null | grep -q 'Kernel panic'; then
			cp "$serial" "$run/serial.panic.log" 2>/dev/null || true
			say "the kernel panicked during boot ($(tr -d '\r' <"$serial" | grep -m1 -o 'Kernel panic.*' | cut -c1-80)); booting once more (log: $run/serial.panic.log)"
			attempt=2
			continue
		fi
		die "QEMU exited during boot: $exited"
	done
	local boot paging ptistate
	boot=$(echo "$(date +%s.%N) - $t0" | bc 2>/dev/null || awk -v a="$(date +%s.%N)" -v b="$t0" 'BEGIN { printf "%.1f", a - b }')
	boot=$(printf '%.1f' "$boot")
	paging=$(tr -d '\r' <"$serial" | sed -n 's/^VMOT-INFO paging=//p' | head -n1)
	ptistate=$(tr -d '\r' <"$serial" | sed -n 's/^VMOT-INFO pti=//p' | head -n1)
	grep -q '^VMOT-ERROR' <(tr -d '\r' <"$serial") && say "warning: $(tr -d '\r' <"$serial" | grep -m1 '^VMOT-ERROR')"
	if ((la57)) && [[ "$paging" != 5 ]]; then say "note: --la57 given but the guest uses $paging-level paging (kernel without 5-level support?)"; fi
	{
		echo "GUEST_PID=$qpid"
		echo "GUEST_QMP=$(q "$qmp")"
		echo "GUEST_SERIAL=$(q "$serial")"
		echo "GUEST_SERIAL_SOCK=$(q "$sock")"
		echo "GUEST_RUN_DIR=$(q "$run")"
		echo "GUEST_NAME=$(q "vmot-$name")"
		echo "GUEST_KERNEL=$(q "${KDIR:-$KIMG}")"
		echo "GUEST_RELEASE=$(q "$release")"
		echo "GUEST_SMP=$smp"
		echo "GUEST_MEM=$(q "$mem")"
		echo "GUEST_ACCEL=$( ((kvm)) && echo kvm || echo tcg)"
		echo "GUEST_PTI=${ptistate:-unknown}"
		echo "GUEST_LA57=$la57"
		echo "GUEST_PAGING=${paging:-unknown}"
		echo "GUEST_BOOT_SECONDS=$boot"
	} | tee "$run/guest.env"
	say "ready in ${boot}s: pid $qpid, qmp $qmp, serial $serial"
}

load_env() {   # load_env RUN_DIR|PID
	local a=${1:-}
	[[ -n "$a" ]] || die "which guest? give its RUN_DIR (or QEMU pid for stop)"
	if [[ -d "$a" ]]; then
		[[ -r "$a/guest.env" ]] || die "$a/guest.env not found"
		# shellcheck disable=SC1091
		source "$a/guest.env"
	elif [[ "$a" =~ ^[0-9]+$ ]]; then
		GUEST_PID=$a; GUEST_RUN_DIR=""
	else
		die "no such run dir: $a"
	fi
}

cmd_stop() {
	load_env "${1:-}"
	local pid=$GUEST_PID
	if ! kill -0 "$pid" 2>/dev/null; then return 0; fi
	# only kill what is really a QEMU process
	grep -q qemu "/proc/$pid/cmdline" 2>/dev/null || die "pid $pid is not a QEMU process"
	kill "$pid" 2>/dev/null || true
	for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
	kill -9 "$pid" 2>/dev/null || true
}

serial_send() {   # serial_send SOCK LINE
	if command -v socat >/dev/null; then
		printf '%s\n' "$2" | timeout 10 socat -t 0.5 - "UNIX-CONNECT:$1" >/dev/null
	else
		timeout 10 python3 -c 'import socket,sys,time; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall((sys.argv[2]+"\n").encode()); time.sleep(0.3)' "$1" "$2"
	fi
}

# serial_request WHAT COMMAND END PREFIX [ARGS...]: one request to the guest of RUN_DIR (loaded), numbered
# PREFIX<n> (ps.seq counts them; the ps lock keeps requests apart), sent as "COMMAND SEQ ARGS"; waits until the
# guest printed "END SEQ" and prints SEQ. WHAT names the answer in the timeout message.
serial_request() {
	local what=$1 command=$2 end=$3 prefix=$4 seqf seq
	shift 4
	[[ -n "${GUEST_RUN_DIR:-}" ]] || die "$command needs a RUN_DIR"
	kill -0 "$GUEST_PID" 2>/dev/null || die "guest $GUEST_RUN_DIR is not running"
	seqf=$GUEST_RUN_DIR/ps.seq
	exec 8>>"$GUEST_RUN_DIR/ps.lock"; flock -w 60 8 || die "ps lock busy"
	seq=$prefix$(($(cat "$seqf" 2>/dev/null || echo 0) + 1)); echo "${seq#"$prefix"}" >"$seqf"
	serial_send "$GUEST_SERIAL_SOCK" "$command $seq${*:+ $*}" || die "cannot write to $GUEST_SERIAL_SOCK"
	local deadline=$((SECONDS + ${GUEST_PS_TIMEOUT:-60}))
	until tr -d '\r' <"$GUEST_SERIAL" | grep -q "^$end $seq\( \|\$\)"; do
		((SECONDS < deadline)) || die "no $what from the guest within ${GUEST_PS_TIMEOUT:-60}s"
		sleep 0.1
	done
	echo "$seq"
}

cmd_ps() {
	load_env "${1:-}"
	local seq
	seq=$(serial_request "process list" ps VMOT-PS-END "") || exit 1
	sleep 0.2   # the VMOT-TRACE lines follow the end marker
	tr -d '\r' <"$GUEST_SERIAL" | awk -v s="$seq" '$0 == "VMOT-PS-BEGIN " s { on = 1; next } $0 == "VMOT-PS-END " s { exit } on && /^[0-9]+ [0-9]+ [0-9]+ / { print }' |
		sort -n -k1,1
}

cmd_acct() {
	load_env "${1:-}"
	shift || true
	local seq
	seq=$(serial_request accounting acct VMOT-ACCT-END a "$@") || exit 1
	tr -d '\r' <"$GUEST_SERIAL" | awk -v s="$seq" '
		$1 == "VMOT-ACCT-BEGIN" && $2 == s { on = 1; sub("uptime=", "", $3); u0 = $3; next }
		$1 == "VMOT-ACCT-END" && $2 == s { sub("uptime=", "", $3); print "uptime", u0, $3; for (i = 0; i < n; i++) print l[i]; exit }
		on && (/^[0-9]+ [0-9]+ / || /^cpu /) { l[n++] = $0 }'
}

cmd_cmdline() {   # "pid ARGS" lines, ARGS separated by \037 (kernel threads: "pid " alone)
	load_env "${1:-}"
	checked_listing "command lines" cmdline VMOT-CMDLINE-BEGIN VMOT-CMDLINE-END c 1 | sort -n -k1,1
}

cmd_ids() {   # "pid uid euid gid egid" lines from /proc/PID/status
	load_env "${1:-}"
	local seq
	seq=$(serial_request "user ids" ids VMOT-IDS-END i) || exit 1
	tr -d '\r' <"$GUEST_SERIAL" | awk -v s="$seq" '$0 == "VMOT-IDS-BEGIN " s { on = 1; next } $0 == "VMOT-IDS-END " s { exit } on && NF == 5 && /^[0-9]+ / { print }' |
		sort -n -k1,1
}

cmd_maps() {   # "E pid exe" and "M pid maps-line" lines
	load_env "${1:-}"
	checked_listing "memory maps" maps VMOT-MAPS-BEGIN VMOT-MAPS-END m 2
}

# checked_listing WHAT COMMAND BEGIN END PREFIX K: a listing whose lines carry, as field K+1, the length of
# the text after it, and whose end line the number of lines; prints the lines without that field. A line whose
# text has another length, or fewer lines than the guest sent, was damaged on the serial line (a line whose
# prefix is damaged no longer looks like one): the whole listing is asked for again (up to 3 times), and
# stderr says so.
checked_listing() {
	local what=$1 command=$2 begin=$3 end=$4 prefix=$5 k=$6 seq try out
	for try in 1 2 3; do
		seq=$(serial_request "$what" "$command" "$end" "$prefix") || exit 1
		if out=$(tr -d '\r' <"$GUEST_SERIAL" | LC_ALL=C awk -v s="$seq" -v b="$begin" -v e="$end" -v k="$k" '
			$0 == b " " s { on = 1; next }
			$1 == e && $2 == s { if (NF >= 3 && lines != $3 + 0) bad++; exit }
			!on || $0 !~ /^[A-Z]? ?[0-9]+ / { next }
			{ lines++; head = ""; rest = $0
			  for (i = 0; i < k; i++) { p = index(rest, " "); head = head substr(rest, 1, p); rest = substr(rest, p + 1) }
			  p = index(rest, " "); if (p == 0) { n = rest; rest = "" } else { n = substr(rest, 1, p - 1); rest = substr(rest, p + 1) }
			  if (n !~ /^[0-9]+$/ || length(rest) != n + 0) { bad++; next }
			  print head rest }
			END { exit bad > 0 }'); then
			printf '%s\n' "$out"
			return 0
		fi
		echo "guest.sh: $what: a line arrived damaged over the serial console (try $try of 3)" >&2
	done
	die "$what arrived damaged 3 times"
}

cmd_traced() {
	load_env "${1:-}"
	local seq
	seq=$(cat "$GUEST_RUN_DIR/ps.seq" 2>/dev/null || echo 0)
	tr -d '\r' <"$GUEST_SERIAL" | awk -v s="$seq" '$1 == "VMOT-TRACE" && $2 == s { print $3, $4 }'
}

case "${1:-}" in
	start) shift; cmd_start "$@" ;;
	stop) shift; cmd_stop "$@" ;;
	ps) shift; cmd_ps "$@" ;;
	traced) shift; cmd_traced "$@" ;;
	acct) shift; cmd_acct "$@" ;;
	cmdline) shift; cmd_cmdline "$@" ;;
	ids) shift; cmd_ids "$@" ;;
	maps) shift; cmd_maps "$@" ;;
	initramfs) build_initramfs ;;
	*) echo "usage: guest.sh start [options] | stop RUN_DIR|PID | ps RUN_DIR | traced RUN_DIR | acct RUN_DIR | cmdline RUN_DIR | ids RUN_DIR | maps RUN_DIR | initramfs" >&2; exit 64 ;;
esac
