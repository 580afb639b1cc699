"""Injectable faults for the sandbox forge: GitHub's rate-limit answers and lost responses.

SPEC syntax: ``METHOD:PATH=KIND[,OPTION...][:COUNT]`` (``--fault SPEC``, or ``POST /sandbox/faults {"spec": SPEC}``)

* ``METHOD`` -- ``GET``, ``POST``, ... or ``*``; ``PATH`` -- exact, or an ``fnmatch`` glob (``/repos/*/branches/*``)
  matched against the decoded request path.
* ``KIND``:
  - ``primary``   the primary rate limit: 403 (``status=429`` for 429), ``x-ratelimit-remaining: 0`` and
    ``x-ratelimit-reset`` = now + ``wait`` seconds (default 60), message "API rate limit exceeded for ...".
  - ``secondary`` a secondary rate limit: 403 (or ``status=429``), ``retry-after: <wait>`` (default 60), message
    "You have exceeded a secondary rate limit..."; ``wait=0`` sends no ``retry-after`` (then wait a minute).
  - ``lose``      the request is applied, then the connection is dropped before the answer (a write that
    happened though the client saw no answer, and retries).
  - a status code (``502``): GitHub's error body with that status, the request not applied.
* ``OPTION`` -- ``status=429`` (rate limits: 403 or 429), ``wait=SECONDS``, ``user=LOGIN`` (only that caller's
  requests: GitHub's rate limits count per user, and a test may lose only the bot's answers).
* ``COUNT`` -- how many matching requests are affected. Omitted: a rate limit lasts, like GitHub's, from its first
  answer until its reset (``wait`` seconds later): every matching request in that window is refused with the same
  reset, and ``fired`` counts them (a client that waits as told is refused once); other kinds fire on every request.

Rate limits are checked after authentication, like GitHub's (they count per user).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from ..common import faults

KINDS = ("primary", "secondary", "lose")
SYNTAX = "METHOD:PATH=KIND[,OPTION...][:COUNT]"


@dataclass
class Fault(faults.Fault):
    kind: str = ""  # primary | secondary | lose | an HTTP status
    status: int = 403
    wait: int = 60
    user: str = ""  # only this caller's requests ("" = anyone's)
    fired: int = 0
    until: float | None = None  # a lasting rate limit's reset (epoch seconds), set when it first fires

    @property
    def lasting(self) -> bool:
        return self.kind in ("primary", "secondary") and self.remaining is None

    def expired(self, now: float) -> bool:
        return self.lasting and self.until is not None and now >= self.until

    def matches(self, method: str, path: str, user: str | None = None) -> bool:
        return not (self.user and self.user != user) and super().matches(method, path)

    def describe(self) -> dict:
        return {**super().describe(), "fired": self.fired, "until": self.until}

    def answer(self, login: str | None) -> tuple[int, str, dict[str, str]]:
        """(status, message, headers) of a rate-limit or status fault, as GitHub answers it."""
        now = time.time()
        reset = self.until if self.until is not None else now + self.wait
        if self.kind == "primary":
            headers = {"X-RateLimit-Limit": "5000", "X-RateLimit-Remaining": "0", "X-RateLimit-Used": "5000"}
            headers["X-RateLimit-Reset"] = str(math.ceil(reset))
            return self.status, f"API rate limit exceeded for user ID {login or 'anonymous'}.", headers
        if self.kind == "secondary":
            message = (
                "You have exceeded a secondary rate limit. Please wait a few minutes before you try again. "
                "If you reach out to GitHub Support for help, please include the request ID."
            )
            return self.status, message, ({"Retry-After": str(math.ceil(reset - now))} if self.wait else {})
        return self.status, {502: "Server Error", 503: "Service Unavailable"}.get(self.status, "Error"), {}


def _options(fault: Fault, options: list[str]) -> None:
    for option in options:
        key, _, value = option.partition("=")
        if key == "user" and value:
            fault.user = value
        elif key in ("status", "wait") and value.isdigit():
            setattr(fault, key, int(value))
        else:
            raise ValueError(f"unknown option {option!r} (status=, wait=, user=)")
    if fault.kind in ("primary", "secondary") and fault.status not in (403, 429):
        raise ValueError("GitHub answers rate limits with 403 or 429")


def parse_fault(spec: str) -> Fault:
    try:
        method, path, right, count = faults.split_spec(spec)
        kind, *options = right.split(",")
        kind = kind.lower()
        if kind not in KINDS and not (kind.isdigit() and 400 <= int(kind) <= 599):
            raise ValueError(f"unknown kind {kind!r}")
        status = int(kind) if kind.isdigit() else 403
        fault = Fault(method, path, remaining=count, spec=spec, kind=kind, status=status)
        _options(fault, options)
        return fault
    except ValueError as e:
        raise faults.invalid_spec(spec, SYNTAX, e) from None


class FaultSet(faults.FaultSet[Fault]):
    def __init__(self, specs=None):
        super().__init__(parse_fault, specs)

    def take(self, method: str, path: str, user: str | None = None) -> Fault | None:
        """The first fault firing for this request (one of its count is used), or None."""
        now = time.time()
        with self.lock:
            for fault in self.faults:
                if fault.remaining == 0 or fault.expired(now) or not fault.matches(method, path, user):
                    continue
                fault.use()
                if fault.lasting and fault.until is None:
                    fault.until = now + fault.wait
                fault.fired += 1
                return fault
        return None
