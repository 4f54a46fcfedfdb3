"""Interop matrix: every writer language creates the golden session, every
other language reads it back; the reader's view (tagged JSON, see peer.*) is
compared field by field with what docs/types.md says that language sees.
Then the mixed concurrent writers check. Prints "interop: N passed, M failed".

Usage: python3 tests/interop/matrix.py  (inside scripts/with-redis.sh: needs
SK_REDIS_URL and SK_CLUSTER_URL). Peers are run as subprocesses; the command
for each language comes from the environment (set by scripts/test-interop.sh).
"""
import json
import os
import struct
import subprocess
import sys
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
PEERS = {
    "ruby": [os.environ.get("SK_INTEROP_RUBY", "ruby"), "-W0", "-I", os.path.join(ROOT, "ruby/lib"),
             os.path.join(HERE, "peer.rb")],
    "python": [os.environ.get("SK_INTEROP_PYTHON", os.path.join(ROOT, "python/.venv/bin/python")),
               os.path.join(HERE, "peer.py")],
    "node": [os.environ.get("SK_INTEROP_NODE", "node"), os.path.join(HERE, "peer.js")],
}
MAX_SAFE = 2**53 - 1
TS_SECS, TS_NANOS = 1795437296, 123456789
# Digits of sub-second precision each language writes (and reads).
PRECISION = {"ruby": 9, "python": 6, "node": 3}

# The golden session in the engine's value model, as every writer means it.
GOLDEN = {
    "nil": ("nil",),
    "true": ("bool", True),
    "false": ("bool", False),
    "int_small": ("int", 42),
    "int_negative": ("int", -7),
    "int_2_53_plus_1": ("int", 2**53 + 1),
    "int_min": ("int", -(2**63)),
    "int_max": ("int", 2**63 - 1),
    "float": ("float", 3.25),
    "float_tenth": ("float", 0.1),
    "float_whole": ("float", 2.0),
    "float_negative_zero": ("float", -0.0),
    "float_huge": ("float", 1.5e300),
    "str_empty": ("str", ""),
    "str_utf8": ("str", "h\u00e9llo w\u00f6rld \u2713 \u65e5\u672c \U0001F389"),
    "bytes": ("bytes", b"\x00\x01abc\xfe\xff"),
    "bytes_empty": ("bytes", b""),
    "array": ("array", [("int", 1), ("str", "two"), ("nil",), ("array", [("float", 3.5), ("bool", False)])]),
    "array_empty": ("array", []),
    "map": ("map", {"a": ("int", 1),
                    "nested": ("map", {"b": ("array", [("bool", True), ("map", {"c": ("str", "d")})])}),
                    "empty": ("map", {})}),
    # Ruby writes the Symbol :sym; the others the string "sym".
    "symbol": ("str", "sym"),
    "timestamp": ("ts", TS_SECS, TS_NANOS),
    "timestamp_pre_epoch": ("ts", -1, 500_000_000),
}


def truncate_nanos(nanos, digits):
    unit = 10 ** (9 - digits)
    return nanos // unit * unit


def as_written(v, writer):
    """The value the engine stores when `writer` writes golden value v."""
    kind = v[0]
    if kind == "ts":
        return ("ts", v[1], truncate_nanos(v[2], PRECISION[writer]))
    if kind == "float" and writer == "node":
        f = v[1]
        # JavaScript has one number type: an integral number is stored as Int (-0 stays a float).
        if f.is_integer() and abs(f) <= MAX_SAFE and not (f == 0 and str(f).startswith("-")):
            return ("int", int(f))
    if kind == "array":
        return ("array", [as_written(x, writer) for x in v[1]])
    if kind == "map":
        return ("map", {k: as_written(x, writer) for k, x in v[1].items()})
    return v


def fhex(f):
    return struct.pack(">d", f).hex()


