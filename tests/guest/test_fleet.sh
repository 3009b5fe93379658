#!/usr/bin/env bash
# test_fleet.sh — events and metrics into the collectors a fleet runs (issue 15). Two zoo guests (A with a
# -uuid and --reboot, B without) under one `live --output FILE --metrics ... --metrics-file ...`:
#   - bad input first: an unwritable output path, a port already taken, a metrics file in a missing directory
#     → one line, exit 1, before tracing starts (no discovery line on stderr);
#   - Debian's Prometheus, started here on loopback (scrape every second), scrapes /metrics; at one scrape
#     (its timestamp) the forks, execs and exits counters of each VM equal the events of that VM in the
#     JSON-lines files up to the scrape's vmoffset_trace_output_events_total (the sequence number of the last
#     event written before the text was rendered); `promtool check metrics` accepts what is served;
#   - the textfile variant: written atomically, read by Debian's prometheus-node-exporter (textfile collector,
#     no scrape error), its final figures equal the totals of the files;
#   - rotation: a small --output-max-mb leaves several complete files (every line valid JSON, none larger than
#     the limit plus a line), sequence numbers 1..N continuous over all of them, nothing lost; SIGHUP after
#     the file was moved away → a new file, continuous with the moved one;
#   - every event carries schema 1, seq, ts (RFC 3339 UTC), host (this host's name), vm, vm_uuid (A's, and
#     null for B), boot_id (constant while a kernel runs; A's guest reboots — QMP system_reset — and the
#     events after the restart carry a new boot_id);
#   - a write that fails while tracing (--output /dev/full) is said once and ends live with exit 1;
#   - `report -i` of every file of the run, oldest first, reads them as one stream: nothing missing, the same
#     forks, execs and exits as the files.
# VMOT_FLEET_KERNELS="A B" (default "bookworm trixie"). Exit 0 pass, 77 skip (one line why), else fail.
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=../../scripts/lib/guest-lib.sh
source "$ROOT/scripts/lib/guest-lib.sh"

BIN=${VMOT_BIN:-$ROOT/vmoffset-trace}
[[ -x $BIN ]] || { echo "skip: build vmoffset-trace first (make)"; exit 77; }
for t in jq socat python3 prometheus promtool prometheus-node-exporter; do
	command -v $t >/dev/null || { echo "skip: $t missing (make deps)"; exit 77; }
