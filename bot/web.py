"""The receiver: verify, normalise, dedupe + enqueue, answer. No outbound calls, ever.

GitHub waits 10 s for a 2xx and never redelivers on its own; Slack waits 3 s. So the receiver
does only what it can do in a millisecond: check the signature on the raw bytes, turn the
delivery into an `Event`, let the pure handlers decide, and write the tasks to Redis.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import TYPE_CHECKING

import redis
from flask import Flask, Response, jsonify
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from redis.backoff import ExponentialBackoff
from redis.retry import Retry
from werkzeug.datastructures import EnvironHeaders
from werkzeug.wsgi import get_content_length, get_input_stream

from bot import durability
from core import events
from core.config import Settings, secret
from core.logs import get_logger, setup_logging
from core.queue import Queue, compact
from core.reloading import ReloadingConfig
from core.routing import Ignored, Router

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

log = get_logger("bot.web")

# source → (verify + normalise, env var holding its secret)
SOURCES: dict[str, tuple[Callable, str]] = {
    "github": (events.github_event, "GITHUB_WEBHOOK_SECRET"),
    "mlflow": (events.mlflow_event, "MLFLOW_WEBHOOK_SECRET"),
    "databricks": (events.databricks_event, "DATABRICKS_WEBHOOK_SECRET"),
    "slack/commands": (events.slack_command_event, "SLACK_SIGNING_SECRET"),
    "slack/interactions": (events.slack_interaction_event, "SLACK_SIGNING_SECRET"),
}


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            from prometheus_client import multiprocess

            multiprocess.MultiProcessCollector(self.registry)
            target = None  # values are written to the multiprocess dir, read by the collector
        else:
            target = self.registry
        self.webhooks = Counter(
            "mlops_bot_webhooks_total", "Deliveries by source and outcome", ["source", "outcome"], registry=target
        )
        self.latency = Histogram(
            "mlops_bot_ack_seconds",
            "Time to answer a delivery",
            ["source"],
            registry=target,
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5),
        )
        self._children: dict[tuple[str, str], tuple] = {}  # labelled once: `labels()` takes a lock each call

    def observe(self, source: str, outcome: str, seconds: float) -> None:
        children = self._children.get((source, outcome))
        if children is None:
            children = (self.webhooks.labels(source, outcome), self.latency.labels(source))
            self._children[(source, outcome)] = children
        children[0].inc()
        children[1].observe(seconds)


def create_app(
    settings: Settings | None = None,
    *,
    redis_client: redis.Redis | None = None,
    router: Router | None = None,
    clock: Callable[[], float] = time.time,
) -> Flask:
    """The Flask app: webhooks, health, readiness, metrics (and the dashboard when configured)."""
    setup_logging(os.environ.get("LOG_LEVEL", "INFO"))
    reloading = None if settings else ReloadingConfig()  # config.toml edited: the next delivery reads it
    settings = settings or reloading.current()  # type: ignore[union-attr]
    if router is None:
        from handlers import router as every_handler  # the composition root: web → handlers → bot

        router = every_handler
    client = redis_client or _redis_client()
    metrics = Metrics()
    receiver = Receiver(
        reloading.current if reloading else settings,
        Queue(client, dedupe_ttl=settings.bot.dedupe_ttl_seconds),
        router,
        metrics,
        clock,
    )

    app = Flask("mlops-bot")
    # one byte over the limit: the receiver reads up to limit + 1 bytes and refuses what it actually read (413
    # before the signature's 401); the buffering web worker (bot/cli.py) buffers no more than this
    app.config["MAX_CONTENT_LENGTH"] = settings.bot.max_body_bytes + 1
    app.extensions["mlops-bot"] = {"settings": settings, "redis": client, "queue": receiver.queue, "metrics": metrics}
    from bot.dashboard import dashboard_blueprint  # Redis reads only; 404 at / unless its auth is configured

    app.register_blueprint(dashboard_blueprint(client, job_prefix=settings.bot.job_prefix))
    _add_operations_routes(app, client, metrics)
    # Deliveries are answered in front of Flask: they need none of its request context, URL map or Response
    # object, which cost a delivery more than its signature check (docs/performance.md#ingest).
    app.wsgi_app = receiver.in_front_of(app.wsgi_app)  # type: ignore[method-assign,assignment]
    return app


def _redis_client() -> redis.Redis:
    return redis.Redis.from_url(
        os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
        socket_connect_timeout=1,
        socket_timeout=2,
        health_check_interval=30,
        # one quick retry, then 503: the sender retries later, a blocked thread helps nobody
        retry=Retry(ExponentialBackoff(cap=0.05, base=0.01), 1),
    )


STATUS_LINES = {status.value: f"{status.value} {status.phrase}" for status in HTTPStatus}


class Receiver:
    """One delivery: size check, signature, `Event`, pure handlers, one Redis call, an answer."""

    def __init__(
        self,
        settings: Settings | Callable[[], Settings],
        queue: Queue,
        router: Router,
        metrics: Metrics,
        clock: Callable[[], float],
    ):
        self._settings = settings if callable(settings) else (lambda: settings)
        self.queue, self.router, self.metrics, self.clock = queue, router, metrics, clock
        self.secrets = {source: secret(env) for source, (_, env) in SOURCES.items()}

    @property
    def settings(self) -> Settings:
        """The current settings (core/reloading.py: config.toml read again when it changes)."""
        return self._settings()

    def in_front_of(self, app: WSGIApplication) -> WSGIApplication:
        """WSGI: `POST /webhooks/<source>` answered here, everything else handed to `app` (Flask)."""
        paths = {f"/webhooks/{source}": source for source in SOURCES}

        def webhooks(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
            source = paths.get(environ.get("PATH_INFO", ""))
            if source is None:
                return app(environ, start_response)
            if environ.get("REQUEST_METHOD") != "POST":
                status, body = 405, _json({"status": "refused", "reason": "webhooks are POSTed"})
                start_response(STATUS_LINES[status], [*_headers(body), ("Allow", "POST")])
                return [body]
            status, body = self.receive(source, environ)
            start_response(STATUS_LINES[status], _headers(body))
            return [body]

        return webhooks

    def receive(self, source: str, environ: WSGIEnvironment) -> tuple[int, bytes]:
        """One delivery's WSGI environ → (HTTP status, JSON answer)."""
        started = time.perf_counter()
        verify, _ = SOURCES[source]
        limit, declared = self.settings.bot.max_body_bytes, get_content_length(environ) or 0
        body = b"" if declared > limit else read_body(environ, limit)
        if declared > limit or len(body) > limit:
            log.info("webhook.refused", source=source, reason="body too large", size=declared or len(body))
            return self.answer(source, 413, started, {"status": "refused", "reason": "body too large"})
        try:
            event = verify(EnvironHeaders(environ), body, self.secrets[source], self.clock())
        except events.Refused as refused:
            log.info("webhook.refused", source=source, status=refused.status, reason=refused.reason)
            _remember(
                self.queue, {"source": source, "outcome": "refused", "reason": refused.reason, "at": self.clock()}
            )
            return self.answer(source, refused.status, started, {"status": "refused", "reason": refused.reason})
        return self.dispatch(source, event, started)

    def dispatch(self, source: str, event: events.Event, started: float) -> tuple[int, bytes]:
        record = {"source": event.source, "event": event.key, "delivery_id": event.delivery_id, "at": self.clock()}
        try:
            outcome = self.router.dispatch(event, self.settings)
        except Exception:  # the last line: a handler bug; tests/reliability asserts it never fires
            log.error("webhook.malformed", exc_info=True, delivery_id=event.delivery_id, kind=event.key)
            _remember(self.queue, {**record, "outcome": "malformed"})
            body = {
                "status": "malformed",
                "reason": "the bot could not read this delivery",
                "delivery_id": event.delivery_id,
            }
            return self.answer(source, 400, started, body)
        if isinstance(outcome, Ignored):
            log.info("webhook.ignored", delivery_id=event.delivery_id, kind=event.key, reason=outcome.reason)
            _remember(self.queue, {**record, "outcome": "ignored", "reason": outcome.reason})
            body = {"status": "ignored", "reason": outcome.reason, "delivery_id": event.delivery_id}
            return self.answer(source, 200, started, body)
        return self.enqueue(source, event, outcome, record, started)

    def enqueue(
        self, source: str, event: events.Event, actions: list, record: dict, started: float
    ) -> tuple[int, bytes]:
        try:
            submitted = self.queue.submit(
                f"{event.source}:{event.delivery_id}", actions, {**record, "outcome": "queued"}
            )
        except redis.RedisError as exc:
            log.error("webhook.unavailable", delivery_id=event.delivery_id, error=type(exc).__name__)
            body = {"status": "unavailable", "reason": "the queue is unreachable; retry later"}
            return self.answer(source, 503, started, body)
        if not submitted.queued:
            log.info("webhook.duplicate", delivery_id=event.delivery_id, kind=event.key)
            _remember(self.queue, {**record, "outcome": "duplicate"})
            return self.answer(source, 200, started, {"status": "duplicate", "delivery_id": event.delivery_id})
        names = [a.task for a in actions]
        log.info(
            "webhook.queued", delivery_id=event.delivery_id, kind=event.key, tasks=names, task_ids=submitted.task_ids
        )
        # Ids only, never the arguments: what a person reading the sender's delivery log needs to find the tasks
        # (GitHub keeps a truncated answer), and a 25 MiB delivery's answer stays a few hundred bytes.
        tasks = [{"task": name, "id": tid} for name, tid in zip(names, submitted.task_ids)]
        return self.answer(source, 202, started, {"status": "queued", "delivery_id": event.delivery_id, "tasks": tasks})

    def answer(self, source: str, status: int, started: float, body: dict) -> tuple[int, bytes]:
        self.metrics.observe(source, body["status"], time.perf_counter() - started)
        if source.startswith("slack/") and status < 300:
            # Slack shows the response body to the user and treats any non-200 as a failure.
            text = {"queued": "On it.", "duplicate": "Already on it."}.get(body["status"], body.get("reason", ""))
            return 200, _json({"response_type": "ephemeral", "text": text})
        return status, _json(body)


