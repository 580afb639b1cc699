"""The Slack Flask app: the Slack state on the app, one blueprint per area."""

from __future__ import annotations

from flask import Flask, jsonify

from ..common import RequestCounts, introspection_blueprint, on_shutdown
from .api import interactions, introspection, responses, web_api
from .api.web import Slack
from .messages import SandboxError
from .store import DEFAULT_SCOPES, Store, load_users


def create_app(
    data_dir,
    token: str = "xoxb-sandbox",
    base_url: str = "http://127.0.0.1:9100",
    signing_secret: str | None = None,
    interactions_url: str | None = None,
    commands_url: str | None = None,
    users: str | dict | None = None,
    scopes: str | tuple[str, ...] | None = None,
) -> Flask:
    """``users``: a seed file path, an already parsed ``{id: name}`` dict, or None (alice, bob, carol);
    ``scopes``: the token's (comma-separated or a tuple; None: every scope a method here needs)."""
    if isinstance(scopes, str):
        scopes = tuple(s.strip() for s in scopes.split(",") if s.strip())
    config = {
        "token": token,
        "scopes": tuple(DEFAULT_SCOPES if scopes is None else scopes),
        "signing_secret": signing_secret,
        "interactions_url": interactions_url,
        "commands_url": commands_url,
        "base_url": base_url.rstrip("/"),
    }
    state = Slack(Store(data_dir), load_users(users), config, RequestCounts())
    app = Flask("sandbox.slack")
    app.extensions["slack"] = state
    for module in (web_api, responses, interactions, introspection):
        app.register_blueprint(module.bp)
    app.register_blueprint(introspection_blueprint(state.requests))
    app.register_error_handler(SandboxError, lambda e: (jsonify({"error": e.message}), e.status))
    on_shutdown(app, state.store.save)
    return app
