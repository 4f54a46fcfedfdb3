"""A real Flask app through its test client, on standalone Redis and the
Cluster, with sessionkeeper.flask.SessionInterface."""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time

import pytest
from flask import Flask, jsonify, session
from itsdangerous import Signer

import sessionkeeper as sk
from conftest import BAD_VALUES, dropped_corrupt, hostile_cookies, storage_key, wait_unpaused
from sessionkeeper.flask import SessionInterface

SECRET = "test-secret-key"


def make_app(url: str, **config) -> Flask:
    app = Flask(__name__)
    app.testing = True
    app.secret_key = SECRET
    app.config["SESSIONKEEPER_URL"] = url
    app.config.update(config)
    app.session_interface = SessionInterface()
    app.barrier = None  # type: ignore[attr-defined]

    @app.get("/set/<key>/<value>")
    def set_value(key, value):
        session[key] = value
        return "ok"

    @app.get("/get/<key>")
    def get_value(key):
        return jsonify(session.get(key))

    @app.get("/all")
    def all_values():
        return jsonify(dict(session))

    @app.get("/nothing")
    def nothing():
        return "no session used"

    @app.get("/clear")
    def clear():
        session.clear()
        return "cleared"

    @app.get("/permanent")
    def permanent():
        session.permanent = True
        session["p"] = 1
        return "ok"

    @app.get("/login/<user>")
    def login(user):
        app.session_interface.regenerate(session)
        session["user"] = user
        return "ok"

    @app.get("/nested")
    def nested():
        session.setdefault("cart", {"items": []})
        session["cart"]["items"].append(len(session["cart"]["items"]))  # no session.modified
        return jsonify(session["cart"])

    @app.get("/slow-set/<key>/<value>")
    def slow_set(key, value):
        session.get(key)  # loaded before waiting
        app.barrier.wait(10)  # everyone has loaded
        app.barrier.wait(10)  # the test may act in between
        session[key] = value
        return "ok"

    @app.get("/bad-value")
    def bad_value():
        session["x"] = object()
        return "never saved"

    @app.get("/async-set/<key>/<value>")
    async def async_set(key, value):
        import asyncio

        await asyncio.sleep(0)
        session[key] = value
        return "ok"

    @app.get("/async-get/<key>")
    async def async_get(key):
        return jsonify(session.get(key))

    return app


def sid_of(client, name="session") -> str:
    cookie = client.get_cookie(name)
    assert cookie is not None, "no session cookie"
    return Signer(SECRET, salt="sessionkeeper", key_derivation="hmac", digest_method="sha256").unsign(
        cookie.value
    ).decode()


def set_cookie_headers(response) -> list[str]:
    return response.headers.getlist("Set-Cookie")


def test_create_read_update_delete(url, raw):
    app = make_app(url)
    client = app.test_client()
    r = client.get("/nothing")
    assert set_cookie_headers(r) == [], "an untouched session sets no cookie"
    r = client.get("/set/a/1")
    assert r.status_code == 200
    (header,) = set_cookie_headers(r)
    assert "HttpOnly" in header and "Path=/" in header and "Expires" not in header
    assert "Cookie" in r.headers["Vary"]
    sid = sid_of(client)
    assert sk.is_valid_id(sid)
    key = storage_key(sid)
    assert app.session_interface.get_store(app).load(sid).data == {"a": "1"}
    assert client.get("/get/a").json == "1"

    store = app.session_interface.get_store(app)
    before = store.stats()
    client.get("/set/b/2")
    client.get("/set/a/3")
    after = store.stats()
    assert after["keys_written"] - before["keys_written"] == 2, "only the changed key is written"
    assert client.get("/all").json == {"a": "3", "b": "2"}
    assert sid_of(client) == sid, "the id stays the same across updates"

    skipped = store.stats()["skipped_saves"]
    assert set_cookie_headers(client.get("/get/a")) == [], "a read of a non-permanent session sets no cookie"
    assert store.stats()["skipped_saves"] == skipped + 1, "an unchanged session sends nothing"

    r = client.get("/clear")
    (header,) = set_cookie_headers(r)
    assert "Expires=Thu, 01 Jan 1970" in header
    assert raw.exists(key) == 0
    assert client.get_cookie("session") is None
    assert client.get("/all").json == {}


