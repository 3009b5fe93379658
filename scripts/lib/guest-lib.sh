# shellcheck shell=bash
# guest-lib.sh — source from a bash test to boot guests that are always killed when the test exits.
#
#   source "$ROOT/scripts/lib/guest-lib.sh"
#   guest_start [guest.sh start options...]   # e.g. --kernel 6.12 --smp 2; returns 1 on failure
#       sets GUEST_PID GUEST_QMP GUEST_SERIAL GUEST_SERIAL_SOCK GUEST_RUN_DIR GUEST_NAME GUEST_KERNEL
#            GUEST_RELEASE GUEST_SMP GUEST_MEM GUEST_ACCEL GUEST_PTI GUEST_LA57 GUEST_PAGING GUEST_BOOT_SECONDS
#       for the guest just started (start several: each call overwrites them; keep copies if you need to)
#   guest_ps [RUN_DIR]      a fresh "pid ppid tgid comm" list from the guest (default: the last started)
#   guest_traced [RUN_DIR]  "tracee_pid tracer_pid" pairs of the latest list
#   guest_user_ps [RUN_DIR] guest_ps without kernel threads (pid 2 and its children)
#   guest_acct [RUN_DIR [COMM...]]  the guest's own per-thread CPU accounting ("uptime S0 S1", /proc/stat's
#                           "cpu ..." line, then "tid tgid comm utime stime vcsw nvcsw run_ns wait_ns slices"
#                           lines; only threads named COMM when given)
#   guest_cmdline [RUN_DIR] every process's argv: "pid ARGS" lines, arguments separated by \037
#   guest_stop [RUN_DIR]    kill that guest (default: the last started)
#   guest_stop_all          kill every guest this shell started (the EXIT trap does this)
#   guest_send SOCK LINE    one line to a guest's serial socket (GUEST_SERIAL_SOCK: e.g. "life TAG MS")
#   guest_qmp SOCK JSON     one QMP command (after the capabilities handshake), reply discarded
#   wait_for FILE PATTERN SECONDS   until grep finds PATTERN in FILE (returns 1 on timeout)
#   check_shares LABEL FILE         oncpu_shares.py output held to its limits (10 points a program, 15 busy)
#   ok MSG / bad MSG        one check line ("  ok   MSG" / "  FAIL MSG"); bad counts into $fails
#
# An EXIT trap (chained after any EXIT trap already set) stops every guest started here, and removes their run
# dirs if the test exits 0 (kept for inspection otherwise). Independently, guest.sh's watchdog kills QEMU when
# this shell's process ($$) dies, even by SIGKILL. Set GUEST_KEEP=1 to keep the run dirs.

GUEST_LIB_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
GUEST_SH=$GUEST_LIB_ROOT/scripts/guest.sh
_GUEST_RUN_DIRS=()

guest_start() {
	local out
	out=$("$GUEST_SH" start --owner $$ "$@") || return 1
	eval "$out"
	_GUEST_RUN_DIRS+=("$GUEST_RUN_DIR")
}

guest_ps() { "$GUEST_SH" ps "${1:-$GUEST_RUN_DIR}"; }
guest_traced() { "$GUEST_SH" traced "${1:-$GUEST_RUN_DIR}"; }
guest_acct() { "$GUEST_SH" acct "${1:-$GUEST_RUN_DIR}" "${@:2}"; }
guest_cmdline() { "$GUEST_SH" cmdline "${1:-$GUEST_RUN_DIR}"; }
guest_ids() { "$GUEST_SH" ids "${1:-$GUEST_RUN_DIR}"; }
guest_maps() { "$GUEST_SH" maps "${1:-$GUEST_RUN_DIR}"; }

