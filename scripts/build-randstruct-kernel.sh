#!/usr/bin/env bash
# build-randstruct-kernel.sh [--seed HEX64] — build Debian's linux-source-6.1 with CONFIG_RANDSTRUCT_FULL (the GCC
# randomize_layout plugin) into the kernel zoo, once per machine, and print its directory.
#
# A randstruct kernel shuffles task_struct, mm_struct and cred with a secret seed; its DWARF and BTF are made from
# the source's declarations, so every profile-based tool reads it wrong. The truth therefore comes from the
# compiler: after the build, a file of offsetof() expressions is compiled with the exact command line kbuild used
# for kernel/fork.c (same plugin, same seed file) and the constants are read back from the assembly.
#
#   --seed HEX64   the randstruct seed (64 hex digits; default: a fixed test seed, so every machine builds the
#                  same layout). The kernel's own scripts/gen-randstruct-seed.sh would draw one from /dev/urandom.
#
# Config: tinyconfig plus what the test guest needs (64-bit, SMP, serial console, initramfs, ELF, /proc, /sys,
# threads, ptrace, MULTIUSER so struct cred matters), KASLR, PTI, 5-level paging support, and BTF (which needs
# COMPILE_TEST next to the plugin: the kernel's Kconfig knows such BTF is wrong, which the tests show).
#
# Output, like scripts/fetch-kernel.sh's:
#   $CACHE/kernels/<release>/  vmlinuz vmlinux.btf config release package suite flavour seed
#                              truth.json  (btf-truth's keys: tasks, pid, ..., mm_pgd; from offsetof)
# Progress on stderr; exit 1 with one line on failure. Takes 5-10 minutes on 2 cores; the source tree is removed
# afterwards. Environment: VMOFFSET_CACHE (default /var/cache/vmoffset-trace), JOBS (default nproc).
set -euo pipefail

CACHE=${VMOFFSET_CACHE:-/var/cache/vmoffset-trace}
JOBS=${JOBS:-$(nproc)}
SEED=5eed0f0ffe75e7ac0000000000000000000000000000000000000000000000a1
KVER=6.1
SCRIPT_VERSION=1   # bump when the config or the truth file changes

die() { echo "build-randstruct: $*" >&2; exit 1; }
say() { echo "build-randstruct: $*" >&2; }

while (($#)); do
	case "$1" in
		--seed) SEED=${2:-}; shift ;;
		*) die "usage: build-randstruct-kernel.sh [--seed HEX64]" ;;
	esac
	shift
done
[[ "$SEED" =~ ^[0-9a-f]{64}$ ]] || die "--seed needs 64 lower-case hex digits"

PKGS=(linux-source-$KVER gcc gcc-12-plugin-dev make flex bison bc libelf-dev libssl-dev dwarves cpio xz-utils)
missing=()
for p in "${PKGS[@]}"; do
	[[ "$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)" == installed ]] || missing+=("$p")
