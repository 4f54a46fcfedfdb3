"""Migration from peer stores (Flask-Session, Django's cache backend) and the
per-session sliding window, on standalone Redis and the Cluster. Peer values
are written with redis-py in the peers' exact formats
(../shared/peers/python.md)."""

from __future__ import annotations

import asyncio
import json
import logging
import pickle

import pytest

import sessionkeeper as sk
from conftest import storage_key
from sessionkeeper import _native

# Flask-Session 0.8 (msgspec msgpack) after two requests of a counter view.
FLASK_SESSION_MSGPACK = bytes.fromhex("82aa5f7065726d616e656e74c3a7636f756e74657202")
FLASK_SESSION_JSON = b'{"_permanent":true,"counter":2}'
# Django RedisCache: pickle protocol 5 of {"counter": 2}.
DJANGO_PICKLE = bytes.fromhex("80059510000000000000007d948c07636f756e746572944b02732e")


def flask_sid() -> str:
    import secrets

    return secrets.token_urlsafe(32)  # Flask-Session's ids: 43 chars base64url


def test_peer_bytes_are_what_the_peers_write():
    assert _native.decode_msgpack(FLASK_SESSION_MSGPACK) == {"_permanent": True, "counter": 2}
    assert pickle.loads(DJANGO_PICKLE) == {"counter": 2}
    assert _native.decode_msgpack(b"\x80") == {}


def test_legacy_read_migrate_delete(url, raw):
    store = sk.Store(url)
    sid = flask_sid()
    sources = [("plain", "old:"), ("plain", "session:")]
    assert store.legacy_read(sid, sources) is None
    raw.set("session:" + sid, FLASK_SESSION_MSGPACK, ex=100)
    assert store.legacy_read(sid, sources) == (1, FLASK_SESSION_MSGPACK)
    assert store.load(sid) is None, "a peer's key is not our session"
    baseline = store.legacy_migrate(sid, sources, {"counter": 2})
    assert baseline is not None
    assert raw.exists("session:" + sid) == 0
    assert store.load(sid).data == {"counter": 2}
    # A second migration (a concurrent request) does not overwrite.
    assert store.legacy_migrate(sid, sources, {"counter": 99}) is None
    raw.set("session:" + sid, b"x")
    store.legacy_delete(sid, sources)
    assert raw.exists("session:" + sid) == 0
    # Malformed ids never become peer keys.
    raw.set("session:bad", b"x")
    assert store.legacy_read("bad", sources) is None
    with pytest.raises(ValueError):
        store.legacy_read(sid, [("nope", "x")])


def test_async_legacy_api(url, raw):
    store = sk.AsyncStore(url)
    sid = flask_sid()
    sources = [("plain", "session:")]
    raw.set("session:" + sid, FLASK_SESSION_JSON)

    async def go():
        assert await store.legacy_read(sid, sources) == (0, FLASK_SESSION_JSON)
        assert await store.legacy_migrate(sid, sources, {"counter": 2}) is not None
        assert (await store.load(sid)).data == {"counter": 2}
        raw.set("session:" + sid, b"x")
        assert await store.legacy_delete(sid, sources) is None

    asyncio.run(go())
    assert raw.exists("session:" + sid) == 0


def test_loaded_idle_ttl_is_the_sessions_own_window(url, raw):
    store = sk.Store(url, idle_ttl=600)
    sid, _ = store.create({"a": 1})
    assert store.load(sid).idle_ttl is None
    store.with_idle_ttl(30).touch(sid)
    assert store.load(sid).idle_ttl == 30.0
    # The default handle now slides by the session's own window.
    assert raw.pttl(storage_key(sid)) <= 30_000
    store.with_idle_ttl(None).touch(sid)
    assert store.load(sid).idle_ttl == 0.0
    assert raw.pttl(storage_key(sid)) == -1


# -- Django ---------------------------------------------------------------------

django = pytest.importorskip("django")
import test_django  # noqa: E402,F401 - configures settings and the URLconf
from django.conf import settings  # noqa: E402
from django.test import Client, override_settings  # noqa: E402

from sessionkeeper import django as sk_django  # noqa: E402
from sessionkeeper.django import SessionStore  # noqa: E402

DJANGO_PREFIX = ":1:django.contrib.sessions.cache"


def django_key() -> str:
    import random
    import string

    return "".join(random.choices(string.ascii_lowercase + string.digits, k=32))


