#!/usr/bin/env bash
# Starts and stops the three shared-login apps (Rails under Puma, Flask under
# gunicorn, Express under node) on 127.0.0.1, for scripts/test-e2e.sh and
# scripts/demo.sh. The builds must exist already (scripts/test-e2e.sh makes
# them: the Ruby extension in ruby/lib, the Python package in the venv, the
# Node addon in node/).
#
# Usage: tests/e2e/apps.sh start|stop STATE_DIR
# Environment (start): SK_REDIS_URL, E2E_VENV (a venv with sessionkeeper, flask
# and gunicorn), E2E_RAILS_PORT, E2E_FLASK_PORT, E2E_EXPRESS_PORT, and
# optionally E2E_SECRET, E2E_COOKIE, E2E_KEY_PREFIX (defaults below).
# STATE_DIR gets one <app>.pid and <app>.log per app, and env.sh with the
# settings the apps share (sourced by the drivers).
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
cmd=${1:-}
state=${2:-}
[ -n "$cmd" ] && [ -n "$state" ] || { echo "usage: $0 start|stop STATE_DIR" >&2; exit 2; }
mkdir -p "$state"
state=$(cd "$state" && pwd) # the apps are started from their own directories

stop() {
  local app pid
  for app in rails flask express; do
    [ -f "$state/$app.pid" ] || continue
    pid=$(cat "$state/$app.pid")
    # Each app runs in its own process group (setsid below): stop the group
    # (Puma's and gunicorn's workers too), by the id we recorded.
    kill -TERM -- "-$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$pid" 2>/dev/null || true
    rm -f "$state/$app.pid"
  done
}

if [ "$cmd" = stop ]; then
  stop
  exit 0
fi
[ "$cmd" = start ] || { echo "usage: $0 start|stop STATE_DIR" >&2; exit 2; }

: "${SK_REDIS_URL:?SK_REDIS_URL is not set}"
: "${E2E_VENV:?E2E_VENV is not set}"
: "${E2E_RAILS_PORT:?}" "${E2E_FLASK_PORT:?}" "${E2E_EXPRESS_PORT:?}"
# One cookie name, one secret (at least 32 bytes), one Redis URL and key prefix:
# what shared mode asks of every app (docs/shared-sessions.md).
export E2E_COOKIE=${E2E_COOKIE:-shared_session}
export E2E_SECRET=${E2E_SECRET:-$(head -c 32 /dev/urandom | base64 | tr -d '\n')}
export E2E_KEY_PREFIX=${E2E_KEY_PREFIX:-e2e:session:}
export SK_REDIS_URL E2E_RAILS_PORT E2E_FLASK_PORT E2E_EXPRESS_PORT

mkdir -p "$state"
stop
{
  printf 'export SK_REDIS_URL=%q E2E_COOKIE=%q E2E_SECRET=%q E2E_KEY_PREFIX=%q\n' \
    "$SK_REDIS_URL" "$E2E_COOKIE" "$E2E_SECRET" "$E2E_KEY_PREFIX"
  printf 'export E2E_RAILS_PORT=%q E2E_FLASK_PORT=%q E2E_EXPRESS_PORT=%q\n' \
    "$E2E_RAILS_PORT" "$E2E_FLASK_PORT" "$E2E_EXPRESS_PORT"
} >"$state/env.sh"

launch() { # app command...: in its own session/process group, output to STATE_DIR/app.log
  local app=$1
  shift
  setsid "$@" >"$state/$app.log" 2>&1 </dev/null &
  echo $! >"$state/$app.pid"
}

(cd "$repo/tests/e2e/rails" && RUBYLIB="$repo/ruby/lib" RAILS_ENV=production \
  launch rails puma --bind "tcp://127.0.0.1:$E2E_RAILS_PORT" --threads 2:4 --environment production config.ru)
(cd "$repo/tests/e2e/flask" && launch flask "$E2E_VENV/bin/gunicorn" --bind "127.0.0.1:$E2E_FLASK_PORT" \
  --workers 1 --threads 4 --access-logfile - app:app)
(cd "$repo/tests/e2e/express" && launch express node app.js)

# Wait until every app answers (Rails takes a few seconds to boot).
for app in rails flask express; do
  var="E2E_${app^^}_PORT"
  port=${!var}
  ok=
  for _ in $(seq 150); do
    if curl -fsS -o /dev/null "http://127.0.0.1:$port/state" 2>/dev/null; then ok=1; break; fi
    kill -0 "$(cat "$state/$app.pid")" 2>/dev/null || break
    sleep 0.2
  done
  if [ -z "$ok" ]; then
    echo "apps.sh: $app did not start on port $port; its log ($state/$app.log):" >&2
    tail -n 40 "$state/$app.log" >&2 || true
    stop
    exit 1
  fi
done
echo "apps.sh: Rails http://127.0.0.1:$E2E_RAILS_PORT/  Flask http://127.0.0.1:$E2E_FLASK_PORT/  Express http://127.0.0.1:$E2E_EXPRESS_PORT/"
