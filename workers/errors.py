"""One error policy for every task: transient → retry with backoff and jitter; permanent → tell the user, stop."""
from __future__ import annotations

import random

import redis

MAX_RETRIES = 8


class Permanent(Exception):
    """Retrying cannot help (bad config, 4xx): say `message` where the user asked, then stop."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class Transient(Exception):
    """Worth retrying later (a run not finished, a dependency briefly down)."""


def backoff(retries: int, base: float = 2.0, cap: float = 300.0) -> float:
    """Full-jitter exponential backoff: uniform in [base/2, min(cap, base * 2**retries)]."""
    high = min(cap, base * (2 ** retries))
    return random.uniform(min(base / 2, high), high)


def _status(exc: BaseException) -> int | None:
    for attr in ("status", "status_code"):
        value = getattr(exc, attr, None)
        if isinstance(value, int):
            return value
    response = getattr(exc, "response", None)
    value = getattr(response, "status_code", None)
    return value if isinstance(value, int) else None


def is_transient(exc: BaseException) -> bool:
    """429, 5xx, connection problems and Redis errors are transient; everything else is not."""
    if isinstance(exc, (Transient, redis.RedisError, ConnectionError, TimeoutError)):
        return True
    if isinstance(exc, Permanent):
        return False
    name = type(exc).__name__
    if name in {"TooManyRequests", "TemporarilyUnavailable", "DeadlineExceeded", "InternalError",
                "ConnectionError", "ConnectTimeout", "ReadTimeout", "RateLimitExceededException"}:
        return True
    status = _status(exc)
    return status is not None and (status == 429 or status >= 500)
