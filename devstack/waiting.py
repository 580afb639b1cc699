"""The one wait loop of the dev wing: poll a predicate until it holds or time runs out."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class TimedOut(TimeoutError):
    """A condition did not hold in time; the message names it and its last value."""


def wait_until(predicate: Callable[[], T], timeout: float = 20.0, what: str = "the condition", every: float = 0.1) -> T:
    """Poll `predicate()` until it returns something truthy, and return that value.

    The predicate may raise to give up early (e.g. a process that exited will never be ready).
    """
    deadline = time.monotonic() + timeout
    while True:
        last = predicate()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise TimedOut(f"timed out after {timeout:.0f} s waiting for {what}; last value: {last!r}")
        time.sleep(every)
