#!/usr/bin/env bash
# test_live.sh — the product surface on real guests (issue 6). Two zoo guests with the same kernel (KASLR on);
# each runs known life cycles on request ("life TAG MS" on the serial console: a process renames itself
# vmot-lp-TAG, forks a child, the child execs vmot-lx-TAG and exits, the parent exits; the guest prints the
# pids). Checks:
#   - `live --json` reports the fork (pid, ppid, comm), exec (new comm), exit of the child and the exit of
#     the parent, exactly as the guest printed them; switch events name real vCPUs; Ctrl-C ends it with 0;
#   - `ps` equals the guest's own /proc listing (user space);
#   - `record` → `report` round trip: the life cycle is in the report, the file is intact, counts agree;
#     record stopped by SIGTERM still leaves a closed file; a truncated / bit-flipped copy is read up to
#     the damage with one clear line, garbage gives exit 1;
#   - `-a` traces both guests at once and keeps them apart (each guest's life cycle only under its VM);
#     the second guest's offsets come from the offsets cache (same kernel), validated by its own switches;
#   - `list` shows both guests with name, vCPUs, memory and accelerator.
# Exit 0 pass, 77 skip (one line why), else fail.
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=../../scripts/lib/guest-lib.sh
source "$ROOT/scripts/lib/guest-lib.sh"

BIN=${VMOT_BIN:-$ROOT/vmoffset-trace}   # make test SAN=1: the sanitized binary
[[ -x $BIN ]] || { echo "skip: build vmoffset-trace first (make)"; exit 77; }
for t in jq socat; do command -v $t >/dev/null || { echo "skip: $t missing (make deps)"; exit 77; }; done
KERNEL=${VMOT_LIVE_KERNEL:-bookworm}

T=$(mktemp -d /tmp/vmot-live-test.XXXXXX)
# a private offsets cache ($VMOFFSET_CACHE/offsets), so the first guest discovers and the second hits it
vmot() { VMOFFSET_CACHE=$T/cache "$BIN" "$@"; }

# life SERIAL SOCK TAG MS: ask for a life cycle, wait for its end, set LIFE_P (parent) and LIFE_C (child)
life() {
	local serial=$1 sock=$2 tag=$3 ms=$4
	guest_send "$sock" "life $tag $ms"
	if ! wait_for "$serial" "VMOT-LIFE $tag end" $((ms * 4 / 1000 + 20)); then
		LIFE_P=""; LIFE_C=""; return 1
	fi
	LIFE_P=$(tr -d '\r' <"$serial" | sed -n "s/^VMOT-LIFE $tag start pid=\([0-9]*\) .*/\1/p" | tail -n1)
	LIFE_C=$(tr -d '\r' <"$serial" | sed -n "s/^VMOT-LIFE $tag fork pid=\([0-9]*\) .*/\1/p" | tail -n1)
	[[ -n $LIFE_P && -n $LIFE_C ]]
}

