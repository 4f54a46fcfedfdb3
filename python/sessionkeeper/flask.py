"""Flask sessions in Redis through the Sessionkeeper engine.

Use it like any Flask session interface::

    from flask import Flask
    import sessionkeeper.flask

    app = Flask(__name__)
    app.secret_key = "..."                       # signs the session cookie
    app.config["SESSIONKEEPER_URL"] = "redis://127.0.0.1:6379/0"
    app.session_interface = sessionkeeper.flask.SessionInterface()

Configuration (``app.config``; arguments of :class:`SessionInterface`
override them):

``SESSIONKEEPER_URL``
    ``redis://``, ``rediss://``, ``redis+cluster://host1,host2``,
    ``redis+sentinel://...`` or ``memory://name`` (tests). Required unless a
    ``store`` is passed.
``SESSIONKEEPER_OPTIONS``
    A dict of engine options (``key_prefix``, ``command_timeout``,
    ``absolute_ttl``, ``codec``, ``max_size``, ...). ``idle_ttl`` defaults to
    ``PERMANENT_SESSION_LIFETIME``.
``SESSIONKEEPER_FAIL_OPEN`` (default ``True``)
    What happens when Redis is down or does not answer within
    ``command_timeout``. ``True``: the request goes on with a fresh, empty
    session that is not saved, and the user's cookie is left alone, so they
    are logged in again once Redis is back; writes made during the outage
    are lost (logged as warnings). ``False``: :class:`sessionkeeper.ConnectionError`
    or :class:`sessionkeeper.TimeoutError` propagates (HTTP 500 unless the app
    handles it).

``SESSIONKEEPER_MIGRATION`` (default off)
    Reads sessions Flask-Session wrote, so switching logs nobody out:
    ``True`` or a dict ``{"key_prefix": "session:", "allow_pickle": False,
    "use_signer": False}`` (``key_prefix`` defaults to ``SESSION_KEY_PREFIX``,
    ``use_signer`` to ``SESSION_USE_SIGNER``). A request whose cookie is a
    Flask-Session id (not one of ours) reads ``<key_prefix><sid>``; a
    MessagePack (Flask-Session >= 0.6) or JSON value is rewritten in our format
    under the same id, the old key is deleted and our signed cookie is sent.
    Pickled values (Flask-Session < 0.6) are only read with
    ``"allow_pickle": True``, which lets anyone who can write to that Redis run
    code in your web processes: turn it on only for the migration window and
    only when nobody untrusted can write to Redis. A value that cannot be read
    is logged and treated as no session.

``SESSIONKEEPER_SHARED_SECRET`` (default off: shared mode)
    A secret of at least 32 bytes (``str`` or ``bytes``), or a list of them
    to rotate (the first signs, every one verifies). The cookie then carries
    the engine's shared-mode value ``s:<id>.<HMAC-SHA256>`` (express-session's
    format) instead of the itsdangerous-signed id, and only values that one
    of the secrets verifies are accepted, so Rails, Django and Express apps
    configured with the same secret, cookie name (``SESSION_COOKIE_NAME``)
    and Redis share the login. ``SECRET_KEY`` is then not needed for the
    session cookie.

Flask's own settings are honoured: ``SECRET_KEY`` and
``SECRET_KEY_FALLBACKS`` (the cookie carries the session id signed with
itsdangerous' format, HMAC-SHA256, salt ``"sessionkeeper"``; the engine computes it
unless a subclass changes ``digest_method`` or ``key_derivation``), ``SESSION_COOKIE_NAME``,
``_DOMAIN``, ``_PATH``, ``_HTTPONLY``, ``_SECURE``, ``_SAMESITE``,
``_PARTITIONED``, ``PERMANENT_SESSION_LIFETIME`` (the cookie's expiry for
permanent sessions, and the sliding expiry in Redis for every session) and
``SESSION_REFRESH_EACH_REQUEST``.

Behaviour:

- Only the top-level keys that changed are written, in one round trip; two
  concurrent requests that change different keys both keep their change.
  Changes inside nested values are detected too (no need to set
  ``session.modified``). Reading a session slides its expiry in the same
  round trip as the read.
- A session destroyed meanwhile (a logout in another tab) is never
  re-created by a later save of an older request: that request's changes are
  dropped and its cookie is cleared.
- An unknown, expired or forged cookie gives a fresh session, with a new id
  on first write (never the id the client chose).
- A stored value that cannot be decoded is logged, removed, and replaced by
  a fresh session: never an HTTP 500, never unpickled.
- Values: ``None``, ``bool``, ``int`` (64-bit), ``float``, ``str``,
  ``bytes``, ``list``/``tuple`` (read back as ``list``), ``dict`` with ``str``
  keys and timezone-aware ``datetime`` (read back in UTC). Anything else is a
  ``TypeError`` at save time.
- :meth:`SessionInterface.regenerate` moves the session to a new id (call it
  at login against session fixation).
"""

