#!/usr/bin/env bash
# test_faults.sh — faults while tracing a real guest (issue 7). One zoo guest (KASLR on):
#   - SIGINT / SIGTERM at any point of `record` (during QMP sampling, discovery, the first ticks, later):
#     it ends within a few seconds, exit 0 with a file `report` reads as intact, or — interrupted before
#     any VM was set up — exit 1 with one line and no file;
#   - the guest reboots (QMP system_reset: a new KASLR base) under `live --json` and `record`: the old
#     tasks exit, a "restart" event follows, the tool says it rediscovers, and a process the new kernel
#     starts is reported with the right pid, ppid and comm; the session file holds the restart.
# (QEMU killed mid-trace and record killed by SIGTERM/SIGKILL are in test_live.sh; QEMU killed mid-read
# and the read-only proof in test_hostile_live.sh.)
# Exit 0 pass, 77 skip (one line why), else fail.
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=../../scripts/lib/guest-lib.sh
source "$ROOT/scripts/lib/guest-lib.sh"

BIN=${VMOT_BIN:-$ROOT/vmoffset-trace}
[[ -x $BIN ]] || { echo "skip: build vmoffset-trace first (make)"; exit 77; }
for t in jq socat; do command -v $t >/dev/null || { echo "skip: $t missing (make deps)"; exit 77; }; done
KERNEL=${VMOT_FAULTS_KERNEL:-bookworm}

T=$(mktemp -d /tmp/vmot-faults-test.XXXXXX)
vmot() { VMOFFSET_CACHE=$T/cache "$BIN" "$@"; }
count() { tr -d '\r' <"$1" | grep -c -- "$2"; }

t0=$SECONDS
echo "== guest ($KERNEL, 2 vCPUs)"
guest_start --kernel "$KERNEL" --smp 2 --reboot --name "flt$$" >/dev/null || { bad "boot"; exit 1; }
NAME=$GUEST_NAME SERIAL=$GUEST_SERIAL SOCK=$GUEST_SERIAL_SOCK

# --- a signal at any point ------------------------------------------------------------------------------
# QMP sampling takes --timeout (1 s here), discovery well under a second, then the loop: delays spread
# over all of it. --no-cache so every run goes through discovery.
i=0
for d in 0.15 0.4 0.9 1.3 1.8 3; do
	for sig in INT TERM; do
		i=$((i + 1))
		f=$T/sig$i.vmot
		VMOFFSET_CACHE=$T/cache "$BIN" record --pid "$GUEST_PID" --timeout 1 --no-cache -o "$f" 2>"$T/sig$i.err" &
		rec=$!
		sleep "$d"
		kill -$sig $rec
		for ((k = 0; k < 50; k++)); do kill -0 $rec 2>/dev/null || break; sleep 0.2; done
		if kill -0 $rec 2>/dev/null; then
			bad "SIG$sig after ${d}s: record still runs 10 s later"; kill -KILL $rec; wait $rec; continue
		fi
		wait $rec; rc=$?
		if ((rc == 0)); then
			vmot -j report -i "$f" >"$T/sig$i.json" 2>"$T/sig$i.rep"; rrc=$?
			((rrc == 0)) && [[ $(jq -r .integrity.intact "$T/sig$i.json") == true ]] &&
				ok "SIG$sig after ${d}s: exit 0, file intact ($(jq -r .integrity.events_read "$T/sig$i.json") events)" ||
				bad "SIG$sig after ${d}s: exit 0 but report exit $rrc: $(head -n2 "$T/sig$i.rep")"
		elif ((rc == 1)) && [[ ! -e $f ]] && [[ $(grep -c . "$T/sig$i.err") -ge 1 ]] &&
			grep -q "interrupted before any VM was set up" "$T/sig$i.err"; then
			ok "SIG$sig after ${d}s: interrupted during setup: exit 1, no file, '$(grep interrupted "$T/sig$i.err")'"
		else
			bad "SIG$sig after ${d}s: exit $rc, file $( [[ -e $f ]] && echo exists || echo missing): $(tail -n2 "$T/sig$i.err")"
		fi
	done
done

