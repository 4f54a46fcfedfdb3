"""Reading sessions that a peer store (Flask-Session, Django's cache backend)
wrote, for the adapters' opt-in migration. The engine finds the peer's bytes
(``legacy_read``) and rewrites them in our format (``legacy_migrate``); this
module only decodes the bytes.

Pickle is refused unless the user opted in: unpickling data from Redis runs
code chosen by anyone who can write to that Redis.
"""

from __future__ import annotations

import json
import logging
import pickle
import typing as t

from . import _errors
from ._native import Baseline, decode_msgpack

Sources = list[tuple[str, str]]


class PeerValueError(ValueError):
    """A peer's session value that we cannot (or may not) decode."""


def decode_peer(raw: bytes, allow_pickle: bool) -> dict[str, t.Any]:
    """MessagePack (Flask-Session >= 0.6, django-redis' msgpack serializer),
    JSON, or with ``allow_pickle`` pickle (protocol 2 and later)."""
    if raw[:1] == b"\x80" and len(raw) > 1:  # b"\x80" alone is an empty msgpack map
        if not allow_pickle:
            raise PeerValueError("the value is pickled; pickle is only read when allow_pickle is set")
        try:
            value = pickle.loads(raw)  # noqa: S301 - explicit opt-in, see the docs
        except Exception as e:  # noqa: BLE001 - any unpickling failure
            raise PeerValueError(f"cannot unpickle the value: {e}") from None
    else:
        try:
            value = decode_msgpack(raw)
        except _errors.CodecError:
            try:
                value = json.loads(raw)
            except ValueError:
                raise PeerValueError("the value is neither MessagePack nor JSON") from None
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise PeerValueError(f"the value is a {type(value).__name__}, not a dict with str keys")
    return value


_NOT_STORABLE = (TypeError, _errors.CodecError, _errors.TooLargeError)


def _decoded(found: tuple[int, bytes] | None, sources: Sources, allow_pickle: bool, log: logging.Logger):
    if found is None:
        return None
    index, raw = found
    try:
        return decode_peer(raw, allow_pickle)
    except PeerValueError as e:
        log.warning("sessionkeeper: ignored a session under %r that could not be migrated: %s", sources[index][1], e)
        return None


def migrate(store, sid: str, sources: Sources, allow_pickle: bool, log: logging.Logger, window=None):
    """On a miss: the peer's session for ``sid`` rewritten in our format, as
    ``(data, baseline)``, or None (no peer session, or one we cannot read:
    logged, left in place). ``window(data)`` picks the store handle to write
    with (per-session expiry)."""
    data = _decoded(store.legacy_read(sid, sources), sources, allow_pickle, log)
    if data is None:
        return None
    target = window(data) if window else store
    try:
        baseline: Baseline | None = target.legacy_migrate(sid, sources, data)
    except _NOT_STORABLE as e:
        log.warning("sessionkeeper: a peer session could not be stored in our format, ignored: %s", e)
        return None
    if baseline is None:  # a concurrent request migrated it first
        loaded = store.load(sid)
        return None if loaded is None else (loaded.data, loaded.baseline)
    return data, baseline


async def amigrate(store, sid: str, sources: Sources, allow_pickle: bool, log: logging.Logger, window=None):
    """The asyncio twin of :func:`migrate` (``store`` is an ``AsyncStore``)."""
    data = _decoded(await store.legacy_read(sid, sources), sources, allow_pickle, log)
    if data is None:
        return None
    target = window(data) if window else store
    try:
        baseline = await target.legacy_migrate(sid, sources, data)
    except _NOT_STORABLE as e:
        log.warning("sessionkeeper: a peer session could not be stored in our format, ignored: %s", e)
        return None
    if baseline is None:
        loaded = await store.load(sid)
        return None if loaded is None else (loaded.data, loaded.baseline)
    return data, baseline
