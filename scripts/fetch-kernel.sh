#!/usr/bin/env bash
# fetch-kernel.sh SUITE [FLAVOUR] — fetch a Debian kernel into the kernel zoo and print its directory.
#
#   SUITE    bullseye (5.10) | bookworm (6.1) | trixie (6.12) | sid (7.x); aliases 5.10, 6.1, 6.12, 7
#   FLAVOUR  amd64 (default) | cloud-amd64 | rt-amd64 | 686 | 686-pae (32-bit x86 guests: bullseye, bookworm)
#            | arm64 (arm64 guests)
#
# Uses a private apt configuration under the cache dir (${VMOFFSET_CACHE:-/var/cache/vmoffset-trace}), whose
# sources.list points at the Debian mirror the host's own apt sources already use (override with
# VMOFFSET_MIRROR=URI). The metapackage linux-image-FLAVOUR is resolved to the versioned image package, which is
# downloaded with `apt-get download` (signature-checked Release file, hash-checked .deb) and unpacked into
#   $CACHE/kernels/<uname -r>/
#     vmlinuz  vmlinux (ELF, from scripts/extract-vmlinux.sh; arm64: Image, the uncompressed boot image, instead)
#     vmlinux.btf  System.map (if shipped)  config
#       (arm64: no ELF to dump .BTF from; build/tools/btf-extract finds the raw BTF in the Image by its header —
#       `make` builds it, VMOFFSET_BTF_EXTRACT=PATH names another build. Not built yet: a warning, and the next
#       run on the cached kernel writes vmlinux.btf without downloading again)
#     kvm.ko kvm-intel.ko kvm-amd.ko (decompressed; their .BTF is split BTF on top of vmlinux.btf)
#     release (uname -r)  package (name version)  suite  flavour  arch
#     busybox (i386 and arm64 flavours: busybox-static of the same suite and architecture, the guest's userland)
#     vmlinux.dwarf.btf (VMOFFSET_DBG=1: the kernel's DWARF from linux-image-R-dbg, ~765 MB for i386, turned into
#       BTF by pahole: the truth for kernels without .BTF; the .deb and its vmlinux are not kept)
# Prints that directory on stdout; progress goes to stderr. Exit 1 with one line on stderr on any failure.
#
# Environment: VMOFFSET_DBG=1 (see vmlinux.dwarf.btf), VMOFFSET_BTF_EXTRACT (see vmlinux.btf), VMOFFSET_CACHE,
# VMOFFSET_MIRROR, VMOFFSET_APT_MAX_AGE (seconds before the package lists are refreshed; default 86400),
# VMOFFSET_OFFLINE=1 (never run apt-get update; use what is cached).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE=${VMOFFSET_CACHE:-/var/cache/vmoffset-trace}
MAX_AGE=${VMOFFSET_APT_MAX_AGE:-86400}

die() { echo "fetch-kernel: $*" >&2; exit 1; }
say() { echo "fetch-kernel: $*" >&2; }

usage() { echo "usage: fetch-kernel.sh bullseye|bookworm|trixie|sid|5.10|6.1|6.12|7 [amd64|cloud-amd64|rt-amd64|686|686-pae|arm64]" >&2; exit 64; }
(($# >= 1 && $# <= 2)) || usage
case "$1" in
	bullseye|5.10) SUITE=bullseye ;;
	bookworm|6.1)  SUITE=bookworm ;;
	trixie|6.12)   SUITE=trixie ;;
	sid|unstable|7|7.*) SUITE=sid ;;
	*) usage ;;
esac
FLAVOUR=${2:-amd64}
case "$FLAVOUR" in amd64|cloud-amd64|rt-amd64) ARCH=amd64 ;; 686|686-pae) ARCH=i386 ;; arm64) ARCH=arm64 ;; *) usage ;; esac
# one private apt root per suite and architecture (package lists of different architectures differ)
APTNAME=$SUITE; [[ $ARCH == amd64 ]] || APTNAME=$SUITE-$ARCH

for t in apt-get apt-cache dpkg-deb gpgv timeout; do
	command -v "$t" >/dev/null || die "missing tool '$t' (run scripts/install-deps.sh)"
done

