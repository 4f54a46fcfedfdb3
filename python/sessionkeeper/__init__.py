"""Web sessions in Redis for Python, on the Sessionkeeper engine.

``Store`` is for synchronous code and releases the GIL while it waits for
Redis; ``AsyncStore`` is the asyncio twin. The framework adapters live in
:mod:`sessionkeeper.flask` and :mod:`sessionkeeper.django` (imported on
demand, so neither framework is required).
"""

from __future__ import annotations

from ._errors import (
    AuthError,
    CodecError,
    ConfigError,
    ConnectionError,
    Error,
    InvalidIdError,
    TimeoutError,
    TooLargeError,
    UnexpectedError,
)
from ._native import (
    OPTION_NAMES,
    AsyncStore,
    Baseline,
    Loaded,
    Store,
    generate_id,
    is_valid_id,
    sign_cookie,
    unsign_cookie,
)

from ._green import notice_gevent as _notice_gevent

__version__ = "0.1.0"

_notice_gevent()

__all__ = [
    "Store",
    "AsyncStore",
    "Baseline",
    "Loaded",
    "generate_id",
    "is_valid_id",
    "sign_cookie",
    "unsign_cookie",
    "OPTION_NAMES",
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
