"""The native Store and AsyncStore against real Redis (standalone and Cluster):
conversions, the save contract, errors and their exception classes."""

from __future__ import annotations

import asyncio
import builtins
import datetime as dt
import pickle
import time

import pytest

import sessionkeeper as sk
from conftest import storage_key, wait_unpaused

UTC = dt.timezone.utc

EVERY_TYPE = {
    "none": None,
    "yes": True,
    "no": False,
    "int": -(2**63),
    "big": 2**63 - 1,
    "float": 2.5,
    "str": "héllo ✓",
    "bytes": b"\x00\xff",
    "list": [1, "two", [3.0, None]],
    "dict": {"nested": {"deep": [True]}},
    "when": dt.datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC),
    "empty_list": [],
    "empty_dict": {},
}


def test_every_type_round_trips(url):
    store = sk.Store(url)
    sid, _ = store.create(EVERY_TYPE)
    loaded = store.load(sid)
    assert loaded.data == EVERY_TYPE
    assert loaded.data["when"].tzinfo == UTC
    # Order inside a value is kept; the order of top-level keys is not
    # promised by the engine (it changed with the storage layout).
    assert list(loaded.data["dict"]) == ["nested"] and loaded.data["list"] == EVERY_TYPE["list"]
    assert loaded.created_at_ms > 0 and loaded.expires_at_ms > loaded.created_at_ms
    store.destroy(sid)


def test_conversions_that_change_type(url):
    store = sk.Store(url)
    tz = dt.timezone(dt.timedelta(hours=-5))
    sid, _ = store.create({"t": (1, 2), "d": dt.datetime(1969, 12, 31, 23, 0, 0, 1, tzinfo=tz)})
    data = store.load(sid).data
    assert data["t"] == [1, 2]
    assert data["d"] == dt.datetime(1970, 1, 1, 4, 0, 0, 1, tzinfo=UTC)
    store.destroy(sid)


@pytest.mark.parametrize(
    "value, exc, words",
    [
        ({"x": 2**63}, sk.CodecError, ['session key "x"', "64 bits"]),
        ({"x": [1, {"y": -(2**70)}]}, sk.CodecError, ['session key "x"[1]["y"]']),
        ({"x": {1: "a"}}, TypeError, ['session key "x"', "keys must be str"]),
        ({"x": [object()]}, TypeError, ['session key "x"[0]', "object"]),
        ({"x": {1, 2}}, TypeError, ["set"]),
        ({"x": dt.date(2024, 1, 1)}, TypeError, ["date"]),
        ({"x": dt.datetime(2024, 1, 1)}, sk.CodecError, ["timezone"]),
        ({3: "x"}, TypeError, ["session keys must be str"]),
    ],
)
def test_unsupported_values_name_the_key(value, exc, words):
    store = sk.Store("memory://convert")
    with pytest.raises(exc) as info:
        store.create(value)
    for w in words:
        assert w in str(info.value)


def test_too_deep_is_refused():
    value: list = []
    for _ in range(200):
        value = [value]
    with pytest.raises(sk.CodecError, match="deeper"):
        sk.Store("memory://deep").create({"x": value})
    cyclic: list = []
    cyclic.append(cyclic)
    with pytest.raises(sk.CodecError):
        sk.Store("memory://deep").create({"x": cyclic})


def test_save_writes_only_changed_keys(url, raw):
    store = sk.Store(url)
    sid, baseline = store.create({"a": 1, "b": 2})
    assert store.save(sid, baseline, {"a": 1, "b": 2}) == "unchanged"
    before = store.stats()
    assert store.save(sid, baseline, {"a": 1, "b": 3, "c": 4}) == "saved"
    after = store.stats()
    assert after["keys_written"] - before["keys_written"] == 2
    assert store.load(sid).data == {"a": 1, "b": 3, "c": 4}
    assert store.save(sid, baseline, {"a": 1}) == "saved"
    assert store.load(sid).data == {"a": 1}
    store.destroy(sid)


def test_concurrent_saves_of_different_keys_keep_both(url):
    store = sk.Store(url)
    sid, _ = store.create({"n": 0})
    one, two = store.load(sid), store.load(sid)
    d1, d2 = one.data, two.data
    d1["from_one"] = 1
    d2["from_two"] = 2
    assert store.save(sid, one.baseline, d1) == "saved"
    assert store.save(sid, two.baseline, d2) == "saved"
    assert store.load(sid).data == {"n": 0, "from_one": 1, "from_two": 2}
    store.destroy(sid)