mkdir -p "$CACHE/kernels" "$CACHE/debs" || die "cannot create cache dir $CACHE"
# one fetch per suite at a time (the private apt root of a suite is not shared-writable)
mkdir -p "$CACHE/apt"
exec 9>"$CACHE/apt/.$APTNAME.lock"
flock -w 900 9 || die "timed out waiting for another fetch-kernel.sh of $APTNAME (lock $CACHE/apt/.$APTNAME.lock)"

# --- the mirror: the URI that serves the Debian main archive in the host's own apt sources ---------------
find_mirror() {
	local f line etc=${VMOFFSET_APT_ETC:-/etc/apt}
	# one-line format: deb [opts] URI SUITE COMPONENTS...
	for f in "$etc/sources.list" "$etc"/sources.list.d/*.list; do
		[[ -r "$f" ]] || continue
		while read -r line; do
			line=${line%%#*}
			[[ "$line" =~ ^deb[[:space:]] ]] || continue
			line=$(sed -E 's/^deb[[:space:]]+(\[[^]]*\][[:space:]]+)?//' <<<"$line")
			set -- $line
			(($# >= 3)) || continue
			[[ "$2" == *-security* || "$2" == */updates ]] && continue
			[[ " ${*:3} " == *" main "* ]] || continue
			echo "$1"; return 0
		done <"$f"
	done
	# deb822 format: stanzas of Field: value lines separated by blank lines
	for f in "$etc"/sources.list.d/*.sources; do
		[[ -r "$f" ]] || continue
		awk 'function flush() { if (types ~ /(^| )deb( |$)/ && comps ~ /(^| )main( |$)/ && suites != "" && suites !~ /-security/ && enabled !~ /^[Nn]o/) { split(uris, u, " "); print u[1]; found=1; exit } types=uris=suites=comps=enabled="" }
		     /^[[:space:]]*#/ { next }
		     /^[[:space:]]*$/ { flush(); next }
		     { k=$1; sub(/:$/, "", k); v=$0; sub(/^[^:]*:[[:space:]]*/, "", v) }
		     tolower(k)=="types" { types=v } tolower(k)=="uris" { uris=v } tolower(k)=="suites" { suites=v }
		     tolower(k)=="components" { comps=v } tolower(k)=="enabled" { enabled=v }
		     END { if (!found) flush() }' "$f" | head -n1 | grep . && return 0
	done
	return 1
}
MIRROR=${VMOFFSET_MIRROR:-$(find_mirror || true)}
[[ "${VMOFFSET_PRINT_MIRROR:-}" == 1 ]] && { echo "$MIRROR"; exit 0; }
[[ -n "$MIRROR" ]] || die "no Debian main-archive URI found in /etc/apt/sources.list{,.d/} (set VMOFFSET_MIRROR=URI)"

# --- keyring ---------------------------------------------------------------------------------------------
# Release files are verified with the host's debian-archive-keyring (bookworm's 2023.3+deb12u2 holds the
# archive keys that sign bullseye, bookworm, trixie and — as of this writing — sid). Should a suite be signed
# only by a key newer than the host keyring (NO_PUBKEY), the script fetches debian-archive-keyring from trixie
# — whose Release the host keyring verifies, so the keyring .deb is hash-checked through a trusted chain — and
# verifies that suite with the union of both keyrings. Verification is never disabled.
HOST_KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
[[ -r "$HOST_KEYRING" ]] || die "missing $HOST_KEYRING (apt-get install debian-archive-keyring)"

apt_opts() {   # apt_opts APTROOT KEYRING [ARCH]
	local r=$1 keyring=$2 arch=${3:-amd64}
	echo "-o Dir::Etc::SourceList=$r/etc/sources.list -o Dir::Etc::SourceParts=$r/etc/empty.d"
	echo "-o Dir::Etc::Preferences=$r/etc/preferences -o Dir::Etc::PreferencesParts=$r/etc/empty.d"
	echo "-o Dir::Etc::Parts=$r/etc/empty.d -o Dir::Etc::Trusted=$keyring -o Dir::Etc::TrustedParts=$r/etc/empty.d"
	echo "-o Dir::State=$r -o Dir::State::Lists=$r/lists -o Dir::State::status=$r/status"
	echo "-o Dir::Cache=$r -o Dir::Cache::Archives=$r/archives -o Dir::Cache::pkgcache=$r/pkgcache.bin -o Dir::Cache::srcpkgcache=$r/srcpkgcache.bin"
	echo "-o APT::Architecture=$arch -o APT::Architectures=$arch -o Acquire::Languages=none"
	echo "-o Acquire::IndexTargets::deb::Contents-deb::DefaultEnabled=false"
	echo "-o Acquire::http::Timeout=30 -o Acquire::https::Timeout=30 -o Acquire::Retries=2"
	echo "-o Debug::NoLocking=1 -o APT::Sandbox::User=root -o quiet=1"
}

