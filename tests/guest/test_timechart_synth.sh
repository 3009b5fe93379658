#!/usr/bin/env bash
# test_timechart_synth.sh — timechart and report --format trace on synthetic sessions (issue 18); no guest:
#   - an hour of a 4-vCPU guest (build/tools/synth-session: a switch every 0.1..8 ms per vCPU, 300 processes, a
#     life cycle every 100 ms) renders to one SVG of at most 5 MB that parses as XML (the render time is printed;
#     its goal, 2 s, is `make bench`'s: scripts/bench-timechart.sh);
#   - a minute of two VMs with hostile process names (markup, quotes, bytes that are not UTF-8) and a guest
#     restart, drawn at the default width and at 20000 px: every span is runs of the session and every lifecycle
#     event has its marker (tests/guest/timechart_check.py against `report --json`), the hostile names escaped;
#   - its Trace Event JSON parses, with ts ordered per track;
#   - live's JSON-lines event file is drawn as a session is (the same checks).
# Exit 0 pass, 77 skip (one line why), else fail.
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BIN=${VMOT_BIN:-$ROOT/vmoffset-trace}
TOOLS=${VMOT_TOOLS:-$ROOT/build/tools}
[[ -x $BIN && -x $TOOLS/synth-session ]] || { echo "skip: build vmoffset-trace and the tools first (make)"; exit 77; }
command -v python3 >/dev/null || { echo "skip: python3 missing (make deps)"; exit 77; }
T=$(mktemp -d /tmp/vmot-tc-synth.XXXXXX)
trap 'rm -rf "$T"' EXIT
fails=0
ok() { echo "  ok   $*"; }
bad() { echo "  FAIL $*"; fails=$((fails + 1)); }
CHECK=$ROOT/tests/guest/timechart_check.py

echo "== an hour of a 4-vCPU guest"
t0=$EPOCHREALTIME
"$TOOLS/synth-session" -o "$T/hour.vmot" -d 3600 --vcpus 4 --restart >"$T/gen.out" || bad "synth-session failed"
echo "  note generated $(cat "$T/gen.out") in $(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }') s, $(($(stat -c %s "$T/hour.vmot") / 1048576)) MiB"
t0=$EPOCHREALTIME
"$BIN" timechart -i "$T/hour.vmot" -o "$T/hour.svg" 2>"$T/hour.err"; rc=$?
secs=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.2f", b - a }')
size=$(stat -c %s "$T/hour.svg" 2>/dev/null || echo 0)
((rc == 0 && size > 0 && size <= 5 * 1024 * 1024)) &&
	ok "hour: SVG of $((size / 1024)) KiB (at most 5 MiB) in ${secs} s: $(cat "$T/hour.err")" ||
	bad "hour: exit $rc, $size bytes (limit 5 MiB): $(cat "$T/hour.err")"
python3 -c 'import sys, xml.etree.ElementTree as E; r = E.parse(sys.argv[1]).getroot(); print(len(r.findall(".//{http://www.w3.org/2000/svg}rect")))' \
	"$T/hour.svg" >"$T/hour.n" 2>&1 && ok "hour: parses as XML ($(cat "$T/hour.n") rects)" || bad "hour: not XML: $(tail -n1 "$T/hour.n")"

echo "== a minute of two VMs, hostile names, a restart"
"$TOOLS/synth-session" -o "$T/min.vmot" -d 60 --vms 2 --vcpus 2 --switch-ms 3 --procs 40 --life-ms 150 --restart --hostile >/dev/null ||
	bad "synth-session failed"
"$BIN" -j report -i "$T/min.vmot" >"$T/min.json" 2>"$T/min.rep.err" || bad "report --json: $(cat "$T/min.rep.err")"
for w in 1600 20000; do
	"$BIN" timechart -i "$T/min.vmot" -o "$T/min$w.svg" -w $w 2>"$T/min.err" || bad "timechart -w $w: $(cat "$T/min.err")"
	python3 "$CHECK" svg "$T/min.json" "$T/min$w.svg" || fails=$((fails + 1))
done
grep -q '&lt;svg&gt;' "$T/min20000.svg" && grep -q '\\xff\\xfe' "$T/min20000.svg" && ! grep -q $'\xff' "$T/min20000.svg" &&
	ok "hostile names escaped (&lt;svg&gt;, \\xff\\xfe; no raw 0xff byte)" || bad "hostile names not escaped as expected"
"$BIN" report -i "$T/min.vmot" --format trace -o "$T/min.trace.json" 2>"$T/trace.err" || bad "report --format trace: $(cat "$T/trace.err")"
python3 - "$T/min.trace.json" <<'EOF' && ok "trace: $(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["traceEvents"]))' "$T/min.trace.json") events, JSON, ts ordered per track" || bad "trace JSON"
import json, sys
d = json.load(open(sys.argv[1]))
last = {}
for e in d["traceEvents"]:
    assert all(k in e for k in ("ph", "ts", "pid", "tid")), e
    if e["ph"] == "X":
        assert e["dur"] >= 0, e
    if e["ph"] != "M":
        k = (e["pid"], e["tid"])
        assert e["ts"] >= last.get(k, 0), e
        last[k] = e["ts"]
EOF

echo "== live's JSON-lines event file"
python3 - "$T/ev.jsonl" <<'PY'
import sys
out, seq = open(sys.argv[1], "w"), 0
def line(ms, vcpu, event, rest):
    global seq
    seq += 1
    s = 9 * 3600 + 60 + ms // 1000
    hms = "%02d:%02d:%02d.%03d" % (s // 3600, s // 60 % 60, s % 60, ms % 1000)
    out.write('{"schema":1,"seq":%d,"ts":"2026-12-05T%s000000Z","host":"hv1","vm":"web","vm_pid":4242,"vm_uuid":null,'
              '"boot_id":"9f1c2b3a4d5e6f70","time":"%s000","t":%d.%03d000,"vcpu":%s,"event":"%s",%s}\n'
              % (seq, hms, hms, ms // 1000, ms % 1000, "null" if vcpu is None else vcpu, event, rest))
for k in range(400):
    pid = (0, 300, 301, 302)[k % 4]
    comm = "swapper/%d" % (k % 2) if pid == 0 else "app-%d" % pid
    line(10 + k * 7, k % 2, "switch", '"pid":%d,"tgid":%d,"ppid":1,"comm":"%s","prev_pid":-1,"sampled":true,'
         '"task":"0xffff888004000%03x"' % (pid, pid, comm, pid))
    if k % 100 == 50:
        for ev, d in (("fork", 1), ("exit", 3)):
            line(10 + k * 7 + d, None, ev, '"pid":%d,"tgid":%d,"ppid":300,"comm":"kid","task":"0xffff888005000000"'
                 % (900 + k, 900 + k))
PY
"$BIN" -j report -i "$T/ev.jsonl" >"$T/ev.json" 2>"$T/ev.err" || bad "report of the JSON-lines file: $(cat "$T/ev.err")"
"$BIN" timechart -i "$T/ev.jsonl" -o "$T/ev.svg" 2>"$T/ev.tc" && ok "$(cat "$T/ev.tc")" || bad "timechart of JSON lines: $(cat "$T/ev.tc")"
python3 "$CHECK" svg "$T/ev.json" "$T/ev.svg" || fails=$((fails + 1))

((fails == 0)) || { echo "FAIL: $fails check(s)"; exit 1; }
exit 0