# check_life LABEL EVENTS_JSONL VM TAG P C: the life cycle of TAG, as the guest printed it, in the events
check_life() {
	local label=$1 f=$2 vm=$3 tag=$4 p=$5 c=$6 n lastcomm
	n=$(jq -s --arg vm "$vm" --argjson p "$p" --argjson c "$c" --arg comm "vmot-lp-$tag" \
		'[.[] | select(.vm == $vm and .event == "fork" and .pid == $c and .ppid == $p and .comm == $comm)] | length' "$f")
	((n == 1)) && ok "$label: fork of $c (ppid $p, comm vmot-lp-$tag)" || bad "$label: fork of $c with ppid $p, comm vmot-lp-$tag seen $n times"
	n=$(jq -s --arg vm "$vm" --argjson c "$c" '[.[] | select(.vm == $vm and .event == "exec" and .pid == $c)] | length' "$f")
	# exec_mmap() and the new comm are not one step: an exec seen in between is followed by a rename
	lastcomm=$(jq -rs --arg vm "$vm" --argjson c "$c" \
		'[.[] | select(.vm == $vm and .pid == $c and (.event == "exec" or .event == "rename"))] | last | .comm' "$f")
	((n == 1)) && [[ $lastcomm == "vmot-lx-$tag" ]] && ok "$label: exec of $c (comm vmot-lx-$tag)" ||
		bad "$label: exec of $c seen $n times, comm '$lastcomm'"
	# what it ran: the workload execs "vmot-lx-TAG lifex TAG MS" as root
	local x
	x=$(jq -sc --arg vm "$vm" --argjson c "$c" '[.[] | select(.vm == $vm and .event == "exec" and .pid == $c)] | last | [.uid, (.argv // [])[0:3]]' "$f")
	[[ $x == "[0,[\"vmot-lx-$tag\",\"lifex\",\"$tag\"]]" ]] && ok "$label: exec of $c carries uid and argv $x" ||
		bad "$label: exec of $c carries $x, not uid 0 and argv vmot-lx-$tag lifex $tag"
	n=$(jq -s --arg vm "$vm" --argjson c "$c" --arg comm "vmot-lx-$tag" \
		'[.[] | select(.vm == $vm and .event == "exit" and .pid == $c and .comm == $comm)] | length' "$f")
	((n == 1)) && ok "$label: exit of $c" || bad "$label: exit of $c (comm vmot-lx-$tag) seen $n times"
	n=$(jq -s --arg vm "$vm" --argjson p "$p" \
		'[.[] | select(.vm == $vm and .event == "fork" and .pid == $p and .ppid == 1)] | length' "$f")
	((n == 1)) && ok "$label: fork of the parent $p (ppid 1)" || bad "$label: fork of the parent $p (ppid 1) seen $n times"
	n=$(jq -s --arg vm "$vm" --argjson p "$p" --arg comm "vmot-lp-$tag" \
		'[.[] | select(.vm == $vm and .event == "exit" and .pid == $p and .comm == $comm)] | length' "$f")
	((n == 1)) && ok "$label: exit of the parent $p" || bad "$label: exit of the parent $p seen $n times"
}

t0=$SECONDS
echo "== guest A ($KERNEL, 2 vCPUs)"
guest_start --kernel "$KERNEL" --smp 2 --name "lva$$" >/dev/null || { bad "boot guest A"; exit 1; }
A_PID=$GUEST_PID A_NAME=$GUEST_NAME A_SERIAL=$GUEST_SERIAL A_SOCK=$GUEST_SERIAL_SOCK A_RUN=$GUEST_RUN_DIR

# --- live --json, stopped with Ctrl-C (SIGINT) -----------------------------------------------------------
VMOFFSET_CACHE=$T/cache "$BIN" live --pid "$A_PID" --json >"$T/live.jsonl" 2>"$T/live.err" &
live=$!
if wait_for "$T/live.err" "^mode: " 60; then
	ok "live: $(grep '^mode: ' "$T/live.err" | cut -c1-60)..."
	grep -q "offsets discovered" "$T/live.err" && ok "live: guest A's offsets discovered (cache empty)" ||
		bad "live: expected discovery on guest A: $(head -n1 "$T/live.err")"
	sleep 1
	if life "$A_SERIAL" "$A_SOCK" a1 1000; then
		sleep 0.5
		kill -INT $live; wait $live; rc=$?
		((rc == 0)) && ok "live: Ctrl-C ends it with exit 0" || bad "live: exit $rc after SIGINT"
		check_life "live" "$T/live.jsonl" "$A_NAME" a1 "$LIFE_P" "$LIFE_C"
		n=$(jq -s '[.[] | select(.event == "switch")] | length' "$T/live.jsonl")
		nbad=$(jq -s '[.[] | select(.event == "switch" and (.vcpu < 0 or .vcpu > 1 or .comm == ""))] | length' "$T/live.jsonl")
		((n > 0 && nbad == 0)) && ok "live: $n switch events, all on vCPU 0/1 with a task name" ||
			bad "live: $n switches, $nbad without a valid vCPU/task"
		jq -e . "$T/live.jsonl" >/dev/null && ok "live: every line is JSON ($(wc -l <"$T/live.jsonl") lines)" || bad "live: invalid JSON lines"
	else
		bad "live: guest A did not run the life cycle"; kill $live; wait $live
	fi
