"""The Flask side of the shared-login demo and end-to-end test
(docs/shared-sessions.md): a real Flask app whose session interface is
Sessionkeeper in shared mode, sharing one login with the Rails and Express
apps beside it. Served by gunicorn; configured by the environment that
tests/e2e/apps.sh sets: SK_REDIS_URL, E2E_KEY_PREFIX, E2E_COOKIE, E2E_SECRET,
E2E_RAILS_PORT, E2E_FLASK_PORT, E2E_EXPRESS_PORT (for the links).
"""

import os
from datetime import timedelta
from html import escape

from flask import Flask, flash, get_flashed_messages, jsonify, redirect, request, session

import sessionkeeper.flask

APP = "Flask"

app = Flask(__name__)
app.config.update(
    # Flask's own secret (flash messages need one; nothing else here signs with it).
    SECRET_KEY=os.environ.get("E2E_FLASK_SECRET_KEY", "e2e-flask-" * 8),
    SESSIONKEEPER_URL=os.environ["SK_REDIS_URL"],
    SESSIONKEEPER_OPTIONS={"key_prefix": os.environ["E2E_KEY_PREFIX"]},
    # Shared mode: the same cookie name, secret, Redis URL and key prefix as
    # the Rails and Express apps; the cookie carries "s:<id>.<signature>".
    SESSIONKEEPER_SHARED_SECRET=os.environ["E2E_SECRET"],
    SESSION_COOKIE_NAME=os.environ["E2E_COOKIE"],
    SESSION_COOKIE_SAMESITE="Lax",
    PERMANENT_SESSION_LIFETIME=timedelta(hours=1),
)
app.session_interface = sessionkeeper.flask.SessionInterface()


@app.before_request
def keep_shared_sessions_permanent():
    # Flask makes a session's cookie last PERMANENT_SESSION_LIFETIME only when
    # the session holds Flask's own `_permanent` flag; a session the Rails or
    # Express app started has none, so without this Flask would re-issue the
    # shared cookie as a browser-session cookie whenever it changes the session.
    if session and not session.permanent:
        session.permanent = True


@app.get("/state")
def state():
    uid = session.get("user_id")
    return jsonify(
        app=APP,
        logged_in=uid is not None,
        name=session.get("name"),
        user_id=uid,
        user_id_type=None if uid is None else type(uid).__name__,
        color=session.get("color"),
        keys=sorted(session.keys()),
    )


@app.post("/login")
def login():
    name = request.form["name"]
    user_id = int(request.form["user_id"], 10)
    session.clear()
    app.session_interface.regenerate(session)  # a new id at login, against session fixation
    session["user_id"] = user_id
    session["name"] = name
    session.permanent = True  # the cookie lasts PERMANENT_SESSION_LIFETIME, like the others' (stored as _permanent)
    flash(f"Logged in on Flask as {name}")
    return redirect("/")


@app.post("/logout")
def logout():
    session.clear()
    return redirect("/")


@app.post("/color")
def color():
    session["color"] = request.form["color"]
    flash("Color set on Flask")
    return redirect("/")


@app.get("/")
def show():
    uid = session.get("user_id")
    if uid is None:
        who = "Not logged in"
    else:
        who = f"Logged in as {escape(session.get('name', ''))}, user_id {uid} (a Python {type(uid).__name__})"
    notice = " ".join(get_flashed_messages())
    links = " | ".join(
        f'<a id="to-{name.lower()}" href="http://127.0.0.1:{os.environ[var]}/">{name}</a>'
        for name, var in (("Rails", "E2E_RAILS_PORT"), ("Flask", "E2E_FLASK_PORT"), ("Express", "E2E_EXPRESS_PORT"))
    )
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><link rel="icon" href="data:,"><title>{APP}: one login across languages</title>
<style>body{{font-family:sans-serif;margin:2em;border-top:8px solid #06c;padding-top:1em}}
form{{margin:.6em 0}}#who{{font-size:1.3em;font-weight:bold}}</style></head>
<body>
<h1>{APP}</h1>
<p id="flash">{escape(notice)}</p>
<p id="who">{who}</p>
<p id="color">color: {escape(str(session.get("color", "(none)")))}</p>
<form id="login" method="post" action="/login">
  <input name="name" value="Ann"> <input name="user_id" value="42"> <button type="submit">Log in</button>
</form>
<form id="color-form" method="post" action="/color">
  <input name="color" value="green"> <button type="submit">Set color</button>
</form>
<form id="logout" method="post" action="/logout"><button type="submit">Log out</button></form>
<nav>{links}</nav>
<p id="keys">session keys: {escape(", ".join(sorted(session.keys())))}</p>
</body></html>"""
