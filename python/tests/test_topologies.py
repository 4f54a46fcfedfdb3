"""Sentinel (redis+sentinel://) and TLS (rediss:// with the test CA), from the
stores and through both framework adapters. scripts/test-python.sh starts
both topologies (SK_SENTINEL_URL, SK_TLS_URL, SK_TLS_CA); without them these
tests are skipped, unless SK_REQUIRE_REDIS=1 (then they fail)."""

from __future__ import annotations

import asyncio
import os
import time

import pytest

import sessionkeeper as sk
from conftest import topology_url

# Every topology with the options a user passes for it.
CASES = {
    "sentinel": lambda: (topology_url("sentinel"), {}),
    "tls": lambda: (topology_url("tls"), {"tls_ca_file": os.environ["SK_TLS_CA"]}),
}


@pytest.fixture(params=sorted(CASES))
def target(request) -> tuple[str, dict]:
    return CASES[request.param]()


def test_store_round_trip(target):
    url, options = target
    store = sk.Store(url, **options)
    sid, baseline = store.create({"user_id": 7, "cart": [1, 2]})
    loaded = store.load(sid)
    assert loaded.data == {"user_id": 7, "cart": [1, 2]}
    assert store.save(sid, loaded.baseline, {"user_id": 7, "cart": [1, 2, 3]}) == "saved"
    assert store.load(sid).data["cart"] == [1, 2, 3]
    new_sid = store.renew(sid)
    assert new_sid and store.load(sid) is None and store.exists(new_sid)
    assert store.destroy(new_sid) is True
    assert store.load(new_sid) is None


def test_async_store_round_trip(target):
    url, options = target

    async def go():
        store = sk.AsyncStore(url, **options)
        sid, _ = await store.create({"n": 1})
        loaded = await store.load(sid)
        results = await asyncio.gather(*(store.exists(sid) for _ in range(20)))
        assert all(results)
        assert await store.save(sid, loaded.baseline, {"n": 2}) == "saved"
        assert (await store.load(sid)).data == {"n": 2}
        assert await store.destroy(sid) is True

    asyncio.run(go())


def test_flask_app(target):
    from test_flask import make_app, sid_of

    url, options = target
    app = make_app(url, SESSIONKEEPER_OPTIONS=options)
    client = app.test_client()
    client.get("/set/user/tess")
    client.get("/set/n/3")
    assert client.get("/all").json == {"user": "tess", "n": "3"}
    sid = sid_of(client)
    assert app.session_interface.get_store(app).load(sid).data == {"user": "tess", "n": "3"}
    client.get("/clear")
    assert app.session_interface.get_store(app).load(sid) is None


def test_django_app(target):
    import test_django  # noqa: F401 - configures settings and the URLconf
    from django.conf import settings
    from django.test import Client, override_settings

    url, options = target
    with override_settings(SESSIONKEEPER_URL=url, SESSIONKEEPER_OPTIONS=options):
        client = Client()
        assert client.get("/set/user/uma").status_code == 200
        key = client.cookies[settings.SESSION_COOKIE_NAME].value
        assert client.get("/all").json() == {"user": "uma"}
        assert sk.Store(url, **options).load(key).data == {"user": "uma"}
        client.get("/flush")
        assert sk.Store(url, **options).exists(key) is False


# -- TLS failures ----------------------------------------------------------------


def test_tls_without_the_ca_is_a_connection_error_not_a_hang():
    url = topology_url("tls")
    store = sk.Store(url, connect_timeout="2s", command_timeout="2s")
    started = time.monotonic()
    with pytest.raises((sk.ConnectionError, sk.TimeoutError)):
        store.exists(sk.generate_id())
    assert time.monotonic() - started < 10


def test_tls_insecure_skips_verification():
    store = sk.Store(topology_url("tls"), tls_insecure=True)
    sid, _ = store.create({"a": 1})
    assert store.load(sid).data == {"a": 1}
    store.destroy(sid)


def test_plain_redis_to_a_tls_port_fails_within_the_timeout():
    port = topology_url("tls").rsplit(":", 1)[1].split("/", 1)[0]
    store = sk.Store(f"redis://127.0.0.1:{port}", connect_timeout="1s", command_timeout="1s")
    started = time.monotonic()
    with pytest.raises(sk.Error) as info:
        store.exists(sk.generate_id())
    assert info.value.temporary is True
    assert time.monotonic() - started < 10


def test_missing_ca_file_is_a_config_error():
    with pytest.raises(sk.ConfigError):
        sk.Store(topology_url("tls"), tls_ca_file="/nonexistent/ca.crt")


# Last in the file (and this file last in the run): it moves the Sentinel
# master to the other node, then brings the killed one back as a replica.
def test_flask_through_a_sentinel_failover():
    """What a user sees while Sentinel replaces a dead master: requests
    answer normally (fail-open: HTTP 200, no session) and, once the replica
    is promoted, the user is logged in again with what they had."""
    import signal
    import subprocess
    from pathlib import Path
    from urllib.parse import urlsplit

    import redis

    from test_flask import make_app

    url = topology_url("sentinel")
    first = urlsplit(url.replace("redis+sentinel://", "redis://").split(",")[0])
    sentinel = redis.Redis(first.hostname, first.port)
    _, port = sentinel.sentinel_get_master_addr_by_name("skmaster")
    port = int(port)
    app = make_app(url, SESSIONKEEPER_OPTIONS={"connect_timeout": "500ms", "command_timeout": "500ms"})
    client = app.test_client()
    client.get("/set/user/alice")
    # Replication is asynchronous: the session must be on the replica first.
    assert redis.Redis("127.0.0.1", port).wait(1, 5000) >= 1
    pidfile = Path(os.environ["SK_REDIS_DIR"]) / "sentinel" / f"{port}.pid"
    os.kill(int(pidfile.read_text().strip()), signal.SIGKILL)
    try:
        deadline = time.monotonic() + 40
        answers = []
        while True:
            r = client.get("/get/user")
            assert r.status_code == 200, "a failover is never an error for the user (fail-open)"
            answers.append(r.json)
            if r.json == "alice":
                break
            assert time.monotonic() < deadline, f"not logged in again after 40 s: {answers[-5:]}"
            time.sleep(0.2)
        assert answers[0] is None, "the first request after the kill met the outage"
        assert int(sentinel.sentinel_get_master_addr_by_name("skmaster")[1]) != port, "no failover happened"
        # Writes reach the promoted master.
        assert client.get("/set/user/bob").status_code == 200
        assert client.get("/get/user").json == "bob"
    finally:
        script = Path(__file__).resolve().parents[2] / "tests" / "topology" / "redis.sh"
        subprocess.run(["bash", str(script), "restart-node", str(port)], check=True, timeout=120)