def test_django_read_with_custom_expiry_is_one_round_trip(url, raw):
    with override_settings(SESSIONKEEPER_URL=url):
        s = SessionStore()
        s["a"] = 1
        s.set_expiry(30)
        s.save()
        key = s.session_key
        assert sk.Store(url).load(key).idle_ttl == 30.0
        raw.pexpire(storage_key(key), 5_000)
        store = sk_django._configured_stores()[0]
        before = store.stats()["round_trips"]["count"]
        again = SessionStore(key)
        assert again["a"] == 1
        assert store.stats()["round_trips"]["count"] - before == 1
        assert 25_000 < raw.pttl(storage_key(key)) <= 30_000, "slid by the session's own window"
        # Back to the default age: the session's window is reset.
        again.set_expiry(None)
        again.save()
        assert SessionStore(key).get("a") == 1
        ttl = raw.pttl(storage_key(key))
        assert settings.SESSION_COOKIE_AGE * 1000 - 5000 < ttl


def test_django_async_read_with_custom_expiry_is_one_round_trip(url, raw):
    with override_settings(SESSIONKEEPER_URL=url):
        async def go():
            s = SessionStore()
            await s.aset("a", 1)
            await s.aset_expiry(30)
            await s.asave()
            store = sk_django._configured_stores()[1]
            before = store.stats()["round_trips"]["count"]
            again = SessionStore(s.session_key)
            assert await again.aget("a") == 1
            assert store.stats()["round_trips"]["count"] - before == 1
            return s.session_key

        key = asyncio.run(go())
        assert 25_000 < raw.pttl(storage_key(key)) <= 30_000


@pytest.mark.parametrize("fmt", ["json", "msgpack"])
def test_django_migrates_cache_backend_sessions(url, raw, fmt):
    key = django_key()
    data = {"_auth_user_id": "7", "counter": 2}
    value = json.dumps(data).encode() if fmt == "json" else bytes.fromhex("82ad5f617574685f757365725f6964a137a7636f756e74657202")
    raw.set(DJANGO_PREFIX + key, value, ex=1209600)
    with override_settings(SESSIONKEEPER_URL=url, SESSIONKEEPER_MIGRATION=True):
        client = Client()
        client.cookies[settings.SESSION_COOKIE_NAME] = key
        assert client.get("/get/_auth_user_id").json() == {"value": "7"}
        assert client.get("/set/more/1").status_code == 200
        assert client.cookies[settings.SESSION_COOKIE_NAME].value == key, "still the same session"
        assert client.get("/all").json() == {"_auth_user_id": "7", "counter": 2, "more": "1"}
    assert raw.exists(DJANGO_PREFIX + key) == 0
    assert sk.Store(url).load(key).data == {"_auth_user_id": "7", "counter": 2, "more": "1"}


def test_django_migration_is_off_by_default_and_honours_key_prefix(url, raw):
    key = django_key()
    raw.set(DJANGO_PREFIX + key, b'{"counter": 2}')
    raw.set("site:3:django.contrib.sessions.cache" + key, b'{"counter": 3}')
    with override_settings(SESSIONKEEPER_URL=url):
        assert SessionStore(key).load() == {}
    caches = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "KEY_PREFIX": "site", "VERSION": 3}}
    with override_settings(SESSIONKEEPER_URL=url, SESSIONKEEPER_MIGRATION=True, CACHES=caches):
        assert SessionStore(key).load() == {"counter": 3}
    assert raw.exists(DJANGO_PREFIX + key) == 1, "other prefixes untouched"
    raw.delete(DJANGO_PREFIX + key)


def test_django_pickle_needs_the_opt_in(url, raw, caplog):
    key = django_key()
    raw.set(DJANGO_PREFIX + key, DJANGO_PICKLE)
    with override_settings(SESSIONKEEPER_URL=url, SESSIONKEEPER_MIGRATION=True):
        with caplog.at_level(logging.WARNING, logger="sessionkeeper.django"):
            client = Client()
            client.cookies[settings.SESSION_COOKIE_NAME] = key
            assert client.get("/get/counter").json() == {"value": None}
        assert "pickle" in caplog.text
    assert raw.exists(DJANGO_PREFIX + key) == 1, "left alone"
    with override_settings(SESSIONKEEPER_URL=url, SESSIONKEEPER_MIGRATION={"allow_pickle": True}):
        client = Client()
        client.cookies[settings.SESSION_COOKIE_NAME] = key
        assert client.get("/get/counter").json() == {"value": 2}
    assert raw.exists(DJANGO_PREFIX + key) == 0
    assert sk.Store(url).load(key).data == {"counter": 2}


