#!/usr/bin/env bash
# Cross-compiles the dionysus binary for every supported platform into dist/, each with its
# SHA-256 next to it (<binary>.sha256, checked by scripts/install.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
for t in linux-x64 linux-arm64 darwin-x64 darwin-arm64 windows-x64; do
  out="dist/dionysus-$t"; [ "$t" = windows-x64 ] && out="$out.exe"
  ./node_modules/.bin/bun build --compile --minify --sourcemap --target="bun-$t" src/cli/main.ts --outfile "$out"
  ./node_modules/.bin/bun scripts/checksum.ts "$out" >/dev/null
  ls -l "$out" | awk -v t="$t" '{ printf "%s %.1f MB\n", t, $5/1048576 }'
done
