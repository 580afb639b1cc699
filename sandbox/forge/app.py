"""The forge Flask app: the Forge state on the app, one blueprint per API area."""

from __future__ import annotations

from flask import Flask

from ..common import introspection_blueprint, on_shutdown
from .api import (
    apps,
    deployments,
    git_data,
    git_http,
    hooks,
    introspection,
    issues,
    pages,
    pulls,
    repos,
    statuses,
    teams,
)
from .core import Forge
from .faults import FaultSet

BLUEPRINTS = (hooks, repos, git_data, statuses, deployments, apps, teams, pulls, issues, introspection, git_http, pages)


def create_app(data_dir, seed, base_url: str, faults: list[str] | None = None) -> Flask:
    """Build the forge Flask app. ``seed`` is a TOML path, a parsed dict or None; ``faults`` are fault specs
    (sandbox/forge/faults.py)."""
    forge = Forge(data_dir, seed, base_url, FaultSet(faults))
    app = Flask("sandbox.forge")
    app.json.sort_keys = False
    app.url_map.strict_slashes = False
    app.extensions["forge"] = forge
    for module in BLUEPRINTS:
        app.register_blueprint(module.bp)
    app.register_blueprint(introspection_blueprint(forge.stats))
    on_shutdown(app, forge.store.flush)
    return app
