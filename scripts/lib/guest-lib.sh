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