done
if ((${#missing[@]})); then
	((EUID == 0)) || die "missing packages (run as root, or: apt-get install ${missing[*]})"
	say "installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null ||
		die "apt-get install ${missing[*]} failed"
fi
srcver=$(dpkg-query -W -f='${Version}' "linux-source-$KVER")
tarball=/usr/src/linux-source-$KVER.tar.xz
[[ -r "$tarball" ]] || die "$tarball missing (linux-source-$KVER installed?)"

key="$srcver $SEED v$SCRIPT_VERSION"
release_glob=("$CACHE"/kernels/"$KVER".*-vmot-randstruct)
for d in "${release_glob[@]}"; do
	if [[ -r "$d/key" && "$(cat "$d/key")" == "$key" && -s "$d/vmlinuz" && -s "$d/truth.json" ]]; then
		echo "$d"
		exit 0
	fi
done

mkdir -p "$CACHE/kernels" "$CACHE/build" || die "cannot create $CACHE"
build=$(mktemp -d "$CACHE/build/randstruct.XXXXXX")
trap 'rm -rf "$build"' EXIT
say "unpacking linux-source-$KVER $srcver"
tar -xf "$tarball" -C "$build" || die "cannot unpack $tarball"
src=$build/linux-source-$KVER
[[ -d "$src" ]] || die "unexpected layout of $tarball"

# The seed of our choosing instead of /dev/urandom's (the kernel's script writes the seed and its hash header).
cat >"$src/scripts/gen-randstruct-seed.sh" <<EOF
#!/bin/sh
SEED=$SEED
echo "\$SEED" > "\$1"
HASH=\$(echo -n "\$SEED" | sha256sum | cut -d" " -f1)
echo "#define RANDSTRUCT_HASHED_SEED \\"\$HASH\\"" > "\$2"
EOF

cd "$src"
# run from `make test`, the parent's jobserver flags would hold kbuild to one job: this build is its own
unset MAKEFLAGS MFLAGS MAKELEVEL MAKEOVERRIDES
export LOCALVERSION=-vmot-randstruct   # the release's suffix (kbuild reads it at build and at kernelrelease)
make -s tinyconfig >/dev/null || die "make tinyconfig failed"
enable=(64BIT SMP PRINTK TTY SERIAL_8250 SERIAL_8250_CONSOLE BLK_DEV_INITRD RD_GZIP BINFMT_ELF BINFMT_SCRIPT
	PROC_FS SYSFS DEVTMPFS DEVTMPFS_MOUNT TMPFS SHMEM MULTIUSER FUTEX EPOLL SIGNALFD TIMERFD EVENTFD AIO
	FILE_LOCKING POSIX_TIMERS ACPI X86_MPPARSE RELOCATABLE RANDOMIZE_BASE CPU_MITIGATIONS PAGE_TABLE_ISOLATION X86_5LEVEL
	GCC_PLUGINS RANDSTRUCT_FULL COMPILE_TEST BPF_SYSCALL DEBUG_KERNEL DEBUG_INFO_DWARF4 DEBUG_INFO_BTF)
for o in "${enable[@]}"; do scripts/config --enable "$o"; done
scripts/config --disable RANDSTRUCT_NONE --disable LOCALVERSION_AUTO --disable DEBUG_INFO_NONE \
	--disable WERROR
make -s olddefconfig >/dev/null || die "make olddefconfig failed"
for o in "${enable[@]}"; do
	grep -q "^CONFIG_$o=y" .config || die "CONFIG_$o did not stay on after olddefconfig (a dependency missing?)"
done

release=$(make -s kernelrelease)
[[ "$release" == *-vmot-randstruct ]] || die "unexpected kernel release '$release'"
say "building $release (RANDSTRUCT_FULL, seed ${SEED:0:12}..., $JOBS jobs)"
t0=$SECONDS
make -s -j"$JOBS" bzImage >"$build/make.log" 2>&1 || { tail -n 20 "$build/make.log" >&2; die "kernel build failed"; }
say "built in $((SECONDS - t0)) s"

# Truth: offsetof() under the very command line kbuild compiled kernel/fork.c with (plugin, seed file, flags).
cmd=$(sed -n 's/^\(saved\)\?cmd_kernel\/fork\.o := //p' kernel/.fork.o.cmd)
[[ "$cmd" == *randomize_layout_plugin* ]] || die "kernel/fork.o was not compiled with the randstruct plugin"
cat >"$build/vmot_truth.c" <<'EOF'
#include <linux/sched.h>
#include <linux/sched/signal.h>
#include <linux/mm_types.h>
#include <linux/cred.h>
#include <linux/kbuild.h>
void vmot_truth(void);
void vmot_truth(void)
{
	DEFINE(sizeof_task_struct, sizeof(struct task_struct));
	OFFSET(tasks, task_struct, tasks);
	OFFSET(pid, task_struct, pid);
	OFFSET(tgid, task_struct, tgid);
	OFFSET(comm, task_struct, comm);
	OFFSET(mm, task_struct, mm);
	OFFSET(active_mm, task_struct, active_mm);
	OFFSET(real_parent, task_struct, real_parent);
	OFFSET(parent, task_struct, parent);
	OFFSET(children, task_struct, children);
	OFFSET(sibling, task_struct, sibling);
	OFFSET(real_cred, task_struct, real_cred);
	OFFSET(cred, task_struct, cred);
	OFFSET(group_leader, task_struct, group_leader);
	OFFSET(thread_group, task_struct, thread_group);
	OFFSET(thread_node, task_struct, thread_node);
	OFFSET(signal, task_struct, signal);
	OFFSET(mm_pgd, mm_struct, pgd);
	OFFSET(cred_uid, cred, uid);
	OFFSET(cred_euid, cred, euid);
	OFFSET(cred_cap_effective, cred, cap_effective);
}
EOF
# swap the object and source for ours, and compile to assembly
cmd=${cmd//-c -o kernel\/fork.o kernel\/fork.c/-S -o $build/vmot_truth.s $build/vmot_truth.c}
cmd=$(sed 's/-Wp,-MMD,[^ ]*//' <<<"$cmd")
[[ "$cmd" == *vmot_truth.c* ]] || die "cannot rewrite kbuild's command for kernel/fork.c"
bash -c "$cmd" 2>"$build/truth.log" || { tail -n 5 "$build/truth.log" >&2; die "compiling the truth file failed"; }
{
	echo "{"
	echo "  \"release\": \"$release\","
	echo "  \"seed\": \"$SEED\","
	sed -n 's/.*->\([a-z_]*\) \$\?\([0-9]*\).*/  "\1": \2,/p' "$build/vmot_truth.s" | sed '$ s/,$//'
	echo "}"
} >"$build/truth.json"
n=$(grep -c '": [0-9]' "$build/truth.json")
((n == 21)) || die "truth file has $n values, expected 21 (see $build/vmot_truth.s)"

out=$CACHE/kernels/$release
tmp=$(mktemp -d "$CACHE/kernels/.x.XXXXXX")
cp arch/x86/boot/bzImage "$tmp/vmlinuz"
cp .config "$tmp/config"
objcopy -O binary --only-section=.BTF vmlinux "$tmp/vmlinux.btf" 2>/dev/null && [[ -s "$tmp/vmlinux.btf" ]] ||
	die "vmlinux has no .BTF section"
cp "$build/truth.json" "$tmp/truth.json"
echo "$release" >"$tmp/release"
echo "linux-source-$KVER $srcver randstruct" >"$tmp/package"
echo local >"$tmp/suite"
echo randstruct >"$tmp/flavour"
echo "$SEED" >"$tmp/seed"
echo "$key" >"$tmp/key"
rm -rf "$out"
chmod 755 "$tmp"
mv "$tmp" "$out"
say "done: $out (truth from offsetof: task_struct is $(sed -n 's/.*"sizeof_task_struct": \([0-9]*\).*/\1/p' "$out/truth.json") bytes)"
echo "$out"
