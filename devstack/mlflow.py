"""A real local MLflow tracking server (SQLite backend, proxied artifacts) for the demo and tests.

The server is started with the environment it needs to deliver webhooks to the bot on
127.0.0.1 over plain http:

- ``MLFLOW_WEBHOOK_ALLOWED_SCHEMES=http,https`` and ``MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS=true``
  (the defaults only allow https to public addresses),
- ``MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY`` (a Fernet key; without it each server worker invents
  its own key, so secrets stored by one worker cannot be decrypted by another and deliveries
  are lost),
- ``MLFLOW_WEBHOOK_CACHE_TTL=1`` so a webhook created a moment ago is seen by the next event.

The key is in ``service.env``; restarting on the same `workdir` needs the same key, or stored
webhook secrets cannot be decrypted. The server's job runner (huey consumers, used only by
GenAI features) is off unless MLFLOW_SERVER_ENABLE_JOB_EXECUTION says otherwise.
Start-up takes about 5.5-6.5 s on an idle 2-CPU machine (most of it importing mlflow twice:
the CLI process and its uvicorn worker).
"""

from __future__ import annotations

import base64
import os
import shutil
import sqlite3
import sys
import tempfile
from pathlib import Path

from devstack.processes import Service, free_port, is_ready, start_process

__all__ = ["start_mlflow", "start_again", "generate_fernet_key", "webhook_env"]


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


def _schema_template() -> Path:
    """Where an empty, fully migrated store of this MLflow version is kept between starts."""
    try:
        from importlib.metadata import version

        mlflow_version = version("mlflow")
    except Exception:  # pragma: no cover - mlflow metadata missing
        mlflow_version = "unknown"
    return Path(tempfile.gettempdir()) / f"mlops-bot-mlflow-{mlflow_version}-empty.db"


def _seed_store(db: Path) -> bool:
    """Copy the migrated empty store into place (saves the ~1.5 s of migrations). True if done."""
    template = _schema_template()
    if db.exists() or not template.exists():
        return False
    tmp = db.with_suffix(".db.tmp")
    shutil.copyfile(template, tmp)
    os.replace(tmp, db)
    return True


def _save_template(db: Path) -> None:
    """Snapshot a freshly migrated, still empty store as the template (consistent via backup)."""
    template = _schema_template()
    if template.exists():
        return
    tmp = template.with_name(f"{template.name}.{os.getpid()}.tmp")
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as src, sqlite3.connect(tmp) as dst:
            if src.execute("SELECT COUNT(*) FROM runs").fetchone()[0]:
                return  # not empty any more: never a template
            src.backup(dst)
        os.replace(tmp, template)
    except (sqlite3.Error, OSError):
        pass
    finally:
        tmp.unlink(missing_ok=True)


def start_mlflow(
    workdir: Path,
    *,
    webhook_secret_key: str | None = None,
    timeout: float = 60,
    reuse_schema: bool = True,
) -> Service:
    """Start `mlflow server` on a free port with its store and artifacts under `workdir`.

    Returns the Service; `service.url` is the tracking URI (``http://127.0.0.1:<port>``) and
    `service.env` the environment the server was given (including the Fernet key).

    With `reuse_schema`, a new store starts as a copy of an empty store already migrated by
    this MLflow version (kept in the temp dir after the first start), which skips the
    database migrations.
    """
    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    artifacts = workdir / "mlartifacts"
    artifacts.mkdir(parents=True, exist_ok=True)
    db = workdir / "mlflow.db"
    fresh = not db.exists()
    seeded = reuse_schema and _seed_store(db)
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
    argv = [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
            "--backend-store-uri", f"sqlite:///{db}", "--serve-artifacts", "--artifacts-destination", str(artifacts),
            "--workers", "1"]  # fmt: skip
    service = start_process(
        "mlflow",
        argv,
        workdir=workdir,
        url=url,
        env=env,
        ready=lambda: is_ready(f"{url}/health"),
        timeout=timeout,
        cwd=workdir,
    )
    if reuse_schema and fresh and not seeded:
        _save_template(db)
    return service


def start_again(old: Service, timeout: float = 60) -> Service:
    """MLflow again on `old`'s port, store and artifacts, with the environment it had (the same Fernet key, so the
    webhook secrets it stored still decrypt): what a restarted server, or one back from an outage, looks like."""
    argv = list(old.process.args)
    workdir = old.log_path.parent
    return start_process(
        "mlflow",
        argv,
        workdir=workdir,
        url=old.url,
        env=old.env,
        ready=lambda: is_ready(f"{old.url}/health"),
        timeout=timeout,
        cwd=workdir,
    )