def test_save_of_a_destroyed_session_is_gone_and_not_recreated(url):
    store = sk.Store(url)
    sid, baseline = store.create({"user": 1})
    assert store.destroy(sid) is True
    assert store.save(sid, baseline, {"user": 2}) == "gone"
    assert store.load(sid) is None
    assert store.exists(sid) is False


def test_insert_never_overwrites(url):
    store = sk.Store(url)
    sid = sk.generate_id()
    assert isinstance(store.insert(sid, {"v": 1}), sk.Baseline)
    assert store.insert(sid, {"v": 2}) is None
    assert store.load(sid).data == {"v": 1}
    store.destroy(sid)


def test_renew_moves_the_session(url):
    store = sk.Store(url)
    sid, _ = store.create({"v": 1})
    new = store.renew(sid)
    assert new and new != sid and sk.is_valid_id(new)
    assert store.load(sid) is None
    assert store.load(new).data == {"v": 1}
    assert store.renew(sid) is None
    store.destroy(new)


def test_touch_exists_destroy_and_idle_ttl(url, raw):
    store = sk.Store(url, idle_ttl="1h")
    assert store.idle_ttl == 3600
    sid, _ = store.create({"v": 1})
    assert 3500_000 < raw.pttl(storage_key(sid)) <= 3600_000
    short = store.with_idle_ttl(dt.timedelta(seconds=30))
    assert short.idle_ttl == 30
    assert short.touch(sid) is True
    assert 20_000 < raw.pttl(storage_key(sid)) <= 30_000
    assert store.with_idle_ttl(None).idle_ttl is None
    assert store.exists(sid) is True
    assert store.destroy(sid) is True
    assert store.destroy(sid) is False
    assert store.touch(sid) is False


def test_expiry(url):
    store = sk.Store(url, idle_ttl="300ms")
    sid, _ = store.create({"v": 1})
    assert store.load(sid) is not None
    time.sleep(0.6)
    assert store.load(sid) is None


def test_invalid_ids(url):
    store = sk.Store(url)
    assert store.load("short") is None
    assert store.exists("../etc") is False
    with pytest.raises(sk.InvalidIdError) as info:
        store.insert("x" * 7, {})
    assert isinstance(info.value, ValueError) and info.value.temporary is False
    assert store.stats()["invalid_ids"] >= 3


def test_options_and_config_errors():
    with pytest.raises(sk.ConfigError, match="unknown option"):
        sk.Store("memory://x", nope=1)
    with pytest.raises(sk.ConfigError):
        sk.Store("ftp://x")
    with pytest.raises(TypeError, match="option key_prefix"):
        sk.Store("memory://x", key_prefix=object())
    s = sk.Store("memory://x", idle_ttl=dt.timedelta(minutes=2), command_timeout=0.5, max_size=1000, codec="json")
    assert s.idle_ttl == 120
    assert sk.Store("memory://x", idle_ttl=None).idle_ttl is None
    with pytest.raises(sk.TooLargeError):
        s.create({"x": "y" * 2000})
    assert "memory://x" in repr(s)
    assert set(sk.OPTION_NAMES) >= {"key_prefix", "idle_ttl", "command_timeout"}


def test_exception_tree():
    assert issubclass(sk.ConnectionError, builtins.ConnectionError)
    assert issubclass(sk.TimeoutError, builtins.TimeoutError)
    for cls in (sk.ConfigError, sk.CodecError, sk.TooLargeError, sk.InvalidIdError):
        assert issubclass(cls, ValueError)
    for cls in (sk.ConfigError, sk.ConnectionError, sk.TimeoutError, sk.AuthError, sk.CodecError,
                sk.TooLargeError, sk.InvalidIdError, sk.UnexpectedError):
        assert issubclass(cls, sk.Error)
    e = pickle.loads(pickle.dumps(sk.TimeoutError("slow", temporary=True)))
    assert type(e) is sk.TimeoutError and e.temporary is True and str(e) == "slow" and e.kind == "timeout"


def test_redis_down_is_a_temporary_connection_error(dead_url):
    store = sk.Store(dead_url, connect_timeout="500ms")
    started = time.monotonic()
    with pytest.raises(sk.ConnectionError) as info:
        store.load(sk.generate_id())
    assert info.value.temporary is True
    assert isinstance(info.value, builtins.ConnectionError)
    assert time.monotonic() - started < 3
    assert store.stats()["errors"]["connection"] >= 1


