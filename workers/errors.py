"""One error policy, like gidgethub's `decipher_response`: every gateway translates the errors of its
SDK at its edge (its `_edge`, with `classify`) into this tree, and `BotTask` acts on the tree alone.

    Transient  429, any 5xx (502/504 included), databricks-sdk Unknown/InternalError/
               TemporarilyUnavailable/DeadlineExceeded/TooManyRequests, timeouts, connection
               errors, Redis errors → the task is retried with backoff and jitter.
    Permanent  everything else (401/403/404/409/422, bad config, refused settings) → the task logs
               it and stops. Work a person asked for (a PR command, a Slack command) is answered
               by its service with the reason; see `workers/chatops.py` and `workers/slack_commands.py`.
    NotFound   a Permanent for "it does not exist (any more)", which some callers expect.

Rate-limit-aware handling of GitHub's 403 belongs in `classify` too (it is not there yet).
"""

from __future__ import annotations

import random

import redis

MAX_RETRIES = 8
# databricks-sdk errors carry no HTTP status: classify them by class name and by error_code.
TRANSIENT_CLASSES = frozenset(
    {
        "TooManyRequests",
        "TemporarilyUnavailable",
        "DeadlineExceeded",
        "InternalError",
        "Unknown",
        "NotImplemented",
        "RequestLimitExceeded",
        "ResourceExhausted",
        "RateLimitExceededException",
        "ConnectionError",
        "ConnectTimeout",
        "ReadTimeout",
        "Timeout",
    }
)
TRANSIENT_CODES = frozenset(
    {
        "TOO_MANY_REQUESTS",
        "REQUEST_LIMIT_EXCEEDED",
        "TEMPORARILY_UNAVAILABLE",
        "INTERNAL_ERROR",
        "INTERNAL_SERVER_ERROR",
        "DEADLINE_EXCEEDED",
        "UNKNOWN",
        "BAD_GATEWAY",
        "SERVICE_UNAVAILABLE",
        "GATEWAY_TIMEOUT",
        "RESOURCE_EXHAUSTED",
    }
)
NOT_FOUND_CLASSES = frozenset({"NotFound", "ResourceDoesNotExist", "UnknownObjectException"})
NOT_FOUND_CODES = frozenset({"RESOURCE_DOES_NOT_EXIST", "NOT_FOUND"})


class BotError(Exception):
    """A classified failure; `message` is fit to show to a person."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class Transient(BotError):
    """Worth retrying later (a dependency briefly down, rate limited, a lock held)."""


class Permanent(BotError):
    """Retrying cannot help: the task stops; command-started work tells the person why."""


class NotFound(Permanent):
    """The object asked for does not exist (any more)."""


def backoff(retries: int, base: float = 2.0, cap: float = 300.0) -> float:
    """Full-jitter exponential backoff: uniform in [base/2, min(cap, base * 2**retries)]."""
    high = min(cap, base * (2**retries))
    return random.uniform(min(base / 2, high), high)


def http_status(exc: BaseException) -> int | None:
    """The HTTP status an SDK error carries (PyGithub `status`, requests/slack `response.status_code`,
    MLflow `get_http_status_code()`), or None (databricks-sdk errors carry none)."""
    for attr in ("status", "status_code"):
        value = getattr(exc, attr, None)
        if isinstance(value, int):
            return value
    value = getattr(getattr(exc, "response", None), "status_code", None)
    if isinstance(value, int):
        return value
    getter = getattr(exc, "get_http_status_code", None)
    value = getter() if callable(getter) else None
    return value if isinstance(value, int) else None


def _names(exc: BaseException) -> set[str]:
    return {cls.__name__ for cls in type(exc).__mro__}


def is_transient(exc: BaseException) -> bool:
    """The one classification: see the module docstring."""
    if isinstance(exc, BotError):
        return isinstance(exc, Transient)
    if isinstance(exc, redis.RedisError):
        return True
    code = getattr(exc, "error_code", None)
    if type(exc).__name__ in TRANSIENT_CLASSES or code in TRANSIENT_CODES:
        return True
    if type(exc).__name__ == "DatabricksError" and not code:
        return True  # an unmapped status (502…) with an unreadable body: nothing says it is our fault
    status = http_status(exc)
    if status is not None:
        return status == 429 or status >= 500
    return bool(_names(exc) & {"ConnectionError", "Timeout", "TimeoutError"}) or isinstance(
        exc, (ConnectionError, TimeoutError)
    )


def is_not_found(exc: BaseException) -> bool:
    if isinstance(exc, NotFound):
        return True
    return (
        type(exc).__name__ in NOT_FOUND_CLASSES
        or getattr(exc, "error_code", None) in NOT_FOUND_CODES
        or http_status(exc) == 404
    )


def classify(exc: BaseException, message: str) -> BotError:
    """The exception of this tree that `exc` means, carrying `message`."""
    if isinstance(exc, BotError):
        return exc
    if is_transient(exc):
        return Transient(message)
    if is_not_found(exc):
        return NotFound(message)
    return Permanent(message)
