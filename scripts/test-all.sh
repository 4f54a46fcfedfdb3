#!/usr/bin/env bash
# Runs every part's test target, prints one summary line per part and a
# total, and fails when any part failed. Parts whose package does not exist
# yet are reported as "not built yet", never as passed.
set -uo pipefail
cd "$(dirname "$0")/.."

# demo: the scripted part of `make demo`, the README's first command.
parts=(core ruby python node c interop e2e demo)
declare -A result
failed=0
for part in "${parts[@]}"; do
  echo "=== test-$part ==="
  script=scripts/test-$part.sh
  [ "$part" = demo ] && script=scripts/demo.sh
  if [ "$part" != core ] && [ ! -x "$script" ]; then
    result[$part]="not built yet"
    continue
  fi
  start=$(date +%s)
  make --no-print-directory "test-$part"
  rc=$?
  secs=$(( $(date +%s) - start ))
  if [ $rc -eq 0 ]; then
    result[$part]="passed (${secs}s)"
  else
    result[$part]="FAILED (exit $rc, ${secs}s)"
    failed=1
  fi
done

echo
echo "=== summary ==="
for part in "${parts[@]}"; do printf '%-8s %s\n' "$part" "${result[$part]}"; done
if [ $failed -ne 0 ]; then echo "RESULT: FAILED"; exit 1; fi
echo "RESULT: all built parts passed"
