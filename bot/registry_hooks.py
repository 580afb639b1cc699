"""The bot's webhook on an MLflow (≥ 3.3) server, created or updated idempotently from config."""
from __future__ import annotations

import os

from bot.config import Settings

HOOK_NAME = "mlops-bot"
EVENTS = ["registered_model.created", "model_version.created", "model_version_tag.set",
          "model_version_alias.created", "model_version_alias.deleted"]


def _client(settings: Settings):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=settings.mlflow.tracking_uri, registry_uri=settings.mlflow.tracking_uri)


def hook_url(settings: Settings) -> str:
    return settings.mlflow.webhook_url or settings.bot.public_url.rstrip("/") + "/webhooks/mlflow"


def list_hooks(settings: Settings) -> list:
    client, out, token = _client(settings), [], None
    while True:
        page = client.list_webhooks(max_results=100, page_token=token)
        out.extend(page)
        token = page.token
        if not token:
            return out


def install_hook(settings: Settings, secret: str | None = None) -> tuple[object, str]:
    """Create the hook, or update it when its URL or events differ; the secret defaults to MLFLOW_WEBHOOK_SECRET."""
    secret = secret or os.environ.get("MLFLOW_WEBHOOK_SECRET")
    if not secret:
        raise SystemExit("MLFLOW_WEBHOOK_SECRET is not set: the bot refuses unsigned MLflow deliveries")
    client, url = _client(settings), hook_url(settings)
    existing = [h for h in list_hooks(settings) if h.name == HOOK_NAME]
    if not existing:
        return client.create_webhook(HOOK_NAME, url, EVENTS, description="mlops-bot receiver", secret=secret), "created"
    hook = existing[0]
    if hook.url == url and sorted(map(str, hook.events)) == sorted(EVENTS):
        return hook, "unchanged"
    return client.update_webhook(hook.webhook_id, url=url, events=EVENTS, secret=secret), "updated"
