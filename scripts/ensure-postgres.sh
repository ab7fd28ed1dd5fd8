#!/usr/bin/env bash
# Makes sure a local PostgreSQL is running and has a `dionysus` role (CREATEDB) and a
# `dionysus_test` database, installing PostgreSQL from the distribution's packages when absent.
# Prints the connection URL on stdout; progress goes to stderr.
set -euo pipefail
log() { echo "ensure-postgres: $*" >&2; }
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"

if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
  log "PostgreSQL not installed; installing from the distribution's packages"
  $SUDO apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq postgresql >&2
fi

if ! pg_isready -q -h 127.0.0.1 -p 5432; then
  ver=$(ls /etc/postgresql | sort -V | tail -n 1)
  log "starting PostgreSQL $ver"
  $SUDO pg_ctlcluster --skip-systemctl-redirect "$ver" main start >&2 || true
  for _ in $(seq 1 60); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 0.5; done
fi
pg_isready -q -h 127.0.0.1 -p 5432 || { log "PostgreSQL did not come up on 127.0.0.1:5432"; exit 1; }

as_pg() { if [ "$(id -u)" -eq 0 ]; then su postgres -c "psql -qtA -v ON_ERROR_STOP=1 -c \"$1\"" ; else sudo -u postgres psql -qtA -v ON_ERROR_STOP=1 -c "$1"; fi; }
if [ "$(as_pg "SELECT 1 FROM pg_roles WHERE rolname='dionysus'")" != "1" ]; then
  as_pg "CREATE ROLE dionysus LOGIN CREATEDB PASSWORD 'dionysus'" >&2
fi
if [ "$(as_pg "SELECT 1 FROM pg_database WHERE datname='dionysus_test'")" != "1" ]; then
  as_pg "CREATE DATABASE dionysus_test OWNER dionysus" >&2
fi
echo "postgres://dionysus:dionysus@127.0.0.1:5432/dionysus_test"
