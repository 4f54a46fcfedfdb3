"""Shared mode (one login across apps in different languages): reading the
``SESSIONKEEPER_SHARED_SECRET`` setting of either framework. Signing and
verifying are the engine's (:func:`sessionkeeper.sign_cookie`,
:func:`sessionkeeper.unsign_cookie`)."""

from __future__ import annotations

import typing as t

from . import _errors

Secrets = t.List[t.Union[str, bytes]]


def secrets_from(conf: t.Any) -> Secrets | None:
    """The secrets (the first signs, every one verifies), or None when shared
    mode is off (unset or empty)."""
    if conf is None or conf == "" or conf == b"":
        return None
    if isinstance(conf, (str, bytes)):
        return [conf]
    try:
        secrets = list(conf)
    except TypeError:
        raise _errors.ConfigError(
            f"SESSIONKEEPER_SHARED_SECRET must be a str, bytes or a list of them, not {type(conf).__name__}"
        ) from None
    if not secrets:
        raise _errors.ConfigError("SESSIONKEEPER_SHARED_SECRET is an empty list; give at least one secret")
    return secrets
