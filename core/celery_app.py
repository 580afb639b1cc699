"""The one Celery app: JSON only, acks_late, Redis as broker and state store, no long ETA message.

Configuration is read when the app is first configured, not at import time, so tests and the
CLI can point it at their own Redis before anything connects.

What a killed process costs (issue #12): a worker SIGKILLed mid-task leaves its messages — the
running ones, the reserved ones and the ETA ones it holds — unacknowledged in Redis; kombu hands them
to another worker once they are VISIBILITY_TIMEOUT old. Nothing waits inside a worker for longer than
that: work for later than SHORT_COUNTDOWN goes to the due index (`BotCelery.send_task`).
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from celery import Celery

from core.queue import DEFAULT_QUEUE
from core.vocabulary import BEAT_SCHEDULE, BOT

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"

# A SIGKILLed worker's messages come back after this (+ one restore sweep, every RESTORE_SWEEP s): within
# 2 minutes. Safe because no message stays unacked longer in a live worker: a task runs at most
# TASK_TIME_LIMIT (its gateways' budgets are shorter: Databricks retries 60 s, GitHub 15 s a request, locks
# wait 30 s) and an ETA message waits at most SHORT_COUNTDOWN first — past it, Redis would hand it to a
# second worker while the first still holds it.
VISIBILITY_TIMEOUT = 90
RESTORE_SWEEP = 5  # kombu's default sweeps every 10 s x 10 (throttle): up to 100 s more
TASK_TIME_LIMIT = 80
# The rule for work for later: a countdown up to SHORT_COUNTDOWN is an ETA message (held unacked by the
# worker that took it, so a SIGKILL delays it by at most VISIBILITY_TIMEOUT and it is never sent twice);
# anything later is an entry of the due index (core/keys.py DUE) that beat moves onto the queue when due.
SHORT_COUNTDOWN = 10.0
assert SHORT_COUNTDOWN + TASK_TIME_LIMIT <= VISIBILITY_TIMEOUT

# (task name, keyword arguments, due at (epoch s), task id or None, retries so far) → remembered for later
DueIndex = Callable[[str, dict, float, "str | None", int], None]


def redis_url() -> str:
    return os.environ.get("REDIS_URL", DEFAULT_REDIS_URL)


def celery_settings(broker_url: str) -> dict:
    return {
        "broker_url": broker_url,
        "result_backend": None,  # tasks report to GitHub/Slack, nobody waits on results
        "task_ignore_result": True,
        "task_serializer": "json",
        "accept_content": ["json"],  # never pickle: a message must not be able to run code
        "result_accept_content": ["json"],
        "task_default_queue": DEFAULT_QUEUE,
        "task_acks_late": True,  # safe because every task is idempotent by construction
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        # Enforced by the prefork pool only; the threads pool (the Procfile's) relies on the gateways' budgets.
        "task_soft_time_limit": TASK_TIME_LIMIT - 10,
        "task_time_limit": TASK_TIME_LIMIT,
        "broker_transport_options": {
            # A task whose worker died unacked comes back after this many seconds (tests shorten it).
            "visibility_timeout": int(os.environ.get("CELERY_VISIBILITY_TIMEOUT", str(VISIBILITY_TIMEOUT))),
            "unacked_restore_interval": RESTORE_SWEEP,
            "unacked_restore_throttle": 1,  # every sweep looks (kombu's default: every 10th)
            "unacked_mutex_expire": 30,  # the sweep's lock, should its holder be killed while sweeping
        },
        "broker_connection_retry_on_startup": True,
        # A retry or a follow-up published while Redis restarts waits for it (~20 s) instead of ~0.6 s: Celery
        # rejects a task whose retry it cannot publish, and a rejected message is gone.
        "task_publish_retry_policy": {"max_retries": 10, "interval_start": 0, "interval_step": 0.5, "interval_max": 3},
        "worker_hijack_root_logger": False,
        "worker_send_task_events": False,
        "beat_schedule": {
            # a stale tick is dropped, the next one does the same work: no pile-up of 2-second ticks while the workers
            # are away (a minute at least: the hosts' clocks may differ by a few seconds)
            entry: {"task": task, "schedule": seconds, "options": {"expires": max(seconds, 60.0)}}
            for entry, (task, seconds) in BEAT_SCHEDULE.items()
        },
        "timezone": "UTC",
    }


def seconds_until(countdown: float | None, eta: datetime | None, now: float) -> float:
    """How long a message would wait before it runs (0: at once)."""
    if eta is not None:
        return eta.timestamp() - now
    return float(countdown or 0.0)


class BotCelery(Celery):
    """Celery whose `send_task` (retries and the follower's polls go through it) never publishes an ETA
    further away than SHORT_COUNTDOWN once the worker has set `due_index`: that work waits in Redis instead."""

    due_index: DueIndex | None = None

    def send_task(
        self,
        name: str,
        args: Any = None,
        kwargs: dict | None = None,
        countdown: float | None = None,
        eta: datetime | None = None,
        task_id: str | None = None,
        retries: int = 0,
        **options: Any,
    ) -> Any:
        now = time.time()
        wait = seconds_until(countdown, eta, now)
        if self.due_index is not None and wait > SHORT_COUNTDOWN and not args:  # the bot's tasks take kwargs only
            self.due_index(name, dict(kwargs or {}), now + wait, task_id, retries)
            return self.AsyncResult(task_id or str(uuid.uuid4()))
        return super().send_task(
            name, args, kwargs, countdown=countdown, eta=eta, task_id=task_id, retries=retries, **options
        )


def create_celery(broker_url: str | None = None) -> BotCelery:
    """The app; without `broker_url`, REDIS_URL is read when the configuration is first needed."""
    app = BotCelery(BOT)
    if broker_url:
        app.conf.update(celery_settings(broker_url))
    else:
        app.add_defaults(lambda: celery_settings(redis_url()))
    return app
