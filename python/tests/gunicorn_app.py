"""The WSGI app test_gunicorn.py serves with `gunicorn --preload -w 2`.

Importing it uses the store in the master process (runtime started,
connection open) before gunicorn forks the workers, which is what a
preloaded production app does."""

from __future__ import annotations

import os
import time

from flask import Flask, jsonify, request, session

from sessionkeeper.flask import SessionInterface

app = Flask(__name__)
app.secret_key = "gunicorn-test"
app.config["SESSIONKEEPER_URL"] = os.environ["SK_GUNICORN_URL"]
app.session_interface = SessionInterface()

_store = app.session_interface.get_store(app)
_sid, _ = _store.create({"warm": os.getpid()})
assert _store.load(_sid) is not None
_store.destroy(_sid)


@app.get("/incr")
def incr():
    # `hold`: keeps this (sync) worker busy, so the other one must accept the
    # requests that arrive meanwhile; otherwise one worker may take them all.
    time.sleep(float(request.args.get("hold", 0)))
    session["n"] = session.get("n", 0) + 1
    return jsonify(n=session["n"], pid=os.getpid())