def test_expiry(url, raw):
    app = make_app(url, PERMANENT_SESSION_LIFETIME=dt.timedelta(seconds=1))
    client = app.test_client()
    client.get("/set/a/1")
    sid = sid_of(client)
    assert 0 < raw.pttl(storage_key(sid)) <= 1000
    time.sleep(1.3)
    assert client.get("/get/a").json is None
    assert raw.exists(storage_key(sid)) == 0
    client.get("/set/a/2")
    assert sid_of(client) != sid, "an expired id is never reused"


def test_reads_slide_the_expiry(url, raw):
    app = make_app(url, PERMANENT_SESSION_LIFETIME=dt.timedelta(seconds=2))
    client = app.test_client()
    client.get("/set/a/1")
    for _ in range(3):
        time.sleep(0.8)
        assert client.get("/get/a").json == "1"


def test_cookie_attributes(url):
    app = make_app(
        url,
        SESSION_COOKIE_NAME="sk",
        SESSION_COOKIE_DOMAIN="example.test",
        SESSION_COOKIE_SECURE=True,
        SESSION_COOKIE_SAMESITE="Strict",
        SESSION_COOKIE_HTTPONLY=False,
        SESSION_COOKIE_PATH="/",
        PERMANENT_SESSION_LIFETIME=dt.timedelta(hours=2),
    )
    client = app.test_client()
    r = client.get("/permanent", base_url="https://example.test")
    (header,) = set_cookie_headers(r)
    assert header.startswith("sk=")
    for part in ("Domain=example.test", "Secure", "SameSite=Strict", "Path=/", "Expires="):
        assert part in header, part
    assert "HttpOnly" not in header
    expires = r.headers.getlist("Set-Cookie")[0].split("Expires=")[1].split(";")[0]
    when = dt.datetime.strptime(expires, "%a, %d %b %Y %H:%M:%S GMT").replace(tzinfo=dt.timezone.utc)
    assert abs((when - dt.datetime.now(dt.timezone.utc)).total_seconds() - 7200) < 60


def test_refresh_each_request(url):
    app = make_app(url)
    client = app.test_client()
    client.get("/permanent")
    assert len(set_cookie_headers(client.get("/get/p"))) == 1, "permanent sessions refresh the cookie"
    app.config["SESSION_REFRESH_EACH_REQUEST"] = False
    assert set_cookie_headers(client.get("/get/p")) == []


def test_regenerate_on_login(url, raw):
    app = make_app(url)
    client = app.test_client()
    client.get("/set/cart/3")
    old = sid_of(client)
    client.get("/login/alice")
    new = sid_of(client)
    assert new != old
    assert raw.exists(storage_key(old)) == 0
    assert client.get("/all").json == {"cart": "3", "user": "alice"}


def test_forged_and_unknown_cookies_get_a_fresh_id(url):
    app = make_app(url)
    client = app.test_client()
    client.set_cookie("session", "a" * 32 + ".forged")
    client.get("/set/a/1")
    assert sid_of(client) != "a" * 32
    chosen = "b" * 40
    signer = Signer(SECRET, salt="sessionkeeper", key_derivation="hmac", digest_method="sha256")
    client.set_cookie("session", signer.sign(chosen).decode())
    assert client.get("/get/a").json is None
    client.get("/set/a/1")
    assert sid_of(client) != chosen, "a client-chosen id never becomes a session"


