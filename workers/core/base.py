"""The worker's Celery app and the base task every task uses: the one error policy, structured logs.

Services schedule follow-up work through `Deps.scheduler` (a `CeleryScheduler`: it enqueues by
task name), never through callbacks into the task layer.
"""

from __future__ import annotations

import functools
import json
import time
from typing import Any

import redis
from celery import Task
from celery.exceptions import Retry

from core.celery_app import create_celery, redis_url
from core.logs import get_logger
from core.queue import celery_message
from core.vocabulary import FOLLOW_RUN
from workers.core.state import State
from workers.errors import MAX_RETRIES, Permanent, is_transient, retry_countdown

log = get_logger("workers")
app = create_celery()  # REDIS_URL is read when the worker first needs its configuration


class BotTask(Task):
    """acks_late; Transient (see workers/errors.py) → retry with backoff; Permanent → log and stop."""

    acks_late = True
    reject_on_worker_lost = True
    max_retries = MAX_RETRIES
    typing = False

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        delivery_id = kwargs.get("delivery_id", "")
        log.info("task.started", task=self.name, delivery_id=delivery_id, retries=self.request.retries)
        try:
            result = super().__call__(*args, **kwargs)
        except Retry:
            raise
        except Permanent as exc:
            log.warning("task.failed", task=self.name, delivery_id=delivery_id, reason=exc.message)
            return None
        except Exception as exc:
            if is_transient(exc) and self.request.retries < self.max_retries:
                countdown = retry_countdown(exc, self.request.retries)  # a rate limit's own wait
                log.warning(
                    "task.retry",
                    task=self.name,
                    delivery_id=delivery_id,
                    error=type(exc).__name__,
                    detail=str(exc)[:200],
                    countdown=round(countdown, 1),
                )
                raise self.retry(exc=exc, countdown=countdown) from exc
            log.error(
                "task.error",
                task=self.name,
                delivery_id=delivery_id,
                error=type(exc).__name__,
                detail=str(exc)[:500],
                exc_info=True,
            )
            self.give_up(kwargs, str(exc))
            raise
        log.info("task.done", task=self.name, delivery_id=delivery_id)
        return result

    def give_up(self, kwargs: dict, error: str) -> None:
        """The last try failed: here only the log says so; workers/tasks.py's tasks also tell whoever asked."""


def poll_delay(elapsed: float) -> float:
    """Next poll after a quarter of the time the run has taken so far (2 s to 10 min).

    Polls grow with the logarithm of the run's length: a 1-hour run is polled ~30 times.
    """
    return min(600.0, max(2.0, elapsed * 0.25))


class CeleryScheduler:
    """Work for later, enqueued by task name on the worker's Celery app.

    A countdown up to SHORT_COUNTDOWN is an ETA message; later work is an entry of the due index, written
    here (the app's `due_index` hook: retries take the same path) and sent by beat's `send_due_tasks`.
    """

    def follow(self, environment: str, run_id: int, polls: int = 0, countdown: float | None = None) -> None:
        """Schedule the next poll of a run (the follower re-schedules itself; it never sleeps)."""
        app.send_task(
            FOLLOW_RUN,
            kwargs={"environment": environment, "run_id": run_id, "polls": polls},
            countdown=poll_delay(0) if countdown is None else countdown,
        )

    @staticmethod
    @functools.cache
    def state() -> State:
        return State(redis.Redis.from_url(redis_url(), socket_timeout=5, socket_connect_timeout=2))

    @staticmethod
    def due_member(task: str, kwargs: dict, task_id: str | None = None, retries: int = 0) -> str:
        """The index entry: the same work twice is one member (a redelivered poll re-schedules the same next
        poll: it moves, it is not doubled). A retry keeps its task id and count, as Celery's own retry does."""
        entry: dict[str, Any] = {"task": task, "kwargs": kwargs}
        if task_id:
            entry["id"] = task_id
        if retries:
            entry["retries"] = retries
        return json.dumps(entry, sort_keys=True, separators=(",", ":"))

    @classmethod
    def put_due(cls, task: str, kwargs: dict, due_at: float, task_id: str | None = None, retries: int = 0) -> None:
        cls.state().put_due(cls.due_member(task, kwargs, task_id, retries), due_at)
        log.info(
            "task.scheduled",
            task=task,
            delivery_id=kwargs.get("delivery_id", ""),
            due_in=round(due_at - time.time(), 1),
        )

    @staticmethod
    def message(member: str, queue: str) -> str:
        """The Celery message an index entry becomes when it is due (the envelope the web process writes too)."""
        entry = json.loads(member)
        message = json.loads(celery_message(entry["task"], entry["kwargs"], queue, entry.get("id")))
        message["headers"]["retries"] = entry.get("retries", 0)
        return json.dumps(message, separators=(",", ":"))

    @classmethod
    def send_due(cls, state: State, now: float | None = None, batch: int = 200) -> int:
        """Move every entry due by `now` onto the queue, each once however many beats run (see State.send_due)."""
        queue, sent = app.conf.task_default_queue, 0
        now = time.time() if now is None else now
        while members := state.due(now, batch):
            done = state.send_due(queue, [(m, cls.message(m, queue)) for m in members], now)
            sent += done
            if len(members) < batch or not done:
                break
        return sent


app.due_index = CeleryScheduler.put_due  # from here on no ETA message is longer than SHORT_COUNTDOWN
