"""Python interop peer. Usage:
  python tests/interop/peer.py write URL        -> prints the new session id
  python tests/interop/peer.py read URL ID      -> prints what Python sees, as tagged JSON
  python tests/interop/peer.py hammer URL ID N T  -> from Unix time T (ms), N times: load, set "py_<i>" = i, save
"""
import datetime as dt
import json
import os
import struct
import sys

import sessionkeeper

PREFIX = "sk-interop:"
UTC = dt.timezone.utc
EPOCH = dt.datetime(1970, 1, 1, tzinfo=UTC)


def golden():
    return {
        "nil": None,
        "true": True,
        "false": False,
        "int_small": 42,
        "int_negative": -7,
        "int_2_53_plus_1": 2**53 + 1,
        "int_min": -(2**63),
        "int_max": 2**63 - 1,
        "float": 3.25,
        "float_tenth": 0.1,
        "float_whole": 2.0,
        "float_negative_zero": -0.0,
        "float_huge": 1.5e300,
        "float_2_53": 2.0**53,
        "str_empty": "",
        "str_utf8": "h\u00e9llo w\u00f6rld \u2713 \u65e5\u672c \U0001F389",
        "bytes": b"\x00\x01abc\xfe\xff",
        "bytes_empty": b"",
        "array": [1, "two", None, (3.5, False)],
        "array_empty": [],
        "map": {"a": 1, "nested": {"b": [True, {"c": "d"}]}, "empty": {}},
        "symbol": "sym",
        "timestamp": EPOCH + dt.timedelta(seconds=1795437296, microseconds=123456),
        "timestamp_pre_epoch": dt.datetime(1969, 12, 31, 23, 59, 59, 500000, tzinfo=UTC),
    }


def tag(v):
    if v is None:
        return ["nil"]
    if isinstance(v, bool):
        return ["bool", v]
    if isinstance(v, int):
        return ["int", str(v)]
    if isinstance(v, float):
        return ["float", struct.pack(">d", v).hex()]
    if isinstance(v, str):
        return ["str", v]
    if isinstance(v, bytes):
        return ["bytes", v.hex()]
    if isinstance(v, list):
        return ["array", [tag(x) for x in v]]
    if isinstance(v, dict):
        return ["map", {(k if isinstance(k, str) else f"{type(k).__name__}:{k}"): tag(x) for k, x in v.items()}]
    if isinstance(v, dt.datetime):
        if v.utcoffset() != dt.timedelta(0):
            return ["time(naive or not UTC)", str(v)]
        d = v - EPOCH
        return ["time", d.days * 86400 + d.seconds, d.microseconds * 1000]
    return [f"other({type(v).__name__})", repr(v)]


def main():
    cmd, url = sys.argv[1], sys.argv[2]
    # SK_INTEROP_CODEC: the store codec ("msgpack" by default, or "json").
    store = sessionkeeper.Store(url, key_prefix=PREFIX, codec=os.environ.get("SK_INTEROP_CODEC", "msgpack"))
    if cmd == "write":
        sid, _ = store.create(golden())
        print(sid)
    elif cmd == "read":
        loaded = store.load(sys.argv[3])
        if loaded is None:
            sys.exit(f"python: no session {sys.argv[3]}")
        print(json.dumps(tag(loaded.data), ensure_ascii=False))
    elif cmd == "hammer":
        sid, n = sys.argv[3], int(sys.argv[4])
        import time
        time.sleep(max(int(sys.argv[5]) / 1000 - time.time(), 0))  # start together
        first = round(time.time() * 1000)
        for i in range(n):
            loaded = store.load(sid)
            if loaded is None:
                sys.exit(f"python: session {sid} vanished")
            data = loaded.data
            data[f"py_{i}"] = i
            store.save(sid, loaded.baseline, data)
        print(first, round(time.time() * 1000))
    elif cmd == "refuse":
        # Each value alone under key "k": the error class it raises, or what reads back.
        import decimal
        cases = {
            "int_2_64": 2**64,
            "naive_datetime": dt.datetime(2026, 11, 23, 12, 0),
            "date": dt.date(2026, 11, 23),
            "set": {1},
            "decimal": decimal.Decimal("1.5"),
            "object": object(),
            "non_string_key": {1: 2},
            "tuple": (1, "a"),
            "bytearray": bytearray(b"ab"),
            "other_zone": dt.datetime(2026, 11, 23, 21, 0, tzinfo=dt.timezone(dt.timedelta(hours=9))),
            "nan": float("nan"),
        }
        out = []
        for name, value in cases.items():
            try:
                sid, _ = store.create({"k": value})
                out.append([name, "stored", tag(store.load(sid).data["k"])])
            except Exception as e:  # noqa: BLE001
                out.append([name, f"{type(e).__module__}.{type(e).__qualname__}", str(e)])
        print(json.dumps(out, ensure_ascii=False))
    else:
        sys.exit(__doc__)


main()