def test_django_async_migration_and_logout_deletes_the_peer_key(url, raw):
    key = django_key()
    raw.set(DJANGO_PREFIX + key, b'{"user": "bob"}')
    with override_settings(SESSIONKEEPER_URL=url, SESSIONKEEPER_MIGRATION=True):
        async def go():
            s = SessionStore(key)
            assert await s.aget("user") == "bob"

        asyncio.run(go())
        assert raw.exists(DJANGO_PREFIX + key) == 0
        other = django_key()
        raw.set(DJANGO_PREFIX + other, b'{"user": "eve"}')
        s = SessionStore(other)
        s.flush()  # logout without loading: the peer's key goes too
        assert raw.exists(DJANGO_PREFIX + other) == 0


def test_django_undecodable_peer_value_is_no_session(url, raw, caplog):
    key = django_key()
    raw.set(DJANGO_PREFIX + key, b"\xc1garbage")
    with override_settings(SESSIONKEEPER_URL=url, SESSIONKEEPER_MIGRATION=True):
        with caplog.at_level(logging.WARNING, logger="sessionkeeper.django"):
            s = SessionStore(key)
            assert s.load() == {} and s.session_key is None
        assert "could not be migrated" in caplog.text


# django-redis' COMPRESSOR options: (module.Class, magic bytes of what it writes).
COMPRESSORS = {
    "zlib": ("zlib.ZlibCompressor", b"\x78"),
    "gzip": ("gzip.GzipCompressor", b"\x1f\x8b"),
    "lzma": ("lzma.LzmaCompressor", b"\xfd7zXZ\x00"),
    "lz4": ("lz4.Lz4Compressor", b"\x04\x22\x4d\x18"),
    "zstd": ("zstd.ZStdCompressor", b"\x28\xb5\x2f\xfd"),
}
SERIALIZERS = {
    "json": "django_redis.serializers.json.JSONSerializer",
    "msgpack": "django_redis.serializers.msgpack.MSGPackSerializer",
    "pickle": "django_redis.serializers.pickle.PickleSerializer",
}
# Long enough for every compressor to compress it (lzma only above 100 bytes).
BIG_SESSION = {"_auth_user_id": "7", "counter": 2, "note": "compressible " * 12}


def django_redis_caches(url: str, compressor: str, serializer: str) -> dict:
    return {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
        "peer": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": url,
            "OPTIONS": {
                "COMPRESSOR": "django_redis.compressors." + COMPRESSORS[compressor][0],
                "SERIALIZER": SERIALIZERS[serializer],
            },
        },
    }


def written_by_django_redis(url: str, compressor: str, serializer: str, data: dict) -> str:
    """A session saved by Django's cache backend on django-redis with the
    given COMPRESSOR and SERIALIZER: the key of the new session."""
    from django.contrib.sessions.backends.cache import SessionStore as CacheSessionStore

    with override_settings(CACHES=django_redis_caches(url, compressor, serializer), SESSION_CACHE_ALIAS="peer"):
        peer = CacheSessionStore()
        peer.update(data)
        peer.save()
        return peer.session_key


# django-redis has no Cluster support: its values are written on standalone.
@pytest.mark.parametrize("serializer", ["json", "msgpack"])
@pytest.mark.parametrize("compressor", sorted(COMPRESSORS))
def test_django_migrates_compressed_django_redis_sessions(standalone_url, raw_standalone, compressor, serializer):
    key = written_by_django_redis(standalone_url, compressor, serializer, BIG_SESSION)
    stored = raw_standalone.get(DJANGO_PREFIX + key)
    assert stored.startswith(COMPRESSORS[compressor][1]), "django-redis compressed it"
    caches = django_redis_caches(standalone_url, compressor, serializer)
    with override_settings(SESSIONKEEPER_URL=standalone_url, SESSIONKEEPER_MIGRATION=True, CACHES=caches, SESSION_CACHE_ALIAS="peer"):
        client = Client()
        client.cookies[settings.SESSION_COOKIE_NAME] = key
        assert client.get("/all").json() == BIG_SESSION
        assert client.get("/set/more/1").status_code == 200
        assert client.cookies[settings.SESSION_COOKIE_NAME].value == key, "the same session"
    assert raw_standalone.exists(DJANGO_PREFIX + key) == 0
    assert sk.Store(standalone_url).load(key).data == {**BIG_SESSION, "more": "1"}


