"""Flask application and CLI of the sandbox Slack (see package docstring)."""

from __future__ import annotations

import argparse
import copy
import hashlib
import hmac
import json
import os
import re
import secrets
import signal
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

from flask import Flask, Response, jsonify, request

from .store import (APP_ID, BOT_ID, BOT_NAME, BOT_USER_ID, RESPONSE_URL_MAX_USES, TEAM_DOMAIN, TEAM_ID, TEAM_NAME,
                    VERIFICATION_TOKEN, Store, load_users, user_object)

CHANNEL_ID_RE = re.compile(r"^[CDG][A-Z0-9]{3,}$")
CHANNEL_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,79}$")
PAGE_DEFAULT = 100
PAGE_MAX = 1000
USER_AGENT = "Slackbot 1.0 (+https://api.slack.com/robots)"


class SlackError(Exception):
    """A Web API error: HTTP 200 ``{"ok": false, "error": code}`` like Slack."""

    def __init__(self, error: str, detail: str | None = None):
        super().__init__(error)
        self.error, self.detail = error, detail


class SandboxError(Exception):
    """An error of a /sandbox/ endpoint: ``{"error": message}`` with an HTTP status."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


# ---- helpers -------------------------------------------------------------------------------------
def _params() -> dict:
    """Arguments from the query string, a form body or a JSON body (slack_sdk uses all three)."""
    out: dict = dict(request.args.items())
    if request.form:
        out.update(request.form.items())
    data = request.get_json(silent=True) if request.data else None
    if isinstance(data, dict):
        out.update(data)
    return out


def _truthy(v) -> bool:
    if isinstance(v, str):
        return v.strip().lower() in ("1", "true", "yes", "on")
    return bool(v)


def _require(p: dict, *names: str) -> None:
    for n in names:
        if p.get(n) in (None, ""):
            raise SlackError("invalid_arguments", f"missing required field: {n}")


def _json_field(value, what: str):
    """blocks/attachments/metadata arrive as JSON text in form bodies and as JSON in JSON bodies."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            raise SlackError(f"invalid_{what}_format", f"{what} is not valid JSON") from None
    return value


def _rand_id(n: int = 5) -> str:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    return "".join(secrets.choice(alphabet) for _ in range(n))


def normalize_blocks(value) -> list | None:
    """Validate blocks and give every block a ``block_id`` and every interactive element an ``action_id``
    (Slack generates them when the app does not)."""
    if value is None:
        return None
    blocks = _json_field(value, "blocks")
    if not isinstance(blocks, list):
        raise SlackError("invalid_blocks_format", "blocks must be an array")
    blocks = copy.deepcopy(blocks)
    for i, b in enumerate(blocks):
        if not isinstance(b, dict) or not isinstance(b.get("type"), str):
            raise SlackError("invalid_blocks", f"block {i} must be an object with a `type`")
        b.setdefault("block_id", _rand_id())
        elements = list(b.get("elements") or []) if b["type"] == "actions" else []
        if b["type"] == "actions" and not elements:
            raise SlackError("invalid_blocks", f"actions block {i} needs `elements`")
        if isinstance(b.get("accessory"), dict):
            elements.append(b["accessory"])
        if isinstance(b.get("element"), dict):
            elements.append(b["element"])
        for e in elements:
            if not isinstance(e, dict) or not isinstance(e.get("type"), str):
                raise SlackError("invalid_blocks", f"block {i}: elements must be objects with a `type`")
            if e["type"] in ("button", "static_select", "overflow", "users_select", "conversations_select",
                             "channels_select", "datepicker", "checkboxes", "radio_buttons", "multi_static_select",
                             "external_select", "plain_text_input", "timepicker"):
                e.setdefault("action_id", _rand_id(4))
    return blocks


def interactive_elements(blocks: list | None):
    """(block, element) for every interactive element of a message."""
    for b in blocks or []:
        if b.get("type") == "actions":
            for e in b.get("elements") or []:
                yield b, e
        if isinstance(b.get("accessory"), dict):
            yield b, b["accessory"]
        if isinstance(b.get("element"), dict):
            yield b, b["element"]


