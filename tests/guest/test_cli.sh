#!/usr/bin/env bash
# test_cli.sh — one CLI grammar (issue 13); no guest needed. Every command:
#   - `--help` exits 0 with its usage on stdout;
#   - an unknown flag and a bad value exit 64 (usage), with nothing on stdout in text mode;
#   - in JSON mode (-j before the command) the same errors print one JSON object {"error": ...} on stdout and
#     nothing else;
# and: `-p` before the command is refused with a hint (it is --pid, as in perf; --pretty is long-only), a
# missing input file is an error (1), and with no VM on the host `live -a` is an error (1), not "undetermined".
# Exit 0 pass, 1 fail.
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BIN=${VMOT_BIN:-$ROOT/vmoffset-trace}
[[ -x $BIN ]] || { echo "skip: build vmoffset-trace first (make)"; exit 77; }
command -v jq >/dev/null || { echo "skip: jq missing (make deps)"; exit 77; }
T=$(mktemp -d /tmp/vmot-cli.XXXXXX)
trap 'rm -rf "$T"' EXIT
fails=0
ok() { echo "  ok   $*"; }
bad() { echo "  FAIL $*"; fails=$((fails + 1)); }

# run ARGS...: rc, stdout in $T/out, stderr in $T/err
run() { timeout 30 "$BIN" "$@" >"$T/out" 2>"$T/err"; rc=$?; }
# stdout is exactly one JSON object with an "error" string
json_error() { [[ $(jq -s 'length == 1 and (.[0].error | type == "string")' "$T/out" 2>/dev/null) == true ]]; }

# command : a bad value for one of its options
declare -A BADVAL=(
	[offsets]="--pid abc" [ps]="--pid 0" [probe]="--duration -5" [list]="" [live]="--pid 12x"
	[record]="-d forever" [report]="--sort nosuchkey" [maps]="--task x1" [timechart]="--width 12x"
)
for cmd in offsets ps maps probe list live record report timechart; do
	run "$cmd" --help
	((rc == 0)) && grep -q "^Usage: vmoffset-trace" "$T/out" && ok "$cmd --help: exit 0, usage on stdout" ||
		bad "$cmd --help: exit $rc, stdout $(head -c 80 "$T/out")"
	run "$cmd" --no-such-flag
	((rc == 64)) && [[ ! -s $T/out ]] && ok "$cmd --no-such-flag: exit 64, stdout empty" ||
		bad "$cmd --no-such-flag: exit $rc, stdout $(head -c 80 "$T/out")"
	run -j "$cmd" --no-such-flag
	((rc == 64)) && json_error && ok "-j $cmd --no-such-flag: exit 64, one JSON error on stdout" ||
		bad "-j $cmd --no-such-flag: exit $rc, stdout $(head -c 120 "$T/out")"
	[[ -z ${BADVAL[$cmd]} ]] && continue
	# shellcheck disable=SC2086
	run "$cmd" ${BADVAL[$cmd]}
	((rc == 64)) && [[ ! -s $T/out ]] && grep -q . "$T/err" && ok "$cmd ${BADVAL[$cmd]}: exit 64: $(head -n1 "$T/err")" ||
		bad "$cmd ${BADVAL[$cmd]}: exit $rc, stdout $(head -c 80 "$T/out"), stderr $(head -n1 "$T/err")"
	# shellcheck disable=SC2086
	run -j "$cmd" ${BADVAL[$cmd]}
	((rc == 64)) && json_error && ok "-j $cmd ${BADVAL[$cmd]}: exit 64, one JSON error on stdout" ||
		bad "-j $cmd ${BADVAL[$cmd]}: exit $rc, stdout $(head -c 120 "$T/out")"
done

# timechart's other values and report's --format: one line, exit 64
for args in "timechart --from soon" "timechart --from 2 --to 1" "timechart --width 50" "report --format perfetto" \
	"report --format trace --csv"; do
	# shellcheck disable=SC2086
	run $args
	((rc == 64)) && [[ ! -s $T/out ]] && [[ $(wc -l <"$T/err") == 1 ]] && ok "$args: exit 64, one line: $(head -n1 "$T/err")" ||
		bad "$args: exit $rc, stdout $(head -c 80 "$T/out"), stderr $(head -n2 "$T/err")"
done
run -j timechart -i "$T/no-such.vmot" -o "$T/x.svg"
((rc == 1)) && json_error && [[ ! -e $T/x.svg ]] && ok "-j timechart of a missing file: exit 1, one JSON error, no SVG" ||
	bad "-j timechart of a missing file: exit $rc, $(head -c 120 "$T/out")"

run live -i 1
((rc == 64)) && ok "live -i: exit 64 (the interval is -I, as in perf stat; -i is an input file)" ||
	bad "live -i 1: exit $rc"
run -p 4242 ps
((rc == 64)) && grep -q -- "--pid" "$T/err" && ok "-p before the command: exit 64 with a hint: $(head -n1 "$T/err")" ||
	bad "-p before the command: exit $rc, $(head -n1 "$T/err")"
run --pretty list
((rc == 0)) && jq -e 'type == "array"' "$T/out" >/dev/null && ok "--pretty list: indented JSON array" ||
	bad "--pretty list: exit $rc, $(head -c 80 "$T/out")"

# errors that are not usage errors: exit 1, and JSON only in JSON mode
run -j report -i "$T/no-such.vmot"
((rc == 1)) && json_error && ok "-j report of a missing file: exit 1, one JSON error" ||
	bad "-j report of a missing file: exit $rc, $(head -c 120 "$T/out")"
run -j offsets --core "$T/no-such.core"
((rc == 1)) && json_error && ok "-j offsets of a missing core: exit 1, one JSON error" ||
	bad "-j offsets of a missing core: exit $rc, $(head -c 120 "$T/out")"
if [[ $("$BIN" -j list 2>/dev/null | jq length) == 0 ]]; then
	run live -a -d 1
	((rc == 1)) && ok "live -a with no VM on the host: exit 1 ($(head -n1 "$T/err"))" ||
		bad "live -a with no VM on the host: exit $rc, $(head -n1 "$T/err")"
else
	echo "  note live -a without VMs not checked: VMs run on this host"
fi

((fails == 0)) || { echo "FAIL: $fails check(s)"; exit 1; }
exit 0
