#!/usr/bin/env bash
# bench-discovery.sh — issue 4's goal: from observations available to validated offsets in ≤ 1 s, reading
# ≤ 16 MiB of guest memory, on a 1 GiB zoo guest. Boots each zoo kernel (TCG, 1 GiB), runs
# `vmoffset-trace offsets --pid` (QMP-sampled CR3s; the sampling time is not counted: elapsed_s and
# bytes_read cover discovery and validation only) and prints one line per kernel.
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=lib/guest-lib.sh
source "$ROOT/scripts/lib/guest-lib.sh"
BIN=$ROOT/vmoffset-trace
[[ -x $BIN ]] || { echo "bench-discovery: build first (make)"; exit 1; }
command -v jq >/dev/null || { echo "bench-discovery: jq missing (make deps)"; exit 1; }

printf '%-28s %10s %12s %10s %s\n' kernel elapsed_s bytes_read validated goal
for suite in ${VMOT_BENCH_SUITES:-bullseye bookworm trixie sid}; do
	guest_start --kernel "$suite" --mem 1G >/dev/null 2>&1 || { echo "$suite: boot failed"; continue; }
	out=$("$BIN" offsets --pid "$GUEST_PID" --qmp "$GUEST_QMP" --timeout 2 --format json)
	read -r el by va < <(jq -r '"\(.elapsed_s) \(.bytes_read) \(.validated)"' <<<"$out")
	goal=$(awk -v e="$el" -v b="$by" 'BEGIN { print (e <= 1 && b <= 16 * 1048576) ? "met" : "MISSED" }')
	printf '%-28s %10.3f %12d %10s %s\n' "$GUEST_RELEASE" "$el" "$by" "$va" "$goal (<= 1 s, <= 16 MiB)"
	guest_stop >/dev/null 2>&1
done