def slack_signature(secret: str, timestamp: str, body: bytes) -> str:
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def post_signed(url: str, body: bytes, secret: str, timeout: float = 30.0) -> tuple[int, str, str]:
    """POST a form body signed like Slack; -> (status, body text, content type)."""
    ts = str(int(time.time()))
    req = urllib.request.Request(url, data=body, method="POST", headers={
        "Content-Type": "application/x-www-form-urlencoded",
        "User-Agent": USER_AGENT,
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": slack_signature(secret, ts, body),
    })
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read().decode("utf-8", "replace"), resp.headers.get("Content-Type", "")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode("utf-8", "replace"), e.headers.get("Content-Type", "") if e.headers else ""
    except (urllib.error.URLError, OSError) as e:
        raise SandboxError(502, f"could not reach {url}: {getattr(e, 'reason', e)}") from None


# ---- the app -------------------------------------------------------------------------------------
def create_app(data_dir, token: str = "xoxb-sandbox", base_url: str = "http://127.0.0.1:9100",
               signing_secret: str | None = None, interactions_url: str | None = None,
               commands_url: str | None = None, users: str | dict | None = None) -> Flask:
    """``users``: a seed file path, an already parsed ``{id: name}`` dict, or None (alice, bob, carol)."""
    store = Store(data_dir)
    user_specs = load_users(users)
    base_url = base_url.rstrip("/")
    cfg = {"token": token, "signing_secret": signing_secret, "interactions_url": interactions_url,
           "commands_url": commands_url, "base_url": base_url}

    app = Flask("sandbox.slack")
    app.config["SANDBOX_STORE"] = store
    app.config["SANDBOX_SLACK"] = cfg
    app.extensions["slack"] = store

    # ---- channel / user resolution (caller holds the lock)
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
        msg = {"user": BOT_USER_ID, "type": "message", "ts": ts, "bot_id": BOT_ID, "app_id": APP_ID,
               "text": text if isinstance(text, str) else "", "team": TEAM_ID,
               "bot_profile": {"id": BOT_ID, "app_id": APP_ID, "name": BOT_NAME, "deleted": False,
                               "team_id": TEAM_ID}}
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
        rec["updates"].append({"at": time.time(), "via": via, "previous": {
            k: copy.deepcopy(msg[k]) for k in ("text", "blocks", "attachments", "edited") if k in msg}})
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
        chunk = items[start:start + limit]
        more = start + limit < len(items)
        return {key: chunk, "has_more": more,
                "response_metadata": {"next_cursor": str(start + limit) if more else ""}}

    def time_filter(msgs: list[dict], p: dict) -> list[dict]:
        inclusive = _truthy(p.get("inclusive", False))
        oldest, latest = p.get("oldest"), p.get("latest")

        def ok(m):
            t = float(m["ts"])
            if oldest not in (None, "") and (t < float(oldest) or (t == float(oldest) and not inclusive)):
                return False
            if latest not in (None, "") and (t > float(latest) or (t == float(latest) and not inclusive)):
                return False
            return True

        return [m for m in msgs if ok(m)]

    def new_response_url(context: dict) -> str:
        n = store.next_seq("response")
        rid = f"{n:04d}-{secrets.token_hex(6)}"
        url = f"{base_url}/response/{rid}"
        store.state["responses"][rid] = {"id": rid, "url": url, "created": time.time(), "context": context,
                                         "posts": []}
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
        if not has_content and not _truthy(body.get("delete_original")):
            pass  # e.g. a JSON acknowledgement without a message: nothing to show
        elif _truthy(body.get("delete_original")) and orig and not orig.get("deleted"):
            orig["deleted"] = True
            post["effect"] = "deleted_original"
        elif _truthy(body.get("replace_original")) and orig and not orig.get("deleted"):
            update_message(orig, text if text is not None else "", blocks if blocks is not None else [],
                           attachments, "response_url")
            post["effect"] = "replaced_original"
        elif ch and body.get("response_type") == "in_channel":
            msg = bot_message(text, blocks, attachments, store.new_ts())
            thread_ts = body.get("thread_ts")
            add_message(ch, msg, "response_url", thread_ts=thread_ts)
            post["effect"] = "posted_in_channel"
            post["ts"] = msg["ts"]
        elif ch and user and has_content:
            store.state["ephemeral"].append({
                "channel": cid, "user": user, "ts": store.new_ts(), "text": text or "", "blocks": blocks,
                "thread_ts": body.get("thread_ts"), "via": via})
            post["effect"] = "ephemeral"
        rec["posts"].append(post)
        return post

    # ---- Web API methods (called with the lock held; return the dict after "ok": true)
    def m_api_test(p):
        return {"args": {k: v for k, v in p.items() if k != "token"}}

    def m_auth_test(p):
        return {"url": f"https://{TEAM_DOMAIN}.slack.com/", "team": TEAM_NAME, "user": BOT_NAME,
                "team_id": TEAM_ID, "user_id": BOT_USER_ID, "bot_id": BOT_ID, "is_enterprise_install": False}

    def m_post_message(p):
        _require(p, "channel")
        text, blocks = p.get("text"), normalize_blocks(p.get("blocks"))
        attachments = _json_field(p["attachments"], "attachments") if p.get("attachments") is not None else None
        if not text and not blocks and not attachments:
            raise SlackError("no_text")
        ch = resolve_channel(p["channel"], create=True)
        extra = {}
        if p.get("metadata") is not None:
            extra["metadata"] = _json_field(p["metadata"], "metadata")
        for k in ("username", "icon_emoji", "icon_url"):
            if p.get(k):
                extra[k] = p[k]
        msg = bot_message(text, blocks, attachments, store.new_ts(), extra)
        add_message(ch, msg, "chat.postMessage", thread_ts=p.get("thread_ts"),
                    broadcast=_truthy(p.get("reply_broadcast", False)))
        return {"channel": ch["id"], "ts": msg["ts"], "message": msg}

    def m_update(p):
        _require(p, "channel", "ts")
        ch = resolve_channel(p["channel"])
        rec = live_record(ch["id"], p["ts"])
        if rec["message"].get("user") != BOT_USER_ID:
            raise SlackError("cant_update_message")
        text, blocks = p.get("text"), normalize_blocks(p.get("blocks"))
        attachments = _json_field(p["attachments"], "attachments") if p.get("attachments") is not None else None
        if text is None and blocks is None and attachments is None:
            raise SlackError("no_text")
        msg = update_message(rec, text, blocks, attachments, "chat.update")
        return {"channel": ch["id"], "ts": msg["ts"], "text": msg.get("text", ""), "message": msg}

    def m_delete(p):
        _require(p, "channel", "ts")
        ch = resolve_channel(p["channel"])
        rec = live_record(ch["id"], p["ts"])
        if rec["message"].get("user") != BOT_USER_ID:
            raise SlackError("cant_delete_message")
        rec["deleted"] = True
        return {"channel": ch["id"], "ts": rec["message"]["ts"]}

    def m_post_ephemeral(p):
        _require(p, "channel", "user")
        text, blocks = p.get("text"), normalize_blocks(p.get("blocks"))
        if not text and not blocks and not p.get("attachments"):
            raise SlackError("no_text")
        ch = resolve_channel(p["channel"])
        uid = resolve_user(p["user"])
        if p.get("thread_ts"):
            thread_root(ch["id"], p["thread_ts"])
        ts = store.new_ts()
        store.state["ephemeral"].append({"channel": ch["id"], "user": uid, "ts": ts, "text": text or "",
                                         "blocks": blocks, "thread_ts": p.get("thread_ts"),
                                         "via": "chat.postEphemeral"})
        return {"message_ts": ts}

    def m_get_permalink(p):
        _require(p, "channel", "message_ts")
        ch = resolve_channel(p["channel"])
        rec = live_record(ch["id"], p["message_ts"])
        ts = rec["message"]["ts"]
        link = f"{base_url}/archives/{ch['id']}/p{ts.replace('.', '')}"
        if rec["message"].get("thread_ts") and rec["message"]["thread_ts"] != ts:
            link += f"?thread_ts={rec['message']['thread_ts']}&cid={ch['id']}"
        return {"channel": ch["id"], "permalink": link}

    def m_replies(p):
        _require(p, "channel", "ts")
        ch = resolve_channel(p["channel"])
        root = thread_root(ch["id"], p["ts"])
        root_ts = root["message"]["ts"]
        thread = [r["message"] for r in visible(ch["id"])
                  if r["message"]["ts"] == root_ts or r["message"].get("thread_ts") == root_ts]
        return page(time_filter(thread, p) if (p.get("oldest") or p.get("latest")) else thread, p, "messages")

    def m_history(p):
        _require(p, "channel")
        ch = resolve_channel(p["channel"])
        msgs = [r["message"] for r in visible(ch["id"])
                if not r["message"].get("thread_ts") or r["message"]["thread_ts"] == r["message"]["ts"]
                or r.get("broadcast")]
        msgs = time_filter(msgs, p)
        msgs.reverse()  # newest first, like Slack
        return {**page(msgs, p, "messages"), "pin_count": 0}

    def m_conv_info(p):
        _require(p, "channel")
        return {"channel": resolve_channel(p["channel"])}

    def m_conv_list(p):
        return page([c for c in store.state["channels"].values() if not c.get("is_im")], p, "channels")

    def m_users_info(p):
        _require(p, "user")
        if p["user"] not in user_specs:
            raise SlackError("user_not_found")
        return {"user": user_object(p["user"], user_specs[p["user"]])}

    def m_users_list(p):
        return page([user_object(u, s) for u, s in user_specs.items()], p, "members")

    def m_reactions_add(p):
        _require(p, "channel", "timestamp", "name")
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
        _require(p, "name")
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

    methods = {
        "api.test": (m_api_test, False),
        "auth.test": (m_auth_test, True),
        "chat.postMessage": (m_post_message, True),
        "chat.update": (m_update, True),
        "chat.delete": (m_delete, True),
        "chat.postEphemeral": (m_post_ephemeral, True),
        "chat.getPermalink": (m_get_permalink, True),
        "conversations.replies": (m_replies, True),
        "conversations.history": (m_history, True),
        "conversations.info": (m_conv_info, True),
        "conversations.list": (m_conv_list, True),
        "users.info": (m_users_info, True),
        "users.list": (m_users_list, True),
        "reactions.add": (m_reactions_add, True),
        "reactions.remove": (m_reactions_remove, True),
    }

    @app.route("/api/<method>", methods=["GET", "POST"])
    def web_api(method: str):
        p = _params()
        auth = request.headers.get("Authorization", "")
        given = auth[7:].strip() if auth.lower().startswith("bearer ") else p.get("token")
        p.pop("token", None)
        with store.lock:
            store.count(method)
            try:
                if method not in methods:
                    raise SlackError("unknown_method")
                fn, needs_auth = methods[method]
                if needs_auth and not given:
                    raise SlackError("not_authed")
                if needs_auth and given != cfg["token"]:
                    raise SlackError("invalid_auth")
                out = fn(p)
            except SlackError as e:
                body = {"ok": False, "error": e.error}
                if e.error == "unknown_method":
                    body["req_method"] = method
                if e.detail:
                    body["response_metadata"] = {"messages": [f"[ERROR] {e.detail}"]}
                return jsonify(body)
            finally:
                store.save()
        return jsonify({"ok": True, **out})

    # ---- response_url ------------------------------------------------------------------------------
    @app.post("/response/<rid>")
    def response_url(rid: str):
        with store.lock:
            store.count("response_url")
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
            if not body.get("text") and not body.get("blocks") and not body.get("attachments") \
                    and not _truthy(body.get("delete_original")):
                return Response("no_text", status=400, mimetype="text/plain")
            try:
                apply_response(rec, body, "response_url")
            except SlackError as e:
                return Response(e.error, status=400, mimetype="text/plain")
            store.save()
        return Response("ok", status=200, mimetype="text/html")

    @app.get("/archives/<cid>/<pts>")
    def permalink(cid: str, pts: str):
        ts = pts[1:-6] + "." + pts[-6:] if pts.startswith("p") and len(pts) > 7 else pts
        with store.lock:
            rec = store.record(cid, ts)
            if rec is None:
                return jsonify({"error": "message not found"}), 404
            return jsonify({"channel": cid, "message": rec["message"], "deleted": rec.get("deleted", False)})

    # ---- simulated people ----------------------------------------------------------------------------
    def _sandbox_body() -> dict:
        data = request.get_json(silent=True)
        if not isinstance(data, dict):
            raise SandboxError(400, "send a JSON object")
        return data

    def _user_or_error(value) -> tuple[str, dict]:
        try:
            uid = resolve_user(value)
        except SlackError:
            raise SandboxError(404, f"unknown user {value!r} (known: {sorted(user_specs)})") from None
        return uid, user_specs[uid]

    def _secret() -> str:
        if not cfg["signing_secret"]:
            raise SandboxError(400, "the sandbox was started without --signing-secret")
        return cfg["signing_secret"]

    @app.post("/sandbox/click")
    def click():
        data = _sandbox_body()
        for k in ("user", "channel", "ts", "action_id"):
            if not data.get(k):
                raise SandboxError(400, f"missing {k!r}")
        url = data.get("url") or cfg["interactions_url"]
        if not url:
            raise SandboxError(400, "no interactions URL: start with --interactions-url or pass `url`")
        secret = _secret()
        with store.lock:
            uid, spec = _user_or_error(data["user"])
            try:
                ch = resolve_channel(data["channel"])
                rec = live_record(ch["id"], data["ts"])
            except SlackError as e:
                raise SandboxError(404, f"{e.error}: channel {data['channel']!r} ts {data['ts']!r}") from None
            msg = rec["message"]
            found = [(b, e) for b, e in interactive_elements(msg.get("blocks"))
                     if e.get("action_id") == data["action_id"]
                     and (not data.get("block_id") or b.get("block_id") == data["block_id"])]
            if not found:
                have = [e.get("action_id") for _, e in interactive_elements(msg.get("blocks"))]
                raise SandboxError(404, f"no element with action_id {data['action_id']!r} in the message "
                                        f"(has {have})")
            block, element = found[0]
            action = {"action_id": element["action_id"], "block_id": block["block_id"], "type": element["type"],
                      "action_ts": f"{time.time():.6f}"}
            if element["type"] == "button":
                if "text" in element:
                    action["text"] = element["text"]
                if "value" in element:
                    action["value"] = element["value"]
                if "style" in element:
                    action["style"] = element["style"]
            elif element["type"] in ("static_select", "overflow", "radio_buttons"):
                options = element.get("options") or [o for g in element.get("option_groups", [])
                                                     for o in g.get("options", [])]
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
            resp_url = new_response_url({"kind": "block_actions", "channel_id": ch["id"], "user_id": uid,
                                         "message_ts": msg["ts"], "trigger_id": trigger_id})
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
            store.count("sandbox.click")
            store.save()
        body = urllib.parse.urlencode({"payload": json.dumps(payload)}).encode()
        status, text, _ = post_signed(url, body, secret)  # without the lock: the receiver may call back
        return jsonify({"status": status, "body": text, "trigger_id": trigger_id, "response_url": resp_url,
                        "payload": payload})

    @app.post("/sandbox/command")
    def command():
        data = _sandbox_body()
        for k in ("user", "command"):
            if not data.get(k):
                raise SandboxError(400, f"missing {k!r}")
        url = data.get("url") or cfg["commands_url"]
        if not url:
            raise SandboxError(400, "no command URL: pass `url` (or start with --commands-url)")
        secret = _secret()
        command_name = data["command"] if data["command"].startswith("/") else "/" + data["command"]
        with store.lock:
            uid, spec = _user_or_error(data["user"])
            try:
                ch = resolve_channel(data.get("channel") or "general", create=True)
            except SlackError as e:
                raise SandboxError(404, f"{e.error}: channel {data.get('channel')!r}") from None
            trigger_id = store.new_trigger_id()
            resp_url = new_response_url({"kind": "command", "channel_id": ch["id"], "user_id": uid,
                                         "command": command_name, "text": data.get("text", ""),
                                         "trigger_id": trigger_id})
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
            store.count("sandbox.command")
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
        return jsonify({"status": status, "body": text, "trigger_id": trigger_id, "response_url": resp_url,
                        "form": form})

    # ---- introspection ---------------------------------------------------------------------------------
    @app.get("/sandbox/response-url")
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
                ctx["user_id"] = _user_or_error(request.args["user"])[0]
            if request.args.get("message_ts"):
                ctx["message_ts"] = request.args["message_ts"]
            url = new_response_url(ctx)
            store.save()
        return jsonify({"url": url, "response_url": url})

    def sandbox_view(cid: str, rec: dict, replies: list[dict] | None = None) -> dict:
        ch = store.channel(cid) or {}
        out = {**copy.deepcopy(rec["message"]), "channel": cid, "channel_name": ch.get("name"),
               "updates": copy.deepcopy(rec["updates"]), "deleted": rec.get("deleted", False), "via": rec.get("via")}
        if replies is not None:
            out["replies"] = replies
        return out

    @app.get("/sandbox/messages")
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
                    replies = [sandbox_view(cid, x) for x in recs
                               if x["message"].get("thread_ts") == m["ts"] and x["message"]["ts"] != m["ts"]]
                    out.append(sandbox_view(cid, r, replies))
            eph = [e for e in store.state["ephemeral"] if e["channel"] in cids]
            return jsonify({"messages": out, "ephemeral": eph})

    @app.get("/sandbox/responses")
    def sandbox_responses():
        with store.lock:
            posts = [{"response_id": r["id"], "url": r["url"], "context": r["context"], **p}
                     for r in store.state["responses"].values() for p in r["posts"]]
            posts.sort(key=lambda x: x["at"])
            return jsonify({"responses": posts, "issued": list(store.state["responses"].values())})

    @app.get("/sandbox/requests")
    def sandbox_requests():
        with store.lock:
            return jsonify(dict(store.state["requests"]))

    @app.post("/sandbox/requests/reset")
    def sandbox_requests_reset():
        with store.lock:
            store.state["requests"] = {}
            store.save()
        return jsonify({})

    @app.get("/sandbox/channels")
    def sandbox_channels():
        with store.lock:
            return jsonify({"channels": list(store.state["channels"].values())})

    @app.get("/sandbox/users")
    def sandbox_users():
        return jsonify({"users": [user_object(u, s) for u, s in user_specs.items()]})

    @app.get("/sandbox/health")
    def sandbox_health():
        return jsonify({"ok": True})

    @app.errorhandler(SandboxError)
    def _sandbox_error(e: SandboxError):
        return jsonify({"error": e.message}), e.status

    return app


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m sandbox.slack", description="Local Slack Web API stand-in.")
    p.add_argument("--port", type=int, default=9100, help="port (0 = pick a free one)")
    p.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    p.add_argument("--data", required=True, help="state directory (created if missing)")
    p.add_argument("--token", default="xoxb-sandbox", help="the only accepted bot token")
    p.add_argument("--signing-secret", default=os.environ.get("SLACK_SIGNING_SECRET"),
                   help="signs /sandbox/click and /sandbox/command deliveries (default $SLACK_SIGNING_SECRET)")
    p.add_argument("--interactions-url", default=None, help="where /sandbox/click posts block_actions payloads")
    p.add_argument("--commands-url", default=None, help="default receiver of /sandbox/command")
    p.add_argument("--users", default=None, help="users seed (JSON or TOML): id -> name")
    p.add_argument("--base-url", default=None, help="public base URL (default http://HOST:PORT)")
    args = p.parse_args(argv)

    import logging

    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    holder: dict = {}

    def wsgi(environ, start_response):
        return holder["app"](environ, start_response)

    server = make_server(args.host, args.port, wsgi, threaded=True)
    base_url = (args.base_url or f"http://{args.host}:{server.server_port}").rstrip("/")
    try:
        app = create_app(args.data, args.token, base_url, args.signing_secret, args.interactions_url,
                         args.commands_url, args.users)
    except (OSError, ValueError) as e:
        server.server_close()
        p.error(str(e))
    holder["app"] = app

    def _stop(signum, frame):
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    print(f"sandbox slack listening on {base_url}", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()
        app.config["SANDBOX_STORE"].save()
        sys.stdout.flush()