def test_django_small_values_are_not_compressed_and_still_read(standalone_url, raw_standalone):
    key = written_by_django_redis(standalone_url, "zlib", "json", {"a": 1})
    assert raw_standalone.get(DJANGO_PREFIX + key) == b'{"a": 1}', "below django-redis' min_length"
    with override_settings(SESSIONKEEPER_URL=standalone_url, SESSIONKEEPER_MIGRATION=True):
        assert SessionStore(key).load() == {"a": 1}


def test_django_compressed_pickle_still_needs_the_opt_in(standalone_url, raw_standalone, caplog):
    key = written_by_django_redis(standalone_url, "zlib", "pickle", BIG_SESSION)
    with override_settings(SESSIONKEEPER_URL=standalone_url, SESSIONKEEPER_MIGRATION=True):
        with caplog.at_level(logging.WARNING, logger="sessionkeeper.django"):
            assert SessionStore(key).load() == {}
        assert "pickle" in caplog.text
        assert raw_standalone.exists(DJANGO_PREFIX + key) == 1, "left alone"
    with override_settings(SESSIONKEEPER_URL=standalone_url, SESSIONKEEPER_MIGRATION={"allow_pickle": True}):
        assert SessionStore(key).load() == BIG_SESSION


def test_django_broken_compressed_values_are_no_session(url, raw, caplog):
    import zlib

    from sessionkeeper import _migrate

    truncated = zlib.compress(json.dumps(BIG_SESSION).encode())[:-5]
    bomb = zlib.compress(b"[" * (_migrate.MAX_DECOMPRESSED + 1))
    for value, why in [
        (truncated, "truncated"),
        (b"\x78\x9c" + b"\xff" * 20, "cannot decompress"),
        (b"\x1f\x8b" + b"\x00" * 20, "cannot decompress"),
        (bomb, "more than"),
    ]:
        key = django_key()
        raw.set(DJANGO_PREFIX + key, value)
        caplog.clear()
        with override_settings(SESSIONKEEPER_URL=url, SESSIONKEEPER_MIGRATION=True):
            with caplog.at_level(logging.WARNING, logger="sessionkeeper.django"):
                s = SessionStore(key)
                assert s.load() == {} and s.session_key is None
        assert why in caplog.text, caplog.text
        assert raw.exists(DJANGO_PREFIX + key) == 1, "left alone"
        raw.delete(DJANGO_PREFIX + key)


def test_decompress_leaves_uncompressed_values_alone():
    from sessionkeeper._migrate import decompress

    for value in [FLASK_SESSION_MSGPACK, FLASK_SESSION_JSON, DJANGO_PICKLE, b"\x80", b"", b"{}", b"\x88\x01"]:
        assert decompress(value) == value


# -- Flask ----------------------------------------------------------------------

from test_flask import make_app  # noqa: E402


@pytest.mark.parametrize("value", [FLASK_SESSION_MSGPACK, FLASK_SESSION_JSON], ids=["msgpack", "json"])
def test_flask_migrates_flask_session_sessions(url, raw, value):
    sid = flask_sid()
    raw.set("session:" + sid, value, ex=2678400)
    app = make_app(url, SESSIONKEEPER_MIGRATION=True)
    client = app.test_client()
    client.set_cookie("session", sid)
    r = client.get("/get/counter")
    assert r.json == 2
    ours = client.get_cookie("session").value
    assert ours != sid and ours.startswith(sid + "."), "our signed cookie for the same id"
    assert raw.exists("session:" + sid) == 0
    assert sk.Store(url).load(sid).data == {"counter": 2, "_permanent": True}
    client.get("/set/more/x")
    assert client.get("/all").json == {"_permanent": True, "counter": 2, "more": "x"}


