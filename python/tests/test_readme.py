"""The README's examples run as written (only the Redis URL is the test's)."""

from __future__ import annotations

import pathlib
import re

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"^```python\n(.*?)^```$", README.read_text(), flags=re.S | re.M)


def test_the_direct_use_example_runs(url):
    [block] = [b for b in python_blocks() if "sessionkeeper.Store(" in b]
    assert "redis://127.0.0.1:6379/0" in block, "the example's URL changed: update this test"
    scope: dict = {}
    exec(compile(block.replace("redis://127.0.0.1:6379/0", url), str(README), "exec"), scope)  # noqa: S102
    store, sid = scope["store"], scope["sid"]
    assert scope["loaded"] is not None and scope["data"] == {"user_id": 42, "cart": [1, 2]}
    assert store.load(sid) is None, "renewed, then destroyed: the old id is gone"
