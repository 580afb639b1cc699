"""Shared fixtures: a private Redis per test session, settings, signed requests."""

from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path

import pytest
import redis

from core import events
from core.config import Settings, load_config
from devstack.redis import start_redis

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"
SECRETS = {
    "GITHUB_WEBHOOK_SECRET": "gh-test-secret",
    "MLFLOW_WEBHOOK_SECRET": "mlflow-test-secret",
    "DATABRICKS_WEBHOOK_SECRET": "dbx-test-secret",
    "SLACK_SIGNING_SECRET": "slack-test-secret",
}


def fixtures_dir() -> Path:
    return Path(os.environ.get("MLOPS_BOT_FIXTURES", ROOT.parent / "shared" / "fixtures"))


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    """A private Redis for this test session, on a free port, stopped afterwards."""
    service = start_redis(tmp_path_factory.mktemp("redis"))
    yield service
    service.stop()


@pytest.fixture(scope="module")
def empty_redis(redis_server):
    """Empty the session's Redis before a module's stack starts: the stacks of earlier modules used it
    too, and their bot's memory (comment ids, cached roles, jobs) means something else here."""
    client = redis.Redis.from_url(redis_server.url)
    client.flushdb()
    client.close()


@pytest.fixture
def redis_client(redis_server):
    client = redis.Redis.from_url(redis_server.url)
    client.flushdb()  # our own private server: nothing shared is touched
    yield client
    client.close()


@pytest.fixture
def settings() -> Settings:
    return load_config(ROOT / "config.toml")


@pytest.fixture
def secrets(monkeypatch):
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    return SECRETS


def payload(name: str) -> dict:
    """One of this project's own small payloads (tests/data)."""
    return json.loads((DATA / f"{name}.json").read_text())


class Signer:
    """Builds signed requests the way each source does, with the test secrets."""

    def github(self, event: str, body: dict | bytes, delivery: str | None = None) -> tuple[bytes, dict]:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        return raw, {
            "Content-Type": "application/json",
            "X-GitHub-Event": event,
            "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
            "X-Hub-Signature-256": events.github_signature(SECRETS["GITHUB_WEBHOOK_SECRET"], raw),
        }

    def mlflow(self, body: dict, delivery: str | None = None, timestamp: int | None = None) -> tuple[bytes, dict]:
        raw = json.dumps(body).encode()
        delivery = delivery or str(uuid.uuid4())
        ts = str(int(time.time()) if timestamp is None else timestamp)
        return raw, {
            "Content-Type": "application/json",
            "X-MLflow-Delivery-Id": delivery,
            "X-MLflow-Timestamp": ts,
            "X-MLflow-Signature": events.mlflow_signature(SECRETS["MLFLOW_WEBHOOK_SECRET"], delivery, ts, raw),
        }

    def databricks(self, body: dict) -> tuple[bytes, dict]:
        raw = json.dumps(body).encode()
        return raw, {
            "Content-Type": "application/json",
            "X-Databricks-Signature": events.databricks_signature(SECRETS["DATABRICKS_WEBHOOK_SECRET"], raw),
        }

    def slack(self, raw: bytes, timestamp: int | None = None) -> tuple[bytes, dict]:
        ts = str(int(time.time()) if timestamp is None else timestamp)
        return raw, {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": events.slack_signature(SECRETS["SLACK_SIGNING_SECRET"], ts, raw),
        }


@pytest.fixture
def signer() -> Signer:
    return Signer()
