"""The dashboard: what the bot has received, started and decided, read from Redis only (GET /).

Everything shown was written to Redis by the receiver and the workers, and most of it came from
outside (branch names, PR titles, reasons, Slack users): the templates autoescape every value and
only http(s) links are rendered. The web process makes no outbound call to build a page and
imports neither `workers` nor any SDK.

Off unless configured: set MLOPS_BOT_DASHBOARD_TOKEN (Bearer header, or ?token= once, which sets
a cookie), or MLOPS_BOT_DASHBOARD_USER + MLOPS_BOT_DASHBOARD_PASSWORD (HTTP Basic).
"""
from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode, urlsplit

import redis
from flask import Blueprint, Response, redirect, render_template, request

from bot import keys as layout
from bot.logs import get_logger
from bot.vocabulary import ACTIVE, parse_any_job_name

log = get_logger("bot.dashboard")

DELIVERIES_KEY, RUNS_KEY, JOBS_KEY, APPROVALS_KEY, AUDIT_KEY = layout.DELIVERIES, layout.RUNS, layout.JOBS, layout.APPROVALS, \
    layout.AUDIT

LIMIT = 50  # rows per section
SCAN = 200  # records read to find the active runs / pending approvals among the recent ones
ACTIVE_STATES = ACTIVE
COOKIE = "mlops_bot_dashboard"
REFRESH_SECONDS = 5
OFF_MESSAGE = ("The dashboard is off: set MLOPS_BOT_DASHBOARD_TOKEN, or MLOPS_BOT_DASHBOARD_USER and "
               "MLOPS_BOT_DASHBOARD_PASSWORD, to turn it on.\n")


# --- auth ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DashboardAuth:
    """Who may see the dashboard; built from the environment by the app factory, never at import."""

    token: str | None = None
    user: str | None = None
    password: str | None = None

    @classmethod
    def from_env(cls, environ: dict[str, str]) -> DashboardAuth:
        user, password = environ.get("MLOPS_BOT_DASHBOARD_USER") or None, \
            environ.get("MLOPS_BOT_DASHBOARD_PASSWORD") or None
        if bool(user) != bool(password):
            log.warning("dashboard.basic_auth_incomplete",
                        reason="both MLOPS_BOT_DASHBOARD_USER and MLOPS_BOT_DASHBOARD_PASSWORD are needed")
            user = password = None
        return cls(environ.get("MLOPS_BOT_DASHBOARD_TOKEN") or None, user, password)

    @property
    def enabled(self) -> bool:
        return bool(self.token or (self.user and self.password))

    def session_value(self) -> str:
        # The cookie carries a value derived from the token, not the token: it is useless elsewhere
        # and stops working when the token is rotated.
        return hmac.new(self.token.encode(), b"mlops-bot dashboard session v1", hashlib.sha256).hexdigest()

    def allows(self, req) -> bool:
        if self.token:
            scheme, _, value = (req.headers.get("Authorization") or "").partition(" ")
            if scheme.lower() == "bearer" and _same(value.strip(), self.token):
                return True
            if _same(req.cookies.get(COOKIE, ""), self.session_value()):
                return True
        if self.user and self.password:
            basic = req.authorization
            if basic is not None and basic.type == "basic":
                # evaluate both comparisons: no early exit that tells a right user from a wrong one
                user_ok = _same(basic.username or "", self.user)
                password_ok = _same(basic.password or "", self.password)
                return user_ok and password_ok
        return False

    def challenge(self) -> list[str]:
        out = []
        if self.user and self.password:
            out.append('Basic realm="mlops-bot dashboard", charset="UTF-8"')
        if self.token:
            out.append('Bearer realm="mlops-bot dashboard"')
        return out


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


