"""CPU-clock probes around each step of the receiver, inside the gunicorn workers (bench/ingest_profile.py).

gunicorn loads `probes:receiver_app()` or `probes:floor_app()` (this folder on PYTHONPATH) instead of the
Procfile's app: the same app, with each step of a delivery wrapped in a probe that reads the thread's CPU clock
(`CLOCK_THREAD_CPUTIME_ID`: time on a CPU only, never time waiting for one, so a busy machine does not inflate
it) on entry and exit and keeps the step's *exclusive* time (its own, less the probed steps it called).
`GET /_probes` answers one worker's totals; the driver asks until it has heard from every worker.

Sampling profilers were tried first: on this shared machine py-spy counts a thread that is runnable but
waiting for a core as busy (70 % of its samples landed in the socket calls to Redis), so it measures wall
time, not CPU.
"""

from __future__ import annotations

import os
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from flask import Flask, jsonify

CLOCK = time.thread_time


class Probes:
    """Exclusive CPU time and calls per step, per thread (merged on read: no lock on the hot path)."""

    def __init__(self) -> None:
        self._local = threading.local()
        self._threads: list[tuple[dict, dict]] = []
        self._lock = threading.Lock()

    def _mine(self):
        local = self._local
        if not hasattr(local, "stack"):
            local.stack, local.totals, local.calls = [], defaultdict(float), defaultdict(int)
            with self._lock:
                self._threads.append((local.totals, local.calls))
        return local

    def wrap(self, step: str, fn: Callable) -> Callable:
        def probed(*args: Any, **kwargs: Any) -> Any:
            mine = self._mine()
            mine.stack.append(0.0)
            started = CLOCK()
            try:
                return fn(*args, **kwargs)
            finally:
                spent = CLOCK() - started
                children = mine.stack.pop()
                mine.totals[step] += spent - children
                mine.calls[step] += 1
                if mine.stack:
                    mine.stack[-1] += spent

        probed.__wrapped__ = fn  # type: ignore[attr-defined]
        return probed

    def patch(self, owner: Any, name: str, step: str) -> None:
        setattr(owner, name, self.wrap(step, getattr(owner, name)))

    def totals(self) -> dict:
        seconds: dict[str, float] = defaultdict(float)
        calls: dict[str, int] = defaultdict(int)
        with self._lock:
            for totals, counts in self._threads:
                for step, value in list(totals.items()):
                    seconds[step] += value
                for step, value in list(counts.items()):
                    calls[step] += value
        return {"pid": os.getpid(), "seconds": seconds, "calls": calls}


PROBES = Probes()
APP = "WSGI app: Flask request context, URL routing, response object"
FRONT = "WSGI: webhooks in front of Flask (path, status line, headers)"


def _serve_totals(app: Flask, step: str = APP) -> Flask:
    app.add_url_rule("/_probes", "probes", lambda: jsonify(PROBES.totals()))
    app.wsgi_app = PROBES.wrap(step, app.wsgi_app)  # type: ignore[method-assign]
    return app


def _probe_body_reads() -> None:
    from werkzeug.wrappers import Request

    PROBES.patch(Request, "get_data", "reading the body (werkzeug get_data)")


def floor_app() -> Flask:
    """bench/floor_app.py, probed the same way: what Flask and reading the body cost there."""
    import floor_app as floor

    _probe_body_reads()
    return _serve_totals(floor.create_app())


def receiver_app() -> Flask:
    """bot.web's app with every step of a delivery probed (module attributes patched before the app is built)."""
    from bot import web
    from core import events, logs, queue, reloading, routing
    from handlers import github

    PROBES.patch(web, "read_body", "reading the body (werkzeug's input stream)")
    PROBES.patch(reloading.ReloadingConfig, "current", "settings look-up (config.toml reloaded when changed)")
    PROBES.patch(web.Receiver, "receive", "receiver: size check, headers, outcome")
    PROBES.patch(events, "github_signature", "HMAC-SHA256 of the raw body + compare")
    PROBES.patch(events, "_json", "JSON parse of the body")
    verify, env = web.SOURCES["github"]
    web.SOURCES["github"] = (PROBES.wrap("event normalisation (Event, header checks)", verify), env)
    PROBES.patch(routing.Router, "dispatch", "routing + handler (payload shape checks)")
    PROBES.patch(github, "parse_comment", "command parser (/train toy)")
    PROBES.patch(web.Receiver, "enqueue", "receiver: delivery record")
    PROBES.patch(queue.Queue, "submit", "task message: ids, signed-content keys, delivery record JSON")
    PROBES.patch(queue, "celery_message", "Celery protocol-2 message build + JSON")
    PROBES.patch(logs.Log, "_log", "logging")
    PROBES.patch(web.Receiver, "answer", "answer: metrics, JSON body, Response")
    PROBES.patch(queue.Queue, "_evalsha", "Redis: dedupe + enqueue, one EVALSHA round trip (client side)")
    return _serve_totals(web.create_app(), FRONT)

