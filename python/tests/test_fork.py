"""A store used before fork() works in the child (it reconnects there) and
keeps working in the parent. Each child is bounded by a timeout: the naive
design hangs in the child."""

from __future__ import annotations

import asyncio
import os
import signal
import time

import pytest

import sessionkeeper as sk


def run_in_child(fn, timeout: float = 10.0) -> int:
    pid = os.fork()
    if pid == 0:  # child
        code = 1
        try:
            code = fn()
        except BaseException as e:  # noqa: BLE001 - report anything as a failure
            os.write(2, f"child failed: {e!r}\n".encode())
            code = 2
        finally:
            os._exit(code)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.02)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    pytest.fail(f"the forked child hung for {timeout}s")


def test_fork_after_use(url):
    store = sk.Store(url)
    sid, _ = store.create({"who": "parent"})
    assert store.load(sid).data == {"who": "parent"}

    def child():
        loaded = store.load(sid)
        assert loaded.data == {"who": "parent"}
        data = loaded.data
        data["child"] = os.getpid()
        assert store.save(sid, loaded.baseline, data) == "saved"
        new_sid, _ = store.create({"made_in": "child"})
        assert store.destroy(new_sid)
        return 0

    assert run_in_child(child) == 0
    data = store.load(sid).data
    assert data["who"] == "parent" and isinstance(data["child"], int)
    store.destroy(sid)


def test_fork_then_asyncio_in_the_child(url):
    store = sk.Store(url)
    sid, _ = store.create({"v": 1})
    astore = sk.AsyncStore(url)

    async def use():
        loaded = await astore.load(sid)
        return 0 if loaded.data == {"v": 1} else 3

    asyncio.run(use())  # the parent used the async store too

    assert run_in_child(lambda: asyncio.run(use())) == 0
    assert asyncio.run(use()) == 0
    store.destroy(sid)
