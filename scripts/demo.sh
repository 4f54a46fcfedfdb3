#!/usr/bin/env bash
# The Sessionkeeper demo (`make demo`): one login shared by a Rails, a Flask
# and an Express app (docs/shared-sessions.md). Starts a private Redis and the
# three apps on 127.0.0.1, prints their URLs, runs the shared login scripted
# (log in on Rails, Flask and Express see the user, a key changed on Flask is
# read by the others, log out on Express, gone everywhere), then keeps
# everything running until Ctrl-C so you can click through the apps yourself.
# Everything it started is stopped on exit.
#
# DEMO_EXIT=1 exits after the scripted part (for CI). Ports: the apps at
# DEMO_PORT_BASE+0..2 (default 17555), Redis at DEMO_REDIS_PORT (default 17530).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

scripts/setup.sh >/dev/null
echo "demo: building the Ruby, Python and Node packages (debug; quick when already built)"
if ! build_log=$(tests/e2e/build.sh 2>&1); then
  echo "$build_log" >&2
  echo "demo: the build failed" >&2
  exit 1
fi

base=${DEMO_PORT_BASE:-17555}
export E2E_RAILS_PORT=$base E2E_FLASK_PORT=$((base + 1)) E2E_EXPRESS_PORT=$((base + 2))
export E2E_VENV=$repo/.tmp/e2e/venv
export SK_PORT_BASE=${DEMO_REDIS_PORT:-17530}
export SK_REDIS_DIR=$repo/.tmp/redis-demo
export DEMO_STATE=$repo/.tmp/demo

demo_body() {
  trap 'tests/e2e/apps.sh stop "$DEMO_STATE"' EXIT
  trap 'echo; echo "demo: stopping the apps and Redis"; exit 0' INT TERM
  if ! timeout 120 tests/e2e/apps.sh start "$DEMO_STATE" >/dev/null; then
    echo "demo: the apps did not start (logs in $DEMO_STATE)" >&2
    return 1
  fi
  # shellcheck disable=SC1091
  . "$DEMO_STATE/env.sh"
  cat <<EOF

Sessionkeeper demo: one login across Rails, Flask and Express
  Redis    $SK_REDIS_URL (private, stopped on exit)
  Rails    http://127.0.0.1:$E2E_RAILS_PORT/     (Rails 6.1 on Puma)
  Flask    http://127.0.0.1:$E2E_FLASK_PORT/     (Flask 3 on gunicorn)
  Express  http://127.0.0.1:$E2E_EXPRESS_PORT/     (Express 5 + express-session)
  All three: cookie "$E2E_COOKIE" signed with one secret (random for this run),
  one Redis, key prefix "$E2E_KEY_PREFIX". Logs: $DEMO_STATE/*.log

EOF
  local rc=0
  timeout 120 "$E2E_VENV/bin/python" tests/e2e/http_driver.py --demo || rc=$?
  [ $rc -eq 0 ] || echo "demo: the scripted login FAILED (see above; app logs in $DEMO_STATE)" >&2
  if [ "${DEMO_EXIT:-0}" = 1 ]; then
    return $rc
  fi
  cat <<EOF

Now try it yourself: open http://127.0.0.1:$E2E_RAILS_PORT/ in a browser, log in, and follow the
links to Flask and Express (cookies are per host, not per port, so all three get the same one).
Press Ctrl-C to stop the apps and Redis.
EOF
  while true; do sleep 1; done
}
export -f demo_body

scripts/with-redis.sh standalone -- bash -c demo_body