# check_exes_maps LABEL PS_JSON BIN: every user process's "exe" in `ps --json` output equals the guest's own
# /proc/PID/exe, and `BIN maps --task PID` of each of the workload's vmot-* processes equals its /proc/PID/maps
# line for line (start, end, perms, offset, path; dev and inode are not read; [vsyscall], the kernel's gate area
# that belongs to no mm, is left out). The workload must show a mapping
# of a file at an offset, [heap], [stack], [vdso], a path across a mount (/tmp) and a deleted executable.
check_exes_maps() {
	local label=$1 bin=$3 truth res n nbad pid nmaps=0 mbad=0 lines=0 ours theirs raw
	truth=$(guest_maps)
	# "pid<TAB>path" both sides (paths may hold spaces: " (deleted)")
	res=$(awk -F'\t' 'NR == FNR { o[$1] = $2; next }
		{ if (!($1 in o) || $2 == "") next; n++
		  if (o[$1] != $2) { nbad++; print "pid " $1 ": ours \"" o[$1] "\", /proc \"" $2 "\"" } }
		END { print "COMMON", n + 0, nbad + 0 }' \
		<(jq -r '.[] | select(.kernel_thread == false and .pid == .tgid) | "\(.pid)\t\(.exe // "<none>")"' <<<"$2") \
		<(awk '$1 == "E" { p = $2; sub(/^E [0-9]+ ?/, ""); print p "\t" $0 }' <<<"$truth"))
	read -r _ n nbad < <(tail -n1 <<<"$res")
	if ((n > 0 && nbad == 0)) && grep -q '^E [0-9]* /tmp/vmot-del (deleted)$' <<<"$truth" && grep -q '^E [0-9]* /tmp/vmot-tmp$' <<<"$truth"; then
		ok "$label: executables equal /proc/PID/exe ($n processes, a deleted one and one on /tmp among them)"
	else
		bad "$label: $nbad of $n executables differ from /proc/PID/exe:"
		head -n -1 <<<"$res" | head -10
	fi
	# maps of every workload process: "start end perms offset path"
	for pid in $(awk '$1 == "M" { print $2 }' <<<"$truth" | sort -un); do
		# [vsyscall] is the kernel's gate area, in no mm (see README: not shown)
		theirs=$(awk -v p="$pid" '$1 == "M" && $2 == p && !/\[vsyscall\]$/ { sub(/^M [0-9]+ /, ""); print }' <<<"$truth" | _maps_norm)
		raw=$("$bin" maps --pid "$GUEST_PID" --qmp "$GUEST_QMP" --task "$pid" 2>&1)
		ours=$(_maps_norm <<<"$raw")
		nmaps=$((nmaps + 1)); lines=$((lines + $(wc -l <<<"$theirs")))
		if [[ "$ours" != "$theirs" ]]; then
			mbad=$((mbad + 1))
			echo "    pid $pid: maps differ (< /proc, > ours):"; diff <(echo "$theirs") <(echo "$ours") | head -8
			(($(wc -l <<<"$raw") < 3)) && echo "    ours: $raw"
		fi
	done
	local kinds
	kinds=$(awk '$1 == "M" { print }' <<<"$truth")
	if ((nmaps >= 10 && mbad == 0)) && grep -q '\[heap\]' <<<"$kinds" && grep -q '\[stack\]' <<<"$kinds" &&
		grep -q '\[vdso\]' <<<"$kinds" && grep -q ' 00001000 .*/workload$' <<<"$kinds"; then
		ok "$label: maps equal /proc/PID/maps line for line ($nmaps processes, $lines lines)"
	else
		bad "$label: maps of $mbad of $nmaps workload processes differ from /proc/PID/maps"
		# what the memory-map search saw (its -vv lines for the members naming lines), for the record
		"$bin" -vv maps --pid "$GUEST_PID" --qmp "$GUEST_QMP" --task "$pid" 2>&1 >/dev/null |
			grep -E 'maps: ([0-9]+ processes|vm_private_data|vm_file|vm_flags)' | head -n 12 | sed 's/^/       /'
	fi
}
# check_maps_btf LABEL OFFSETS_JSON TRUTH_JSON: the memory-map and path members `offsets --format json` found
# against btf-truth's: those a maps line and an exe path need must be found and equal; the others (which name
# lines or cross mounts) equal where found.
check_maps_btf() {
	local label=$1 got=$2 want=$3 f g w
	local root need=0 same=0 opt=0 optsame=0 diffs=""
	if [[ $(jq -r .maps.maple_tree <<<"$got") == true ]]; then root=mm_mt; else root=mmap; fi
	for f in $root map_count exe_file start_brk brk start_stack vm_start vm_end vm_flags vm_pgoff vm_file \
		f_path.dentry f_path.mnt d_parent d_name vm_mm vm_next vm_private_data d_hash mnt_root mnt mnt_parent \
		mnt_mountpoint; do
		g=$(jq -r --arg f "$f" '.maps[$f]' <<<"$got")
		if [[ $f == "$root" ]]; then w=$(jq -r "if \"$root\" == \"mm_mt\" then .mm_mt else .mm_mmap end" <<<"$want"); else w=$(jq -r --arg f "maps_$f" '.[$f]' <<<"$want"); fi
		case $f in vm_mm|vm_next|vm_private_data|d_hash|mnt_root|mnt|mnt_parent|mnt_mountpoint)
			[[ $g == null ]] && continue
			opt=$((opt + 1)); [[ $g == "$w" ]] && optsame=$((optsame + 1)) || diffs+=" $f=$g(BTF $w)" ;;
		*)	need=$((need + 1)); [[ $g == "$w" ]] && same=$((same + 1)) || diffs+=" $f=$g(BTF $w)" ;;
		esac
	done
	if ((same == need && optsame == opt)); then
		ok "$label: maps/path members equal BTF ($need needed, $opt more found; VMAs in a $root)"
	else
		bad "$label: maps/path members differ from BTF:$diffs"
	fi
}
# /proc/PID/maps lines → "start end perms offset path" (path: the rest, spaces kept; dev and inode dropped; the
# numbers without leading zeros: compared as values — a 5.10 rt guest's console once doubled a 0 in an offset)
_maps_norm() {
	awk 'function hex(x) { sub(/^0+/, "", x); return x == "" ? "0" : x }
	     { split($1, r, "-"); path = ""; for (i = 6; i <= NF; i++) path = path (i > 6 ? " " : "") $i
	       print hex(r[1]), hex(r[2]), $2, hex($3), path }'
}

