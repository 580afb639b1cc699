"""App-wide request handling: who is calling (token, basic auth or an App's JWT), the one-at-a-time lock,
GitHub's response headers and error bodies, conditional requests (ETag, 304: sandbox/forge/conditional.py), and
request counting."""

from __future__ import annotations

import base64
import re
import secrets
import socket

from flask import Blueprint, Response, g, jsonify, request
from werkzeug.exceptions import HTTPException

from ..conditional import answer_conditionally
from ..contract import rest_contract
from ..vocabulary import ApiError
from .web import forge

API_PREFIXES = ("/users/", "/repos/", "/app", "/rate_limit", "/installation", "/orgs/")
_TEMPLATE_RE = re.compile(r"<(?:[a-z]+:)?([a-z_]+)>")
_BAD_JWT = "A JSON web token could not be decoded"

bp = Blueprint("hooks", __name__)


def kind_of(path: str) -> str:
    if path.startswith("/sandbox/"):
        return "sandbox"
    if ".git/" in path or path.endswith(".git"):
        return "git"
    if path == "/user" or path.startswith(API_PREFIXES):
        return "api"
    return "html"


def error_body(status: int, message: str, errors=None) -> dict:
    body = {"message": message, "documentation_url": forge.docs_url, "status": str(status)}
    if errors:
        body["errors"] = errors
    return body


@bp.app_errorhandler(ApiError)
def on_api_error(exc: ApiError):
    resp = jsonify(error_body(exc.status, exc.message, exc.errors))
    resp.status_code = exc.status
    resp.headers.update(exc.headers)
    return resp


@bp.app_errorhandler(HTTPException)
def on_http_error(exc: HTTPException):
    if kind_of(request.path) not in ("api", "sandbox"):
        return exc
    msg = {404: "Not Found", 405: "Method Not Allowed", 400: "Problems parsing JSON"}.get(exc.code, exc.name)
    resp = jsonify(error_body(exc.code, msg))
    resp.status_code = exc.code
    return resp


def verify_jwt(token: str) -> dict:
    """The seeded App whose key signed this RS256 JWT."""
    import jwt  # PyJWT, shipped with PyGithub: only Apps need it

    try:
        app_id = int(str(jwt.decode(token, options={"verify_signature": False}).get("iss")))
    except (jwt.PyJWTError, ValueError):
        raise ApiError(401, _BAD_JWT) from None
    gh_app = forge.apps.get(app_id)
    if gh_app is None or not gh_app["public_key"]:
        raise ApiError(401, "Integration not found")
    try:
        jwt.decode(
            token, gh_app["public_key"], algorithms=["RS256"], leeway=60, options={"require": ["exp", "iat", "iss"]}
        )
    except jwt.ExpiredSignatureError:
        raise ApiError(
            401,
            "'Expiration time' claim ('exp') must be a numeric value representing the "
            "future time at which the assertion expires",
        ) from None
    except jwt.PyJWTError:
        raise ApiError(401, _BAD_JWT) from None
    return gh_app


def token_user(token: str) -> str | None:
    """The login of a personal token, or the App bot of an installation token."""
    login = forge.tokens.get(token)
    if login:
        return login
    inst = forge.installation_for_token(token)
    if inst:
        return forge.apps[inst["app_id"]]["bot"] if inst["app_id"] in forge.apps else None
    return None


def authenticate(header: str) -> None:
    """Set g.user or g.app from an Authorization header; anything unrecognised is 401 like GitHub."""
    scheme, _, cred = header.partition(" ")
    cred, scheme = cred.strip(), scheme.lower()
    if scheme in ("token", "bearer"):
        g.user = token_user(cred)
        if g.user:
            return
        if scheme == "bearer" and cred.count(".") == 2:
            g.app = verify_jwt(cred)
            return
    elif scheme == "basic":
        try:
            user, _, pw = base64.b64decode(cred).decode().partition(":")
        except Exception:
            user, pw = "", ""
        g.user = token_user(pw) or token_user(user)
        if g.user:
            return
    raise ApiError(401, "Bad credentials")


def request_id() -> str:
    return ":".join(secrets.token_hex(n).upper() for n in (2, 3, 4, 4))


