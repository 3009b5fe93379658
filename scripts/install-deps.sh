#!/usr/bin/env bash
# Install the Debian packages vmoffset-trace needs to build, test and demo (idempotent).
# Only missing packages are installed; nothing is upgraded. `make deps` runs this.
set -euo pipefail

PKGS=(
	gcc make pkg-config libc6-dev binutils
	libbpf-dev libelf-dev zlib1g-dev libjson-c-dev libcmocka-dev
	clang llvm bpftool
	qemu-system-x86 busybox-static cpio
	gzip bzip2 xz-utils zstd lz4 lzop
	apt ca-certificates debian-archive-keyring gpgv
	python3 coreutils util-linux procps socat
	libclang-rt-14-dev strace   # libFuzzer runtime (make fuzz); syscall proof that guest memory is only read
	# packaging (make install / make deb, tests/guest/test_package.sh): dpkg-buildpackage and dh, the installed
	# man page, systemd-analyze verify of the unit
	dpkg-dev debhelper man-db systemd git
	# the fleet test (tests/guest/test_fleet.sh): a real Prometheus scrapes live --metrics, promtool lints it,
	# node_exporter's textfile collector reads --metrics-file
	prometheus prometheus-node-exporter
	# the timechart test (tests/guest/test_timechart.sh): headless Chromium renders the SVG to PNG and checks the
	# Trace Event JSON in a page (what Perfetto's UI and chrome://tracing open)
	chromium
	# arm64 guests (tests/guest/test_arm64_memory.sh): the emulator, and a debugger that reads their TTBRs/TCR
	qemu-system-arm gdb-multiarch
	# the randstruct test kernel (scripts/build-randstruct-kernel.sh, which also installs these itself)
	linux-source-6.1 gcc-12-plugin-dev flex bison bc libelf-dev libssl-dev dwarves
)

missing=()
for p in "${PKGS[@]}"; do
	status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
	[[ "$status" == installed ]] || missing+=("$p")
done

if ((${#missing[@]} == 0)); then
	echo "deps: all ${#PKGS[@]} packages present"
	exit 0
fi

if ((EUID != 0)); then
	echo "deps: missing packages (run as root, or: apt-get install ${missing[*]}): ${missing[*]}" >&2
	exit 1
fi

echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "deps: installed ${#missing[@]} package(s)"
