"""Commit statuses and check runs."""

from __future__ import annotations

from flask import Blueprint, request

from .. import gitops
from ..vocabulary import ApiError, now_iso, validation_error
from .web import body_json, forge, need_user, paginate, reply, resolve_or

STATUS_STATES = ("error", "failure", "pending", "success")
CHECK_STATUSES = ("queued", "in_progress", "completed", "waiting", "requested", "pending")
CHECK_CONCLUSIONS = ("action_required", "cancelled", "failure", "neutral", "success", "skipped", "stale", "timed_out")

bp = Blueprint("statuses", __name__)


def statuses_for(rec: dict, sha: str) -> list:
    return sorted(
        (s for s in forge.state["statuses"] if s["repo"] == rec["full_name"] and s["sha"] == sha),
        key=lambda s: s["id"],
        reverse=True,
    )


@bp.post("/repos/<owner>/<repo>/statuses/<sha>")
def create_status(owner, repo, sha):
    login = need_user()
    rec = forge.get_repo(owner, repo)
    forge.require(rec, login, "write")
    body = body_json()
    full_sha = gitops.resolve(forge.repo_path(rec), sha) if gitops.valid_short_sha(sha) else None
    if full_sha is None:
        raise ApiError(422, f"No commit found for SHA: {sha}")
    state = body.get("state")
    if state not in STATUS_STATES:
        raise validation_error(resource="Status", field="state", code="custom" if state else "missing_field")
    ts = now_iso()
    with forge.lock:
        s = {
            "id": forge.next_id("status"),
            "repo": rec["full_name"],
            "sha": full_sha,
            "state": state,
            "target_url": body.get("target_url"),
            "description": (body.get("description") or None),
            "context": body.get("context") or "default",
            "creator": login,
            "created_at": ts,
            "updated_at": ts,
        }
        forge.state["statuses"].append(s)
        forge.save_soon()
        branches = [
            {
                "name": r[11:],
                "commit": {"sha": v, "url": f"{forge.base}/repos/{rec['full_name']}/commits/{v}"},
                "protected": False,
            }
            for r, v in gitops.list_refs(forge.repo_path(rec)).items()
            if v == full_sha
        ]
        forge.emit(
            rec,
            "status",
            {
                "id": s["id"],
                "sha": full_sha,
                "name": rec["full_name"],
                "target_url": s["target_url"],
                "context": s["context"],
                "description": s["description"],
                "state": state,
                "commit": forge.commit_json(rec, full_sha, with_files=False),
                "branches": branches,
                "created_at": ts,
                "updated_at": ts,
            },
            login,
        )
        return reply(forge.status_json(rec, s), 201)


@bp.get("/repos/<owner>/<repo>/commits/<path:ref>/statuses")
@bp.get("/repos/<owner>/<repo>/statuses/<path:ref>")
def list_statuses(owner, repo, ref):
    rec = forge.get_repo(owner, repo)
    sha = resolve_or(rec, ref)
    chunk, headers = paginate([forge.status_json(rec, s) for s in statuses_for(rec, sha)])
    return reply(chunk, headers=headers)


@bp.get("/repos/<owner>/<repo>/commits/<path:ref>/status")
def combined_status(owner, repo, ref):
    rec = forge.get_repo(owner, repo)
    sha = resolve_or(rec, ref)
    latest = {}
    for s in statuses_for(rec, sha):
        latest.setdefault(s["context"], s)
    states = [s["state"] for s in latest.values()]
    if any(st in ("error", "failure") for st in states):
        combined = "failure"
    elif not states or any(st == "pending" for st in states):
        combined = "pending"
    else:
        combined = "success"
    items = sorted(latest.values(), key=lambda s: s["id"])
    return reply(
        {
            "state": combined,
            "statuses": [forge.status_json(rec, s) for s in items],
            "sha": sha,
            "total_count": len(items),
            "repository": forge.repo_json(rec),
            "commit_url": f"{forge.base}/repos/{rec['full_name']}/commits/{sha}",
            "url": f"{forge.base}/repos/{rec['full_name']}/commits/{sha}/status",
        }
    )


def require_app_token(rec: dict) -> str:
    login = need_user()
    if not forge.is_app_bot(login):
        raise ApiError(403, "You must authenticate via a GitHub App.")
    forge.require(rec, login, "write")
    return login


def check_suite_id(rec: dict, head_sha: str, app_id: int) -> int:
    suites = forge.state.setdefault("check_suites", {})
    key = f"{rec['full_name']}|{head_sha}|{app_id}"
    if key not in suites:
        suites[key] = forge.next_id("check_suite")
    return suites[key]