from __future__ import annotations

import hashlib
import logging
import typing as t

from flask.sessions import SessionInterface as _FlaskSessionInterface
from flask.sessions import SessionMixin
from itsdangerous import BadSignature, Signer
from werkzeug.datastructures import CallbackDict

from . import _errors, _migrate, _shared
from ._native import Baseline, SaltedSigner, Store, is_valid_id, sign_cookie, unsign_cookie

if t.TYPE_CHECKING:  # pragma: no cover
    from flask import Flask
    from flask.wrappers import Request, Response

__all__ = ["Session", "SessionInterface"]

log = logging.getLogger("sessionkeeper.flask")

# Errors that mean "Redis is unavailable right now", the ones fail-open covers.
_UNAVAILABLE = (_errors.ConnectionError, _errors.TimeoutError)


class _Signer(Signer):
    """itsdangerous' Signer, deriving each key once instead of on every
    sign/unsign (the same keys and signatures, one HMAC less per call)."""

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(*args, **kwargs)
        self._derived: dict[bytes, bytes] = {}

    def derive_key(self, secret_key: str | bytes | None = None) -> bytes:
        if secret_key is None:
            secret_key = self.secret_keys[-1]
        if not isinstance(secret_key, bytes):
            return super().derive_key(secret_key)
        key = self._derived.get(secret_key)
        if key is None:
            key = self._derived[secret_key] = super().derive_key(secret_key)
        return key


class Session(CallbackDict, SessionMixin):
    """The session of one request: a dict that records changes.

    Attributes
    ----------
    sid : str or None
        The session id, or None while the session is not stored yet.
    new : bool
        True when no stored session was found for this request.
    unavailable : bool
        True when Redis could not be reached while opening the session and the
        interface failed open: the session starts empty and is not saved.
    """

    def __init__(
        self,
        initial: t.Mapping[str, t.Any] | None = None,
        sid: str | None = None,
        baseline: Baseline | None = None,
        *,
        unavailable: bool = False,
    ) -> None:
        def on_update(self: Session) -> None:
            self.modified = True
            self.accessed = True

        super().__init__(initial, on_update)
        self.sid = sid
        self.baseline = baseline
        self.new = sid is None
        self.unavailable = unavailable
        self.modified = False
        self.accessed = False

    # Flask before 3.1.3 relies on the session itself to flag reads (for the
    # Vary: Cookie header); later versions flag them in the request context.
    def __getitem__(self, key: str) -> t.Any:
        self.accessed = True
        return super().__getitem__(key)

    def get(self, key: str, default: t.Any = None) -> t.Any:
        self.accessed = True
        return super().get(key, default)

    def setdefault(self, key: str, default: t.Any = None) -> t.Any:
        self.accessed = True
        return super().setdefault(key, default)


