"""Web API chat.* methods (called with the store's lock held; each returns what follows ok: true)."""

from __future__ import annotations

from ..messages import SlackError, json_field, message_metadata, normalize_blocks, require, truthy
from ..store import BOT_USER_ID
from .web import (
    add_message,
    bot_message,
    cfg,
    live_record,
    resolve_channel,
    resolve_user,
    store,
    thread_root,
    update_message,
)


def m_post_message(p):
    require(p, "channel")
    text, blocks = p.get("text"), normalize_blocks(p.get("blocks"))
    attachments = json_field(p["attachments"], "attachments") if p.get("attachments") is not None else None
    if not text and not blocks and not attachments:
        raise SlackError("no_text")
    ch = resolve_channel(p["channel"], create=True)
    extra = {}
    metadata, warning = message_metadata(p.get("metadata"))
    if metadata:
        extra["metadata"] = metadata
    for k in ("username", "icon_emoji", "icon_url"):
        if p.get(k):
            extra[k] = p[k]
    msg = bot_message(text, blocks, attachments, store.new_ts(), extra)
    add_message(
        ch, msg, "chat.postMessage", thread_ts=p.get("thread_ts"), broadcast=truthy(p.get("reply_broadcast", False))
    )
    out = {"channel": ch["id"], "ts": msg["ts"], "message": msg}
    if warning:  # Slack's warnings: a top-level `warning` and response_metadata.warnings
        out.update(warning=warning, response_metadata={"warnings": [warning]})
    return out


def m_update(p):
    require(p, "channel", "ts")
    ch = resolve_channel(p["channel"])
    rec = live_record(ch["id"], p["ts"])
    if rec["message"].get("user") != BOT_USER_ID:
        raise SlackError("cant_update_message")
    text, blocks = p.get("text"), normalize_blocks(p.get("blocks"))
    attachments = json_field(p["attachments"], "attachments") if p.get("attachments") is not None else None
    if text is None and blocks is None and attachments is None:
        raise SlackError("no_text")
    msg = update_message(rec, text, blocks, attachments, "chat.update")
    return {"channel": ch["id"], "ts": msg["ts"], "text": msg.get("text", ""), "message": msg}


def m_delete(p):
    require(p, "channel", "ts")
    ch = resolve_channel(p["channel"])
    rec = live_record(ch["id"], p["ts"])
    if rec["message"].get("user") != BOT_USER_ID:
        raise SlackError("cant_delete_message")
    rec["deleted"] = True
    return {"channel": ch["id"], "ts": rec["message"]["ts"]}


def m_post_ephemeral(p):
    require(p, "channel", "user")
    text, blocks = p.get("text"), normalize_blocks(p.get("blocks"))
    if not text and not blocks and not p.get("attachments"):
        raise SlackError("no_text")
    ch = resolve_channel(p["channel"])
    uid = resolve_user(p["user"])
    if p.get("thread_ts"):
        thread_root(ch["id"], p["thread_ts"])
    ts = store.new_ts()
    store.state["ephemeral"].append(
        {
            "channel": ch["id"],
            "user": uid,
            "ts": ts,
            "text": text or "",
            "blocks": blocks,
            "thread_ts": p.get("thread_ts"),
            "via": "chat.postEphemeral",
        }
    )
    return {"message_ts": ts}


def m_get_permalink(p):
    require(p, "channel", "message_ts")
    ch = resolve_channel(p["channel"])
    rec = live_record(ch["id"], p["message_ts"])
    ts = rec["message"]["ts"]
    link = f"{cfg['base_url']}/archives/{ch['id']}/p{ts.replace('.', '')}"
    if rec["message"].get("thread_ts") and rec["message"]["thread_ts"] != ts:
        link += f"?thread_ts={rec['message']['thread_ts']}&cid={ch['id']}"
    return {"channel": ch["id"], "permalink": link}
