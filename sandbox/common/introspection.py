"""`GET /sandbox/health`, `GET /sandbox/requests` and `POST /sandbox/requests/reset`, which every stand-in
answers: the local stack waits on the first, tests and benchmarks count the bot's calls with the others."""

from __future__ import annotations

import threading
from typing import Protocol

from flask import Blueprint, jsonify


class RequestLog(Protocol):
    def snapshot(self) -> dict: ...

    def reset(self) -> dict: ...


class RequestCounts:
    """Requests counted per key ("METHOD /path", an API method name...) since start or the last reset."""

    def __init__(self):
        self._lock = threading.Lock()
        self._counts: dict[str, int] = {}

    def count(self, key: str) -> None:
        with self._lock:
            self._counts[key] = self._counts.get(key, 0) + 1

    def snapshot(self) -> dict:
        with self._lock:
            return dict(self._counts)

    def reset(self) -> dict:
        with self._lock:
            self._counts.clear()
        return {}


def introspection_blueprint(log: RequestLog) -> Blueprint:
    bp = Blueprint("health_and_requests", __name__)

    @bp.get("/sandbox/health")
    def health():
        return jsonify({"ok": True})

    @bp.get("/sandbox/requests")
    def requests_counted():
        return jsonify(log.snapshot())

    @bp.post("/sandbox/requests/reset")
    def requests_reset():
        return jsonify(log.reset())

    return bp
