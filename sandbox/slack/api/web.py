"""The app's Slack state and what the views share: finding channels, users and messages, posting, threads,
paging, response URLs. Callers hold the store's lock."""

from __future__ import annotations

import copy
import secrets
import time
from dataclasses import dataclass

from flask import current_app, request
from werkzeug.local import LocalProxy

from ...common import RequestCounts
from ..messages import (
    CHANNEL_ID_RE,
    CHANNEL_NAME_RE,
    SandboxError,
    SlackError,
    message_metadata,
    normalize_blocks,
    truthy,
)
from ..store import APP_ID, BOT_ID, BOT_NAME, BOT_USER_ID, TEAM_ID, Store

PAGE_DEFAULT = 100
PAGE_MAX = 1000


@dataclass
class Slack:
    """Per-app state, kept in app.extensions["slack"]."""

    store: Store
    users: dict[str, dict]
    config: dict  # token, scopes, signing_secret, interactions_url, commands_url, base_url
    requests: RequestCounts


slack: Slack = LocalProxy(lambda: current_app.extensions["slack"])  # type: ignore[assignment]
store: Store = LocalProxy(lambda: current_app.extensions["slack"].store)  # type: ignore[assignment]
user_specs: dict = LocalProxy(lambda: current_app.extensions["slack"].users)  # type: ignore[assignment]
cfg: dict = LocalProxy(lambda: current_app.extensions["slack"].config)  # type: ignore[assignment]


def params() -> dict:
    """Arguments from the query string, a form body or a JSON body (slack_sdk uses all three)."""
    out: dict = dict(request.args.items())
    if request.form:
        out.update(request.form.items())
    data = request.get_json(silent=True) if request.data else None
    if isinstance(data, dict):
        out.update(data)
    return out


def resolve_user(value) -> str:
    if value in user_specs:
        return value
    for uid, spec in user_specs.items():
        if spec["name"] == value:
            return uid
    raise SlackError("user_not_found")


def resolve_channel(value, create: bool = False) -> dict:
    if not isinstance(value, str) or not value.strip():
        raise SlackError("channel_not_found")
    value = value.strip()
    ch = store.channel(value)
    if ch:
        return ch
    if value in user_specs:  # posting to a user id opens the app's DM with that user
        return store.dm_channel(value)
    name = value[1:] if value.startswith("#") else value
    ch = store.channel_by_name(name)
    if ch:
        return ch
    if create and not (CHANNEL_ID_RE.match(value)) and CHANNEL_NAME_RE.match(name):
        return store.create_channel(name)
    raise SlackError("channel_not_found")


def require_scope(scope: str) -> None:
    """The token must carry `scope`, else Slack's ``missing_scope`` naming what was ``needed`` and ``provided``."""
    scopes = cfg["scopes"]
    if scope not in scopes:
        raise SlackError("missing_scope", extra={"needed": scope, "provided": ",".join(scopes)})


def conversation(value) -> dict:
    """A conversation named by its ID, as conversations.* take it ("Conversation ID to fetch history for"): a name
    is ``channel_not_found``, like Slack."""
    ch = store.channel(value) if isinstance(value, str) else None
    if ch is None:
        raise SlackError("channel_not_found")
    return ch


def history_scope(ch: dict) -> str:
    """conversations.history/replies: the `*:history` scope of the conversation's type."""
    if ch.get("is_im"):
        return "im:history"
    if ch.get("is_mpim"):
        return "mpim:history"
    return "groups:history" if ch.get("is_private") else "channels:history"


def shown(msgs: list[dict], p: dict) -> list[dict]:
    """Messages as conversations.history/replies return them: without ``include_all_metadata=true`` a message's
    metadata is its ``event_type`` only (Slack: "If you do not pass include_all_metadata=true, you will receive
    the event_type field only")."""
    if truthy(p.get("include_all_metadata", False)):
        return msgs
    return [{**m, "metadata": {"event_type": m["metadata"]["event_type"]}} if "metadata" in m else m for m in msgs]


def live_record(cid: str, ts) -> dict:
    rec = store.record(cid, str(ts)) if ts else None
    if rec is None or rec.get("deleted"):
        raise SlackError("message_not_found")
    return rec


def thread_root(cid: str, ts: str) -> dict:
    rec = store.record(cid, str(ts))
    if rec is None or rec.get("deleted"):
        raise SlackError("thread_not_found")
    parent_ts = rec["message"].get("thread_ts") or rec["message"]["ts"]
    root = store.record(cid, parent_ts)
    if root is None:
        raise SlackError("thread_not_found")
    return root


def bot_message(text, blocks, attachments, ts: str, extra: dict | None = None) -> dict:
    msg = {
        "user": BOT_USER_ID,
        "type": "message",
        "ts": ts,
        "bot_id": BOT_ID,
        "app_id": APP_ID,
        "text": text if isinstance(text, str) else "",
        "team": TEAM_ID,
        "bot_profile": {"id": BOT_ID, "app_id": APP_ID, "name": BOT_NAME, "deleted": False, "team_id": TEAM_ID},
    }
    if blocks is not None:
        msg["blocks"] = blocks
    if attachments is not None:
        msg["attachments"] = attachments
    msg.update(extra or {})
    return msg


