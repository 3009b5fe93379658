#!/usr/bin/env bash
# extract-vmlinux.sh VMLINUZ > vmlinux — the uncompressed vmlinux ELF inside a bzImage.
#
# Same method as the kernel's scripts/extract-vmlinux: find each compression format's magic bytes in the image,
# try to decompress from every hit, and keep the first result that is an ELF file. Decompressors whose stream
# is followed by trailing data (the rest of the bzImage) report an error but still produce the output, so the
# result is judged by its contents, not the exit code. Exit 1 with one line on stderr if nothing fits.
set -uo pipefail

img=${1:-}
[[ -n "$img" && -r "$img" ]] || { echo "usage: extract-vmlinux.sh VMLINUZ > vmlinux" >&2; exit 64; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

is_elf() { [[ -s "$1" ]] && [[ "$(head -c4 "$1" | od -An -tx1 | tr -d ' \n')" == 7f454c46 ]]; }

found() { cat "$1"; exit 0; }

# an image that is already an ELF (an uncompressed vmlinux)
is_elf "$img" && found "$img"

try() {   # try MAGIC_HEX DECOMPRESSOR...
	local magic=$1; shift
	local pos
	# byte offsets of each occurrence of the magic (grep -ob on a latin1 view of the bytes)
	for pos in $(LC_ALL=C grep -obUaP "$magic" "$img" 2>/dev/null | cut -d: -f1 | head -n 16); do
		tail -c +$((pos + 1)) "$img" | "$@" >"$tmp/out" 2>/dev/null
		is_elf "$tmp/out" && found "$tmp/out"
	done
}

try '\x1f\x8b\x08'                 gunzip
try '\xfd\x37\x7a\x58\x5a\x00'     unxz
try 'BZh'                          bunzip2
try '\x5d\x00\x00\x00'             unlzma
try '\x89\x4c\x5a'                 lzop -d
try '\x02\x21\x4c\x18'             lz4 -d
try '\x28\xb5\x2f\xfd'             unzstd

echo "extract-vmlinux: no compressed ELF found in $img" >&2
exit 1
