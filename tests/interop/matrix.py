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
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
PEERS = {
    "ruby": [os.environ.get("SK_INTEROP_RUBY", "ruby"), "-W0", "-I", os.path.join(ROOT, "ruby/lib"),
             os.path.join(HERE, "peer.rb")],
    "python": [os.environ.get("SK_INTEROP_PYTHON", os.path.join(ROOT, "python/.venv/bin/python")),
               os.path.join(HERE, "peer.py")],
    "node": [os.environ.get("SK_INTEROP_NODE", "node"), os.path.join(HERE, "peer.js")],
    "c": [os.environ.get("SK_INTEROP_C", os.path.join(ROOT, ".tmp/interop-scratch/peer_c"))],
}
HAMMERS = ["ruby", "python", "node"]  # the C peer has no hammer mode
MAX_SAFE = 2**53 - 1
TS_SECS, TS_NANOS = 1795437296, 123456789
# Digits of sub-second precision each language writes (and reads).
PRECISION = {"ruby": 9, "python": 6, "node": 3, "c": 9}

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
    # An integral JavaScript number beyond 2^53 - 1 stays a float.
    "float_2_53": ("float", 2.0**53),
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


class Unpacker:
    """Just enough MessagePack to tag what the C library hands out (see peer.c)."""

    def __init__(self, data):
        self.data, self.pos = data, 0

    def take(self, n):
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def uint(self, n):
        return int.from_bytes(self.take(n), "big")

    def sint(self, n):
        return int.from_bytes(self.take(n), "big", signed=True)

    def value(self):
        b = self.uint(1)
        if b <= 0x7f:
            return ["int", str(b)]
        if b >= 0xe0:
            return ["int", str(b - 256)]
        if 0x80 <= b <= 0x8f:
            return self.map(b & 0x0f)
        if 0x90 <= b <= 0x9f:
            return ["array", [self.value() for _ in range(b & 0x0f)]]
        if 0xa0 <= b <= 0xbf:
            return ["str", self.take(b & 0x1f).decode()]
        simple = {0xc0: ["nil"], 0xc2: ["bool", False], 0xc3: ["bool", True]}
        if b in simple:
            return simple[b]
        if b in (0xc4, 0xc5, 0xc6):
            return ["bytes", self.take(self.uint({0xc4: 1, 0xc5: 2, 0xc6: 4}[b])).hex()]
        if b in (0xd9, 0xda, 0xdb):
            return ["str", self.take(self.uint({0xd9: 1, 0xda: 2, 0xdb: 4}[b])).decode()]
        if b == 0xca:
            return ["float", struct.pack(">d", struct.unpack(">f", self.take(4))[0]).hex()]
        if b == 0xcb:
            return ["float", self.take(8).hex()]
        if 0xcc <= b <= 0xcf:
            return ["int", str(self.uint(1 << (b - 0xcc)))]
        if 0xd0 <= b <= 0xd3:
            return ["int", str(self.sint(1 << (b - 0xd0)))]
        if b in (0xdc, 0xdd):
            return ["array", [self.value() for _ in range(self.uint(2 if b == 0xdc else 4))]]
        if b in (0xde, 0xdf):
            return self.map(self.uint(2 if b == 0xde else 4))
        ext = {0xd4: 1, 0xd5: 2, 0xd6: 4, 0xd7: 8, 0xd8: 16}
        if b in ext or b in (0xc7, 0xc8, 0xc9):
            n = ext.get(b) or self.uint({0xc7: 1, 0xc8: 2, 0xc9: 4}[b])
            kind, body = self.sint(1), self.take(n)
            if kind != -1:
                return [f"ext({kind})", body.hex()]
            if n == 4:
                return ["time", int.from_bytes(body, "big"), 0]
            if n == 8:
                v = int.from_bytes(body, "big")
                return ["time", v & ((1 << 34) - 1), v >> 34]
            return ["time", int.from_bytes(body[4:], "big", signed=True), int.from_bytes(body[:4], "big")]
        return [f"unknown(0x{b:02x})"]

    def map(self, n):
        out = {}
        for _ in range(n):
            k = self.value()
            out[k[1] if k[0] == "str" else json.dumps(k)] = self.value()
        return ["map", out]


