"""What a task needs, built once per worker process and handed to a service as one `Deps`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache, lru_cache

import redis

from core.celery_app import redis_url
from core.config import Settings, load_config
from core.logs import get_logger
from workers.core.base import CeleryScheduler
from workers.core.state import State
from workers.errors import Permanent
from workers.gateways import ForgeGateway, RegistryGateway, Scheduler, SlackGateway, WorkspaceGateway

log = get_logger("workers.core.context")


@dataclass(frozen=True)
class Deps:
    """Settings, Redis state, the four gateways and the scheduler; GitHub and Slack are optional (None + why)."""

    settings: Settings
    state: State
    workspaces: Callable[[str], WorkspaceGateway]
    forge: ForgeGateway | None
    slack: SlackGateway | None
    registry_factory: Callable[[], RegistryGateway] = field(repr=False)
    scheduler: Scheduler = field(repr=False)
    forge_problem: str = ""  # why forge is None
    central: Settings | None = None  # set when `settings` are a repository's own pipeline (workers/core/pipelines.py)

    @property
    def registry(self) -> RegistryGateway:
        """MLflow, built on first use (mlflow is heavy to import)."""
        return self.registry_factory()

    def need_forge(self) -> ForgeGateway:
        if self.forge is None:
            raise Permanent(self.forge_problem or "GitHub is not configured")
        return self.forge


@lru_cache(maxsize=1)
def settings() -> Settings:
    return load_config()


@lru_cache(maxsize=1)
def state() -> State:
    return State(redis.Redis.from_url(redis_url(), socket_timeout=5, socket_connect_timeout=2))


@cache
def workspace(environment: str) -> WorkspaceGateway:
    from workers.gateways.workspace import Workspace

    env = settings().environments.get(environment)
    if env is None:
        raise Permanent(f"environment `{environment}` is not in [environments]")
    return Workspace(environment, env)


@lru_cache(maxsize=1)
def registry() -> RegistryGateway:
    from workers.gateways.registry import Registry  # mlflow is heavy: imported on first use

    mlflow = settings().mlflow
    return Registry(mlflow.tracking_uri, mlflow.registry_uri)


@lru_cache(maxsize=1)
def _forge() -> tuple[ForgeGateway | None, str]:
    from workers.gateways.forge import Forge

    try:
        return Forge(settings().github, login=settings().bot.login), ""
    except Permanent as exc:
        return None, exc.message


@lru_cache(maxsize=1)
def _slack() -> SlackGateway | None:
    from workers.gateways.slack import Slack

    try:
        return Slack(settings().slack)
    except Permanent:
        return None  # Slack is optional


def deps() -> Deps:
    """The one dependencies object a task hands to its service."""
    forge, problem = _forge()
    if forge is None:  # runs still run; only PRs are not told
        log.warning("github.unconfigured", reason=problem)
    return Deps(settings(), state(), workspace, forge, _slack(), registry, CeleryScheduler(), problem)
