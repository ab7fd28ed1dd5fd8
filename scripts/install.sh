#!/bin/sh
# Installs the dionysus binary: checks it against the SHA-256 the build wrote next to it, then
# copies it to PREFIX/bin (default ~/.local, so ~/.local/bin/dionysus) in one atomic rename.
#
#   scripts/install.sh [PREFIX]
#
# The binary is $DIONYSUS_BINARY, else dist/dionysus next to this script's repository; its
# checksum is <binary>.sha256 (`bun run build` writes both). Nothing is installed if it does not
# match. POSIX sh, so it runs on Linux and macOS alike.
set -eu

die() { echo "install.sh: $*" >&2; exit 1; }

[ "$#" -le 1 ] || { echo "usage: scripts/install.sh [PREFIX]" >&2; exit 2; }
prefix=${1:-${HOME:?HOME is not set}/.local}
here=$(cd "$(dirname "$0")/.." && pwd)
bin=${DIONYSUS_BINARY:-$here/dist/dionysus}
sum_file="$bin.sha256"

[ -f "$bin" ] || die "no binary at $bin (run: bun run build)"
[ -f "$sum_file" ] || die "no checksum at $sum_file (run: bun run build)"

expected=$(awk 'NR == 1 { print $1 }' "$sum_file")
case "$expected" in
  *[!0-9a-f]*|"") die "$sum_file does not hold a SHA-256" ;;
esac
[ "${#expected}" -eq 64 ] || die "$sum_file does not hold a SHA-256"

if command -v sha256sum >/dev/null 2>&1; then
  actual=$(sha256sum "$bin" | awk '{ print $1 }')
elif command -v shasum >/dev/null 2>&1; then
  actual=$(shasum -a 256 "$bin" | awk '{ print $1 }')
else
  die "neither sha256sum nor shasum is available to check the binary"
fi
[ "$actual" = "$expected" ] || die "checksum mismatch for $bin: expected $expected, got $actual; not installed"

dest_dir="$prefix/bin"
mkdir -p "$dest_dir"
tmp="$dest_dir/.dionysus.install.$$"
trap 'rm -f "$tmp"' EXIT INT TERM
cp "$bin" "$tmp"
chmod 0755 "$tmp"
"$tmp" --version >/dev/null 2>&1 || die "the binary does not run on this machine; not installed"
mv -f "$tmp" "$dest_dir/dionysus"
trap - EXIT INT TERM

echo "installed $dest_dir/dionysus ($("$dest_dir/dionysus" --version))"
case ":${PATH:-}:" in
  *":$dest_dir:"*) ;;
  *) echo "note: $dest_dir is not on your PATH; add it, e.g. export PATH=\"$dest_dir:\$PATH\"" ;;
esac