done
read -r KA KB <<<"${VMOT_FLEET_KERNELS:-bookworm trixie}"
UUID_A=5a0c6f1e-8d2b-4c3a-9e7f-0123456789ab
MAX_MB=0.05          # 51 KiB files: a few seconds of switch events each
fails=0
T=$(mktemp -d /tmp/vmot-fleet-test.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$T"; }
trap cleanup EXIT
vmot() { VMOFFSET_CACHE=$T/cache "$BIN" "$@"; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
http_get() { python3 -c 'import sys,urllib.request; sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=10).read().decode())' "$1"; }
t0=$SECONDS

# --- bad input: one line, exit 1, before tracing ------------------------------------------------------------
echo "== bad input"
bad_input() {   # LABEL ARGS...: exit 1, one stderr line, no sign of set-up
	local label=$1 rc n; shift
	vmot live -p $$ "$@" >"$T/bad.out" 2>"$T/bad.err"; rc=$?
	n=$(wc -l <"$T/bad.err")
	if ((rc == 1 && n == 1)) && ! grep -qiE "offsets|mode:|discover" "$T/bad.err"; then
		ok "$label: exit 1, '$(cat "$T/bad.err")'"
	else
		bad "$label: exit $rc, $n line(s): $(head -c 300 "$T/bad.err")"
	fi
}
mkdir -p "$T/ro" && chmod 0555 "$T/ro"
if [[ $(id -u) == 0 ]]; then   # root writes anywhere: a path under a regular file cannot be created by anyone
	touch "$T/file"; bad_input "unwritable --output" --output "$T/file/events.jsonl"
else
	bad_input "unwritable --output" --output "$T/ro/events.jsonl"
fi
PORT_TAKEN=$(free_port)
python3 -c 'import socket,sys,time; s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("127.0.0.1",int(sys.argv[1]))); s.listen(); time.sleep(60)' "$PORT_TAKEN" &
PIDS+=($!); sleep 0.5
bad_input "--metrics on a port already taken" --metrics "127.0.0.1:$PORT_TAKEN"
bad_input "--metrics-file in a missing directory" --metrics-file "$T/missing/dir/vmot.prom"
bad_input "--metrics with a bad port" --metrics "127.0.0.1:99999"

# --- two guests, Prometheus, node_exporter -------------------------------------------------------------------
echo "== guests A ($KA, -uuid, --reboot) and B ($KB)"
guest_start --kernel "$KA" --smp 1 --name "fla$$" --uuid "$UUID_A" --reboot >/dev/null || { bad "boot guest A"; exit 1; }
A_PID=$GUEST_PID A_NAME=$GUEST_NAME A_SOCK=$GUEST_SERIAL_SOCK A_SERIAL=$GUEST_SERIAL A_QMP=$GUEST_QMP
guest_start --kernel "$KB" --smp 1 --name "flb$$" >/dev/null || { bad "boot guest B"; exit 1; }
B_PID=$GUEST_PID B_NAME=$GUEST_NAME B_SOCK=$GUEST_SERIAL_SOCK
echo "   booted in $((SECONDS - t0)) s"

# a file that cannot take the events (a full disk): said once, exit 1, nothing silent
vmot live -p "$B_PID" --output /dev/full -d 20 >"$T/full.out" 2>"$T/full.err"; rc=$?
n=$(grep -c "events are not written" "$T/full.err")
((rc == 1 && n == 1)) && ok "--output /dev/full: exit 1, '$(grep -m1 "events are not written" "$T/full.err")'" ||
	bad "--output /dev/full: exit $rc, $n error line(s): $(tail -n2 "$T/full.err")"

MPORT=$(free_port); PPORT=$(free_port)
mkdir -p "$T/textfile" "$T/tsdb" "$T/out"
cat >"$T/prom.yml" <<EOF
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: vmoffset-trace
    static_configs:
      - targets: ['127.0.0.1:$MPORT']
EOF
prometheus --config.file="$T/prom.yml" --storage.tsdb.path="$T/tsdb" --web.listen-address="127.0.0.1:$PPORT" \
	>"$T/prom.log" 2>&1 &
PIDS+=($!)

OUT=$T/out/events.jsonl
VMOFFSET_CACHE=$T/cache "$BIN" live -p "$A_PID" -p "$B_PID" --output "$OUT" --output-max-mb $MAX_MB --output-keep 1000 \
	--metrics "127.0.0.1:$MPORT" --metrics-file "$T/textfile/vmot.prom" -d 75 >"$T/live.out" 2>"$T/live.err" &
live=$!
PIDS+=($live)
if ! wait_for "$T/live.err" "^mode: " 90; then
	bad "live did not start: $(tail -n3 "$T/live.err")"; exit 1
fi
grep -q "^metrics: http://127.0.0.1:$MPORT/metrics" "$T/live.err" && ok "live: '$(grep '^metrics:' "$T/live.err")'" ||
	bad "live did not say where the metrics are"

# activity on both: life cycles (fork, exec, exit) and short-lived processes
activity() { for i in $(seq 1 "$2"); do guest_send "$A_SOCK" "life $1$i 300"; guest_send "$B_SOCK" "life $1$i 300";
	guest_send "$A_SOCK" "churn 3"; guest_send "$B_SOCK" "churn 3"; sleep 1; done; }
activity a 8

# SIGHUP after the file was moved away: a new file
last_moved=0
mv "$OUT" "$T/out/moved.jsonl"
kill -HUP $live
sleep 2
# the reopen creates the file at once; events go on into it (an idle moment may write none: checked by seq below)
if [[ -f $OUT ]] && kill -0 $live 2>/dev/null; then
	ok "SIGHUP after the file was moved: a new $OUT ($(wc -l <"$OUT") line(s) so far), live still running"
else
	bad "SIGHUP: no new file (or live ended): $(tail -n2 "$T/live.err")"
fi
grep -q "reopened" "$T/live.err" && ok "live: '$(grep -m1 reopened "$T/live.err")'" || bad "live did not say it reopened the file"
activity b 6
sleep 2

# one Prometheus scrape: its timestamp, then every counter at exactly that time
python3 - "$PPORT" >"$T/cut.json" 2>"$T/cut.err" <<'EOF'
import json, sys, urllib.parse, urllib.request
base = "http://127.0.0.1:%s/api/v1/query?" % sys.argv[1]
def q(expr, t=None):
    args = {"query": expr}
    if t is not None:
        args["time"] = t
    r = json.load(urllib.request.urlopen(base + urllib.parse.urlencode(args), timeout=10))
    assert r["status"] == "success", r
    return r["data"]["result"]
ts = q("timestamp(vmoffset_trace_output_events_total)")
t = ts[0]["value"][1]
rows = q('{__name__=~"vmoffset_trace_(forks|execs|exits|output_events|restarts)_total|vmoffset_trace_vm_validated"}', t)
print(json.dumps({"time": t, "rows": [{"name": r["metric"]["__name__"], "vm_pid": r["metric"].get("qemu_pid"),
                                        "value": r["value"][1]} for r in rows]}))
EOF
if [[ -s $T/cut.json ]]; then
	S=$(jq -r '.rows[] | select(.name == "vmoffset_trace_output_events_total") | .value' "$T/cut.json")
	ok "Prometheus scraped /metrics: at one scrape ($(jq -r .time "$T/cut.json")) $S events had been written"
else
	bad "Prometheus query failed: $(tail -n3 "$T/cut.err") / $(tail -n3 "$T/prom.log")"; S=0
fi
http_get "http://127.0.0.1:$MPORT/metrics" >"$T/scrape.txt"
if promtool check metrics <"$T/scrape.txt" >"$T/promtool.out" 2>&1; then
	ok "promtool check metrics accepts /metrics ($(grep -c '^vmoffset_trace_' "$T/scrape.txt") samples)"
else
	bad "promtool check metrics: $(head -n5 "$T/promtool.out")"
fi

# the guest A reboots: a restart event, and a new boot_id after it
guest_qmp "$A_QMP" '{"execute":"system_reset"}'
if wait_for "$T/live.err" "guest kernel back" 120; then
	ok "guest A rebooted under live: '$(grep -o 'guest kernel back.*' "$T/live.err" | head -c 100)'"
	sleep 2; guest_send "$A_SOCK" "life c1 300"; sleep 3
else
	bad "guest A's reboot was not followed: $(tail -n3 "$T/live.err")"
fi
kill -INT $live; wait $live; lrc=$?
((lrc == 0)) && ok "live ended with exit 0" || bad "live exit $lrc: $(tail -n3 "$T/live.err")"

# --- the files: complete lines, continuous seq, rotation ----------------------------------------------------
rotated=()   # oldest (highest suffix) first
for ((k = 1000; k >= 1; k--)); do [[ -f $OUT.$k ]] && rotated+=("$OUT.$k"); done
files=("${rotated[@]}" "$T/out/moved.jsonl" "$OUT")
nrot=${#rotated[@]}
max_bytes=$(python3 -c "print(int($MAX_MB * 1048576))")
badlines=0 big=0
for f in "${files[@]}"; do
	[[ -f $f ]] || continue
	n=$(jq -c . "$f" 2>/dev/null | wc -l); l=$(wc -l <"$f")
	((n == l)) || badlines=$((badlines + l - n))
	[[ -z $(tail -c1 "$f") ]] || badlines=$((badlines + 1))   # a file that does not end with a newline
	maxline=$(awk '{ if (length($0) > m) m = length($0) } END { print m + 1 }' "$f")
	(($(stat -c %s "$f") <= max_bytes + maxline)) || big=$((big + 1))
done
cat "${files[@]}" >"$T/all.jsonl" 2>/dev/null
total=$(wc -l <"$T/all.jsonl")
((nrot >= 3)) && ok "rotation: $nrot rotated file(s) of at most $MAX_MB MiB (+ one line) besides the moved and the current file" ||
	bad "rotation: only $nrot rotated file(s)"
((badlines == 0 && big == 0)) && ok "every line of every file is one complete JSON object ($total lines); no file past the limit + a line" ||
	bad "$badlines broken line(s), $big file(s) past the limit"
gaps=$(jq -s '[.[].seq] | sort | . as $s | [range(0; length) | select($s[.] != . + 1)] | length' "$T/all.jsonl")
maxseq=$(jq -s '[.[].seq] | max' "$T/all.jsonl")
((gaps == 0 && maxseq == total)) && ok "seq 1..$maxseq continuous over all files: no event lost or repeated" ||
	bad "seq: $gaps out of place, max $maxseq for $total lines"
last_moved=$(jq -s '[.[].seq] | max' "$T/out/moved.jsonl"); first_new=$(jq -s '[.[].seq] | min' "$OUT" 2>/dev/null)
first_rot=$(jq -s '[.[].seq] | min' "${rotated[0]:-/dev/null}" 2>/dev/null)
((first_rot == 1)) && ok "the oldest rotated file starts at seq 1" || bad "the oldest rotated file starts at seq $first_rot"
[[ -n $first_new ]] && ((first_new > last_moved)) && ok "after SIGHUP: the moved file ends at seq $last_moved, later files go on after it" ||
	bad "after SIGHUP: moved file ends at $last_moved, current starts at $first_new"

# --- the envelope ---------------------------------------------------------------------------------------------
HOST=$(hostname)
nbad=$(jq -s --arg h "$HOST" '[.[] | select(.schema != 1 or .host != $h or (.ts | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}\\.[0-9]{9}Z$") | not)
	or (.boot_id | type) != "string" or (.boot_id | test("^[0-9a-f]{16}$") | not))] | length' "$T/all.jsonl")
((nbad == 0)) && ok "every event: schema 1, seq, ts (RFC 3339 UTC), host $HOST, a 16-hex boot_id" || bad "$nbad event(s) without the envelope"
ua=$(jq -rs --argjson p "$A_PID" '[.[] | select(.vm_pid == $p) | .vm_uuid] | unique | join(",")' "$T/all.jsonl")
ub=$(jq -rs --argjson p "$B_PID" '[.[] | select(.vm_pid == $p) | .vm_uuid] | unique | map(tostring) | join(",")' "$T/all.jsonl")
[[ $ua == "$UUID_A" && $ub == "null" ]] && ok "vm_uuid: A's $UUID_A (QEMU -uuid), B's null (none given)" || bad "vm_uuid: A '$ua', B '$ub'"
nb=$(jq -rs --argjson p "$B_PID" '[.[] | select(.vm_pid == $p) | .boot_id] | unique | length' "$T/all.jsonl")
ab=$(jq -rs --argjson p "$A_PID" '[.[] | select(.vm_pid == $p)] | sort_by(.seq) | (map(.event) | index("restart")) as $r |
	if $r == null then "no restart" else ([.[:$r][] | .boot_id] | unique | length | tostring) + " " +
	([.[$r + 1:][] | .boot_id] | unique | length | tostring) + " " + ((.[$r - 1].boot_id != .[$r + 1].boot_id) | tostring) end' "$T/all.jsonl")
((nb == 1)) && ok "B: one boot_id over the whole run (no restart)" || bad "B: $nb boot_ids"
[[ $ab == "1 1 true" ]] && ok "A: one boot_id before its restart event, another one after it" || bad "A: boot_ids around the restart: $ab"

# --- Prometheus's scrape = the files up to its seq ----------------------------------------------------------
if ((S > 0)); then
	for vm in "$A_PID:A" "$B_PID:B"; do
		p=${vm%%:*} l=${vm#*:} line=""
		for ev in fork exec exit; do
			want=$(jq -s --argjson p "$p" --argjson s "$S" --arg e "$ev" '[.[] | select(.vm_pid == $p and .seq <= $s and .event == $e)] | length' "$T/all.jsonl")
			got=$(jq -r --arg p "$p" --arg n "vmoffset_trace_${ev}s_total" '.rows[] | select(.name == $n and .vm_pid == $p) | .value' "$T/cut.json")
			if [[ $got == "$want" ]] && ((want > 0)); then line+=" ${ev}s $got"; else bad "$l: Prometheus ${ev}s_total '$got', the files $want (up to seq $S)"; fi
		done
		[[ -n $line ]] && ok "$l: Prometheus's scrape equals the JSON lines up to seq $S:$line"
	done
fi

# --- the textfile, through node_exporter ---------------------------------------------------------------------
NPORT=$(free_port)
prometheus-node-exporter --collector.disable-defaults --collector.textfile \
	--collector.textfile.directory="$T/textfile" --web.listen-address="127.0.0.1:$NPORT" >"$T/ne.log" 2>&1 &
PIDS+=($!)
for ((k = 0; k < 50; k++)); do http_get "http://127.0.0.1:$NPORT/metrics" >"$T/ne.txt" 2>/dev/null && break; sleep 0.2; done
if grep -q '^node_textfile_scrape_error 0' "$T/ne.txt"; then
	ok "node_exporter reads the textfile without error ($(grep -c '^vmoffset_trace_' "$T/ne.txt") vmoffset_trace samples)"
else
	bad "node_exporter: $(grep textfile "$T/ne.txt" | head -n3) $(tail -n2 "$T/ne.log")"
fi
promtool check metrics <"$T/textfile/vmot.prom" >"$T/promtool2.out" 2>&1 && ok "promtool check metrics accepts the textfile" ||
	bad "promtool on the textfile: $(head -n3 "$T/promtool2.out")"
for vm in "$A_PID:A" "$B_PID:B"; do
	p=${vm%%:*} l=${vm#*:} line=""
	for ev in fork exec exit; do
		want=$(jq -s --argjson p "$p" --arg e "$ev" '[.[] | select(.vm_pid == $p and .event == $e)] | length' "$T/all.jsonl")
		got=$(sed -n "s/^vmoffset_trace_${ev}s_total{[^}]*qemu_pid=\"$p\"[^}]*} \([0-9]*\)$/\1/p" "$T/ne.txt")
		[[ $got == "$want" ]] && line+=" ${ev}s $got" || bad "$l: node_exporter ${ev}s_total '$got', the files $want"
	done
	[[ -n $line ]] && ok "$l: node_exporter's final figures equal the files' totals:$line"
done
ls "$T/textfile" | grep -q tmp && bad "a temporary metrics file was left behind" || ok "no temporary file left next to the textfile"

# --- report reads the JSON lines ------------------------------------------------------------------------------
# every file of the run, oldest first (by first seq: the moved file sits between rotated ones)
mapfile -t ordered < <(for f in "${files[@]}"; do [[ -s $f ]] && echo "$(head -n1 "$f" | jq .seq) $f"; done | sort -n | cut -d' ' -f2-)
iargs=(); for f in "${ordered[@]}"; do iargs+=(-i "$f"); done
if vmot report "${iargs[@]}" --json >"$T/report.json" 2>"$T/report.err" && jq -e . "$T/report.json" >/dev/null; then
	missing=$(jq '.integrity.events_missing // 0' "$T/report.json")
	line=""
	for ev in fork exec exit; do
		want=$(jq -s --arg e "$ev" '[.[] | select(.event == $e)] | length' "$T/all.jsonl")
		got=$(jq --arg e "$ev" '[.events[] | select(.event == $e)] | length' "$T/report.json")
		[[ $got == "$want" ]] && line+=" ${ev}s $got" || bad "report -i (${#ordered[@]} files): ${ev}s $got, the files $want"
	done
	[[ $(jq -r .source "$T/report.json") == jsonl ]] && ((missing == 0)) && [[ -n $line ]] &&
		ok "report -i of the ${#ordered[@]} files in order: source jsonl, nothing missing,$line" ||
		bad "report -i: source $(jq -r .source "$T/report.json"), $missing missing: $(head -c 200 "$T/report.err")"
else
	bad "report -i on the JSON-lines files: $(tail -n2 "$T/report.err")"
fi

echo "fleet test: $((SECONDS - t0)) s, $fails failure(s)"
((fails == 0))
