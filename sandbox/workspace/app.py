"""The workspace Flask app: fault injection, request counting and bearer-token auth in front of one blueprint
per API area."""

from __future__ import annotations

import time
import traceback

from flask import Flask, g, request
from werkzeug.exceptions import HTTPException

from ..common import RequestCounts, introspection_blueprint, on_shutdown
from .api import jobs, misc, oidc, pages, repos, runs, workspace_api
from .api.files import bp as uc_files_bp
from .api.uc_grants import bp as uc_grants_bp
from .api.uc_models import bp as uc_models_bp
from .api.unity_catalog import bp as unity_catalog_bp
from .api.web import ApiError, Workspace, error_response, workspace
from .faults import STATUS_ERROR_CODES, FaultSet
from .oauth import TOKEN_LIFETIME_SECONDS, Issuer, signing_key
from .principals import Principal, Principals
from .runner import Runner
from .state import Store


def create_app(
    data_dir,
    token: str = "dapi-sandbox",
    mlflow_tracking_uri: str | None = None,
    faults=None,
    *,
    base_url: str | None = None,
    mlflow_registry_uri: str | None = None,
    service_principals: dict[str, str] | None = None,
    oauth_secrets: dict[str, str] | None = None,
    oauth_token_lifetime: int = TOKEN_LIFETIME_SECONDS,
    save_every: float = 0.0,
) -> Flask:
    """The workspace app: `token` is the admin's, `service_principals` (application id -> token) the others';
    `oauth_secrets` (application id -> secret) lets those sign in machine-to-machine. Each task authenticates
    back at `base_url` as its job's run-as principal. `save_every` > 0: jobs and runs are written to disk within
    that many seconds of an API write instead of at once (sandbox/common/store.py)."""
    store = Store(data_dir)
    store.save_every = save_every
    principals = Principals(token, service_principals)
    for app_id, secret in (oauth_secrets or {}).items():
        principals.add_secret(app_id, secret)
    issuer = Issuer(signing_key(data_dir), oauth_token_lifetime)
    runner = Runner(
        store,
        mlflow_tracking_uri,
        mlflow_registry_uri=mlflow_registry_uri,
        databricks_host=base_url,
        principals=principals,
    )
    faultset = faults if isinstance(faults, FaultSet) else FaultSet(faults or [])
    state = Workspace(store, runner, faultset, token, RequestCounts(), principals, issuer)
    app = Flask("sandbox.workspace")
    app.extensions["workspace"] = state
    app.before_request(gate)
    app.register_error_handler(ApiError, on_api_error)
    app.register_error_handler(HTTPException, on_http_error)
    app.register_error_handler(Exception, on_internal_error)
    for module in (misc, oidc, jobs, runs, pages, repos, workspace_api):
        app.register_blueprint(module.bp)
    app.register_blueprint(unity_catalog_bp)  # Unity Catalog model registry, then its files area
    app.register_blueprint(uc_files_bp)
    app.register_blueprint(uc_grants_bp)  # who may do what there, and the 2.1 reads that say who created what
    app.register_blueprint(uc_models_bp)
    app.register_blueprint(introspection_blueprint(state.requests))
    on_shutdown(app, runner.shutdown)
    on_shutdown(app, store.flush)
    return app


def gate():
    """Count the request, answer an injected fault if one fires, then check the token (faults come first)."""
    path, method = request.path, request.method
    if path.startswith("/sandbox/"):
        return None
    workspace.requests.count(f"{method} {path}")
    for fault in workspace.faults.take(method, path):
        if fault.delay:
            time.sleep(fault.delay)
        if fault.status is not None:
            return fault.answer()
    if path.startswith("/api/"):
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("Bearer "):
            return error_response(
                401, "UNAUTHENTICATED", "Invalid access token." if auth else "Missing Authorization header."
            )
        principal, reason = bearer(auth.removeprefix("Bearer "))
        if principal is None:
            return error_response(401, "UNAUTHENTICATED", f"Invalid access token{reason}.")
        g.principal = principal
    return None


def bearer(token: str) -> tuple[Principal | None, str]:
    """Whose token: a personal access token, else an OAuth access token (`oauth.py`); else why not (": ...")."""
    principal = workspace.principals.of_token(token)
    if principal is not None:
        return principal, ""
    verdict = workspace.issuer.verify(token)
    if not verdict.who:
        return None, f": {verdict.reason}" if token.count(".") == 2 else ""
    return workspace.principals.named(verdict.who), ""


def on_api_error(e: ApiError):
    return error_response(e.status, e.error_code, e.message, e.headers)


def on_http_error(e: HTTPException):
    code = {404: "ENDPOINT_NOT_FOUND", 405: "BAD_REQUEST"}.get(e.code, STATUS_ERROR_CODES.get(e.code, "UNKNOWN"))
    msg = f"No API found for '{request.method} {request.path}'" if e.code in (404, 405) else e.description
    return error_response(e.code or 500, code, msg)


def on_internal_error(e: Exception):
    traceback.print_exc()
    return error_response(500, "INTERNAL_ERROR", f"Sandbox internal failure: {type(e).__name__}: {e}")