class SessionInterface(_FlaskSessionInterface):
    """Keeps Flask sessions in Redis through the Sessionkeeper engine.

    Parameters
    ----------
    url : str, optional
        Overrides ``SESSIONKEEPER_URL``.
    store : sessionkeeper.Store, optional
        A ready store to use instead of building one from the configuration
        (its own ``idle_ttl`` is then used as the sliding expiry).
    fail_open : bool, optional
        Overrides ``SESSIONKEEPER_FAIL_OPEN``.
    migration : bool or dict, optional
        Overrides ``SESSIONKEEPER_MIGRATION``.
    shared_secret : str, bytes or a list of them, optional
        Overrides ``SESSIONKEEPER_SHARED_SECRET`` (shared mode).
    **options
        Engine options; override ``SESSIONKEEPER_OPTIONS``.
    """

    session_class = Session
    #: Salt and digest of the cookie signature. Changing either invalidates
    #: every cookie issued so far (users get a fresh session).
    salt = "sessionkeeper"
    digest_method = staticmethod(hashlib.sha256)
    key_derivation = "hmac"

    def __init__(
        self,
        url: str | None = None,
        *,
        store: Store | None = None,
        fail_open: bool | None = None,
        migration: bool | t.Mapping[str, t.Any] | None = None,
        shared_secret: str | bytes | t.Sequence[str | bytes] | None = None,
        **options: t.Any,
    ) -> None:
        self._url = url
        self._store = store
        self._fail_open = fail_open
        self._migration = migration
        self._shared_secret = shared_secret
        self._options = options

    # -- configuration -------------------------------------------------------

    def get_store(self, app: Flask) -> Store:
        """The store of ``app``, built from its configuration on first use."""
        if self._store is not None:
            return self._store
        store = app.extensions.get("sessionkeeper")
        if store is None:
            url = self._url or app.config.get("SESSIONKEEPER_URL")
            if not url:
                raise _errors.ConfigError(
                    "set app.config['SESSIONKEEPER_URL'] (e.g. 'redis://127.0.0.1:6379/0') "
                    "or pass url= to sessionkeeper.flask.SessionInterface"
                )
            options = {"idle_ttl": app.permanent_session_lifetime}
            options.update(app.config.get("SESSIONKEEPER_OPTIONS") or {})
            options.update(self._options)
            store = Store(url, **options)
            app.extensions["sessionkeeper"] = store
        return store

    def fail_open(self, app: Flask) -> bool:
        if self._fail_open is not None:
            return self._fail_open
        return bool(app.config.get("SESSIONKEEPER_FAIL_OPEN", True))

    def migration(self, app: Flask) -> dict[str, t.Any] | None:
        """The Flask-Session migration settings, or None when it is off."""
        conf = self._migration if self._migration is not None else app.config.get("SESSIONKEEPER_MIGRATION")
        if not conf:
            return None
        conf = {} if conf is True else dict(conf)
        unknown = set(conf) - {"key_prefix", "allow_pickle", "use_signer"}
        if unknown:
            raise _errors.ConfigError(f"SESSIONKEEPER_MIGRATION: unknown keys {sorted(unknown)}")
        return {
            "sources": [("plain", conf.get("key_prefix", app.config.get("SESSION_KEY_PREFIX", "session:")))],
            "allow_pickle": bool(conf.get("allow_pickle", False)),
            "use_signer": bool(conf.get("use_signer", app.config.get("SESSION_USE_SIGNER", False))),
        }

    def shared_secrets(self, app: Flask) -> list[str | bytes] | None:
        """The shared-mode secrets (the first signs, all verify), or None when
        shared mode is off."""
        conf = self._shared_secret if self._shared_secret is not None else app.config.get("SESSIONKEEPER_SHARED_SECRET")
        return _shared.secrets_from(conf)

    def _cookie_sid(self, app: Flask, cookie: str, shared: list[str | bytes] | None) -> str | None:
        """The session id in one of our cookies, or None when it does not verify."""
        if shared is not None:
            return unsign_cookie(cookie, shared)
        salted = self._salted_signer(app)
        if salted is not None:
            return salted.unsign(cookie)
        signer = self.get_signer(app)
        assert signer is not None
        try:
            return signer.unsign(cookie).decode("ascii")
        except (BadSignature, UnicodeDecodeError):
            return None

    def _cookie_value(self, app: Flask, sid: str) -> str:
        shared = self.shared_secrets(app)
        if shared is not None:
            return sign_cookie(sid, shared[0])
        salted = self._salted_signer(app)
        if salted is not None:
            return salted.sign(sid)
        signer = self.get_signer(app)
        assert signer is not None
        return signer.sign(sid).decode("ascii")

    def _peer_sid(self, app: Flask, cookie: str, use_signer: bool) -> str | None:
        """The session id in a Flask-Session cookie: the bare id, or with
        SESSION_USE_SIGNER ``id.signature`` (salt "flask-session", HMAC-SHA1)."""
        if use_signer:
            try:
                cookie = Signer(app.secret_key, salt="flask-session", key_derivation="hmac").unsign(cookie).decode()
            except (BadSignature, UnicodeDecodeError):
                return None
        return cookie if is_valid_id(cookie) else None

    def get_signer(self, app: Flask) -> Signer | None:
        """The cookie signer, or None when the app has no ``secret_key``.
        Built once per set of keys (and rebuilt when they change)."""
        return self._signers(app)[0]

    def _salted_signer(self, app: Flask) -> SaltedSigner | None:
        """The engine's signer of the same cookie format, when the class keeps
        the default digest and key derivation (it signs and verifies exactly
        what ``get_signer`` does, several times faster); else None."""
        return self._signers(app)[1]

    def _signers(self, app: Flask) -> tuple[Signer | None, SaltedSigner | None]:
        if not app.secret_key:
            return None, None
        keys: list[str | bytes] = list(app.config.get("SECRET_KEY_FALLBACKS") or [])
        keys.append(app.secret_key)  # itsdangerous signs with the last key
        ident = (self.salt, self.key_derivation, self.digest_method, *keys)
        cached = app.extensions.get("sessionkeeper.signer")
        if cached is not None and cached[0] == ident:
            return cached[1]
        signer = _Signer(keys, salt=self.salt, key_derivation=self.key_derivation, digest_method=self.digest_method)
        salted = None
        if self.key_derivation == "hmac" and self.digest_method is hashlib.sha256:
            salted = SaltedSigner(keys[::-1], self.salt)  # ours signs with the first
        app.extensions["sessionkeeper.signer"] = (ident, (signer, salted))
        return signer, salted

    def _cookie_attributes(self, app: Flask) -> dict[str, t.Any]:
        """The cookie's attributes, read only for a response that sets or
        deletes it (most reads do neither)."""
        return {
            "domain": self.get_cookie_domain(app),
            "path": self.get_cookie_path(app),
            "secure": self.get_cookie_secure(app),
            "partitioned": self.get_cookie_partitioned(app),
            "samesite": self.get_cookie_samesite(app),
            "httponly": self.get_cookie_httponly(app),
        }

    def _delete_cookie(self, app: Flask, session: Session, response: Response) -> None:
        """Tells the browser to drop the cookie; the response then varies by it."""
        response.delete_cookie(self.get_cookie_name(app), **self._cookie_attributes(app))
        if not session.accessed:  # else save_session added it already
            response.vary.add("Cookie")

    def _unavailable(self, app: Flask, what: str, error: _errors.Error) -> None:
        """Fail open (log) or closed (raise) on a Redis outage."""
        if not self.fail_open(app):
            raise error
        log.warning("sessionkeeper: %s failed, continuing without a stored session: %s", what, error)

    # -- the Flask interface ---------------------------------------------------

    def open_session(self, app: Flask, request: Request) -> Session | None:
        shared = self.shared_secrets(app)
        if shared is None and not app.secret_key:
            return None  # Flask's null session: "no secret key was set"
        cookie = request.cookies.get(self.get_cookie_name(app))
        if not cookie:
            return self.session_class()
        peer = None
        sid = self._cookie_sid(app, cookie, shared)
        if sid is None:
            # Not one of ours: with migration on, maybe Flask-Session's.
            peer = self.migration(app)
            sid = self._peer_sid(app, cookie, peer["use_signer"]) if peer else None
            if sid is None:
                return self.session_class()
        if not is_valid_id(sid):
            return self.session_class()
        store = self.get_store(app)
        try:
            loaded = store.load(sid)
            if loaded is None and peer is not None:
                found = _migrate.migrate(store, sid, peer["sources"], peer["allow_pickle"], log)
                if found is None:
                    return self.session_class()
                session = self.session_class(found[0], sid, found[1])
                session.modified = True  # our signed cookie replaces the peer's
                return session
        except _errors.CodecError as e:
            # The engine has already removed the undecodable session.
            log.warning("sessionkeeper: dropped a session that could not be decoded: %s", e)
            return self.session_class()
        except _UNAVAILABLE as e:
            self._unavailable(app, "loading the session", e)
            return self.session_class(unavailable=True)
        if loaded is None:
            return self.session_class()
        return self.session_class(loaded.data, sid, loaded.baseline)

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        assert isinstance(session, Session), "sessionkeeper.flask.SessionInterface got a foreign session object"
        if session.accessed:
            response.vary.add("Cookie")
        if session.unavailable:
            # Failed open: nothing was loaded, so nothing may be written, and
            # the cookie stays for when Redis is back.
            if session.modified:
                log.warning("sessionkeeper: session changes dropped, Redis was unavailable")
            return
        store = self.get_store(app)

        if not session:
            # Emptied: remove it (Flask's own rule: only when modified).
            if session.modified:
                if session.sid is not None:
                    try:
                        store.destroy(session.sid)
                    except _UNAVAILABLE as e:
                        self._unavailable(app, "destroying the session", e)
                self._delete_cookie(app, session, response)
            return

        try:
            if session.sid is None:
                session.sid, session.baseline = store.create(dict(session))
                session.modified = True  # a new id: the cookie must be sent
            else:
                assert session.baseline is not None
                # Always handed to the engine: it compares with the baseline,
                # so unchanged sessions cost no round trip, and changes inside
                # nested values are saved without `session.modified`.
                outcome = store.save(session.sid, session.baseline, dict(session))
                if outcome == "gone":
                    # Destroyed or expired meanwhile: a logout stays a logout.
                    log.info("sessionkeeper: the session ended during the request; its changes were dropped")
                    self._delete_cookie(app, session, response)
                    return
                if outcome == "saved":
                    session.modified = True
        except _UNAVAILABLE as e:
            self._unavailable(app, "saving the session", e)
            return

        if not self.should_set_cookie(app, session):
            return
        response.set_cookie(
            self.get_cookie_name(app),
            self._cookie_value(app, session.sid),
            expires=self.get_expiration_time(app, session),
            **self._cookie_attributes(app),
        )
        if not session.accessed:  # else added above
            response.vary.add("Cookie")

    # -- extras ----------------------------------------------------------------

    def regenerate(self, session: SessionMixin, app: Flask | None = None) -> None:
        """Moves the stored session to a new id and deletes the old one, keeping
        its data (call it at login, against session fixation). The new cookie
        is sent with the response. A session that is not stored yet gets a
        fresh id anyway when it is first saved."""
        assert isinstance(session, Session)
        if session.sid is None or session.unavailable:
            return
        if app is None:
            from flask import current_app

            app = t.cast("Flask", current_app._get_current_object())  # type: ignore[attr-defined]
        try:
            new_sid = self.get_store(app).renew(session.sid)
        except _UNAVAILABLE as e:
            self._unavailable(app, "renewing the session id", e)
            return
        if new_sid is None:
            # Gone meanwhile: start over (a fresh id on first write).
            session.sid = None
            session.baseline = None
            session.new = True
        else:
            session.sid = new_sid
        session.modified = True
