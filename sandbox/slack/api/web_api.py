"""`/api/<method>`: Slack's Web API dispatch, token check and error shape."""

from __future__ import annotations

from flask import Blueprint, jsonify, request

from ..messages import SlackError
from ..store import BOT_ID, BOT_NAME, BOT_USER_ID, TEAM_DOMAIN, TEAM_ID, TEAM_NAME
from .chat import m_delete, m_get_permalink, m_post_ephemeral, m_post_message, m_update
from .conversations import (
    m_conv_info,
    m_conv_list,
    m_history,
    m_reactions_add,
    m_reactions_remove,
    m_replies,
    m_users_info,
    m_users_list,
)
from .web import cfg, params, require_scope, slack, store

bp = Blueprint("web_api", __name__)


def m_api_test(p):
    return {"args": {k: v for k, v in p.items() if k != "token"}}


def m_auth_test(p):
    return {
        "url": f"https://{TEAM_DOMAIN}.slack.com/",
        "team": TEAM_NAME,
        "user": BOT_NAME,
        "team_id": TEAM_ID,
        "user_id": BOT_USER_ID,
        "bot_id": BOT_ID,
        "is_enterprise_install": False,
    }


# method -> (view, needs a token, the bot scope it needs; conversations.history/replies check theirs by the
# conversation's type). Slack's method pages list them under "Scopes", e.g. chat.postMessage: `chat:write`.
METHODS = {
    "api.test": (m_api_test, False, ""),
    "auth.test": (m_auth_test, True, ""),
    "chat.postMessage": (m_post_message, True, "chat:write"),
    "chat.update": (m_update, True, "chat:write"),
    "chat.delete": (m_delete, True, "chat:write"),
    "chat.postEphemeral": (m_post_ephemeral, True, "chat:write"),
    "chat.getPermalink": (m_get_permalink, True, ""),
    "conversations.replies": (m_replies, True, ""),
    "conversations.history": (m_history, True, ""),
    "conversations.info": (m_conv_info, True, "channels:read"),
    "conversations.list": (m_conv_list, True, "channels:read"),
    "users.info": (m_users_info, True, "users:read"),
    "users.list": (m_users_list, True, "users:read"),
    "reactions.add": (m_reactions_add, True, "reactions:write"),
    "reactions.remove": (m_reactions_remove, True, "reactions:write"),
}


@bp.route("/api/<method>", methods=["GET", "POST"])
def web_api(method: str):
    p = params()
    auth = request.headers.get("Authorization", "")
    given = auth[7:].strip() if auth.lower().startswith("bearer ") else p.get("token")
    p.pop("token", None)
    with store.lock:
        slack.requests.count(method)
        try:
            if method not in METHODS:
                raise SlackError("unknown_method")
            fn, needs_auth, scope = METHODS[method]
            if needs_auth and not given:
                raise SlackError("not_authed")
            if needs_auth and given != cfg["token"]:
                raise SlackError("invalid_auth")
            if scope:
                require_scope(scope)
            out = fn(p)
        except SlackError as e:
            body = {"ok": False, "error": e.error, **e.extra}
            if e.error == "unknown_method":
                body["req_method"] = method
            if e.detail:
                body["response_metadata"] = {"messages": [f"[ERROR] {e.detail}"]}
            return jsonify(body)
        finally:
            store.save()
    return jsonify({"ok": True, **out})
