"""Repos API (Git folders): clone, get, update (fetch + checkout), list, delete.

The folder a repo is created in must exist: Databricks answers 404 RESOURCE_DOES_NOT_EXIST "Parent
directory /Repos/<folder> does not exist." until `workspace.mkdirs` made it (see `workspace_api.py`).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from databricks.sdk.service import workspace as W
from flask import Blueprint, jsonify, request

from .. import gitutil
from .web import USER, ApiError, bad, decode_token, encode_token, json_body, store
from .workspace_api import directory_id

REPOS_PAGE = 20

bp = Blueprint("repos", __name__)


def repos_root() -> Path:
    return store.data_dir / "repos"


def repo_json(repo: dict, cls=W.RepoInfo) -> dict:
    return cls.from_dict({k: v for k, v in repo.items() if not k.startswith("_")}).as_dict()


def get_repo(repo_id: int) -> dict:
    repo = store.repos.get(repo_id)
    if repo is None:
        raise ApiError(404, "RESOURCE_DOES_NOT_EXIST", f"Repo {repo_id} does not exist.")
    return repo


def refresh_repo(repo: dict) -> None:
    co = Path(repo["_checkout"])
    repo["head_commit_id"] = gitutil.head_commit(co)
    branch = gitutil.current_branch(co)
    if branch:
        repo["branch"] = branch
    else:
        repo.pop("branch", None)


@bp.post("/api/2.0/repos")
def repos_create():
    b = json_body()
    url, provider = b.get("url"), b.get("provider")
    if not url:
        raise bad("Missing required field: url")
    if not provider:
        raise bad("Missing required field: provider")
    path = b.get("path")
    if path:
        if path.startswith("/Workspace/Repos/"):
            path = path[len("/Workspace") :]
        if not re.fullmatch(r"/Repos/[^/]+/[^/]+", path):
            raise bad(f"Invalid repo path {path!r}: expected /Repos/<folder>/<repo-name>")
    else:
        name = re.sub(r"\.git$", "", url.rstrip("/").rsplit("/", 1)[-1]) or "repo"
        path = f"/Repos/{USER}/{name}"
    parent = path.rsplit("/", 1)[0]
    with store.lock:
        if directory_id(parent) is None:
            raise ApiError(404, "RESOURCE_DOES_NOT_EXIST", f"Parent directory {parent} does not exist.")
        if any(r["path"] == path for r in store.repos.values()) or directory_id(path) is not None:
            raise ApiError(400, "RESOURCE_ALREADY_EXISTS", f"Path ({path}) already exists.")
        repo_id = store.next_id("repo")
        # reserve the path while cloning
        store.repos[repo_id] = {
            "id": repo_id,
            "path": path,
            "url": url,
            "provider": provider,
            "_checkout": str(repos_root() / str(repo_id)),
            "_cloning": True,
        }
    co = repos_root() / str(repo_id)
    try:
        if co.exists():
            shutil.rmtree(co)
        gitutil.clone(url, co)
        if b.get("branch"):
            gitutil.checkout_branch(co, b["branch"])
    except gitutil.GitError as e:
        with store.lock:
            store.repos.pop(repo_id, None)
        shutil.rmtree(co, ignore_errors=True)
        raise bad(f"Failed to clone repository {url}: {e}") from None
    with store.lock:
        repo = store.repos[repo_id]
        repo.pop("_cloning", None)
        refresh_repo(repo)
        store.save()
        return jsonify(repo_json(repo, W.CreateRepoResponse))


@bp.get("/api/2.0/repos/<int:repo_id>")
def repos_get(repo_id: int):
    with store.lock:
        return jsonify(repo_json(get_repo(repo_id), W.GetRepoResponse))


@bp.patch("/api/2.0/repos/<int:repo_id>")
def repos_update(repo_id: int):
    b = json_body()
    with store.lock:
        repo = get_repo(repo_id)
    co = Path(repo["_checkout"])
    if b.get("branch") and b.get("tag"):
        raise bad("Only one of branch and tag can be given")
    try:
        gitutil.fetch(co)
        if b.get("tag"):
            gitutil.checkout_tag(co, b["tag"])
        else:
            branch = b.get("branch") or gitutil.current_branch(co) or repo.get("branch")
            if branch:
                gitutil.checkout_branch(co, branch)
    except gitutil.GitError as e:
        raise bad(str(e)) from None
    with store.lock:
        refresh_repo(repo)
        store.save()
        return jsonify(repo_json(repo, W.GetRepoResponse))


@bp.get("/api/2.0/repos")
def repos_list():
    prefix = request.args.get("path_prefix") or ""
    if prefix.startswith("/Workspace/Repos"):
        prefix = prefix[len("/Workspace") :]
    tok = request.args.get("next_page_token")
    after = decode_token(tok).get("after", "") if tok else ""
    with store.lock:
        repos = sorted(
            (
                r
                for r in store.repos.values()
                if not r.get("_cloning") and r["path"].startswith(prefix) and r["path"] > after
            ),
            key=lambda r: r["path"],
        )
        page, more = repos[:REPOS_PAGE], len(repos) > REPOS_PAGE
        resp = W.ListReposResponse(
            repos=[W.RepoInfo.from_dict(repo_json(r)) for r in page],
            next_page_token=encode_token({"after": page[-1]["path"]}) if more else None,
        )
    return jsonify(resp.as_dict())


@bp.delete("/api/2.0/repos/<int:repo_id>")
def repos_delete(repo_id: int):
    with store.lock:
        repo = get_repo(repo_id)
        del store.repos[repo_id]
        store.save()
    shutil.rmtree(repo["_checkout"], ignore_errors=True)
    return jsonify({})