aptroot_init() {   # aptroot_init NAME -> prints the private apt root NAME (a suite, or SUITE-ARCH)
	local r=$CACHE/apt/$1
	mkdir -p "$r"/{etc/empty.d,lists/partial,archives/partial,keyrings}
	: >"$r/status"; : >"$r/etc/preferences"
	echo "$r"
}

lists_fresh() {   # lists_fresh APTROOT SUITE
	local rel
	rel=$(ls "$1"/lists/*_dists_"$2"_InRelease 2>/dev/null | head -n1) || true
	[[ -n "$rel" ]] || return 1
	[[ "${VMOFFSET_OFFLINE:-0}" == 1 ]] && return 0
	(($(date +%s) - $(stat -c %Y "$rel") < MAX_AGE))
}

apt_update() {   # apt_update APTROOT SUITE KEYRING [ARCH] -> 0 if the suite's lists were fetched and verified
	local r=$1 suite=$2 keyring=$3 arch=${4:-amd64} log=$1/update.log
	echo "deb [signed-by=$keyring] $MIRROR $suite main" >"$r/etc/sources.list"
	# shellcheck disable=SC2046
	timeout 600 apt-get $(apt_opts "$r" "$keyring" "$arch") update >"$log" 2>&1 || return 1
	# apt-get update can exit 0 after a failed or unverifiable fetch: require a clean log and the InRelease
	! grep -qE '^(E:|W:.*(NO_PUBKEY|not signed|EXPKEYSIG|Failed to fetch|is not valid|BADSIG|GPG error))' "$log" &&
		ls "$r"/lists/*_dists_"$suite"_InRelease >/dev/null 2>&1
}

ensure_lists() {   # ensure_lists APTROOT SUITE [ARCH] -> prints the keyring that verifies SUITE; lists fresh
	local r=$1 suite=$2 arch=${3:-amd64} keyring=$HOST_KEYRING
	[[ -s "$r/keyrings/keyring.gpg" ]] && keyring=$r/keyrings/keyring.gpg
	if lists_fresh "$r" "$suite"; then
		echo "deb [signed-by=$keyring] $MIRROR $suite main" >"$r/etc/sources.list"
		echo "$keyring"; return 0
	fi
	[[ "${VMOFFSET_OFFLINE:-0}" == 1 ]] && die "VMOFFSET_OFFLINE=1 and no cached package lists for $suite"
	say "updating package lists for $suite from $MIRROR"
	if apt_update "$r" "$suite" "$keyring" "$arch"; then echo "$keyring"; return 0; fi
	if grep -q NO_PUBKEY "$r/update.log" && [[ "$keyring" == "$HOST_KEYRING" && "$suite" != trixie ]]; then
		newer_keyring "$r/keyrings/keyring.gpg" || die "cannot obtain a keyring that verifies $suite"
		keyring=$r/keyrings/keyring.gpg
		say "verifying $suite with debian-archive-keyring from trixie plus the host keyring"
		if apt_update "$r" "$suite" "$keyring" "$arch"; then echo "$keyring"; return 0; fi
	fi
	die "apt-get update for $suite failed: $(grep -E '^(E|W):' "$r/update.log" | head -n1 || tail -n1 "$r/update.log")"
}

newer_keyring() {   # newer_keyring OUT — debian-archive-keyring of trixie (verified chain) ∪ host keyring
	local r k tmp
	exec 7>"$CACHE/apt/.trixie.lock"
	flock -w 900 7 || return 1
	r=$(aptroot_init trixie); k=$(ensure_lists "$r" trixie)
	tmp=$(mktemp -d)
	# shellcheck disable=SC2046
	(cd "$tmp" && timeout 300 apt-get $(apt_opts "$r" "$k") download debian-archive-keyring >/dev/null 2>&1) &&
		dpkg-deb -x "$tmp"/debian-archive-keyring_*.deb "$tmp/x" &&
		cat "$tmp/x/usr/share/keyrings/debian-archive-keyring.gpg" "$HOST_KEYRING" >"$1"
	local rc=$?; rm -rf "$tmp"; return $rc
}

# --- resolve linux-image-FLAVOUR -> versioned image package(s) ------------------------------------------
APTROOT=$(aptroot_init "$APTNAME")
KEYRING=$(ensure_lists "$APTROOT" "$SUITE" "$ARCH")
# shellcheck disable=SC2207
APT=(apt-get $(apt_opts "$APTROOT" "$KEYRING" "$ARCH"))
# shellcheck disable=SC2207
APTC=(apt-cache $(apt_opts "$APTROOT" "$KEYRING" "$ARCH"))

depends_of() {   # direct Depends of a package (first alternative of each)
	"${APTC[@]}" depends --no-recommends --no-suggests --no-conflicts --no-breaks --no-replaces --no-enhances \
		--no-pre-depends "$1" 2>/dev/null | awk '/^  Depends:/ { print $2 }'
}
candidate() { "${APTC[@]}" policy "$1" 2>/dev/null | awk '/Candidate:/ { if ($2 != "(none)") print $2 }'; }

META=linux-image-$FLAVOUR
[[ -n "$(candidate "$META")" ]] || die "no package $META in $SUITE"
IMG=$(depends_of "$META" | grep -E '^linux-image-[0-9]' | head -n1 || true)
[[ -n "$IMG" ]] || die "cannot resolve $META in $SUITE to a versioned linux-image package"
RELEASE=${IMG#linux-image-}; RELEASE=${RELEASE%-unsigned}
# the signed image if it exists, else the unsigned one
PKG=
for cand in "linux-image-$RELEASE" "linux-image-$RELEASE-unsigned"; do
	[[ -n "$(candidate "$cand")" ]] && { PKG=$cand; break; }
done
[[ -n "$PKG" ]] || die "linux-image-$RELEASE has no installable candidate in $SUITE"
# Since 7.x the image package is split: linux-image-R depends on linux-binary-R (vmlinuz), linux-modules-R
# (modules) and linux-base-R (config, System.map); take those too.
PKGS=("$PKG")
for d in $(depends_of "$PKG"); do
	[[ "$d" =~ ^linux-(binary|modules|base)-"$RELEASE"$ ]] && PKGS+=("$d")
done
# a 32-bit guest's userland comes from the same suite and architecture
if [[ $ARCH != amd64 ]]; then
	[[ -n "$(candidate busybox-static)" ]] || die "no busybox-static for $ARCH in $SUITE"
	PKGS+=(busybox-static)
fi
WANT=""
for p in "${PKGS[@]}"; do WANT+="$p $(candidate "$p")"$'\n'; done
KDIR=$CACHE/kernels/$RELEASE

# DWARF truth (VMOFFSET_DBG=1): the -dbg package's vmlinux as BTF, read once; only the BTF is kept
dwarf_truth() {   # dwarf_truth KDIR
	local kd=$1 dbg=linux-image-$RELEASE-dbg v tmp deb vml
	[[ "${VMOFFSET_DBG:-0}" == 1 && ! -s "$kd/vmlinux.dwarf.btf" ]] || return 0
	command -v pahole >/dev/null || die "VMOFFSET_DBG=1 needs pahole (apt-get install dwarves)"
	v=$(candidate "$dbg"); [[ -n "$v" ]] || die "no $dbg in $SUITE"
	tmp=$(mktemp -d "$CACHE/debs/.dbg.XXXXXX")
	say "downloading $dbg $v from $SUITE (DWARF truth; the .deb is not kept)"
	if ! (cd "$tmp" && timeout 3600 "${APT[@]}" download "$dbg=$v" >"$tmp/log" 2>&1); then
		rm -rf "$tmp"; die "download of $dbg $v failed"
	fi
	deb=$(ls "$tmp"/*.deb | head -n1)
	dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$tmp" --wildcards './usr/lib/debug/boot/vmlinux-*' \
		'./usr/lib/debug/lib/modules/*/vmlinux' 2>/dev/null || true
	vml=$(ls "$tmp"/usr/lib/debug/boot/vmlinux-* "$tmp"/usr/lib/debug/lib/modules/*/vmlinux 2>/dev/null | head -n1 || true)
	[[ -n "$vml" ]] || { rm -rf "$tmp"; die "$dbg holds no vmlinux"; }
	if ! pahole --btf_encode_detached="$tmp/out.btf" "$vml" >"$tmp/pahole.log" 2>&1 || [[ ! -s "$tmp/out.btf" ]]; then
		msg=$(tail -n1 "$tmp/pahole.log"); rm -rf "$tmp"; die "pahole could not turn $dbg's DWARF into BTF: $msg"
	fi
	mv "$tmp/out.btf" "$kd/vmlinux.dwarf.btf"
	echo "$dbg $v" >"$kd/dbg-package"
	rm -rf "$tmp"
	say "DWARF of $RELEASE as BTF in $kd/vmlinux.dwarf.btf"
}

# arm64's BTF, from the Image (a boot image, no ELF): the raw .BTF is in it byte for byte, found by its header
image_btf() {   # image_btf DIR (holding Image)
	local d=$1 tool=${VMOFFSET_BTF_EXTRACT:-$HERE/../build/tools/btf-extract} msg
	[[ $ARCH == arm64 && ! -s "$d/vmlinux.btf" ]] || return 0
	if [[ ! -x "$tool" ]]; then
		say "warning: ${VMOFFSET_BTF_EXTRACT:-build/tools/btf-extract} not built (run make):" \
			"$RELEASE has no vmlinux.btf yet (the next fetch-kernel.sh writes it)"
		return 0
	fi
	# the tool writes through a temporary file and a rename: no half a vmlinux.btf if interrupted
	if msg=$("$tool" "$d/Image" "$d/vmlinux.btf" 2>&1); then say "$RELEASE ${msg##*/}"; else say "warning: $msg"; fi
}

BOOTIMG=vmlinux; [[ $ARCH == arm64 ]] && BOOTIMG=Image
if [[ -s "$KDIR/release" && -s "$KDIR/$BOOTIMG" && -s "$KDIR/vmlinuz" && "$(cat "$KDIR/package" 2>/dev/null)"$'\n' == "$WANT" ]]; then
	image_btf "$KDIR"   # a kernel cached before the extractor existed (or was built)
	dwarf_truth "$KDIR"
	echo "$KDIR"; exit 0
fi

# --- download ---------------------------------------------------------------------------------------------
DEBS=()
while read -r p v; do
	[[ -n "$p" ]] || continue
	deb=$CACHE/debs/${p}_${v//:/%3a}_$ARCH.deb
	if [[ ! -s "$deb" ]]; then
		say "downloading $p $v from $SUITE"
		tmp=$(mktemp -d "$CACHE/debs/.dl.XXXXXX")
		if ! (cd "$tmp" && timeout 1200 "${APT[@]}" download "$p=$v" >"$tmp/log" 2>&1); then
			msg=$(grep -E '^(E|W):' "$tmp/log" | head -n1 || true); rm -rf "$tmp"
			die "download of $p $v failed${msg:+: $msg}"
		fi
		mv "$(ls "$tmp"/*.deb | head -n1)" "$deb"; rm -rf "$tmp"
	fi
	DEBS+=("$deb")
done <<<"$WANT"
say "unpacking ${DEBS[*]##*/} ($(du -ch "${DEBS[@]}" | tail -n1 | cut -f1))"

# --- extract ----------------------------------------------------------------------------------------------
tmp=$(mktemp -d "$CACHE/kernels/.x.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
for deb in "${DEBS[@]}"; do
	dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$tmp" --wildcards \
		'./boot/*' '*/modules/*/vmlinuz' '*/modules/*/System.map' '*/modules/*/config' \
		'*/modules/*/kernel/arch/x86/kvm/*' './bin/busybox' './usr/bin/busybox' 2>/dev/null || true
done
# /boot/{vmlinuz,System.map,config}-R up to 6.x; /usr/lib/modules/R/{vmlinuz,System.map,config} since 7.x
vmlinuz=$(ls "$tmp"/boot/vmlinuz-* 2>/dev/null | head -n1 || true)
if [[ -n "$vmlinuz" ]]; then
	rel=${vmlinuz##*/vmlinuz-}; kfile() { echo "$tmp/boot/$1-$rel"; }
else
	vmlinuz=$(ls "$tmp"/{,usr/}lib/modules/*/vmlinuz 2>/dev/null | head -n1 || true)
	[[ -n "$vmlinuz" ]] || die "no vmlinuz in ${DEBS[*]##*/}"
	rel=$(basename "$(dirname "$vmlinuz")"); kfile() { echo "$(dirname "$vmlinuz")/$1"; }
fi
out=$tmp/out; mkdir -p "$out"
cp "$vmlinuz" "$out/vmlinuz"
# Debian ships a one-line placeholder System.map ("The real System.map is in the ...-dbg package"): skip it
if [[ -f "$(kfile System.map)" ]] && (($(wc -l <"$(kfile System.map)") > 100)); then
	cp "$(kfile System.map)" "$out/System.map"
fi
[[ -f "$(kfile config)" ]] && cp "$(kfile config)" "$out/config"
if [[ $ARCH == arm64 ]]; then
	# an arm64 vmlinuz is the boot Image itself, plain (an EFI-stub PE: bookworm, trixie and sid as of this
	# writing) or gzip-compressed;
	# its BTF has no ELF section to come from: found in the Image by its header (image_btf)
	if gzip -t "$out/vmlinuz" 2>/dev/null; then gzip -dc "$out/vmlinuz" >"$out/Image"; else cp "$out/vmlinuz" "$out/Image"; fi
	[[ "$(head -c 64 "$out/Image" | tail -c 8 | od -An -c | tr -d ' \n')" == ARMd* ]] ||
		die "$(basename "$vmlinuz") is not an arm64 Image (no ARM\\x64 magic)"
	image_btf "$out"
else
"$HERE/extract-vmlinux.sh" "$out/vmlinuz" >"$out/vmlinux" || die "cannot extract vmlinux from $(basename "$vmlinuz")"
if command -v llvm-objcopy >/dev/null; then OBJCOPY=llvm-objcopy; else OBJCOPY=objcopy; fi
$OBJCOPY --dump-section .BTF="$out/vmlinux.btf" "$out/vmlinux" "$tmp/discard" 2>/dev/null ||
	objcopy -O binary --only-section=.BTF "$out/vmlinux" "$out/vmlinux.btf" 2>/dev/null || true
[[ -s "$out/vmlinux.btf" ]] || { rm -f "$out/vmlinux.btf"; say "warning: $rel has no .BTF section"; }
fi
if [[ $ARCH != amd64 ]]; then   # /bin/busybox, /usr/bin/busybox since the usr merge (trixie)
	bb=$(ls "$tmp"/bin/busybox "$tmp"/usr/bin/busybox 2>/dev/null | head -n1 || true)
	[[ -n "$bb" ]] || die "busybox-static unpacked no busybox"
	cp "$bb" "$out/busybox"
fi
for m in kvm kvm-intel kvm-amd; do
	[[ $ARCH == amd64 ]] || break   # the host's KVM modules matter, not a 32-bit guest's
	f=$(ls "$tmp"/{,usr/}lib/modules/*/kernel/arch/x86/kvm/"$m".ko* 2>/dev/null | head -n1 || true)
	[[ -n "$f" ]] || { say "warning: $rel ships no $m.ko"; continue; }
	case "$f" in
		*.ko.xz)  xz -dc "$f" >"$out/$m.ko" ;;
		*.ko.zst) zstd -qdc "$f" >"$out/$m.ko" ;;
		*.ko.gz)  gzip -dc "$f" >"$out/$m.ko" ;;
		*.ko)     cp "$f" "$out/$m.ko" ;;
	esac
done
echo "$rel" >"$out/release"
printf '%s' "$WANT" >"$out/package"
echo "$SUITE" >"$out/suite"
echo "$FLAVOUR" >"$out/flavour"
echo "$ARCH" >"$out/arch"
rm -rf "$KDIR"; mv "$out" "$KDIR"
dwarf_truth "$KDIR"
say "$rel ready in $KDIR"
echo "$KDIR"
