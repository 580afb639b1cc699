"""What every workspace view uses: the app's store and runner, Databricks' error shape, request parsing."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass

from flask import Blueprint, Response, current_app, g, jsonify, request
from werkzeug.local import LocalProxy

from ...common import RequestCounts
from ..faults import FaultSet
from ..oauth import Issuer
from ..principals import ADMIN, Principal, Principals
from ..runner import Runner
from ..state import Store

USER = ADMIN  # the workspace admin: the principal of the workspace's own token
JOBS_PREFIXES = ("/api/2.2/jobs", "/api/2.1/jobs")


@dataclass
class Workspace:
    """Per-app state, kept in app.extensions["workspace"]."""

    store: Store
    runner: Runner
    faults: FaultSet
    token: str
    requests: RequestCounts
    principals: Principals
    issuer: Issuer  # OAuth access tokens (api/oidc.py issues them, the app's gate checks them)


workspace: Workspace = LocalProxy(lambda: current_app.extensions["workspace"])  # type: ignore[assignment]
store: Store = LocalProxy(lambda: current_app.extensions["workspace"].store)  # type: ignore[assignment]
runner: Runner = LocalProxy(lambda: current_app.extensions["workspace"].runner)  # type: ignore[assignment]


def caller() -> Principal:
    """The principal whose token made this request (`gate` checked it before any view runs)."""
    return g.principal


def denied(message: str) -> ApiError:
    """Databricks' answer to a caller without the privilege: 403 PERMISSION_DENIED."""
    return ApiError(403, "PERMISSION_DENIED", message)


def jobs_route(bp: Blueprint):
    """A decorator factory registering a view under both Jobs API versions (the SDK uses 2.2, older clients 2.1)."""

    def route(rule: str, methods: list[str]):
        def register(view):
            for prefix in JOBS_PREFIXES:
                endpoint = f"{view.__name__}{prefix}".replace(".", "_").replace("/", "_")
                bp.add_url_rule(prefix + rule, endpoint, view, methods=methods)
            return view

        return register

    return route


class ApiError(Exception):
    def __init__(self, status: int, error_code: str, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status, self.error_code, self.message, self.headers = status, error_code, message, headers or {}


def bad(msg: str) -> ApiError:
    return ApiError(400, "INVALID_PARAMETER_VALUE", msg)


def error_response(status: int, code: str, message: str, headers: dict | None = None) -> Response:
    resp = jsonify({"error_code": code, "message": message})
    resp.status_code = status
    resp.headers.update(headers or {})
    return resp


def json_body() -> dict:
    if not request.data:
        return {}
    try:
        d = json.loads(request.data)
    except ValueError:
        raise ApiError(400, "MALFORMED_REQUEST", "Request body is not valid JSON") from None
    if not isinstance(d, dict):
        raise ApiError(400, "MALFORMED_REQUEST", "Request body must be a JSON object")
    return d


def integer(value, name: str, required: bool = True) -> int | None:
    if value is None or value == "":
        if required:
            raise bad(f"Missing required field: {name}")
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise bad(f"Invalid value for {name}: {value!r}") from None


def boolean(value) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).lower() in ("true", "1", "yes")


def encode_token(v) -> str:
    return base64.urlsafe_b64encode(json.dumps(v).encode()).decode().rstrip("=")


def decode_token(tok: str):
    try:
        return json.loads(base64.urlsafe_b64decode(tok + "=" * (-len(tok) % 4)))
    except Exception:
        raise bad(f"Invalid page_token: {tok!r}") from None
