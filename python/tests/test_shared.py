"""Shared mode (issue 7): the session cookie is the engine-signed value
``s:<id>.<HMAC-SHA256>`` (express-session's format), issued and verified by
sessionkeeper.sign_cookie / unsign_cookie, in Flask and Django; and one
login shared by a Flask and a Django app on the same Redis."""

from __future__ import annotations

import logging
from urllib.parse import quote

import pytest

import sessionkeeper as sk
import test_django  # noqa: F401 - configures settings and the URLconf
from conftest import hostile_cookies
from django.conf import settings
from django.test import Client, override_settings
from test_flask import make_app

SECRET = "shared-secret-0123456789abcdef-0123456789"
OLD = "previous-secret-0123456789abcdef-012345678"
OTHER = "another-secret-0123456789abcdef-0123456789"
DJANGO_MIDDLEWARE = ["sessionkeeper.django.SessionMiddleware"]


def tampered(value: str) -> str:
    sig_start = value.rindex(".") + 1
    c = value[sig_start]
    return value[:sig_start] + ("A" if c != "A" else "B") + value[sig_start + 1 :]


# -- the functions ---------------------------------------------------------------


def test_sign_and_unsign():
    sid = sk.generate_id()
    signed = sk.sign_cookie(sid, SECRET)
    assert signed.startswith(f"s:{sid}.") and not signed.endswith("=")
    assert sk.unsign_cookie(signed, SECRET) == sid
    assert sk.unsign_cookie(signed, [OTHER, SECRET]) == sid, "any secret verifies"
    assert sk.unsign_cookie(signed, [OTHER]) is None
    assert sk.sign_cookie(sid, SECRET.encode()) == signed, "bytes and str secrets are the same"
    # As framework cookie parsers hand it over.
    for form in [f'"{signed}"', quote(signed, safe=""), signed.replace("+", " ")]:
        assert sk.unsign_cookie(form, SECRET) == sid, form
    for bad in [sid, tampered(signed), signed + "x", "s:", "", "s:" + sid]:
        assert sk.unsign_cookie(bad, SECRET) is None, bad


def test_known_vector_of_express_sessions_cookie_signature():
    # node -e "console.log(require('cookie-signature').sign(id, secret))", as in core's tests.
    sid = "0123456789abcdef0123456789abcdef"
    secret = b"0123456789abcdef0123456789abcdef"
    signed = sk.sign_cookie(sid, secret)
    import base64
    import hashlib
    import hmac

    mac = base64.b64encode(hmac.new(secret, sid.encode(), hashlib.sha256).digest()).decode().rstrip("=")
    assert signed == f"s:{sid}.{mac}"


def test_refusals():
    sid = sk.generate_id()
    with pytest.raises(sk.ConfigError, match="32 bytes"):
        sk.sign_cookie(sid, "short")
    with pytest.raises(sk.ConfigError):
        sk.unsign_cookie("s:x.y", ["short"])
    with pytest.raises(sk.InvalidIdError):
        sk.sign_cookie("not an id", SECRET)
    with pytest.raises(TypeError):
        sk.sign_cookie(sid, 42)
    with pytest.raises(ValueError):
        sk.unsign_cookie("s:x.y", [])


# -- Flask -----------------------------------------------------------------------


def flask_cookie(client) -> str:
    return client.get_cookie("session").value


def test_flask_issues_a_cookie_the_core_verifies(url):
    app = make_app(url, SESSIONKEEPER_SHARED_SECRET=SECRET)
    client = app.test_client()
    client.get("/set/a/1")
    value = flask_cookie(client)
    sid = sk.unsign_cookie(value, SECRET)
    assert sid is not None and value == sk.sign_cookie(sid, SECRET)
    assert app.session_interface.get_store(app).load(sid).data == {"a": "1"}
    assert client.get("/get/a").json == "1"


def test_flask_accepts_a_core_signed_cookie_in_every_escaping(url):
    app = make_app(url, SESSIONKEEPER_SHARED_SECRET=SECRET)
    sid, _ = app.session_interface.get_store(app).create({"user": "ann"})
    signed = sk.sign_cookie(sid, SECRET)
    for form in [signed, quote(signed, safe="")]:  # as Flask/Django, and as express writes it
        client = app.test_client()
        client.set_cookie("session", form)
        assert client.get("/get/user").json == "ann", form
    app.session_interface.get_store(app).destroy(sid)


