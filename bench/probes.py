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

import gc
import os
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from flask import Flask, jsonify

CLOCK = time.thread_time


OUTSIDE = "(no probe: the server around the app)"


class Probes:
    """Per step: exclusive CPU seconds, calls, and probed calls made directly inside it (`nested`, to take the
    probes' own cost out again: see `calibrate`). Per thread, merged on read: no lock on the hot path."""

    def __init__(self) -> None:
        self._local = threading.local()
        self._threads: list[tuple[dict, dict, dict]] = []
        self._lock = threading.Lock()

    def _mine(self):
        local = self._local
        if not hasattr(local, "stack"):
            # stack: one [step, seconds spent in probed callees] per probe open on this thread
            local.stack, local.totals, local.calls, local.nested = (
                [],
                defaultdict(float),
                defaultdict(int),
                defaultdict(int),
            )
            with self._lock:
                self._threads.append((local.totals, local.calls, local.nested))
        return local

    def _close(self, mine, step: str, spent: float) -> None:
        _, children = mine.stack.pop()
        mine.totals[step] += spent - children
        mine.calls[step] += 1
        if mine.stack:
            mine.stack[-1][1] += spent
        mine.nested[mine.stack[-1][0] if mine.stack else OUTSIDE] += 1

    def wrap(self, step: str, fn: Callable) -> Callable:
        def probed(*args: Any, **kwargs: Any) -> Any:
            mine = self._mine()
            mine.stack.append([step, 0.0])
            started = CLOCK()
            try:
                return fn(*args, **kwargs)
            finally:
                self._close(mine, step, CLOCK() - started)

        probed.__wrapped__ = fn  # type: ignore[attr-defined]
        return probed

    def collections(self, phase: str, info: dict) -> None:
        """gc.callbacks: a collection is a step of its own, taken out of the step it interrupted."""
        mine = self._mine()
        step = f"garbage collector (generation {info['generation']})"
        if phase == "start":
            mine.stack.append([step, 0.0])
            mine.gc_started = CLOCK()
        else:
            self._close(mine, step, CLOCK() - mine.gc_started)

    def patch(self, owner: Any, name: str, step: str) -> None:
        setattr(owner, name, self.wrap(step, getattr(owner, name)))

    def totals(self) -> dict:
        out: dict[str, Any] = {"pid": os.getpid(), "seconds": defaultdict(float), "calls": defaultdict(int)}
        out["nested"] = defaultdict(int)
        with self._lock:
            for parts in self._threads:
                for key, part in zip(("seconds", "calls", "nested"), parts, strict=True):
                    for step, value in list(part.items()):
                        out[key][step] += value
        return out


def _nothing() -> None:
    return None


def _loop(n: int, call: Callable) -> None:
    for _ in range(n):
        call()


def calibrate(n: int = 100_000, rounds: int = 5) -> tuple[float, float]:
    """(inside, outside): CPU seconds one probe adds to the step it wraps, and to the step that called it (its
    caller's exclusive time, or the server line for the outermost probe). A probed no-op inside a probed loop."""
    best = (float("inf"), float("inf"))
    for _ in range(rounds):
        probes = Probes()
        child = probes.wrap("child", _nothing)
        started = CLOCK()
        _loop(n, _nothing)
        base = CLOCK() - started
        probes.wrap("parent", _loop)(n, child)
        totals = probes.totals()["seconds"]
        # the two add up to exactly what the probes added over `base`; how they split is right to a loop step
        inside = max(0.0, totals["child"] - base) / n
        outside = max(0.0, totals["parent"]) / n
        best = min(best, (inside, outside), key=sum)
    return best


PROBES = Probes()
gc.callbacks.append(PROBES.collections)
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
