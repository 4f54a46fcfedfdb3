"""Memory growth: many loads and saves (sync and asyncio) and many errors must
not grow the process. RSS is read from /proc/self/status after a warm-up
(runtime, connections and allocator pools settle first); the bound is
generous, but the session is large enough that leaking it, its baseline or
its Python conversion once per cycle would blow it several times over.
No timing assertions."""

from __future__ import annotations

import asyncio
import gc

import pytest

import sessionkeeper as sk

CYCLES = 20_000
ERRORS = 3_000
# ~4 KiB per session: a per-cycle leak of the data (or of its encoded
# baseline) adds >= 80 MiB over CYCLES.
PAYLOAD = {"user_id": 42, "blob": "x" * 4096, "cart": list(range(32)), "prefs": {"lang": "en", "tz": "UTC"}}
BOUND_KIB = 24 * 1024

pytestmark = pytest.mark.skipif(not hasattr(gc, "collect"), reason="needs a GC")


def rss_kib() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc/self/status")


def measured(run, warmup: int, cycles: int) -> int:
    """RSS growth (KiB) over ``run(cycles)``, after ``run(warmup)``."""
    run(warmup)
    gc.collect()
    before = rss_kib()
    run(cycles)
    gc.collect()
    return rss_kib() - before


def test_sync_load_save_cycles_do_not_grow(standalone_url):
    store = sk.Store(standalone_url)
    sid, _ = store.create(PAYLOAD)

    def run(n):
        for i in range(n):
            loaded = store.load(sid)
            data = loaded.data
            data["i"] = i
            assert store.save(sid, loaded.baseline, data) == "saved"

    growth = measured(run, 2_000, CYCLES)
    store.destroy(sid)
    print(f"sync: RSS grew by {growth} KiB over {CYCLES} cycles")
    assert growth < BOUND_KIB, f"RSS grew by {growth} KiB over {CYCLES} load/save cycles"


def test_async_load_save_cycles_do_not_grow(standalone_url):
    store = sk.AsyncStore(standalone_url)
    tasks = 8  # concurrent sessions; CYCLES cycles in all

    async def cycles(sid, n):
        for i in range(n):
            loaded = await store.load(sid)
            data = loaded.data
            data["i"] = i
            assert await store.save(sid, loaded.baseline, data) == "saved"

    async def all_cycles(sids, total):
        await asyncio.gather(*(cycles(sid, total // len(sids)) for sid in sids))

    async def main():
        sids = [(await store.create(PAYLOAD))[0] for _ in range(tasks)]
        await all_cycles(sids, 2_000)
        gc.collect()
        before = rss_kib()
        await all_cycles(sids, CYCLES)
        gc.collect()
        growth = rss_kib() - before
        for sid in sids:
            await store.destroy(sid)
        return growth

    growth = asyncio.run(main())
    print(f"async: RSS grew by {growth} KiB over {CYCLES} cycles")
    assert growth < BOUND_KIB, f"RSS grew by {growth} KiB over {CYCLES} async load/save cycles"


def test_errors_do_not_grow(dead_url):
    store = sk.Store(dead_url, connect_timeout="200ms", command_timeout="200ms")
    astore = sk.AsyncStore(dead_url, connect_timeout="200ms", command_timeout="200ms")
    sid = sk.generate_id()
    _, baseline = sk.Store("memory://errors").create({})

    def run(n):
        for _ in range(n // 2):
            with pytest.raises(sk.ConnectionError):
                store.load(sid)
            with pytest.raises(sk.ConnectionError):
                store.save(sid, baseline, PAYLOAD)

        async def failing():
            for _ in range(n // 2):
                with pytest.raises(sk.ConnectionError):
                    await astore.load(sid)

        asyncio.run(failing())

    growth = measured(run, 300, ERRORS)
    print(f"errors: RSS grew by {growth} KiB over {ERRORS} failed calls")
    assert growth < BOUND_KIB, f"RSS grew by {growth} KiB over {ERRORS} failed calls"
