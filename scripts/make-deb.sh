#!/usr/bin/env bash
# make-deb.sh — build the Debian package from this tree (`make deb`). The tree's files as they are now,
# uncommitted work included (git: tracked and untracked files that .gitignore does not exclude; outside git:
# every file but the build directories), are copied to $OUT/deb/src and built there with
# `dpkg-buildpackage -us -uc -b`; the packages land in $OUT/deb/ and nothing is written outside $OUT.
# Prints the .deb's path. The build log is $OUT/deb/build.log (V=1: also on stdout).
# Environment: OUT (default build, relative to the tree), DEB_JOBS (parallel jobs, default 2).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
OUT=${OUT:-build}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
DEB=$OUT/deb

for tool in dpkg-buildpackage dh dpkg-parsechangelog; do
	command -v "$tool" >/dev/null || { echo "deb: $tool missing (make deps)" >&2; exit 1; }
done
# one version: debian/changelog's is the binary's (vmoffset-trace --version, VMOT_VERSION under user/)
version=$(dpkg-parsechangelog -l debian/changelog -S Version)
src_version=$(grep -rhE '^#define VMOT_VERSION[[:space:]]+"' user | head -n1 | sed 's/.*"\(.*\)".*/\1/')
if [[ "$version" != "$src_version" ]]; then
	echo "deb: debian/changelog says $version, VMOT_VERSION (user/) '$src_version': add a changelog entry" >&2
	exit 1
fi
arch=$(dpkg --print-architecture)

# the file list, NUL-separated, relative to the tree; never the output directory itself
rel_out=
[[ "$OUT/" == "$ROOT/"* ]] && rel_out=${OUT#"$ROOT"/}
list_files() {
	if git -C "$ROOT" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
		git -C "$ROOT" ls-files -z --cached --others --exclude-standard
	else
		find . \( -path ./.git -o -path ./build -o -path ./build-san -o -path ./build-fuzz -o -path ./fuzz-out \
			-o -path ./vmoffset-trace -o -path "./debian/vmoffset-trace" -o -path ./debian/.debhelper \) -prune \
			-o \( -type f -o -type l \) -printf '%P\0'
	fi
}

rm -rf "$DEB"
mkdir -p "$DEB/src"

while IFS= read -r -d '' f; do
	[[ -n "$rel_out" && ( "$f" == "$rel_out" || "$f" == "$rel_out/"* ) ]] && continue
	[[ -e "$f" || -L "$f" ]] || continue      # tracked but deleted in the work tree
	printf '%s\0' "$f"

done < <(list_files) > "$DEB/files"
tar -C "$ROOT" --null -T "$DEB/files" -cf - | tar -C "$DEB/src" -xf -
echo "deb: $(tr -cd '\0' < "$DEB/files" | wc -c) files copied to $DEB/src; building $version for $arch"

# a clean environment for the package's own make: no variables of an outer make (MAKEFLAGS carries its
# command line, e.g. OUT=, into every sub-make), no OUT of the caller
build() {
	cd "$DEB/src" && env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL -u MAKEOVERRIDES -u OUT -u CFLAGS -u LDFLAGS \
		-u CPPFLAGS dpkg-buildpackage -us -uc -b -J"${DEB_JOBS:-2}"
}
t0=$SECONDS
if [[ "${V:-}" == 1 ]]; then
	build 2>&1 | tee "$DEB/build.log"
	rc=${PIPESTATUS[0]}
else
	build > "$DEB/build.log" 2>&1 && rc=0 || rc=$?
fi
if ((rc != 0)); then
	tail -n 30 "$DEB/build.log" >&2
	echo "deb: dpkg-buildpackage failed (exit $rc); the whole log: $DEB/build.log" >&2
	exit 1
fi
pkg=$DEB/vmoffset-trace_${version}_${arch}.deb
[[ -f "$pkg" ]] || { echo "deb: built, but $pkg is missing (see $DEB/build.log)" >&2; exit 1; }
echo "deb: built in $((SECONDS - t0)) s"
echo "$pkg"