def add_message(ch: dict, msg: dict, via: str, thread_ts=None, broadcast: bool = False) -> dict:
    cid = ch["id"]
    if thread_ts:
        root = thread_root(cid, thread_ts)
        parent = root["message"]
        msg["thread_ts"] = parent["ts"]
        msg["parent_user_id"] = parent.get("user", BOT_USER_ID)
        if broadcast:
            msg["subtype"] = "thread_broadcast"
        parent["thread_ts"] = parent["ts"]
        parent["reply_count"] = parent.get("reply_count", 0) + 1
        users = parent.get("reply_users") or []
        if msg.get("user") and msg["user"] not in users:
            users.append(msg["user"])
        parent["reply_users"] = users
        parent["reply_users_count"] = len(users)
        parent["latest_reply"] = msg["ts"]
    rec = {"message": msg, "updates": [], "deleted": False, "via": via, "broadcast": broadcast}
    store.records(cid)[msg["ts"]] = rec
    return rec


def update_message(rec: dict, text, blocks, attachments, via: str) -> dict:
    msg = rec["message"]
    rec["updates"].append(
        {
            "at": time.time(),
            "via": via,
            "previous": {k: copy.deepcopy(msg[k]) for k in ("text", "blocks", "attachments", "edited") if k in msg},
        }
    )
    if text is not None:
        msg["text"] = text
    if blocks is not None:  # an empty list removes the blocks, omitting them keeps them (like Slack)
        if blocks:
            msg["blocks"] = blocks
        else:
            msg.pop("blocks", None)
    if attachments is not None:
        msg["attachments"] = attachments
    msg["edited"] = {"user": BOT_USER_ID, "ts": store.new_ts()}
    return msg


def visible(cid: str) -> list[dict]:
    return [r for r in store.records(cid).values() if not r.get("deleted")]


def page(items: list, p: dict, key: str) -> dict:
    try:
        limit = int(p.get("limit") or PAGE_DEFAULT)
        start = int(p.get("cursor") or 0)
    except ValueError:
        raise SlackError("invalid_cursor") from None
    limit = max(1, min(limit, PAGE_MAX))
    chunk = items[start : start + limit]
    more = start + limit < len(items)
    return {key: chunk, "has_more": more, "response_metadata": {"next_cursor": str(start + limit) if more else ""}}


def _bound(p: dict, name: str) -> float | None:
    """`oldest`/`latest` as a number; not one is ``invalid_ts_oldest``/``invalid_ts_latest``, like Slack."""
    value = p.get(name)
    if value in (None, ""):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        raise SlackError(f"invalid_ts_{name}") from None


def time_filter(msgs: list[dict], p: dict) -> list[dict]:
    inclusive = truthy(p.get("inclusive", False))
    oldest, latest = _bound(p, "oldest"), _bound(p, "latest")

    def ok(m):
        t = float(m["ts"])
        if oldest is not None and (t < oldest or (t == oldest and not inclusive)):
            return False
        if latest is not None and (t > latest or (t == latest and not inclusive)):
            return False
        return True

    return [m for m in msgs if ok(m)]


def new_response_url(context: dict) -> str:
    n = store.next_seq("response")
    rid = f"{n:04d}-{secrets.token_hex(6)}"
    url = f"{cfg['base_url']}/response/{rid}"
    store.state["responses"][rid] = {"id": rid, "url": url, "created": time.time(), "context": context, "posts": []}
    return url


def apply_response(rec: dict, body: dict, via: str) -> dict:
    """Record a post to a response_url and apply it like Slack: replace/delete the original message,
    post in the channel (response_type in_channel) or show it to the user only (ephemeral)."""
    ctx = rec.get("context") or {}
    post = {"at": time.time(), "via": via, "body": body, "effect": "recorded"}
    cid, user = ctx.get("channel_id"), ctx.get("user_id")
    ch = store.channel(cid) if cid else None
    orig = store.record(cid, ctx["message_ts"]) if ch and ctx.get("message_ts") else None
    text = body.get("text") if isinstance(body.get("text"), str) else None
    blocks = normalize_blocks(body.get("blocks")) if body.get("blocks") is not None else None
    attachments = body.get("attachments")
    has_content = bool(text or blocks or attachments)
    if not has_content and not truthy(body.get("delete_original")):
        pass  # e.g. a JSON acknowledgement without a message: nothing to show
    elif truthy(body.get("delete_original")) and orig and not orig.get("deleted"):
        orig["deleted"] = True
        post["effect"] = "deleted_original"
    elif truthy(body.get("replace_original")) and orig and not orig.get("deleted"):
        update_message(
            orig, text if text is not None else "", blocks if blocks is not None else [], attachments, "response_url"
        )
        post["effect"] = "replaced_original"
    elif ch and body.get("response_type") == "in_channel":
        metadata, _ = message_metadata(body.get("metadata"))  # a response URL takes `metadata` (slack_sdk #1362)
        msg = bot_message(text, blocks, attachments, store.new_ts(), {"metadata": metadata} if metadata else None)
        thread_ts = body.get("thread_ts")
        add_message(ch, msg, "response_url", thread_ts=thread_ts)
        post["effect"] = "posted_in_channel"
        post["ts"] = msg["ts"]
    elif ch and user and has_content:
        store.state["ephemeral"].append(
            {
                "channel": cid,
                "user": user,
                "ts": store.new_ts(),
                "text": text or "",
                "blocks": blocks,
                "thread_ts": body.get("thread_ts"),
                "via": via,
            }
        )
        post["effect"] = "ephemeral"
    rec["posts"].append(post)
    return post


def user_or_error(value) -> tuple[str, dict]:
    try:
        uid = resolve_user(value)
    except SlackError:
        raise SandboxError(404, f"unknown user {value!r} (known: {sorted(user_specs)})") from None
    return uid, user_specs[uid]
