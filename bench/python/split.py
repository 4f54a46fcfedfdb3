"""Where one request's wall time goes: the store's Redis calls against the rest.

Runs one scenario of bench.py (in process, no interleaving) and reports, per
request, the wall time inside the session store's calls that reach Redis
(ours: ``Store.load`` and ``Store.save``; the floor-rtt scenarios: their bare
``PING``), and the whole request. With ``--no-network`` ours runs against a
store that answers from memory (the first load's result, every save "saved"
on /write and "unchanged" on /read): what the adapter and the framework cost
without Redis, to set against the ``*-floor`` scenarios.

    SK_REDIS_URL=redis://127.0.0.1:6379 python bench/python/split.py flask-sk /write [N] [--no-network]

Best of five runs of N requests (default 3000). A diagnostic for README
analyses, not part of the benchmark.
"""

from __future__ import annotations

import sys
import time

import bench
import floor

clock = time.perf_counter
spent = {"load": 0.0, "save": 0.0, "ping": 0.0}


class TimedStore:
    """Our store with its load and save timed."""

    def __init__(self, store, no_network: bool, path: str) -> None:
        self._store = store
        self._no_network = no_network
        self._path = path
        self._first = None

    def load(self, sid):
        t = clock()
        try:
            if self._no_network:
                if self._first is None:
                    self._first = self._store.load(sid)
                return self._first
            return self._store.load(sid)
        finally:
            spent["load"] += clock() - t

    def save(self, *args):
        t = clock()
        try:
            if self._no_network:
                return "saved" if self._path == "/write" else "unchanged"
            return self._store.save(*args)
        finally:
            spent["save"] += clock() - t

    def __getattr__(self, name):
        return getattr(self._store, name)


def timed_ping() -> None:
    t = clock()
    try:
        untimed_ping()
    finally:
        spent["ping"] += clock() - t


untimed_ping = floor.round_trip


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    no_network = "--no-network" in sys.argv
    kind, path = args[0], args[1]
    n = int(args[2]) if len(args) > 2 else 3000
    floor.round_trip = timed_ping
    if kind.startswith("django"):
        bench.django_setup()
    driver, _ = bench.make(kind)
    if kind == "flask-sk":
        iface = driver.app.session_interface
        iface._store = TimedStore(iface.get_store(driver.app), no_network, path)
    elif kind == "django-sk":
        from sessionkeeper import django as skd

        untimed_sync = skd.SessionStore._sync
        skd.SessionStore._sync = lambda self, age=None: TimedStore(untimed_sync(self, age), no_network, path)
    driver.get("/login")
    for _ in range(300):
        driver.get(path)
    best = None
    for _ in range(5):
        for k in spent:
            spent[k] = 0.0
        t = clock()
        for _ in range(n):
            driver.get(path)
        total = clock() - t
        if best is None or total < best[0]:
            best = (total, dict(spent))
    total, parts = best
    shown = " ".join(f"{k} {v / n * 1e6:.1f}" for k, v in parts.items() if v)
    print(f"{kind} {path}{' (no network)' if no_network else ''}: {total / n * 1e6:.1f} µs per request; {shown}")


if __name__ == "__main__":
    main()
