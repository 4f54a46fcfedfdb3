"""The cheapest server-side session store possible, for Flask and Django:
the session dict kept in this process, under a random id in a plain cookie;
no network, no encoding, no signing. Not a store anyone should use (one
process, nothing expires): the benchmark's upper bound, what the framework's
own session machinery costs when the store costs nothing. A target above
``floor / peer`` cannot be met by any store.

The ``round trip`` variants (``FlaskRoundTripInterface``; Django:
``SESSION_ENGINE = "floor_rtt"``) add what no store that keeps sessions in
Redis can avoid: one round trip (a bare ``PING`` on a raw socket, no client
library, nothing encoded) when a request's session is loaded and one when it
is saved. A target above ``floor-rtt / peer`` cannot be met by any Redis store
that loads once and saves once.
"""

from __future__ import annotations

import os
import secrets
import socket
import typing as t
from urllib.parse import urlsplit

from flask.sessions import SecureCookieSession, SessionInterface

_SESSIONS: dict[str, dict[str, t.Any]] = {}

_socket: socket.socket | None = None


def round_trip() -> None:
    """One PING to the benchmark's Redis and its reply, on one raw socket."""
    global _socket
    if _socket is None:
        url = urlsplit(os.environ.get("SK_REDIS_URL", "redis://127.0.0.1:6379"))
        _socket = socket.create_connection((url.hostname or "127.0.0.1", url.port or 6379))
        _socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    _socket.sendall(b"PING\r\n")
    reply = _socket.recv(64)
    if reply != b"+PONG\r\n":
        raise RuntimeError(f"floor: unexpected reply to PING: {reply!r}")


class FlaskSession(SecureCookieSession):
    sid: str | None = None


class FlaskInterface(SessionInterface):
    networked = False

    def open_session(self, app, request):
        sid = request.cookies.get(self.get_cookie_name(app))
        if sid and self.networked:
            round_trip()
        data = _SESSIONS.get(sid) if sid else None
        session = FlaskSession(dict(data) if data is not None else {})
        session.sid = sid if data is not None else None
        return session

    def save_session(self, app, session, response):
        if not session.modified:
            return
        if self.networked:
            round_trip()
        if session.sid is None:
            session.sid = secrets.token_hex(16)
        _SESSIONS[session.sid] = dict(session)
        response.set_cookie(
            self.get_cookie_name(app),
            session.sid,
            expires=self.get_expiration_time(app, session),
            httponly=self.get_cookie_httponly(app),
            path=self.get_cookie_path(app),
        )


class FlaskRoundTripInterface(FlaskInterface):
    networked = True


# Django: SESSION_ENGINE = "floor" (this module on sys.path).
from django.contrib.sessions.backends.base import CreateError, SessionBase  # noqa: E402


class SessionStore(SessionBase):
    networked = False

    def load(self):
        if self.session_key and self.networked:
            round_trip()
        data = _SESSIONS.get(self.session_key) if self.session_key else None
        if data is None:
            self._session_key = None
            return {}
        return dict(data)

    def exists(self, session_key):
        return session_key in _SESSIONS

    def create(self):
        self._session_key = self._get_new_session_key()
        self.save(must_create=True)
        self.modified = True

    def save(self, must_create=False):
        if self.session_key is None:
            return self.create()
        if self.networked:
            round_trip()
        if must_create and self.session_key in _SESSIONS:
            raise CreateError
        _SESSIONS[self.session_key] = dict(self._get_session(no_load=must_create))

    def delete(self, session_key=None):
        _SESSIONS.pop(session_key or self.session_key, None)

    @classmethod
    def clear_expired(cls):
        pass
