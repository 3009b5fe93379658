#!/usr/bin/env bash
# test_slot.sh — the per-CPU current-task slot is kept under watch while tracing (issue 11). On a zoo guest
# running CPU-bound programs:
#   - set-up confirms a slot from user-space samples and names the candidates it refuted (-vv);
#   - `live --percpu-current S` started on a refuted candidate S (a per-CPU pointer to a task that is not
#     the current one: the idle task, a kthread) says on stderr that S stopped agreeing with the vCPUs' CR3s
#     (or never moved while the guest switches) and follows the confirmed slot; from then on the stream shows the programs the guest runs;
#   - the offsets cache then holds the confirmed slot, not S.
# Several per-CPU variables can hold the current task (current_task and the runqueue's curr); any slot set-up
# found with 3 or more hits and no miss is a right replacement.
# Exit 0 pass, 77 skip (one line why), else fail.
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=../../scripts/lib/guest-lib.sh
source "$ROOT/scripts/lib/guest-lib.sh"

BIN=${VMOT_BIN:-$ROOT/vmoffset-trace}
[[ -x $BIN ]] || { echo "skip: build vmoffset-trace first (make)"; exit 77; }
for t in jq socat; do command -v $t >/dev/null || { echo "skip: $t missing (make deps)"; exit 77; }; done
T=$(mktemp -d /tmp/vmot-slot.XXXXXX)
KERNEL=${VMOT_SLOT_KERNEL:-6.1:cloud-amd64}

guest_start --kernel "$KERNEL" --smp 2 --name "slot$$" >/dev/null || { bad "boot $KERNEL"; exit 1; }
guest_send "$GUEST_SERIAL_SOCK" "busy vmot-spin 1 100"
guest_send "$GUEST_SERIAL_SOCK" "busy vmot-half 1 50 37"
sleep 1

# 1. set-up on its own: which slot is confirmed, which candidates are refuted
VMOFFSET_CACHE=$T/cache "$BIN" -vv live --pid "$GUEST_PID" --json -d 1 >"$T/a.jsonl" 2>"$T/a.err"
good=$(sed -n 's/.*per-CPU current task \([-+0-9]*\): confirmed after.*/\1/p' "$T/a.err" | tail -n1)
bad_slot=$(sed -n 's/.*  slot \([-+0-9]*\): live, user-space evidence 0 hit(s) \([1-9][0-9]*\) miss.*/\1/p' "$T/a.err" | head -n1)
# every slot as good as the confirmed one: several per-CPU variables hold the current task (current_task and the
# runqueue's curr move together), and either is a right answer for the replacement and the cache
goods=" $(sed -n 's/.*  slot \([-+0-9]*\): live, user-space evidence \([3-9]\|[1-9][0-9]\+\) hit(s) 0 miss.*/\1/p' "$T/a.err" | tr '\n' ' ')"
[[ -n $good && $goods != *" $good "* ]] && goods+="$good "
if [[ -n $good && -n $bad_slot ]]; then
	ok "set-up confirmed slot $good; candidate $bad_slot refuted by user-space samples"
else
	bad "set-up: confirmed '${good:-none}', refuted '${bad_slot:-none}': $(grep 'per-CPU current task' "$T/a.err" | tail -n1)"
	exit 1
fi

# 2. start on the refuted slot: it must be replaced while tracing, and the stream must come alive
VMOFFSET_CACHE=$T/cache "$BIN" live --pid "$GUEST_PID" --json -d 8 --percpu-current "$bad_slot" >"$T/b.jsonl" 2>"$T/b.err"
rc=$?
((rc == 0)) || bad "live --percpu-current $bad_slot: exit $rc: $(tail -n1 "$T/b.err")"
now=$(sed -n "s/.*slot $bad_slot .*\(stopped agreeing\|no longer holds a task\|never moved\).*following slot \([-+0-9]*\) .*/\2/p" "$T/b.err" | head -n1)
if [[ -n $now && $goods == *" $now "* ]]; then
	ok "slot $bad_slot replaced while tracing by $now (confirmed at set-up:$goods): $(grep -m1 'following slot' "$T/b.err" | cut -c1-150)"
else
	bad "slot $bad_slot not replaced by one of$goods: $(grep -v '^debug' "$T/b.err" | tail -n2 | tr '\n' ' ')"
fi
# after the replacement (within the first seconds) the programs show up on the vCPUs, again and again
n=$(jq -s '[.[] | select(.event == "switch" and .t > 4 and (.comm == "vmot-spin" or .comm == "vmot-half"))] | length' "$T/b.jsonl")
((n >= 5)) && ok "stream alive after the replacement: $n switches to the CPU-bound programs in the last 4 s" ||
	bad "stream after the replacement: $n switches to vmot-spin/vmot-half in the last 4 s"

# 3. the cache follows
cached=$(jq -r '.percpu_current // empty' "$T"/cache/offsets/*.json 2>/dev/null | head -n1)
[[ $cached == -* ]] || cached=+$cached   # the log's %+ form
[[ $cached != + && $goods == *" $cached "* ]] && ok "offsets cache holds a confirmed slot ($cached)" ||
	bad "offsets cache holds slot '$cached', not one of$goods"

if ((fails)); then
	echo "FAIL: $fails check(s); files in $T"
	exit 1
fi
rm -rf "$T"
exit 0
