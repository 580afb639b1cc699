"""Sandbox-only endpoints: webhook deliveries, repos on disk, the post-receive callback, avatars, docs."""

from __future__ import annotations

import secrets

from flask import Blueprint, Response, request

from .. import pages
from ..vocabulary import ApiError
from .web import body_json, forge, reply

bp = Blueprint("forge_sandbox", __name__)


def delivery_view(d: dict, with_payload: bool) -> dict:
    keys = [
        "id",
        "guid",
        "event",
        "action",
        "repository",
        "repository_id",
        "hook_id",
        "app_id",
        "installation_id",
        "url",
        "status",
        "status_code",
        "response_body",
        "duration_ms",
        "delivered_at",
        "created_at",
        "redelivery",
        "error",
    ]
    v = {k: d.get(k) for k in keys}
    if with_payload:
        v["request_headers"] = d.get("request_headers")
        v["response_headers"] = d.get("response_headers")
        v["payload"] = d.get("payload")
    return v


@bp.get("/sandbox/exchanges")
def sandbox_exchanges():
    """The last API requests with their bodies and answers (reset with `POST /sandbox/requests/reset`)."""
    return reply(forge.stats.exchanges())


@bp.get("/sandbox/deliveries")
def sandbox_deliveries():
    with_payload = request.args.get("payload") in ("1", "true", "yes")
    with forge.lock:
        items = list(forge.state["deliveries"])
    for key in ("event", "action", "guid", "repository", "status"):
        if request.args.get(key):
            items = [d for d in items if str(d.get(key)) == request.args[key]]
    return reply({"pending": forge.dispatcher.pending(), "deliveries": [delivery_view(d, with_payload) for d in items]})


@bp.get("/sandbox/deliveries/<guid>")
def sandbox_delivery(guid):
    with forge.lock:
        items = [delivery_view(d, True) for d in forge.state["deliveries"] if d["guid"] == guid]
    if not items:
        raise ApiError(404, "Not Found")
    return reply(items)


@bp.post("/sandbox/deliveries/<guid>/redeliver")
def sandbox_redeliver(guid):
    record = forge.redeliver(guid)
    return reply(delivery_view(record, False), 202)


@bp.get("/sandbox/repos")
def sandbox_repos():
    return reply(
        [
            {
                "full_name": r["full_name"],
                "git_url": f"{forge.base}/{r['full_name']}.git",
                "path": str(forge.repo_path(r)),
                "fork_of": r.get("fork_of"),
            }
            for r in forge.state["repos"].values()
        ]
    )


@bp.get("/sandbox/repos/<owner>/<repo>")
def sandbox_repo(owner, repo):
    rec = forge.get_repo(owner, repo)
    return reply(
        {
            "full_name": rec["full_name"],
            "git_url": f"{forge.base}/{rec['full_name']}.git",
            "path": str(forge.repo_path(rec)),
            "default_branch": rec["default_branch"],
            "fork_of": rec.get("fork_of"),
        }
    )


@bp.post("/sandbox/internal/post-receive")
def sandbox_post_receive():
    if not secrets.compare_digest(request.headers.get("X-Sandbox-Hook-Token", ""), forge.hook_token):
        raise ApiError(403, "Forbidden")
    body = body_json()
    rec = forge.state["repos"].get(str(body.get("repo", "")))
    if rec is None:
        raise ApiError(404, "Not Found")
    updates = [
        (u.get("old", ""), u.get("new", ""), u.get("ref", "")) for u in body.get("updates") or [] if isinstance(u, dict)
    ]
    forge.process_ref_updates(rec, updates, body.get("pusher") or None)
    return reply({"ok": True, "updates": len(updates)})


@bp.post("/sandbox/check-runs/<int:cid>/rerequest")
def sandbox_rerequest_check_run(cid):
    """A user clicks "Re-run" on a check run: GitHub sends `check_run` `rerequested` (to the App only)."""
    body = body_json()
    cr = forge.state["check_runs"].get(str(cid))
    if cr is None:
        raise ApiError(404, "Not Found")
    if cr["status"] != "completed":  # GitHub offers "Re-run" on completed check runs only
        raise ApiError(422, "Only a completed check run can be re-run")
    rec = forge.state["repos"][cr["repo"]]
    forge.emit(
        rec, "check_run", {"action": "rerequested", "check_run": forge.check_run_json(rec, cr)}, body.get("sender")
    )
    return reply({"ok": True}, 202)


@bp.get("/sandbox/faults")
def sandbox_faults():
    return reply(forge.faults.describe())


@bp.post("/sandbox/faults")
def sandbox_add_fault():
    """Add a fault at run time: `{"spec": "GET:/repos/*/branches/*=primary,wait=2:1"}` (sandbox/forge/faults.py)."""
    try:
        fault = forge.faults.add(str(body_json().get("spec", "")))
    except ValueError as exc:
        raise ApiError(422, str(exc)) from None
    return reply(fault.describe(), 201)


@bp.delete("/sandbox/faults")
def sandbox_clear_faults():
    forge.faults.clear()
    return reply([])


@bp.get("/sandbox/avatars/<login>")
def sandbox_avatar(login):
    letter = (login[:1] or "?").upper()
    hue = sum(map(ord, login)) % 360
    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="40" height="40"><rect width="40" height="40" '
        f'fill="hsl({hue},50%,45%)"/><text x="20" y="27" font-size="20" text-anchor="middle" '
        f'fill="#fff" font-family="sans-serif">{pages.esc(letter)}</text></svg>'
    )
    return Response(svg, mimetype="image/svg+xml")


@bp.get("/sandbox/docs")
def sandbox_docs():
    return Response(pages.docs_page(), mimetype="text/html")
