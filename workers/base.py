"""The worker's Celery app and the base task every task uses: the one error policy, structured logs.

Services schedule follow-up work through `Deps.scheduler` (a `CeleryScheduler`: it enqueues by
task name), never through callbacks into the task layer.
"""

from __future__ import annotations

from typing import Any

from celery import Task
from celery.exceptions import Retry

from bot.celery_app import create_celery
from bot.logs import get_logger
from bot.vocabulary import FOLLOW_RUN
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
            raise
        log.info("task.done", task=self.name, delivery_id=delivery_id)
        return result


def poll_delay(elapsed: float) -> float:
    """Next poll after a quarter of the time the run has taken so far (2 s to 10 min).

    Polls grow with the logarithm of the run's length: a 1-hour run is polled ~30 times.
    """
    return min(600.0, max(2.0, elapsed * 0.25))


class CeleryScheduler:
    """Work for later, enqueued by task name on the worker's Celery app."""

    def follow(self, environment: str, run_id: int, polls: int = 0, countdown: float | None = None) -> None:
        """Schedule the next poll of a run (the follower re-schedules itself; it never sleeps)."""
        app.send_task(
            FOLLOW_RUN,
            kwargs={"environment": environment, "run_id": run_id, "polls": polls},
            countdown=poll_delay(0) if countdown is None else countdown,
        )
