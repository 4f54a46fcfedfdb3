"""Django sessions in Redis through the Sessionkeeper engine.

Settings::

    SESSION_ENGINE = "sessionkeeper.django"
    SESSIONKEEPER_URL = "redis://127.0.0.1:6379/0"      # or redis+cluster://..., rediss://...
    SESSIONKEEPER_OPTIONS = {"command_timeout": "500ms"}  # engine options (optional)
    SESSIONKEEPER_FAIL_OPEN = True                       # default; see below

Django's own settings keep their meaning: ``SESSION_COOKIE_AGE`` (and
``set_expiry()``) set how long a session lives in Redis, and the middleware
handles ``SESSION_COOKIE_*``, ``SESSION_SAVE_EVERY_REQUEST`` and
``SESSION_EXPIRE_AT_BROWSER_CLOSE`` as usual. ``SESSION_SERIALIZER`` is not
used: values go through the engine's cross-language encoding (MessagePack by
default), never pickle. Values may be ``None``, ``bool``, ``int`` (64-bit),
``float``, ``str``, ``bytes``, ``list``/``tuple`` (read back as ``list``),
``dict`` with ``str`` keys and timezone-aware ``datetime``.

The :class:`SessionStore` follows the whole ``SessionBase`` contract:

- ``save(must_create=True)`` never overwrites an existing session
  (``CreateError``); a plain ``save()`` of a session deleted meanwhile raises
  ``UpdateError`` (the middleware answers 400) and never re-creates it;
- only the top-level keys that changed are written, in one round trip, so
  concurrent requests changing different keys keep both changes;
- ``load()`` of an unknown key returns ``{}`` and stores nothing; a stored
  value that cannot be decoded is logged, removed, and gives ``{}``;
- an expiry age of zero or less deletes the session;
- ``exists``, ``delete``, ``clear_expired`` (nothing to do: Redis expires
  keys itself), ``cycle_key`` (an atomic move to a new key), ``flush``;
- the async methods (``aload``, ``asave``, ``aexists``, ``acreate``,
  ``adelete``, ``acycle_key``, ...) run natively on
  :class:`sessionkeeper.AsyncStore`, without a thread pool.

Expiry: every read slides the session's expiry in Redis to its own expiry
age (``SESSION_COOKIE_AGE``, or what ``set_expiry`` chose): a custom expiry
is stored with the session by the save that sets it, and later reads slide
by it, in the read's one command once this process has seen the session (its
first read here needs a second command). A session past a ``set_expiry``
datetime is deleted when read.

Migration from Django's cache backend (off by default)::

    SESSIONKEEPER_MIGRATION = True   # or {"key_prefix": "", "version": 1, "allow_pickle": False}

When a session key is not found in our store, the cache backend's key
(``<KEY_PREFIX>:<VERSION>:django.contrib.sessions.cache<key>``, with
``KEY_PREFIX`` and ``VERSION`` taken from ``CACHES[SESSION_CACHE_ALIAS]``
unless given) is read; a MessagePack or JSON value (django-redis'
serializers, also compressed by any of django-redis' compressors) is
rewritten in our format under the same key and the old key is deleted, so
the user stays logged in. Django's ``RedisCache`` and
django-redis' default serializer **pickle** the session: those values are
only read with ``"allow_pickle": True``, which lets anyone who can write to
that Redis run code in your web processes. Turn it on only for the migration
window and only when nobody untrusted can write to Redis. A value that cannot
be read is logged and treated as no session. With migration on, ``delete()``
also deletes the peer key (one more round trip per logout).

Shared mode (one login with Rails, Flask and Express apps; off by default)::

    SESSIONKEEPER_SHARED_SECRET = "a secret of at least 32 bytes"   # or [new, old] to rotate
    MIDDLEWARE = [..., "sessionkeeper.django.SessionMiddleware", ...]  # instead of Django's
    SESSION_COOKIE_NAME = "..."   # the name every app uses

Django's ``SessionMiddleware`` puts the bare session key in the cookie;
:class:`SessionMiddleware` (a drop-in subclass, identical while the setting
is unset) puts the engine's signed value ``s:<key>.<HMAC-SHA256>``
(express-session's format) there instead, and accepts only cookies one of
the secrets verifies (the first signs, every one verifies). Django quotes the
value (it contains ``/``); every adapter's verification accepts the quoted
form.

Redis down or slow (bounded by ``command_timeout``): with
``SESSIONKEEPER_FAIL_OPEN = True`` the request goes on with an empty session
that is not saved and keeps its key, so the middleware neither deletes the
user's cookie nor stores anything (they are logged in again once Redis is
back; changes made meanwhile are lost, with a warning in the log). With
``False``, :class:`sessionkeeper.ConnectionError` or
:class:`sessionkeeper.TimeoutError` propagates.
"""

