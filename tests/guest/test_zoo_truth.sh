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
# that release. 32-bit kernels (VMOFFSET_ZOO_I386="bookworm:686-pae ...", default none: each needs its ~765 MB
# -dbg package once) take their truth from their DWARF (fetch-kernel.sh with VMOFFSET_DBG=1: vmlinux.dwarf.btf)
# and are held to the same invariants with 4-byte pointers. arm64 kernels (VMOFFSET_ZOO_ARM64, default
# "bullseye:arm64 bookworm:arm64 trixie:arm64 sid:arm64") are checked only when already cached (one SKIP line each otherwise; no
# download here, VMOFFSET_OFFLINE=1): their truth is the vmlinux.btf that build/tools/btf-extract found in the boot
# Image by its header (fetch-kernel.sh writes it, also into a kernel cached before), which must equal a fresh
# extraction; same invariants, 8-byte pointers, no KVM modules. Every kernel: pointer_size, sizeof_list_head and
# mm_struct offsets inside sizeof_mm_struct as the BTF says. btf-extract's own one-line errors on hostile files
# (fake header, empty, missing, a truncated Image) make one more line. Exit 0 pass, 1 fail, 77 skip (mirror
# unreachable, nothing fetched).
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CACHE=${VMOFFSET_CACHE:-/var/cache/vmoffset-trace}
CSV=${VMOFFSET_LAYOUTS_CSV:-$ROOT/../shared/layouts/task_struct_layouts.csv}
ZOO=${VMOFFSET_ZOO:-"bullseye:amd64 bullseye:cloud-amd64 bullseye:rt-amd64 bookworm:amd64 bookworm:cloud-amd64
	bookworm:rt-amd64 trixie:amd64 trixie:cloud-amd64 trixie:rt-amd64 sid:amd64 sid:cloud-amd64 sid:rt-amd64"}

[[ -r "$CSV" ]] || { echo "SKIP: no layouts CSV at $CSV"; exit 77; }

# the ground-truth, CO-RE and BTF-finding tools: the Makefile's build (if newer than its source and the shared
# headers there), else built here (they need only libbpf/libelf)
# (private copies, so a concurrent `make` rewriting build/ cannot pull them away mid-run)
TMPD=$(mktemp -d)
trap 'rm -rf "$TMPD"' EXIT
TOOLS=${VMOT_TOOLS:-$ROOT/build/tools}
private_tool() {   # NAME: print the path of a private, up-to-date build of tests/tools/NAME.c
	local src=$ROOT/tests/tools/$1.c dst=$TMPD/$1
	if [[ -x "$TOOLS/$1" && ! "$TOOLS/$1" -ot "$src" &&
		-z $(find "$ROOT/tests/tools" -name '*.h' -newer "$TOOLS/$1") ]]; then
		cp "$TOOLS/$1" "$dst"
	else
		gcc -O2 -std=gnu11 -o "$dst" "$src" -lbpf -lelf -lz || return 1
	fi
	echo "$dst"
}
BT=$(private_tool btf-truth) || { echo "FAIL: cannot build tests/tools/btf-truth.c"; exit 1; }
CORE_CHECK=$(private_tool core-check) || { echo "FAIL: cannot build tests/tools/core-check.c"; exit 1; }
BTF_EXTRACT=$(private_tool btf-extract) || { echo "FAIL: cannot build tests/tools/btf-extract.c"; exit 1; }
ARM64=${VMOFFSET_ZOO_ARM64-"bullseye:arm64 bookworm:arm64 trixie:arm64 sid:arm64"}

HEADER=$(head -n1 "$CSV" | tr -d '\r')
IFS=, read -r -a COLS <<<"$HEADER"
COMPARE=(sizeof_task_struct tasks pid tgid comm mm active_mm real_parent parent children sibling cred mm_pgd mm_mmap
	mm_mt current_task)

json_get() {   # json_get JSON KEY -> value (null → empty, strings unquoted)
	sed -n "s/^  \"$2\": \(.*\)$/\1/p" <<<"$1" | sed -e 's/,$//' -e 's/^null$//' -e 's/^"\(.*\)"$/\1/'
}

cached_arm64() {   # SUITE FLAVOUR: is such a kernel in the cache already?
	local d
	for d in "$CACHE"/kernels/*/; do
		[[ $(cat "$d/arch" "$d/suite" "$d/flavour" 2>/dev/null | tr '\n' ' ') == "arm64 $1 $2 " ]] && return 0
	done
	return 1
}

pass=0 fail=0 skipped=0 fetched=0 unreachable=0 t0=$SECONDS arm_image= arm_cut=0
for entry in $ZOO ${VMOFFSET_ZOO_I386:-} $ARM64; do
	suite=${entry%%:*} flavour=${entry#*:}
	ptr=8 dbg=0 arm=0 found= offline=${VMOFFSET_OFFLINE:-0}; [[ $flavour == 686* ]] && ptr=4 dbg=1
	if [[ $flavour == *arm64 ]]; then
		arm=1 offline=1
		if ! cached_arm64 "$suite" "$flavour"; then
			echo "SKIP $suite/$flavour: not in $CACHE/kernels (scripts/fetch-kernel.sh $suite $flavour)"
			skipped=$((skipped + 1)); continue
		fi
	fi
	err=$(mktemp)
	kdir=$(VMOFFSET_DBG=$dbg VMOFFSET_OFFLINE=$offline VMOFFSET_BTF_EXTRACT=$BTF_EXTRACT \
		"$ROOT/scripts/fetch-kernel.sh" "$suite" "$flavour" 2>"$err")
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
	if ((dbg)); then
		json=$("$BT" --release "$rel" "$kdir/vmlinux.dwarf.btf") || why+=("btf-truth failed on the DWARF's BTF")
	elif ((arm)); then
		# no ELF: the truth is the BTF found in the Image, and finding it again must give the same bytes
		json=$("$BT" --release "$rel" "$kdir/vmlinux.btf" 2>&1) || why+=("btf-truth failed on vmlinux.btf: $json")
		if found=$("$BTF_EXTRACT" "$kdir/Image" "$TMPD/image.btf" 2>&1); then
			cmp -s "$TMPD/image.btf" "$kdir/vmlinux.btf" || why+=("vmlinux.btf differs from the BTF in the Image")
			found=${found#*: }; found=${found% (*}   # "BTF at 0x…, N bytes, N types"
			# for the hostile-input check below: this Image, cut in the middle of its BTF
			read -r boff blen < <(sed -n 's/^BTF at \(0x[0-9a-f]*\), \([0-9]*\) bytes.*/\1 \2/p' <<<"$found")
			arm_image=$kdir/Image arm_cut=$((boff + blen / 2))
		else
			why+=("$found")
		fi
	else
		json=$("$BT" --release "$rel" "$kdir/vmlinux") || why+=("btf-truth failed on vmlinux")
	fi
	if ((dbg || arm)); then
		:   # no .BTF section in an ELF (32-bit: DWARF's BTF; arm64: read from the Image above)
	elif [[ -s "$kdir/vmlinux.btf" ]]; then
		json_raw=$("$BT" --release "$rel" "$kdir/vmlinux.btf") || why+=("btf-truth failed on vmlinux.btf")
		[[ "$json" == "$json_raw" ]] || why+=("vmlinux and raw .BTF disagree")
	else
		why+=("no vmlinux.btf")
	fi
	g() { json_get "$json" "$1"; }
	# invariants of every x86 kernel in the zoo (pointers of $ptr bytes)
	size=$(g sizeof_task_struct)
	for f in tasks pid tgid comm mm active_mm real_parent parent children sibling cred real_cred group_leader signal mm_pgd; do
		v=$(g "$f")
		if [[ -z "$v" ]]; then why+=("$f missing"); elif ((v < 0 || v >= size)); then why+=("$f=$v outside task_struct"); fi
	done
	if ((${#why[@]} == 0)); then
		(($(g tgid) == $(g pid) + 4)) || why+=("tgid != pid+4")
		(($(g parent) == $(g real_parent) + ptr)) || why+=("parent != real_parent+$ptr")
		(($(g sibling) == $(g children) + 2 * ptr)) || why+=("sibling != children+$((2 * ptr))")
		(($(g active_mm) == $(g mm) + ptr)) || why+=("active_mm != mm+$ptr")
		[[ -n "$(g thread_group)$(g thread_node)" ]] || why+=("neither thread_group nor thread_node")
		[[ -n "$(g mm_mmap)$(g mm_mt)" ]] || why+=("neither mm.mmap nor mm.mm_mt")
		# the word size the BTF itself states, and offsets held to the struct's own size
		[[ $(g pointer_size) == "$ptr" ]] || why+=("pointer_size $(g pointer_size), not $ptr")
		[[ $(g sizeof_list_head) == $((2 * ptr)) ]] || why+=("sizeof(list_head) $(g sizeof_list_head), not $((2 * ptr))")
		mmsize=$(g sizeof_mm_struct)
		for f in mm_pgd mm_mmap mm_mt mm_arg_start mm_arg_end mm_env_start mm_env_end; do
			v=$(g "$f"); [[ -z "$v" ]] || ((v < mmsize)) || why+=("$f=$v outside mm_struct ($mmsize)")
		done
	fi
	# split BTF of the KVM modules (CO-RE for struct vcpu_vmx / vcpu_svm)
	# (module BTF exists since 5.11: CONFIG_DEBUG_INFO_BTF_MODULES; 5.10's modules have none)
	modbtf=1 ncore=0
	grep -q '^CONFIG_DEBUG_INFO_BTF_MODULES=y' "$kdir/config" 2>/dev/null || modbtf=0
	((dbg || arm)) && modbtf=0   # a 32-bit or arm64 guest's kernel: its KVM modules do not matter
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
	if ((arm)); then
		note+="; Image: ${found:-no BTF}"
	elif ((modbtf)); then
		note+="; CO-RE: ${ncore:-0} KVM members resolve"
	else
		note+="; modules have no BTF"
	fi
	if ((${#why[@]})); then
		echo "FAIL $rel ($suite/$flavour, $note): $(IFS=';'; echo "${why[*]}")"; fail=$((fail + 1))
	elif ((arm)); then   # arm64 keeps `current` in sp_el0, not in a per-CPU variable
		echo "PASS $rel ($suite/$flavour, $note; pointers $(g pointer_size), list_head $(g sizeof_list_head))"
		pass=$((pass + 1))
	else
		echo "PASS $rel ($suite/$flavour, $note; current_task $(g current_task | sed 's/^$/unknown/'))"; pass=$((pass + 1))
	fi
done

# btf-extract on hostile files: exit 1, one line on stderr, nothing on stdout, no output file
hostile() {   # LABEL FILE -> "" if handled, else what went wrong
	local out rc lines
	out=$("$BTF_EXTRACT" "$2" "$TMPD/h.btf" 2>"$TMPD/h.err"); rc=$?
	lines=$(wc -l <"$TMPD/h.err")
	((rc == 1 && lines == 1)) && [[ -z $out && ! -e $TMPD/h.btf ]] && return 0
	echo "$1: exit $rc, $lines line(s) on stderr${out:+, stdout '$out'}$([[ -e $TMPD/h.btf ]] && echo ", wrote a file"); "
	rm -f "$TMPD/h.btf"
}
{   # a header whose lengths reach far past the file, then one whose 32-bit sums wrap
	printf '\x9f\xeb\x01\x00\x18\x00\x00\x00\x00\x00\x00\x00\xf0\xff\xff\xff\x00\x00\x00\x00\xff\xff\xff\xff'
	printf '\x9f\xeb\x01\x00\x18\x00\x00\x00\x00\x00\x00\x00\xfc\xff\xff\xff\xfc\xff\xff\xff\x02\x00\x00\x00'
	head -c 4096 /dev/zero
} >"$TMPD/fake"
: >"$TMPD/empty"
hbad=$(hostile "fake header" "$TMPD/fake"; hostile "empty file" "$TMPD/empty"; hostile "missing file" "$TMPD/none")
ncase=3
if [[ -n $arm_image ]]; then   # an arm64 Image cut in the middle of its BTF
	head -c "$arm_cut" "$arm_image" >"$TMPD/cut"
	hbad+=$(hostile "truncated Image" "$TMPD/cut"); ncase=4
	rm -f "$TMPD/cut"
fi
if [[ -z $hbad ]]; then
	echo "PASS btf-extract: $ncase hostile files, one-line errors (last: $(sed 's|^btf-extract: .*/||' "$TMPD/h.err"))"
	pass=$((pass + 1))
else
	echo "FAIL btf-extract: $hbad"; fail=$((fail + 1))
fi

echo "zoo: $pass passed, $fail failed, $skipped skipped in $((SECONDS - t0))s; cache $(du -sh "$CACHE" 2>/dev/null | cut -f1)"
if ((fetched == 0 && unreachable > 0)); then
	echo "SKIP: the Debian mirror is unreachable, no kernel could be fetched"; exit 77
fi
((fail == 0))
