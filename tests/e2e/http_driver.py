"""The shared login over plain HTTP: a cookie jar (urllib + http.cookiejar)
talks to the Rails, Flask and Express apps that tests/e2e/apps.sh started on
three ports of 127.0.0.1 (cookies are per host, not per port, so one jar
holds the one shared cookie for all three).

For every order of the three apps (6 rotations; the first is the issue's:
log in on Rails, change a key on Flask, log out on Express) it checks that a
login on one app is seen by the other two with the same integer type, that a
key changed on one is read by the others, that a logout on the third ends the
session everywhere (and in Redis, read through the store API), and that the
old cookie replayed, a cookie signed with another secret and a bare id are
refused by every app. The cookie's format is checked independently of the
engine: express-session's ``s:<id>.<base64 HMAC-SHA256>``. And every app reads
the cookie in each escaping the frameworks write it in (raw, percent-encoded,
double-quoted).

Run with the environment of apps.sh's env.sh (``SK_REDIS_URL``, ``E2E_*``) by
the venv's Python (it imports ``sessionkeeper`` to look at Redis). With
``--demo``, runs only the first rotation and narrates it.
Prints ``e2e http: N passed, M failed``; exits 1 when anything failed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.cookiejar
import itertools
import json
import os
import re
import sys
import urllib.error
import urllib.parse
import urllib.request

import sessionkeeper

COOKIE = os.environ["E2E_COOKIE"]
SECRET = os.environ["E2E_SECRET"].encode()
PORTS = {
    "Rails": int(os.environ["E2E_RAILS_PORT"]),
    "Flask": int(os.environ["E2E_FLASK_PORT"]),
    "Express": int(os.environ["E2E_EXPRESS_PORT"]),
}
# How each language reports the integer user_id (the apps' /state).
INT_TYPE = {"Rails": "Integer", "Flask": "int", "Express": "number (integer)"}
LANGUAGE = {"Rails": "Ruby", "Flask": "Python", "Express": "JavaScript"}
# The apps' window (1 hour): the driver's own loads slide sessions by it too.
STORE = sessionkeeper.Store(os.environ["SK_REDIS_URL"], key_prefix=os.environ["E2E_KEY_PREFIX"], idle_ttl="1h")

DEMO = "--demo" in sys.argv
passed = 0
failed = 0
step = 0


def say(text: str) -> None:
    print(text, flush=True)


def narrate(app: str, text: str) -> None:
    """A numbered line of the demo's story."""
    global step
    step += 1
    say(f"  {step}. {app + ':':<9} {text}")


def check(cond: bool, what: str, detail: object = "") -> bool:
    global passed, failed
    if cond:
        passed += 1
    else:
        failed += 1
        say(f"FAIL {what}" + (f": {detail}" if detail != "" else ""))
    return cond


class Browser:
    """One user agent: a cookie jar shared by the three apps' ports."""

    def __init__(self) -> None:
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))

    def url(self, app: str, path: str) -> str:
        return f"http://127.0.0.1:{PORTS[app]}{path}"

    def get(self, app: str, path: str = "/") -> str:
        with self.opener.open(self.url(app, path), timeout=20) as res:
            return res.read().decode()

    def state(self, app: str) -> dict:
        return json.loads(self.get(app, "/state"))

    def post(self, app: str, path: str, fields: dict) -> str:
        """Submits a form the way a browser does: Rails forms carry the CSRF
        token of the page they came from. Redirects are followed."""
        fields = dict(fields)
        if app == "Rails":
            page = self.get(app, "/")
            token = re.search(r'name="authenticity_token" value="([^"]+)"', page)
            if not check(token is not None, "Rails page carries a CSRF token", page[:300]):
                return ""
            fields["authenticity_token"] = token.group(1).replace("&#43;", "+").replace("&amp;", "&")
        data = urllib.parse.urlencode(fields).encode()
        with self.opener.open(self.url(app, path), data=data, timeout=20) as res:
            return res.read().decode()

    def cookie(self) -> str | None:
        values = [c.value for c in self.jar if c.name == COOKIE]
        check(len(values) <= 1, "one shared cookie in the jar", values)
        return values[0] if values else None

    def check_cookie_attributes(self, after: str) -> None:
        """Whoever issued the shared cookie last, it has the attributes all
        three apps are configured with: Path=/, HttpOnly, SameSite=Lax, and an
        expiry (the apps' hour), not a browser-session cookie."""
        for c in self.jar:
            if c.name != COOKIE:
                continue
            attrs = {k.lower(): v for k, v in c._rest.items()}  # noqa: SLF001 (cookiejar keeps them there)
            check(c.path == "/", f"{after}: the shared cookie's Path is /", c.path)
            check("httponly" in attrs, f"{after}: the shared cookie is HttpOnly", attrs)
            check(str(attrs.get("samesite", "")).lower() == "lax", f"{after}: the shared cookie is SameSite=Lax", attrs)
            check(c.expires is not None, f"{after}: the shared cookie has an expiry (not a browser-session cookie)")


