#!/usr/bin/env bash
# test_capture_load.sh — the capture BPF object loads, passes the verifier and attaches on this host's kernel
# whenever the kvm module (its tracepoints) is there, with or without /dev/kvm and without any guest: a
# verifier or CO-RE regression must not land unseen on a host where no KVM guest can run. Runs
# build/tools/capture-run on its own shell's pid for 1 s (no VM: no events) and checks that every hook the
# kernel has was attached.
# Exit 0 pass, 77 skip (one line: no kvm module, no BTF, not root), 1 fail.
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
OUT=${OUT:-build}
TOOLS=${VMOT_TOOLS:-$ROOT/$OUT/tools}   # make test SAN=1: the sanitized tools

skip() { echo "SKIP: $*"; exit 77; }
[ -d /sys/module/kvm ] || skip "no kvm module loaded: no KVM tracepoints to attach to"
[ -r /sys/kernel/btf/vmlinux ] || skip "no kernel BTF (/sys/kernel/btf/vmlinux)"
[ "$(id -u)" = 0 ] || skip "loading BPF needs root"
[ -x "$TOOLS/capture-run" ] || { echo "FAIL: $TOOLS/capture-run not built (make all)"; exit 1; }

out=$(timeout 60 "$TOOLS/capture-run" -p $$ -t 1 2>&1); rc=$?
if ((rc != 0)); then
	echo "FAIL: capture-run exited $rc (load, verifier or attach error): $(grep -v '^hook' <<<"$out" | head -n 5)"
	exit 1
fi
hooks=$(grep -c '^hook .* present=1' <<<"$out")
attached=$(grep -c '^hook .* present=1 attached=1' <<<"$out")
if ((hooks == 0)); then
	echo "FAIL: the kvm module is loaded but capture-run reported no KVM hook present"; echo "$out" | head -n 10
	exit 1
fi
if ((attached != hooks)); then
	echo "FAIL: $attached of $hooks present KVM hooks attached:"; grep '^hook' <<<"$out"
	exit 1
fi
echo "ok: the capture object loaded and attached $attached KVM hook(s) without a guest ($(grep '^hook' <<<"$out" | awk '{ printf "%s%s", s, $2; s = " " }'))"
exit 0
