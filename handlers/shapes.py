"""Reading a payload's fields by the type the handler needs: a field of the wrong type reads as missing.

The rule every handler follows: the verify-and-normalise step (`core.events`) refuses with 400 what
no source would send (not JSON, not an object, no event name); a handler reads the few fields it
needs through these accessors, so a field of the wrong shape (null, a number for an object, a list
for a string) reads as absent, and the handler answers `Ignored(reason)` when it cannot act without
it. No handler indexes or calls a method on a payload value it did not check.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def obj(data: Any, key: str) -> Mapping[str, Any]:
    """`data[key]` when it is a JSON object, else an empty one."""
    value = data.get(key) if isinstance(data, Mapping) else None
    return value if isinstance(value, Mapping) else {}


def text(data: Any, key: str, default: str = "") -> str:
    """`data[key]` when it is a string, else `default`."""
    value = data.get(key) if isinstance(data, Mapping) else None
    return value if isinstance(value, str) else default


def items(data: Any, key: str) -> list[Mapping[str, Any]]:
    """The objects in the list `data[key]` (anything else in it, or a non-list, reads as absent)."""
    value = data.get(key) if isinstance(data, Mapping) else None
    return [v for v in value if isinstance(v, Mapping)] if isinstance(value, list) else []


def number(data: Any, key: str) -> int | None:
    """`data[key]` when it is a whole number (not a bool), else None."""
    value = data.get(key) if isinstance(data, Mapping) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def ident(data: Any, key: str) -> str:
    """An id that sources send as a string or a number (`"version": "3"` or `3`), as a string."""
    value = data.get(key) if isinstance(data, Mapping) else None
    return str(value) if isinstance(value, str | int) and not isinstance(value, bool) else ""
