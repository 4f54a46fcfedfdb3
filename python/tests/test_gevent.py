"""Under gevent, a sync Store call waiting on Redis leaves the worker's
other greenlets running (they would all stop for the whole wait otherwise:
a native call blocks gevent's hub). Both orders: gevent patches before the
package is imported, and after (gunicorn's gevent worker with --preload)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytest.importorskip("gevent")

PAUSE_MS = 600

SCRIPT = """
import json, sys, time
order, url, pause_ms = sys.argv[1], sys.argv[2], int(sys.argv[3])
if order == "patch-first":
    from gevent import monkey; monkey.patch_all()
import sessionkeeper
if order == "import-first":
    from gevent import monkey; monkey.patch_all()
import gevent, redis

store = sessionkeeper.Store(url, command_timeout="5s", key_prefix="sktest:gevent:")
sid, _ = store.create({"who": "ann"})
admin = redis.Redis.from_url(url)
ticks, out = [], {}

def ticker():
    last = time.monotonic()
    while "data" not in out:
        gevent.sleep(0.01)
        now = time.monotonic()
        ticks.append(now - last)
        last = now

def loader():
    gevent.sleep(0.05)
    admin.client_pause(pause_ms, all=True)
    started = time.monotonic()
    out["data"] = store.load(sid).data
    out["waited"] = time.monotonic() - started

gevent.joinall([gevent.spawn(ticker), gevent.spawn(loader)])
store.destroy(sid)
print(json.dumps({"data": out["data"], "waited": out["waited"], "longest_tick": max(ticks)}))
"""


@pytest.mark.parametrize("order", ["patch-first", "import-first"])
def test_other_greenlets_run_while_a_call_waits_on_redis(standalone_url, order, tmp_path):
    script = tmp_path / "gevent_app.py"
    script.write_text(SCRIPT)
    run = subprocess.run(
        [sys.executable, str(script), order, standalone_url, str(PAUSE_MS)],
        capture_output=True, text=True, timeout=60,
    )
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["data"] == {"who": "ann"}
    assert result["waited"] >= PAUSE_MS / 1000 * 0.5, "the pause did not hold the call up; the test proves nothing"
    # 10 ms ticks; blocked, the longest would be the whole pause.
    assert result["longest_tick"] < PAUSE_MS / 1000 / 3, result
