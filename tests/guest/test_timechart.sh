#!/usr/bin/env bash
# test_timechart.sh — the pictures of a real guest's session (issue 18). A bookworm guest (2 vCPUs) runs the usual
# workload, a CPU-bound program at 60 % and three known life cycles ("life TAG MS": fork → exec → exit, pids
# printed by the guest) while `record` writes a session. Checks:
#   - timechart's SVG (default width, and 20000 px where little is merged) parses as XML, every span in it is runs
#     of the session (same vCPU and pid, start and end within a pixel; a merged span exactly the runs inside it)
#     and together they are every run once, every lifecycle event has its marker — the runs and events taken
#     from `report --json` (tests/guest/timechart_check.py), not from timechart; the life cycles' fork, exec and
#     exit of the child are among the markers; --vm picks the VM by name, an unknown one is exit 1;
#   - Debian's headless Chromium renders the SVG to a PNG that is not blank, with no console message from the
#     page (the SVG has no script: any is an error; Chromium's own D-Bus/GPU lines are counted, not failed);
#   - `report --format trace` is Trace Event JSON that a page's JavaScript, in the same Chromium, accepts by the
#     format's rules (ph/ts/pid/tid everywhere, metadata included; dur >= 0; ts ordered per track; every track
#     named), its verdict read back with --dump-dom.
# VMOT_KEEP=1 keeps the files (session, SVGs, PNG, trace page) of a passing run. Exit 0 pass, 77 skip (one line
# why), else fail.
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=../../scripts/lib/guest-lib.sh
source "$ROOT/scripts/lib/guest-lib.sh"

BIN=${VMOT_BIN:-$ROOT/vmoffset-trace}
[[ -x $BIN ]] || { echo "skip: build vmoffset-trace first (make)"; exit 77; }
command -v python3 >/dev/null || { echo "skip: python3 missing (make deps)"; exit 77; }
CHROMIUM=$(command -v chromium || command -v chromium-browser) || { echo "skip: chromium missing (make deps)"; exit 77; }
CHECK=$ROOT/tests/guest/timechart_check.py
T=$(mktemp -d /tmp/vmot-timechart.XXXXXX)
vmot() { VMOFFSET_CACHE=$T/cache "$BIN" "$@"; }
fails=0

# life TAG MS: ask for a life cycle, wait for its end, set LIFE_C (the child)
life() {
	local tag=$1 ms=$2
	guest_send "$GUEST_SERIAL_SOCK" "life $tag $ms"
	wait_for "$GUEST_SERIAL" "VMOT-LIFE $tag end" $((ms * 4 / 1000 + 20)) || { LIFE_C=""; return 1; }
	LIFE_C=$(tr -d '\r' <"$GUEST_SERIAL" | sed -n "s/^VMOT-LIFE $tag fork pid=\([0-9]*\) .*/\1/p" | tail -n1)
	[[ -n $LIFE_C ]]
}

# chrome LOG ARGS...: one headless Chromium run (its own profile), its stderr in LOG; sets CHROME_S (seconds)
chrome() {
	local log=$1 t0=$EPOCHREALTIME
	shift
	timeout -k 5 120 "$CHROMIUM" --headless --no-sandbox --disable-gpu --user-data-dir="$T/chrome" \
		--enable-logging=stderr --v=0 "$@" 2>"$log"
	local rc=$?
	CHROME_S=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
	return $rc
}

echo "== guest (bookworm, 2 vCPUs)"
guest_start --kernel bookworm --smp 2 --name "tc$$" >/dev/null || { bad "boot"; exit 1; }
guest_send "$GUEST_SERIAL_SOCK" "busy vmot-tc 1 60 20"
vmot record -p "$GUEST_PID" -d 14 -o "$T/s.vmot" 2>"$T/rec.err" &
rec=$!
children=()
if wait_for "$T/rec.err" "^recording to" 90; then
	sleep 1
	for tag in t1 t2 t3; do
		life "$tag" 600 && children+=("$LIFE_C") || bad "life $tag did not run"
		sleep 0.7
	done
else
	bad "record did not start: $(tail -n2 "$T/rec.err")"
fi
wait $rec; rc=$?
((rc == 0)) && ok "record: 14 s session, life cycles of children ${children[*]}" || bad "record: exit $rc: $(tail -n2 "$T/rec.err")"
guest_stop   # the rest runs on the file: Chromium gets the host's CPUs

