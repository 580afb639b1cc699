"""Simulated people: a button click or a slash command, delivered signed like Slack."""

from __future__ import annotations

import copy
import json
import time
import urllib.parse

from flask import Blueprint, jsonify, request

from ..messages import SandboxError, SlackError, interactive_elements, post_signed
from ..store import APP_ID, TEAM_DOMAIN, TEAM_ID, VERIFICATION_TOKEN
from .web import apply_response, cfg, live_record, new_response_url, resolve_channel, slack, store, user_or_error

bp = Blueprint("interactions", __name__)


def sandbox_body() -> dict:
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise SandboxError(400, "send a JSON object")
    return data


def signing_secret() -> str:
    if not cfg["signing_secret"]:
        raise SandboxError(400, "the sandbox was started without --signing-secret")
    return cfg["signing_secret"]


@bp.post("/sandbox/click")
def click():
    data = sandbox_body()
    for k in ("user", "channel", "ts", "action_id"):
        if not data.get(k):
            raise SandboxError(400, f"missing {k!r}")
    url = data.get("url") or cfg["interactions_url"]
    if not url:
        raise SandboxError(400, "no interactions URL: start with --interactions-url or pass `url`")
    secret = signing_secret()
    with store.lock:
        uid, spec = user_or_error(data["user"])
        try:
            ch = resolve_channel(data["channel"])
            rec = live_record(ch["id"], data["ts"])
        except SlackError as e:
            raise SandboxError(404, f"{e.error}: channel {data['channel']!r} ts {data['ts']!r}") from None
        msg = rec["message"]
        found = [
            (b, e)
            for b, e in interactive_elements(msg.get("blocks"))
            if e.get("action_id") == data["action_id"]
            and (not data.get("block_id") or b.get("block_id") == data["block_id"])
        ]
        if not found:
            have = [e.get("action_id") for _, e in interactive_elements(msg.get("blocks"))]
            raise SandboxError(404, f"no element with action_id {data['action_id']!r} in the message (has {have})")
        block, element = found[0]
        action = {
            "action_id": element["action_id"],
            "block_id": block["block_id"],
            "type": element["type"],
            "action_ts": f"{time.time():.6f}",
        }
        if element["type"] == "button":
            if "text" in element:
                action["text"] = element["text"]
            if "value" in element:
                action["value"] = element["value"]
            if "style" in element:
                action["style"] = element["style"]
        elif element["type"] in ("static_select", "overflow", "radio_buttons"):
            options = element.get("options") or [
                o for g in element.get("option_groups", []) for o in g.get("options", [])
            ]
            chosen = [o for o in options if o.get("value") == data.get("value")] or options[:1]
            if not chosen:
                raise SandboxError(400, "the element has no options")
            action["selected_option"] = chosen[0]
        elif "value" in data:
            action["value"] = data["value"]
        trigger_id = store.new_trigger_id()
        container = {"type": "message", "message_ts": msg["ts"], "channel_id": ch["id"], "is_ephemeral": False}
        if msg.get("thread_ts"):
            container["thread_ts"] = msg["thread_ts"]
        resp_url = new_response_url(
            {
                "kind": "block_actions",
                "channel_id": ch["id"],
                "user_id": uid,
                "message_ts": msg["ts"],
                "trigger_id": trigger_id,
            }
        )
        payload = {
            "type": "block_actions",
            "user": {"id": uid, "username": spec["name"], "name": spec["name"], "team_id": TEAM_ID},
            "api_app_id": APP_ID,
            "token": VERIFICATION_TOKEN,
            "container": container,
            "trigger_id": trigger_id,
            "team": {"id": TEAM_ID, "domain": TEAM_DOMAIN},
            "enterprise": None,
            "is_enterprise_install": False,
            "channel": {"id": ch["id"], "name": ch["name"]},
            "message": copy.deepcopy(msg),
            "state": {"values": {}},
            "response_url": resp_url,
            "actions": [action],
        }
        slack.requests.count("sandbox.click")
        store.save()
    body = urllib.parse.urlencode({"payload": json.dumps(payload)}).encode()
    status, text, _ = post_signed(url, body, secret)  # without the lock: the receiver may call back
    return jsonify(
        {"status": status, "body": text, "trigger_id": trigger_id, "response_url": resp_url, "payload": payload}
    )


@bp.post("/sandbox/command")
def command():
    data = sandbox_body()
    for k in ("user", "command"):
        if not data.get(k):
            raise SandboxError(400, f"missing {k!r}")
    url = data.get("url") or cfg["commands_url"]
    if not url:
        raise SandboxError(400, "no command URL: pass `url` (or start with --commands-url)")
    secret = signing_secret()
    command_name = data["command"] if data["command"].startswith("/") else "/" + data["command"]
    with store.lock:
        uid, spec = user_or_error(data["user"])
        try:
            ch = resolve_channel(data.get("channel") or "general", create=True)
        except SlackError as e:
            raise SandboxError(404, f"{e.error}: channel {data.get('channel')!r}") from None
        trigger_id = store.new_trigger_id()
        resp_url = new_response_url(
            {
                "kind": "command",
                "channel_id": ch["id"],
                "user_id": uid,
                "command": command_name,
                "text": data.get("text", ""),
                "trigger_id": trigger_id,
            }
        )
        rid = resp_url.rsplit("/", 1)[1]
        form = {
            "token": VERIFICATION_TOKEN,
            "team_id": TEAM_ID,
            "team_domain": TEAM_DOMAIN,
            "channel_id": ch["id"],
            "channel_name": "directmessage" if ch.get("is_im") else ch["name"],
            "user_id": uid,
            "user_name": spec["name"],
            "command": command_name,
            "text": data.get("text", ""),
            "api_app_id": APP_ID,
            "is_enterprise_install": "false",
            "response_url": resp_url,
            "trigger_id": trigger_id,
        }
        slack.requests.count("sandbox.command")
        store.save()
    status, text, ctype = post_signed(url, urllib.parse.urlencode(form).encode(), secret)
    if status == 200 and text.strip():  # Slack shows an immediate answer like a response_url post
        try:
            answer = json.loads(text) if "json" in ctype or text.lstrip().startswith("{") else None
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            answer = {"text": text}
        with store.lock:
            try:
                apply_response(store.state["responses"][rid], answer, "command_reply")
            except SlackError:
                pass
            store.save()
    return jsonify({"status": status, "body": text, "trigger_id": trigger_id, "response_url": resp_url, "form": form})
