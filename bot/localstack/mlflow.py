"""A real local MLflow tracking server (SQLite backend, proxied artifacts) for the demo and tests.

The server is started with the environment it needs to deliver webhooks to the bot on
127.0.0.1 over plain http:

- ``MLFLOW_WEBHOOK_ALLOWED_SCHEMES=http,https`` and ``MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS=true``
  (the defaults only allow https to public addresses),
- ``MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY`` (a Fernet key; without it each server worker invents
  its own key, so secrets stored by one worker cannot be decrypted by another and deliveries
  are lost),
- ``MLFLOW_WEBHOOK_CACHE_TTL=1`` so a webhook created a moment ago is seen by the next event.
"""
from __future__ import annotations

import base64
import os
import sys
from pathlib import Path

from bot.localstack import Service, free_port, http_ok, start_process  # noqa: F401

__all__ = ["start_mlflow", "generate_fernet_key", "webhook_env"]


def generate_fernet_key() -> str:
    """A fresh Fernet key (urlsafe base64 of 32 random bytes), as `cryptography` makes it."""
    return base64.urlsafe_b64encode(os.urandom(32)).decode("ascii")


def webhook_env(webhook_secret_key: str) -> dict[str, str]:
    return {
        "MLFLOW_WEBHOOK_ALLOWED_SCHEMES": "http,https",
        "MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS": "true",
        "MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY": webhook_secret_key,
        "MLFLOW_WEBHOOK_CACHE_TTL": "1",
    }


def _health_ok(url: str) -> bool:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(f"{url}/health", timeout=1) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def start_mlflow(
    workdir: Path,
    *,
    webhook_secret_key: str | None = None,
    timeout: float = 60,
) -> Service:
    """Start `mlflow server` on a free port with its store and artifacts under `workdir`.

    Returns the Service; `service.url` is the tracking URI (``http://127.0.0.1:<port>``) and
    `service.env` the environment the server was given (including the Fernet key).
    """
    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    artifacts = workdir / "mlartifacts"
    artifacts.mkdir(parents=True, exist_ok=True)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        # The job runner (huey consumers for GenAI scorers etc.) is not needed here; without
        # it the server starts ~1 s sooner, runs 8 fewer processes and stops at once.
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": os.environ.get("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false"),
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "PYTHONUNBUFFERED": "1",
        **webhook_env(webhook_secret_key or generate_fernet_key()),
    }
    argv = [
        sys.executable, "-m", "mlflow", "server",
        "--host", "127.0.0.1",
        "--port", str(port),
        "--backend-store-uri", f"sqlite:///{workdir / 'mlflow.db'}",
        "--serve-artifacts",
        "--artifacts-destination", str(artifacts),
        "--workers", "1",
    ]
    return start_process(
        "mlflow", argv, workdir=workdir, url=url, env=env,
        ready=lambda: _health_ok(url), timeout=timeout, cwd=workdir,
    )