def test_flask_migration_off_by_default_and_custom_prefix(url, raw):
    sid = flask_sid()
    raw.set("session:" + sid, FLASK_SESSION_JSON)
    raw.set("fs:" + sid, b'{"counter": 5}')
    client = make_app(url).test_client()
    client.set_cookie("session", sid)
    assert client.get("/get/counter").json is None
    client = make_app(url, SESSIONKEEPER_MIGRATION=True, SESSION_KEY_PREFIX="fs:").test_client()
    client.set_cookie("session", sid)
    assert client.get("/get/counter").json == 5
    assert raw.exists("fs:" + sid) == 0 and raw.exists("session:" + sid) == 1
    raw.delete("session:" + sid)


def test_flask_pickle_needs_the_opt_in(url, raw, caplog):
    sid = flask_sid()
    raw.set("session:" + sid, pickle.dumps({"counter": 4}))
    client = make_app(url, SESSIONKEEPER_MIGRATION=True).test_client()
    client.set_cookie("session", sid)
    with caplog.at_level(logging.WARNING, logger="sessionkeeper.flask"):
        assert client.get("/get/counter").json is None
    assert "pickle" in caplog.text
    assert raw.exists("session:" + sid) == 1
    client = make_app(url, SESSIONKEEPER_MIGRATION={"allow_pickle": True}).test_client()
    client.set_cookie("session", sid)
    assert client.get("/get/counter").json == 4
    assert raw.exists("session:" + sid) == 0


def test_flask_signed_flask_session_cookie(url, raw):
    from itsdangerous import Signer

    sid = flask_sid()
    raw.set("session:" + sid, FLASK_SESSION_JSON)
    app = make_app(url, SESSIONKEEPER_MIGRATION={"use_signer": True})
    client = app.test_client()
    client.set_cookie("session", sid)  # unsigned: refused when the signer is on
    assert client.get("/get/counter").json is None
    signed = Signer(app.secret_key, salt="flask-session", key_derivation="hmac").sign(sid).decode()
    client = app.test_client()
    client.set_cookie("session", signed)
    assert client.get("/get/counter").json == 2


def test_django_migrated_session_keeps_its_own_expiry(url, raw):
    key = django_key()
    raw.set(DJANGO_PREFIX + key, b'{"_session_expiry": 30, "user": "ann"}', ex=30)
    with override_settings(SESSIONKEEPER_URL=url, SESSIONKEEPER_MIGRATION=True):
        assert SessionStore(key).load() == {"_session_expiry": 30, "user": "ann"}
    assert sk.Store(url).load(key).idle_ttl == 30.0
    assert 25_000 < raw.pttl(storage_key(key)) <= 30_000


def test_flask_session_datetime_values_migrate(url, raw):
    # msgspec writes a datetime as the MessagePack timestamp extension.
    sid = flask_sid()
    raw.set("session:" + sid, b"\x81\xa5since\xd6\xff\x65\x00\x00\x00")
    client = make_app(url, SESSIONKEEPER_MIGRATION=True).test_client()
    client.set_cookie("session", sid)
    assert client.get("/all").json == {"since": "Tue, 12 Sep 2023 06:06:56 GMT"}


class RacedStore:
    """A store on which another request migrates the same session between
    this request's read of the peer's value and its own migration."""

    OTHER = {"counter": 2, "by": "the other request"}

    def __init__(self, store) -> None:
        self._store = store

    def __getattr__(self, name):
        return getattr(self._store, name)

    def legacy_migrate(self, sid, sources, data):
        assert self._store.legacy_migrate(sid, sources, self.OTHER) is not None
        return self._store.legacy_migrate(sid, sources, data)


class AsyncRacedStore(RacedStore):
    async def legacy_migrate(self, sid, sources, data):
        assert await self._store.legacy_migrate(sid, sources, self.OTHER) is not None
        return await self._store.legacy_migrate(sid, sources, data)


def test_a_migration_raced_by_another_request_takes_its_result(url, raw):
    from sessionkeeper import _migrate

    log = logging.getLogger("sessionkeeper.test")
    sources = [("plain", "session:")]
    cases = [
        (RacedStore(sk.Store(url)), _migrate.migrate, lambda result: result),
        (AsyncRacedStore(sk.AsyncStore(url)), _migrate.amigrate, asyncio.run),
    ]
    for store, migrate, run in cases:
        sid = flask_sid()
        raw.set("session:" + sid, FLASK_SESSION_MSGPACK, ex=100)
        data, baseline = run(migrate(store, sid, sources, False, log))
        assert data == RacedStore.OTHER, "the session the other request stored, never overwritten"
        assert baseline is not None
        assert raw.exists("session:" + sid) == 0
