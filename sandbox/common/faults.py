"""What the stand-ins' injectable faults share: the ``METHOD:PATH=KIND[:COUNT]`` head of a spec, the match of a
request against a method and an exact or ``fnmatch`` glob path, and a thread-safe set of faults.

Each stand-in defines its own kinds (a subclass of `Fault`) and how a request consumes them (`FaultSet.take`)."""

from __future__ import annotations

import fnmatch
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Generic, NamedTuple, TypeVar


@dataclass
class Fault:
    method: str  # an HTTP method or "*"
    path: str  # exact, or an fnmatch glob
    remaining: int | None = None  # None = unlimited
    spec: str = ""

    def matches(self, method: str, path: str) -> bool:
        if self.method != "*" and self.method != method.upper():
            return False
        return self.path == path or (any(c in self.path for c in "*?[") and fnmatch.fnmatchcase(path, self.path))

    def use(self) -> None:
        """One matching request consumed one of the fault's count."""
        if self.remaining is not None:
            self.remaining -= 1

    def describe(self) -> dict:
        return {"spec": self.spec, "remaining": self.remaining}


class Spec(NamedTuple):
    method: str
    path: str
    kind: str  # what follows "=", without the count; the stand-in reads it
    times: int | None  # COUNT: how many matching requests it affects (None = every one)


def split_spec(spec: str) -> Spec:
    """``METHOD:PATH=KIND[:COUNT]`` in its parts; a ValueError says what is wrong."""
    left, right = spec.split("=", 1)
    method, path = left.split(":", 1)
    kind, colon, tail = right.rpartition(":")
    if not colon:
        kind, count = right, None
    elif tail.isdigit():
        count = int(tail)
    else:
        raise ValueError(f"bad count {tail!r}")
    method, path = method.strip().upper(), path.strip()
    if not method or not path.startswith("/"):
        raise ValueError("bad method/path")
    return Spec(method, path, kind.strip(), count)


def invalid_spec(spec: str, syntax: str, error: ValueError) -> ValueError:
    return ValueError(f"invalid --fault spec {spec!r} (expected {syntax}): {error}")


F = TypeVar("F", bound=Fault)


class FaultSet(Generic[F]):
    """The faults a stand-in was given, at start-up or at run time; `lock` guards them."""

    def __init__(self, parse: Callable[[str], F], specs: Iterable[str | F] | None = None):
        self.lock = threading.Lock()
        self.faults: list[F] = []
        self._parse = parse
        for s in specs or []:
            self.add(s)

    def add(self, spec: str | F) -> F:
        fault = self._parse(spec) if isinstance(spec, str) else spec
        with self.lock:
            self.faults.append(fault)
        return fault

    def clear(self) -> None:
        with self.lock:
            self.faults.clear()

    def describe(self) -> list[dict]:
        with self.lock:
            return [f.describe() for f in self.faults]
