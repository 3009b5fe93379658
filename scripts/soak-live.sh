#!/usr/bin/env bash
# soak-live.sh — dead switch streams over many boots (issue 11; outside CI: about 40 s a boot).
#
#   scripts/soak-live.sh [BOOTS] [KERNEL] [SMP]     default: 10 boots of the 7.x guest with 4 vCPUs
#
# Each boot: a fresh guest (new KASLR base) running ~8 CPU-bound threads (vmot-spin 4 × 100 %, vmot-half 4 ×
# 50 %), `live --json` for 10 s with an empty offsets cache, then the guest's own accounting of the window.
# A stream is dead when a vCPU shows no switch after the first ones, or the CPU-bound programs' on-CPU share
# from the stream is more than 10 points away from the guest's own utime+stime. Prints one line a boot and
# "N of BOOTS dead"; exit 1 when any stream was dead.
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=lib/guest-lib.sh
source "$ROOT/scripts/lib/guest-lib.sh"
BIN=${VMOT_BIN:-$ROOT/vmoffset-trace}
BOOTS=${1:-10} KERNEL=${2:-7} SMP=${3:-4}
[[ -x $BIN ]] || { echo "soak-live: build first (make)"; exit 1; }
T=$(mktemp -d /tmp/vmot-soak.XXXXXX)
dead=0
for ((b = 1; b <= BOOTS; b++)); do
	D=$T/$b; mkdir -p "$D"
	guest_start --kernel "$KERNEL" --smp "$SMP" --name "soak$$-$b" >/dev/null || { echo "boot $b: boot failed"; dead=$((dead + 1)); continue; }
	guest_send "$GUEST_SERIAL_SOCK" "busy vmot-spin $SMP 100"
	guest_send "$GUEST_SERIAL_SOCK" "busy vmot-half $SMP 50 37"
	sleep 1
	VMOFFSET_CACHE=$D/cache "$BIN" live --pid "$GUEST_PID" --json -d 12 >"$D/live.jsonl" 2>"$D/live.err" &
	live=$!
	wait_for "$D/live.err" "^mode: " 60 || { echo "boot $b: live did not start: $(tail -n1 "$D/live.err")"; dead=$((dead + 1)); kill $live 2>/dev/null; guest_stop; continue; }
	sleep 1
	ta=$EPOCHREALTIME; guest_acct "$GUEST_RUN_DIR" vmot-spin vmot-half >"$D/acct.a"
	sleep 8
	tb=$EPOCHREALTIME; guest_acct "$GUEST_RUN_DIR" vmot-spin vmot-half >"$D/acct.b"
	wait $live
	shares=$(python3 "$ROOT/tests/guest/oncpu_shares.py" "$D/live.jsonl" "$D/acct.a" "$D/acct.b" "$ta" "$tb" "$SMP" \
		vmot-spin vmot-half | tr '\n' ' ')
	# switches per vCPU after the initial ones
	quiet=$(jq -s --argjson n "$SMP" '[range(0; $n) as $v | [.[] | select(.event == "switch" and .vcpu == $v and .t > 1)] | length | select(. == 0)] | length' "$D/live.jsonl")
	far=$(awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^live=/) { l = substr($i, 6); g = substr($(i + 1), 7); d = l - g; if (d < 0) d = -d; if (d > m) m = d } } END { print m + 0 }' <<<"$shares")
	switches=$(jq -s '[.[] | select(.event == "switch")] | length' "$D/live.jsonl")
	if ((quiet > 0)) || awk -v f="$far" 'BEGIN { exit !(f > 10) }'; then
		dead=$((dead + 1)); verdict=DEAD
	else
		verdict=alive
	fi
	echo "boot $b: $verdict: $switches switches, $quiet silent vCPU(s), largest share gap $far points; $shares"
	guest_stop
done
echo "$dead of $BOOTS dead"
((dead == 0)) && rm -rf "$T"
((dead == 0))
