#!/usr/bin/env bash
# bench-maps.sh — issue 14's goals on a 1 GiB bookworm guest with the usual workload (median of
# VMOT_BENCH_RUNS runs, default 5):
#   `ps` with USER, EXE and CMD costs ≤ 1.5× `ps --plain` (whole commands, wall clock; and what the reads
#   themselves take, from `ps -v`: command lines + users + executables, member discovery included);
#   `maps` of a process with 500 mappings: the walk and its paths ≤ 50 ms (from `maps -v`).
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=lib/guest-lib.sh
source "$ROOT/scripts/lib/guest-lib.sh"
BIN=$ROOT/vmoffset-trace
RUNS=${VMOT_BENCH_RUNS:-5}
[[ -x $BIN ]] || { echo "bench-maps: build first (make)"; exit 1; }

median() { sort -n | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
wall() { local t0=$EPOCHREALTIME; "$@" >/dev/null 2>&1; awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.3f\n", b - a }'; }

dir=$("$ROOT/scripts/fetch-kernel.sh" bookworm amd64) || { echo "bench-maps: no bookworm kernel (fetch failed)"; exit 1; }
guest_start --kernel "$dir" --smp 2 --mem 1G >/dev/null 2>&1 || { echo "bench-maps: guest did not boot"; exit 1; }
guest_send "$GUEST_SERIAL_SOCK" "mapsproc 500"
pid=""
for ((i = 0; i < 100; i++)); do
	[[ -n $pid ]] && break
	sleep 0.2
	pid=$(guest_ps | awk '$4 == "vmot-bench" { print $1 }' | head -n1)
done
[[ -n $pid ]] || { echo "bench-maps: the 500-mapping process did not start"; exit 1; }
sleep 1

plain=() full=() reads=() maps=() n=""
for ((r = 0; r < RUNS; r++)); do
	plain+=("$(wall "$BIN" ps --pid "$GUEST_PID" --qmp "$GUEST_QMP" --plain)")
	full+=("$(wall "$BIN" ps --pid "$GUEST_PID" --qmp "$GUEST_QMP")")
	line=$("$BIN" -v ps --pid "$GUEST_PID" --qmp "$GUEST_QMP" 2>&1 >/dev/null | grep "^debug: ps: .* tasks; command lines")
	reads+=("$(sed -E 's/.*command lines ([0-9.]+) ms, users ([0-9.]+) ms, executables ([0-9.]+) ms.*/\1 \2 \3/' <<<"$line")")
	line=$("$BIN" -v maps --pid "$GUEST_PID" --qmp "$GUEST_QMP" --task "$pid" 2>&1 >/dev/null | grep "^debug: maps: [0-9]* mappings of process")
	n=$(sed -E 's/debug: maps: ([0-9]+) mappings.*/\1/' <<<"$line")
	maps+=("$(sed -E 's/.* read in ([0-9.]+) ms.*/\1/' <<<"$line")")
done
p=$(printf '%s\n' "${plain[@]}" | median); f=$(printf '%s\n' "${full[@]}" | median)
extra=$(printf '%s\n' "${reads[@]}" | awk '{ print $1 + $2 + $3 }' | median)
m=$(printf '%s\n' "${maps[@]}" | median)
ratio=$(awk -v a="$f" -v b="$p" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')
printf '%-40s %10s %10s  %s\n' measure value goal met
printf '%-40s %9ss %10s\n' "ps --plain (wall, median)" "$p" ""
printf '%-40s %9ss %10s  %s\n' "ps with USER/EXE/CMD (wall, median)" "$f" "1.5x" "$(awk -v r="$ratio" 'BEGIN { print (r <= 1.5 ? "yes" : "NO") }') (${ratio}x)"
printf '%-40s %8sms %10s\n' "  of which: argv + users + executables" "$extra" ""
printf '%-40s %8sms %10s  %s\n' "maps of $n mappings (walk + paths)" "$m" "50ms" "$(awk -v v="$m" 'BEGIN { print (v <= 50 ? "yes" : "NO") }')"
