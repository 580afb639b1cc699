"""Small helpers the integration and end-to-end tests share: wait for a condition, post a delivery."""
from __future__ import annotations

import json
import time
import urllib.error
import urllib.request


def wait_for(check, timeout: float = 20.0, every: float = 0.1):
    """Poll `check()` until it returns something truthy; that value is returned."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s; last value: {last!r}")


def post(url: str, body: bytes, headers: dict) -> tuple[int, dict]:
    """POST a delivery; (status, JSON answer) whatever the status."""
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())
