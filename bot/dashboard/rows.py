"""What the dashboard shows, as plain rows: pure formatting of records the receiver and workers wrote."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from core.vocabulary import ACTIVE, parse_any_job_name

_BADGES = {
    "ok": {
        "SUCCESS",
        "SUCCEEDED",
        "SUCCESS_WITH_FAILURES",
        "APPROVED",
        "PASSED",
        "PROMOTED",
        "DEPLOYED",
        "ACCEPTED",
        "DONE",
    },
    "bad": {
        "FAILED",
        "FAILURE",
        "TIMEDOUT",
        "TIMED_OUT",
        "INTERNAL_ERROR",
        "ERROR",
        "REJECTED",
        "REFUSED",
        "UPSTREAM_FAILED",
        "MAXIMUM_CONCURRENT_RUNS_REACHED",
    },
    "run": {"RUNNING", "TERMINATING"},
    "wait": {"PENDING", "QUEUED", "BLOCKED", "WAITING", "REQUESTED", "WAITING_FOR_RETRY"},
    "muted": {
        "CANCELED",
        "CANCELLED",
        "SKIPPED",
        "IGNORED",
        "DUPLICATE",
        "EXCLUDED",
        "SUPERSEDED",
        "UPSTREAM_CANCELED",
    },
}


def badge_class(value: Any, *, delivery: bool = False) -> str:
    """A colour class for a state, outcome, status or decision (unknown values stay neutral)."""
    key = str(value or "").upper()
    if delivery and key == "QUEUED":
        return "ok"  # a queued delivery was accepted; a queued run is still waiting
    for name, values in _BADGES.items():
        if key in values:
            return name
    return "neutral"


def to_float(value: Any) -> float | None:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if out == out and abs(out) != float("inf") else None


def clock_text(ts: Any) -> str:
    """`2024-05-01 12:03:04 UTC`, or '' for a missing or bad timestamp."""
    ts = to_float(ts)
    if ts is None:
        return ""
    try:
        return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    except (OverflowError, OSError, ValueError):
        return ""


def ago_text(ts: Any, now: float) -> str:
    ts = to_float(ts)
    if ts is None:
        return "—"
    delta = now - ts
    if delta < -5:
        return "in the future"
    delta = max(delta, 0)
    if delta < 60:
        return f"{int(delta)} s ago"
    if delta < 3600:
        return f"{int(delta // 60)} min ago"
    if delta < 48 * 3600:
        return f"{int(delta // 3600)} h ago"
    return f"{int(delta // 86400)} d ago"


def duration_text(seconds: Any) -> str:
    seconds = to_float(seconds)
    if seconds is None or seconds < 0:
        return ""
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def safe_url(value: Any) -> str | None:
    """The URL if it is plain http(s); anything else (javascript:, data:, relative) is not linked."""
    if not isinstance(value, str) or len(value) > 2048:
        return None
    try:
        parts = urlsplit(value.strip())
    except ValueError:
        return None
    return value.strip() if parts.scheme in ("http", "https") and parts.netloc else None


def split_job_name(name: str, prefix: str | None) -> tuple[str, str, str]:
    """(owner/repo, branch, workflow) of `<prefix>/<owner>/<repo>/<branch…>/<workflow>`; ('', '', name) if not."""
    return parse_any_job_name(name, prefix) or ("", "", name)


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return "" if value is None else str(value)


def _record(raw: Any) -> dict | None:
    if raw is None:
        return None
    try:
        value = json.loads(raw)
    except (TypeError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def _str(record: dict, key: str) -> str:
    value = record.get(key)
    if value is None or isinstance(value, (dict, list)):
        return ""
    return str(value)


def delivery_row(record: dict, now: float) -> dict:
    outcome = _str(record, "outcome") or "unknown"
    tasks: list = record.get("tasks") if isinstance(record.get("tasks"), list) else []  # type: ignore[assignment]
    detail = _str(record, "reason")
    if not detail and outcome == "duplicate":
        detail = "already received"
    return {
        "at": clock_text(record.get("at")),
        "ago": ago_text(record.get("at"), now),
        "source": _str(record, "source"),
        "event": _str(record, "event"),
        "delivery_id": _str(record, "delivery_id"),
        "outcome": outcome,
        "label": "accepted" if outcome == "queued" else outcome,
        "badge": badge_class(outcome, delivery=True),
        "reason": detail,
        "tasks": [str(t) for t in tasks if isinstance(t, (str, int, float))],
    }


def run_row(record: dict, now: float) -> dict:
    state = (_str(record, "state") or "UNKNOWN").upper()
    result: dict = record.get("result") if isinstance(record.get("result"), dict) else {}  # type: ignore[assignment]
    started, finished = to_float(record.get("started_at")), to_float(record.get("finished_at"))
    duration = to_float(result.get("duration_s"))
    if duration is None and started is not None:
        if finished is not None:
            duration = finished - started
        elif state in ACTIVE:
            duration = now - started
    tasks = []
    for task in result.get("tasks") or []:
        if isinstance(task, dict):
            tasks.append(
                {
                    "key": _str(task, "key"),
                    "result": _str(task, "result"),
                    "badge": badge_class(task.get("result")),
                    "duration": duration_text(task.get("duration_s")),
                }
            )
    outcome = _str(result, "result").upper()
    pr = record.get("pr")
    return {
        "run_id": _str(record, "run_id"),
        "job_id": _str(record, "job_id"),
        "environment": _str(record, "environment"),
        "repo": _str(record, "repo"),
        "branch": _str(record, "branch"),
        "sha": _str(record, "sha")[:10],
        "workflow": _str(record, "workflow") or _str(record, "job"),
        "pr": str(pr) if isinstance(pr, (int, str)) and str(pr) else "",
        "requested_by": _str(record, "requested_by"),
        "state": state,
        "badge": badge_class(state),
        "active": state in ACTIVE,
        "outcome": outcome if outcome and outcome != state else "",
        "outcome_badge": badge_class(outcome),
        "superseded_by": _str(record, "superseded_by"),
        "started": clock_text(started),
        "ago": ago_text(started, now),
        "duration": duration_text(duration),
        "url": safe_url(result.get("run_page_url") or record.get("run_page_url")),
        "tasks": tasks,
        "sort": started or 0.0,
    }


def job_row(member: str, record: dict | None, prefix: str | None, now: float) -> dict:
    environment, _, name = member.partition(":")
    repo, branch, workflow = split_job_name(name, prefix)
    record = record or {}
    return {
        "environment": environment,
        "name": name,
        "repo": repo,
        "branch": branch,
        "workflow": workflow,
        "job_id": _str(record, "job_id"),
        "fingerprint": _str(record, "fingerprint")[:12],
        "updated": clock_text(record.get("updated_at")),
        "ago": ago_text(record.get("updated_at"), now) if record.get("updated_at") is not None else "",
        "cached": bool(record),
    }


def approval_row(record: dict, now: float) -> dict:
    status = (_str(record, "status") or "unknown").lower()
    approvals = []
    for item in record.get("approvals") or []:
        if isinstance(item, dict):
            approvals.append({"by": _str(item, "by"), "source": _str(item, "source"), "at": clock_text(item.get("at"))})
    pr = record.get("pr")
    return {
        "model": _str(record, "name") or _str(record, "model"),  # the staging registry name the approval is for
        "version": _str(record, "version"),
        "status": status,
        "badge": badge_class(status),
        "validation": (_str(record, "validation") or "").lower(),
        "validation_badge": badge_class(record.get("validation")),
        "requested": clock_text(record.get("requested_at")),
        "ago": ago_text(record.get("requested_at"), now),
        "repo": _str(record, "repo"),
        "pr": str(pr) if isinstance(pr, (int, str)) and str(pr) else "",
        "approvals": approvals,
        "rejected_by": _str(record, "rejected_by"),
        "reason": _str(record, "reason"),
    }


def audit_row(entry_id: str, record: dict, now: float) -> dict:
    decision = (_str(record, "decision") or "unknown").lower()
    pr = record.get("pr")
    return {
        "id": entry_id,
        "at": clock_text(record.get("at")),
        "ago": ago_text(record.get("at"), now),
        "decision": decision,
        "badge": badge_class(decision),
        "model": _str(record, "model"),
        "version": _str(record, "version"),
        "actor": _str(record, "actor"),
        "source": _str(record, "source"),
        "reason": _str(record, "reason"),
        "repo": _str(record, "repo"),
        "pr": str(pr) if isinstance(pr, (int, str)) and str(pr) else "",
    }


def group_by(rows: list[dict], *keys: str) -> list[dict]:
    """Rows grouped by `keys`, groups in first-seen order (rows come newest first)."""
    groups: dict[tuple, dict] = {}
    for row in rows:
        key = tuple(row.get(k, "") for k in keys)
        if key not in groups:
            groups[key] = {**dict(zip(keys, key)), "rows": []}
        groups[key]["rows"].append(row)
    return list(groups.values())
