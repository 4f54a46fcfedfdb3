"""SESSION_ENGINE = "sessionkeeper.django": the SessionBase contract on the
store itself, and a real Django app through its test clients, on standalone
Redis and the Cluster."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import threading
import time

import django
import pytest
from django.conf import settings

if not settings.configured:
    settings.configure(
        DEBUG=False,
        SECRET_KEY="django-test-secret",
        ROOT_URLCONF=__name__,
        ALLOWED_HOSTS=["*"],
        MIDDLEWARE=["django.contrib.sessions.middleware.SessionMiddleware"],
        SESSION_ENGINE="sessionkeeper.django",
        SESSIONKEEPER_URL="memory://django-default",
        DATABASES={},
        USE_TZ=True,
    )
    django.setup()

from django.contrib.sessions.backends import base as django_base  # noqa: E402
from django.contrib.sessions.backends.base import CreateError, UpdateError  # noqa: E402
from django.http import HttpResponse, JsonResponse  # noqa: E402
from django.test import AsyncClient, Client, override_settings  # noqa: E402
from django.urls import path  # noqa: E402

import sessionkeeper as sk  # noqa: E402
from conftest import BAD_VALUES, dropped_corrupt, hostile_cookies, storage_key, wait_unpaused  # noqa: E402
from sessionkeeper.django import SessionStore  # noqa: E402

BARRIER: list = [None]


def set_value(request, key, value):
    request.session[key] = value
    return HttpResponse("ok")


def get_value(request, key):
    return JsonResponse({"value": request.session.get(key)})


def all_values(request):
    return JsonResponse(dict(request.session.items()))


def flush(request):
    request.session.flush()
    return HttpResponse("flushed")


def login(request, user):
    request.session.cycle_key()
    request.session["user"] = user
    return HttpResponse("ok")


def expire_in(request, seconds):
    request.session.set_expiry(seconds)
    request.session["e"] = seconds
    return HttpResponse("ok")


def slow_set(request, key, value):
    request.session.get(key)  # loaded before waiting
    BARRIER[0].wait(10)  # everyone has loaded
    BARRIER[0].wait(10)  # the test may act in between
    request.session[key] = value
    return HttpResponse("ok")


async def async_set(request, key, value):
    await request.session.aset(key, value)
    return HttpResponse("ok")


async def async_get(request, key):
    return JsonResponse({"value": await request.session.aget(key)})


async def async_login(request, user):
    await request.session.acycle_key()
    await request.session.aset("user", user)
    return HttpResponse("ok")


async def async_flush(request):
    await request.session.aflush()
    return HttpResponse("flushed")


urlpatterns = [
    path("set/<str:key>/<str:value>", set_value),
    path("get/<str:key>", get_value),
    path("all", all_values),
    path("flush", flush),
    path("login/<str:user>", login),
    path("expire/<int:seconds>", expire_in),
    path("slow-set/<str:key>/<str:value>", slow_set),
    path("aset/<str:key>/<str:value>", async_set),
    path("aget/<str:key>", async_get),
    path("alogin/<str:user>", async_login),
    path("aflush", async_flush),
]


@pytest.fixture
def configured(url):
    with override_settings(SESSIONKEEPER_URL=url):
        yield url


def key_of(client) -> str:
    return client.cookies[settings.SESSION_COOKIE_NAME].value


def store() -> sk.Store:
    return sk.Store(settings.SESSIONKEEPER_URL)


# -- the SessionBase contract --------------------------------------------------


def test_new_session_saves_under_a_fresh_key(configured):
    s = SessionStore()
    assert s.session_key is None and s.is_empty()
    s["a"] = 1
    s.save()
    assert sk.is_valid_id(s.session_key)
    assert s.exists(s.session_key)
    assert SessionStore(s.session_key).load() == {"a": 1}
    assert s.exists(None) is False and s.exists("") is False


def test_load_of_an_unknown_key_is_empty_and_stores_nothing(configured, raw):
    key = sk.generate_id()
    s = SessionStore(key)
    assert s.load() == {}
    assert s.session_key is None
    assert raw.exists(storage_key(key)) == 0
    short = SessionStore("shortkey1")  # valid for Django, never reaches Redis
    assert short.load() == {} and short.session_key is None


def test_save_must_create_never_overwrites(configured):
    s = SessionStore()
    s["owner"] = "first"
    s.create()
    other = SessionStore(s.session_key)
    other._session_cache = {"owner": "second"}
    with pytest.raises(CreateError):
        other.save(must_create=True)
    assert SessionStore(s.session_key).load()["owner"] == "first"


def test_save_of_a_deleted_session_raises_update_error(configured):
    s = SessionStore()
    s["user"] = "alice"
    s.save()
    key = s.session_key
    stale = SessionStore(key)
    stale["cart"] = 1  # loads it
    SessionStore(key).delete()  # logout in another request
    with pytest.raises(UpdateError):
        stale.save()
    assert SessionStore().exists(key) is False, "never resurrected"


def test_expiry_zero_or_less_deletes(configured):
    s = SessionStore()
    s["foo"] = "bar"
    s.set_expiry(-dt.timedelta(seconds=10))
    s.save()
    fresh = SessionStore(s.session_key)
    assert "foo" not in fresh
    s2 = SessionStore()
    s2["x"] = 1
    s2.save()
    s2.set_expiry(-5)
    s2.save()
    assert SessionStore().exists(s2.session_key) is False


def test_expiry_follows_set_expiry_and_cookie_age(configured, raw):
    s = SessionStore()
    s["a"] = 1
    s.save()
    ttl = raw.pttl(storage_key(s.session_key))
    assert settings.SESSION_COOKIE_AGE * 1000 - 5000 < ttl <= settings.SESSION_COOKIE_AGE * 1000
    s.set_expiry(30)
    s.save()
    assert 25_000 < raw.pttl(storage_key(s.session_key)) <= 30_000
    # A read slides it to the session's own age, not SESSION_COOKIE_AGE.
    again = SessionStore(s.session_key)
    assert again["a"] == 1
    assert 25_000 < raw.pttl(storage_key(s.session_key)) <= 30_000
    s.set_expiry(dt.timedelta(seconds=60))
    s.save()
    assert 55_000 < raw.pttl(storage_key(s.session_key)) <= 60_000
    assert isinstance(SessionStore(s.session_key).load()["_session_expiry"], str)


def test_a_session_with_its_own_age_is_read_in_one_command_once_seen(standalone_url, raw_standalone):
    """set_expiry stores the age with the session. The first read in a
    process slides by SESSION_COOKIE_AGE and corrects that (PEXPIREAT);
    the process then remembers the age and later reads are one GETEX."""
    with override_settings(SESSIONKEEPER_URL=standalone_url):
        s = SessionStore()
        s["a"] = 1
        s.set_expiry(30)
        s.save()
        key = storage_key(s.session_key)

        def corrections() -> int:
            return raw_standalone.info("commandstats").get("cmdstat_pexpireat", {}).get("calls", 0)

        before = corrections()
        assert SessionStore(s.session_key)["a"] == 1
        assert corrections() == before + 1
        raw_standalone.pexpire(key, 5000)
        assert SessionStore(s.session_key)["a"] == 1
        assert corrections() == before + 1
        assert 25_000 < raw_standalone.pttl(key) <= 30_000


def test_short_expiry_really_expires(configured):
    s = SessionStore()
    s["a"] = 1
    s.set_expiry(1)
    s.save()
    time.sleep(1.3)
    assert SessionStore(s.session_key).load() == {}


def test_delete_flush_clear_expired(configured):
    s = SessionStore()
    s["a"] = 1
    s.save()
    key = s.session_key
    s.flush()
    assert s.session_key is None and dict(s.items()) == {}
    assert SessionStore().exists(key) is False
    t = SessionStore()
    t["b"] = 1
    t.save()
    SessionStore().delete(t.session_key)
    assert SessionStore().exists(t.session_key) is False
    SessionStore().delete()  # no key: nothing to do
    assert SessionStore.clear_expired() is None


def test_cycle_key_keeps_data_under_a_new_key(configured):
    s = SessionStore()
    s["a"] = 1
    s.save()
    old = s.session_key
    s.cycle_key()
    assert s.session_key != old
    assert SessionStore().exists(old) is False
    s["b"] = 2
    s.save()
    assert SessionStore(s.session_key).load() == {"a": 1, "b": 2}
    # A session not stored yet takes Django's own path.
    n = SessionStore()
    n["c"] = 3
    n.cycle_key()
    assert SessionStore(n.session_key).load() == {"c": 3}


def test_only_changed_keys_are_written_and_concurrent_changes_merge(configured):
    s = SessionStore()
    s.update({"a": 1, "b": 2})
    s.save()
    one, two = SessionStore(s.session_key), SessionStore(s.session_key)
    one["x"] = 1
    two["y"] = 2
    before = SessionStore.engine_stats()
    one.save()
    two.save()
    after = SessionStore.engine_stats()
    assert after["keys_written"] - before["keys_written"] == 2
    assert after["merged_saves"] - before["merged_saves"] == 1, "the second save found the first's change"
    assert SessionStore(s.session_key).load() == {"a": 1, "b": 2, "x": 1, "y": 2}


def test_values(configured):
    when = dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)
    s = SessionStore()
    s.update({"n": None, "b": True, "i": 7, "f": 1.5, "s": "x", "by": b"\x00", "l": [1, [2]], "d": {"k": "v"}, "t": when})
    s.save()
    assert SessionStore(s.session_key).load()["t"] == when
    bad = SessionStore()
    bad["obj"] = object()
    with pytest.raises(TypeError, match='session key "obj"'):
        bad.save()


@pytest.mark.parametrize("value, reported", BAD_VALUES)
@pytest.mark.parametrize("call", ["load", "aload"])
def test_corrupt_value_gives_an_empty_session(configured, raw, caplog, value, reported, call):
    s = SessionStore()
    s["a"] = 1
    s.save()
    raw.set(storage_key(s.session_key), value)
    fresh = SessionStore(s.session_key)
    with caplog.at_level(logging.WARNING, logger="sessionkeeper.django"):
        loaded = fresh.load() if call == "load" else asyncio.run(fresh.aload())
    assert loaded == {}
    assert fresh.session_key is None
    assert dropped_corrupt(caplog) == (1 if reported else 0), caplog.text
    assert (raw.get(storage_key(s.session_key)) is None) == reported, "a record of ours that cannot be read is removed"
    fresh["b"] = 2
    fresh.save()
    assert fresh.session_key not in (None, s.session_key), "a fresh key, never the old one"


# -- async methods, natively on AsyncStore -------------------------------------


@pytest.fixture
def no_thread_wrappers(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("an async session method went through sync_to_async")

    monkeypatch.setattr(django_base, "sync_to_async", refuse)


def test_async_contract(configured, no_thread_wrappers):
    async def main():
        creates = SessionStore.engine_stats()["creates"]
        s = SessionStore()
        await s.aset("a", 1)
        await s.asave()
        assert SessionStore.engine_stats()["creates"] == creates + 1, "the async methods share the engine"
        key = s.session_key
        assert sk.is_valid_id(key) and await s.aexists(key)
        loaded = SessionStore(key)
        assert await loaded.aget("a") == 1
        assert await loaded.aload() == {"a": 1}
        # must_create never overwrites
        other = SessionStore(key)
        other._session_cache = {"a": 2}
        with pytest.raises(CreateError):
            await other.asave(must_create=True)
        # update of a deleted session
        stale = SessionStore(key)
        await stale.aset("b", 2)
        await SessionStore(key).adelete()
        with pytest.raises(UpdateError):
            await stale.asave()
        assert not await SessionStore().aexists(key)
        # unknown key
        unknown = SessionStore(sk.generate_id())
        assert await unknown.aload() == {} and unknown.session_key is None
        # cycle and flush
        c = SessionStore()
        await c.aset("v", 1)
        await c.acreate()
        old = c.session_key
        await c.acycle_key()
        assert c.session_key != old and not await c.aexists(old)
        assert await SessionStore(c.session_key).aget("v") == 1
        await c.aflush()
        assert c.session_key is None
        # expiry <= 0
        e = SessionStore()
        await e.aset("x", 1)
        await e.aset_expiry(-1)
        await e.asave()
        assert await SessionStore(e.session_key).aload() == {}
        await SessionStore.aclear_expired()

    asyncio.run(main())


# -- through the middleware -------------------------------------------------------


def test_middleware_create_read_update_delete(configured, raw):
    client = Client()
    r = client.get("/set/a/1")
    cookie = r.cookies[settings.SESSION_COOKIE_NAME]
    assert cookie["max-age"] == settings.SESSION_COOKIE_AGE
    assert cookie["httponly"] and cookie["samesite"] == "Lax" and cookie["path"] == "/"
    key = key_of(client)
    assert raw.exists(storage_key(key)) == 1
    assert client.get("/get/a").json() == {"value": "1"}
    r = client.get("/set/a/2")
    assert key_of(client) == key
    assert client.get("/all").json() == {"a": "2"}
    r = client.get("/flush")
    assert r.cookies[settings.SESSION_COOKIE_NAME].value == ""
    assert raw.exists(storage_key(key)) == 0


def test_middleware_any_cookie_is_no_session(configured):
    client = Client()
    client.get("/set/a/1")
    real = key_of(client)
    name = settings.SESSION_COOKIE_NAME
    for bad in hostile_cookies(real):
        r = Client().get("/get/a", HTTP_COOKIE=f"{name}={bad}")
        assert r.status_code == 200, repr(bad[:40])
        assert r.json() == {"value": None}, repr(bad[:40])
    assert client.get("/get/a").json() == {"value": "1"}, "the real session is untouched"


@pytest.mark.parametrize("value, reported", BAD_VALUES)
def test_middleware_corrupt_value_gives_a_fresh_session(configured, raw, caplog, value, reported):
    client = Client()
    client.get("/set/a/1")
    key = key_of(client)
    raw.set(storage_key(key), value)
    with caplog.at_level(logging.WARNING, logger="sessionkeeper.django"):
        r = client.get("/get/a")
    assert r.status_code == 200 and r.json() == {"value": None}
    assert r.cookies[settings.SESSION_COOKIE_NAME].value == "", "the unreadable session's cookie is dropped"
    assert dropped_corrupt(caplog) == (1 if reported else 0), caplog.text
    assert (raw.get(storage_key(key)) is None) == reported, "a record of ours that cannot be read is removed"
    assert client.get("/set/a/2").status_code == 200
    assert key_of(client) != key, "a fresh session, never the old key"
    assert client.get("/all").json() == {"a": "2"}


def test_middleware_oversized_session_is_an_error_and_keeps_what_was_stored(url):
    with override_settings(SESSIONKEEPER_URL=url, SESSIONKEEPER_OPTIONS={"max_size": 2000}):
        client = Client()
        client.get("/set/a/1")
        with pytest.raises(sk.TooLargeError, match="max_size"):
            client.get("/set/big/" + "x" * 3000)
        assert client.get("/get/a").json() == {"value": "1"}, "the stored session is as before"
        assert client.get("/get/big").json() == {"value": None}


def test_middleware_cookie_settings(url):
    with override_settings(
        SESSIONKEEPER_URL=url,
        SESSION_COOKIE_NAME="skid",
        SESSION_COOKIE_AGE=600,
        SESSION_COOKIE_SECURE=True,
        SESSION_COOKIE_SAMESITE="Strict",
        SESSION_COOKIE_DOMAIN="example.test",
        SESSION_COOKIE_HTTPONLY=False,
    ):
        r = Client().get("/set/a/1")
        c = r.cookies["skid"]
        assert c["max-age"] == 600 and c["secure"] and c["samesite"] == "Strict"
        assert c["domain"] == "example.test" and not c["httponly"]


def test_middleware_expiry(url):
    with override_settings(SESSIONKEEPER_URL=url, SESSION_COOKIE_AGE=1):
        client = Client()
        client.get("/set/a/1")
        time.sleep(1.3)
        assert client.get("/get/a").json() == {"value": None}


def test_middleware_login_cycles_the_key(configured):
    client = Client()
    client.get("/set/cart/3")
    old = key_of(client)
    client.get("/login/alice")
    assert key_of(client) != old
    assert not SessionStore().exists(old)
    assert client.get("/all").json() == {"cart": "3", "user": "alice"}


def test_middleware_concurrent_requests_keep_both(configured):
    client = Client()
    client.get("/set/base/0")
    cookie = key_of(client)
    BARRIER[0] = threading.Barrier(2)
    codes = []

    def request(p):
        c = Client()
        c.cookies[settings.SESSION_COOKIE_NAME] = cookie
        codes.append(c.get(p).status_code)

    threads = [threading.Thread(target=request, args=(p,)) for p in ("/slow-set/x/1", "/slow-set/y/2")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(15)
    assert codes == [200, 200]
    assert client.get("/all").json() == {"base": "0", "x": "1", "y": "2"}


def test_middleware_logout_elsewhere_gives_400_and_no_resurrection(configured):
    client = Client()
    client.get("/set/user/alice")
    key = key_of(client)
    BARRIER[0] = threading.Barrier(2)
    out = {}

    def slow():
        c = Client()
        c.cookies[settings.SESSION_COOKIE_NAME] = key
        out["status"] = c.get("/slow-set/cart/9").status_code

    t = threading.Thread(target=slow)
    t.start()
    BARRIER[0].wait(10)
    SessionStore(key).delete()
    BARRIER[0].wait(10)
    t.join(15)
    assert out["status"] == 400  # SessionInterrupted
    assert not SessionStore().exists(key)


def test_async_views(configured):
    async def main():
        client = AsyncClient()
        await client.get("/aset/a/1")
        assert (await client.get("/aget/a")).json() == {"value": "1"}
        old = client.cookies[settings.SESSION_COOKIE_NAME].value
        await client.get("/alogin/bob")
        assert client.cookies[settings.SESSION_COOKIE_NAME].value != old
        assert (await client.get("/aget/user")).json() == {"value": "bob"}
        assert (await client.get("/aget/a")).json() == {"value": "1"}
        await client.get("/aflush")
        assert (await client.get("/aget/a")).json() == {"value": None}

    asyncio.run(main())


# -- Redis down --------------------------------------------------------------------


def test_redis_down_fails_open(url, dead_url, caplog):
    with override_settings(SESSIONKEEPER_URL=url):
        client = Client()
        client.get("/set/user/alice")
        key = key_of(client)
    with override_settings(SESSIONKEEPER_URL=dead_url, SESSIONKEEPER_OPTIONS={"connect_timeout": "300ms"}):
        with caplog.at_level(logging.WARNING, logger="sessionkeeper.django"):
            started = time.monotonic()
            r = client.get("/get/user")
            assert time.monotonic() - started < 3
            assert r.status_code == 200 and r.json() == {"value": None}
            assert settings.SESSION_COOKIE_NAME not in r.cookies, "the cookie is not deleted"
            r = client.get("/set/other/1")
            assert r.status_code == 200
            assert Client().get("/set/new/1").status_code == 200
        assert "continuing without a stored session" in caplog.text
    with override_settings(SESSIONKEEPER_URL=url):
        assert key_of(client) == key
        assert client.get("/get/user").json() == {"value": "alice"}


def test_redis_down_fails_closed(dead_url):
    with override_settings(
        SESSIONKEEPER_URL=dead_url, SESSIONKEEPER_FAIL_OPEN=False, SESSIONKEEPER_OPTIONS={"connect_timeout": "300ms"}
    ):
        with pytest.raises(sk.ConnectionError):
            Client().get("/set/a/1")
        s = SessionStore(sk.generate_id())
        with pytest.raises(sk.ConnectionError):
            s.load()

        async def main():
            with pytest.raises(sk.ConnectionError):
                await SessionStore(sk.generate_id()).aload()

        asyncio.run(main())


def test_paused_redis_is_bounded(standalone_url, raw_standalone):
    with override_settings(
        SESSIONKEEPER_URL=standalone_url, SESSIONKEEPER_FAIL_OPEN=False, SESSIONKEEPER_OPTIONS={"command_timeout": "200ms"}
    ):
        client = Client()
        client.get("/set/a/1")
        raw_standalone.client_pause(1500, all=True)
        try:
            started = time.monotonic()
            with pytest.raises(sk.TimeoutError):
                client.get("/get/a")
            assert time.monotonic() - started < 1.0
        finally:
            wait_unpaused(raw_standalone)
        assert client.get("/get/a").json() == {"value": "1"}


def test_paused_redis_fails_open(standalone_url, raw_standalone, caplog):
    with override_settings(SESSIONKEEPER_URL=standalone_url, SESSIONKEEPER_OPTIONS={"command_timeout": "200ms"}):
        client = Client()
        client.get("/set/user/alice")
        key = key_of(client)
        # Long enough for both requests to time out while it lasts: a request
        # that waited it out would see alice.
        raw_standalone.client_pause(2000, all=True)
        try:
            with caplog.at_level(logging.WARNING, logger="sessionkeeper.django"):
                r = client.get("/get/user")
                assert r.status_code == 200 and r.json() == {"value": None}
                assert settings.SESSION_COOKIE_NAME not in r.cookies, "the cookie is not deleted"
                r = client.get("/set/user/mallory")
                assert r.status_code == 200
        finally:
            wait_unpaused(raw_standalone)
        # The timeout path, not the refused-connection one.
        assert "command_timeout" in caplog.text and "changes dropped" in caplog.text, caplog.text
        assert key_of(client) == key, "the cookie still names the session"
        assert client.get("/all").json() == {"user": "alice"}, "nothing was saved during the outage"


@pytest.mark.parametrize("outage", ["refused", "paused"])
def test_new_visitor_during_an_outage_gets_a_cookie_naming_a_session_never_stored(
    outage, standalone_url, raw_standalone, dead_url
):
    """README: fail-open keeps the cookie Django issues for a write, though
    nothing was stored; the next request finds the key unknown."""
    options = {"connect_timeout": "300ms", "command_timeout": "200ms"}
    client = Client()
    if outage == "refused":
        with override_settings(SESSIONKEEPER_URL=dead_url, SESSIONKEEPER_OPTIONS=options):
            r = client.get("/set/a/1")
    else:
        with override_settings(SESSIONKEEPER_URL=standalone_url, SESSIONKEEPER_OPTIONS=options):
            SessionStore().exists(sk.generate_id())  # connected before the pause
            raw_standalone.client_pause(1500, all=True)
            try:
                r = client.get("/set/a/1")
            finally:
                wait_unpaused(raw_standalone)
    assert r.status_code == 200
    key = key_of(client)
    assert sk.is_valid_id(key), "a cookie was issued"
    # After the pause, a write that was queued in Redis would have run by now.
    assert raw_standalone.exists(storage_key(key)) == 0, "the session it names was never stored"
    with override_settings(SESSIONKEEPER_URL=standalone_url):
        r = client.get("/get/a")
        assert r.status_code == 200 and r.json() == {"value": None}
        assert r.cookies[settings.SESSION_COOKIE_NAME].value == "", "an unknown key: the cookie is dropped"
        assert client.get("/set/a/2").status_code == 200
        assert key_of(client) != key, "a fresh session, never the unstored key"
        assert client.get("/get/a").json() == {"value": "2"}


def test_async_methods_fail_open_when_redis_is_down(url, dead_url, no_thread_wrappers, caplog):
    with override_settings(SESSIONKEEPER_URL=url):
        s = SessionStore()
        s["user"] = "alice"
        s.save()
        key = s.session_key
    down = {
        "SESSIONKEEPER_URL": dead_url,
        "SESSIONKEEPER_FAIL_OPEN": True,
        "SESSIONKEEPER_OPTIONS": {"connect_timeout": "300ms"},
    }

    async def main():
        with override_settings(**down):
            during = SessionStore(key)
            assert await during.aget("user") is None
            assert during.session_key == key, "the key, and so the cookie, is kept"
            await during.aset("user", "mallory")
            await during.asave()
            new = SessionStore()
            await new.aset("a", 1)
            await new.asave()
        # Redis lost between the load and the save of a request.
        with override_settings(SESSIONKEEPER_URL=url):
            late = SessionStore(key)
            assert await late.aget("user") == "alice"
            await late.aset("user", "mallory")
        with override_settings(**down):
            await late.asave()
        return new.session_key

    with caplog.at_level(logging.WARNING, logger="sessionkeeper.django"):
        new_key = asyncio.run(main())
    failed = [rec.getMessage() for rec in caplog.records if "continuing without a stored session" in rec.getMessage()]
    assert [m.split(" failed")[0] for m in failed] == [
        "sessionkeeper: loading the session",
        "sessionkeeper: saving the session",
        "sessionkeeper: saving the session",
    ], caplog.text
    assert "session changes dropped" in caplog.text
    with override_settings(SESSIONKEEPER_URL=url):
        assert SessionStore(key).load() == {"user": "alice"}, "nothing was saved during the outage"
        assert not SessionStore().exists(new_key)


def test_missing_url_is_improperly_configured():
    from django.core.exceptions import ImproperlyConfigured

    with override_settings(SESSIONKEEPER_URL=""):
        with pytest.raises(ImproperlyConfigured):
            SessionStore(sk.generate_id()).load()


def test_save_every_request_and_browser_close(url, raw):
    with override_settings(SESSIONKEEPER_URL=url, SESSION_SAVE_EVERY_REQUEST=True, SESSION_EXPIRE_AT_BROWSER_CLOSE=True):
        client = Client()
        r = client.get("/set/a/1")
        cookie = r.cookies[settings.SESSION_COOKIE_NAME]
        assert cookie["max-age"] == "" and cookie["expires"] == "", "a browser-session cookie"
        key = key_of(client)
        assert raw.pttl(storage_key(key)) > (settings.SESSION_COOKIE_AGE - 60) * 1000, "Redis still expires it"
        skipped = SessionStore.engine_stats()["skipped_saves"]
        r = client.get("/get/a")
        assert r.json() == {"value": "1"} and settings.SESSION_COOKIE_NAME in r.cookies
        assert SessionStore.engine_stats()["skipped_saves"] == skipped + 1, "an unchanged save sends nothing"
