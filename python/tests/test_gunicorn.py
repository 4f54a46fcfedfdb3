"""gunicorn --preload with 2 workers serves sessions correctly: the store was
used in the master before fork, and each worker reconnects on its own."""

from __future__ import annotations

import http.cookiejar
import json
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request

import pytest

HERE = pathlib.Path(__file__).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_gunicorn_preload_two_workers(url):
    gunicorn = shutil.which("gunicorn", path=str(pathlib.Path(sys.executable).parent))
    if gunicorn is None:
        pytest.skip("gunicorn is not installed in this environment")
    port = free_port()
    env = dict(os.environ, SK_GUNICORN_URL=url, PYTHONPATH=str(HERE))
    proc = subprocess.Popen(
        [gunicorn, "--preload", "-w", "2", "-b", f"127.0.0.1:{port}", "--timeout", "20", "gunicorn_app:app"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while True:
            try:
                urllib.request.urlopen(base + "/incr", timeout=2).read()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    out = proc.stdout.read().decode() if proc.poll() is not None else ""
                    pytest.fail(f"gunicorn did not come up: {out}")
                time.sleep(0.2)

        pids: set[int] = set()
        errors: list[str] = []
        rounds = 15

        def user():
            opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
            for i in range(1, rounds + 1):
                body = json.loads(opener.open(base + "/incr?hold=0.02", timeout=5).read())
                pids.add(body["pid"])
                if body["n"] != i:
                    errors.append(f"expected {i}, got {body['n']}")

        threads = [threading.Thread(target=user, daemon=True) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert not any(t.is_alive() for t in threads), "requests hung"
        assert errors == []
        assert len(pids) == 2, f"both workers should have served requests, saw {pids}"
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