C_TYPES = {"nil": 1, "bool": 2, "int": 3, "float": 4, "str": 5, "bytes": 6, "array": 7, "map": 8, "time": 9}


def c_view_problems(got, writer):
    """The C reader: typed accessors per top-level key plus the MessagePack it receives."""
    decoded = Unpacker(bytes.fromhex(got["msgpack"])).value()
    problems = []
    if decoded[0] != "map":
        return [f"MessagePack top level is {decoded[0]}"]
    if got["keys"] != len(GOLDEN):
        problems.append(f"sessionkeeper_session_len gave {got['keys']}, expected {len(GOLDEN)}")
    for key, value in GOLDEN.items():
        want = seen_by(as_written(value, writer), "c")
        seen = decoded[1].get(key)
        if seen != want:
            problems.append(f"{key}: c's MessagePack held {json.dumps(seen, ensure_ascii=False)}, "
                            f"expected {json.dumps(want, ensure_ascii=False)}")
        view, want_view = got["view"][key], [C_TYPES[want[0]]]
        if want[0] in ("int", "str"):
            want_view.append(want[1])
        if view != want_view:
            problems.append(f"{key}: c's type/get_int/get_string gave {view}, expected {want_view}")
    return problems


def run(lang, *args, timeout=60, codec=None):
    """Runs a peer; codec sets its store's codec (SK_INTEROP_CODEC), default msgpack."""
    env = dict(os.environ, SK_INTEROP_CODEC=codec) if codec else None
    p = subprocess.run(PEERS[lang] + list(args), capture_output=True, text=True, timeout=timeout, env=env)
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


def golden_matrix(topology, url, write_codec=None, read_codec=None):
    """Every writer x every reader; topology names the pass in the output."""
    ids = {}
    for writer in PEERS:
        def write(writer=writer):
            ids[writer] = run(writer, "write", url, codec=write_codec)
            return [] if len(ids[writer]) >= 32 else [f"bad id {ids[writer]!r}"]
        check(f"{topology}: {writer} writes the golden session", write)
    for writer, sid in ids.items():
        for reader in PEERS:
            def read(writer=writer, reader=reader, sid=sid):
                got = json.loads(run(reader, "read", url, sid, codec=read_codec))
                if reader == "c":
                    return c_view_problems(got, writer)
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
        threads, errors, spans = [], [], {}
        start_at = str(int((time.time() + 2) * 1000))
        for lang in HAMMERS:
            def hammer(lang=lang):
                try:
                    spans[lang] = [int(x) for x in run(lang, "hammer", url, sid, str(rounds), start_at,
                                                       timeout=120).split()]
                except Exception as e:
                    errors.append(str(e))
            t = threading.Thread(target=hammer)
            threads.append(t)
            t.start()
        for t in threads:
            t.join()
        if errors:
            return errors
        # The writers must really have run at the same time.
        overlap = min(end for _, end in spans.values()) - max(start for start, _ in spans.values())
        print(f"      writers' spans (ms): {spans}; all {len(spans)} overlapped for {overlap} ms", flush=True)
        if overlap <= 0:
            return [f"the writers did not overlap: {spans}"]
        got = json.loads(run("python", "read", url, sid))[1]
        problems = []
        prefixes = {"ruby": "rb", "python": "py", "node": "js"}
        for lang in HAMMERS:
            lost = [i for i in range(rounds) if got.get(f"{prefixes[lang]}_{i}") != ["int", str(i)]]
            if lost:
                problems.append(f"{lang}'s keys lost: {lost}")
        lost_golden = [k for k in GOLDEN if k not in got]
        if lost_golden:
            problems.append(f"golden keys lost: {lost_golden}")
        return problems
    check(f"{topology}: ruby, python and node save different keys of one session concurrently "
          f"({rounds} rounds each)", fn)


