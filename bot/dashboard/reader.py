"""Reads every dashboard section from Redis in two round trips: one pipeline of indexes, one of MGETs."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import redis

from bot.dashboard.rows import _record, _text, approval_row, audit_row, delivery_row, group_by, job_row, run_row
from core import keys as layout

DELIVERIES_KEY, RUNS_KEY, JOBS_KEY, APPROVALS_KEY, AUDIT_KEY = (
    layout.DELIVERIES,
    layout.RUNS,
    layout.JOBS,
    layout.APPROVALS,
    layout.AUDIT,
)
LIMIT = 50  # rows per section
SCAN = 200  # records read to find the active runs / pending approvals among the recent ones


@dataclass
class Section:
    rows: list = field(default_factory=list)
    total: int = 0  # records behind this section in Redis
    error: str = ""
    shown: int = 0
    active: int = 0
    counts: dict = field(default_factory=dict)
    pending: list = field(default_factory=list)
    decided: list = field(default_factory=list)


class DashboardReader:
    """Reads every section in two round trips: one pipeline of indexes, one of MGETs."""

    def __init__(self, client: redis.Redis, *, job_prefix: str | None = None, limit: int = LIMIT):
        self.r = client
        self.job_prefix = job_prefix
        self.limit = limit

    def overview(self, now: float) -> dict[str, Section]:
        pipe = self.r.pipeline(transaction=False)
        pipe.lrange(DELIVERIES_KEY, 0, SCAN - 1)
        pipe.zrevrange(RUNS_KEY, 0, SCAN - 1)
        pipe.zcard(RUNS_KEY)
        pipe.smembers(JOBS_KEY)
        pipe.zrevrange(APPROVALS_KEY, 0, SCAN - 1)
        pipe.zcard(APPROVALS_KEY)
        pipe.xrevrange(AUDIT_KEY, count=self.limit)
        pipe.xlen(AUDIT_KEY)
        deliveries, run_keys, run_total, job_members, approval_keys, approval_total, audit, audit_total = pipe.execute(
            raise_on_error=False
        )

        run_keys = _ok_list(run_keys)
        members = sorted(_text(m) for m in _ok_list(job_members))
        approval_keys = _ok_list(approval_keys)
        # job names sort by repo and branch; read the first `limit` of them
        job_keys = [layout.job_from_member(m) for m in members[: self.limit]]
        pipe = self.r.pipeline(transaction=False)
        for keys in (run_keys, job_keys, approval_keys):
            if keys:
                pipe.mget(keys)
        fetched = iter(pipe.execute(raise_on_error=False)) if any((run_keys, job_keys, approval_keys)) else iter(())
        runs = next(fetched) if run_keys else []
        jobs = next(fetched) if job_keys else []
        approvals = next(fetched) if approval_keys else []

        return {
            "deliveries": self._deliveries(deliveries, now),
            "runs": self._runs(runs, run_total, now),
            "jobs": self._jobs(members, job_keys, jobs, job_members, now),
            "approvals": self._approvals(approvals, approval_total, now),
            "audit": self._audit(audit, audit_total, now),
        }

    def _deliveries(self, raw, now: float) -> Section:
        if isinstance(raw, Exception):
            return Section([], error=_error(raw))
        rows = [delivery_row(r, now) for r in map(_record, raw) if r is not None]
        # the counts cover the SCAN most recent deliveries, the rows the `limit` most recent
        return Section(
            rows[: self.limit],
            len(raw),
            counts=dict(Counter(row["label"] for row in rows)),
            shown=min(len(rows), self.limit),
        )

    def _runs(self, raw, total, now: float) -> Section:
        if isinstance(raw, Exception):
            return Section([], error=_error(raw))
        rows = [run_row(r, now) for r in map(_record, raw) if r is not None]
        # every active run among the recent ones, then the most recent of the rest
        active = [r for r in rows if r["active"]][: self.limit]
        shown = active + [r for r in rows if not r["active"]][: max(self.limit - len(active), 0)]
        shown.sort(key=lambda r: r["sort"], reverse=True)
        groups = group_by(shown, "repo", "branch")
        for group in groups:
            group["active"] = sum(r["active"] for r in group["rows"])
        groups.sort(key=lambda g: (g["active"] == 0,))  # branches with something running first
        return Section(groups, total if isinstance(total, int) else len(rows), shown=len(shown), active=len(active))

    def _jobs(self, members, keys, raw, original, now: float) -> Section:
        if isinstance(original, Exception):
            return Section([], error=_error(original))
        if isinstance(raw, Exception):
            return Section([], error=_error(raw))
        rows = [job_row(m, _record(v), self.job_prefix, now) for m, v in zip(members, raw)]
        return Section(group_by(rows, "repo", "branch"), len(members), shown=len(rows))

    def _approvals(self, raw, total, now: float) -> Section:
        if isinstance(raw, Exception):
            return Section([], error=_error(raw))
        rows = [approval_row(r, now) for r in map(_record, raw) if r is not None]
        return Section(
            rows,
            total if isinstance(total, int) else len(rows),
            pending=[r for r in rows if r["status"] == "pending"][: self.limit],
            decided=[r for r in rows if r["status"] != "pending"][: self.limit],
        )

    def _audit(self, raw, total, now: float) -> Section:
        if isinstance(raw, Exception):
            return Section([], error=_error(raw))
        rows = []
        for entry_id, fields in raw:
            fields = {_text(k): v for k, v in (fields or {}).items()}
            record = _record(fields.get("entry"))
            if record is not None:
                rows.append(audit_row(_text(entry_id), record, now))
        return Section(rows, total if isinstance(total, int) else len(rows), shown=len(rows))


def _ok_list(value) -> list:
    return [] if isinstance(value, Exception) or value is None else list(value)


def _error(exc: Exception) -> str:
    if isinstance(exc, redis.ResponseError) and "WRONGTYPE" in str(exc):
        return "this key holds an unexpected Redis type"
    return f"could not be read ({type(exc).__name__})"
