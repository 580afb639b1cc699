"""Slack's message vocabulary: errors, blocks and their interactive elements, signed deliveries."""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import re
import secrets
import time
import urllib.error
import urllib.request

CHANNEL_ID_RE = re.compile(r"^[CDG][A-Z0-9]{3,}$")
CHANNEL_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,79}$")
USER_AGENT = "Slackbot 1.0 (+https://api.slack.com/robots)"


class SlackError(Exception):
    """A Web API error: HTTP 200 ``{"ok": false, "error": code}`` like Slack (``extra``: more top-level fields, as
    ``missing_scope``'s ``needed`` and ``provided``)."""

    def __init__(self, error: str, detail: str | None = None, extra: dict | None = None):
        super().__init__(error)
        self.error, self.detail, self.extra = error, detail, extra or {}


class SandboxError(Exception):
    """An error of a /sandbox/ endpoint: ``{"error": message}`` with an HTTP status."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


def truthy(v) -> bool:
    if isinstance(v, str):
        return v.strip().lower() in ("1", "true", "yes", "on")
    return bool(v)


def require(p: dict, *names: str) -> None:
    for n in names:
        if p.get(n) in (None, ""):
            raise SlackError("invalid_arguments", f"missing required field: {n}")


def json_field(value, what: str):
    """blocks/attachments/metadata arrive as JSON text in form bodies and as JSON in JSON bodies."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            raise SlackError(f"invalid_{what}_format", f"{what} is not valid JSON") from None
    return value


# Slack: "Event types can contain letters, numbers, underscores, and hyphens, but not periods or other punctuation.
# Metadata with an invalid `event_type` returns an `invalid_metadata_schema` warning and is ignored."
EVENT_TYPE_RE = re.compile(r"^[A-Za-z0-9_-]+$")


def message_metadata(value) -> tuple[dict | None, str | None]:
    """``metadata`` of chat.postMessage or a response URL post -> (what is stored, a warning). Not JSON, or not an
    object: ``invalid_metadata_format``; no valid ``event_type`` or no ``event_payload`` object: stored nothing,
    warned ``invalid_metadata_schema`` (like Slack)."""
    if value is None or value == "":
        return None, None
    metadata = json_field(value, "metadata")
    if not isinstance(metadata, dict):
        raise SlackError("invalid_metadata_format", "metadata must be an object")
    kind, payload = metadata.get("event_type"), metadata.get("event_payload")
    if not isinstance(kind, str) or not EVENT_TYPE_RE.match(kind) or not isinstance(payload, dict):
        return None, "invalid_metadata_schema"
    return {"event_type": kind, "event_payload": copy.deepcopy(payload)}, None


def _rand_id(n: int = 5) -> str:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    return "".join(secrets.choice(alphabet) for _ in range(n))


def normalize_blocks(value) -> list | None:
    """Validate blocks and give every block a ``block_id`` and every interactive element an ``action_id``
    (Slack generates them when the app does not)."""
    if value is None:
        return None
    blocks = json_field(value, "blocks")
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
            if e["type"] in (
                "button",
                "static_select",
                "overflow",
                "users_select",
                "conversations_select",
                "channels_select",
                "datepicker",
                "checkboxes",
                "radio_buttons",
                "multi_static_select",
                "external_select",
                "plain_text_input",
                "timepicker",
            ):
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
    req = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "User-Agent": USER_AGENT,
            "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": slack_signature(secret, ts, body),
        },
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read().decode("utf-8", "replace"), resp.headers.get("Content-Type", "")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode("utf-8", "replace"), e.headers.get("Content-Type", "") if e.headers else ""
    except (urllib.error.URLError, OSError) as e:
        raise SandboxError(502, f"could not reach {url}: {getattr(e, 'reason', e)}") from None
