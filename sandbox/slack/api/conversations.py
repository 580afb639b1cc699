"""Web API conversations.*, users.* and reactions.* methods (called with the store's lock held)."""

from __future__ import annotations

from ..messages import SlackError, require
from ..store import BOT_USER_ID, user_object
from .web import (
    conversation,
    history_scope,
    live_record,
    page,
    require_scope,
    resolve_channel,
    shown,
    store,
    thread_root,
    time_filter,
    user_specs,
    visible,
)


def m_replies(p):
    require(p, "channel", "ts")
    ch = conversation(p["channel"])
    require_scope(history_scope(ch))
    root = thread_root(ch["id"], p["ts"])
    root_ts = root["message"]["ts"]
    thread = [
        r["message"]
        for r in visible(ch["id"])
        if r["message"]["ts"] == root_ts or r["message"].get("thread_ts") == root_ts
    ]
    thread = time_filter(thread, p) if (p.get("oldest") or p.get("latest")) else thread
    return page(shown(thread, p), p, "messages")


def m_history(p):
    require(p, "channel")
    ch = conversation(p["channel"])
    require_scope(history_scope(ch))
    msgs = [
        r["message"]
        for r in visible(ch["id"])
        if not r["message"].get("thread_ts") or r["message"]["thread_ts"] == r["message"]["ts"] or r.get("broadcast")
    ]
    msgs = time_filter(msgs, p)
    msgs.reverse()  # newest first, like Slack
    return {**page(shown(msgs, p), p, "messages"), "pin_count": 0}


def m_conv_info(p):
    require(p, "channel")
    return {"channel": resolve_channel(p["channel"])}


def m_conv_list(p):
    return page([c for c in store.state["channels"].values() if not c.get("is_im")], p, "channels")


def m_users_info(p):
    require(p, "user")
    if p["user"] not in user_specs:
        raise SlackError("user_not_found")
    return {"user": user_object(p["user"], user_specs[p["user"]])}


def m_users_list(p):
    return page([user_object(u, s) for u, s in user_specs.items()], p, "members")


def m_reactions_add(p):
    require(p, "channel", "timestamp", "name")
    ch = resolve_channel(p["channel"])
    msg = live_record(ch["id"], p["timestamp"])["message"]
    name = str(p["name"]).strip(":")
    reactions = msg.setdefault("reactions", [])
    for r in reactions:
        if r["name"] == name:
            if BOT_USER_ID in r["users"]:
                raise SlackError("already_reacted")
            r["users"].append(BOT_USER_ID)
            r["count"] = len(r["users"])
            break
    else:
        reactions.append({"name": name, "users": [BOT_USER_ID], "count": 1})
    return {}


def m_reactions_remove(p):
    require(p, "name")
    ch = resolve_channel(p.get("channel"))
    msg = live_record(ch["id"], p.get("timestamp"))["message"]
    name = str(p["name"]).strip(":")
    for r in msg.get("reactions", []):
        if r["name"] == name and BOT_USER_ID in r["users"]:
            r["users"].remove(BOT_USER_ID)
            r["count"] = len(r["users"])
            if not r["users"]:
                msg["reactions"].remove(r)
            if not msg["reactions"]:
                del msg["reactions"]
            return {}
    raise SlackError("no_reaction")
