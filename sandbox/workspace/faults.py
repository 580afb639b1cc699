"""Start-up fault injection for the sandbox workspace.

SPEC syntax: ``METHOD:PATH=KIND[:COUNT]``

* ``METHOD`` -- HTTP method (``GET``, ``POST``, ...) or ``*`` for any.
* ``PATH``   -- request path, exact, or an ``fnmatch`` glob (``/api/2.2/jobs/*``).
* ``KIND``   -- an HTTP status code (``429``, ``500``, ``503``, ``400``, ``404``, ...)
  answered with Databricks' error shape (429/503 also carry ``Retry-After: 1``),
  or ``delay<SECONDS>`` (e.g. ``delay0.5``) to sleep before answering normally.
* ``COUNT``  -- how many matching requests are affected; omitted = every one.
"""

from __future__ import annotations

import fnmatch
import threading
from dataclasses import dataclass

STATUS_ERROR_CODES = {
    400: "INVALID_PARAMETER_VALUE",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "RESOURCE_DOES_NOT_EXIST",
    409: "RESOURCE_CONFLICT",
    429: "TOO_MANY_REQUESTS",
    500: "INTERNAL_ERROR",
    501: "NOT_IMPLEMENTED",
    503: "TEMPORARILY_UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


@dataclass
class Fault:
    method: str
    path: str
    status: int | None = None
    delay: float | None = None
    remaining: int | None = None  # None = unlimited
    spec: str = ""

    def matches(self, method: str, path: str) -> bool:
        if self.method != "*" and self.method != method.upper():
            return False
        if self.path == path:
            return True
        return any(c in self.path for c in "*?[") and fnmatch.fnmatchcase(path, self.path)

    def describe(self) -> dict:
        return {"spec": self.spec, "remaining": self.remaining}


def parse_fault(spec: str) -> Fault:
    try:
        left, right = spec.split("=", 1)
        method, path = left.split(":", 1)
        if ":" in right:
            kind, count_s = right.split(":", 1)
            count: int | None = int(count_s)
            if count < 0:
                raise ValueError("negative count")
        else:
            kind, count = right, None
        method = method.strip().upper()
        path = path.strip()
        kind = kind.strip().lower()
        if not method or not path.startswith("/"):
            raise ValueError("bad method/path")
        if kind.startswith("delay"):
            return Fault(method, path, delay=float(kind[5:]), remaining=count, spec=spec)
        status = int(kind)
        if not 100 <= status <= 599:
            raise ValueError("bad status")
        return Fault(method, path, status=status, remaining=count, spec=spec)
    except ValueError as e:
        raise ValueError(f"invalid --fault spec {spec!r} (expected METHOD:PATH=KIND[:COUNT]): {e}") from None


class FaultSet:
    def __init__(self, specs=None):
        self._lock = threading.Lock()
        self.faults: list[Fault] = []
        for s in specs or []:
            self.add(s)

    def add(self, spec) -> Fault:
        f = spec if isinstance(spec, Fault) else parse_fault(spec)
        with self._lock:
            self.faults.append(f)
        return f

    def take(self, method: str, path: str) -> list[Fault]:
        """Return the faults firing for this request (consuming one count of each)."""
        fired = []
        with self._lock:
            for f in self.faults:
                if f.remaining == 0 or not f.matches(method, path):
                    continue
                if f.remaining is not None:
                    f.remaining -= 1
                fired.append(f)
                if f.status is not None:
                    break  # first error fault wins
        return fired

    def describe(self) -> list[dict]:
        with self._lock:
            return [f.describe() for f in self.faults]