else
	bad "live: no mode line within 60 s: $(tail -n2 "$T/live.err")"; kill $live 2>/dev/null; wait $live
fi

# --- ps equals /proc -------------------------------------------------------------------------------------
ours=$(vmot ps --pid "$A_PID" --threads --json 2>/dev/null |
	jq -r '.[] | select(.pid != 0 and .kernel_thread == false) | "\(.pid) \(.ppid) \(.tgid) \(.comm)"' | sort)
theirs=$(guest_user_ps | sort)
if [[ -n $ours && $ours == "$theirs" ]]; then ok "ps: user processes equal the guest's /proc ($(wc -l <<<"$ours") threads)"
else bad "ps: differs from /proc:"; diff <(echo "$theirs") <(echo "$ours") | head -10; fi

# --- record -> report, SIGTERM, damage -------------------------------------------------------------------
VMOFFSET_CACHE=$T/cache "$BIN" record --pid "$A_PID" -o "$T/a.vmot" 2>"$T/rec.err" &
rec=$!
if wait_for "$T/rec.err" "^recording to" 60 && life "$A_SERIAL" "$A_SOCK" r1 800; then
	sleep 1.2   # past one flush
	kill -TERM $rec; wait $rec; rc=$?
	((rc == 0)) && ok "record: SIGTERM ends it with exit 0" || bad "record: exit $rc after SIGTERM"
	vmot -j report -i "$T/a.vmot" >"$T/report.json" 2>"$T/report.err"; rc=$?
	jq -c '.events[]' "$T/report.json" >"$T/report.jsonl"
	((rc == 0)) && [[ $(jq -r .integrity.intact "$T/report.json") == true ]] && [[ ! -s $T/report.err ]] &&
		ok "report: file intact, $(jq -r .integrity.events_read "$T/report.json") events in $(jq -r .integrity.blocks_read "$T/report.json") blocks" ||
		bad "report: exit $rc, integrity $(jq -c .integrity "$T/report.json"), $(cat "$T/report.err")"
	[[ $(jq -r .session.format "$T/report.json") == "vmoffset-trace session" && $(jq -r '.vms[0].name' "$T/report.json") == "$A_NAME" ]] &&
		ok "report: session header and VM identity ($A_NAME)" || bad "report: header/VM block wrong"
	check_life "report" "$T/report.jsonl" "$A_NAME" r1 "$LIFE_P" "$LIFE_C"
	np=$(jq --argjson c "$LIFE_C" '[.processes[] | select(.pid == $c and .forks == 1 and .execs == 1 and .exits == 1)] | length' "$T/report.json")
	((np == 1)) && ok "report: per-process row of $LIFE_C counts fork, exec, exit" || bad "report: process row of $LIFE_C wrong"
	[[ $(jq -r '.exit_stats.available' "$T/report.json") == false ]] && grep -q "not available on this host" <(vmot report -i "$T/a.vmot" --section exits) &&
		ok "report: exit statistics say 'not available on this host' (TCG guest)" || bad "report: exit statistics section"
	vmot report -i "$T/a.vmot" --csv --section timeline | grep -q ",exec,$LIFE_C," && ok "report --csv: timeline has the exec" || bad "report --csv"
	# damage: truncated, bit-flipped, garbage
	size=$(stat -c %s "$T/a.vmot")
	head -c $((size - 40)) "$T/a.vmot" >"$T/cut.vmot"
	vmot report -i "$T/cut.vmot" --section processes >/dev/null 2>"$T/cut.err"; rc=$?
	((rc == 0)) && [[ $(wc -l <"$T/cut.err") == 1 ]] && grep -q "file cut mid-block" "$T/cut.err" &&
		ok "report: truncated copy read, one line: $(cut -c1-90 "$T/cut.err")..." || bad "report on a truncated file: exit $rc, $(cat "$T/cut.err")"
	cp "$T/a.vmot" "$T/flip.vmot"
	printf '\x55' | dd of="$T/flip.vmot" bs=1 seek=$((size / 2)) conv=notrunc 2>/dev/null
	vmot -j report -i "$T/flip.vmot" >"$T/flip.json" 2>"$T/flip.err"; rc=$?
	nflip=$(jq '.integrity.events_read' "$T/flip.json"); nall=$(jq '.integrity.events_read' "$T/report.json")
	((rc == 0)) && [[ $(jq -r .integrity.intact "$T/flip.json") == false ]] && ((nflip <= nall)) && grep -q "unreadable" "$T/flip.err" &&
		ok "report: bit-flipped copy: $nflip of $nall events read, '$(jq -r .integrity.lost "$T/flip.json" | cut -c1-70)...'" ||
		bad "report on a flipped file: exit $rc, $(cat "$T/flip.err")"
	head -c 4096 /dev/urandom >"$T/junk.vmot"
	vmot report -i "$T/junk.vmot" >/dev/null 2>"$T/junk.err"; rc=$?
	((rc == 1)) && grep -q "nothing readable" "$T/junk.err" && ok "report: garbage gives exit 1, '$(cat "$T/junk.err")'" || bad "report on garbage: exit $rc"
