#!/usr/bin/env bash
# test_hostile_live.sh — issue 7 on a real QEMU guest (TCG, bookworm kernel, KASLR on):
#   1. read-only proof: `ps --pid` under strace -f shows process_vm_readv and never process_vm_writev,
#      ptrace, an open of /proc/PID/mem, or a write/pwrite64 to anything but stdout/stderr;
#   2. least privilege: as nobody without capabilities (setpriv --inh-caps=-all) `ps --pid` exits 1 with
#      one line naming CAP_SYS_PTRACE; `ps --core` on a dump needs none and works;
#   3. QEMU killed mid-read (at several moments of `ps --pid`): exit 1 with one clear error line, never a signal,
#      a hang or a sanitizer report.
# Uses $VMOT_BIN when set (`make test SAN=1` runs it with the sanitized binary). Exit 0 pass, 77 skip.
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=../../scripts/lib/guest-lib.sh
source "$ROOT/scripts/lib/guest-lib.sh"

BIN=${VMOT_BIN:-$ROOT/vmoffset-trace}
[[ -x $BIN ]] || { echo "skip: build vmoffset-trace first (make)"; exit 77; }
for t in strace setpriv; do command -v $t >/dev/null || { echo "skip: $t missing (make deps)"; exit 77; }; done
((EUID == 0)) || { echo "skip: needs root (reads QEMU memory, drops privileges with setpriv)"; exit 77; }
KERNEL=${VMOT_HOSTILE_KERNEL:-bookworm}
# LeakSanitizer cannot run under ptrace (strace); everything else of ASan/UBSan stays on
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}

T=$(mktemp -d /tmp/vmot-hostile-test.XXXXXX)
chmod 755 "$T"
trap 'rm -rf "$T"' EXIT
sanitizer_clean() { ! grep -qE 'AddressSanitizer|LeakSanitizer|runtime error:|UndefinedBehaviorSanitizer' "$1"; }

guest_start --kernel "$KERNEL" --smp 2 --mem 512M || { echo "FAIL: guest did not boot"; exit 1; }
echo "guest: pid $GUEST_PID, $GUEST_RELEASE"

# ---- 1. read-only ----
ASAN_OPTIONS=detect_leaks=0 strace -f -qq -o "$T/strace" \
	-e trace=process_vm_readv,process_vm_writev,ptrace,write,pwrite64,pwritev,pwritev2,writev,open,openat,openat2 \
	"$BIN" ps --pid "$GUEST_PID" --qmp "$GUEST_QMP" --timeout 1 >"$T/ps.out" 2>"$T/ps.err"
rc=$?
((rc == 0)) && ok "ps --pid under strace: exit 0, $(wc -l <"$T/ps.out") lines" || bad "ps --pid under strace: exit $rc: $(head -c 300 "$T/ps.err")"
n=$(grep -c 'process_vm_readv(' "$T/strace")
((n > 0)) && ok "guest memory read with process_vm_readv ($n calls)" || bad "no process_vm_readv call seen"
if grep -qE 'process_vm_writev\(|ptrace\(' "$T/strace"; then bad "process_vm_writev/ptrace used: $(grep -m1 -E 'process_vm_writev|ptrace' "$T/strace")"; else ok "no process_vm_writev, no ptrace"; fi
if grep -E 'open(at2?)?\(.*"/proc/[0-9]+/mem"' "$T/strace" | grep -q .; then bad "/proc/PID/mem opened: $(grep -m1 '/proc/[0-9]*/mem' "$T/strace")"; else ok "/proc/PID/mem never opened"; fi
# writes only to stdout/stderr (the QMP socket is written with send(), which is not a write to memory)
others=$(grep -E '^[0-9]+ +(write|pwrite64|pwritev2?|writev)\(' "$T/strace" | grep -vE '\((1|2), ' | head -n3)
[[ -z $others ]] && ok "every write(2) goes to fd 1 or 2" || bad "writes to other fds: $others"
# and nothing opened the QEMU process's files for writing
wr=$(grep -E 'open(at2?)?\(.*"/proc/'"$GUEST_PID"'/' "$T/strace" | grep -E 'O_WRONLY|O_RDWR' | head -n1)
[[ -z $wr ]] && ok "/proc/$GUEST_PID/* opened read-only" || bad "opened for writing: $wr"
sanitizer_clean "$T/ps.err" && ok "no sanitizer report" || bad "sanitizer: $(grep -m3 -E 'Sanitizer|runtime error' "$T/ps.err")"

