"""Sandbox-only views of what the bot did: messages, response posts, channels, users."""

from __future__ import annotations

import copy

from flask import Blueprint, jsonify, request

from ..messages import SandboxError, SlackError
from ..store import user_object
from .web import new_response_url, resolve_channel, store, user_or_error, user_specs

bp = Blueprint("introspection", __name__)


@bp.get("/sandbox/response-url")
def fresh_response_url():
    ctx = {"kind": "manual"}
    with store.lock:
        if request.args.get("channel"):
            try:
                ch = resolve_channel(request.args["channel"], create=True)
            except SlackError:
                raise SandboxError(404, f"unknown channel {request.args['channel']!r}") from None
            ctx["channel_id"] = ch["id"]
        if request.args.get("user"):
            ctx["user_id"] = user_or_error(request.args["user"])[0]
        if request.args.get("message_ts"):
            ctx["message_ts"] = request.args["message_ts"]
        url = new_response_url(ctx)
        store.save()
    return jsonify({"url": url, "response_url": url})


def sandbox_view(cid: str, rec: dict, replies: list[dict] | None = None) -> dict:
    ch = store.channel(cid) or {}
    out = {
        **copy.deepcopy(rec["message"]),
        "channel": cid,
        "channel_name": ch.get("name"),
        "updates": copy.deepcopy(rec["updates"]),
        "deleted": rec.get("deleted", False),
        "via": rec.get("via"),
    }
    if replies is not None:
        out["replies"] = replies
    return out


@bp.get("/sandbox/messages")
def sandbox_messages():
    with store.lock:
        cids = list(store.state["messages"])
        if request.args.get("channel"):
            try:
                cids = [resolve_channel(request.args["channel"])["id"]]
            except SlackError:
                return jsonify({"messages": [], "ephemeral": []})
        out = []
        for cid in cids:
            recs = list(store.records(cid).values())
            for r in recs:
                m = r["message"]
                if m.get("thread_ts") and m["thread_ts"] != m["ts"]:
                    continue
                replies = [
                    sandbox_view(cid, x)
                    for x in recs
                    if x["message"].get("thread_ts") == m["ts"] and x["message"]["ts"] != m["ts"]
                ]
                out.append(sandbox_view(cid, r, replies))
        eph = [e for e in store.state["ephemeral"] if e["channel"] in cids]
        return jsonify({"messages": out, "ephemeral": eph})


@bp.get("/sandbox/responses")
def sandbox_responses():
    with store.lock:
        posts = [
            {"response_id": r["id"], "url": r["url"], "context": r["context"], **p}
            for r in store.state["responses"].values()
            for p in r["posts"]
        ]
        posts.sort(key=lambda x: x["at"])
        return jsonify({"responses": posts, "issued": list(store.state["responses"].values())})


@bp.get("/sandbox/channels")
def sandbox_channels():
    with store.lock:
        return jsonify({"channels": list(store.state["channels"].values())})


@bp.get("/sandbox/users")
def sandbox_users():
    return jsonify({"users": [user_object(u, s) for u, s in user_specs.items()]})