def test_any_cookie_is_no_session(url):
    app = make_app(url)
    client = app.test_client()
    client.get("/set/a/1")
    real = client.get_cookie("session").value
    for bad in hostile_cookies(real):
        r = app.test_client().get("/get/a", headers={"Cookie": f"session={bad}"})
        assert r.status_code == 200, repr(bad[:40])
        assert r.json is None, repr(bad[:40])
    assert client.get("/get/a").json == "1", "the real session is untouched"


def test_an_oversized_session_is_an_error_and_keeps_what_was_stored(url):
    app = make_app(url, SESSIONKEEPER_OPTIONS={"max_size": 2000})
    client = app.test_client()
    client.get("/set/a/1")
    with pytest.raises(sk.TooLargeError, match="max_size"):
        client.get("/set/big/" + "x" * 3000)
    assert client.get("/get/a").json == "1", "the stored session is as before"
    assert client.get("/get/big").json is None


def test_secret_key_rotation(url):
    app = make_app(url)
    client = app.test_client()
    client.get("/set/a/1")
    app.secret_key = "new-secret"
    app.config["SECRET_KEY_FALLBACKS"] = [SECRET]
    assert client.get("/get/a").json == "1"
    app.config["SECRET_KEY_FALLBACKS"] = []
    assert client.get("/get/a").json is None


def test_the_engine_signs_cookies_as_itsdangerous_does():
    import hashlib

    from sessionkeeper._native import SaltedSigner

    for keys in (["k"], [b"fallback", "current key"], ["x" * 100]):
        ours = SaltedSigner(keys[::-1], "sessionkeeper")
        theirs = Signer(keys, salt="sessionkeeper", key_derivation="hmac", digest_method=hashlib.sha256)
        for value in ("a" * 32, sk.generate_id(), "with.dots.inside", ""):
            assert ours.sign(value) == theirs.sign(value).decode()
            assert ours.unsign(theirs.sign(value).decode()) == value
            old = Signer(keys[0], salt="sessionkeeper", key_derivation="hmac", digest_method=hashlib.sha256)
            assert ours.unsign(old.sign(value).decode()) == value, "every key verifies"
        signed = ours.sign("x")
        tampered = signed[:-1] + ("B" if signed.endswith("A") else "A")
        for forged in ("a" * 32, "a" * 32 + ".forged", tampered, "", "."):
            assert ours.unsign(forged) is None


def test_a_subclass_with_another_digest_signs_through_itsdangerous(url):
    import hashlib

    class Sha1Interface(SessionInterface):
        digest_method = staticmethod(hashlib.sha1)

    app = make_app(url)
    app.session_interface = Sha1Interface()
    client = app.test_client()
    client.get("/set/a/1")
    cookie = client.get_cookie("session").value
    sid = Signer(SECRET, salt="sessionkeeper", key_derivation="hmac", digest_method=hashlib.sha1).unsign(cookie)
    assert sk.is_valid_id(sid.decode())
    assert client.get("/get/a").json == "1"


def test_nested_changes_are_saved_without_modified(url):
    app = make_app(url)
    client = app.test_client()
    client.get("/nested")
    client.get("/nested")
    assert client.get("/nested").json == {"items": [0, 1, 2]}


