"""Response URLs (what `WebhookClient` posts to) and message permalinks."""

from __future__ import annotations

import json

from flask import Blueprint, Response, jsonify, request

from ..messages import SlackError, truthy
from ..store import RESPONSE_URL_MAX_USES
from .web import apply_response, slack, store

bp = Blueprint("responses", __name__)


@bp.post("/response/<rid>")
def response_url(rid: str):
    with store.lock:
        slack.requests.count("response_url")
        rec = store.state["responses"].get(rid)
        if rec is None:
            store.save()
            return Response("expired_url", status=404, mimetype="text/plain")
        if len([x for x in rec["posts"] if x["via"] == "response_url"]) >= RESPONSE_URL_MAX_USES:
            return Response("used_url", status=404, mimetype="text/plain")
        body = request.get_json(silent=True)
        if body is None and request.form.get("payload"):
            try:
                body = json.loads(request.form["payload"])
            except ValueError:
                body = None
        if not isinstance(body, dict):
            return Response("invalid_payload", status=400, mimetype="text/plain")
        if (
            not body.get("text")
            and not body.get("blocks")
            and not body.get("attachments")
            and not truthy(body.get("delete_original"))
        ):
            return Response("no_text", status=400, mimetype="text/plain")
        try:
            apply_response(rec, body, "response_url")
        except SlackError as e:
            return Response(e.error, status=400, mimetype="text/plain")
        store.save()
    return Response("ok", status=200, mimetype="text/html")


@bp.get("/archives/<cid>/<pts>")
def permalink(cid: str, pts: str):
    ts = pts[1:-6] + "." + pts[-6:] if pts.startswith("p") and len(pts) > 7 else pts
    with store.lock:
        rec = store.record(cid, ts)
        if rec is None:
            return jsonify({"error": "message not found"}), 404
        return jsonify({"channel": cid, "message": rec["message"], "deleted": rec.get("deleted", False)})
