"""Shared fixtures: the Redis topologies started by scripts/with-redis.sh.

SK_REDIS_URL (standalone), SK_CLUSTER_URL (Cluster), SK_SENTINEL_URL and
SK_TLS_URL/SK_TLS_CA come from tests/topology/redis.sh. Without them the
Redis tests are skipped, unless SK_REQUIRE_REDIS=1 (set by
scripts/with-redis.sh), which makes them fail.
"""

from __future__ import annotations

import hashlib
import os
import socket
import time

import pytest

TOPOLOGIES = {"standalone": "SK_REDIS_URL", "cluster": "SK_CLUSTER_URL"}
# Only some tests run on these (test_topologies.py): not in the `topology` fixture.
EXTRA_TOPOLOGIES = {"sentinel": "SK_SENTINEL_URL", "tls": "SK_TLS_URL"}


def topology_url(name: str) -> str:
    var = TOPOLOGIES.get(name) or EXTRA_TOPOLOGIES[name]
    url = os.environ.get(var)
    if not url:
        if os.environ.get("SK_REQUIRE_REDIS") == "1":
            pytest.fail(f"{var} is not set but SK_REQUIRE_REDIS=1")
        pytest.skip(f"{var} not set; run under scripts/with-redis.sh standalone cluster sentinel tls --")
    return url


@pytest.fixture(params=sorted(TOPOLOGIES))
def topology(request) -> str:
    return request.param


@pytest.fixture
def url(topology) -> str:
    return topology_url(topology)


@pytest.fixture
def standalone_url() -> str:
    return topology_url("standalone")


def _host_ports(url: str) -> list[tuple[str, int]]:
    rest = url.split("://", 1)[1].split("/", 1)[0].split("?", 1)[0]
    out = []
    for hp in rest.split(","):
        host, port = hp.rsplit(":", 1)
        out.append((host, int(port)))
    return out


@pytest.fixture
def raw(url):
    """A redis-py client on the same topology, to look at what was stored."""
    import redis
    import redis.cluster

    host, port = _host_ports(url)[0]
    if url.startswith("redis+cluster://"):
        client = redis.cluster.RedisCluster(host=host, port=port)
    else:
        client = redis.Redis(host=host, port=port)
    yield client
    client.close()


@pytest.fixture
def raw_standalone(standalone_url):
    import redis

    host, port = _host_ports(standalone_url)[0]
    client = redis.Redis(host=host, port=port)
    yield client
    client.close()


def hostile_cookies(real: str) -> list[str]:
    """Cookie values a client may send instead of a session's: malformed,
    forged around the real value `real`, and any bytes (WSGI hands raw bytes
    over as latin-1 text). Each must be no session, never an error."""
    cases = [
        "", ".", "..", '"', '""', ";", "\\", "%00", "%E9%FF", "\xe9\xff", "\x00", "a" * 5000, "é" * 40,
        real + "\xe9", real[:-1], real + ".", "." + real, real.swapcase(), real.replace(".", ".."),
        real.split(".")[0], "x" * 31, real + "%00",
    ]
    return [c for c in cases if c != real]


# What a session's key may hold that is no session: another store's value
# (no session, nothing reported, as a migration may read it) and records of
# ours that cannot be read, whole or in one value (reported once, removed).
# (bytes, reported?)
BAD_VALUES = [
    pytest.param(b"\xc1garbage", False, id="foreign"),
    pytest.param(b"SKv1\x82\xa4a:ok", True, id="truncated-record"),
    pytest.param(b"SKv1\x81\xa3a:x\xc4\x01\xc1", True, id="undecodable-value"),
]


def dropped_corrupt(caplog) -> int:
    """How many undecodable sessions the adapters logged as dropped."""
    return sum("could not be decoded" in rec.getMessage() for rec in caplog.records)


def storage_key(sid: str, prefix: str = "session:") -> str:
    """The engine's key for a session id (docs/data-layout.md)."""
    return prefix + "2::" + hashlib.sha256(sid.encode()).hexdigest()


@pytest.fixture
def dead_url() -> str:
    """A loopback port with nothing listening: connections are refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"redis://127.0.0.1:{port}"


def wait_unpaused(client, timeout: float = 5.0) -> None:
    """Waits until a CLIENT PAUSE has ended (a PING gets through)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            client.ping()
            return
        except Exception:
            time.sleep(0.05)
