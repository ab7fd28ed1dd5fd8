#!/usr/bin/env bash
# Installs the Debian packages some tests need when they are missing: `haproxy` (several VPS
# instances behind a balancer), `pgbouncer` (the VPS through a transaction pool), `nftables` and
# `iproute2` (the network fault tests). Only as root
# with apt-get; quiet; never fails the run: a test whose tool is still missing skips and says so.
PATH="$PATH:/usr/sbin:/sbin"
missing=()
command -v haproxy >/dev/null 2>&1 || missing+=(haproxy)
command -v pgbouncer >/dev/null 2>&1 || missing+=(pgbouncer)
command -v nft >/dev/null 2>&1 || missing+=(nftables)
{ command -v ip >/dev/null 2>&1 && command -v tc >/dev/null 2>&1; } || missing+=(iproute2)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "ensure-test-tools: missing ${missing[*]} (not root or no apt-get); those tests will skip" >&2
  exit 0
fi
install() {
  DEBIAN_FRONTEND=noninteractive timeout 300 apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1
}
echo "ensure-test-tools: installing ${missing[*]}" >&2
if ! install; then
  # The package lists may be stale or absent (a fresh container): refresh them once and retry.
  timeout 300 apt-get update -qq >/dev/null 2>&1
  install || echo "ensure-test-tools: could not install ${missing[*]}; those tests will skip" >&2
fi
exit 0