def test_concurrent_requests_changing_different_keys_keep_both(url):
    app = make_app(url)
    client = app.test_client()
    client.get("/set/base/0")
    cookie = client.get_cookie("session").value
    app.barrier = threading.Barrier(2)
    results = []

    def request(path):
        c = app.test_client()
        c.set_cookie("session", cookie)
        results.append(c.get(path).status_code)

    threads = [threading.Thread(target=request, args=(p,)) for p in ("/slow-set/x/1", "/slow-set/y/2")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(15)
    assert results == [200, 200]
    assert client.get("/all").json == {"base": "0", "x": "1", "y": "2"}


def test_logout_elsewhere_is_not_undone(url):
    app = make_app(url)
    client = app.test_client()
    client.get("/set/user/alice")
    sid = sid_of(client)
    cookie = client.get_cookie("session").value
    app.barrier = threading.Barrier(2)
    out = {}

    def slow():
        c = app.test_client()
        c.set_cookie("session", cookie)
        out["response"] = c.get("/slow-set/cart/9")

    t = threading.Thread(target=slow)
    t.start()
    app.barrier.wait(10)  # the slow request has loaded the session
    app.session_interface.get_store(app).destroy(sid)  # a logout in another tab
    app.barrier.wait(10)
    t.join(15)
    (header,) = set_cookie_headers(out["response"])
    assert "Expires=Thu, 01 Jan 1970" in header, "the stale request clears its cookie"
    assert app.session_interface.get_store(app).load(sid) is None, "the session is not re-created"


def test_async_views(url):
    app = make_app(url)
    client = app.test_client()
    client.get("/async-set/a/1")
    assert client.get("/async-get/a").json == "1"
    assert client.get("/get/a").json == "1"


def test_unsupported_value_is_a_type_error(url):
    app = make_app(url)
    with pytest.raises(TypeError, match="session key \"x\""):
        app.test_client().get("/bad-value")


@pytest.mark.parametrize("value, reported", BAD_VALUES)
def test_corrupt_value_gives_a_fresh_session(url, raw, caplog, value, reported):
    app = make_app(url)
    client = app.test_client()
    client.get("/set/a/1")
    sid = sid_of(client)
    raw.set(storage_key(sid), value)
    with caplog.at_level(logging.WARNING, logger="sessionkeeper.flask"):
        r = client.get("/get/a")
    assert r.status_code == 200 and r.json is None
    assert dropped_corrupt(caplog) == (1 if reported else 0), caplog.text
    assert (raw.get(storage_key(sid)) is None) == reported, "a record of ours that cannot be read is removed"
    client.get("/set/a/2")
    assert sid_of(client) != sid, "a fresh session, never the old id"
    assert client.get("/get/a").json == "2"


def test_no_secret_key_gives_flasks_null_session(url):
    app = make_app(url)
    app.secret_key = None
    with pytest.raises(RuntimeError, match="secret key"):
        app.test_client().get("/set/a/1")


def test_missing_url_is_a_config_error():
    app = make_app("")
    with pytest.raises(sk.ConfigError, match="SESSIONKEEPER_URL"):
        app.test_client().get("/set/a/1")


# -- SessionInterface(...) arguments ---------------------------------------------


def test_url_and_engine_options_as_arguments_override_the_config(url, raw, dead_url):
    app = make_app(dead_url, SESSIONKEEPER_OPTIONS={"key_prefix": "cfg:"})
    app.session_interface = SessionInterface(url, key_prefix="arg:", idle_ttl="30s")
    client = app.test_client()
    assert client.get("/set/a/1").status_code == 200
    sid = sid_of(client)
    assert raw.exists(storage_key(sid, "cfg:")) == 0 and raw.exists(storage_key(sid)) == 0
    assert 25_000 < raw.pttl(storage_key(sid, "arg:")) <= 30_000, "idle_ttl, not PERMANENT_SESSION_LIFETIME"
    assert client.get("/get/a").json == "1"


def test_a_store_passed_in_is_used_as_it_is(url, raw, dead_url):
    app = make_app(dead_url)
    app.session_interface = SessionInterface(store=sk.Store(url, key_prefix="own:"))
    client = app.test_client()
    client.get("/set/a/1")
    assert raw.exists(storage_key(sid_of(client), "own:")) == 1
    assert client.get("/get/a").json == "1"


def test_fail_open_as_an_argument_overrides_the_config(dead_url):
    closed = make_app(dead_url, SESSIONKEEPER_FAIL_OPEN=True)
    closed.session_interface = SessionInterface(fail_open=False, connect_timeout="300ms")
    with pytest.raises(sk.ConnectionError):
        closed.test_client().get("/set/a/1")
    opened = make_app(dead_url, SESSIONKEEPER_FAIL_OPEN=False)
    opened.session_interface = SessionInterface(fail_open=True, connect_timeout="300ms")
    r = opened.test_client().get("/set/a/1")
    assert r.status_code == 200 and set_cookie_headers(r) == []


def test_shared_secret_as_an_argument_turns_on_shared_mode(url):
    secret = "shared-secret-0123456789abcdef-0123456789"
    app = make_app(url)
    app.session_interface = SessionInterface(shared_secret=secret)
    client = app.test_client()
    client.get("/set/a/1")
    sid = sk.unsign_cookie(client.get_cookie("session").value, secret)
    assert sid is not None and app.session_interface.get_store(app).load(sid).data == {"a": "1"}


def test_migration_as_an_argument_reads_flask_session_sessions(url, raw):
    import secrets

    flask_session_id = secrets.token_urlsafe(32)  # its cookie: the bare id
    raw.set("session:" + flask_session_id, b'{"counter": 2}')
    app = make_app(url)
    app.session_interface = SessionInterface(migration=True)
    client = app.test_client()
    client.set_cookie("session", flask_session_id)
    assert client.get("/get/counter").json == 2
    assert raw.exists("session:" + flask_session_id) == 0, "migrated"


# -- Redis down ------------------------------------------------------------------


def test_redis_down_fails_open_by_default(url, dead_url, caplog):
    app = make_app(url)
    client = app.test_client()
    client.get("/set/user/alice")
    cookie = client.get_cookie("session").value

    down = make_app(dead_url, SESSIONKEEPER_OPTIONS={"connect_timeout": "300ms"})
    c = down.test_client()
    c.set_cookie("session", cookie)
    with caplog.at_level(logging.WARNING, logger="sessionkeeper.flask"):
        started = time.monotonic()
        r = c.get("/get/user")
        assert time.monotonic() - started < 3
    assert r.status_code == 200 and r.json is None
    assert set_cookie_headers(r) == [], "the user's cookie is kept for when Redis is back"
    r = c.get("/set/other/1")
    assert r.status_code == 200 and set_cookie_headers(r) == []
    assert "continuing without a stored session" in caplog.text
    # A new visitor during the outage: the write is dropped, not a 500.
    r = down.test_client().get("/set/a/1")
    assert r.status_code == 200
    # Redis back: the user is still logged in.
    assert client.get("/get/user").json == "alice"


def test_redis_down_fails_closed_when_configured(dead_url):
    app = make_app(dead_url, SESSIONKEEPER_FAIL_OPEN=False, SESSIONKEEPER_OPTIONS={"connect_timeout": "300ms"})
    client = app.test_client()
    with pytest.raises(sk.ConnectionError) as info:
        client.get("/set/a/1")
    assert info.value.temporary
    signer = Signer(SECRET, salt="sessionkeeper", key_derivation="hmac", digest_method="sha256")
    client.set_cookie("session", signer.sign(sk.generate_id()).decode())
    with pytest.raises(sk.ConnectionError):
        client.get("/get/a")


def test_paused_redis_is_bounded_by_command_timeout(standalone_url, raw_standalone):
    app = make_app(standalone_url, SESSIONKEEPER_FAIL_OPEN=False, SESSIONKEEPER_OPTIONS={"command_timeout": "200ms"})
    client = app.test_client()
    client.get("/set/a/1")
    raw_standalone.client_pause(1500, all=True)
    try:
        started = time.monotonic()
        with pytest.raises(sk.TimeoutError):
            client.get("/get/a")
        assert time.monotonic() - started < 1.0
        app.config["SESSIONKEEPER_FAIL_OPEN"] = True
        r = client.get("/get/a")
        assert r.status_code == 200 and r.json is None
    finally:
        wait_unpaused(raw_standalone)
    assert client.get("/get/a").json == "1"
