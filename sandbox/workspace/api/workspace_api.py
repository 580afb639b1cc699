"""Workspace API: mkdirs and get-status, the folders Git folders (Repos) are created in.

Databricks' rules, from databricks-sdk's `WorkspaceAPI` docstrings:
* mkdirs "Creates the specified directory (and necessary parent directories if they do not exist).
  If there is an object (not a directory) at any prefix of the input path, this call returns an
  error RESOURCE_ALREADY_EXISTS." "If the directory already exists, this command will do nothing
  and succeed."
* get-status "If `path` does not exist, this call returns an error RESOURCE_DOES_NOT_EXIST."
A workspace starts with `/`, `/Users`, `/Shared`, `/Repos` and the current user's folders in
`/Users` and `/Repos`; `repos/create` needs its parent folder to exist (see `repos.py`).
"""

from __future__ import annotations

from pathlib import Path

from databricks.sdk.service import workspace as W
from flask import Blueprint, jsonify, request

from .web import USER, ApiError, bad, json_body, store

bp = Blueprint("workspace_api", __name__)
BUILT_IN = {"/": 1, "/Users": 2, f"/Users/{USER}": 3, "/Shared": 4, "/Repos": 5, f"/Repos/{USER}": 6}
NOTEBOOK_HEADER = "# Databricks notebook source"


def normalized(path: str) -> str:
    """`/Workspace/Repos/x` and `/Repos/x` name the same object; no trailing slash."""
    if path == "/Workspace" or path.startswith("/Workspace/"):
        path = path[len("/Workspace") :] or "/"
    return path.rstrip("/") or "/"


def absolute(path: object) -> str:
    if not isinstance(path, str) or not path:
        raise bad("Missing required field: path")
    if not path.startswith("/"):
        raise bad(f"Path ({path}) doesn't start with '/'")
    return normalized(path)


def directory_id(path: str) -> int | None:
    """The object id of the folder at `path` (normalised), or None. Caller holds the store lock."""
    return BUILT_IN.get(path) or store.directories.get(path)


def _repo_at_or_above(path: str) -> tuple[dict, str] | tuple[None, None]:
    for repo in store.repos.values():
        if not repo.get("_cloning") and (path == repo["path"] or path.startswith(repo["path"] + "/")):
            return repo, path[len(repo["path"]) :].lstrip("/")
    return None, None


def object_info(path: str) -> dict | None:
    """get-status's answer for `path`, or None when nothing is there. Caller holds the store lock."""
    oid = directory_id(path)
    if oid is not None:
        return W.ObjectInfo(
            path=path, object_type=W.ObjectType.DIRECTORY, object_id=oid, resource_id=str(oid)
        ).as_dict()
    repo, rest = _repo_at_or_above(path)
    if repo is None:
        return None
    if not rest:
        return W.ObjectInfo(
            path=path, object_type=W.ObjectType.REPO, object_id=repo["id"], resource_id=str(repo["id"])
        ).as_dict()
    return _in_checkout(path, Path(repo["_checkout"]) / rest)


def _in_checkout(path: str, f: Path) -> dict | None:
    """A file or folder inside a Git folder; a `.py` source notebook is addressed without its suffix."""
    notebook = f.with_name(f.name + ".py")
    if f.is_dir():
        return W.ObjectInfo(path=path, object_type=W.ObjectType.DIRECTORY).as_dict()
    if notebook.is_file() and notebook.read_text(errors="replace").startswith(NOTEBOOK_HEADER):
        return W.ObjectInfo(path=path, object_type=W.ObjectType.NOTEBOOK, language=W.Language.PYTHON).as_dict()
    if f.is_file():
        return W.ObjectInfo(path=path, object_type=W.ObjectType.FILE, size=f.stat().st_size).as_dict()
    return None


def prefixes(path: str) -> list[str]:
    """`/a/b/c` → [`/a`, `/a/b`, `/a/b/c`]."""
    parts = [p for p in path.split("/") if p]
    return ["/" + "/".join(parts[: i + 1]) for i in range(len(parts))]


@bp.post("/api/2.0/workspace/mkdirs")
def workspace_mkdirs():
    path = absolute(json_body().get("path"))
    with store.lock:
        for prefix in prefixes(path):
            found = object_info(prefix)
            if found is not None and found["object_type"] != "DIRECTORY":
                raise ApiError(
                    400,
                    "RESOURCE_ALREADY_EXISTS",
                    f"Cannot create directory {path}: {prefix} exists and is a {found['object_type'].lower()}.",
                )
            if found is None:
                store.directories[prefix] = store.next_id("object")
        store.save()
    return jsonify({})


@bp.get("/api/2.0/workspace/get-status")
def workspace_get_status():
    path = absolute(request.args.get("path"))
    with store.lock:
        found = object_info(path)
    if found is None:
        raise ApiError(404, "RESOURCE_DOES_NOT_EXIST", f"Path ({path}) doesn't exist.")
    return jsonify(found)
