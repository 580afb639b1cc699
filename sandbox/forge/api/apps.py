"""GitHub App endpoints: installation tokens (JWT-authenticated) and the installation's repositories."""

from __future__ import annotations

import secrets
import time
from datetime import UTC, datetime

from flask import Blueprint, g

from ..vocabulary import ApiError
from .web import forge, need_user, paginate, reply

bp = Blueprint("apps", __name__)


@bp.post("/app/installations/<int:inst_id>/access_tokens")
def create_installation_token(inst_id):
    if g.app is None:
        raise ApiError(401, "A JSON web token could not be decoded")
    if g.app["installation_id"] != inst_id:
        raise ApiError(404, "Not Found")
    token = "ghs_" + secrets.token_urlsafe(27).replace("-", "A").replace("_", "b")[:36]
    expires = int(time.time()) + 3600
    with forge.lock:
        forge.state["install_tokens"][token] = {
            "app_id": g.app["id"],
            "installation_id": inst_id,
            "expires_at": expires,
        }
        forge.save_soon()
    perms = forge.app_json(g.app)["permissions"]
    return reply(
        {
            "token": token,
            "expires_at": datetime.fromtimestamp(expires, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "permissions": perms,
            "repository_selection": "all",
        },
        201,
    )


@bp.get("/app/installations/<int:inst_id>")
def get_installation(inst_id):
    if g.app is None:
        raise ApiError(401, "A JSON web token could not be decoded")
    if g.app["installation_id"] != inst_id:
        raise ApiError(404, "Not Found")
    return reply(forge.installation_full_json(g.app))


@bp.get("/app/installations")
def list_installations():
    if g.app is None:
        raise ApiError(401, "A JSON web token could not be decoded")
    return reply([forge.installation_full_json(g.app)])


@bp.get("/app")
def get_app():
    if g.app is None:
        raise ApiError(401, "A JSON web token could not be decoded")
    return reply(forge.app_json(g.app))


@bp.get("/installation/repositories")
def installation_repositories():
    login = need_user()
    if not forge.is_app_bot(login):
        raise ApiError(403, "You must authenticate with an installation access token.")
    repos = [forge.repo_json(r) for r in forge.state["repos"].values() if r.get("seeded")]
    chunk, headers = paginate(repos)
    return reply({"total_count": len(repos), "repository_selection": "all", "repositories": chunk}, headers=headers)
