"""The exception tree of sessionkeeper.

Every error the engine reports is an instance of :class:`Error`. Each
subclass also derives from the matching built-in where one fits, so code that
already catches ``ConnectionError``, ``TimeoutError`` or ``ValueError`` keeps
working. ``temporary`` tells whether the same call may succeed later (Redis
restarting, failing over, overloaded) or will fail the same way again.
"""

from __future__ import annotations

import builtins

__all__ = [
    "Error",
    "ConfigError",
    "ConnectionError",
    "TimeoutError",
    "AuthError",
    "CodecError",
    "TooLargeError",
    "InvalidIdError",
    "UnexpectedError",
]


class Error(Exception):
    """Base class of every sessionkeeper error.

    Attributes
    ----------
    kind : str
        The engine's error kind: ``"config"``, ``"connection"``, ``"timeout"``,
        ``"auth"``, ``"codec"``, ``"too_large"``, ``"invalid_id"`` or
        ``"unexpected"``. The same names are used by every language binding.
    temporary : bool
        True when retrying the same call later may succeed.
    """

    kind = "unexpected"
    temporary: bool

    def __init__(self, message: str = "", *, temporary: bool = False) -> None:
        super().__init__(message)
        self.temporary = temporary

    def __reduce__(self):  # keep .temporary across pickling (multiprocessing)
        return (_rebuild, (type(self), str(self), self.temporary))


def _rebuild(cls, message, temporary):
    return cls(message, temporary=temporary)


class ConfigError(Error, ValueError):
    """The URL or an option is wrong; fix the configuration."""

    kind = "config"


class ConnectionError(Error, builtins.ConnectionError):
    """Redis could not be reached, or the connection broke."""

    kind = "connection"


class TimeoutError(Error, builtins.TimeoutError):
    """Redis did not answer within ``command_timeout`` (or ``connect_timeout``)."""

    kind = "timeout"


class AuthError(Error):
    """Redis refused the credentials, or the ACL user may not run a command."""

    kind = "auth"


class CodecError(Error, ValueError):
    """A stored value could not be decoded, or a value cannot be encoded
    (an int beyond 64 bits, a naive datetime, nesting too deep)."""

    kind = "codec"


class TooLargeError(Error, ValueError):
    """The encoded session is larger than ``max_size``; nothing was written."""

    kind = "too_large"


class InvalidIdError(Error, ValueError):
    """A write used an id that is not a valid session id."""

    kind = "invalid_id"


class UnexpectedError(Error):
    """Anything else: a bug, or a Redis reply the engine does not understand."""

    kind = "unexpected"