# What each binding does with values outside the golden set (docs/types.md, "Refused"):
# an error class, or "stored" and the tagged view read back in the same language.
REFUSALS = {
    "ruby": {
        "int_2_64": "Sessionkeeper::CodecError",
        "date": "Sessionkeeper::CodecError",
        "object": "Sessionkeeper::CodecError",
        "set": "Sessionkeeper::CodecError",
        "rational": "Sessionkeeper::CodecError",
        "non_string_key": "Sessionkeeper::CodecError",
        "invalid_utf8": "Sessionkeeper::CodecError",
        "latin1_string": ["stored", ["str", "caf\u00e9"]],
        "local_time": ["stored", ["time", 1795437296, 5]],
        "symbol_key": ["stored", ["map", {"sym": ["int", "1"]}]],
        "nan": ["stored", ["float", "7ff8000000000000"]],
        "time_with_zone": ["stored", ["time", 1795437296, 7]],
        "datetime": ["stored", ["time", 1795437296 - 2 * 3600, 500_000_000]],
        "date_with_active_support": "Sessionkeeper::CodecError",
    },
    "python": {
        "int_2_64": "sessionkeeper._errors.CodecError",
        "naive_datetime": "sessionkeeper._errors.CodecError",
        "date": "builtins.TypeError",
        "set": "builtins.TypeError",
        "decimal": "builtins.TypeError",
        "object": "builtins.TypeError",
        "non_string_key": "builtins.TypeError",
        "tuple": ["stored", ["array", [["int", "1"], ["str", "a"]]]],
        "bytearray": "builtins.TypeError",
        "other_zone": ["stored", ["time", 1795435200, 0]],
        "nan": ["stored", ["float", "7ff8000000000000"]],
    },
    "node": {
        "bigint_2_64": "RangeError ERR_OUT_OF_RANGE",
        "symbol": "TypeError ERR_INVALID_ARG_TYPE",
        "function": "TypeError ERR_INVALID_ARG_TYPE",
        "map": "TypeError ERR_INVALID_ARG_TYPE",
        "set": "TypeError ERR_INVALID_ARG_TYPE",
        "class_instance": "TypeError ERR_INVALID_ARG_TYPE",
        "invalid_date": "RangeError ERR_OUT_OF_RANGE",
        "float64array": "TypeError ERR_INVALID_ARG_TYPE",
        "uint8array": ["stored", ["bytes", "0102"]],
        "number_2_53": ["stored", ["number", fhex(2.0**53)]],
        "bigint_small": ["stored", ["number", fhex(5.0)]],
        "undefined_value": ["stored", ["absent"]],
        "array_with_undefined": ["stored", ["array", [["nil"], ["number", fhex(1.0)]]]],
        "nan": ["stored", ["number", "7ff8000000000000"]],
    },
}


def refusals(url):
    for lang, expected in REFUSALS.items():
        def fn(lang=lang, expected=expected):
            got = {name: rest for name, *rest in json.loads(run(lang, "refuse", url))}
            problems = []
            for name, want in expected.items():
                seen = got.get(name)
                if seen is None:
                    problems.append(f"{name}: not tried")
                elif isinstance(want, str) and seen[0] != want:
                    problems.append(f"{name}: expected {want}, got {seen}")
                elif isinstance(want, list) and seen != want:
                    problems.append(f"{name}: expected {want}, got {seen}")
            return problems
        check(f"standalone: {lang} refuses or converts values outside the model as documented", fn)


def main():
    topologies = [("standalone", os.environ["SK_REDIS_URL"]), ("cluster", os.environ["SK_CLUSTER_URL"])]
    for topology, url in topologies:
        golden_matrix(topology, url)
        concurrent_writers(topology, url)
    # The same matrix with every store on the JSON codec (tagged bytes and timestamps), and
    # with JSON writers and MessagePack readers: a session records its codec, so apps
    # sharing a session need not agree on one.
    for topology, url in topologies:
        golden_matrix(f"{topology}, codec=json", url, "json", "json")
    golden_matrix("standalone, json writers, msgpack readers", topologies[0][1], "json", "msgpack")
    refusals(os.environ["SK_REDIS_URL"])
    failed = sum(1 for ok, _, _ in results if not ok)
    print(f"interop: {len(results) - failed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


main()