from __future__ import annotations

import logging
import threading
import typing as t
from http.cookies import SimpleCookie

from django.conf import settings
from django.contrib.sessions.backends.base import CreateError, SessionBase, UpdateError
from django.contrib.sessions.middleware import SessionMiddleware as _DjangoSessionMiddleware
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver

from . import _errors, _migrate, _shared
from ._native import AsyncStore, Baseline, Store, generate_id, sign_cookie, unsign_cookie

__all__ = ["SessionStore", "SessionMiddleware"]

log = logging.getLogger("sessionkeeper.django")

_UNAVAILABLE = (_errors.ConnectionError, _errors.TimeoutError)

# One engine store per configuration, shared by every request of the process.
_stores: dict[tuple[str, str], tuple[Store, AsyncStore]] = {}
_stores_lock = threading.Lock()


# The stores of the current settings, looked up once: reading the settings
# on every session operation costs more than the operation's own Python
# code. Changed settings (override_settings in tests) reset it.
_current: tuple[Store, AsyncStore] | None = None


@receiver(setting_changed)
def _settings_changed(setting: str, **kwargs: t.Any) -> None:
    global _current
    if setting.startswith("SESSIONKEEPER_") or setting == "SESSION_COOKIE_AGE":
        _current = None


def _configured_stores() -> tuple[Store, AsyncStore]:
    global _current
    current = _current
    if current is None:
        current = _current = _stores_for_settings()
    return current


def _stores_for_settings() -> tuple[Store, AsyncStore]:
    url = getattr(settings, "SESSIONKEEPER_URL", None)
    if not url:
        raise ImproperlyConfigured(
            "SESSION_ENGINE = 'sessionkeeper.django' needs SESSIONKEEPER_URL, e.g. 'redis://127.0.0.1:6379/0'"
        )
    options = dict(getattr(settings, "SESSIONKEEPER_OPTIONS", None) or {})
    # The store's default sliding window is the default session age; a
    # session with its own age (set_expiry) carries it in Redis.
    options.setdefault("idle_ttl", settings.SESSION_COOKIE_AGE)
    cache_key = (url, repr(sorted(options.items())))
    stores = _stores.get(cache_key)
    if stores is None:
        with _stores_lock:
            stores = _stores.get(cache_key)
            if stores is None:
                # One engine for the sync and the async methods: shared
                # stats, and one memory of the sessions' windows and of
                # this process's own saves (a save through `asave` of a
                # session `load` read chains like any other).
                store = Store(url, **options)
                stores = (store, store.asyncio())
                _stores[cache_key] = stores
    return stores


def _fail_open() -> bool:
    return bool(getattr(settings, "SESSIONKEEPER_FAIL_OPEN", True))


_CACHE_SESSION_KEY = "django.contrib.sessions.cache"


def _migration() -> tuple[_migrate.Sources, bool] | None:
    """``(sources, allow_pickle)`` when SESSIONKEEPER_MIGRATION is on."""
    conf = getattr(settings, "SESSIONKEEPER_MIGRATION", None)
    if not conf:
        return None
    conf = {} if conf is True else dict(conf)
    unknown = set(conf) - {"key_prefix", "version", "allow_pickle"}
    if unknown:
        raise ImproperlyConfigured(f"SESSIONKEEPER_MIGRATION: unknown keys {sorted(unknown)}")
    cache = (getattr(settings, "CACHES", None) or {}).get(getattr(settings, "SESSION_CACHE_ALIAS", "default"), {})
    prefix = conf.get("key_prefix", cache.get("KEY_PREFIX", ""))
    version = conf.get("version", cache.get("VERSION", 1))
    # Django's default KEY_FUNCTION: "<prefix>:<version>:<key>".
    return [("plain", f"{prefix}:{version}:{_CACHE_SESSION_KEY}")], bool(conf.get("allow_pickle", False))


