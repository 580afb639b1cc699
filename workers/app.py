"""The worker's entry point (`celery -A workers.app`): the Celery app with every task registered."""

from __future__ import annotations

import workers.tasks  # noqa: F401  register the tasks with the app
from workers.core.base import BotTask, app

__all__ = ["app", "BotTask"]
