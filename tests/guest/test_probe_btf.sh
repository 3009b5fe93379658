#!/usr/bin/env bash
# test_probe_btf.sh — `probe --btf` (issue 17: the KVM hooks an arm64 host would offer), no guest booted. For
# Debian's arm64 kernels of the zoo (KVM is built in there, so vmlinux's BTF holds it), what `probe --btf FILE -j`
# says equals bpftool's own dump of the same BTF:
#   - the KVM tracepoints (every btf_trace_kvm_* typedef), and which of them carry the vCPU (struct kvm_vcpu *);
#   - TTBR0_EL1's index in enum vcpu_sysreg and sys_regs' byte offset in struct kvm_cpu_context (where a BPF
#     program would read the guest's user root);
# and an unreadable file is one clear line and exit 1.
# VMOT_ARM64_KERNELS (default "bullseye bookworm trixie sid"; test_arm64_discovery's SUITE:VCPUS:ARGS entries are
# taken by their suite) picks the suites. Exit 0 pass, 77 skip, 1 fail.
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BIN=${VMOT_BIN:-$ROOT/vmoffset-trace}
SUITES=$(for b in ${VMOT_ARM64_KERNELS:-bullseye bookworm trixie sid}; do echo "${b%%:*}"; done | awk '!seen[$0]++')
# shellcheck source=../../scripts/lib/guest-lib.sh
source "$ROOT/scripts/lib/guest-lib.sh"

[[ -x "$BIN" ]] || { echo "SKIP: build vmoffset-trace first (make)"; exit 77; }
for t in bpftool jq; do command -v $t >/dev/null || { echo "SKIP: $t missing (make deps)"; exit 77; }; done
TMP=$(mktemp -d /tmp/vmot-probe-btf.XXXXXX)
trap 'rm -rf "$TMP"' EXIT

for suite in $SUITES; do
	kdir=$("$ROOT/scripts/fetch-kernel.sh" "$suite" arm64) || { bad "fetch $suite arm64"; continue; }
	release=$(cat "$kdir/release")
	btf=$kdir/vmlinux.btf
	out=$("$BIN" -j probe --btf "$btf" 2>"$TMP/err"); rc=$?
	bpftool btf dump file "$btf" format c >"$TMP/c.h" 2>/dev/null || { bad "$release: bpftool cannot dump $btf"; continue; }
	# bpftool: "typedef void (*btf_trace_kvm_X)(void *, ARGS);"
	want=$(sed -n 's/^typedef void (\*btf_trace_\(kvm_[a-z0-9_]*\))(void \*\(.*\));$/\1 \2/p' "$TMP/c.h" |
		awk '{ v = index($0, "struct kvm_vcpu *") ? "vcpu" : "-"; print $1, v }' | sort)
	ours=$(jq -r '.btf.tracepoints[] | "\(.name) \(if .vcpu_arg == null then "-" else "vcpu" end)"' <<<"$out" 2>/dev/null | sort)
	if ((rc == 0)) && [[ -n $want && $ours == "$want" ]]; then
		ok "$release: $(wc -l <<<"$ours") KVM tracepoints, $(grep -c ' vcpu$' <<<"$ours") carrying the vCPU, as bpftool dumps them"
	else
		bad "$release: probe exit $rc, tracepoints differ from bpftool's (< bpftool, > probe): $(head -n1 "$TMP/err")"
		diff <(echo "$want") <(echo "$ours") | head -n 6 | sed 's/^/       /'
	fi
	idx=$(sed -n 's/^\tTTBR0_EL1 = \([0-9]*\),$/\1/p' "$TMP/c.h" | head -n1)
	# sys_regs' bit offset in kvm_cpu_context, through anonymous members (5.10: a union with copro)
	bits=$(bpftool -j btf dump file "$btf" format raw | jq '(.types | map({(.id | tostring): .}) | add) as $t |
		def find($id; $name): $t[$id | tostring] as $ty |
			if $ty.kind == "TYPEDEF" or $ty.kind == "CONST" or $ty.kind == "VOLATILE" then find($ty.type_id; $name)
			elif $ty.kind == "STRUCT" or $ty.kind == "UNION" then
				first($ty.members[] | if .name == $name then .bits_offset
					elif .name == "(anon)" then (.bits_offset + find(.type_id; $name)) else empty end)
			else empty end;
		[.types[] | select(.kind == "STRUCT" and .name == "kvm_cpu_context")][0].id as $c | find($c; "sys_regs")' 2>/dev/null)
	got=$(jq -r '"\(.btf.kvm) \(.btf.ttbr0.sysreg_index) \(.btf.ttbr0.sys_regs_offset) \(.btf.ttbr0.usable)"' <<<"$out" 2>/dev/null)
	if [[ -n $idx && -n $bits && $got == "arm64 $idx $((bits / 8)) false" ]]; then
		ok "$release: arm64 KVM, TTBR0_EL1 = sys_regs[$idx] at +$((bits / 8)) of kvm_cpu_context (said not usable yet)"
	else
		bad "$release: probe says '$got', bpftool TTBR0_EL1 = ${idx:-?}, sys_regs bits_offset ${bits:-?}"
	fi
done

"$BIN" probe --btf "$TMP/none" >/dev/null 2>"$TMP/err"; rc=$?
if ((rc == 1)) && [[ $(wc -l <"$TMP/err") == 1 ]] && grep -q "no BTF" "$TMP/err"; then
	ok "an unreadable BTF file: exit 1, one line ($(cat "$TMP/err"))"
else
	bad "an unreadable BTF file: exit $rc, $(head -n2 "$TMP/err" | tr '\n' ' ')"
fi
((fails == 0)) || { echo "$fails check(s) failed"; exit 1; }
echo "all checks passed"
