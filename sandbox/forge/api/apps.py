"""GitHub App endpoints: installation tokens and the App webhook's deliveries (JWT-authenticated), and the
installation's repositories."""

from __future__ import annotations

import json
import secrets
import time
from datetime import UTC, datetime
from urllib.parse import urlencode

from flask import Blueprint, g, request

from ..vocabulary import ApiError
from .web import forge, need_app, need_user, paginate, reply

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


# --- the App's webhook deliveries (apps/list-webhook-deliveries, get-webhook-delivery, redeliver-webhook-delivery) ---
# GitHub: "You must use a JWT to access this endpoint." (an installation token or a PAT is refused)
CURSOR_PREFIX = "v1_"  # GitHub's cursors look like `v1_12077215967`: the listing goes on below that delivery id


def delivery_item(d: dict) -> dict:
    """A recorded attempt as `hook-delivery-item`: one not answered (refused, timed out) has status code 0."""
    return {
        "id": d["id"],
        "guid": d["guid"],
        "delivered_at": d["delivered_at"] or d["created_at"],
        "redelivery": bool(d["redelivery"]),
        "duration": round((d.get("duration_ms") or 0) / 1000, 3),
        "status": d["status"],
        "status_code": d["status_code"] or 0,
        "event": d["event"],
        "action": d["action"],
        "installation_id": d.get("installation_id"),
        "repository_id": d.get("repository_id"),
        "throttled_at": d.get("throttled_at"),
    }


def delivery_full(d: dict) -> dict:
    """`hook-delivery`: the item, where it went, and the request and response as they were."""
    return {
        **delivery_item(d),
        "url": d["url"],
        "request": {"headers": d.get("request_headers"), "payload": json.loads(d["payload"])},
        "response": {"headers": d.get("response_headers") or {}, "payload": d.get("response_body")},
    }


def app_delivery(delivery_id: int) -> dict:
    app = need_app()
    found = next(
        (d for d in forge.state["deliveries"] if d["id"] == delivery_id and d.get("app_id") == app["id"]), None
    )
    if found is None:
        raise ApiError(404, "Not Found")
    return found


def listed_deliveries(app: dict) -> list[dict]:
    """The App's attempts made so far (one still queued is not listed yet), newest first, `status`-filtered."""
    done = [d for d in forge.state["deliveries"] if d.get("app_id") == app["id"] and d["delivered_at"]]
    wanted = request.args.get("status")
    if wanted in ("success", "failure"):
        done = [d for d in done if (d["status"] == "OK") == (wanted == "success")]
    return sorted(done, key=lambda d: d["id"], reverse=True)


@bp.get("/app/hook/deliveries")
def list_app_hook_deliveries():
    """per_page (at most 100) deliveries, newest first; `cursor` goes on where the `rel="next"` link says."""
    app = need_app()
    try:
        per_page = min(100, max(1, int(request.args.get("per_page", 30))))
    except ValueError:
        per_page = 30
    cursor = request.args.get("cursor", "")
    items = listed_deliveries(app)
    if cursor:
        below = cursor.removeprefix(CURSOR_PREFIX)
        if not cursor.startswith(CURSOR_PREFIX) or not below.isdigit():
            raise ApiError(400, "Invalid cursor")
        items = [d for d in items if d["id"] < int(below)]
    page, more = items[:per_page], len(items) > per_page
    headers = {}
    if more:
        params = {k: v for k, v in request.args.items() if k not in ("cursor", "per_page")}
        params.update(per_page=per_page, cursor=f"{CURSOR_PREFIX}{page[-1]['id']}")
        headers["Link"] = f'<{forge.base}{request.path}?{urlencode(params)}>; rel="next"'
    return reply([delivery_item(d) for d in page], headers=headers)


@bp.get("/app/hook/deliveries/<int:delivery_id>")
def get_app_hook_delivery(delivery_id):
    return reply(delivery_full(app_delivery(delivery_id)))


@bp.post("/app/hook/deliveries/<int:delivery_id>/attempts")
def redeliver_app_hook_delivery(delivery_id):
    """A new attempt: a new delivery with the same guid and `redelivery: true` (202, an empty object)."""
    forge.redeliver_record(app_delivery(delivery_id))
    return reply({}, 202)
