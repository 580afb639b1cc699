"""Deployments, deployment statuses and the environments they name (the repository's Environments page).

Each behaviour follows GitHub's OpenAPI description (contracts/github/openapi.json, `repos/create-deployment`,
`repos/create-deployment-status`) and the REST docs (docs.github.com/en/rest/deployments); the sentences are quoted
next to the code and in tests/sandbox/test_forge_deployments.py.
"""

from __future__ import annotations

import json

from flask import Blueprint, request

from .. import gitops
from ..json_deployments import deployment_json, deployment_status_json, environment_json
from ..vocabulary import ApiError, now_iso, validation_error
from .web import body_json, forge, need_user, paginate, reply

DEPLOYMENT_STATES = ("error", "failure", "inactive", "in_progress", "queued", "pending", "success")
MAX_DESCRIPTION = 140  # "The maximum description length is 140 characters."

bp = Blueprint("deployments", __name__)


def deployments_of(rec: dict) -> list[dict]:
    """The repository's deployments, newest first."""
    found = [d for d in forge.state["deployments"].values() if d["repo"] == rec["full_name"]]
    return sorted(found, key=lambda d: d["id"], reverse=True)


def get_deployment(rec: dict, deployment_id: int) -> dict:
    d = forge.state["deployments"].get(str(deployment_id))
    if d is None or d["repo"] != rec["full_name"]:
        raise ApiError(404, "Not Found")
    return d


def payload_of(value) -> dict | str:
    """`payload` is an object or "a JSON text field": JSON text holding an object is kept as that object."""
    if isinstance(value, str):
        try:
            parsed = json.loads(value) if value.strip() else {}
        except ValueError:
            return value
        return parsed if isinstance(parsed, dict) else value
    return value if isinstance(value, dict) else {}


def ensure_environment(rec: dict, name: str) -> None:
    envs = forge.state["environments"]
    key = f"{rec['full_name']}|{name}"
    ts = now_iso()
    if key not in envs:
        envs[key] = {"id": forge.next_id("environment"), "repo": rec["full_name"], "name": name, "created_at": ts}
    envs[key]["updated_at"] = ts


def auto_merge(rec: dict, ref: str, sha: str, login: str) -> str | None:
    """`auto_merge` (default true): "If the ref _is_ behind the default branch for the repository, we will attempt
    to merge it for you. If the merge succeeds, the API will return a successful merge commit. If merge conflicts
    prevent the merge from succeeding, the API will return a failure response." Only a branch can be merged into."""
    path, default = forge.repo_path(rec), rec["default_branch"]
    branch = ref.removeprefix("refs/heads/")
    base = gitops.ref_sha(path, f"refs/heads/{default}")
    if branch == default or base is None or gitops.ref_sha(path, f"refs/heads/{branch}") != sha:
        return None
    if gitops.is_ancestor(path, base, sha):
        return None
    tree = gitops.merge_tree(path, sha, base)
    if tree is None:
        raise ApiError(409, f"Conflict merging {default} into {branch}.")
    person = (forge.user_name(login), forge.user_email(login))
    merged = gitops.commit_tree(path, tree, [sha, base], f"Merge {default} into {branch}", person)
    gitops.update_ref(path, f"refs/heads/{branch}", merged, sha)
    forge.process_ref_updates(rec, [(sha, merged, f"refs/heads/{branch}")], login)
    return f"Auto-merged {default} into {branch} on deployment."


def check_contexts(rec: dict, ref: str, sha: str, required: list[str] | None) -> None:
    """ "By default, commit statuses for every submitted context must be in a `success` state. The
    `required_contexts` parameter allows you to specify a subset of contexts that must be `success`, or to specify
    contexts that have not yet been submitted." An empty list bypasses the check."""
    latest: dict[str, str] = {}
    for s in sorted(forge.state["statuses"], key=lambda s: s["id"]):
        if s["repo"] == rec["full_name"] and s["sha"] == sha:
            latest[s["context"]] = s["state"]
    wanted = list(latest) if required is None else required
    failed = [c for c in wanted if latest.get(c) != "success"]
    if failed:
        raise ApiError(
            409,
            f"Conflict: Commit status checks failed for {ref}.",
            errors=[{"contexts": failed, "resource": "Deployment", "field": "required_contexts", "code": "invalid"}],
        )


@bp.post("/repos/<owner>/<repo>/deployments")
def create_deployment(owner, repo):
    login = need_user()
    rec = forge.get_repo(owner, repo)
    forge.require(rec, login, "write")
    body = body_json()
    ref = body.get("ref") or ""
    sha = gitops.resolve(forge.repo_path(rec), ref)
    if sha is None:
        raise ApiError(422, f"No ref found for: {ref}")
    merged = auto_merge(rec, ref, sha, login) if body.get("auto_merge", True) else None
    if merged:
        # "Merged branch response: You will see this response when GitHub automatically merges the base branch
        # into the topic branch instead of creating a deployment."
        return reply({"message": merged}, 202)
    check_contexts(rec, ref, sha, body.get("required_contexts"))
    environment = body.get("environment") or "production"  # "The default environment is `production`."
    ts = now_iso()
    d = {
        "id": forge.next_id("deployment"),
        "repo": rec["full_name"],
        "sha": sha,
        "ref": ref,
        "task": body.get("task") or "deploy",
        "payload": payload_of(body.get("payload")),
        "original_environment": environment,
        "environment": environment,
        "description": body.get("description", ""),
        "creator": login,
        "created_at": ts,
        "updated_at": ts,
        "transient_environment": bool(body.get("transient_environment", False)),
        # "Default: `true` when `environment` is `production` and `false` otherwise."
        "production_environment": bool(body.get("production_environment", environment == "production")),
        "statuses": [],
    }
    forge.state["deployments"][str(d["id"])] = d
    ensure_environment(rec, environment)
    forge.save_soon()
    data = deployment_json(forge, rec, d)
    forge.emit(
        rec, "deployment", {"action": "created", "deployment": data, "workflow": None, "workflow_run": None}, login
    )
    return reply(data, 201)


