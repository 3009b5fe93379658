#!/usr/bin/env bash
# test_zoo_truth.sh — the kernel zoo and the ground-truth tool, checked against each other and the CSV.
#
# For each Debian kernel (default: bullseye, bookworm, trixie, sid × amd64, cloud-amd64, rt-amd64; override
# with VMOFFSET_ZOO="bookworm:amd64 sid:cloud-amd64 ..."): fetch it (scripts/fetch-kernel.sh, cached), run
# build/tools/btf-truth on its vmlinux and on its raw .BTF (must agree), check invariants that hold on every
# x86_64 kernel (pid/tgid adjacent, parent right after real_parent, sibling right after children, offsets inside
# task_struct, mm_pgd present), check that kvm-intel.ko / kvm-amd.ko carry split BTF for struct vcpu_vmx /
# vcpu_svm (when the config has CONFIG_DEBUG_INFO_BTF_MODULES=y, i.e. from 5.11 on) with every member the BPF
# capture reads through CO-RE (tests/tools/core-check.c), and compare every CSV column with every row of ../shared/layouts/task_struct_layouts.csv whose
# release is the same (empty cell = null). One line per kernel: PASS / FAIL, "(no CSV row)" when the CSV lacks
# that release. Exit 0 pass, 1 fail, 77 skip (mirror unreachable, nothing fetched).
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CACHE=${VMOFFSET_CACHE:-/var/cache/vmoffset-trace}
CSV=${VMOFFSET_LAYOUTS_CSV:-$ROOT/../shared/layouts/task_struct_layouts.csv}
ZOO=${VMOFFSET_ZOO:-"bullseye:amd64 bullseye:cloud-amd64 bullseye:rt-amd64 bookworm:amd64 bookworm:cloud-amd64
	bookworm:rt-amd64 trixie:amd64 trixie:cloud-amd64 trixie:rt-amd64 sid:amd64 sid:cloud-amd64 sid:rt-amd64"}

[[ -r "$CSV" ]] || { echo "SKIP: no layouts CSV at $CSV"; exit 77; }

# the ground-truth and CO-RE tools: the Makefile's build, else built here (they need only libbpf/libelf)
# (private copies, so a concurrent `make` rewriting build/ cannot pull them away mid-run)
TMPD=$(mktemp -d)
trap 'rm -rf "$TMPD"' EXIT
TOOLS=${VMOT_TOOLS:-$ROOT/build/tools}
private_tool() {   # NAME: print the path of a private, up-to-date build of tests/tools/NAME.c
	local src=$ROOT/tests/tools/$1.c dst=$TMPD/$1
	if [[ -x "$TOOLS/$1" && ! "$TOOLS/$1" -ot "$src" ]]; then
		cp "$TOOLS/$1" "$dst"
	else
		gcc -O2 -std=gnu11 -o "$dst" "$src" -lbpf -lelf -lz || return 1
	fi
	echo "$dst"
}
BT=$(private_tool btf-truth) || { echo "FAIL: cannot build tests/tools/btf-truth.c"; exit 1; }
CORE_CHECK=$(private_tool core-check) || { echo "FAIL: cannot build tests/tools/core-check.c"; exit 1; }

HEADER=$(head -n1 "$CSV" | tr -d '\r')
IFS=, read -r -a COLS <<<"$HEADER"
COMPARE=(sizeof_task_struct tasks pid tgid comm mm active_mm real_parent parent children sibling cred mm_pgd mm_mmap
	mm_mt current_task)

json_get() {   # json_get JSON KEY -> value (null → empty, strings unquoted)
	sed -n "s/^  \"$2\": \(.*\)$/\1/p" <<<"$1" | sed -e 's/,$//' -e 's/^null$//' -e 's/^"\(.*\)"$/\1/'
}

pass=0 fail=0 fetched=0 unreachable=0 t0=$SECONDS
for entry in $ZOO; do
	suite=${entry%%:*} flavour=${entry#*:}
	err=$(mktemp)
	kdir=$("$ROOT/scripts/fetch-kernel.sh" "$suite" "$flavour" 2>"$err")
	if [[ -z "$kdir" ]]; then
		msg=$(grep -v '^fetch-kernel: \(updating\|downloading\|unpacking\)' "$err" | tail -n1)
		grep -qiE 'could not connect|temporary failure resolving|unable to connect|connection timed out' "$err" &&
			unreachable=$((unreachable + 1))
		echo "FAIL $suite/$flavour: fetch: $msg"; fail=$((fail + 1)); rm -f "$err"; continue
	fi
	rm -f "$err"
	fetched=$((fetched + 1))
	rel=$(cat "$kdir/release")
	why=()
	json=$("$BT" --release "$rel" "$kdir/vmlinux") || why+=("btf-truth failed on vmlinux")
	if [[ -s "$kdir/vmlinux.btf" ]]; then
		json_raw=$("$BT" --release "$rel" "$kdir/vmlinux.btf") || why+=("btf-truth failed on vmlinux.btf")
		[[ "$json" == "$json_raw" ]] || why+=("vmlinux and raw .BTF disagree")
	else
		why+=("no vmlinux.btf")
	fi
	g() { json_get "$json" "$1"; }
	# invariants of every x86_64 kernel in the zoo
	size=$(g sizeof_task_struct)
	for f in tasks pid tgid comm mm active_mm real_parent parent children sibling cred real_cred group_leader signal mm_pgd; do
		v=$(g "$f")
		if [[ -z "$v" ]]; then why+=("$f missing"); elif ((v < 0 || v >= size)); then why+=("$f=$v outside task_struct"); fi
	done
	if ((${#why[@]} == 0)); then
		(($(g tgid) == $(g pid) + 4)) || why+=("tgid != pid+4")
		(($(g parent) == $(g real_parent) + 8)) || why+=("parent != real_parent+8")
		(($(g sibling) == $(g children) + 16)) || why+=("sibling != children+16")
		(($(g active_mm) == $(g mm) + 8)) || why+=("active_mm != mm+8")
		[[ -n "$(g thread_group)$(g thread_node)" ]] || why+=("neither thread_group nor thread_node")
		[[ -n "$(g mm_mmap)$(g mm_mt)" ]] || why+=("neither mm.mmap nor mm.mm_mt")
	fi
	# split BTF of the KVM modules (CO-RE for struct vcpu_vmx / vcpu_svm)
	# (module BTF exists since 5.11: CONFIG_DEBUG_INFO_BTF_MODULES; 5.10's modules have none)
	modbtf=1 ncore=0
	grep -q '^CONFIG_DEBUG_INFO_BTF_MODULES=y' "$kdir/config" 2>/dev/null || modbtf=0
	# and every KVM member the BPF capture reads through CO-RE resolves there (build/tools/core-check mirrors
	# the fallbacks of bpf/core_fixes.bpf.h: renamed enums, moved members)
	if ((modbtf)) && [[ -s "$kdir/vmlinux.btf" ]]; then
		for m in kvm kvm-intel kvm-amd; do [[ -s "$kdir/$m.ko" ]] || why+=("no $m.ko"); done
		if [[ -s "$kdir/kvm.ko" && -s "$kdir/kvm-intel.ko" && -s "$kdir/kvm-amd.ko" ]]; then
			if ! cc_out=$("$CORE_CHECK" "$kdir/vmlinux.btf" "$kdir/kvm.ko" "$kdir/kvm-intel.ko" \
				"$kdir/kvm-amd.ko" 2>&1); then
				why+=("CO-RE: $(grep -v '^ok' <<<"$cc_out" | tr '\n' ';')")
			fi
			ncore=$(grep -c '^ok' <<<"$cc_out")
		fi
	fi
	# every CSV row of this release
	rows=0
	while IFS= read -r line; do
		line=${line%$'\r'}
		IFS=, read -r -a vals <<<"$line,"
		[[ "${vals[1]}" == "$rel" ]] || continue
		rows=$((rows + 1))
		for i in "${!COLS[@]}"; do
			col=${COLS[$i]}
			[[ " ${COMPARE[*]} " == *" $col "* ]] || continue
			want=${vals[$i]:-}; have=$(g "$col")
			[[ "$want" == "$have" ]] || why+=("$col: btf-truth '${have:-null}' != CSV '${want:-empty}' (${vals[0]})")
		done
	done < <(tail -n +2 "$CSV")
	note="$rows CSV row(s)"; ((rows)) || note="no CSV row"
	((modbtf)) && note+="; CO-RE: ${ncore:-0} KVM members resolve" || note+="; modules have no BTF"
	if ((${#why[@]})); then
		echo "FAIL $rel ($suite/$flavour, $note): $(IFS=';'; echo "${why[*]}")"; fail=$((fail + 1))
	else
		echo "PASS $rel ($suite/$flavour, $note; current_task $(g current_task | sed 's/^$/unknown/'))"; pass=$((pass + 1))
	fi
done

echo "zoo: $pass passed, $fail failed in $((SECONDS - t0))s; cache $(du -sh "$CACHE" 2>/dev/null | cut -f1)"
if ((fetched == 0 && unreachable > 0)); then
	echo "SKIP: the Debian mirror is unreachable, no kernel could be fetched"; exit 77
fi
((fail == 0))