else
	bad "record: not started or no life cycle: $(tail -n2 "$T/rec.err")"; kill $rec 2>/dev/null; wait $rec
fi

# --- record without -o: vmot.data, the previous one kept as vmot.data.old; report without -i reads it ----------
mkdir -p "$T/cwd"
for n in 1 2; do
	(cd "$T/cwd" && VMOFFSET_CACHE=$T/cache "$BIN" record --pid "$A_PID" -d 1 2>"$T/def$n.err"); rc=$?
	((rc == 0)) || bad "record without -o (run $n): exit $rc, $(tail -n1 "$T/def$n.err")"
done
if [[ -s $T/cwd/vmot.data && -s $T/cwd/vmot.data.old ]] && ! cmp -s "$T/cwd/vmot.data" "$T/cwd/vmot.data.old" &&
	(cd "$T/cwd" && "$BIN" -j report >"$T/def.json" 2>/dev/null) && [[ $(jq -r .integrity.intact "$T/def.json") == true ]]; then
	ok "record without -o writes vmot.data, keeps the previous as vmot.data.old; report without -i reads it"
else
	bad "default session file: $(ls "$T/cwd" | tr '\n' ' ') $(head -c 200 "$T/def.json" 2>/dev/null)"
fi

# --- two guests at once with -a --------------------------------------------------------------------------
echo "== guest B ($KERNEL, 1 vCPU)"
if guest_start --kernel "$KERNEL" --smp 1 --name "lvb$$" >/dev/null; then
	B_PID=$GUEST_PID B_NAME=$GUEST_NAME B_SERIAL=$GUEST_SERIAL B_SOCK=$GUEST_SERIAL_SOCK
	vmot -j list >"$T/list.json"
	for g in "$A_PID $A_NAME 2" "$B_PID $B_NAME 1"; do
		read -r p name nv <<<"$g"
		r=$(jq -c --argjson p "$p" '.[] | select(.pid == $p) | [.name, .vcpus, .memory_bytes, .accel]' "$T/list.json")
		[[ $r == "[\"$name\",$nv,536870912,\"tcg\"]" ]] && ok "list: $p $r" || bad "list: pid $p shows '$r'"
	done
	VMOFFSET_CACHE=$T/cache "$BIN" live -a --json --no-switch >"$T/all.jsonl" 2>"$T/all.err" &
	all=$!
	if wait_for "$T/all.err" "^mode: " 120; then
		grep -q "^$B_NAME (pid $B_PID.*offsets from the cache" "$T/all.err" &&
			ok "-a: guest B's offsets from the cache (same kernel as A), validated by its own switches" ||
			bad "-a: guest B not served from the cache: $(grep "^$B_NAME" "$T/all.err")"
		guest_send "$A_SOCK" "life a2 1000"; life "$B_SERIAL" "$B_SOCK" b2 1000
		BP=$LIFE_P BC=$LIFE_C
		wait_for "$A_SERIAL" "VMOT-LIFE a2 end" 20
		AP=$(tr -d '\r' <"$A_SERIAL" | sed -n 's/^VMOT-LIFE a2 start pid=\([0-9]*\) .*/\1/p')
		AC=$(tr -d '\r' <"$A_SERIAL" | sed -n 's/^VMOT-LIFE a2 fork pid=\([0-9]*\) .*/\1/p')
		sleep 0.5
		kill -INT $all; wait $all
		check_life "-a A" "$T/all.jsonl" "$A_NAME" a2 "$AP" "$AC"
		check_life "-a B" "$T/all.jsonl" "$B_NAME" b2 "$BP" "$BC"
		wrong=$(jq -s --arg a "$A_NAME" --arg b "$B_NAME" \
			'[.[] | select(.event != "lost") | select(.comm == null or ((.comm | test("-a2$")) and .vm != $a) or ((.comm | test("-b2$")) and .vm != $b))] | length' "$T/all.jsonl")
		ours=$(jq -s --arg a "$A_NAME" --arg b "$B_NAME" '[.[] | select(.vm == $a or .vm == $b)] | length' "$T/all.jsonl")
		[[ $wrong == 0 ]] && ok "-a: no event attributed to the wrong VM ($ours events of A and B)" || bad "-a: $wrong events under the wrong VM"
	else
		bad "-a: no mode line within 120 s: $(tail -n3 "$T/all.err")"; kill $all 2>/dev/null; wait $all
	fi
	# record killed with SIGKILL: every block flushed before the kill (at least once a second) is readable
	VMOFFSET_CACHE=$T/cache "$BIN" record --pid "$B_PID" -o "$T/kill.vmot" 2>"$T/kill.err" &
	rec=$!
	if wait_for "$T/kill.err" "^recording to" 60; then
		guest_send "$B_SOCK" "life k1 300"; sleep 3
		kill -KILL $rec; wait $rec 2>/dev/null
		vmot -j report -i "$T/kill.vmot" >"$T/kill.json" 2>"$T/kill.rep"; rc=$?
		nk=$(jq '[.events[] | select(.comm | test("-k1$"))] | length' "$T/kill.json")
		((rc == 0 && nk >= 4)) && grep -q "no trailer" "$T/kill.rep" &&
			ok "record killed by SIGKILL: file readable, $nk events of the k1 life cycle, 'no trailer' reported" ||
			bad "record after SIGKILL: exit $rc, $nk k1 events, $(cat "$T/kill.rep")"
	else
		bad "record (SIGKILL case) did not start: $(tail -n2 "$T/kill.err")"; kill $rec 2>/dev/null; wait $rec
	fi
	# QEMU exiting ends the recording cleanly
	VMOFFSET_CACHE=$T/cache "$BIN" record --pid "$B_PID" -o "$T/gone.vmot" 2>"$T/gone.err" &
	rec=$!
	if wait_for "$T/gone.err" "^recording to" 60; then
		sleep 1.5
		guest_stop >/dev/null 2>&1
		for ((i = 0; i < 50; i++)); do kill -0 $rec 2>/dev/null || break; sleep 0.2; done
		if kill -0 $rec 2>/dev/null; then bad "record still runs 10 s after QEMU exited"; kill $rec; fi
		wait $rec; rc=$?
		vmot -j report -i "$T/gone.vmot" >"$T/gone.json" 2>/dev/null
		((rc == 0)) && [[ $(jq -r .integrity.intact "$T/gone.json") == true ]] &&
			[[ $(jq -r '.counters[] | select(.gone) | .gone' "$T/gone.json") == true ]] &&
			ok "record: QEMU exiting ends it (exit 0), file closed with its trailer" ||
			bad "record after QEMU exit: exit $rc, $(jq -c .integrity "$T/gone.json"), $(tail -n2 "$T/gone.err")"
	else
		bad "record (QEMU exit case) did not start"; kill $rec 2>/dev/null; wait $rec
	fi
else
	bad "boot guest B"
fi
echo "test_live: $fails failure(s) in $((SECONDS - t0)) s"
((fails == 0)) && [[ -z ${GUEST_KEEP:-} ]] && rm -rf "$T"
((fails == 0))
