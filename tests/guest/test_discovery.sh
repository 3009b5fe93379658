#!/usr/bin/env bash
# test_discovery.sh — offset discovery on real guests (issue 4). For each zoo configuration: boot the Debian
# kernel under QEMU (KASLR on), let `vmoffset-trace offsets --pid` discover the offsets from the live QEMU
# process with QMP-sampled CR3s, and check
#   - every offset equals the kernel's own BTF (build/tools/btf-truth on the vmlinux inside the package), the
#     memory-map and path members too (their /proc truth is test_maps.sh's),
#   - validated == true (observed CR3 roots belong to mms on the task list),
#   - `ps --threads` read through the found offsets equals the guest's own /proc listing (user space exactly;
#     kernel threads, which come and go, at least 90 %), and every user process's argv its /proc/PID/cmdline,
#   - an ELF core QEMU writes of the same guest gives the same offsets and init_task.
# Exit 0 pass, 77 skip (one line why), else fail.
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=../../scripts/lib/guest-lib.sh
source "$ROOT/scripts/lib/guest-lib.sh"

BIN=${VMOT_BIN:-$ROOT/vmoffset-trace}   # make test SAN=1: the sanitized binary
TRUTH=${VMOT_TOOLS:-$ROOT/build/tools}/btf-truth
[[ -x $BIN && -x $TRUTH ]] || { echo "skip: build vmoffset-trace and build/tools/btf-truth first (make)"; exit 77; }
for t in jq socat; do command -v $t >/dev/null || { echo "skip: $t missing (make deps)"; exit 77; }; done

# suite flavour vCPUs [guest.sh options]
CONFIGS=(
	"bullseye amd64 1"
	"bookworm cloud-amd64 2"
	"trixie amd64 2 --pti on"
	"sid amd64 1"
	"sid cloud-amd64 2"
	"bookworm rt-amd64 1"
)
[[ -n ${VMOT_DISCOVERY_CONFIGS:-} ]] && mapfile -t CONFIGS <<<"$VMOT_DISCOVERY_CONFIGS"

FIELDS="tasks pid tgid comm mm active_mm real_parent parent children sibling cred"

qmp() {   # qmp SOCKET JSON-COMMAND: run one command, print its reply line
	printf '{"execute":"qmp_capabilities"}\n%s\n' "$2" |
		timeout 120 socat -t 110 - "UNIX-CONNECT:$1" | grep -v '"event"' | sed -n 3p
}

compare_offsets() {   # LABEL OFFSETS_JSON TRUTH_JSON
	local label=$1 got=$2 want=$3 f g w
	for f in $FIELDS; do
		g=$(jq -r ".task_struct.$f" <<<"$got"); w=$(jq -r ".$f" <<<"$want")
		if [[ $g == "$w" ]]; then ok "$label: task_struct.$f = $g"; else bad "$label: task_struct.$f = $g, BTF says $w"; fi
	done
	for f in pgd arg_start arg_end env_start env_end; do
		g=$(jq -r ".mm_struct.$f" <<<"$got"); w=$(jq -r ".mm_$f" <<<"$want")
		if [[ $g == "$w" ]]; then ok "$label: mm_struct.$f = $g"; else bad "$label: mm_struct.$f = $g, BTF says $w"; fi
	done
	for f in uid gid euid egid; do
		g=$(jq -r ".cred.$f" <<<"$got"); w=$(jq -r ".cred_$f" <<<"$want")
		if [[ $g == "$w" ]]; then ok "$label: cred.$f = $g"; else bad "$label: cred.$f = $g, BTF says $w"; fi
	done
	check_maps_btf "$label" "$got" "$want"
}