@bp.get("/repos/<owner>/<repo>/deployments")
def list_deployments(owner, repo):
    rec = forge.get_repo(owner, repo)
    found = deployments_of(rec)
    for key in ("sha", "ref", "task", "environment"):
        if request.args.get(key):
            found = [d for d in found if d[key] == request.args[key]]
    chunk, headers = paginate([deployment_json(forge, rec, d) for d in found])
    return reply(chunk, headers=headers)


@bp.get("/repos/<owner>/<repo>/deployments/<int:deployment_id>")
def get_one(owner, repo, deployment_id):
    rec = forge.get_repo(owner, repo)
    return reply(deployment_json(forge, rec, get_deployment(rec, deployment_id)))


def add_status(rec: dict, d: dict, state: str, fields: dict, login: str) -> dict:
    """Record a status on deployment `d` and send its `deployment_status` webhook."""
    s = {"id": forge.next_id("deployment_status"), "state": state, "creator": login, "created_at": now_iso(), **fields}
    d["statuses"].append(s)
    d["environment"] = s["environment"]
    d["updated_at"] = s["created_at"]
    ensure_environment(rec, s["environment"])
    status = deployment_status_json(forge, rec, d, s)
    deployment = deployment_json(forge, rec, d)
    forge.emit(
        rec, "deployment_status", {"action": "created", "deployment_status": status, "deployment": deployment}, login
    )
    return status


def inactivate_earlier(rec: dict, current: dict, login: str) -> None:
    """`auto_inactive` (default true): "Adds a new `inactive` status to all prior non-transient, non-production
    environment deployments with the same repository and `environment` name as the created status's deployment. An
    `inactive` status is only added to deployments that had a `success` state." """
    for d in deployments_of(rec):
        if d["id"] >= current["id"] or d["environment"] != current["environment"]:
            continue
        if d["transient_environment"] or d["production_environment"]:
            continue
        if d["statuses"] and d["statuses"][-1]["state"] == "success":
            fields = {"description": "", "environment": d["environment"], "environment_url": "", "log_url": ""}
            add_status(rec, d, "inactive", fields, login)


@bp.post("/repos/<owner>/<repo>/deployments/<int:deployment_id>/statuses")
def create_status(owner, repo, deployment_id):
    login = need_user()
    rec = forge.get_repo(owner, repo)
    forge.require(rec, login, "write")  # "Users with `push` access can create deployment statuses"
    d = get_deployment(rec, deployment_id)
    body = body_json()
    state = body.get("state")
    if state not in DEPLOYMENT_STATES:
        raise validation_error(resource="DeploymentStatus", field="state", code="invalid")
    description = body.get("description") or ""
    if len(description) > MAX_DESCRIPTION:
        raise validation_error(
            "description is too long (maximum is 140 characters)", resource="DeploymentStatus", field="description"
        )
    previous = d["statuses"][-1]["environment"] if d["statuses"] else d["environment"]
    fields = {
        "description": description,
        # "If not defined, the environment of the previous status on the deployment will be used, if it exists.
        # Otherwise, the environment of the deployment will be used."
        "environment": body.get("environment") or previous,
        "environment_url": body.get("environment_url") or "",
        # "Setting `log_url` will automatically set `target_url` to the same value."
        "log_url": body.get("log_url") or body.get("target_url") or "",
    }
    status = add_status(rec, d, state, fields, login)
    if state == "success" and body.get("auto_inactive", True):
        inactivate_earlier(rec, d, login)
    forge.save_soon()
    return reply(status, 201)


@bp.get("/repos/<owner>/<repo>/deployments/<int:deployment_id>/statuses")
def list_statuses(owner, repo, deployment_id):
    rec = forge.get_repo(owner, repo)
    d = get_deployment(rec, deployment_id)
    chunk, headers = paginate([deployment_status_json(forge, rec, d, s) for s in reversed(d["statuses"])])
    return reply(chunk, headers=headers)


@bp.get("/repos/<owner>/<repo>/environments")
def list_environments(owner, repo):
    rec = forge.get_repo(owner, repo)
    envs = [e for e in forge.state["environments"].values() if e["repo"] == rec["full_name"]]
    envs.sort(key=lambda e: e["name"].lower())
    chunk, headers = paginate([environment_json(forge, rec, e) for e in envs])
    return reply({"total_count": len(envs), "environments": chunk}, headers=headers)
