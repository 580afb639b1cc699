"""The one Celery app: JSON only, acks_late, Redis as broker and state store.

Configuration is read when the app is first configured, not at import time, so tests and the
CLI can point it at their own Redis before anything connects.
"""

from __future__ import annotations

import os

from celery import Celery

from bot.queue import DEFAULT_QUEUE
from bot.vocabulary import BEAT_SCHEDULE, BOT

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


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
        "task_soft_time_limit": 240,
        "task_time_limit": 300,
        # A task whose worker died unacked comes back after this many seconds (tests shorten it).
        "broker_transport_options": {"visibility_timeout": int(os.environ.get("CELERY_VISIBILITY_TIMEOUT", "900"))},
        "broker_connection_retry_on_startup": True,
        "worker_hijack_root_logger": False,
        "worker_send_task_events": False,
        "beat_schedule": {
            entry: {"task": task, "schedule": seconds} for entry, (task, seconds) in BEAT_SCHEDULE.items()
        },
        "timezone": "UTC",
    }


def create_celery(broker_url: str | None = None) -> Celery:
    """The app; without `broker_url`, REDIS_URL is read when the configuration is first needed."""
    app = Celery(BOT)
    if broker_url:
        app.conf.update(celery_settings(broker_url))
    else:
        app.add_defaults(lambda: celery_settings(redis_url()))
    return app