vmot -j report -i "$T/s.vmot" >"$T/rep.json" 2>"$T/rep.err" || bad "report --json: $(cat "$T/rep.err")"
read -r nsw nlife < <(python3 -c 'import json,sys; e=json.load(open(sys.argv[1]))["events"]
print(sum(x["event"]=="switch" for x in e), sum(x["event"] in ("fork","exec","exit","rename","restart","lost") for x in e))' "$T/rep.json")
((nsw > 100 && nlife >= 9)) && ok "report: $nsw switch events, $nlife lifecycle events" || bad "report: $nsw switches, $nlife lifecycle events"

echo "== timechart"
for w in 1600 20000; do
	vmot timechart -i "$T/s.vmot" -o "$T/tc$w.svg" -w $w 2>"$T/tc.err"; rc=$?
	((rc == 0)) && ok "timechart -w $w: $(cat "$T/tc.err")" || bad "timechart -w $w: exit $rc: $(cat "$T/tc.err")"
	python3 "$CHECK" svg "$T/rep.json" "$T/tc$w.svg" || fails=$((fails + 1))
done
for c in "${children[@]}"; do
	n=$(grep -cE "(fork|exec|exit) [0-9.]+ s: pid $c[ <]" "$T/tc20000.svg")
	((n >= 3)) && ok "life child $c: its fork, exec and exit among the markers" || bad "life child $c: $n of fork/exec/exit marked"
done
name=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["vms"][0]["name"])' "$T/rep.json")
vmot timechart -i "$T/s.vmot" -o "$T/vm.svg" --vm "$name" 2>/dev/null && grep -q "data-vm-name=\"$name\"" "$T/vm.svg" &&
	ok "--vm $name: drawn" || bad "--vm $name"
vmot timechart -i "$T/s.vmot" -o "$T/no.svg" --vm "no-such-vm" 2>"$T/no.err"; rc=$?
((rc == 1)) && [[ ! -e $T/no.svg ]] && ok "--vm no-such-vm: exit 1: $(cat "$T/no.err")" || bad "--vm no-such-vm: exit $rc"

echo "== report --format trace"
vmot report -i "$T/s.vmot" --format trace -o "$T/trace.json" 2>"$T/tr.err" && python3 "$CHECK" tracepage "$T/trace.json" "$T/page.html" &&
	ok "trace: $(stat -c %s "$T/trace.json") bytes of Trace Event JSON" || bad "report --format trace: $(cat "$T/tr.err")"

echo "== Chromium ($("$CHROMIUM" --version 2>/dev/null | head -n1))"
read -r W H < <(python3 -c 'import sys,xml.etree.ElementTree as E; r=E.parse(sys.argv[1]).getroot(); print(r.get("width"), r.get("height"))' "$T/tc1600.svg")
chrome "$T/shot.log" --screenshot="$T/tc.png" --window-size="$W,$H" "file://$T/tc1600.svg"; rc=$?
console=$(grep -c ':CONSOLE' "$T/shot.log")
own=$(grep -c ':ERROR:' "$T/shot.log")
((rc == 0 && console == 0)) && [[ -s $T/tc.png ]] &&
	ok "screenshot of the SVG (${W}x$H) in $CHROME_S s: no console message from the page ($own ERROR lines of Chromium's own: D-Bus, GPU)" ||
	bad "screenshot: exit $rc, $console console line(s): $(grep ':CONSOLE' "$T/shot.log" | head -n3)"
python3 "$CHECK" png "$T/tc.png" 20 || fails=$((fails + 1))
chrome "$T/dom.log" --allow-file-access-from-files --dump-dom "file://$T/page.html" >"$T/page.dom"; rc=$?
verdict=$(grep -o '<pre id="verdict">[^<]*' "$T/page.dom" | sed 's/<pre id="verdict">//')
console=$(grep -c ':CONSOLE' "$T/dom.log")
((rc == 0 && console == 0)) && [[ $verdict == PASS* ]] &&
	ok "Chromium checked the trace in $CHROME_S s: $verdict" ||
	bad "trace page: exit $rc, verdict '${verdict:0:300}', console: $(grep ':CONSOLE' "$T/dom.log" | head -n3)"

if ((fails == 0)); then [[ -n ${VMOT_KEEP:-} ]] && echo "files kept in $T" || rm -rf "$T"; exit 0; fi
echo "FAIL: $fails check(s) (files kept in $T)"
exit 1
