"""Fault injection for the sandbox workspace (``--fault`` at start-up, ``POST /sandbox/faults`` at run time).

SPEC syntax: ``METHOD:PATH=KIND[:COUNT]``

* ``METHOD`` -- HTTP method (``GET``, ``POST``, ...) or ``*`` for any.
* ``PATH``   -- request path, exact, or an ``fnmatch`` glob (``/api/2.2/jobs/*``).
* ``KIND``   -- what happens to a matching request:

  - an HTTP status code (``429``, ``500``, ``502``, ``503``, ``504``, ``400``, ...): answered at once,
    with Databricks' error shape (429/503 also carry ``Retry-After: 1``); the request is not applied.
  - ``<status>html`` (``502html``, ``504html``): the same status with an HTML body, as a load
    balancer in front of the workspace answers (no ``error_code``).
  - ``delay<SECONDS>`` (e.g. ``delay0.5``): sleep, then answer normally.
  - ``apply_then_drop``: the request is applied, then the connection is closed before the answer is
    sent -- the client cannot tell whether its write happened (the SDK retries it).
  - ``apply_then_<status>`` (``apply_then_504``, ``apply_then_502html``): the request is applied,
    then answered with that error instead of its result.

  ``apply_then_*`` faults fire only on requests that succeeded (a refused request changed nothing).
* ``COUNT``  -- how many matching requests are affected; omitted = every one.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import Response, jsonify

from ..common import faults

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
REASONS = {502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout", 500: "Internal Server Error"}
SYNTAX = "METHOD:PATH=KIND[:COUNT]"


@dataclass
class Fault(faults.Fault):
    status: int | None = None
    delay: float | None = None
    html: bool = False  # the error answer is an HTML page (a load balancer's), not Databricks' JSON
    after: str = ""  # "" = instead of the request; "drop" / "status" = once the request was applied

    def answer(self) -> Response:
        """The error this fault answers with (its status; Databricks' JSON shape unless `html`)."""
        status = self.status or 500
        if self.html:
            reason = REASONS.get(status, "Error")
            page = f"<html><head><title>{status} {reason}</title></head><body><h1>{status} {reason}</h1></body></html>"
            return Response(page, status=status, mimetype="text/html")
        resp = jsonify(
            {
                "error_code": STATUS_ERROR_CODES.get(status, "UNKNOWN"),
                "message": f"Sandbox injected fault ({self.spec})",
            }
        )
        resp.status_code = status
        if status in (429, 503):
            resp.headers["Retry-After"] = "1"
        return resp


def _status(kind: str) -> tuple[int, bool]:
    html = kind.endswith("html")
    status = int(kind.removesuffix("html"))
    if not 100 <= status <= 599:
        raise ValueError("bad status")
    return status, html


def parse_fault(spec: str) -> Fault:
    try:
        method, path, kind, count = faults.split_spec(spec)
        kind = kind.lower()
        if kind.startswith("delay"):
            return Fault(method, path, delay=float(kind[5:]), remaining=count, spec=spec)
        if kind == "apply_then_drop":
            return Fault(method, path, remaining=count, spec=spec, after="drop")
        if kind.startswith("apply_then_"):
            status, html = _status(kind.removeprefix("apply_then_"))
            return Fault(method, path, status=status, remaining=count, spec=spec, html=html, after="status")
        status, html = _status(kind)
        return Fault(method, path, status=status, remaining=count, spec=spec, html=html)
    except ValueError as e:
        raise faults.invalid_spec(spec, SYNTAX, e) from None


class FaultSet(faults.FaultSet[Fault]):
    def __init__(self, specs=None):
        super().__init__(parse_fault, specs)

    def take(self, method: str, path: str) -> list[Fault]:
        """Return the faults firing before this request is handled (consuming one count of each)."""
        fired = []
        with self.lock:
            for f in self.faults:
                if f.after or f.remaining == 0 or not f.matches(method, path):
                    continue
                f.use()
                fired.append(f)
                if f.status is not None:
                    break  # first error fault wins
        return fired

    def take_after(self, method: str, path: str) -> Fault | None:
        """The `apply_then_*` fault firing on this applied request, if any (consuming one count)."""
        with self.lock:
            for f in self.faults:
                if f.after and f.remaining != 0 and f.matches(method, path):
                    f.use()
                    return f
        return None
