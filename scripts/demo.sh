#!/usr/bin/env bash
# demo.sh (make demo) — fetch Debian 12's kernel, boot it under QEMU with the test workload, and reconstruct the
# guest's processes from outside: `vmoffset-trace offsets` then `vmoffset-trace ps` against the QEMU process,
# next to the list the guest prints of itself. The guest is killed when the demo exits.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
# shellcheck source=lib/guest-lib.sh
source scripts/lib/guest-lib.sh

BIN=./vmoffset-trace
[[ -x "$BIN" ]] || { echo "demo: $BIN is not built (run make)"; exit 1; }

echo "== kernel zoo: Debian 12 (bookworm) amd64"
kdir=$(scripts/fetch-kernel.sh bookworm)
echo "   $(cat "$kdir/release") in $kdir"

echo "== booting the guest (TCG, 2 vCPUs, KASLR on)"
guest_start --kernel "$kdir" --smp 2 --name "demo-$$" >/dev/null
echo "   QEMU pid $GUEST_PID, QMP $GUEST_QMP, ready in ${GUEST_BOOT_SECONDS}s"

echo "== what the guest says it runs (its own /proc, user space only: pid ppid tgid comm)"
guest_user_ps | sed 's/^/   /'

has_cmd() { "$BIN" --help 2>&1 | grep -qE "^  $1 "; }

rc=0
for sub in offsets ps; do
	echo "== $BIN $sub --pid $GUEST_PID --qmp $GUEST_QMP"
	if ! has_cmd "$sub"; then
		echo "demo: this build of vmoffset-trace has no '$sub' subcommand yet"
		continue
	fi
	"$BIN" "$sub" --pid "$GUEST_PID" --qmp "$GUEST_QMP" || { r=$?; echo "demo: '$sub' exited $r"; ((rc)) || rc=$r; }
done
exit $rc
