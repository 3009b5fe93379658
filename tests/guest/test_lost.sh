#!/usr/bin/env bash
# test_lost.sh — lost processes are counted, never silent (issue 11). On each zoo kernel (KASLR on) a guest
# starts 200 children that live 5 ms each ("spawn 200 5" on the serial console; the guest prints every
# child's pid as fork() returned it) while `live --json` runs. Checks:
#   - the pid allocator is found from guest memory (stderr names its place): its offset in pid_namespace,
#     child_reaper, task_struct.thread_pid and struct pid's numbers[0] equal the kernel's own BTF
#     (build/tools/btf-truth);
#   - every pid the guest printed has exactly one of: a fork event with its pid, a place in a lost event;
#     reported + lost = started exactly, no pid both;
#   - every pid in the window (first..last printed) is accounted (other guest processes allocate pids too):
#     a fork or a lost event, never nothing;
#   - lost events are well-formed (count = number of pids = range size);
#   - on the first kernel, record → report: the session's lost events account for the second batch the
#     same way, and report's text / JSON / CSV lost totals agree.
# VMOT_LOST_KERNELS picks kernels (default "5.10 6.1 6.12 7"). Exit 0 pass, 77 skip (one line why), else fail.
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=../../scripts/lib/guest-lib.sh
source "$ROOT/scripts/lib/guest-lib.sh"

BIN=${VMOT_BIN:-$ROOT/vmoffset-trace}
TRUTH=${VMOT_TOOLS:-$ROOT/build/tools}/btf-truth
[[ -x $BIN && -x $TRUTH ]] || { echo "skip: build vmoffset-trace and build/tools/btf-truth first (make)"; exit 77; }
for t in jq socat; do command -v $t >/dev/null || { echo "skip: $t missing (make deps)"; exit 77; }; done
KERNELS=${VMOT_LOST_KERNELS:-5.10 6.1 6.12 7}
CACHE=${VMOFFSET_CACHE:-/var/cache/vmoffset-trace}
N=200

T=$(mktemp -d /tmp/vmot-lost-test.XXXXXX)
vmot() { VMOFFSET_CACHE=$T/cache "$BIN" "$@"; }

# spawn SERIAL SOCK TAGFILE: run "spawn N 5" and wait for its end; the printed child pids go to TAGFILE
spawn() {
	local serial=$1 sock=$2 out=$3 before
	before=$(tr -d '\r' <"$serial" | grep -c '^VMOT-SPAWN end')
	guest_send "$sock" "spawn $N 5"
	local i
	for ((i = 0; i < 600; i++)); do
		(($(tr -d '\r' <"$serial" | grep -c '^VMOT-SPAWN end') > before)) && break
		sleep 0.2
	done
	# the children of the last batch: after the last "begin" line
	tr -d '\r' <"$serial" | awk '/^VMOT-SPAWN begin/ {n = 0; delete p} /^VMOT-SPAWN child pid=/ {sub(/.*pid=/, ""); p[n++] = $0}
		END {for (i = 0; i < n; i++) print p[i]}' >"$out"
	(($(wc -l <"$out") == N))
}

