"""Tells the engine when gevent has monkey-patched this process.

A native call that waits for Redis blocks gevent's hub, and with it every
greenlet of the worker (for up to ``command_timeout`` when Redis hangs). Once
gevent has patched the process, the sync ``Store`` runs its waits in the hub's
thread pool instead, so other greenlets run meanwhile, as they do while a
pure-Python client waits on a patched socket (bindings/python/src/green.rs).

gevent calls :func:`gevent_patched` through its
``gevent.plugins.monkey.did_patch_all`` entry point (pyproject.toml), also
when the patching comes after this package was imported (gunicorn's gevent
worker patches after ``--preload`` loaded the app); :func:`notice_gevent`
catches a process that was patched before the import.
"""

from __future__ import annotations

import sys

from . import _native


def _in_hub_pool(fn):
    import gevent

    return gevent.get_hub().threadpool.apply(fn)


def gevent_patched(event: object = None) -> None:
    _native._run_waits_with(_in_hub_pool)


def notice_gevent() -> None:
    monkey = sys.modules.get("gevent.monkey")
    if monkey is not None and monkey.is_module_patched("socket"):
        gevent_patched()
