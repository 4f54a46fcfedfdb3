"""Flask and Django session stores, ours against the peers, in one process.

A benchmark, not a test: it reports whether the targets of issue 4 are met,
it never fails on them. Run it through scripts/bench-python.sh (which builds
our package in release into bench/python/.venv and starts a private Redis);
see bench/python/README.md.

How requests are driven: a minimal WSGI driver calls each application
object directly (``app(environ, start_response)``), in process, with the
session cookie the previous response set, like a browser would. The whole
framework runs (Flask's request context and session interface, Django's
WSGIHandler, URL resolution and SessionMiddleware); no HTTP server, socket or
test-client bookkeeping is involved, so the numbers are framework + session
store + Redis round trips.

Scenarios (all on the same Redis; the scenarios of one framework are
interleaved in slices of BENCH_SLICE requests, taken in turn in an order
that rotates slice by slice, so machine noise falls on all of them alike):

  flask-sk        Flask + sessionkeeper.flask.SessionInterface
  flask-session   Flask + Flask-Session 0.8 (Redis, msgspec MessagePack)
  flask-cookie    Flask's default signed-cookie session (no Redis)
  flask-floor     the cheapest store possible (floor.py: a dict in this
                  process, no encoding): the upper bound for any store
  flask-floor-rtt flask-floor plus one bare PING round trip to Redis per
                  load and per save: the upper bound for any Redis store
  django-sk       Django + SESSION_ENGINE = "sessionkeeper.django"
  django-redis    Django cache session backend on django-redis
  django-cache    Django cache session backend on Django's built-in RedisCache
  django-signed   Django's signed_cookies session engine (no Redis)
  django-floor    as flask-floor, a SessionBase on a dict in this process
  django-floor-rtt  django-floor plus a PING per load and per save

Each with two kinds of request on a logged-in session: ``read`` (the view
reads one key) and ``write`` (the view increments a counter). Every store
keeps its defaults: e.g. Flask-Session re-SETs the session on every request
(SESSION_REFRESH_EACH_REQUEST with SESSION_PERMANENT=True), Django's cache
backend does not refresh the TTL on a read, ours slides the TTL inside the
read's one round trip.

Per scenario and round: requests/s (wall clock), CPU per request of this process (all
threads, including the engine's Rust runtime: ``time.process_time``), CPU
per request of redis-server (``INFO cpu`` delta), and Redis commands per
request (``INFO commandstats`` delta, the INFO calls themselves left out;
Redis also counts the commands a Lua script runs), and round trips per
request (our engine's own count; for the peers, who send no scripts, every
command is one).

Environment: SK_REDIS_URL (set by scripts/with-redis.sh); BENCH_N (measured
requests per scenario and round, 3000), BENCH_SLICE (250), BENCH_WARMUP
(requests before each round, 300),
BENCH_ROUNDS (3), BENCH_ONLY (comma-separated scenario names),
BENCH_JSON (a path to write every batch's numbers to).
"""

from __future__ import annotations

import gc
import io
import json
import os
import statistics
import sys
import time
import warnings
from urllib.parse import urlsplit

import redis

