#!/usr/bin/env bash
# fuzz.sh SECONDS TARGET... — run each libFuzzer target build-fuzz/fuzz_TARGET for SECONDS (one process,
# nice'd) on its checked-in seeds tests/fuzz/corpus/TARGET/ plus the working corpus fuzz-out/TARGET/corpus/
# (new inputs land there; the checked-in seeds are never written). Crashes, leaks, timeouts and OOMs are
# written to fuzz-out/TARGET/ (crash-*, leak-*, timeout-*, oom-*). One line per run is appended to
# tests/fuzz/EXECUTIONS.md (target, date, seconds, worker processes, executions, new crash files); the totals per target
# over every logged run are printed at the end. Exit 1 if any run left a crash file.
#
# Environment: FUZZ_JOBS (default 1: targets run one after another; N runs N targets at a time),
# FUZZ_WORKERS (default 1; N runs N processes of each target on one shared corpus, executions summed),
# FUZZ_NICE (default 10), FUZZ_EXTRA (more libFuzzer flags), FUZZ_NO_LOG=1 (do not append to the log).
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 1
secs=${1:?usage: fuzz.sh SECONDS TARGET...}
shift
LOG=tests/fuzz/EXECUTIONS.md

max_len() {
	case $1 in
	discovery) echo 300000 ;;
	x86) echo 33000 ;;
	*) echo 65536 ;;
	esac
}

# log of worker $2 of target $1: last.log, or last.K.log with FUZZ_WORKERS > 1
log_of() {
	if ((${FUZZ_WORKERS:-1} > 1)); then echo "fuzz-out/$1/last.$2.log"; else echo "fuzz-out/$1/last.log"; fi
}

# one libFuzzer process: worker $2 of target $1
fuzz_proc() {
	local t=$1 out=fuzz-out/$1 log
	log=$(log_of "$1" "$2")
	nice -n "${FUZZ_NICE:-10}" timeout -k 10 $((secs + 120)) "build-fuzz/fuzz_$t" \
		-max_total_time="$secs" -print_final_stats=1 -close_fd_mask=3 -timeout=30 -rss_limit_mb=2560 \
		-max_len="$(max_len "$t")" -artifact_prefix="$out/" ${FUZZ_EXTRA:-} \
		"$out/corpus" "tests/fuzz/corpus/$t" >"$log" 2>&1
}

run_one() {
	local t=$1 bin=build-fuzz/fuzz_$1 out=fuzz-out/$1 before after execs=0 n rc=0 t0=$SECONDS k wpids=()
	if [[ ! -x $bin ]]; then
		echo "fuzz: $bin not built (make fuzz-build)"; return 1
	fi
	mkdir -p "$out/corpus" "tests/fuzz/corpus/$t"
	before=$(find "$out" -maxdepth 1 -name 'crash-*' -o -maxdepth 1 -name 'leak-*' -o -maxdepth 1 -name 'timeout-*' -o -maxdepth 1 -name 'oom-*' | wc -l)
	# FUZZ_WORKERS > 1: that many processes share the working corpus (libFuzzer reloads it as it grows)
	for ((k = 1; k <= ${FUZZ_WORKERS:-1}; k++)); do
		fuzz_proc "$t" "$k" & wpids+=($!)
	done
	for k in "${wpids[@]}"; do
		wait "$k" || rc=$?
	done
	local took=$((SECONDS - t0)) logs=()
	for ((k = 1; k <= ${FUZZ_WORKERS:-1}; k++)); do   # this run's logs only, not an older run's extra workers
		logs+=("$(log_of "$t" "$k")")
	done
	after=$(find "$out" -maxdepth 1 -name 'crash-*' -o -maxdepth 1 -name 'leak-*' -o -maxdepth 1 -name 'timeout-*' -o -maxdepth 1 -name 'oom-*' | wc -l)
	for k in "${logs[@]}"; do
		n=$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\).*/\1/p' "$k" | tail -n1)
		execs=$((execs + ${n:-0}))
	done
	echo "fuzz: $t: $execs executions in ${took}s (${FUZZ_WORKERS:-1} process(es)), exit $rc, $((after - before)) new crash file(s) (log ${logs[*]})"
	if [[ -z ${FUZZ_NO_LOG:-} ]]; then
		[[ -s $LOG ]] || printf '# Fuzzing executions\n\nOne row per `make fuzz` run (scripts/fuzz.sh). Goal (issue 7): >= 10^7 executions per target over\nthe project'"'"'s life with 0 open crashes.\n\n| target | date (UTC) | seconds | workers | executions | crashes |\n| --- | --- | --- | --- | --- | --- |\n' >"$LOG"
		# one appender at a time when FUZZ_JOBS > 1
		( flock 9; printf '| %s | %s | %s | %s | %s | %s |\n' "$t" "$(date -u +%Y-%m-%dT%H:%MZ)" "$took" "${FUZZ_WORKERS:-1}" "$execs" "$((after - before))" >>"$LOG" ) 9>>"$LOG"
	fi
	((after == before))
}

status=0
jobs=${FUZZ_JOBS:-1}
pids=()
for t in "$@"; do
	if ((jobs > 1)); then
		run_one "$t" & pids+=($!)
		while (($(jobs -rp | wc -l) >= jobs)); do wait -n || status=1; done
	else
		run_one "$t" || status=1
	fi
done
for p in "${pids[@]}"; do wait "$p" || status=1; done

if [[ -s $LOG ]]; then
	echo "fuzz: executions over every logged run:"
	awk -F'|' '/^\| [a-z]/ && $2 !~ /target/ { gsub(/ /, "", $2); e[$2] += $6; c[$2] += $7 }
		END { for (t in e) printf "  %-10s %12d executions, %d crash file(s) logged\n", t, e[t], c[t] }' "$LOG" | sort
fi
exit $status