# ---- 2. least privilege ----
cp "$BIN" "$T/vmot"
chmod 755 "$T/vmot"
(cd "$T" && setpriv --reuid=nobody --regid=nogroup --clear-groups --inh-caps=-all \
	env ASAN_OPTIONS=detect_leaks=0 ./vmot ps --pid "$GUEST_PID" >"$T/np.out" 2>"$T/np.err")
rc=$?
lines=$(grep -c . "$T/np.err")
if ((rc == 1)) && grep -q 'CAP_SYS_PTRACE' "$T/np.err" && ((lines == 1)); then
	ok "as nobody: exit 1, one line: $(cat "$T/np.err")"
else
	bad "as nobody: exit $rc, $lines stderr line(s): $(head -c 400 "$T/np.err")"
fi
echo '{"execute":"qmp_capabilities"}{"execute":"dump-guest-memory","arguments":{"paging":false,"protocol":"file:'"$T"'/core.elf"}}' |
	timeout 120 socat -t 60 - "UNIX-CONNECT:$GUEST_QMP" >"$T/dump.out" 2>&1
for _ in $(seq 60); do grep -q '"return"' "$T/dump.out" && [[ -s $T/core.elf ]] && break; sleep 1; done
chmod 644 "$T/core.elf" 2>/dev/null
(cd "$T" && setpriv --reuid=nobody --regid=nogroup --clear-groups --inh-caps=-all \
	env ASAN_OPTIONS=detect_leaks=0 ./vmot ps --core core.elf >"$T/nc.out" 2>"$T/nc.err")
rc=$?
((rc == 0 || rc == 2)) && [[ -s $T/nc.out ]] && ok "as nobody: ps --core needs no capability (exit $rc, $(wc -l <"$T/nc.out") lines)" ||
	bad "as nobody: ps --core exit $rc: $(head -c 300 "$T/nc.err")"
guest_stop

# ---- 3. QEMU killed mid-read ----
# kill points: a time after start (QMP sampling, RAM lookup), or as soon as -v shows discovery reading the
# kernel's page tables / scanning its data (guest memory being read with process_vm_readv)
for when in t:0.3 t:0.9 "log:kernel root" "log:after comm scan" "log:after kernel space setup"; do
	guest_start --kernel "$KERNEL" --smp 2 --mem 512M || { bad "guest for kill at $when did not boot"; continue; }
	"$BIN" -v ps --pid "$GUEST_PID" --qmp "$GUEST_QMP" --timeout 0.3 >"$T/k.out" 2>"$T/k.err" &
	p=$!
	if [[ $when == t:* ]]; then
		sleep "${when#t:}"
	else
		for _ in $(seq 600); do grep -q "${when#log:}" "$T/k.err" && break; kill -0 "$p" 2>/dev/null || break; sleep 0.01; done
	fi
	kill -9 "$GUEST_PID" 2>/dev/null
	t0=$SECONDS
	for _ in $(seq 300); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
	if kill -0 "$p" 2>/dev/null; then
		kill -9 "$p"; wait "$p"; bad "killed at $when: still running 30 s after QEMU died"
		guest_stop; continue
	fi
	wait "$p"
	rc=$?
	if ((rc == 0)); then
		ok "killed at $when: had already finished (exit 0)"
	elif ((rc == 1)) && grep -qiE 'exited|gone|closed|connection|no reply|not a QEMU|no process' "$T/k.err" &&
		(($(grep -c '^Error' "$T/k.err") == 1)) && sanitizer_clean "$T/k.err"; then
		ok "killed at $when: exit 1 after $((SECONDS - t0))s: $(grep Error "$T/k.err" | tr '\n' ' ')"
	else
		bad "killed at $when: exit $rc: $(grep -v '^debug' "$T/k.err" | head -c 400)"
	fi
	guest_stop
done

((fails == 0)) || { echo "$fails check(s) failed"; exit 1; }
echo "all checks passed"