def apply_check_fields(cr: dict, body: dict) -> None:
    for k in ("name", "details_url", "external_id", "started_at", "completed_at"):
        if k in body:
            cr[k] = body[k]
    if "output" in body and isinstance(body["output"], dict):
        cr["output"] = {k: body["output"].get(k) for k in ("title", "summary", "text")}
    if "status" in body:
        if body["status"] not in CHECK_STATUSES:
            raise validation_error(resource="CheckRun", field="status", code="invalid")
        cr["status"] = body["status"]
    if body.get("conclusion") is not None:
        if body["conclusion"] not in CHECK_CONCLUSIONS:
            raise validation_error(resource="CheckRun", field="conclusion", code="invalid")
        cr["conclusion"] = body["conclusion"]
        cr["status"] = "completed"
    if cr["status"] == "completed":
        if not cr.get("conclusion"):
            raise ApiError(422, 'Invalid request.\n\nNo subschema in "anyOf" matched.\n"conclusion" wasn\'t supplied.')
        cr.setdefault("completed_at", None)
        cr["completed_at"] = cr["completed_at"] or now_iso()


@bp.post("/repos/<owner>/<repo>/check-runs")
def create_check_run(owner, repo):
    rec = forge.get_repo(owner, repo)
    login = require_app_token(rec)
    body = body_json()
    if not body.get("name") or not body.get("head_sha"):
        raise validation_error(
            resource="CheckRun", field="name" if not body.get("name") else "head_sha", code="missing_field"
        )
    head_sha = (
        gitops.resolve(forge.repo_path(rec), body["head_sha"]) if gitops.valid_short_sha(body["head_sha"]) else None
    )
    if head_sha is None:
        raise ApiError(422, "No commit found for SHA: " + str(body["head_sha"]))
    app_id = forge.users[login]["app_id"]
    with forge.lock:
        cr = {
            "id": forge.next_id("check_run"),
            "repo": rec["full_name"],
            "head_sha": head_sha,
            "status": "queued",
            "conclusion": None,
            "app_id": app_id,
            "started_at": now_iso(),
            "completed_at": None,
            "check_suite_id": check_suite_id(rec, head_sha, app_id),
            "output": {},
        }
        apply_check_fields(cr, body)
        forge.state["check_runs"][str(cr["id"])] = cr
        forge.save_soon()
        data = forge.check_run_json(rec, cr)
        forge.emit(rec, "check_run", {"action": "created", "check_run": data}, login)
        return reply(data, 201)


def get_check(rec: dict, cid: int) -> dict:
    cr = forge.state["check_runs"].get(str(cid))
    if cr is None or cr["repo"] != rec["full_name"]:
        raise ApiError(404, "Not Found")
    return cr


@bp.get("/repos/<owner>/<repo>/check-runs/<int:cid>")
def get_check_run(owner, repo, cid):
    rec = forge.get_repo(owner, repo)
    return reply(forge.check_run_json(rec, get_check(rec, cid)))


@bp.patch("/repos/<owner>/<repo>/check-runs/<int:cid>")
def update_check_run(owner, repo, cid):
    rec = forge.get_repo(owner, repo)
    login = require_app_token(rec)
    body = body_json()
    with forge.lock:
        cr = get_check(rec, cid)
        if cr["app_id"] != forge.users[login]["app_id"]:
            raise ApiError(
                403,
                f"Invalid app_id `{forge.users[login]['app_id']}` - check run can only be modified by its creator",
            )
        was_completed = cr["status"] == "completed"
        apply_check_fields(cr, body)
        forge.save_soon()
        data = forge.check_run_json(rec, cr)
        if cr["status"] == "completed" and not was_completed:
            forge.emit(rec, "check_run", {"action": "completed", "check_run": data}, login)
        return reply(data)


@bp.get("/repos/<owner>/<repo>/commits/<path:ref>/check-runs")
def list_check_runs(owner, repo, ref):
    rec = forge.get_repo(owner, repo)
    sha = resolve_or(rec, ref)
    runs = [cr for cr in forge.state["check_runs"].values() if cr["repo"] == rec["full_name"] and cr["head_sha"] == sha]
    if request.args.get("check_name"):
        runs = [cr for cr in runs if cr["name"] == request.args["check_name"]]
    if request.args.get("status"):
        runs = [cr for cr in runs if cr["status"] == request.args["status"]]
    runs.sort(key=lambda cr: cr["id"], reverse=True)
    if request.args.get("filter", "latest") == "latest":
        seen, latest = set(), []
        for cr in runs:
            if cr["name"] not in seen:
                seen.add(cr["name"])
                latest.append(cr)
        runs = latest
    chunk, headers = paginate(runs)
    return reply(
        {"total_count": len(runs), "check_runs": [forge.check_run_json(rec, cr) for cr in chunk]}, headers=headers
    )
