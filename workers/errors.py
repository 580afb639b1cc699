"""One error policy, like gidgethub's `decipher_response`: every gateway translates the errors of its
SDK at its edge (its `_edge`, with `classify`) into this tree, and `BotTask` acts on the tree alone.

    Transient  429, any 5xx (502/504 included), databricks-sdk Unknown/InternalError/
               TemporarilyUnavailable/DeadlineExceeded/TooManyRequests, timeouts, connection
               errors, Redis errors → the task is retried with backoff and jitter.
    Permanent  everything else (401/403/404/409/422, bad config, refused settings) → the task logs
               it and stops. Work a person asked for (a PR command, a Slack command) is answered
               by its service with the reason; see `workers/pr/chatops.py` and `workers/release/slack_commands.py`.
    NotFound   a Permanent for "it does not exist (any more)", which some callers expect.
    RateLimited a Transient carrying how long to wait: GitHub's primary and secondary rate limits
               (403 or 429 with `x-ratelimit-remaining: 0` + `x-ratelimit-reset`, or `retry-after`,
               or a secondary-limit message), and any 429. `retry_countdown` gives Celery that wait.
"""

from __future__ import annotations

import random
import time
from collections.abc import Mapping

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
# GitHub: "Otherwise, wait for at least one minute before retrying" (troubleshooting the REST API)
DEFAULT_RATE_LIMIT_WAIT = 60.0
# A wait over a few seconds is an entry of the due index, not an ETA message (core/celery_app.py), so no wait
# is delivered twice; a primary limit resets within the hour, and a longer wait takes a few of the retries.
MAX_RATE_LIMIT_WAIT = 600.0


class BotError(Exception):
    """A classified failure; `message` is fit to show to a person."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class Transient(BotError):
    """Worth retrying later (a dependency briefly down, rate limited, a lock held); `wait`: seconds until a retry
    can succeed, when that is known (the retry waits that long instead of backing off)."""

    def __init__(self, message: str, wait: float | None = None):
        super().__init__(message)
        self.wait = wait


class Permanent(BotError):
    """Retrying cannot help: the task stops; command-started work tells the person why."""


class NotFound(Permanent):
    """The object asked for does not exist (any more)."""


class RateLimited(Transient):
    """Rate limited: retry after `wait` seconds, never sooner (and never read it as "forbidden")."""

    def __init__(self, message: str, wait: float):
        super().__init__(message, wait)
        self.wait: float = wait


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


def _header(headers: Mapping[str, str], name: str) -> str:
    """A header by its case-insensitive name ('' when absent)."""
    wanted = name.lower()
    return next((str(v).strip() for k, v in headers.items() if k.lower() == wanted), "")


def _seconds(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def rate_limit_wait(status: int | None, headers: Mapping[str, str], message: str, now: float) -> float | None:
    """Seconds to wait when an answer is a rate limit, else None (a 403 without these signs is a refusal).

    GitHub: primary limit → 403 or 429 with `x-ratelimit-remaining: 0`, retry after `x-ratelimit-reset`;
    secondary limit → 403 or 429 and a message saying so, `retry-after` seconds when present, else a minute.
    """
    if status not in (403, 429):
        return None
    wait: float | None = None
    retry_after = _seconds(_header(headers, "retry-after"))
    reset = _seconds(_header(headers, "x-ratelimit-reset"))
    if retry_after is not None:
        wait = retry_after
    elif _header(headers, "x-ratelimit-remaining") == "0" and reset is not None:
        wait = reset - now + 1  # + 1: the reset happens at some point within that second
    elif status == 429 or "rate limit" in message.lower():
        wait = DEFAULT_RATE_LIMIT_WAIT
    return None if wait is None else min(MAX_RATE_LIMIT_WAIT, max(1.0, wait))


def _headers_of(exc: BaseException) -> Mapping[str, str]:
    """Response headers of an SDK error: PyGithub's `headers`, requests' `response.headers`."""
    headers = getattr(exc, "headers", None)
    if headers is None:
        headers = getattr(getattr(exc, "response", None), "headers", None)
    return headers if isinstance(headers, Mapping) else {}


def _message_of(exc: BaseException) -> str:
    data = getattr(exc, "data", None)
    return str(data.get("message") or "") if isinstance(data, dict) else str(exc)


def rate_limit_wait_of(exc: BaseException, now: float | None = None) -> float | None:
    """`rate_limit_wait` of an SDK error."""
    if isinstance(exc, RateLimited):
        return exc.wait
    now = time.time() if now is None else now
    return rate_limit_wait(http_status(exc), _headers_of(exc), _message_of(exc), now)


def retry_countdown(exc: BaseException, retries: int) -> float:
    """When to retry a failed task: a rate limit's own wait or the wait a Transient names (plus a little jitter),
    else backoff."""
    wait = exc.wait if isinstance(exc, Transient) and exc.wait is not None else rate_limit_wait_of(exc)
    if wait is not None:
        return wait + random.uniform(0, min(5.0, wait / 10))
    return backoff(retries)


def _names(exc: BaseException) -> set[str]:
    return {cls.__name__ for cls in type(exc).__mro__}


def is_transient(exc: BaseException) -> bool:
    """The one classification: see the module docstring."""
    if isinstance(exc, BotError):
        return isinstance(exc, Transient)
    if isinstance(exc, redis.RedisError):
        return True
    if rate_limit_wait_of(exc) is not None:
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
    wait = rate_limit_wait_of(exc)
    if wait is not None:  # GitHub answers rate limits with 403 as well as 429
        return RateLimited(f"{message} (rate limited: retry in {round(wait)} s)", wait)
    if is_transient(exc):
        return Transient(message)
    if is_not_found(exc):
        return NotFound(message)
    return Permanent(message)