# --- the guest reboots under live and record --------------------------------------------------------------
# (the binary itself in the background, not through vmot(): a signal must reach it, not a subshell)
VMOFFSET_CACHE=$T/cache "$BIN" live --pid "$GUEST_PID" --json --no-switch >"$T/live.jsonl" 2>"$T/live.err" &
live=$!
VMOFFSET_CACHE=$T/cache "$BIN" record --pid "$GUEST_PID" -o "$T/reboot.vmot" 2>"$T/rec.err" &
rec=$!
if wait_for "$T/live.err" "^mode: " 60 && wait_for "$T/rec.err" "^recording to" 60; then
	sleep 1
	old_init=$(jq -rs '[.[] | select(.event == "fork")] | length' "$T/live.jsonl")
	ready0=$(count "$SERIAL" "VMOT-READY")
	guest_qmp "$GUEST_QMP" '{"execute":"system_reset"}'
	for ((k = 0; k < 600; k++)); do (($(count "$SERIAL" "VMOT-READY") > ready0)) && break; sleep 0.2; done
	if (($(count "$SERIAL" "VMOT-READY") > ready0)); then
		ok "guest rebooted (system_reset) and is ready again"
		wait_for "$T/live.err" "guest kernel back" 60
		wait_for "$T/rec.err" "guest kernel back" 60
		sleep 1
		guest_send "$SOCK" "life rb 800"
		wait_for "$SERIAL" "VMOT-LIFE rb end" 30
		P=$(tr -d '\r' <"$SERIAL" | sed -n 's/^VMOT-LIFE rb start pid=\([0-9]*\) .*/\1/p' | tail -n1)
		C=$(tr -d '\r' <"$SERIAL" | sed -n 's/^VMOT-LIFE rb fork pid=\([0-9]*\) .*/\1/p' | tail -n1)
		sleep 1
		kill -INT $live $rec; wait $live; lrc=$?; wait $rec; rrc=$?
		((lrc == 0 && rrc == 0)) && ok "live and record end with exit 0 after the reboot" || bad "live exit $lrc, record exit $rrc"
		grep -q "the guest kernel is gone.*rediscovering" "$T/live.err" &&
			ok "live says: '$(grep -o 'the guest kernel is gone.*' "$T/live.err" | head -n1)'" || bad "live did not say it rediscovers: $(tail -n3 "$T/live.err")"
		back=$(grep -o 'guest kernel back: .*' "$T/live.err" | head -n1)
		[[ -n $back ]] && ok "live: '$back'" || bad "live: the kernel was not rediscovered: $(tail -n3 "$T/live.err")"
		nrs=$(jq -s '[.[] | select(.event == "restart")] | length' "$T/live.jsonl")
		((nrs == 1)) && ok "live: one restart event" || bad "live: $nrs restart events"
		# every task known before the restart exited at it; after it, the new kernel's init is a fork
		nexit=$(jq -s '[(map(.event) | index("restart")) as $r | .[:$r][] | select(.event == "exit")] | length' "$T/live.jsonl")
		ninit=$(jq -s '[(map(.event) | index("restart")) as $r | .[$r:][] | select(.event == "fork" and .pid == 1)] | length' "$T/live.jsonl")
		((nexit > 10 && ninit == 1)) && ok "live: $nexit tasks exit at the restart; the new kernel's pid 1 appears as a fork" ||
			bad "live: $nexit exits before the restart, pid 1 forked $ninit times after it"
		if [[ -n $P && -n $C ]]; then
			n=$(jq -s --argjson p "$P" --argjson c "$C" \
				'[(map(.event) | index("restart")) as $r | .[$r:][] | select(.event == "fork" and .pid == $c and .ppid == $p and .comm == "vmot-lp-rb")] | length' "$T/live.jsonl")
			((n == 1)) && ok "live: after the reboot, fork of $C (ppid $P, vmot-lp-rb) as the guest printed" || bad "live: fork of $C/$P after the reboot seen $n times"
			n=$(jq -s --argjson c "$C" '[.[] | select(.event == "exit" and .pid == $c and .comm == "vmot-lx-rb")] | length' "$T/live.jsonl")
			((n == 1)) && ok "live: exit of $C (vmot-lx-rb)" || bad "live: exit of $C (vmot-lx-rb) seen $n times"
		else
			bad "the rebooted guest did not run the life cycle"
		fi
		vmot -j report -i "$T/reboot.vmot" >"$T/reboot.json" 2>"$T/reboot.rep"; rc=$?
		nrs=$(jq '[.events[] | select(.event == "restart")] | length' "$T/reboot.json")
		nc=$(jq --argjson c "${C:-0}" '[.events[] | select(.pid == $c and .event == "fork")] | length' "$T/reboot.json")
		((rc == 0 && nrs == 1 && nc == 1)) && [[ $(jq -r .integrity.intact "$T/reboot.json") == true ]] &&
			ok "record: the session holds the restart and the new kernel's fork of $C; intact" ||
			bad "record: report exit $rc, $nrs restarts, fork of $C $nc times, $(cat "$T/reboot.rep")"
		vmot report -i "$T/reboot.vmot" --section processes >/dev/null 2>&1 && ok "report (text) reads the rebooted session" || bad "report (text) failed"
	else
		bad "the guest did not come back after system_reset"; kill $live $rec; wait $live $rec
	fi
else
	bad "live/record did not start: $(tail -n2 "$T/live.err") / $(tail -n2 "$T/rec.err")"; kill $live $rec 2>/dev/null; wait $live $rec
fi
echo "test_faults: $fails failure(s) in $((SECONDS - t0)) s"
((fails == 0)) && [[ -z ${GUEST_KEEP:-} ]] && rm -rf "$T"
((fails == 0))
