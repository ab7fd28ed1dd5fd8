#!/usr/bin/env bash
# Runs the whole test suite: makes sure PostgreSQL is up (see ensure-postgres.sh), runs
# `bun test`, and ends with one line `N passed, N failed` (what CI reads).
set -uo pipefail
cd "$(dirname "$0")/.."
BUN=./node_modules/.bin/bun
if [ -z "${TEST_DATABASE_URL:-}" ]; then
  TEST_DATABASE_URL=$(bash scripts/ensure-postgres.sh) || { echo "could not get a PostgreSQL for the tests"; echo "0 passed, 1 failed"; exit 1; }
  export TEST_DATABASE_URL
fi
log=$(mktemp)
"$BUN" test --timeout 60000 "$@" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
pass=$(grep -E '^ *[0-9]+ pass$' "$log" | tail -n 1 | tr -dc '0-9')
fail=$(grep -E '^ *[0-9]+ fail$' "$log" | tail -n 1 | tr -dc '0-9')
rm -f "$log"
pass=${pass:-0}; fail=${fail:-0}
if [ "$rc" -ne 0 ] && [ "$fail" -eq 0 ]; then fail=1; fi
echo "${pass} passed, ${fail} failed"
exit "$rc"
