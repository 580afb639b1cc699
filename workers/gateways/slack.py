"""Slack through slack_sdk: approval requests with buttons, thread replies, response_url answers.

Slack's errors are translated here by `workers.errors` (429/5xx/network → Transient, the rest Permanent).
Every text leaves within Slack's sizes (`text` 40,000 characters, a section block's text 3,000), cut with a
visible "… (truncated)" rather than refused (`invalid_blocks`) or cut silently by Slack. Escaping what
people typed is the texts' job (`workers/escaping.py`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from slack_sdk import WebClient
from slack_sdk.errors import SlackClientError
from slack_sdk.webhook import WebhookClient

from core.config import SlackSettings
from workers.errors import Permanent, classify
from workers.escaping import SLACK_BLOCK_TEXT_MAX, SLACK_TEXT_MAX, truncate


def _section(text: str) -> dict:
    return {"type": "section", "text": {"type": "mrkdwn", "text": truncate(text, SLACK_BLOCK_TEXT_MAX)}}


class Slack:
    def __init__(self, cfg: SlackSettings, client: WebClient | None = None):
        self.cfg = cfg
        if client is None:
            token = os.environ.get(cfg.bot_token_env)
            if not token:
                raise Permanent(f"Slack: {cfg.bot_token_env} is not set")
            client = WebClient(token=token, base_url=cfg.base_url, timeout=10)
        self.client = client

    @contextmanager
    def _edge(self, what: str) -> Iterator[None]:
        try:
            yield
        except (SlackClientError, OSError) as exc:
            raise classify(exc, f"Slack could not {what}: {exc}") from exc

    def request_approval(self, model: str, version: str, text: str) -> tuple[str, str]:
        """Post the approval request with Approve/Reject buttons; returns (channel, ts)."""
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
                channel=self.cfg.channel, text=truncate(text, SLACK_TEXT_MAX), blocks=blocks
            )
        return r["channel"], r["ts"]

    def post(self, text: str, thread_ts: str = "", channel: str = "") -> tuple[str, str]:
        with self._edge("post a message"):
            r = self.client.chat_postMessage(
                channel=channel or self.cfg.channel, text=truncate(text, SLACK_TEXT_MAX), thread_ts=thread_ts or None
            )
        return r["channel"], r["ts"]

    def close_request(self, channel: str, ts: str, text: str) -> None:
        """Replace the buttons with the decision, so nobody clicks a stale request."""
        with self._edge("update an approval request"):
            self.client.chat_update(
                channel=channel,
                ts=ts,
                text=truncate(text, SLACK_TEXT_MAX),
                blocks=[_section(text)],
            )

    def respond(self, response_url: str, text: str, in_channel: bool = False) -> None:
        if response_url:
            with self._edge("answer a command"):
                WebhookClient(response_url, timeout=10).send(
                    text=truncate(text, SLACK_TEXT_MAX), response_type="in_channel" if in_channel else "ephemeral"
                )
