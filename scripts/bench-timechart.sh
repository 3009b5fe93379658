#!/usr/bin/env bash
# bench-timechart.sh — issue 18's goals for `timechart` on a synthetic hour of a 4-vCPU guest
# (build/tools/synth-session: ~3.6 M switch events, 300 processes, a life cycle every 100 ms, one restart):
# the render (whole command, wall clock, median of VMOT_BENCH_RUNS runs, default 3) ≤ 2 s, the SVG ≤ 5 MB.
# Also times `report --format trace` of a minute of it (Trace Event JSON has no merging: it grows with the runs).
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=$ROOT/vmoffset-trace
GEN=$ROOT/build/tools/synth-session
RUNS=${VMOT_BENCH_RUNS:-3}
[[ -x $BIN && -x $GEN ]] || { echo "bench-timechart: build first (make)"; exit 1; }
T=$(mktemp -d /tmp/vmot-bench-tc.XXXXXX)
trap 'rm -rf "$T"' EXIT

median() { sort -n | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
wall() { local t0=$EPOCHREALTIME; "$@" >/dev/null 2>&1; awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.3f\n", b - a }'; }

"$GEN" -o "$T/hour.vmot" -d 3600 --vcpus 4 --restart >"$T/gen.out" || { echo "bench-timechart: synth-session failed"; exit 1; }
"$GEN" -o "$T/min.vmot" -d 60 --vcpus 4 >/dev/null || { echo "bench-timechart: synth-session failed"; exit 1; }
times=()
for ((r = 0; r < RUNS; r++)); do
	times+=("$(wall "$BIN" timechart -i "$T/hour.vmot" -o "$T/hour.svg")")
done
t=$(printf '%s\n' "${times[@]}" | median)
mb=$(awk -v b="$(stat -c %s "$T/hour.svg")" 'BEGIN { printf "%.2f", b / 1048576 }')
tr=$(wall "$BIN" report -i "$T/min.vmot" --format trace -o "$T/min.json")
trmb=$(awk -v b="$(stat -c %s "$T/min.json")" 'BEGIN { printf "%.1f", b / 1048576 }')
printf '%-48s %10s %10s  %s\n' measure value goal met
printf '%-48s %9ss %10s  %s\n' "timechart, 1 h x 4 vCPUs ($(awk '{ print $2 }' "$T/gen.out") events)" "$t" "2s" \
	"$(awk -v v="$t" 'BEGIN { print (v <= 2 ? "yes" : "NO") }')"
printf '%-48s %8sMB %10s  %s\n' "  its SVG" "$mb" "5MB" "$(awk -v v="$mb" 'BEGIN { print (v <= 5 ? "yes" : "NO") }')"
printf '%-48s %9ss %10s  (%s MB of JSON)\n' "report --format trace, 1 min x 4 vCPUs" "$tr" "" "$trmb"
