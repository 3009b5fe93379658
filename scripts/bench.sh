#!/usr/bin/env bash
# bench.sh — `make bench`: every scripts/bench-*.sh in turn (memory layer, discovery, capture). Each prints
# its own numbers against the goals in the issues; a bench that cannot run here says why in one line.
set -uo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
rc=0
for b in "$HERE"/bench-*.sh; do
	echo "=== $(basename "$b" .sh)"
	bash "$b" || { echo "  ($(basename "$b") exited $?)"; rc=1; }
done
exit $rc
