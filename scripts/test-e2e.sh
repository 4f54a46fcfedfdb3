#!/usr/bin/env bash
# One session across languages, end to end (issue 7, docs/shared-sessions.md):
# a real Rails 6.1 app (Debian's railties, served by Debian's Puma), a real
# Flask app (gunicorn) and a real Express app, on three ports of 127.0.0.1,
# all in shared mode with one secret and one cookie name, against standalone
# Redis. Two drivers: plain HTTP with a cookie jar (tests/e2e/http_driver.py,
# every order of login / change / logout across the three apps), then headless
# Chromium clicking through the apps (tests/e2e/browser_driver.js, screenshots
# in tests/e2e/screenshots/).
#
# Builds what it needs once, the way the per-language scripts do (debug): the
# Ruby extension, the Python package (into its own venv, .tmp/e2e/venv), the
# Node addon. Prints "test-e2e: N passed, M failed"; exits non-zero on failure.
#
# Ports: Redis at SK_PORT_BASE (default 17500), the apps at E2E_PORT_BASE+0..2
# (default 17550).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
started=$SECONDS

scripts/setup.sh

export SK_PORT_BASE=${SK_PORT_BASE:-17500}
export SK_REDIS_DIR=${SK_REDIS_DIR:-$repo/.tmp/redis-e2e}
work=$repo/.tmp/e2e
mkdir -p "$work"
app_base=${E2E_PORT_BASE:-17550}
export E2E_RAILS_PORT=$app_base E2E_FLASK_PORT=$((app_base + 1)) E2E_EXPRESS_PORT=$((app_base + 2))

# --- builds (each a no-op when fresh) ------------------------------------------------
tests/e2e/build.sh
export E2E_VENV=$work/venv

# --- inside scripts/with-redis.sh ----------------------------------------------------
run_e2e() {
  local rc=0 results=()
  state=$work/apps
  trap 'tests/e2e/apps.sh stop "$state"' EXIT
  echo "--- e2e: starting the Rails, Flask and Express apps"
  if ! timeout 120 tests/e2e/apps.sh start "$state"; then
    echo "test-e2e: 0 passed, 1 failed (the apps did not start)"
    return 1
  fi
  # shellcheck disable=SC1091
  . "$state/env.sh"
  echo "--- e2e: HTTP driver (cookie jar), every order of login / change / logout"
  if timeout 180 "$E2E_VENV/bin/python" tests/e2e/http_driver.py; then
    results+=("ok    HTTP driver")
  else
    results+=("FAIL  HTTP driver")
    rc=1
  fi
  echo "--- e2e: headless Chromium clicking through the three apps"
  if timeout 180 node tests/e2e/browser_driver.js; then
    results+=("ok    headless Chromium")
  else
    results+=("FAIL  headless Chromium")
    rc=1
  fi
  if [ $rc -ne 0 ]; then
    for app in rails flask express; do
      echo "--- e2e: last lines of the $app log"
      tail -n 30 "$state/$app.log" || true
    done
  fi
  printf '%s\n' "${results[@]}" >"$work/results.txt"
  return $rc
}
export -f run_e2e
export work

rm -f "$work/results.txt"
status=0
timeout 600 scripts/with-redis.sh standalone -- bash -c run_e2e || status=$?

ok=0 bad=0
if [ -f "$work/results.txt" ]; then
  ok=$(grep -c '^ok' "$work/results.txt" || true)
  bad=$(grep -c '^FAIL' "$work/results.txt" || true)
  echo
  cat "$work/results.txt"
fi
[ "$status" -eq 0 ] || [ "$bad" -gt 0 ] || bad=1
echo "test-e2e: $ok passed, $bad failed in $((SECONDS - started))s"
[ "$status" -eq 0 ] && [ "$bad" -eq 0 ]