def read_body(environ: WSGIEnvironment, limit: int) -> bytes:
    """At most `limit` + 1 bytes of the body, through werkzeug's stream: bounded by Content-Length, and a chunked
    body read only where the server says it has it whole (`wsgi.input_terminated`; else nothing, as Flask)."""
    return get_input_stream(environ).read(limit + 1)


def _json(body: dict) -> bytes:
    return compact(body).encode()


def _headers(body: bytes) -> list[tuple[str, str]]:
    return [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]


def _add_operations_routes(app: Flask, client: redis.Redis, metrics: Metrics) -> None:
    """/healthz (the process), /readyz (Redis answers and keeps what it is given), /metrics (Prometheus)."""

    @app.get("/healthz")
    def healthz():
        return jsonify({"status": "ok"})

    known: list[durability.Durability] = []  # asked once per process

    @app.get("/readyz")
    def readyz():
        try:
            client.ping()
            if not known:
                known.append(durability.check(client))
        except redis.RedisError as exc:
            return jsonify({"status": "unavailable", "redis": type(exc).__name__}), 503
        if known[0].evicts:
            return jsonify({"status": "unavailable", "redis": known[0].problems[0]}), 503
        return jsonify({"status": "ready", "redis_problems": known[0].problems})

    @app.get("/metrics")
    def prometheus():
        return Response(generate_latest(metrics.registry), content_type=CONTENT_TYPE_LATEST)


def _remember(queue: Queue, record: dict) -> None:
    try:
        queue.record(record)
    except redis.RedisError:
        pass  # the dashboard's history is best effort; the answer does not depend on it