def state_with_cookie(app: str, cookie_value: str) -> dict:
    """GET /state with exactly this cookie (a replay), no jar."""
    req = urllib.request.Request(
        f"http://127.0.0.1:{PORTS[app]}/state", headers={"Cookie": f"{COOKIE}={cookie_value}"}
    )
    with urllib.request.urlopen(req, timeout=20) as res:
        return json.loads(res.read().decode())


def session_id(cookie_value: str | None) -> str | None:
    """The id in a shared cookie, after checking its signature here, outside
    the engine: express-session's cookie-signature format."""
    if cookie_value is None:
        return None
    raw = urllib.parse.unquote(cookie_value.strip('"'))
    m = re.fullmatch(r"s:([A-Za-z0-9_-]{32,128})\.([A-Za-z0-9+/]{43})", raw)
    if not check(m is not None, "cookie is s:<id>.<43 base64 characters>", raw):
        return None
    sid, signature = m.groups()
    want = base64.b64encode(hmac.new(SECRET, sid.encode(), hashlib.sha256).digest()).decode().rstrip("=")
    check(hmac.compare_digest(signature, want), "cookie signature is HMAC-SHA256(secret, id) (cookie-signature)")
    return sid


def signed_cookie(sid: str, secret: bytes) -> str:
    sig = base64.b64encode(hmac.new(secret, sid.encode(), hashlib.sha256).digest()).decode().rstrip("=")
    return urllib.parse.quote(f"s:{sid}.{sig}", safe="")


def rotation(login: str, change: str, logout: str, n: int) -> None:
    apps = list(PORTS)
    b = Browser()
    name, uid, color = ("Ann", 42, "green") if DEMO else (f"User{n}", 4200 + n, f"color{n}")
    for app in apps:
        s = b.state(app)
        check(not s["logged_in"], f"{app}: nobody logged in before the login", s)

    # 1. Log in on one app.
    page = b.post(login, "/login", {"name": name, "user_id": str(uid)})
    check(f"Logged in as {name}, user_id {uid}" in page, f"{login}: the page after login shows the user", page[:400])
    cookie = b.cookie()
    sid = session_id(cookie)
    b.check_cookie_attributes(f"login on {login}")
    check(sid is not None and STORE.exists(sid), f"{login}: the session is in Redis after login")
    loaded = STORE.load(sid) if sid else None
    stored = loaded.data if loaded else {}
    check(stored.get("user_id") == uid and type(stored.get("user_id")) is int,
          f"{login}: user_id is stored as an integer", stored)
    if DEMO:
        narrate(login, f"logged in as {name} (user_id {uid}); cookie {COOKIE}={(cookie or '(none)')[:28]}...")

    # 2. Every app sees the user, with the integer type of its language.
    for app in apps:
        s = b.state(app)
        ok = check(s["logged_in"] and s["name"] == name and s["user_id"] == uid,
                   f"{app}: sees the user logged in on {login}", s)
        check(s["user_id_type"] == INT_TYPE[app], f"{app}: user_id is a {INT_TYPE[app]}", s)
        if DEMO and ok and app != login:
            narrate(app, f"sees {s['name']}, user_id {s['user_id']} (a {LANGUAGE[app]} {s['user_id_type']})")

    # 3. Change a key on the second app; the others read it.
    page = b.post(change, "/color", {"color": color})
    check(f"color: {color}" in page, f"{change}: the page shows the new color", page[:400])
    # Before any other app re-issues it (Rails does on every request).
    b.check_cookie_attributes(f"a change on {change}")
    for app in apps:
        s = b.state(app)
        check(s["color"] == color and s["user_id"] == uid, f"{app}: reads the color set on {change}", s)
    if DEMO:
        narrate(change, f"sets color = {color!r}; " + ", ".join(f"{a} reads {b.state(a)['color']!r}" for a in apps if a != change))
    check(session_id(b.cookie()) == sid, "the session id did not change after login")

    # 4. Log out on the third app: gone everywhere, and in Redis.
    replay = b.cookie()
    page = b.post(logout, "/logout", {})
    check("Not logged in" in page, f"{logout}: the page after logout shows nobody", page[:400])
    check(sid is not None and not STORE.exists(sid), f"{logout}: the session is gone from Redis after logout")
    for app in apps:
        s = b.state(app)
        check(not s["logged_in"] and s["color"] is None, f"{app}: nobody logged in after logout on {logout}", s)
        check("Not logged in" in b.get(app, "/"), f"{app}: the page shows nobody after logout on {logout}")
    if DEMO:
        narrate(logout, "logs out; " + ", ".join(f"{a}: {'STILL LOGGED IN' if b.state(a)['logged_in'] else 'nobody'}" for a in apps)
                + "; the session is " + ("still in Redis" if sid and STORE.exists(sid) else "gone from Redis"))

    # 5. The old cookie replayed, a forged one and a bare id are refused everywhere.
    other = b"another secret, also 32 bytes long or more!"
    for app in apps:
        if sid is None or replay is None:
            check(False, "a shared cookie to replay")
            break
        for label, value in (("the old cookie", replay), ("a cookie signed with another secret", signed_cookie(sid, other)),
                             ("a bare session id", sid)):
            s = state_with_cookie(app, value)
            check(not s["logged_in"], f"{app}: refuses {label}", s)
    check(sid is not None and not STORE.exists(sid), "replaying the old cookie did not bring the session back")
    if DEMO:
        narrate("All", "the old cookie, replayed, is refused by Rails, Flask and Express (so is one signed with another secret)")