def test_flask_rejects_tampered_and_unsigned_cookies(url):
    app = make_app(url, SESSIONKEEPER_SHARED_SECRET=SECRET)
    store = app.session_interface.get_store(app)
    sid, _ = store.create({"user": "ann"})
    signed = sk.sign_cookie(sid, SECRET)
    plain = make_app(url)  # the default itsdangerous cookie of the same id
    from itsdangerous import Signer

    itsdangerous_signed = Signer(plain.secret_key, salt="sessionkeeper", key_derivation="hmac", digest_method="sha256")
    for bad in [tampered(signed), sid, sk.sign_cookie(sid, OTHER), itsdangerous_signed.sign(sid).decode()]:
        client = app.test_client()
        client.set_cookie("session", bad)
        assert client.get("/get/user").json is None, bad
        client.get("/set/x/1")
        new_sid = sk.unsign_cookie(flask_cookie(client), SECRET)
        assert new_sid not in (None, sid), "a fresh session, never the presented id"
        store.destroy(new_sid)
    assert store.load(sid).data == {"user": "ann"}, "untouched"
    store.destroy(sid)


def test_flask_rotation(url):
    app = make_app(url, SESSIONKEEPER_SHARED_SECRET=[SECRET, OLD])
    sid, _ = app.session_interface.get_store(app).create({"user": "ann"})
    client = app.test_client()
    client.set_cookie("session", sk.sign_cookie(sid, OLD))
    assert client.get("/get/user").json == "ann", "the old secret still verifies"
    client.get("/set/n/1")
    assert sk.unsign_cookie(flask_cookie(client), [SECRET]) == sid, "re-issued with the first secret"
    app.session_interface.get_store(app).destroy(sid)


def test_flask_short_secret_is_a_config_error(url):
    app = make_app(url, SESSIONKEEPER_SHARED_SECRET="short")
    client = app.test_client()
    client.set_cookie("session", "s:x.y")
    with pytest.raises(sk.ConfigError):
        client.get("/get/a")


# -- Django ----------------------------------------------------------------------


@pytest.fixture
def shared_django(url):
    with override_settings(SESSIONKEEPER_URL=url, SESSIONKEEPER_SHARED_SECRET=SECRET, MIDDLEWARE=DJANGO_MIDDLEWARE):
        yield url


def django_cookie(client):
    return client.cookies[settings.SESSION_COOKIE_NAME]


def test_django_issues_a_cookie_the_core_verifies_and_quoting_round_trips(shared_django):
    # Django quotes a value holding "/" ("s:...a/b..."); find a session whose
    # signature has one (about every other one) and follow it through.
    seen_quoted = False
    for _ in range(40):
        client = Client()
        r = client.get("/set/a/1")
        morsel = django_cookie(client)
        sid = sk.unsign_cookie(morsel.value, SECRET)
        assert sid is not None and morsel.value == sk.sign_cookie(sid, SECRET)
        assert sk.unsign_cookie(morsel.coded_value, SECRET) == sid, "the quoted form verifies too"
        assert sk.Store(shared_django).load(sid).data == {"a": "1"}
        if "/" in morsel.value:
            assert f'{settings.SESSION_COOKIE_NAME}="s:' in str(r.cookies), str(r.cookies)
            assert client.get("/get/a").json() == {"value": "1"}, "the quoted cookie comes back"
            client.get("/set/b/2")
            assert sk.unsign_cookie(django_cookie(client).value, SECRET) == sid
            seen_quoted = True
            break
    assert seen_quoted


def test_django_accepts_a_core_signed_cookie_in_every_escaping(shared_django):
    sid, _ = sk.Store(shared_django).create({"user": "bob"})
    signed = sk.sign_cookie(sid, SECRET)
    name = settings.SESSION_COOKIE_NAME
    client = Client()
    client.cookies[name] = signed  # Django's own quoting when it sends it back
    assert client.get("/get/user").json() == {"value": "bob"}
    for raw in [signed, f'"{signed}"', quote(signed, safe="")]:  # raw Cookie headers (express percent-encodes)
        assert Client().get("/get/user", HTTP_COOKIE=f"{name}={raw}").json() == {"value": "bob"}, raw
    sk.Store(shared_django).destroy(sid)


