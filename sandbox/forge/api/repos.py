"""Users, rate limit, repositories, forks, collaborator permissions, a repository's App installation."""

from __future__ import annotations

import shutil
import time

from flask import Blueprint, g

from .. import gitops
from ..vocabulary import PERM_RANK, ApiError, now_iso, validation_error
from .web import body_json, forge, need_user, no_content, reply

bp = Blueprint("repos", __name__)


@bp.get("/user")
def get_authenticated_user():
    login = need_user()
    if forge.is_app_bot(login):
        raise ApiError(403, "Resource not accessible by integration")
    d = forge.user_full_json(login)
    d.update(
        {
            "private_gists": 0,
            "total_private_repos": 0,
            "owned_private_repos": 0,
            "disk_usage": 0,
            "collaborators": 0,
            "two_factor_authentication": False,
            "plan": {"name": "free", "space": 976562499, "collaborators": 0, "private_repos": 10000},
        }
    )
    return reply(d)


@bp.get("/users/<login>")
def get_user(login):
    if not forge.user_exists(login):
        raise ApiError(404, "Not Found")
    return reply(forge.user_full_json(login))


@bp.get("/rate_limit")
def rate_limit():
    reset = int(time.time()) + 3600
    core = {"limit": 5000, "remaining": 5000, "reset": reset, "used": 0, "resource": "core"}
    return reply(
        {
            "resources": {
                "core": core,
                "search": {**core, "limit": 30, "remaining": 30},
                "graphql": {**core, "resource": "graphql"},
            },
            "rate": core,
        }
    )


@bp.get("/repos/<owner>/<repo>")
def get_repository(owner, repo):
    rec = forge.get_repo(owner, repo)
    return reply(forge.repo_json(rec, g.user or "", full=True) if g.user else forge.repo_json(rec, full=True))


@bp.delete("/repos/<owner>/<repo>")
def delete_repository(owner, repo):
    """repos/delete: "Deleting a repository requires admin access." A deleted fork's pull requests stay, with
    `head.repo` null, as the pull-request webhook schemas allow."""
    login = need_user()
    rec = forge.get_repo(owner, repo)
    forge.require(rec, login, "admin")
    with forge.lock:
        del forge.state["repos"][rec["full_name"]]
        forge.webhooks.pop(rec["full_name"], None)
        shutil.rmtree(forge.repo_path(rec), ignore_errors=True)
        forge.save_soon()
    return no_content()


@bp.post("/repos/<owner>/<repo>/forks")
def create_fork(owner, repo):
    login = need_user()
    rec = forge.get_repo(owner, repo)
    body = body_json()
    if forge.is_app_bot(login):
        raise ApiError(403, "Resource not accessible by integration")
    name = body.get("name") or rec["name"]
    new_owner = body.get("organization") or login
    if not gitops.valid_name(name) or not gitops.valid_login(new_owner):
        raise validation_error("Invalid fork name", resource="Repository", field="name")
    if new_owner != login and PERM_RANK[forge.perm({"owner": new_owner, "permissions": {}}, login)] < 5:
        raise ApiError(403, "Must have admin rights to organization")
    with forge.lock:
        full = f"{new_owner}/{name}"
        existing = forge.state["repos"].get(full)
        if existing is not None:
            if existing.get("fork_of") == rec["full_name"]:
                return reply(forge.repo_json(existing, login, full=True), 202)
            raise validation_error(f"{full} already exists", resource="Repository", field="name")
        if new_owner == rec["owner"]:
            raise validation_error("Cannot fork a repository into its own owner", resource="Repository")
        gitops.clone_bare(forge.repo_path(rec), forge.repo_path_for(full))
        ts = now_iso()
        fork = {
            "id": forge.next_id("repo"),
            "owner": new_owner,
            "name": name,
            "full_name": full,
            "created_at": ts,
            "updated_at": ts,
            "pushed_at": rec["pushed_at"],
            "fork_of": rec["full_name"],
            "next_number": 1,
            "issues": {},
            "default_branch": rec["default_branch"],
            "permissions": {},
            "description": rec.get("description"),
            "seeded": False,
        }
        forge.state["repos"][full] = fork
        forge.install_hooks(fork)
        forge.save_soon()
        forge.emit(rec, "fork", {"forkee": forge.repo_json(fork)}, login)
        return reply(forge.repo_json(fork, login, full=True), 202)


@bp.get("/repos/<owner>/<repo>/collaborators/<username>/permission")
def collaborator_permission(owner, repo, username):
    need_user()
    rec = forge.get_repo(owner, repo)
    if not forge.is_user(username) and not (username == rec["owner"]):
        raise ApiError(404, f"{username} is not a user")
    raw = forge.perm(rec, username)
    mapped = {
        "admin": "admin",
        "maintain": "write",
        "write": "write",
        "triage": "read",
        "read": "read",
        "none": "none",
    }[raw]
    rank = PERM_RANK[raw]
    user = forge.user_json(username)
    user["permissions"] = {
        "admin": rank >= 5,
        "maintain": rank >= 4,
        "push": rank >= 3,
        "triage": rank >= 2,
        "pull": rank >= 1,
    }
    # "The `role_name` attribute provides the name of the assigned role, including custom roles. The `permission`
    # can also be used to determine which base level of access the collaborator has" (collaborators permission)
    role_name = forge.role_name(rec, username)
    user["role_name"] = role_name
    return reply({"permission": mapped, "role_name": role_name, "user": user})


@bp.get("/repos/<owner>/<repo>/installation")
def repo_installation(owner, repo):
    rec = forge.get_repo(owner, repo)
    if g.app is None:
        raise ApiError(401, "A JSON web token could not be decoded")
    if not rec.get("seeded"):
        raise ApiError(404, "Not Found")
    return reply(forge.installation_full_json(g.app))
