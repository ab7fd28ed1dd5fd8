#!/usr/bin/env bash
# Makes sure Debian's chromium is at /usr/bin/chromium for the status-page tests (driven by
# playwright-core; never a downloaded browser). Installs it with apt when missing and we are root
# (or have sudo); otherwise says so, and those tests skip naming the missing package.
set -uo pipefail
[ -x /usr/bin/chromium ] && exit 0
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then SUDO="sudo -n"; else
    echo "ensure-chromium: /usr/bin/chromium is missing and apt needs root; the status-page tests will skip" >&2
    exit 0
  fi
fi
echo "ensure-chromium: installing Debian's chromium" >&2
$SUDO apt-get update -qq >&2 || true
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >&2 ||
  echo "ensure-chromium: apt-get install chromium failed; the status-page tests will skip" >&2
exit 0