# --- formatting (pure) ---------------------------------------------------------------------------
_BADGES = {
    "ok": {"SUCCESS", "SUCCEEDED", "SUCCESS_WITH_FAILURES", "APPROVED", "PASSED",
           "PROMOTED", "DEPLOYED", "ACCEPTED", "DONE"},
    "bad": {"FAILED", "FAILURE", "TIMEDOUT", "TIMED_OUT", "INTERNAL_ERROR", "ERROR", "REJECTED", "REFUSED",
            "UPSTREAM_FAILED", "MAXIMUM_CONCURRENT_RUNS_REACHED"},
    "run": {"RUNNING", "TERMINATING"},
    "wait": {"PENDING", "QUEUED", "BLOCKED", "WAITING", "REQUESTED", "WAITING_FOR_RETRY"},
    "muted": {"CANCELED", "CANCELLED", "SKIPPED", "IGNORED", "DUPLICATE", "EXCLUDED", "SUPERSEDED",
              "UPSTREAM_CANCELED"},
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


# --- view models -----------------------------------------------------------------------------
def delivery_row(record: dict, now: float) -> dict:
    outcome = _str(record, "outcome") or "unknown"
    tasks = record.get("tasks") if isinstance(record.get("tasks"), list) else []
    detail = _str(record, "reason")
    if not detail and outcome == "duplicate":
        detail = "already received"
    return {
        "at": clock_text(record.get("at")), "ago": ago_text(record.get("at"), now),
        "source": _str(record, "source"), "event": _str(record, "event"),
        "delivery_id": _str(record, "delivery_id"), "outcome": outcome,
        "label": "accepted" if outcome == "queued" else outcome,
        "badge": badge_class(outcome, delivery=True), "reason": detail,
        "tasks": [str(t) for t in tasks if isinstance(t, (str, int, float))],
    }


def run_row(record: dict, now: float) -> dict:
    state = (_str(record, "state") or "UNKNOWN").upper()
    result = record.get("result") if isinstance(record.get("result"), dict) else {}
    started, finished = to_float(record.get("started_at")), to_float(record.get("finished_at"))
    duration = to_float(result.get("duration_s"))
    if duration is None and started is not None:
        if finished is not None:
            duration = finished - started
        elif state in ACTIVE_STATES:
            duration = now - started
    tasks = []
    for task in result.get("tasks") or []:
        if isinstance(task, dict):
            tasks.append({"key": _str(task, "key"), "result": _str(task, "result"),
                          "badge": badge_class(task.get("result")),
                          "duration": duration_text(task.get("duration_s"))})
    outcome = _str(result, "result").upper()
    pr = record.get("pr")
    return {
        "run_id": _str(record, "run_id"), "job_id": _str(record, "job_id"),
        "environment": _str(record, "environment"), "repo": _str(record, "repo"),
        "branch": _str(record, "branch"), "sha": _str(record, "sha")[:10],
        "workflow": _str(record, "workflow") or _str(record, "job"),
        "pr": str(pr) if isinstance(pr, (int, str)) and str(pr) else "",
        "requested_by": _str(record, "requested_by"),
        "state": state, "badge": badge_class(state), "active": state in ACTIVE_STATES,
        "outcome": outcome if outcome and outcome != state else "", "outcome_badge": badge_class(outcome),
        "superseded_by": _str(record, "superseded_by"),
        "started": clock_text(started), "ago": ago_text(started, now),
        "duration": duration_text(duration), "url": safe_url(result.get("run_page_url")
                                                              or record.get("run_page_url")),
        "tasks": tasks, "sort": started or 0.0,
    }


def job_row(member: str, record: dict | None, prefix: str | None, now: float) -> dict:
    environment, _, name = member.partition(":")
    repo, branch, workflow = split_job_name(name, prefix)
    record = record or {}
    return {
        "environment": environment, "name": name, "repo": repo, "branch": branch, "workflow": workflow,
        "job_id": _str(record, "job_id"), "fingerprint": _str(record, "fingerprint")[:12],
        "updated": clock_text(record.get("updated_at")),
        "ago": ago_text(record.get("updated_at"), now) if record.get("updated_at") is not None else "",
        "cached": bool(record),
    }


def approval_row(record: dict, now: float) -> dict:
    status = (_str(record, "status") or "unknown").lower()
    approvals = []
    for item in record.get("approvals") or []:
        if isinstance(item, dict):
            approvals.append({"by": _str(item, "by"), "source": _str(item, "source"),
                              "at": clock_text(item.get("at"))})
    pr = record.get("pr")
    return {
        "model": _str(record, "model"), "version": _str(record, "version"), "status": status,
        "badge": badge_class(status), "validation": (_str(record, "validation") or "").lower(),
        "validation_badge": badge_class(record.get("validation")),
        "requested": clock_text(record.get("requested_at")), "ago": ago_text(record.get("requested_at"), now),
        "repo": _str(record, "repo"), "pr": str(pr) if isinstance(pr, (int, str)) and str(pr) else "",
        "approvals": approvals, "rejected_by": _str(record, "rejected_by"), "reason": _str(record, "reason"),
    }


def audit_row(entry_id: str, record: dict, now: float) -> dict:
    decision = (_str(record, "decision") or "unknown").lower()
    pr = record.get("pr")
    return {
        "id": entry_id, "at": clock_text(record.get("at")), "ago": ago_text(record.get("at"), now),
        "decision": decision, "badge": badge_class(decision), "model": _str(record, "model"),
        "version": _str(record, "version"), "actor": _str(record, "actor"), "source": _str(record, "source"),
        "reason": _str(record, "reason"), "repo": _str(record, "repo"),
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


# --- the reader ------------------------------------------------------------------------------
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
        deliveries, run_keys, run_total, job_members, approval_keys, approval_total, audit, audit_total = \
            pipe.execute(raise_on_error=False)

        run_keys = _ok_list(run_keys)
        members = sorted(_text(m) for m in _ok_list(job_members))
        approval_keys = _ok_list(approval_keys)
        # job names sort by repo and branch; read the first `limit` of them
        job_keys = [layout.job_from_member(m) for m in members[:self.limit]]
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
        return Section(rows[:self.limit], len(raw), counts=dict(Counter(row["label"] for row in rows)),
                       shown=min(len(rows), self.limit))

    def _runs(self, raw, total, now: float) -> Section:
        if isinstance(raw, Exception):
            return Section([], error=_error(raw))
        rows = [run_row(r, now) for r in map(_record, raw) if r is not None]
        # every active run among the recent ones, then the most recent of the rest
        active = [r for r in rows if r["active"]][:self.limit]
        shown = active + [r for r in rows if not r["active"]][:max(self.limit - len(active), 0)]
        shown.sort(key=lambda r: r["sort"], reverse=True)
        groups = group_by(shown, "repo", "branch")
        for group in groups:
            group["active"] = sum(r["active"] for r in group["rows"])
        groups.sort(key=lambda g: (g["active"] == 0,))  # branches with something running first
        return Section(groups, total if isinstance(total, int) else len(rows), shown=len(shown),
                       active=len(active))

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
        return Section(rows, total if isinstance(total, int) else len(rows),
                       pending=[r for r in rows if r["status"] == "pending"][:self.limit],
                       decided=[r for r in rows if r["status"] != "pending"][:self.limit])

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


# --- the blueprint ---------------------------------------------------------------------------
def dashboard_blueprint(client: redis.Redis, *, job_prefix: str | None = None,
                        environ: dict[str, str] | None = None, clock: Callable[[], float] = time.time) -> Blueprint:
    """GET / — the overview page; auth is read from the environment now (in the app factory)."""
    auth = DashboardAuth.from_env(dict(os.environ if environ is None else environ))
    reader = DashboardReader(client, job_prefix=job_prefix)
    bp = Blueprint("dashboard", __name__, template_folder="templates")

    @bp.get("/")
    def overview():
        if not auth.enabled:
            return Response(OFF_MESSAGE, 404, mimetype="text/plain")
        if auth.token and "token" in request.args:
            return _exchange_token(auth)
        if not auth.allows(request):
            log.info("dashboard.unauthorized", remote_addr=request.remote_addr)
            response = Response("Unauthorized: this dashboard needs a token or a user name and password.\n",
                                401, mimetype="text/plain")
            for challenge in auth.challenge():
                response.headers.add("WWW-Authenticate", challenge)
            return _harden(response)

        now = clock()
        refresh = request.args.get("refresh", "") != "0"
        status = 200
        try:
            sections = reader.overview(now)
            unavailable = ""
        except redis.RedisError as exc:
            log.error("dashboard.redis_unavailable", error=type(exc).__name__)
            sections, unavailable, status = None, type(exc).__name__, 503
        nonce = secrets.token_urlsafe(16)
        html = render_template("dashboard/overview.html", s=sections, unavailable=unavailable, now=now,
                               now_text=clock_text(now), refresh=refresh, refresh_seconds=REFRESH_SECONDS,
                               nonce=nonce, limit=reader.limit)
        response = Response(html, status, mimetype="text/html")
        return _harden(response, nonce)

    return bp


def _exchange_token(auth: DashboardAuth) -> Response:
    """`?token=` once: set the session cookie and redirect to the same page without the token."""
    if not _same(request.args.get("token", ""), auth.token):
        log.info("dashboard.unauthorized", remote_addr=request.remote_addr, via="query")
        response = Response("Unauthorized: wrong token.\n", 401, mimetype="text/plain")
        for challenge in auth.challenge():
            response.headers.add("WWW-Authenticate", challenge)
        return _harden(response)
    rest = [(k, v) for k, v in request.args.items(multi=True) if k != "token"]
    # The token leaves the address bar (and so history, the Referer and the meta refresh).
    response = redirect(request.path + ("?" + urlencode(rest) if rest else ""), 303)
    response.set_cookie(COOKIE, auth.session_value(), max_age=7 * 24 * 3600, httponly=True,
                        samesite="Strict", secure=request.is_secure, path="/")
    return _harden(response)


def _harden(response: Response, nonce: str | None = None) -> Response:
    style = f"'nonce-{nonce}'" if nonce else "'none'"
    response.headers["Content-Security-Policy"] = (
        f"default-src 'none'; style-src {style}; img-src data:; base-uri 'none'; form-action 'none'; "
        "frame-ancestors 'none'")
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "DENY"
    return response
