"""Reading a payload's fields by the type the handler needs: a field of the wrong type reads as missing.

The rule every handler follows: the verify-and-normalise step (`core.events`) refuses with 400 what
no source would send (not JSON, not an object, no event name); a handler reads the few fields it
needs through these accessors, so a field of the wrong shape (null, a number for an object, a list
for a string) reads as absent, and the handler answers `Ignored(reason)` when it cannot act without
it. No handler indexes or calls a method on a payload value it did not check.

What a handler queues has the shape the workers need, checked here at the edge: a version is a positive
whole number, a branch a name Git accepts, a PR number or a comment or check-run id a positive whole
number, a commit a full SHA. A signed delivery with anything else (`../../x` for a version, an empty
branch, no check-run id) queues nothing: the answer and the `webhook.ignored` log line say which value
and why.
"""

from __future__ import annotations

import re
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


# --- what may be queued: the checks a value passes before a task gets it -------------------------------
# Each returns why `value` cannot be queued, or "" when it can; the reason is the receiver's answer and log line.

COMMIT_SHA = re.compile(r"^[0-9a-f]{40}$")  # GitHub names commits by their full SHA-1
_VERSION = re.compile(r"^[1-9][0-9]{0,17}$")  # registries number versions 1, 2, 3 … (sent as "3" or 3)
_LOGIN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,38}(\[bot\])?$")  # a GitHub login; an App's is <name>[bot]
_SLACK_ID = re.compile(r"^[A-Z0-9]{2,32}$")  # Slack user ids: U0ALICE, W0123ABCD
_MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,254}$")  # a registered model's name, or catalog.schema.model
# git check-ref-format, rule 4, 5 and 10: control characters, DEL, space ~ ^ : ? * [ and \ are nowhere in a ref
_REF_FORBIDDEN = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]")


def shown(value: Any) -> str:
    """A value as a reason quotes it: repr (control characters made visible), at most 60 characters."""
    text_ = repr(value)
    return text_ if len(text_) <= 60 else text_[:57] + "..."


def branch_problem(name: str) -> str:
    """Why `name` is no branch Git would make (`git check-ref-format --branch`), or "" when it is one."""
    if not name:
        return "the branch name is empty"
    rules = (
        (_REF_FORBIDDEN.search(name), "has a space, a control character or one of ~ ^ : ? * [ \\"),
        (".." in name, "has '..'"),
        ("@{" in name, "has '@{'"),
        (name == "@", "is '@'"),
        (name.startswith("-"), "starts with '-'"),
        (name == "HEAD", "is 'HEAD'"),
        (name.startswith("/") or name.endswith("/") or "//" in name, "has an empty '/' component"),
        (name.endswith("."), "ends with '.'"),
        (any(p.startswith(".") or p.endswith(".lock") for p in name.split("/")), "has a part that starts with '.' "
         "or ends with '.lock'"),
    )  # fmt: skip
    why = next((why for broken, why in rules if broken), "")
    return f"branch {shown(name)} is no valid Git branch name: it {why}" if why else ""


def version_problem(value: str, what: str = "model version") -> str:
    """Why `value` is no registry version number (a positive whole number, digits only), or ""."""
    return "" if _VERSION.fullmatch(value) else f"{what} {shown(value)} is not a positive whole number"


def id_problem(value: Any, what: str) -> str:
    """Why `value` (a PR number, a comment or check-run id) is no positive whole number, or ""."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value < 2**63:
        return ""
    return f"{what} {shown(value)} is not a positive whole number"


def sha_problem(value: str, what: str = "commit") -> str:
    """Why `value` is no full commit SHA, or ""."""
    return "" if COMMIT_SHA.fullmatch(value) else f"{what} {shown(value)} is not a full commit SHA"


def login_problem(value: str, what: str = "user") -> str:
    """Why `value` is no GitHub login, or ""."""
    return "" if _LOGIN.fullmatch(value) else f"{what} {shown(value)} is not a GitHub login"


def slack_user_problem(value: str) -> str:
    """Why `value` is no Slack user id, or ""."""
    return "" if _SLACK_ID.fullmatch(value) else f"Slack user {shown(value)} is not a Slack user id"


def model_name_problem(value: str) -> str:
    """Why `value` is no registered model's name (`churn-model`, `staging.ml.churn`), or ""."""
    return (
        "" if _MODEL_NAME.fullmatch(value) and ".." not in value else f"model name {shown(value)} is not a model's name"
    )


def first_problem(*problems: str) -> str:
    """The first of the checks that failed, or ""."""
    return next((p for p in problems if p), "")