def _shared_secrets() -> _shared.Secrets | None:
    return _shared.secrets_from(getattr(settings, "SESSIONKEEPER_SHARED_SECRET", None))


class SessionMiddleware(_DjangoSessionMiddleware):
    """Django's ``SessionMiddleware``, plus shared mode: with
    ``SESSIONKEEPER_SHARED_SECRET`` set, the session cookie carries the
    engine-signed value instead of the bare key, and a cookie that no secret
    verifies is no session. Without the setting it is Django's middleware."""

    def process_request(self, request) -> None:
        secrets = _shared_secrets()
        if secrets is None:
            return super().process_request(request)
        cookie = request.COOKIES.get(settings.SESSION_COOKIE_NAME)
        request.session = self.SessionStore(unsign_cookie(cookie, secrets) if cookie else None)

    def process_response(self, request, response):
        response = super().process_response(request, response)
        secrets = _shared_secrets()
        if secrets is None:
            return response
        morsel = response.cookies.get(settings.SESSION_COOKIE_NAME)
        session = getattr(request, "session", None)
        # Django just wrote the bare key (not a deletion, which is empty).
        if morsel is not None and morsel.value and session is not None and morsel.value == session.session_key:
            signed = sign_cookie(morsel.value, secrets[0])
            # Keeps the attributes Django set; quoted as Django quotes values.
            morsel.set(morsel.key, signed, SimpleCookie().value_encode(signed)[1])
        return response


_warned_shared = False


