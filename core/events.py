"""Verify a delivery on its raw bytes, then normalise it into one `Event`.

One function pair per source. Verification runs before any parsing and uses
`hmac.compare_digest`; a source whose secret is unset is refused, never accepted unsigned.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

REPLAY_WINDOW_SECONDS = 300  # MLflow and Slack sign a timestamp; older deliveries are replays


@dataclass(frozen=True)
class Event:
    """One delivery from any source: `github/issue_comment:created`, `mlflow/model_version:created`…"""

    source: str
    name: str
    action: str
    delivery_id: str
    data: Mapping[str, Any] = field(repr=False)

    @property
    def key(self) -> str:
        return f"{self.source}/{self.name}:{self.action}" if self.action else f"{self.source}/{self.name}"


class Refused(Exception):
    """The delivery is not accepted: `status` is the HTTP answer, `reason` says why."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status = status
        self.reason = reason


def _hmac_hex(secret: str, message: bytes) -> str:
    return hmac.digest(secret.encode(), message, "sha256").hex()  # one call into OpenSSL, no HMAC object


def _require(secret: str | None, source: str) -> str:
    if not secret:
        raise Refused(401, f"{source} webhooks are refused: no secret is configured for them")
    return secret


def _header(headers: Mapping[str, str], name: str) -> str:
    value = headers.get(name)
    if not value:
        raise Refused(400, f"missing header {name}")
    return value


def _check_timestamp(raw: str, now: float) -> None:
    try:
        ts = int(raw)
    except ValueError:
        raise Refused(400, "timestamp header is not a whole number of seconds") from None
    _within_window(ts, now)


def _within_window(ts: int, now: float) -> None:
    off = int(now) - ts  # integers only: a float minus a 400-digit int overflows
    if abs(off) > REPLAY_WINDOW_SECONDS:
        shown = off if abs(off) < 10**12 else "far"
        raise Refused(401, f"timestamp is {shown} s off, more than {REPLAY_WINDOW_SECONDS} s: stale or replayed")


def _json(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):  # JSONDecodeError is a ValueError
        raise Refused(400, "body is not valid JSON") from None
    except RecursionError:  # `[[[[…` 100,000 deep: json recurses once per level
        raise Refused(400, "body nests too deeply") from None
    if not isinstance(data, dict):
        raise Refused(400, "body is not a JSON object")
    return data


# --- signatures (pure) -------------------------------------------------------------------------


def github_signature(secret: str, body: bytes) -> str:
    return "sha256=" + _hmac_hex(secret, body)


def mlflow_signature(secret: str, delivery_id: str, timestamp: str, body: bytes) -> str:
    message = f"{delivery_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(secret.encode(), message, hashlib.sha256).digest()).decode()


def databricks_signature(secret: str, body: bytes) -> str:
    return _hmac_hex(secret, body)


def slack_signature(secret: str, timestamp: str, body: bytes) -> str:
    return "v0=" + _hmac_hex(secret, f"v0:{timestamp}:".encode() + body)


# --- verify + normalise, one per source ---------------------------------------------------------


def github_event(headers: Mapping[str, str], body: bytes, secret: str | None, now: float | None = None) -> Event:
    secret = _require(secret, "GitHub")
    signature = headers.get("X-Hub-Signature-256")
    if not signature:
        raise Refused(401, "missing X-Hub-Signature-256")
    if not hmac.compare_digest(signature.encode(), github_signature(secret, body).encode()):
        raise Refused(401, "X-Hub-Signature-256 does not match the body")
    name = _header(headers, "X-GitHub-Event")
    delivery = _header(headers, "X-GitHub-Delivery")
    data = _json(_github_json_body(headers, body))
    action = data.get("action") or ""
    if not isinstance(action, str):
        raise Refused(400, "GitHub body's `action` is not a string")
    return Event("github", name, action, delivery, data)


