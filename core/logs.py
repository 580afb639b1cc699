"""Structured logs: one JSON line per event, with a stable dotted key and plain fields.

    log = get_logger(__name__)
    log.info("webhook.ignored", delivery_id=..., reason=...)

Secrets never go into fields; the formatter adds the Celery task id when inside a task.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        out.update(getattr(record, "fields", {}))
        task_id = _current_task_id()
        if task_id and "task_id" not in out:
            out["task_id"] = task_id
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


def _current_task_id() -> str | None:
    celery = sys.modules.get("celery")
    if celery is None:  # the web process never imports Celery
        return None
    task = celery.current_task
    return getattr(getattr(task, "request", None), "id", None) if task else None


class Log:
    def __init__(self, name: str):
        self._logger = logging.getLogger(name)

    def _log(self, level: int, event: str, fields: dict[str, Any], exc_info: bool = False) -> None:
        if self._logger.isEnabledFor(level):
            self._logger.log(level, event, extra={"fields": fields}, exc_info=exc_info)

    def debug(self, event: str, /, **fields: Any) -> None:
        self._log(logging.DEBUG, event, fields)

    def info(self, event: str, /, **fields: Any) -> None:
        self._log(logging.INFO, event, fields)

    def warning(self, event: str, /, **fields: Any) -> None:
        self._log(logging.WARNING, event, fields)

    def error(self, event: str, /, exc_info: bool = False, **fields: Any) -> None:
        self._log(logging.ERROR, event, fields, exc_info)


def get_logger(name: str) -> Log:
    return Log(name)


def setup_logging(level: str = "INFO") -> None:
    """JSON lines on stderr for the whole process (idempotent)."""
    root = logging.getLogger()
    if any(isinstance(h.formatter, JsonFormatter) for h in root.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("urllib3", "github", "databricks", "werkzeug", "mlflow", "alembic", "git"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
