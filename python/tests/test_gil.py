"""Store releases the GIL while it waits for Redis: another Python thread
keeps running Python code meanwhile, whichever call is waiting. (Verified to
fail with the wait not detached in Store.load, Store.save or Store.destroy:
the ticker then stalls for the whole pause.)"""

from __future__ import annotations

import threading
import time

import pytest

import sessionkeeper as sk
from conftest import wait_unpaused

PAUSE_MS = 1000

# Each call as the waiting thread makes it, and what it returns once Redis
# answers (so the call did reach Redis, not just fail fast).
CALLS = {
    "load": (lambda store, sid, baseline: store.load(sid).data, {"v": 1}),
    "save": (lambda store, sid, baseline: store.save(sid, baseline, {"v": 2}), "saved"),
    "create": (lambda store, sid, baseline: sk.is_valid_id(store.create({"v": 2})[0]), True),
    "insert": (lambda store, sid, baseline: store.insert(sk.generate_id(), {"v": 2}) is not None, True),
    "destroy": (lambda store, sid, baseline: store.destroy(sid), True),
    "renew": (lambda store, sid, baseline: sk.is_valid_id(store.renew(sid)), True),
    "touch": (lambda store, sid, baseline: store.touch(sid), True),
    "exists": (lambda store, sid, baseline: store.exists(sid), True),
}


@pytest.mark.parametrize("call", sorted(CALLS))
def test_other_threads_run_while_a_call_waits_on_redis(standalone_url, raw_standalone, call):
    make_call, expected = CALLS[call]
    store = sk.Store(standalone_url, command_timeout="5s")
    sid, baseline = store.create({"v": 1})  # connected before the pause
    result: dict = {}
    done = threading.Event()

    def waiter():
        started = time.monotonic()
        try:
            result["value"] = make_call(store, sid, baseline)
        except Exception as e:  # reported by the main thread
            result["error"] = e
        result["elapsed"] = time.monotonic() - started
        done.set()

    raw_standalone.client_pause(PAUSE_MS, all=True)
    try:
        thread = threading.Thread(target=waiter, daemon=True)
        # Stamped before the start: a call holding the GIL from its first
        # moment would otherwise stall this thread before its first stamp.
        stamps = [time.monotonic()]
        thread.start()
        # Pure Python work: it needs the GIL for every bytecode.
        while not done.is_set() and time.monotonic() - stamps[0] < 10:
            x = 0
            for i in range(2000):
                x += i
            stamps.append(time.monotonic())
        # The first moment this thread runs again after the wait ended: with
        # the GIL held during the wait, the stall shows as this last gap.
        stamps.append(time.monotonic())
        thread.join(10)
    finally:
        wait_unpaused(raw_standalone)

    assert "error" not in result, result.get("error")
    assert result["value"] == expected
    assert result["elapsed"] >= PAUSE_MS / 1000 * 0.5, "the pause did not hold the call up; the test proves nothing"
    gaps = [b - a for a, b in zip(stamps, stamps[1:])]
    assert len(stamps) > 100, f"only {len(stamps)} ticks in {result['elapsed']:.2f}s"
    assert max(gaps) < 0.4, f"the main thread stalled for {max(gaps):.2f}s: the GIL was held while waiting"
    store.destroy(sid)