def _github_json_body(headers: Mapping[str, str], body: bytes) -> bytes:
    """The JSON of a delivery: the body itself, or, for a hook whose content type is `form` (the REST
    API's default for repository hooks), its `payload` form field. Read only after the signature."""
    content_type = (headers.get("Content-Type") or "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        return body
    payload = _form(body).get("payload")
    if payload is None:
        raise Refused(400, "form-encoded GitHub delivery needs a `payload` field")
    return payload.encode()


def mlflow_event(headers: Mapping[str, str], body: bytes, secret: str | None, now: float | None = None) -> Event:
    secret = _require(secret, "MLflow")
    signature = headers.get("X-MLflow-Signature")
    if not signature:
        raise Refused(401, "missing X-MLflow-Signature")
    delivery = _header(headers, "X-MLflow-Delivery-Id")
    timestamp = _header(headers, "X-MLflow-Timestamp")
    expected = mlflow_signature(secret, delivery, timestamp, body)
    if not hmac.compare_digest(signature.encode(), expected.encode()):
        raise Refused(401, "X-MLflow-Signature does not match the body")
    _check_timestamp(timestamp, time.time() if now is None else now)
    data = _json(body)
    entity, action = data.get("entity"), data.get("action")
    if not isinstance(entity, str) or not isinstance(action, str) or not isinstance(data.get("data"), dict):
        raise Refused(400, "MLflow body needs `entity`, `action` and a `data` object")
    return Event("mlflow", entity, action, delivery, data["data"])


def databricks_event(headers: Mapping[str, str], body: bytes, secret: str | None, now: float | None = None) -> Event:
    secret = _require(secret, "Databricks")
    signature = headers.get("X-Databricks-Signature")
    if not signature:
        raise Refused(401, "missing X-Databricks-Signature")
    if not hmac.compare_digest(signature.lower().encode(), databricks_signature(secret, body).encode()):
        raise Refused(401, "X-Databricks-Signature does not match the body")
    data = _json(body)
    name = data.get("event")
    if not isinstance(name, str):
        raise Refused(400, "Databricks registry body needs `event`")
    _check_event_timestamp(data.get("event_timestamp"), time.time() if now is None else now)
    # Registry webhooks carry no delivery id or timestamp: a retried delivery has the same body.
    delivery = "sha256:" + hashlib.sha256(body).hexdigest()
    return Event("databricks", "registry", name, delivery, data)


def _check_event_timestamp(ms: object, now: float) -> None:
    """Registry webhooks sign no timestamp header: the body's `event_timestamp` (ms) is all there is.

    Databricks always sets it (every example in its registry-webhook documentation has one); a body
    without it cannot be told from a replay of an old delivery, so it is refused."""
    if ms is None:
        raise Refused(
            400, "Databricks registry webhook without `event_timestamp`: a replayed delivery could not be told apart"
        )
    if isinstance(ms, bool) or not isinstance(ms, int):
        raise Refused(400, "Databricks registry `event_timestamp` is not a whole number of milliseconds")
    _within_window(ms // 1000, now)


def _slack_verify(headers: Mapping[str, str], body: bytes, secret: str | None, now: float | None) -> None:
    secret = _require(secret, "Slack")
    signature = headers.get("X-Slack-Signature")
    if not signature:
        raise Refused(401, "missing X-Slack-Signature")
    timestamp = _header(headers, "X-Slack-Request-Timestamp")
    if not hmac.compare_digest(signature.encode(), slack_signature(secret, timestamp, body).encode()):
        raise Refused(401, "X-Slack-Signature does not match the body")
    _check_timestamp(timestamp, time.time() if now is None else now)


def _form(body: bytes) -> dict[str, str]:
    try:
        return {k: v[0] for k, v in parse_qs(body.decode(), keep_blank_values=True, strict_parsing=False).items()}
    except UnicodeDecodeError:
        raise Refused(400, "body is not form-encoded UTF-8") from None


def slack_command_event(headers: Mapping[str, str], body: bytes, secret: str | None, now: float | None = None) -> Event:
    _slack_verify(headers, body, secret, now)
    form = _form(body)
    if "command" not in form or "user_id" not in form:
        raise Refused(400, "slash command needs `command` and `user_id`")
    # Slack gives commands no delivery id; trigger_id is unique per invocation.
    delivery = form.get("trigger_id") or "slack:" + hashlib.sha256(body).hexdigest()
    return Event("slack", "command", form["command"].lstrip("/"), delivery, form)


def slack_interaction_event(
    headers: Mapping[str, str], body: bytes, secret: str | None, now: float | None = None
) -> Event:
    _slack_verify(headers, body, secret, now)
    raw = _form(body).get("payload")
    if raw is None:
        raise Refused(400, "interaction needs a `payload` form field")
    data = _json(raw.encode())
    kind, actions, user = data.get("type"), data.get("actions") or [{}], data.get("user") or {}
    if not isinstance(kind, str):
        raise Refused(400, "interaction payload needs `type`")
    if not isinstance(actions, list) or not all(isinstance(a, dict) for a in actions):
        raise Refused(400, "interaction `actions` is not a list of objects")
    if not isinstance(user, dict):
        raise Refused(400, "interaction `user` is not an object")
    first = actions[0]
    delivery = data.get("trigger_id") or f"slack:{first.get('action_ts', '')}:{user.get('id', '')}"
    return Event("slack", kind, str(first.get("action_id", "")), str(delivery), data)