def test_paused_redis_times_out_within_command_timeout(standalone_url, raw_standalone):
    store = sk.Store(standalone_url, command_timeout="200ms")
    sid, _ = store.create({"v": 1})
    raw_standalone.client_pause(1000, all=True)
    try:
        started = time.monotonic()
        with pytest.raises(sk.TimeoutError) as info:
            store.load(sid)
        assert info.value.temporary is True
        assert time.monotonic() - started < 0.9
    finally:
        wait_unpaused(raw_standalone)
    assert store.load(sid).data == {"v": 1}
    store.destroy(sid)


def test_corrupt_value_is_no_session(url, raw):
    store = sk.Store(url)
    sid, _ = store.create({"ok": 1})
    # Not a session under any storage layout of the engine.
    raw.set(storage_key(sid), b"\xc1garbage")
    try:
        assert store.load(sid) is None
    except sk.CodecError:
        pass  # reported once (and removed), never a session
    assert store.load(sid) is None


# -- AsyncStore ----------------------------------------------------------------


def test_async_store_round_trip(url):
    async def main():
        store = sk.AsyncStore(url)
        sid, baseline = await store.create(EVERY_TYPE)
        loaded = await store.load(sid)
        assert loaded.data == EVERY_TYPE
        data = loaded.data
        data["int"] = 5
        assert await store.save(sid, loaded.baseline, data) == "saved"
        assert await store.save(sid, loaded.baseline, data) == "unchanged"
        assert await store.exists(sid) is True
        assert await store.touch(sid) is True
        assert await store.insert(sid, {}) is None
        new = await store.renew(sid)
        assert (await store.load(new)).data["int"] == 5
        assert await store.destroy(new) is True
        data["int"] = 6
        assert await store.save(new, loaded.baseline, data) == "gone"
        assert await store.load(new) is None
        # Many at once on one loop.
        made = await asyncio.gather(*(store.create({"i": i}) for i in range(50)))
        assert len({m[0] for m in made}) == 50
        await asyncio.gather(*(store.destroy(m[0]) for m in made))
        assert store.stats()["creates"] >= 51

    asyncio.run(main())


def test_the_asyncio_twin_shares_the_engine(url):
    store = sk.Store(url, idle_ttl=600)
    twin = store.asyncio()
    assert isinstance(twin, sk.AsyncStore) and twin.idle_ttl == 600
    sid, _ = store.create({"a": 1})

    async def main():
        loaded = await twin.load(sid)
        loaded.data["b"] = 2
        assert await twin.save(sid, loaded.baseline, loaded.data) == "saved"

    asyncio.run(main())
    assert store.load(sid).data == {"a": 1, "b": 2}
    stats = store.stats()
    assert stats == twin.stats() and stats["creates"] == 1 and stats["saves"] == 1 and stats["loads"] == 2


def test_async_errors_and_conversion_errors(dead_url):
    async def main():
        store = sk.AsyncStore(dead_url, connect_timeout="300ms")
        with pytest.raises(sk.ConnectionError) as info:
            await store.load(sk.generate_id())
        assert info.value.temporary
        with pytest.raises(TypeError):
            await store.create({"x": object()})

    asyncio.run(main())


def test_async_needs_a_running_loop():
    with pytest.raises(RuntimeError):
        sk.AsyncStore("memory://x").load("x" * 32)


def test_async_cancel_and_loop_keeps_running(standalone_url, raw_standalone):
    """While a call waits on a paused Redis the loop serves other tasks, and a
    cancelled call leaves the store usable."""

    async def main():
        store = sk.AsyncStore(standalone_url, command_timeout="5s")
        sid, _ = await store.create({"v": 1})
        raw_standalone.client_pause(700, all=True)
        ticks = 0

        async def ticker():
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        t = asyncio.ensure_future(ticker())
        started = time.monotonic()
        loaded = await store.load(sid)
        elapsed = time.monotonic() - started
        t.cancel()
        assert loaded.data == {"v": 1}
        assert elapsed >= 0.3
        assert ticks >= 10, f"the event loop was blocked ({ticks} ticks in {elapsed:.2f}s)"
        raw_standalone.client_pause(500, all=True)
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(store.load(sid), 0.1)
        wait_unpaused(raw_standalone)
        assert (await store.load(sid)).data == {"v": 1}
        await store.destroy(sid)

    asyncio.run(main())