def test_django_rejects_tampered_and_unsigned_cookies(shared_django):
    sid, _ = sk.Store(shared_django).create({"user": "bob"})
    signed = sk.sign_cookie(sid, SECRET)
    for bad in [tampered(signed), sid, sk.sign_cookie(sid, OTHER)]:
        client = Client()
        client.cookies[settings.SESSION_COOKIE_NAME] = bad
        r = client.get("/get/user")
        assert r.json() == {"value": None}, bad
        assert django_cookie(client).value == "", "the unverified cookie is deleted"
        client.get("/set/x/1")
        new_sid = sk.unsign_cookie(django_cookie(client).value, SECRET)
        assert new_sid not in (None, sid), "a fresh session, never the presented key"
    assert sk.Store(shared_django).load(sid).data == {"user": "bob"}, "untouched"


def test_django_any_cookie_is_no_session(shared_django):
    sid, _ = sk.Store(shared_django).create({"user": "bob"})
    name = settings.SESSION_COOKIE_NAME
    for bad in hostile_cookies(sk.sign_cookie(sid, SECRET)):
        r = Client().get("/get/user", HTTP_COOKIE=f"{name}={bad}")
        assert r.status_code == 200, repr(bad[:40])
        assert r.json() == {"value": None}, repr(bad[:40])
    assert sk.Store(shared_django).load(sid).data == {"user": "bob"}, "untouched"


def test_django_rotation_and_login(shared_django):
    sid, _ = sk.Store(shared_django).create({"n": 1})
    with override_settings(SESSIONKEEPER_SHARED_SECRET=[SECRET, OLD]):
        client = Client()
        client.cookies[settings.SESSION_COOKIE_NAME] = sk.sign_cookie(sid, OLD)
        assert client.get("/get/n").json() == {"value": 1}
        client.get("/login/cy")  # cycle_key: a new key, signed with the first secret
        new_sid = sk.unsign_cookie(django_cookie(client).value, [SECRET])
        assert new_sid not in (None, sid)
        assert sk.Store(shared_django).load(new_sid).data == {"n": 1, "user": "cy"}


def test_django_without_shared_mode_our_middleware_is_djangos(url):
    with override_settings(SESSIONKEEPER_URL=url, MIDDLEWARE=DJANGO_MIDDLEWARE):
        client = Client()
        client.get("/set/a/1")
        key = django_cookie(client).value
        assert sk.is_valid_id(key), "the bare key, as with Django's middleware"
        assert client.get("/get/a").json() == {"value": "1"}


def test_django_warns_when_its_own_middleware_meets_a_signed_cookie(shared_django, caplog):
    from sessionkeeper import django as skd

    skd._warned_shared = False
    sid, _ = sk.Store(shared_django).create({"user": "bob"})
    with override_settings(MIDDLEWARE=["django.contrib.sessions.middleware.SessionMiddleware"]):
        client = Client()
        client.cookies[settings.SESSION_COOKIE_NAME] = sk.sign_cookie(sid, SECRET)
        with caplog.at_level(logging.WARNING, logger="sessionkeeper.django"):
            assert client.get("/get/user").json() == {"value": None}
    assert "sessionkeeper.django.SessionMiddleware" in caplog.text


# -- one login, two frameworks -----------------------------------------------------


def test_flask_and_django_share_one_login(url):
    flask_app = make_app(url, SESSIONKEEPER_SHARED_SECRET=SECRET, SESSION_COOKIE_NAME="shared")
    with override_settings(
        SESSIONKEEPER_URL=url, SESSIONKEEPER_SHARED_SECRET=SECRET, MIDDLEWARE=DJANGO_MIDDLEWARE, SESSION_COOKIE_NAME="shared"
    ):
        browser = flask_app.test_client()
        browser.get("/set/user_id/42")  # logged in on Flask
        cookie = browser.get_cookie("shared").value
        django = Client()
        django.cookies["shared"] = cookie
        assert django.get("/get/user_id").json() == {"value": "42"}, "Django sees the Flask login"
        django.get("/set/theme/dark")
        assert browser.get("/all").json == {"user_id": "42", "theme": "dark"}, "and Flask Django's change"
        django.get("/flush")  # log out on Django
        assert browser.get("/get/user_id").json is None, "gone everywhere"