def cookie_escapes() -> None:
    """Each framework escapes the cookie differently when it writes it; every
    app must read every form. A session whose signature holds both '+' and '/'
    (the characters the escapings differ on) is stored through the engine and
    sent in each form, as each framework would have written it."""
    while True:
        sid = sessionkeeper.generate_id()
        signed = signed_cookie(sid, SECRET)
        raw = urllib.parse.unquote(signed)
        if "+" in raw and "/" in raw:
            break
    check(STORE.insert(sid, {"user_id": 77, "name": "Esc"}) is not None, "a session stored through the engine")
    forms = {
        "raw, as Werkzeug (Flask) writes it": raw,
        "percent-encoded, as Rack (Rails) and express-session write it": signed,
        "in double quotes, as Django writes it": f'"{raw}"',
    }
    ok = True
    for app in PORTS:
        for label, value in forms.items():
            s = state_with_cookie(app, value)
            ok &= check(s["logged_in"] and s["user_id"] == 77 and s["name"] == "Esc",
                        f"{app}: reads the cookie {label}", s)
    STORE.destroy(sid)
    say(f"{'ok  ' if ok else 'FAIL'} http: every app reads the cookie as Werkzeug, Rack/express-session and Django escape it")


def hostile_cookies() -> None:
    """A client may send anything as the cookie: every app answers it as no
    session (HTTP 200, nobody logged in), never an error page. Fixed cases
    for each way a shared cookie can be wrong, then random ones (fixed seed,
    so a failure reproduces)."""
    sid = sessionkeeper.generate_id()
    check(STORE.insert(sid, {"user_id": 99, "name": "Target"}) is not None, "a session stored through the engine")
    good = urllib.parse.unquote(signed_cookie(sid, SECRET))
    sig = good.rsplit(".", 1)[1]
    other = sessionkeeper.generate_id()
    cases = [
        "", "s:", "s:.", ".", "s:" + sid, "s:" + sid + ".", sid + "." + sig, "s:" + sid + "." + sig[:-1],
        "s:" + sid + "." + sig + "A", "s:" + other + "." + sig, "s:" + sid + "." + sig.swapcase(),
        "s:" + sid + ".." + sig, "s:" + sid + "." + sig + "." + sig, "s:" + sid[:-1] + "*." + sig,
        "s:" + "a" * 4000 + "." + sig, "%zz", "%00", "%C3%A9", "s%3A" + sid + "%2E%2E", '"', '""', '"s:"',
        "s:é." + sig, "s:" + sid + "%00." + sig, "=" * 50, "s:" + sid + "." + "=" * 43, "s:" + sid + ". " + sig,
    ]
    state = 0x9E3779B97F4A7C15
    alphabet = "aZ09_-.:s%+/=\"é! "
    def below(n: int) -> int:
        nonlocal state
        state = (state * 6364136223846793005 + 1442695040888963407) % 2**64
        return (state >> 33) % n
    for _ in range(60):
        cases.append("".join(alphabet[below(len(alphabet))] for _ in range(below(140))))
    ok = True
    for app in PORTS:
        for value in cases:
            try:
                s = state_with_cookie(app, value)
            except urllib.error.HTTPError as e:
                ok &= check(False, f"{app}: the cookie {value[:60]!r} answered HTTP {e.code}")
                continue
            ok &= check(not s["logged_in"], f"{app}: the cookie {value[:60]!r} is no session", s)
    check(STORE.load(sid) is not None, "the targeted session is still there, untouched")
    STORE.destroy(sid)
    say(f"{'ok  ' if ok else 'FAIL'} http: {len(cases)} malformed, forged and random cookies are no session on every app")


def main() -> int:
    orders = [("Rails", "Flask", "Express")]
    if not DEMO:
        orders += [p for p in itertools.permutations(PORTS) if p != orders[0]]
    if not DEMO:
        try:
            cookie_escapes()
        except (urllib.error.URLError, OSError, ValueError, KeyError) as e:
            check(False, "the cookie escapes check raised", repr(e))
        try:
            hostile_cookies()
        except (urllib.error.URLError, OSError, ValueError, KeyError) as e:
            check(False, "the hostile cookies check raised", repr(e))
    for n, (login, change, logout) in enumerate(orders, 1):
        before = failed
        if DEMO:
            say(f"Shared login: log in on {login}, change a key on {change}, log out on {logout}")
        try:
            rotation(login, change, logout, n)
        except (urllib.error.URLError, OSError, ValueError, KeyError) as e:
            check(False, f"rotation {login} -> {change} -> {logout} raised", repr(e))
        if not DEMO:
            say(f"{'ok  ' if failed == before else 'FAIL'} http: login on {login}, change on {change}, logout on {logout}")
    if DEMO:
        say(f"demo: {passed} checks passed, {failed} failed")
    else:
        say(f"e2e http: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
