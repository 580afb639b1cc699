"""What a task needs, built once per worker process: settings, Redis state, gateways."""
from __future__ import annotations

from functools import lru_cache

import redis

from bot.celery_app import redis_url
from bot.config import Settings, load_config
from bot.logs import get_logger
from workers.errors import Permanent
from workers.gateways.workspace import Workspace
from workers.state import State


@lru_cache(maxsize=1)
def settings() -> Settings:
    return load_config()


@lru_cache(maxsize=1)
def state() -> State:
    return State(redis.Redis.from_url(redis_url(), socket_timeout=5, socket_connect_timeout=2))


@lru_cache(maxsize=None)
def workspace(environment: str) -> Workspace:
    env = settings().environments.get(environment)
    if env is None:
        raise Permanent(f"environment `{environment}` is not in [environments]")
    return Workspace(environment, env)


@lru_cache(maxsize=1)
def forge():
    from workers.gateways.forge import Forge

    return Forge(settings().github)


@lru_cache(maxsize=1)
def registry():
    from workers.gateways.registry import Registry  # mlflow is heavy: imported on first use

    return Registry(settings().mlflow.tracking_uri)


@lru_cache(maxsize=1)
def chat():
    """Slack, or None when no bot token is configured (Slack is optional)."""
    from workers.gateways.chat import Chat

    try:
        return Chat(settings().slack)
    except Permanent:
        return None


def forge_or_none():
    """GitHub, or None (logged) when no credentials are configured: runs still run, PRs are not told."""
    try:
        return forge()
    except Permanent as exc:
        get_logger("workers.context").warning("github.unconfigured", reason=exc.message)
        return None
