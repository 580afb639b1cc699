"""The bot's webhook on an MLflow (≥ 3.3) server, created or updated idempotently from config."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from core.config import Settings

HOOK_NAME = "mlops-bot"
EVENTS = [
    "registered_model.created",
    "model_version.created",
    "model_version_tag.set",
    "model_version_alias.created",
    "model_version_alias.deleted",
]


@dataclass(frozen=True)
class Hook:
    """An MLflow webhook as the CLI shows it (plain values, not MLflow's entity)."""

    webhook_id: str
    name: str
    url: str
    events: tuple[str, ...]
    status: str

    @classmethod
    def of(cls, hook: Any) -> Hook:
        return cls(hook.webhook_id, hook.name, hook.url, tuple(map(str, hook.events)), str(hook.status))


def _client(settings: Settings):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=settings.mlflow.tracking_uri, registry_uri=settings.mlflow.tracking_uri)


def hook_url(settings: Settings) -> str:
    return settings.mlflow.webhook_url or settings.bot.public_url.rstrip("/") + "/webhooks/mlflow"


def list_hooks(settings: Settings) -> list[Hook]:
    client, token = _client(settings), None
    out: list[Hook] = []
    while True:
        page = client.list_webhooks(max_results=100, page_token=token)
        out.extend(Hook.of(h) for h in page)
        token = page.token
        if not token:
            return out


def install_hook(settings: Settings, secret: str | None = None) -> tuple[Hook, str]:
    """Create the hook, or update it when its URL or events differ; the secret defaults to MLFLOW_WEBHOOK_SECRET."""
    secret = secret or os.environ.get("MLFLOW_WEBHOOK_SECRET")
    if not secret:
        raise SystemExit("MLFLOW_WEBHOOK_SECRET is not set: the bot refuses unsigned MLflow deliveries")
    client, url = _client(settings), hook_url(settings)
    existing = [h for h in list_hooks(settings) if h.name == HOOK_NAME]
    if not existing:
        created = client.create_webhook(HOOK_NAME, url, EVENTS, description="mlops-bot receiver", secret=secret)
        return Hook.of(created), "created"
    hook = existing[0]
    if hook.url == url and sorted(hook.events) == sorted(EVENTS):
        return hook, "unchanged"
    return Hook.of(client.update_webhook(hook.webhook_id, url=url, events=EVENTS, secret=secret)), "updated"