# check_ids LABEL PS_JSON: uid, euid, gid, egid of every process in `ps --json` output equal the guest's own
# /proc/PID/status (guest_ids); the workload's vmot-user (1000/100) and vmot-setid (real, effective and saved ids
# all different) must be among them. Processes gone or born in between are left out.
check_ids() {
	local label=$1 res n nbad special
	res=$(awk 'NR == FNR { o[$1] = $2 " " $3 " " $4 " " $5; next }
		{ p = $1; if (!(p in o)) next; n++; t = $2 " " $3 " " $4 " " $5
		  if (o[p] != t) { nbad++; print "pid " p ": ours " o[p] ", /proc " t } }
		END { print "COMMON", n + 0, nbad + 0 }' \
		<(jq -r '.[] | select(.pid == .tgid and .pid != 0) | "\(.pid) \(.uid) \(.euid) \(.gid) \(.egid)"' <<<"$2") <(guest_ids))
	read -r _ n nbad < <(tail -n1 <<<"$res")
	special=$(jq -r '[.[] | select(.comm == "vmot-user" or .comm == "vmot-setid") | "\(.comm) \(.uid)/\(.euid)/\(.gid)/\(.egid)"] | join(", ")' <<<"$2")
	if ((n > 0 && nbad == 0)) && [[ $special == *"vmot-user 1000/1000/100/100"* && $special == *"vmot-setid 1001/1002/201/202"* ]]; then
		ok "$label: uid/euid/gid/egid equal /proc/PID/status ($n processes; $special)"
	else
		bad "$label: $nbad of $n processes' ids differ from /proc/PID/status ($special):"
		head -n -1 <<<"$res" | head -10
	fi
}

# check_cmdlines LABEL PS_JSON: the argv of every user process in `ps --json` output (its "cmdline" arrays)
# equals the guest's own /proc/PID/cmdline (guest_cmdline); processes gone or born in between are left out.
check_cmdlines() {
	local label=$1 ours theirs res n nbad
	ours=$(jq -r '.[] | select(.kernel_thread == false and .pid == .tgid) |
		"\(.pid) \(if .cmdline then (.cmdline | join("\u001f")) else "<none>" end)"' <<<"$2")
	# processes with an argv; the NUL that ends the last argument is not a separator
	theirs=$(guest_cmdline | awk '{ sub(/\037$/, "") } length($0) > index($0, " ")')
	res=$(awk 'NR == FNR { sp = index($0, " "); o[substr($0, 1, sp - 1)] = substr($0, sp + 1); next }
		{ sp = index($0, " "); p = substr($0, 1, sp - 1); if (!(p in o)) next; n++
		  if (o[p] != substr($0, sp + 1)) { nbad++; print "pid " p ": ours \"" o[p] "\", /proc \"" substr($0, sp + 1) "\"" } }
		END { print "COMMON", n + 0, nbad + 0 }' <(echo "$ours") <(echo "$theirs"))
	read -r _ n nbad < <(tail -n1 <<<"$res")
	if ((n > 0 && nbad == 0)); then
		ok "$label: command lines equal /proc/PID/cmdline ($n processes)"
	else
		bad "$label: $nbad of $n command lines differ from /proc/PID/cmdline:"
		head -n -1 <<<"$res" | tr '\037' '|' | head -10
	fi
}
guest_user_ps() { guest_ps "$@" | awk '$1 != 2 && $2 != 2'; }
guest_stop() { "$GUEST_SH" stop "${1:-$GUEST_RUN_DIR}"; }

fails=0
ok()  { echo "  ok   $*"; }
bad() { echo "  FAIL $*"; fails=$((fails + 1)); }

guest_send() { printf '%s\n' "$2" | timeout 10 socat -t 0.5 - "UNIX-CONNECT:$1" >/dev/null; }
guest_qmp() { printf '{"execute":"qmp_capabilities"}\n%s\n' "$2" | timeout 20 socat -t 2 - "UNIX-CONNECT:$1" >/dev/null; }

# check_shares LABEL FILE: tests/guest/oncpu_shares.py's lines held to their limits — each program's on-CPU
# share within 10 points of the guest's own accounting, the guest's busy share within 15 — one ok/bad line each
check_shares() {
	local label=$1 file=$2 what rest l g lim name
	while read -r what rest; do
		if [[ $what == busy ]]; then set -- $rest; else set -- ${rest#* }; fi
		l=${1#live=} g=${2#guest=} lim=10 name=$what
		[[ $what == busy ]] && lim=15
		[[ $what == share ]] && name=${rest%% *}
		if awk -v l="$l" -v g="$g" -v lim="$lim" 'BEGIN { d = l - g; if (d < 0) d = -d; exit !(d <= lim) }'; then
			ok "$label: on-CPU share of $name: live $l %, guest $g % (within $lim points)"
		else
			bad "$label: on-CPU share of $name: live $l %, the guest's own accounting $g % (more than $lim points apart)"
		fi
	done <"$file"
}

wait_for() {
	local i
	for ((i = 0; i < $3 * 5; i++)); do grep -q -- "$2" "$1" 2>/dev/null && return 0; sleep 0.2; done
	return 1
}

guest_stop_all() {
	local r
	for r in "${_GUEST_RUN_DIRS[@]}"; do
		[[ -r "$r/guest.env" ]] && "$GUEST_SH" stop "$r" 2>/dev/null || true
	done
}

_guest_exit_trap() {
	local rc=$? r
	guest_stop_all
	if ((rc == 0)) && [[ -z "${GUEST_KEEP:-}" ]]; then
		for r in "${_GUEST_RUN_DIRS[@]}"; do [[ "$r" == /tmp/vmot.* ]] && rm -rf "$r"; done
	fi
	return $rc
}

_guest_prev_trap=$(trap -p EXIT | sed -E "s/^trap -- '(.*)' EXIT\$/\\1/")
# shellcheck disable=SC2064
trap "_guest_exit_trap; ${_guest_prev_trap:-:}" EXIT
# make INT/TERM run the EXIT trap too (unless the test has its own handlers)
[[ -n "$(trap -p INT)" ]] || trap 'exit 130' INT
[[ -n "$(trap -p TERM)" ]] || trap 'exit 143' TERM
unset _guest_prev_trap
