"""Memory: what each session store costs an app server and the Redis.

A benchmark, not a test (see bench/python/README.md, "Memory"). Each
scenario of bench.py (the floors left out: they are bounds for speed, not
stores) runs in a fresh process of its own, so that nothing another store
imported or allocated is counted for it:

  1. the app is built and one session logged in, read and written: the
     framework, the store's library and its connections are loaded and
     warmed up (RSS then: "after warm-up");
  2. the peak RSS is reset (/proc/self/clear_refs), the Redis database
     flushed, and BENCH_MEM_SESSIONS (2000) users arrive one after another,
     each logging in, writing and reading (three requests, each a fresh
     session: what an app server sees as users come and go);
  3. RSS growth and the peak RSS over step 2, and in Redis the bytes the
     sessions take (the sum of MEMORY USAGE over every key, per session)
     and the keys per session; the session cookie's length.

Each scenario runs BENCH_MEM_ROUNDS (3) times, the scenarios in turn; the
tables give the median of each figure. Ratios are ours / peer, so below 1
means ours uses less.
Run through scripts/bench-python.sh (after bench.py) or directly with
SK_REDIS_URL set: ``python bench/python/memory.py`` (all) or with one
scenario name as argument (that scenario's JSON on stdout).
"""

from __future__ import annotations

import gc
import json
import os
import statistics
import subprocess
import sys

import redis

import bench

SESSIONS = int(os.environ.get("BENCH_MEM_SESSIONS", "2000"))
ROUNDS = int(os.environ.get("BENCH_MEM_ROUNDS", "3"))
SCENARIOS = [s for s in bench.SCENARIOS if "floor" not in s]
# ours, its peers, the framework's no-network baseline
GROUPS = [
    ("flask-sk", ["flask-session"], "flask-cookie"),
    ("django-sk", ["django-redis", "django-cache"], "django-signed"),
]


def proc_kib(path: str, field: str) -> int:
    with open(path) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} in {path}")


def status_kib(field: str) -> int:
    return proc_kib("/proc/self/status", field)


def private_dirty_kib() -> int:
    """The pages only this process wrote (heap, stacks, relocated data): what
    each further worker process costs, where RSS also counts the library
    code that every worker shares through the page cache."""
    return proc_kib("/proc/self/smaps_rollup", "Private_Dirty")


def reset_peak() -> None:
    # "5" resets VmHWM to the current RSS (Linux 4.0+).
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def measure(kind: str) -> dict:
    r = redis.Redis(host=bench.HOST, port=bench.PORT)
    driver, override = bench.make(kind)
    with override or bench._Null():
        for path in ("/login", "/read", "/write"):
            driver.get(path)
        cookie = driver.cookie.split("=", 1)[1]
        r.flushdb()
        gc.collect()
        rss_warm = status_kib("VmRSS")
        reset_peak()
        for _ in range(SESSIONS):
            user = bench.Driver(driver.app, driver.cookie_name)
            for path in ("/login", "/write", "/read"):
                user.get(path)
        gc.collect()
        rss_end, peak, dirty = status_kib("VmRSS"), status_kib("VmHWM"), private_dirty_kib()
    keys = list(r.scan_iter(count=1000))
    used = sum(r.memory_usage(k, samples=0) or 0 for k in keys)
    return {
        "kind": kind,
        "sessions": SESSIONS,
        "rss_warm_kib": rss_warm,
        "rss_growth_kib": rss_end - rss_warm,
        "peak_kib": peak,
        "private_dirty_kib": dirty,
        "redis_bytes_per_session": used / SESSIONS,
        "redis_keys_per_session": len(keys) / SESSIONS,
        "cookie_bytes": len(cookie),
    }


def mib(kib: float) -> str:
    return f"{kib / 1024:.1f}"


def ratio_row(results: dict[str, dict], ours: str, peer: str, baseline: dict | None) -> str:
    a, b = results[ours], results[peer]
    cells = []
    for field in ("peak_kib", "private_dirty_kib"):
        cells.append(f"{a[field] / b[field]:.2f}×")
        base = baseline[field] if baseline else None
        own = "–" if base is None or b[field] <= base else f"{(a[field] - base) / (b[field] - base):.2f}×"
        cells.append(own)
    cells.append(f"{a['redis_bytes_per_session'] / b['redis_bytes_per_session']:.2f}×")
    return f"| {ours} / {peer} | {' | '.join(cells)} |"


def report(results: dict[str, dict]) -> str:
    lines = [
        f"### Memory ({SESSIONS} sessions, each logged in, written and read; each store in a fresh process; "
        f"medians of {ROUNDS} processes per scenario)\n",
        "| scenario | RSS after warm-up MiB | RSS growth MiB | peak RSS MiB | private dirty MiB "
        "| Redis bytes / session | Redis keys / session | cookie bytes |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for kind, m in results.items():
        lines.append(
            f"| {kind} | {mib(m['rss_warm_kib'])} | {mib(m['rss_growth_kib'])} | {mib(m['peak_kib'])} "
            f"| {mib(m['private_dirty_kib'])} "
            f"| {m['redis_bytes_per_session']:.0f} | {m['redis_keys_per_session']:.2f} | {m['cookie_bytes']} |"
        )
    lines += [
        "",
        "Ours / peer (below 1: ours uses less). \"Own\" takes the framework's cookie session (no store, no Redis "
        "client loaded) away from both: what the store itself adds to the process.\n",
        "| ours vs peer | peak RSS | own peak RSS | private dirty | own private dirty | Redis bytes / session |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for ours, peers, baseline in GROUPS:
        for peer in peers:
            if ours in results and peer in results:
                lines.append(ratio_row(results, ours, peer, results.get(baseline)))
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    if argv:
        print(json.dumps(measure(argv[0])))
        return 0
    only = [s for s in os.environ.get("BENCH_ONLY", "").split(",") if s]
    kinds = [k for k in SCENARIOS if not only or k in only]
    runs: dict[str, list[dict]] = {k: [] for k in kinds}
    for _ in range(ROUNDS):
        for kind in kinds:
            out = subprocess.run([sys.executable, __file__, kind], check=True, capture_output=True, text=True, timeout=1800)
            m = json.loads(out.stdout.strip().splitlines()[-1])
            runs[kind].append(m)
            bench.log(
                f"memory {kind:14} warm {mib(m['rss_warm_kib'])} MiB  growth {mib(m['rss_growth_kib'])} MiB  "
                f"peak {mib(m['peak_kib'])} MiB  private dirty {mib(m['private_dirty_kib'])} MiB  "
                f"redis {m['redis_bytes_per_session']:.0f} B/session"
            )
    # The median of each figure (the peak depends on when the GC ran).
    results = {
        kind: {f: statistics.median(m[f] for m in ms) if isinstance(v, (int, float)) else v for f, v in ms[0].items()}
        for kind, ms in runs.items()
    }
    print(report(results))
    path = os.environ.get("BENCH_JSON")
    if path:
        with open(path.removesuffix(".json") + "-memory.json", "w") as f:
            json.dump(results, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
