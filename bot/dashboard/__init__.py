"""The dashboard: what the bot has received, started and decided, read from Redis only (GET /).

Everything shown was written to Redis by the receiver and the workers, and most of it came from
outside (branch names, PR titles, reasons, Slack users): the templates autoescape every value and
only http(s) links are rendered. The web process makes no outbound call to build a page and
imports neither `workers` nor any SDK.

Off unless configured: set MLOPS_BOT_DASHBOARD_TOKEN (Bearer header, or ?token= once, which sets
a cookie), or MLOPS_BOT_DASHBOARD_USER + MLOPS_BOT_DASHBOARD_PASSWORD (HTTP Basic).
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlencode

import redis
from flask import Blueprint, Response, redirect, render_template, request
from werkzeug.wrappers import Response as BaseResponse

from bot.dashboard.auth import COOKIE, DashboardAuth, _same
from bot.dashboard.reader import DashboardReader
from bot.dashboard.rows import clock_text, split_job_name
from core.logs import get_logger

__all__ = ["COOKIE", "dashboard_blueprint", "split_job_name"]

log = get_logger("bot.dashboard")
TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
REFRESH_SECONDS = 5
OFF_MESSAGE = (
    "The dashboard is off: set MLOPS_BOT_DASHBOARD_TOKEN, or MLOPS_BOT_DASHBOARD_USER and "
    "MLOPS_BOT_DASHBOARD_PASSWORD, to turn it on.\n"
)


def dashboard_blueprint(
    client: redis.Redis,
    *,
    job_prefix: str | None = None,
    environ: dict[str, str] | None = None,
    clock: Callable[[], float] = time.time,
) -> Blueprint:
    """GET / — the overview page; auth is read from the environment now (in the app factory)."""
    auth = DashboardAuth.from_env(dict(os.environ if environ is None else environ))
    reader = DashboardReader(client, job_prefix=job_prefix)
    bp = Blueprint("dashboard", __name__, template_folder=str(TEMPLATES))

    @bp.get("/")
    def overview():
        if not auth.enabled:
            return Response(OFF_MESSAGE, 404, mimetype="text/plain")
        if auth.token and "token" in request.args:
            return _exchange_token(auth)
        if not auth.allows(request):
            log.info("dashboard.unauthorized", remote_addr=request.remote_addr)
            return _unauthorized(auth, "Unauthorized: this dashboard needs a token or a user name and password.\n")
        return _render_overview(reader, clock())

    return bp


def _render_overview(reader: DashboardReader, now: float) -> BaseResponse:
    """The page: every section read from Redis, or 503 with a plain notice when Redis cannot be read."""
    status, unavailable, sections = 200, "", None
    try:
        sections = reader.overview(now)
    except redis.RedisError as exc:
        log.error("dashboard.redis_unavailable", error=type(exc).__name__)
        status, unavailable = 503, type(exc).__name__
    nonce = secrets.token_urlsafe(16)
    html = render_template(
        "dashboard/overview.html",
        s=sections,
        unavailable=unavailable,
        now=now,
        now_text=clock_text(now),
        refresh=request.args.get("refresh", "") != "0",
        refresh_seconds=REFRESH_SECONDS,
        nonce=nonce,
        limit=reader.limit,
    )
    return _harden(Response(html, status, mimetype="text/html"), nonce)


def _unauthorized(auth: DashboardAuth, text: str) -> BaseResponse:
    response = Response(text, 401, mimetype="text/plain")
    for challenge in auth.challenge():
        response.headers.add("WWW-Authenticate", challenge)
    return _harden(response)


def _exchange_token(auth: DashboardAuth) -> BaseResponse:
    """`?token=` once: set the session cookie and redirect to the same page without the token."""
    if not _same(request.args.get("token", ""), auth.token or ""):
        log.info("dashboard.unauthorized", remote_addr=request.remote_addr, via="query")
        return _unauthorized(auth, "Unauthorized: wrong token.\n")
    rest = [(k, v) for k, v in request.args.items(multi=True) if k != "token"]
    # The token leaves the address bar (and so history, the Referer and the meta refresh).
    response = redirect(request.path + ("?" + urlencode(rest) if rest else ""), 303)
    response.set_cookie(
        COOKIE,
        auth.session_value(),
        max_age=7 * 24 * 3600,
        httponly=True,
        samesite="Strict",
        secure=request.is_secure,
        path="/",
    )
    return _harden(response)


def _harden(response: BaseResponse, nonce: str | None = None) -> BaseResponse:
    style = f"'nonce-{nonce}'" if nonce else "'none'"
    response.headers["Content-Security-Policy"] = (
        f"default-src 'none'; style-src {style}; img-src data:; base-uri 'none'; form-action 'none'; "
        "frame-ancestors 'none'"
    )
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "DENY"
    return response