def seen_by(v, reader):
    """The tagged view (peer.* tag()) `reader` should print for engine value v."""
    kind = v[0]
    if kind == "nil":
        return ["nil"]
    if kind == "bool":
        return ["bool", v[1]]
    if kind == "int":
        if reader == "node":
            return ["number", fhex(float(v[1]))] if abs(v[1]) <= MAX_SAFE else ["bigint", str(v[1])]
        return ["int", str(v[1])]
    if kind == "float":
        return ["number" if reader == "node" else "float", fhex(v[1])]
    if kind == "str":
        return ["str", v[1]]
    if kind == "bytes":
        return ["bytes", v[1].hex()]
    if kind == "array":
        return ["array", [seen_by(x, reader) for x in v[1]]]
    if kind == "map":
        return ["map", {k: seen_by(x, reader) for k, x in v[1].items()}]
    if kind == "ts":
        secs, nanos = v[1], truncate_nanos(v[2], PRECISION[reader])
        if reader == "node":
            return ["date", secs * 1000 + nanos // 1_000_000]
        return ["time", secs, nanos]
    raise ValueError(v)


def run(lang, *args, timeout=60):
    p = subprocess.run(PEERS[lang] + list(args), capture_output=True, text=True, timeout=timeout)
    if p.returncode != 0:
        raise RuntimeError(f"{lang} {args[0]} exited {p.returncode}: {p.stderr.strip()[-2000:]}")
    return p.stdout.strip()


results = []  # (ok, name, detail)


def check(name, fn):
    try:
        problems = fn()
    except Exception as e:  # a peer crashed or timed out
        problems = [str(e)]
    results.append((not problems, name, problems))
    print(("ok    " if not problems else "FAIL  ") + name, flush=True)
    for p in problems:
        print("      " + p, flush=True)


def golden_matrix(topology, url):
    ids = {}
    for writer in PEERS:
        def write(writer=writer):
            ids[writer] = run(writer, "write", url)
            return [] if len(ids[writer]) >= 32 else [f"bad id {ids[writer]!r}"]
        check(f"{topology}: {writer} writes the golden session", write)
    for writer, sid in ids.items():
        for reader in PEERS:
            def read(writer=writer, reader=reader, sid=sid):
                got = json.loads(run(reader, "read", url, sid))
                if got[0] != "map":
                    return [f"top level is {got[0]}"]
                got = got[1]
                problems = []
                for key, value in GOLDEN.items():
                    want = seen_by(as_written(value, writer), reader)
                    if key not in got:
                        problems.append(f"{key}: missing")
                    elif got[key] != want:
                        problems.append(f"{key}: {reader} saw {json.dumps(got[key], ensure_ascii=False)}, "
                                        f"expected {json.dumps(want, ensure_ascii=False)}")
                for key in got.keys() - GOLDEN.keys():
                    problems.append(f"{key}: unexpected key")
                return problems
            check(f"{topology}: {writer} -> {reader}", read)


def concurrent_writers(topology, url, rounds=50):
    def fn():
        sid = run("python", "write", url)
        threads, errors = [], []
        for lang in PEERS:
            def hammer(lang=lang):
                try:
                    run(lang, "hammer", url, sid, str(rounds), timeout=120)
                except Exception as e:
                    errors.append(str(e))
            t = threading.Thread(target=hammer)
            threads.append(t)
            t.start()
        for t in threads:
            t.join()
        if errors:
            return errors
        got = json.loads(run("python", "read", url, sid))[1]
        problems = []
        prefixes = {"ruby": "rb", "python": "py", "node": "js"}
        for lang in PEERS:
            lost = [i for i in range(rounds) if got.get(f"{prefixes[lang]}_{i}") != ["int", str(i)]]
            if lost:
                problems.append(f"{lang}'s keys lost: {lost}")
        lost_golden = [k for k in GOLDEN if k not in got]
        if lost_golden:
            problems.append(f"golden keys lost: {lost_golden}")
        return problems
    check(f"{topology}: ruby, python and node save different keys of one session concurrently "
          f"({rounds} rounds each)", fn)


def main():
    topologies = [("standalone", os.environ["SK_REDIS_URL"]), ("cluster", os.environ["SK_CLUSTER_URL"])]
    for topology, url in topologies:
        golden_matrix(topology, url)
        concurrent_writers(topology, url)
    failed = sum(1 for ok, _, _ in results if not ok)
    print(f"interop: {len(results) - failed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


main()
