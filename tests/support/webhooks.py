"""Post a webhook delivery the way a source does, and read the answer whatever its status."""

from __future__ import annotations

import json
import urllib.error
import urllib.request


def post(url: str, body: bytes, headers: dict) -> tuple[int, dict]:
    """POST a delivery; (status, JSON answer) whatever the status."""
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())