@bp.before_app_request
def start_request():
    g.request_id = request_id()
    g.kind = kind_of(request.path)
    g.user = None
    g.app = None
    if g.kind in ("api", "html"):
        # API/HTML handlers run one at a time (git smart HTTP and /sandbox/ do not take the lock:
        # a push runs the post-receive hook, which calls back into /sandbox/internal/post-receive)
        forge.lock.acquire()
        g.locked = True
    header = request.headers.get("Authorization", "")
    if g.kind == "api" and header:
        authenticate(header)
    if g.kind == "api":
        refuse_off_contract()
        inject_fault()


def inject_fault() -> None:
    """An injected fault (sandbox/forge/faults.py): a rate limit or status answers now; `lose` lets the
    request apply and drops the connection in `finish_request`."""
    fault = forge.faults.take(request.method, request.path, g.get("user"))
    if fault is None:
        return
    if fault.kind == "lose":
        g.lose = True
        return
    status, message, headers = fault.answer(g.get("user"))
    raise ApiError(status, message, headers=headers)


def drop_connection() -> None:
    """The answer is lost: the socket is shut before werkzeug writes it (the client sees a dropped connection)."""
    sock = request.environ.get("werkzeug.socket")
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def request_body():
    """The parsed JSON body, None when there is none; unparseable JSON is GitHub's 400."""
    if not request.get_data():
        return None
    body = request.get_json(silent=True, force=True)
    if body is None:
        raise ApiError(400, "Problems parsing JSON")
    return body


def refuse_off_contract() -> None:
    """GitHub answers 404 to an undocumented operation and 422 to a body off the operation's schema."""
    if request.method in ("HEAD", "OPTIONS"):
        return
    problems = rest_contract().request_problems(request.method, request.path, request_body())
    if not problems:
        return
    if problems[0].message == "no documented operation":
        raise ApiError(404, "Not Found")
    raise ApiError(422, "Invalid request.\n\n" + "\n".join(p.message for p in problems))


@bp.teardown_app_request
def end_request(exc):
    if g.pop("locked", False):
        forge.lock.release()


def add_api_headers(resp: Response, who: str | None, spend: bool = True) -> None:
    """GitHub's headers; `spend` False: this answer costs no rate limit (the headers say what is left, unchanged)."""
    used, reset = forge.rate_used(who, spend)
    # an injected rate limit has set its own (remaining 0, its reset): those stay
    resp.headers.setdefault("X-RateLimit-Limit", "5000")
    resp.headers.setdefault("X-RateLimit-Remaining", str(max(0, 5000 - used)))
    resp.headers.setdefault("X-RateLimit-Reset", str(reset))
    resp.headers.setdefault("X-RateLimit-Used", str(used))
    resp.headers["X-RateLimit-Resource"] = "core"
    resp.headers["X-GitHub-Media-Type"] = "github.v3; format=json"
    resp.headers["X-GitHub-Api-Version-Selected"] = "2022-11-28"
    if g.get("user") and not forge.is_app_bot(g.user):
        resp.headers["X-OAuth-Scopes"] = ", ".join(forge.users[g.user]["scopes"])
        resp.headers["X-Accepted-OAuth-Scopes"] = "repo"


def exchange(resp: Response) -> dict:
    """One API request and its answer as the contract tests read them (`GET /sandbox/exchanges`)."""
    sent = request.get_json(silent=True, force=True) if request.get_data() else None
    answered = resp.get_json(silent=True) if resp.is_json else None
    return {
        "method": request.method,
        "path": request.path,
        "query": request.query_string.decode(),
        "status": resp.status_code,
        "request": sent,
        "response": answered,
        "user": g.get("user"),
    }


@bp.after_app_request
def finish_request(resp: Response):
    if g.get("kind") == "api":
        who = g.get("user") or (f"app:{g.app['id']}" if g.get("app") else None)
        not_modified = answer_conditionally(request, resp)
        authorized = bool(g.get("user") or g.get("app"))  # set only from an Authorization header the forge accepted
        add_api_headers(resp, who, spend=not (not_modified and authorized))
        rule = request.url_rule.rule if request.url_rule else "(unmatched)"
        template = _TEMPLATE_RE.sub(r"{\1}", rule)
        forge.stats.count(f"{request.method} {template}", who, not_modified)
        answered = exchange(resp)
        if g.get("lose"):
            answered["lost"] = True  # applied, but the client never saw this answer
            drop_connection()
        forge.stats.record(answered)
    if g.get("request_id"):
        resp.headers["X-GitHub-Request-Id"] = g.request_id
    return resp