# account LABEL EVENTS_JSONL STARTED_FILE: the checks on one batch
account() {
	local label=$1 f=$2 started=$3 lo hi
	jq -r 'select(.event == "fork") | .pid' "$f" | sort -n >"$T/forked"
	jq -r 'select(.event == "lost") | .pids[]' "$f" | sort -n >"$T/lost"
	lo=$(sort -n "$started" | head -n1); hi=$(sort -n "$started" | tail -n1)
	# per started pid: forks + lost places must be exactly 1
	local res
	res=$(awk -v lo="$lo" -v hi="$hi" '
		FILENAME == ARGV[1] { s[$1] = 1; ns++; next }
		FILENAME == ARGV[2] { f[$1]++; next }
		{ l[$1]++ }
		END {
			for (p in s) { c = f[p] + l[p]; if (c == 1 && f[p]) nf++; else if (c == 1) nl++; else bad = bad " " p "(" f[p] "f," l[p] "l)" }
			for (p = lo; p <= hi; p++) { c = f[p] + l[p]; if (c == 0) un = un " " p; if (c > 1) dup = dup " " p; if (!(p in s) && c) other++ }
			printf "%d %d %d %d|%s|%s|%s\n", ns, nf, nl, other, bad, un, dup
		}' "$started" "$T/forked" "$T/lost")
	local counts=${res%%|*} rest=${res#*|}
	local bad=${rest%%|*}; rest=${rest#*|}
	local un=${rest%%|*} dup=${rest#*|}
	read -r ns nf nl other <<<"$counts"
	if [[ -z $bad ]] && ((nf + nl == ns && ns == N)); then
		ok "$label: $ns started = $nf reported (fork) + $nl lost, no pid both, none missing"
	else
		bad "$label: $ns started, $nf reported, $nl lost; pids not accounted exactly once:${bad:0:200}"
	fi
	[[ -z $un && -z $dup ]] && ok "$label: every pid $lo..$hi accounted ($other by other guest processes)" ||
		bad "$label: window $lo..$hi: unaccounted:${un:0:200} twice:${dup:0:200}"
	local malformed
	malformed=$(jq -s '[.[] | select(.event == "lost") | select(.count != (.pids | length) or .count != (.range[1] - .range[0] + 1) or .pids[0] != .range[0])] | length' "$f")
	((malformed == 0)) && ok "$label: $(jq -s '[.[] | select(.event == "lost")] | length' "$f") lost events well-formed" ||
		bad "$label: $malformed malformed lost events"
	LAST_LOST=$nl
}

first=1
for k in $KERNELS; do
	echo "== kernel $k"
	guest_start --kernel "$k" --smp 1 --name "lost$$" >/dev/null || { bad "$k: boot"; continue; }
	truth=$("$TRUTH" "$CACHE/kernels/$GUEST_RELEASE/vmlinux.btf" 2>/dev/null || "$TRUTH" "$CACHE/kernels/$GUEST_RELEASE/vmlinux")
	# the binary itself in the background (not a function: a background subshell ignores SIGINT)
	VMOFFSET_CACHE=$T/cache "$BIN" live --pid "$GUEST_PID" --json --no-switch >"$T/live-$k.jsonl" 2>"$T/live-$k.err" &
	live=$!
	if ! wait_for "$T/live-$k.err" "^mode: " 90; then
		bad "$k: live did not start: $(tail -n2 "$T/live-$k.err")"; kill $live 2>/dev/null; wait $live; guest_stop; continue
	fi
	# the allocator is confirmed by watching it step with new pids: give it a few
	for ((i = 0; i < 10; i++)); do
		grep -q "pid allocator" "$T/live-$k.err" && break
		guest_send "$GUEST_SERIAL_SOCK" "churn 3"; sleep 2
	done
	line=$(grep -m1 "pid allocator" "$T/live-$k.err")
	if [[ $line != *"pid allocator found"* ]]; then
		bad "$k: pid allocator: ${line:-not found within 20 s}"; kill $live; wait $live; guest_stop; continue
	fi
	off=$(sed -n 's/.*init_pid_ns 0x[0-9a-f]* +\([0-9]*\) (\([a-z]*\).*/\1 \2/p' <<<"$line")
	reaper=$(sed -n 's/.*child_reaper +\([0-9]*\).*/\1/p' <<<"$line")
	tpid=$(sed -n 's/.*thread_pid +\([0-9]*\).*/\1/p' <<<"$line")
	nr=$(sed -n 's/.*upid.nr +\([0-9]*\).*/\1/p' <<<"$line")
	want_next=$(jq -r .pidns_idr_next <<<"$truth"); want_last=$(jq -r .pidns_last_pid <<<"$truth")
	if [[ $off == "$want_next next" || $off == "$want_last last" ]]; then
		ok "$k: allocator at pid_namespace+${off% *} (${off#* }) = BTF $([[ $want_next != null ]] && echo "idr.idr_next" || echo last_pid)"
	else
		bad "$k: allocator '$off' != BTF idr_next $want_next / last_pid $want_last"
	fi
	[[ $reaper == "$(jq -r .pidns_child_reaper <<<"$truth")" && $tpid == "$(jq -r .thread_pid <<<"$truth")" &&
		$nr == "$(jq -r .pid_numbers <<<"$truth")" ]] &&
		ok "$k: child_reaper +$reaper, task_struct.thread_pid +$tpid, struct pid numbers[0] +$nr = BTF" ||
		bad "$k: child_reaper/thread_pid/numbers $reaper/$tpid/$nr != BTF $(jq -c '{pidns_child_reaper,thread_pid,pid_numbers}' <<<"$truth")"
	if spawn "$GUEST_SERIAL" "$GUEST_SERIAL_SOCK" "$T/started-$k"; then
		sleep 1   # past the accounting lag
		kill -INT $live; wait $live; rc=$?
		((rc == 0)) && ok "$k: live ends with 0 on Ctrl-C" || bad "$k: live exit $rc"
		account "$k live" "$T/live-$k.jsonl" "$T/started-$k"
	else
		bad "$k: the guest did not finish spawning $N children"; kill $live; wait $live
	fi
	if ((first)); then
		first=0
		VMOFFSET_CACHE=$T/cache "$BIN" record --pid "$GUEST_PID" -o "$T/s.vmot" 2>"$T/rec.err" &
		rec=$!
		for ((i = 0; i < 15; i++)); do
			grep -q "pid allocator" "$T/rec.err" && break
			guest_send "$GUEST_SERIAL_SOCK" "churn 3"; sleep 2
		done
		if grep -q "pid allocator found" "$T/rec.err" && spawn "$GUEST_SERIAL" "$GUEST_SERIAL_SOCK" "$T/started2"; then
			sleep 1.2
			kill -TERM $rec; wait $rec; rc=$?
			vmot -j report -i "$T/s.vmot" >"$T/report.json" 2>"$T/report.err"
			((rc == 0)) && [[ $(jq -r .integrity.intact "$T/report.json") == true ]] && ok "record: SIGTERM, exit 0, file intact" ||
				bad "record: exit $rc, integrity $(jq -c .integrity "$T/report.json")"
			jq -c '.events[]' "$T/report.json" >"$T/report.jsonl"
			account "$k record/report" "$T/report.jsonl" "$T/started2"
			sum=$(jq -s '[.[] | select(.event == "lost") | .count] | add // 0' "$T/report.jsonl")
			j=$(jq -r .lost.processes "$T/report.json")
			txt=$(vmot report -i "$T/s.vmot" --section lost | sed -n 's/.* \([0-9]*\) lost process(es) in.*/\1/p')
			csv=$(vmot report -i "$T/s.vmot" --csv --section lost | awk -F, 'NR > 1 {s += $5} END {print s + 0}')
			[[ $j == "$sum" && $txt == "$sum" && $csv == "$sum" ]] && ok "report: $sum lost processes in text, JSON and CSV" ||
				bad "report: lost totals differ: events $sum, JSON $j, text $txt, CSV $csv"
		else
			bad "record: no allocator or no spawn: $(tail -n2 "$T/rec.err")"; kill $rec 2>/dev/null; wait $rec
		fi
	fi
	guest_stop
done
((fails == 0)) && { rm -rf "$T"; echo "PASS"; exit 0; }
echo "FAIL ($fails), files in $T"
exit 1