run_config() {   # suite flavour smp [options]
	local suite=$1 flavour=$2 smp=$3; shift 3
	local dir label got rc want ours theirs n_k n_kk core_json
	echo "== $suite $flavour, $smp vCPU(s) $*"
	if ! dir=$("$ROOT/scripts/fetch-kernel.sh" "$suite" "$flavour"); then bad "fetch $suite $flavour"; return; fi
	want=$("$TRUTH" "$dir/vmlinux") || { bad "btf-truth on $dir/vmlinux"; return; }
	if ! guest_start --kernel "$dir" --smp "$smp" --mem 1G "$@"; then bad "boot $suite $flavour"; return; fi
	label="$GUEST_RELEASE smp=$smp"

	got=$("$BIN" offsets --pid "$GUEST_PID" --qmp "$GUEST_QMP" --timeout 2 --format json); rc=$?
	if ((rc == 0)); then ok "$label: offsets exit 0 (validated)"; else bad "$label: offsets exit $rc: $(jq -r .reason <<<"$got" 2>/dev/null)"; fi
	[[ $(jq -r .validated <<<"$got") == true ]] && ok "$label: validated, $(jq -r '"\(.roots_explained)/\(.roots_observed) roots, \(.bytes_read) bytes, \(.elapsed_s) s"' <<<"$got")" ||
		bad "$label: not validated"
	compare_offsets "$label live" "$got" "$want"

	# The process list through the found offsets against the guest's own /proc.
	local psjson
	psjson=$("$BIN" ps --pid "$GUEST_PID" --qmp "$GUEST_QMP" --threads --json)
	ours=$(jq -r '.[] | select(.pid != 0) | "\(.pid) \(.ppid) \(.tgid) \(.comm) \(.kernel_thread)"' <<<"$psjson" | sort)
	theirs=$(guest_ps | sort)
	local ours_user theirs_user
	ours_user=$(awk '$5 == "false" { print $1, $2, $3, $4 }' <<<"$ours" | sort)
	theirs_user=$(guest_user_ps | sort)
	if [[ -n $ours_user && $ours_user == "$theirs_user" ]]; then
		ok "$label: user processes equal /proc ($(wc -l <<<"$ours_user") threads)"
	else
		bad "$label: user processes differ from /proc:"; diff <(echo "$theirs_user") <(echo "$ours_user") | head -20
	fi
	check_cmdlines "$label" "$psjson"
	check_ids "$label" "$psjson"
	# Kernel threads come and go, and /proc names a busy kworker "kworker/0:1-events" where task->comm says
	# "kworker/0:1": same pid, ppid and tgid, and our comm a prefix of /proc's.
	n_k=$(awk '$1 == 2 || $2 == 2' <<<"$theirs" | wc -l)
	n_kk=$(awk 'NR == FNR { if ($5 == "true") c[$1 " " $2 " " $3] = $4; next }
		    ($1 == 2 || $2 == 2) && ($1 " " $2 " " $3) in c && index($4, c[$1 " " $2 " " $3]) == 1' \
		<(echo "$ours") <(echo "$theirs") | wc -l)
	if ((n_k > 0 && n_kk * 10 >= n_k * 9)); then ok "$label: $n_kk of $n_k kernel threads equal /proc"; else bad "$label: only $n_kk of $n_k kernel threads equal /proc"; fi

	# An ELF core of the same guest gives the same answer.
	qmp "$GUEST_QMP" "{\"execute\":\"dump-guest-memory\",\"arguments\":{\"paging\":false,\"protocol\":\"file:$GUEST_RUN_DIR/core.elf\"}}" >/dev/null
	if [[ -s $GUEST_RUN_DIR/core.elf ]]; then
		core_json=$("$BIN" offsets --core "$GUEST_RUN_DIR/core.elf" --format json)
		if [[ $(jq -c '[.task_struct, .mm_struct, .init_task]' <<<"$core_json") == "$(jq -c '[.task_struct, .mm_struct, .init_task]' <<<"$got")" ]]; then
			ok "$label: ELF core gives the same offsets and init_task"
		else
			bad "$label: ELF core differs: $(jq -c '[.task_struct, .mm_struct, .init_task, .reason]' <<<"$core_json") vs live $(jq -c '[.task_struct, .mm_struct, .init_task]' <<<"$got")"
		fi
		rm -f "$GUEST_RUN_DIR/core.elf"
	else
		bad "$label: QEMU wrote no ELF core"
	fi
	guest_stop >/dev/null 2>&1
}

for cfg in "${CONFIGS[@]}"; do
	# shellcheck disable=SC2086
	run_config $cfg
done
echo "test_discovery: $fails failure(s)"
((fails == 0))
