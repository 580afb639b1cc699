"""The worker's Celery app and the base task every task uses (error policy, structured logs)."""
from __future__ import annotations

from celery import Task
from celery.exceptions import Retry

from bot.celery_app import create_celery
from bot.logs import get_logger
from workers.errors import MAX_RETRIES, Permanent, backoff, is_transient

log = get_logger("workers")
app = create_celery()  # REDIS_URL is read when the worker first needs its configuration


class BotTask(Task):
    """acks_late + retry transient errors with backoff; log permanent ones and stop."""

    acks_late = True
    reject_on_worker_lost = True
    max_retries = MAX_RETRIES
    typing = False

    def __call__(self, *args, **kwargs):
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
                countdown = backoff(self.request.retries)
                log.warning("task.retry", task=self.name, delivery_id=delivery_id, error=type(exc).__name__,
                            detail=str(exc)[:200], countdown=round(countdown, 1))
                raise self.retry(exc=exc, countdown=countdown)
            log.error("task.error", task=self.name, delivery_id=delivery_id, error=type(exc).__name__,
                      detail=str(exc)[:500], exc_info=True)
            raise
        log.info("task.done", task=self.name, delivery_id=delivery_id)
        return result



import workers.tasks  # noqa: E402,F401  register the tasks with the app