URL = os.environ.get("SK_REDIS_URL", "redis://127.0.0.1:6379")
_parts = urlsplit(URL)
HOST, PORT = _parts.hostname or "127.0.0.1", _parts.port or 6379
N = int(os.environ.get("BENCH_N", "3000"))
WARMUP = int(os.environ.get("BENCH_WARMUP", "300"))
SLICE = int(os.environ.get("BENCH_SLICE", "250"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
SECRET = "bench-secret-0123456789abcdef0123456789abcdef"
LOGIN = {"user_id": 42, "csrf_token": "9f86d081884c7d659a2feaa0c55ad015", "locale": "en", "counter": 0}

# The targets: ours / peer >= ratio.
TARGETS = [
    ("flask-sk", "flask-session", 1.4),
    ("flask-sk", "flask-cookie", 0.9),
    ("django-sk", "django-redis", 2.0),
    ("django-sk", "django-cache", None),
    ("django-sk", "django-signed", 0.9),
]


def log(*args) -> None:
    print(*args, file=sys.stderr, flush=True)


# -- the WSGI driver ------------------------------------------------------------


class Driver:
    """Calls a WSGI app like a browser with one cookie jar entry would."""

    def __init__(self, app, cookie_name: str) -> None:
        self.app = app
        self.cookie_name = cookie_name
        self.cookie: str | None = None
        self._status = ""
        self._headers: list = []

    def _start_response(self, status, headers, exc_info=None):
        self._status = status
        self._headers = headers
        return None

    def get(self, path: str) -> bytes:
        environ = {
            "REQUEST_METHOD": "GET",
            "SCRIPT_NAME": "",
            "PATH_INFO": path,
            "QUERY_STRING": "",
            "SERVER_NAME": "localhost",
            "SERVER_PORT": "80",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "HTTP_HOST": "localhost",
            "REMOTE_ADDR": "127.0.0.1",
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(b""),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": False,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
        }
        if self.cookie is not None:
            environ["HTTP_COOKIE"] = self.cookie
        result = self.app(environ, self._start_response)
        try:
            body = b"".join(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        if not self._status.startswith("200"):
            raise RuntimeError(f"{path}: HTTP {self._status}: {body[:300]!r}")
        for name, value in self._headers:
            if name.lower() != "set-cookie":
                continue
            pair = value.split(";", 1)[0]
            cname, _, cvalue = pair.partition("=")
            if cname.strip() != self.cookie_name:
                continue
            # An expired cookie (max-age=0 / 1970) removes it, like a browser.
            lower = value.lower()
            if not cvalue or "max-age=0" in lower or "1970" in lower:
                self.cookie = None
            else:
                self.cookie = f"{self.cookie_name}={cvalue}"
        return body


# -- Flask ----------------------------------------------------------------------


def flask_app(kind: str):
    from flask import Flask, session

    app = Flask(f"bench_{kind}")
    app.secret_key = SECRET
    if kind == "flask-sk":
        import sessionkeeper.flask

        app.config["SESSIONKEEPER_URL"] = URL
        app.session_interface = sessionkeeper.flask.SessionInterface()
    elif kind == "flask-session":
        from flask_session import Session

        app.config["SESSION_TYPE"] = "redis"
        app.config["SESSION_REDIS"] = redis.Redis(host=HOST, port=PORT)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            Session(app)
    elif kind == "flask-floor":
        import floor

        app.session_interface = floor.FlaskInterface()
    elif kind == "flask-floor-rtt":
        import floor

        app.session_interface = floor.FlaskRoundTripInterface()
    elif kind != "flask-cookie":
        raise ValueError(kind)

    @app.get("/login")
    def login():
        session.clear()
        session.update(LOGIN)
        return "ok"

    @app.get("/read")
    def read():
        return str(session.get("user_id"))

    @app.get("/write")
    def write():
        session["counter"] = session.get("counter", 0) + 1
        return str(session["counter"])

    return Driver(app, "session"), None


# -- Django ---------------------------------------------------------------------

DJANGO_ENGINES = {
    "django-sk": ("sessionkeeper.django", "default"),
    "django-redis": ("django.contrib.sessions.backends.cache", "djredis"),
    "django-cache": ("django.contrib.sessions.backends.cache", "rediscache"),
    "django-signed": ("django.contrib.sessions.backends.signed_cookies", "default"),
    "django-floor": ("floor", "default"),
    "django-floor-rtt": ("floor_rtt", "default"),
}


def django_setup() -> None:
    import django
    from django.conf import settings

    if settings.configured:
        return
    settings.configure(
        DEBUG=False,
        SECRET_KEY=SECRET,
        ROOT_URLCONF=__name__,
        ALLOWED_HOSTS=["*"],
        MIDDLEWARE=["django.contrib.sessions.middleware.SessionMiddleware"],
        INSTALLED_APPS=[],
        DATABASES={},
        USE_TZ=True,
        SESSION_ENGINE="sessionkeeper.django",
        SESSIONKEEPER_URL=URL,
        CACHES={
            "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
            "djredis": {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": URL},
            "rediscache": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": URL},
        },
        LOGGING_CONFIG=None,
    )
    django.setup()
    globals()["urlpatterns"] = _urlpatterns()  # ROOT_URLCONF is this module


def _django_views():
    from django.http import HttpResponse

    def login(request):
        request.session.flush()
        request.session.update(LOGIN)
        return HttpResponse("ok")

    def read(request):
        return HttpResponse(str(request.session.get("user_id")))

    def write(request):
        request.session["counter"] = request.session.get("counter", 0) + 1
        return HttpResponse(str(request.session["counter"]))

    return login, read, write


def _urlpatterns():
    from django.urls import path

    login, read, write = _django_views()
    return [path("login", login), path("read", read), path("write", write)]


def django_app(kind: str):
    from django.core.handlers.wsgi import WSGIHandler
    from django.test.utils import override_settings

    django_setup()
    engine, alias = DJANGO_ENGINES[kind]
    override = override_settings(SESSION_ENGINE=engine, SESSION_CACHE_ALIAS=alias)
    with override:
        handler = WSGIHandler()  # SessionMiddleware picks its engine here
    return Driver(handler, "sessionid"), override


# -- measuring ------------------------------------------------------------------

SCENARIOS = [
    "flask-sk",
    "flask-session",
    "flask-cookie",
    "flask-floor",
    "flask-floor-rtt",
    "django-sk",
    "django-redis",
    "django-cache",
    "django-signed",
    "django-floor",
    "django-floor-rtt",
]


def make(kind: str):
    return flask_app(kind) if kind.startswith("flask") else django_app(kind)


def server_cpu(r: redis.Redis) -> float:
    info = r.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def commandstats(r: redis.Redis) -> dict[str, int]:
    out = {}
    for name, stats in r.info("commandstats").items():
        cmd = name.removeprefix("cmdstat_")
        if cmd != "info":
            out[cmd] = int(stats["calls"])
    return out


def our_round_trips(kind: str) -> int | None:
    """Round trips our engine sent, from its own stats (None for the peers)."""
    if kind == "flask-sk":
        import sessionkeeper.flask  # noqa: F401

        total = 0
        for store in _flask_sk_stores:
            total += store.stats()["round_trips"]["count"]
        return total
    if kind == "django-sk":
        from sessionkeeper import django as skd

        return sum(s[0].stats()["round_trips"]["count"] for s in skd._stores.values())
    return None


_flask_sk_stores: list = []


class Batch:
    """One scenario's measurements in one round, summed over its slices."""

    def __init__(self) -> None:
        self.n = 0
        self.wall = self.cpu = self.server_cpu = 0.0
        self.commands: dict[str, int] = {}
        self.trips: int | None = None

    def run_slice(self, kind: str, driver: Driver, path: str, r: redis.Redis, n: int) -> None:
        cmds0, scpu0, trips0 = commandstats(r), server_cpu(r), our_round_trips(kind)
        cpu0, t0 = time.process_time(), time.perf_counter()
        for _ in range(n):
            driver.get(path)
        wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        scpu, cmds1, trips1 = server_cpu(r) - scpu0, commandstats(r), our_round_trips(kind)
        self.n += n
        self.wall += wall
        self.cpu += cpu
        self.server_cpu += scpu
        for c, v in cmds1.items():
            self.commands[c] = self.commands.get(c, 0) + v - cmds0.get(c, 0)
        if trips0 is not None:
            self.trips = (self.trips or 0) + trips1 - trips0

    def result(self) -> dict:
        n = self.n
        commands = {c: v / n for c, v in self.commands.items() if v / n > 0.0005}
        return {
            "rps": n / self.wall,
            "us_per_req": self.wall / n * 1e6,
            "cpu_us_per_req": self.cpu / n * 1e6,
            "server_cpu_us_per_req": self.server_cpu / n * 1e6,
            "commands": commands,
            "round_trips": None if self.trips is None else self.trips / n,
        }


def run_group(group: list[str], apps: dict, path: str, r: redis.Redis, rnd: int) -> dict[str, dict]:
    """One round of one request kind for the scenarios of one framework:
    a warm-up each, then N requests each, in slices of SLICE requests taken
    in turn (the order rotating slice by slice), so that the machine's noise
    falls on every scenario alike."""
    batches = {kind: Batch() for kind in group}
    for kind in group:
        driver, override = apps[kind]
        with override or _Null():
            for _ in range(WARMUP):
                driver.get(path)
    gc.collect()
    slices = max(1, N // SLICE)
    for i in range(slices):
        shift = (rnd + i) % len(group)
        for kind in group[shift:] + group[:shift]:
            driver, override = apps[kind]
            with override or _Null():
                batches[kind].run_slice(kind, driver, path, r, SLICE)
    return {kind: b.result() for kind, b in batches.items()}


class _Null:
    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False


SCRIPT_COMMANDS = {"evalsha", "eval", "evalsha_ro", "eval_ro", "fcall", "fcall_ro"}


def describe_commands(commands: dict[str, float]) -> str:
    """Every command Redis counted, per request (the ones a Lua script ran
    included: Redis counts those too)."""
    if not commands:
        return "none"
    return ", ".join(f"{c.upper()} {v:.2f}".replace(".00", "") for c, v in sorted(commands.items()))


def round_trips(res: dict) -> float:
    """Commands the client sent per request: our engine's own count, or for
    the peers (no scripts) every command Redis counted."""
    if res["round_trips"] is not None:
        return res["round_trips"]
    assert not SCRIPT_COMMANDS & set(res["commands"]), res["commands"]
    return sum(res["commands"].values())


def main() -> int:
    only = [s for s in os.environ.get("BENCH_ONLY", "").split(",") if s]
    scenarios = [s for s in SCENARIOS if not only or s in only]
    r = redis.Redis(host=HOST, port=PORT)
    r.ping()
    log(f"bench-python: Redis {r.info('server')['redis_version']} at {HOST}:{PORT}; N={N} warmup={WARMUP} rounds={ROUNDS}")

    apps = {}
    for kind in scenarios:
        driver, override = make(kind)
        ctx = override if override is not None else _Null()
        with ctx:
            driver.get("/login")
            assert driver.cookie, f"{kind}: no session cookie after login"
            assert driver.get("/read") == b"42", kind
            assert driver.get("/write") == b"1", kind
        if kind == "flask-sk":
            _flask_sk_stores.append(driver.app.session_interface.get_store(driver.app))
        apps[kind] = (driver, override)

    results: dict[str, dict[str, list[dict]]] = {k: {"read": [], "write": []} for k in scenarios}
    loads = [os.getloadavg()]
    groups = [[k for k in scenarios if k.startswith(f)] for f in ("flask", "django")]
    for rnd in range(ROUNDS):
        for path in ("read", "write"):
            for group in filter(None, groups):
                for kind, res in run_group(group, apps, "/" + path, r, rnd).items():
                    results[kind][path].append(res)
                    log(
                        f"round {rnd + 1} {path:5} {kind:14} {res['rps']:8.0f} req/s  "
                        f"cpu {res['cpu_us_per_req']:6.0f} us/req  redis cpu {res['server_cpu_us_per_req']:5.1f} us/req  "
                        f"round trips {round_trips(res):.2f}  commands {describe_commands(res['commands'])}"
                    )
        loads.append(os.getloadavg())
        log(f"round {rnd + 1} done; load average {loads[-1][0]:.2f} {loads[-1][1]:.2f} {loads[-1][2]:.2f}")

    print(report(scenarios, results, loads))
    path = os.environ.get("BENCH_JSON")
    if path:
        with open(path, "w") as f:
            json.dump({"n": N, "warmup": WARMUP, "rounds": ROUNDS, "loadavg": loads, "results": results}, f, indent=1)
    return 0


def med(values):
    return statistics.median(values)


def report(scenarios, results, loads) -> str:
    lines = []
    one_min = [l[0] for l in loads]
    lines.append(
        f"Load average (1 min) from {min(one_min):.2f} to {max(one_min):.2f} during the run "
        f"(start {loads[0][0]:.2f}, end {loads[-1][0]:.2f}); {ROUNDS} rounds of {N} requests per scenario and "
        f"request kind (slices of {SLICE}), medians.\n"
    )
    for path in ("read", "write"):
        lines.append(f"### {path} requests\n")
        lines.append(
            "| scenario | req/s | µs/req | CPU µs/req (process) | redis-server CPU µs/req | round trips / req "
            "| Redis commands / req (incl. inside scripts) |"
        )
        lines.append("|---|---:|---:|---:|---:|---:|---|")
        for kind in scenarios:
            runs = results[kind][path]
            cmds = runs[len(runs) // 2]["commands"]
            lines.append(
                f"| {kind} | {med([x['rps'] for x in runs]):.0f} | {med([x['us_per_req'] for x in runs]):.0f} | "
                f"{med([x['cpu_us_per_req'] for x in runs]):.0f} | {med([x['server_cpu_us_per_req'] for x in runs]):.1f} | "
                f"{med([round_trips(x) for x in runs]):.2f} | {describe_commands(cmds)} |"
            )
        lines.append("")
    lines.append(
        "### ratios (ours / peer req/s, median of the per-round ratios, min–max in brackets; "
        "bound: floor / peer, the most any store could reach; Redis bound: floor-rtt / peer, the most a store "
        "that makes one Redis round trip per load and per save could reach)\n"
    )
    lines.append("| ours vs peer | read | write | target | met? | bound read | bound write | Redis bound read | Redis bound write |")
    lines.append("|---|---:|---:|---:|---|---:|---:|---:|---:|")
    for ours, peer, target in TARGETS:
        if ours not in results or peer not in results:
            continue
        cells, met = [], []
        for path in ("read", "write"):
            ratios = [a["rps"] / b["rps"] for a, b in zip(results[ours][path], results[peer][path])]
            m = med(ratios)
            cells.append(f"{m:.2f}× ({min(ratios):.2f}–{max(ratios):.2f})")
            if target is not None:
                met.append(f"{path} {'yes' if m >= target else 'NO'}")
        framework = ours.split("-")[0]
        bounds = [
            f"{med([a['rps'] / b['rps'] for a, b in zip(results[floor][path], results[peer][path])]):.2f}×"
            if floor in results
            else "–"
            for floor in (f"{framework}-floor", f"{framework}-floor-rtt")
            for path in ("read", "write")
        ]
        lines.append(
            f"| {ours} / {peer} | {cells[0]} | {cells[1]} | {'≥ %.1f×' % target if target else '–'} "
            f"| {', '.join(met) or '–'} | {' | '.join(bounds)} |"
        )
    lines.append("")
    lines.append(
        "### CPU per request, peer / ours (this process + redis-server; > 1: ours costs less CPU; "
        "median of the per-round ratios)\n"
    )
    lines.append("| ours vs peer | read | write |")
    lines.append("|---|---:|---:|")
    total = lambda x: x["cpu_us_per_req"] + x["server_cpu_us_per_req"]  # noqa: E731
    for ours, peer, _ in TARGETS:
        if ours not in results or peer not in results:
            continue
        cells = []
        for path in ("read", "write"):
            ratios = [total(b) / total(a) for a, b in zip(results[ours][path], results[peer][path])]
            cells.append(f"{med(ratios):.2f}× ({min(ratios):.2f}–{max(ratios):.2f})")
        lines.append(f"| {ours} / {peer} | {cells[0]} | {cells[1]} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
