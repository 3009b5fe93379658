#!/usr/bin/env bash
# test_package.sh — issue 15: installed the way operators install; no guest needed.
#   - `make deb` builds the Debian package from a copy of this tree (the developer's tree is not touched);
#   - dpkg -i: /usr/bin/vmoffset-trace --version is the source's version, `man vmoffset-trace` shows the
#     installed page, systemd-analyze verify accepts the unit, the unit's sandbox lines are there (and
#     `systemd-analyze security --offline` rates it), postinst enabled it, /etc/default/vmoffset-trace is a
#     conffile;
#   - dpkg -r removes every file the package listed but the conffile, dpkg -P that one and the enablement;
#   - make install DESTDIR=... PREFIX=/usr/local lays out binary, man page, unit and defaults file, keeps an
#     existing defaults file, and make uninstall removes them (an edited defaults file stays).
# Root only; skipped where vmoffset-trace is already installed (as a package or by hand): it is never
# replaced or removed. Exit 0 pass, 77 skip, 1 fail.
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PKG=vmoffset-trace
skip() { echo "skip: $*"; exit 77; }

((EUID == 0)) || skip "needs root (dpkg -i of the package built from this tree)"
# the package is built from source without the sanitizers: one run is enough (not again under SAN=1)
[[ "${VMOT_BIN:-}" == */build-san/* ]] && skip "the package is not built with the sanitizers: checked in the plain pass"
[[ $(dpkg --print-architecture) == amd64 ]] || skip "the package is amd64 only"
for tool in dpkg-buildpackage dh systemd-analyze man; do
	command -v "$tool" >/dev/null || skip "$tool missing (make deps)"
done
status=$(dpkg-query -W -f='${db:Status-Status}' "$PKG" 2>/dev/null)
[[ -z "$status" || "$status" == not-installed ]] ||
	skip "$PKG is installed as a package on this machine ($status): not replacing or removing it"

T=$(mktemp -d /tmp/vmot-pkg.XXXXXX)
installed=0
cleanup() {
	# a failure half-way: the package this test installed goes, with its conffile
	((installed)) && dpkg -P "$PKG" >/dev/null 2>&1
	rm -rf "$T"
}
trap cleanup EXIT
fails=0
t0=$SECONDS
ok() { echo "  ok   $*"; }
bad() { echo "  FAIL $*"; fails=$((fails + 1)); }
# make without the variables of an outer make (make test: MAKEFLAGS may carry SAN=1 or -j)
mk() { env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL -u MAKEOVERRIDES make --no-print-directory "$@"; }
# dpkg, waiting up to 2 min for a lock another apt/dpkg holds
dpkg_wait() {
	local out rc i
	for ((i = 0; i < 60; i++)); do
		out=$(dpkg "$@" 2>&1); rc=$?
		((rc != 0)) && grep -qi 'lock' <<<"$out" && { sleep 2; continue; }
		printf '%s\n' "$out"; return $rc
	done
	printf '%s\n' "$out"; return "$rc"
}

# ---- build: a copy of the tree as it is now (uncommitted work included), OUT inside the temp dir ------------
mkdir -p "$T/src"
if git -C "$ROOT" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	git -C "$ROOT" ls-files -z --cached --others --exclude-standard |
		(cd "$ROOT" && while IFS= read -r -d '' f; do [[ -e "$f" || -L "$f" ]] && printf '%s\0' "$f"; done) |
		tar -C "$ROOT" --null -T - -cf - | tar -C "$T/src" -xf -
else
	tar -C "$ROOT" --exclude=./build --exclude=./build-san --exclude=./build-fuzz --exclude=./fuzz-out \
		--exclude=./vmoffset-trace -cf - . | tar -C "$T/src" -xf -
fi
src_version=$(grep -rhE '^#define VMOT_VERSION[[:space:]]+"' "$T/src/user" | head -n1 | sed 's/.*"\(.*\)".*/\1/')
DEB_JOBS=2 mk -C "$T/src" deb OUT="$T/out" >"$T/deb.out" 2>&1
rc=$?
deb=$(tail -n1 "$T/deb.out")
if ((rc != 0)) || [[ ! -f "$deb" ]]; then
	tail -n 20 "$T/deb.out"
	echo "FAIL: make deb (exit $rc)"; exit 1
fi
ok "make deb: $(basename "$deb") in $((SECONDS - t0)) s, nothing written in $ROOT"
[[ "$deb" == "$T/out/deb/"* ]] || bad "make deb put the package outside OUT: $deb"

# never overwrite a hand-installed copy (dpkg would take over its files and remove them again)
while read -r path; do
	[[ -e "$path" ]] && skip "$path exists (installed by hand?): not overwriting it"
done < <(dpkg-deb --fsys-tarfile "$deb" | tar -t | sed -n 's|^\./|/|; /[^/]$/p')

# ---- dpkg -i ---------------------------------------------------------------------------------------------
t1=$SECONDS
out=$(dpkg_wait -i "$deb") || { echo "$out" | tail -n 20; echo "FAIL: dpkg -i $deb"; exit 1; }
installed=1
status=$(dpkg-query -W -f='${db:Status-Status}' "$PKG")
[[ "$status" == installed ]] && ok "dpkg -i: $PKG $(dpkg-query -W -f='${Version}' "$PKG") installed ($((SECONDS - t1)) s)" ||
	bad "dpkg -i: status '$status'"

v=$(/usr/bin/vmoffset-trace --version 2>&1)
[[ "$v" == "vmoffset-trace $src_version" ]] && ok "/usr/bin/vmoffset-trace --version: $v" ||
	bad "/usr/bin/vmoffset-trace --version: '$v', the source says $src_version"

# the installed page, not ./vmoffset-trace.8 nor one under /usr/local
page=$(MANPATH=/usr/share/man man -w "$PKG" 2>&1)
[[ "$page" == /usr/share/man/man8/vmoffset-trace.8* ]] && ok "man -w: $page" || bad "man -w: $page"
MANPATH=/usr/share/man MANWIDTH=80 man -P cat "$PKG" >"$T/man.txt" 2>"$T/man.err"
name=$(grep -A1 '^NAME' "$T/man.txt" | tail -n1 | tr -s ' ' | sed 's/^ //')
[[ "$name" == "vmoffset-trace - reconstruct"* ]] && ok "man $PKG: NAME: $name" ||
	bad "man $PKG: NAME line '$name' ($(head -c 200 "$T/man.err"))"
grep -q -- '--output-max-mb' "$T/man.txt" && grep -q '/etc/default/vmoffset-trace' "$T/man.txt" &&
	ok "man $PKG: live --output-max-mb and /etc/default/vmoffset-trace documented" ||
	bad "man $PKG: the service's options or FILES entry missing"

UNIT=/lib/systemd/system/vmoffset-trace.service
[[ -f $UNIT ]] || { echo "FAIL: $UNIT missing"; exit 1; }
# systemd-analyze verify without a running systemd (containers) may say things about other units or the
# manager; anything naming our unit or its file is ours
systemd-analyze verify "$UNIT" >"$T/verify" 2>&1
rc=$?
ours=$(grep -E 'vmoffset-trace' "$T/verify")
others=$(grep -vcE 'vmoffset-trace|^\s*$' "$T/verify")
if ((rc == 0)) && [[ -z "$ours" ]]; then
	ok "systemd-analyze verify $UNIT: accepted$( ((others)) && echo " ($others line(s) about other units: $(grep -vE 'vmoffset-trace|^\s*$' "$T/verify" | head -n1))")"
else
	bad "systemd-analyze verify $UNIT (exit $rc): $(head -n 5 "$T/verify")"
fi
grep -q '@[A-Z]*@' "$UNIT" && bad "unit: an unsubstituted @...@: $(grep '@[A-Z]*@' "$UNIT" | head -n1)"
grep -qx 'ExecStart=/usr/bin/vmoffset-trace live -a --follow $VMOT_LIVE_ARGS' "$UNIT" &&
	ok "unit: ExecStart=/usr/bin/vmoffset-trace live -a --follow \$VMOT_LIVE_ARGS" ||
	bad "unit: ExecStart is $(grep '^ExecStart=' "$UNIT")"
missing=()
for line in 'CapabilityBoundingSet=CAP_SYS_PTRACE CAP_BPF CAP_PERFMON CAP_DAC_READ_SEARCH' NoNewPrivileges=yes \
	ProtectSystem=strict ProtectHome=read-only PrivateTmp=yes PrivateDevices=yes ProtectKernelTunables=yes \
	ProtectKernelModules=yes ProtectKernelLogs=yes ProtectControlGroups=yes ProtectClock=yes \
	'RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6' RestrictNamespaces=yes RestrictRealtime=yes \
	LockPersonality=yes MemoryDenyWriteExecute=yes SystemCallArchitectures=native Restart=on-failure \
	RestartSec=5s CacheDirectory=vmoffset-trace LogsDirectory=vmoffset-trace \
	EnvironmentFile=-/etc/default/vmoffset-trace Documentation=man:vmoffset-trace\(8\) WantedBy=multi-user.target; do
	grep -qxF -- "$line" "$UNIT" || missing+=("$line")
done
((${#missing[@]} == 0)) && ok "unit: every sandbox, restart and install line present" || bad "unit: missing ${missing[*]}"
grep -qE '^(ProtectProc=invisible|ProcSubset=pid)' "$UNIT" && bad "unit: /proc restricted: the QEMU processes would be hidden"
# exposure 0..10 (systemd's scale; --threshold counts tenths): 5.0 at most
if systemd-analyze security --help 2>&1 | grep -q -- '--offline'; then
	systemd-analyze security --offline=yes --threshold=50 "$UNIT" >"$T/security" 2>&1
	rc=$?
	level=$(grep -o 'Overall exposure level.*' "$T/security" | sed 's/ *$//')
	((rc == 0)) && ok "systemd-analyze security --offline: $level" || bad "systemd-analyze security (exit $rc): $level"
else
	echo "  note systemd-analyze security --offline unavailable (systemd < 250): not rated"
fi
[[ -L /etc/systemd/system/multi-user.target.wants/vmoffset-trace.service ]] && ok "postinst enabled the unit (multi-user.target.wants)" ||
	bad "postinst did not enable the unit"
if [[ -d /run/systemd/system ]]; then
	echo "  note systemd runs here: the unit is $(systemctl is-active vmoffset-trace 2>&1) after install"
fi
[[ $(dpkg-query -W -f='${Conffiles}' "$PKG") == *' /etc/default/vmoffset-trace '* ]] &&
	ok "/etc/default/vmoffset-trace is a conffile" || bad "/etc/default/vmoffset-trace is not a conffile"

# ---- dpkg -r, then -P ------------------------------------------------------------------------------------
# files and symlinks to files (not directories, nor /lib of a merged /usr, a link to one)
dpkg -L "$PKG" | while read -r p; do [[ -d "$p" ]] || echo "$p"; done >"$T/files"
conffiles=$(dpkg-query -W -f='${Conffiles}' "$PKG" | awk 'NF { print $1 }')
out=$(dpkg_wait -r "$PKG") || bad "dpkg -r: $(tail -n 3 <<<"$out")"
left=()
while read -r f; do
	grep -qxF "$f" <<<"$conffiles" && continue
	[[ -e "$f" || -L "$f" ]] && left+=("$f")
done <"$T/files"
((${#left[@]} == 0)) && ok "dpkg -r: all $(grep -cvxF "$conffiles" "$T/files") files but the conffile removed" ||
	bad "dpkg -r left ${left[*]}"
status=$(dpkg-query -W -f='${db:Status-Status}' "$PKG" 2>/dev/null)
if [[ "$status" == config-files ]]; then
	ok "dpkg -r: state config-files (the conffile /etc/default/vmoffset-trace kept): purging"
	out=$(dpkg_wait -P "$PKG") || bad "dpkg -P: $(tail -n 3 <<<"$out")"
	status=$(dpkg-query -W -f='${db:Status-Status}' "$PKG" 2>/dev/null)
fi
[[ -z "$status" || "$status" == not-installed ]] && installed=0 && ok "dpkg -s: not installed" || bad "after removal: status '$status'"
left=()
for f in $conffiles /etc/systemd/system/multi-user.target.wants/vmoffset-trace.service \
	/etc/systemd/system/vmoffset-trace.service; do
	[[ -e "$f" || -L "$f" ]] && left+=("$f")
done
((${#left[@]} == 0)) && ok "dpkg -P: conffile, enablement and mask links gone" || bad "dpkg -P left ${left[*]}"

# ---- make install / uninstall, staged (in the package's build tree: already built, nothing is rebuilt) -------
S=$T/stage
B=$T/out/deb/src
inst() { mk -C "$B" "$@" DESTDIR="$S" PREFIX=/usr/local >>"$T/install.out" 2>&1; }
if inst install; then
	lay=()
	for f in usr/local/bin/vmoffset-trace:755 usr/local/share/man/man8/vmoffset-trace.8:644 \
		usr/local/lib/systemd/system/vmoffset-trace.service:644 etc/default/vmoffset-trace:644; do
		m=$(stat -c %a "$S/${f%:*}" 2>/dev/null)
		[[ "$m" == "${f#*:}" ]] || lay+=("${f%:*} (mode '${m:-missing}')")
	done
	((${#lay[@]} == 0)) && ok "make install DESTDIR PREFIX=/usr/local: bin (0755), man8, unit, /etc/default (0644)" ||
		bad "make install: ${lay[*]}"
	u=$S/usr/local/lib/systemd/system/vmoffset-trace.service
	grep -qx 'ExecStart=/usr/local/bin/vmoffset-trace live -a --follow $VMOT_LIVE_ARGS' "$u" &&
		grep -qx 'EnvironmentFile=-/etc/default/vmoffset-trace' "$u" && ok "make install: the unit runs /usr/local/bin/vmoffset-trace" ||
		bad "make install: unit says $(grep -E '^(ExecStart|EnvironmentFile)=' "$u" | tr '\n' ' ')"
	extra=$(find "$S" -type f | grep -vE '/(bin/vmoffset-trace|man8/vmoffset-trace\.8|vmoffset-trace\.service|default/vmoffset-trace)$')
	[[ -z "$extra" ]] || bad "make install: unexpected files $extra"
	inst uninstall
	remain=$(find "$S" -type f)
	[[ -z "$remain" ]] && ok "make uninstall: every installed file removed" || bad "make uninstall left $remain"
	# an operator's defaults file: kept by install, and by uninstall once changed
	inst install && echo 'VMOT_LIVE_ARGS=--output /var/log/vmoffset-trace/x.jsonl' >>"$S/etc/default/vmoffset-trace" &&
		inst install && grep -q x.jsonl "$S/etc/default/vmoffset-trace" && inst uninstall &&
		[[ -f "$S/etc/default/vmoffset-trace" && ! -e "$S/usr/local/bin/vmoffset-trace" ]] &&
		ok "make install keeps an existing defaults file, make uninstall keeps a changed one" ||
		bad "an edited /etc/default/vmoffset-trace was overwritten or removed"
	grep -qE '^\s+(CC|LINK|BPF|GEN-SKEL) ' "$T/install.out" && bad "make install rebuilt the binary: $(grep -m1 -E '^\s+(CC|LINK|BPF|GEN-SKEL) ' "$T/install.out")"
else
	bad "make install DESTDIR=$S PREFIX=/usr/local: $(tail -n 3 "$T/install.out")"
fi

echo "  ($((SECONDS - t0)) s)"
((fails == 0)) || { echo "FAIL: $fails check(s)"; exit 1; }
exit 0
