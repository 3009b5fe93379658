#!/usr/bin/env bash
# run-tests.sh [--no-guest] [UNIT_BIN...] — run the cmocka unit-test binaries given, then every
# tests/guest/test_*.sh (unless --no-guest), and end with one line "N passed, N failed, N skipped".
#
# Unit tests count one per cmocka test case (from cmocka's "[  PASSED  ] N test(s)." summary lines; a binary
# that dies before its summary counts as one failure). Guest tests count one per script: exit 0 pass, 77 skip
# (the script prints a one-line reason), anything else fail. Exit status 1 if anything failed.
#
# Environment: VMOT_TEST_FILTER=REGEX runs only the guest tests whose file name matches, VMOT_TEST_EXCLUDE=REGEX
# leaves out those whose name matches;
# VMOT_UNIT_TIMEOUT (default 300 s) and VMOT_GUEST_TIMEOUT (default 1500 s) bound each test.
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 1
export CMOCKA_MESSAGE_OUTPUT=stdout

guest=1
if [[ "${1:-}" == --no-guest ]]; then guest=0; shift; fi

passed=0 failed=0 skipped=0
failures=()
out=$(mktemp)
trap 'rm -f "$out"' EXIT

for bin in "$@"; do
	echo "=== unit: $bin"
	if [[ ! -x "$bin" ]]; then
		echo "missing unit-test binary $bin"; failed=$((failed + 1)); failures+=("$bin (missing)"); continue
	fi
	timeout -k 10 "${VMOT_UNIT_TIMEOUT:-300}" "$bin" >"$out" 2>&1
	rc=$?
	cat "$out"
	p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$out" | awk '{ s += $1 } END { print s + 0 }')
	f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' "$out" | awk '{ s += $1 } END { print s + 0 }')
	s=$(sed -n 's/^\[  SKIPPED \] \([0-9]*\) test.*/\1/p' "$out" | awk '{ s += $1 } END { print s + 0 }')
	if ((rc != 0 && f == 0)); then f=1; fi   # crashed, timed out, or failed outside a test case
	if ((p + f + s == 0)); then f=1; fi       # no summary at all
	passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
	((f)) && failures+=("$bin (exit $rc)")
done

if ((guest)); then
	for t in tests/guest/test_*.sh; do
		[[ -e "$t" ]] || continue
		[[ -z "${VMOT_TEST_FILTER:-}" || "$(basename "$t")" =~ ${VMOT_TEST_FILTER} ]] || continue
		[[ -z "${VMOT_TEST_EXCLUDE:-}" || ! "$(basename "$t")" =~ ${VMOT_TEST_EXCLUDE} ]] || continue
		echo "=== guest: $t"
		t0=$SECONDS
		timeout -k 10 "${VMOT_GUEST_TIMEOUT:-1500}" bash "$t" </dev/null 2>&1 | tee "$out"
		rc=${PIPESTATUS[0]}
		case $rc in
			0)  passed=$((passed + 1)); echo "--- PASS $t ($((SECONDS - t0))s)" ;;
			77) skipped=$((skipped + 1)); echo "--- SKIP $t: $(grep -v '^\s*$' "$out" | tail -n1)" ;;
			*)  failed=$((failed + 1)); failures+=("$t (exit $rc)"); echo "--- FAIL $t (exit $rc, $((SECONDS - t0))s)" ;;
		esac
	done
fi

if ((${#failures[@]})); then
	echo "failed:"
	printf '  %s\n' "${failures[@]}"
fi
echo "$passed passed, $failed failed, $skipped skipped"
((failed == 0))
