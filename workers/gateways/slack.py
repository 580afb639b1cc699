"""Slack through slack_sdk: approval requests with buttons, thread replies, response_url answers.

Slack's errors are translated here by `workers.errors` (429/5xx/network → Transient, the rest Permanent).
Every text leaves within Slack's sizes (`text` 40,000 characters, a section block's text 3,000), cut with a
visible "… (truncated)" rather than refused (`invalid_blocks`) or cut silently by Slack. Escaping what
people typed is the texts' job (`workers/escaping.py`).

chat.postMessage and response URLs take no idempotency key, so a post given a `key` carries it in its message
metadata, and `find_post` finds it again: a run whose first post reached Slack but whose answer was lost reuses
that message instead of posting twice (workers/release/feedback.py). The look needs a `*:history` scope
(`channels:history` for a public channel) besides `chat:write`; without it the bot posts as before.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from slack_sdk import WebClient
from slack_sdk.errors import SlackClientError
from slack_sdk.web import SlackResponse
from slack_sdk.webhook import WebhookClient

from core.config import SlackSettings
from core.logs import get_logger
from workers.errors import Permanent, Transient, classify
from workers.escaping import SLACK_BLOCK_TEXT_MAX, SLACK_TEXT_MAX, truncate

log = get_logger("workers.gateways.slack")

# Slack: "Event types can contain letters, numbers, underscores, and hyphens, but not periods or other punctuation"
POST_EVENT = "mlops_bot_post"
LOOK_PAGE = 200  # messages a conversations.history/replies page
LOOK_PAGES = 5  # the look is bounded: recent messages only (its `oldest` is when the bot first tried)
CONVERSATION_ID = re.compile(r"^[CDG][A-Z0-9]+$")  # a channel name is lowercase: `#mlops-approvals`


def _section(text: str) -> dict:
    return {"type": "section", "text": {"type": "mrkdwn", "text": truncate(text, SLACK_BLOCK_TEXT_MAX)}}


def digest(key: str) -> str:
    """What a post's metadata says of its key: a digest — Slack's metadata is readable by anyone in the workspace,
    and a key may name a response URL (which posts to the channel for 30 minutes)."""
    return hashlib.sha256(key.encode()).hexdigest()[:32]


def tagged(key: str) -> dict | None:
    """The message metadata that tags a post with `key` (none without one)."""
    return {"event_type": POST_EVENT, "event_payload": {"key": digest(key)}} if key else None


def _is_tagged(message: dict, key: str) -> bool:
    metadata = message.get("metadata") or {}
    payload = metadata.get("event_payload") or {}
    return metadata.get("event_type") == POST_EVENT and payload.get("key") == digest(key)


class Slack:
    def __init__(self, cfg: SlackSettings, client: WebClient | None = None):
        self.cfg = cfg
        if client is None:
            token = os.environ.get(cfg.bot_token_env)
            if not token:
                raise Permanent(f"Slack: {cfg.bot_token_env} is not set")
            client = WebClient(token=token, base_url=cfg.base_url, timeout=10)
        self.client = client
        self._ids: dict[str, str] = {}  # channel name -> conversation id, as conversations.list gave it
        self._me = ""

    @contextmanager
    def _edge(self, what: str) -> Iterator[None]:
        try:
            yield
        except (SlackClientError, OSError) as exc:
            raise classify(exc, f"Slack could not {what}: {exc}") from exc

    def request_approval(self, model: str, version: str, text: str, key: str = "") -> tuple[str, str]:
        """Post the approval request with Approve/Reject buttons (tagged `key`); returns (channel, ts)."""
        value = f"{model}@{version}"
        blocks: list[dict] = [
            _section(text),
            {
                "type": "actions",
                "block_id": "decision",
                "elements": [
                    {
                        "type": "button",
                        "action_id": "approve",
                        "style": "primary",
                        "value": value,
                        "text": {"type": "plain_text", "text": "Approve"},
                    },
                    {
                        "type": "button",
                        "action_id": "reject",
                        "style": "danger",
                        "value": value,
                        "text": {"type": "plain_text", "text": "Reject"},
                    },
                ],
            },
        ]
        with self._edge("post an approval request"):
            r = self.client.chat_postMessage(
                channel=self.cfg.channel, text=truncate(text, SLACK_TEXT_MAX), blocks=blocks, metadata=tagged(key)
            )
        return r["channel"], r["ts"]

    def post(self, text: str, thread_ts: str = "", channel: str = "", key: str = "") -> tuple[str, str]:
        """Post `text` (in the thread `thread_ts`, when given), tagged `key`; returns (channel, ts)."""
        with self._edge("post a message"):
            r = self.client.chat_postMessage(
                channel=channel or self.cfg.channel,
                text=truncate(text, SLACK_TEXT_MAX),
                thread_ts=thread_ts or None,
                metadata=tagged(key),
            )
        return r["channel"], r["ts"]

    def find_post(
        self, key: str, channel: str = "", thread_ts: str = "", oldest: float = 0.0
    ) -> tuple[str, str] | None:
        """The bot's own message tagged `key` in `channel` (in the thread `thread_ts`, when given), posted since
        `oldest`: (channel id, ts), or None. Slack refusing the look (a missing `*:history` scope) is None too."""
        try:
            with self._edge("look for a message it posted"):
                cid = self._conversation_id(channel or self.cfg.channel)
                me = self._whoami()
                for message in self._messages(cid, thread_ts, oldest) if cid else ():
                    if message.get("user") == me and _is_tagged(message, key):
                        return cid, message["ts"]
        except Transient:
            raise
        except Permanent as exc:  # posting again beats not posting: the look is what the bot may do without
            log.warning("slack.look_refused", channel=channel or self.cfg.channel, error=exc.message)
        return None

    def _messages(self, cid: str, thread_ts: str, oldest: float) -> Iterator[dict]:
        """The conversation's (or the thread's) messages since `oldest`, a page at a time, metadata whole."""
        args: dict = {"channel": cid, "oldest": f"{oldest:.6f}", "include_all_metadata": True, "limit": LOOK_PAGE}
        read: Callable[..., SlackResponse] = self.client.conversations_history
        if thread_ts:
            read, args["ts"] = self.client.conversations_replies, thread_ts
        cursor = None
        for _ in range(LOOK_PAGES):
            page = read(**args, cursor=cursor)
            yield from page.get("messages") or []
            cursor = (page.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                return

    def _conversation_id(self, channel: str) -> str:
        """conversations.history takes a conversation's ID; `[slack] channel` may be a name."""
        if CONVERSATION_ID.match(channel):
            return channel
        name, cursor = channel.lstrip("#"), None
        for _ in range(LOOK_PAGES if name not in self._ids else 0):
            page = self.client.conversations_list(
                types="public_channel,private_channel", exclude_archived=True, limit=LOOK_PAGE, cursor=cursor
            )
            self._ids.update({c["name"]: c["id"] for c in page.get("channels") or [] if c.get("name")})
            cursor = (page.get("response_metadata") or {}).get("next_cursor")
            if name in self._ids or not cursor:
                break
        return self._ids.get(name, "")

    def _whoami(self) -> str:
        """The bot's own user id: only its messages count (another app could copy a tag)."""
        if not self._me:
            self._me = self.client.auth_test()["user_id"]
        return self._me

    def close_request(self, channel: str, ts: str, text: str) -> None:
        """Replace the buttons with the decision, so nobody clicks a stale request."""
        with self._edge("update an approval request"):
            self.client.chat_update(
                channel=channel,
                ts=ts,
                text=truncate(text, SLACK_TEXT_MAX),
                blocks=[_section(text)],
            )

    def respond(self, response_url: str, text: str, in_channel: bool = False, key: str = "") -> None:
        """Answer through a response URL: to the channel (tagged `key`, so `find_post` finds it) or to the user
        alone (an ephemeral message: no API can read it back)."""
        if response_url:
            with self._edge("answer a command"):
                WebhookClient(response_url, timeout=10).send(
                    text=truncate(text, SLACK_TEXT_MAX),
                    response_type="in_channel" if in_channel else "ephemeral",
                    metadata=tagged(key) if in_channel else None,
                )
