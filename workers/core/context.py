"""What a task needs, built once per worker process and handed to a service as one `Deps`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache, lru_cache
from typing import Any, TypeVar

import redis

from core.celery_app import redis_url
from core.config import Environment, Settings
from core.logs import get_logger
from core.reloading import ReloadingConfig
from workers.core.base import CeleryScheduler
from workers.core.state import State
from workers.errors import Permanent
from workers.gateways import ForgeGateway, RegistryGateway, Scheduler, SlackGateway, WorkspaceGateway

log = get_logger("workers.core.context")
T = TypeVar("T")


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
def _config() -> ReloadingConfig:
    return ReloadingConfig()


def settings() -> Settings:
    """The central settings: config.toml, read again when it changes (a broken edit is refused, logged, and the
    last good one kept: core/reloading.py). What is built from them is built again when they change."""
    return _config().current()


def _per_settings(build: Callable[[Settings], T]) -> Callable[[], T]:
    """`build(settings())`, kept until the settings change."""
    kept: dict[str, Any] = {}

    def get() -> T:
        current = settings()
        if kept.get("for") is not current:
            kept.update({"for": current, "value": build(current)})
        return kept["value"]

    return get


@lru_cache(maxsize=1)
def state() -> State:
    return State(redis.Redis.from_url(redis_url(), socket_timeout=5, socket_connect_timeout=2))


@cache
def _workspace(environment: str, env: Environment) -> WorkspaceGateway:
    from workers.gateways.workspace import Workspace

    return Workspace(environment, env)


def workspace(environment: str) -> WorkspaceGateway:
    env = settings().environments.get(environment)
    if env is None:
        raise Permanent(f"environment `{environment}` is not in [environments]")
    return _workspace(environment, env)  # one per environment and sign-in: an edited host gets a new client


def _registry(s: Settings) -> RegistryGateway:
    from workers.gateways.registry import Registry  # mlflow is heavy: imported on first use

    return Registry(s.mlflow.tracking_uri, s.mlflow.registry_uri)


def _forge_of(s: Settings) -> tuple[ForgeGateway | None, str]:
    from workers.gateways.forge import Forge

    try:
        return Forge(s.github, login=s.bot.login), ""
    except Permanent as exc:
        return None, exc.message


def _slack_of(s: Settings) -> SlackGateway | None:
    from workers.gateways.slack import Slack

    try:
        return Slack(s.slack)
    except Permanent:
        return None  # Slack is optional


registry, _forge, _slack = _per_settings(_registry), _per_settings(_forge_of), _per_settings(_slack_of)


def deps() -> Deps:
    """The one dependencies object a task hands to its service."""
    forge, problem = _forge()
    if forge is None:  # runs still run; only PRs are not told
        log.warning("github.unconfigured", reason=problem)
    return Deps(settings(), state(), workspace, forge, _slack(), registry, CeleryScheduler(), problem)
