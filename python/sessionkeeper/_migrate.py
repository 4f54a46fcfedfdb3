"""Reading sessions that a peer store (Flask-Session, Django's cache backend)
wrote, for the adapters' opt-in migration. The engine finds the peer's bytes
(``legacy_read``) and rewrites them in our format (``legacy_migrate``); this
module only decodes the bytes.

Pickle is refused unless the user opted in: unpickling data from Redis runs
code chosen by anyone who can write to that Redis.

django-redis may compress values (its ``COMPRESSOR`` option): zlib, gzip,
lzma (xz), lz4 (frame) or zstd, each only above a minimum length. They are
told apart by their magic bytes, which no session value (a MessagePack map,
a JSON object or a pickle) starts with. zlib, gzip and lzma come with
Python; lz4 needs the ``lz4`` package and zstd ``pyzstd`` or ``zstandard``
(the packages django-redis itself uses), otherwise such a value is logged and
treated as no session.
"""

from __future__ import annotations

import json
import logging
import pickle
import typing as t
import zlib

from . import _errors
from ._native import Baseline, decode_msgpack

Sources = list[tuple[str, str]]


class PeerValueError(ValueError):
    """A peer's session value that we cannot (or may not) decode."""


#: Decompressed values larger than this are refused (a session is small; a
#: tiny compressed value must not be able to fill the memory).
MAX_DECOMPRESSED = 16 * 1024 * 1024


def _too_large() -> PeerValueError:
    return PeerValueError(f"the value decompresses to more than {MAX_DECOMPRESSED} bytes")


def _inflate(raw: bytes, wbits: int) -> bytes:
    d = zlib.decompressobj(wbits)
    out = d.decompress(raw, MAX_DECOMPRESSED + 1)
    if len(out) > MAX_DECOMPRESSED:
        raise _too_large()
    if not d.eof:
        raise PeerValueError("truncated compressed value")
    return out


def _unxz(raw: bytes) -> bytes:
    import lzma

    d = lzma.LZMADecompressor()
    out = d.decompress(raw, MAX_DECOMPRESSED + 1)
    if len(out) > MAX_DECOMPRESSED:
        raise _too_large()
    if not d.eof:
        raise PeerValueError("truncated compressed value")
    return out


def _unlz4(raw: bytes) -> bytes:
    try:
        import lz4.frame
    except ImportError:
        raise PeerValueError("the value is lz4-compressed; install the lz4 package to migrate it") from None
    d = lz4.frame.LZ4FrameDecompressor()
    out = d.decompress(raw, max_length=MAX_DECOMPRESSED + 1)
    if len(out) > MAX_DECOMPRESSED:
        raise _too_large()
    if not d.eof:
        raise PeerValueError("truncated compressed value")
    return out


def _unzstd(raw: bytes) -> bytes:
    try:
        import pyzstd

        d = pyzstd.ZstdDecompressor()
        out = d.decompress(raw, MAX_DECOMPRESSED + 1)
        eof = d.eof
    except ImportError:
        try:
            import zstandard
        except ImportError:
            raise PeerValueError(
                "the value is zstd-compressed; install pyzstd or zstandard to migrate it"
            ) from None
        d = zstandard.ZstdDecompressor().decompressobj()
        out = d.decompress(raw)  # sessions are small; the cap is checked below
        eof = d.eof
    if len(out) > MAX_DECOMPRESSED:
        raise _too_large()
    if not eof:
        raise PeerValueError("truncated compressed value")
    return out


def decompress(raw: bytes) -> bytes:
    """Undoes django-redis' compressors, found by their magic bytes; other
    values (too short to have been compressed, or never compressed) are
    returned as they are."""
    try:
        if raw[:2] == b"\x1f\x8b":  # gzip
            return _inflate(raw, 16 + zlib.MAX_WBITS)
        if raw[:6] == b"\xfd7zXZ\x00":  # xz, django-redis' lzma
            return _unxz(raw)
        if raw[:4] == b"\x04\x22\x4d\x18":  # lz4 frame
            return _unlz4(raw)
        if raw[:4] == b"\x28\xb5\x2f\xfd":  # zstd frame
            return _unzstd(raw)
        if len(raw) >= 2 and raw[0] & 0x0F == 8 and raw[0] >> 4 <= 7 and (raw[0] << 8 | raw[1]) % 31 == 0:
            return _inflate(raw, zlib.MAX_WBITS)  # zlib (RFC 1950 header)
    except PeerValueError:
        raise
    except Exception as e:  # noqa: BLE001 - any decompressor's error
        raise PeerValueError(f"cannot decompress the value: {e}") from None
    return raw


def decode_peer(raw: bytes, allow_pickle: bool) -> dict[str, t.Any]:
    """MessagePack (Flask-Session >= 0.6, django-redis' msgpack serializer),
    JSON, or with ``allow_pickle`` pickle (protocol 2 and later), each
    possibly compressed by django-redis (see :func:`decompress`)."""
    raw = decompress(raw)
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