class SessionStore(SessionBase):
    """A Django session kept in Redis by the Sessionkeeper engine."""

    def __init__(self, session_key: str | None = None) -> None:
        global _warned_shared
        if session_key and session_key.startswith(("s:", '"s:')) and not _warned_shared and _shared_secrets():
            # A signed cookie reached the store: Django's own middleware is in use.
            _warned_shared = True
            log.warning(
                "sessionkeeper: SESSIONKEEPER_SHARED_SECRET is set but the session cookie was not verified; "
                "use 'sessionkeeper.django.SessionMiddleware' in MIDDLEWARE instead of Django's"
            )
        super().__init__(session_key)
        # What the session held when loaded (or created): saves write only
        # the keys that differ from it.
        self._baseline: Baseline | None = None
        # Set when Redis was unavailable at load and we failed open.
        self._unavailable = False
        # The loaded session carries its own sliding window in Redis.
        self._own_window = False

    # -- helpers ---------------------------------------------------------------

    def _sync(self, age: int | None = None) -> Store:
        """The default handle (slides by the session's own window, if it has
        one), or one that sets the session's window to ``age`` seconds."""
        store = _configured_stores()[0]
        return store if age is None else store.with_idle_ttl(age)

    def _async(self, age: int | None = None) -> AsyncStore:
        store = _configured_stores()[1]
        return store if age is None else store.with_idle_ttl(age)

    def _window(self, data: dict[str, t.Any]) -> int | None:
        """The window a write must store with the session, or None when the
        store's default (SESSION_COOKIE_AGE) applies and nothing is stored."""
        age = self._custom_age(data)
        if age is not None:
            return age
        default = self.get_session_cookie_age()
        if self._own_window or default != settings.SESSION_COOKIE_AGE:
            return default  # back to the default age (set_expiry(None)), or a subclass' age
        return None

    def _fail(self, what: str, error: _errors.Error) -> None:
        if not _fail_open():
            raise error
        log.warning("sessionkeeper: %s failed, continuing without a stored session: %s", what, error)

    def _custom_age(self, data: dict[str, t.Any]) -> int | None:
        """The expiry age of freshly loaded data when it is not the default."""
        expiry = data.get("_session_expiry")
        if not expiry:
            return None
        return int(self.get_expiry_age(expiry=expiry))

    def _loaded(self, loaded) -> dict[str, t.Any] | None:
        if loaded is None:
            self._session_key = None
            return None
        self._baseline = loaded.baseline
        self._own_window = loaded.idle_ttl is not None
        return loaded.data

    def _migrated(self, found) -> dict[str, t.Any] | None:
        if found is None:
            self._session_key = None
            return None
        data, self._baseline = found
        self._own_window = self._custom_age(data) is not None
        return data

    def _expired(self, data: dict[str, t.Any]) -> bool:
        """A session past its set_expiry() datetime (Redis may keep it a
        little longer: reads slide by the window stored at the last save)."""
        age = self._custom_age(data)
        return age is not None and age <= 0

    def _get_new_session_key(self) -> str:
        # The engine's ids (128 bits from the OS CSPRNG) need no existence
        # check: save(must_create=True) refuses to overwrite anyway.
        return generate_id()

    async def _aget_new_session_key(self) -> str:
        return generate_id()

    # -- SessionBase -----------------------------------------------------------

    def load(self) -> dict[str, t.Any]:
        key = self.session_key
        if key is None:
            return {}
        try:
            loaded = self._sync().load(key)
            migration = _migration() if loaded is None else None
            if migration is not None:
                sources, allow_pickle = migration
                data = self._migrated(
                    _migrate.migrate(self._sync(), key, sources, allow_pickle, log, lambda d: self._sync(self._window(d)))
                )
            else:
                data = self._loaded(loaded)
            if data is None:
                return {}
            if self._expired(data):
                self._sync().destroy(key)
                return self._forget()
            return data
        except _errors.CodecError as e:
            return self._dropped_corrupt(e)
        except _UNAVAILABLE as e:
            return self._load_unavailable(e)

    async def aload(self) -> dict[str, t.Any]:
        key = self.session_key
        if key is None:
            return {}
        try:
            loaded = await self._async().load(key)
            migration = _migration() if loaded is None else None
            if migration is not None:
                sources, allow_pickle = migration
                data = self._migrated(
                    await _migrate.amigrate(
                        self._async(), key, sources, allow_pickle, log, lambda d: self._async(self._window(d))
                    )
                )
            else:
                data = self._loaded(loaded)
            if data is None:
                return {}
            if self._expired(data):
                await self._async().destroy(key)
                return self._forget()
            return data
        except _errors.CodecError as e:
            return self._dropped_corrupt(e)
        except _UNAVAILABLE as e:
            return self._load_unavailable(e)

    # What `load` and `aload` do after their I/O; each returns the data the
    # request sees.

    def _forget(self) -> dict[str, t.Any]:
        self._session_key = None
        self._baseline = None
        return {}

    def _dropped_corrupt(self, e: Exception) -> dict[str, t.Any]:
        log.warning("sessionkeeper: dropped a session that could not be decoded: %s", e)
        self._session_key = None
        return {}

    def _load_unavailable(self, e: Exception) -> dict[str, t.Any]:
        self._fail("loading the session", e)
        self._unavailable = True
        return {}

    def exists(self, session_key: str | None) -> bool:
        return bool(session_key) and self._sync().exists(session_key)

    async def aexists(self, session_key: str | None) -> bool:
        return bool(session_key) and await self._async().exists(session_key)

    def create(self) -> None:
        # 128 random bits do not collide; the loop is Django's contract.
        for _ in range(10):
            self._session_key = self._get_new_session_key()
            try:
                self.save(must_create=True)
            except CreateError:
                continue
            self.modified = True
            return
        raise RuntimeError("sessionkeeper: could not create a session with a fresh key")

    async def acreate(self) -> None:
        for _ in range(10):
            self._session_key = await self._aget_new_session_key()
            try:
                await self.asave(must_create=True)
            except CreateError:
                continue
            self.modified = True
            return
        raise RuntimeError("sessionkeeper: could not create a session with a fresh key")

    def save(self, must_create: bool = False) -> None:
        if self.session_key is None:
            return self.create()
        data = self._get_session(no_load=must_create)
        if self._unavailable:
            log.warning("sessionkeeper: session changes dropped, Redis was unavailable when it was loaded")
            return
        key = self.session_key
        age = self.get_expiry_age()
        try:
            if age <= 0:
                # Already expired: nothing may be kept.
                self._sync().destroy(key)
                self._baseline = None
                return
            store = self._sync(self._window(data))
            if must_create:
                baseline = store.insert(key, data)
                if baseline is None:
                    raise CreateError
                self._baseline = baseline
                return
            if self._baseline is None:
                # Data set without a load (rare): the baseline must come from
                # the stored record, which also tells whether it still exists.
                if self._loaded(store.load(key)) is None:
                    self._session_key = key  # _loaded cleared it
                    raise UpdateError
            if store.save(key, self._baseline, data) == "gone":
                raise UpdateError
        except _UNAVAILABLE as e:
            self._fail("saving the session", e)

    async def asave(self, must_create: bool = False) -> None:
        if self.session_key is None:
            return await self.acreate()
        data = await self._aget_session(no_load=must_create)
        if self._unavailable:
            log.warning("sessionkeeper: session changes dropped, Redis was unavailable when it was loaded")
            return
        key = self.session_key
        age = await self.aget_expiry_age()
        try:
            if age <= 0:
                await self._async().destroy(key)
                self._baseline = None
                return
            store = self._async(self._window(data))
            if must_create:
                baseline = await store.insert(key, data)
                if baseline is None:
                    raise CreateError
                self._baseline = baseline
                return
            if self._baseline is None:
                if self._loaded(await store.load(key)) is None:
                    self._session_key = key
                    raise UpdateError
            if await store.save(key, self._baseline, data) == "gone":
                raise UpdateError
        except _UNAVAILABLE as e:
            self._fail("saving the session", e)

    def delete(self, session_key: str | None = None) -> None:
        if session_key is None:
            if self.session_key is None:
                return
            session_key = self.session_key
            self._baseline = None
        try:
            self._sync().destroy(session_key)
            migration = _migration()
            if migration is not None:
                self._sync().legacy_delete(session_key, migration[0])
        except _UNAVAILABLE as e:
            self._fail("deleting the session", e)

    async def adelete(self, session_key: str | None = None) -> None:
        if session_key is None:
            if self.session_key is None:
                return
            session_key = self.session_key
            self._baseline = None
        try:
            await self._async().destroy(session_key)
            migration = _migration()
            if migration is not None:
                await self._async().legacy_delete(session_key, migration[0])
        except _UNAVAILABLE as e:
            self._fail("deleting the session", e)

    def cycle_key(self) -> None:
        """Moves the session to a new key, keeping its data (Django calls this
        at login). A stored session moves atomically, with one round trip;
        otherwise Django's create-then-delete is used."""
        self._session  # noqa: B018 - loads the session (and its baseline)
        key = self.session_key
        if key is not None and self._baseline is not None and not self._unavailable:
            try:
                new_key = self._sync(self._window(self._session)).renew(key)
            except _UNAVAILABLE as e:
                self._fail("renewing the session key", e)
                return
            if new_key is not None:
                self._session_key = new_key
                self.modified = True
                return
            self._baseline = None
        super().cycle_key()

    async def acycle_key(self) -> None:
        await self._aget_session()
        key = self.session_key
        if key is not None and self._baseline is not None and not self._unavailable:
            try:
                new_key = await self._async(self._window(self._session_cache)).renew(key)
            except _UNAVAILABLE as e:
                self._fail("renewing the session key", e)
                return
            if new_key is not None:
                self._session_key = new_key
                self.modified = True
                return
            self._baseline = None
        await super().acycle_key()

    @classmethod
    def engine_stats(cls) -> dict[str, t.Any]:
        """The engine's counters and round-trip latencies for the configured
        store, sync and ``a*`` methods together (``Store.stats()``)."""
        return _configured_stores()[0].stats()

    @classmethod
    def clear_expired(cls) -> None:
        """Nothing to do: Redis removes expired sessions itself."""

    @classmethod
    async def aclear_expired(cls) -> None:
        """Nothing to do: Redis removes expired sessions itself."""
