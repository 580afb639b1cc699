"""The processes a test runs the bot among: one stand-in for a module, or the whole stack (forge, workspace,
receiver, worker) on the session's Redis; each stopped after its tests."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from databricks.sdk import WorkspaceClient
from databricks.sdk.config import Config
from databricks.sdk.service import jobs

from core.config import Settings, load_config
from devstack import mlrepo
from devstack.bot import start_web, start_worker
from devstack.processes import Service, free_port
from devstack.sandboxes import WORKSPACE_TOKEN, start_forge, start_workspace
from tests.conftest import SECRETS
from workers.gateways.workspace import Workspace


def service_fixture(start: Callable[..., Service], folder: str, **options):
    """A module-scoped fixture: the service `start(<a new folder named folder>, **options)` gives, stopped after
    the module's tests."""

    @pytest.fixture(scope="module")
    def started(tmp_path_factory):
        service = start(tmp_path_factory.mktemp(folder), **options)
        yield service
        service.stop()

    return started


def workspace_client(url: str, retry_timeout_seconds: int = 20) -> WorkspaceClient:
    """databricks-sdk on the sandbox workspace at `url`, as a person with its token."""
    config = Config(host=url, token=WORKSPACE_TOKEN, auth_type="pat", retry_timeout_seconds=retry_timeout_seconds)
    return WorkspaceClient(config=config)


def finished_run(client: WorkspaceClient, run_id: int, timeout: float = 60) -> jobs.Run:
    """The run once the workspace ended it (terminated, skipped or failed inside)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = client.jobs.get_run(run_id)
        if run.state.life_cycle_state.value in ("TERMINATED", "SKIPPED", "INTERNAL_ERROR"):
            return run
        time.sleep(0.2)
    raise AssertionError(f"run {run_id} did not finish")


def bot_settings(path: Path, workspace_url: str, repo: Path | str, **options) -> tuple[Settings, Callable]:
    """The bot's settings for `repo` on the sandbox workspace (`mlrepo.config_text(**options)`, written to `path`)
    and its workspace gateway by environment name."""
    path.write_text(mlrepo.config_text(workspace_url, repo, **options))
    settings = load_config(path)
    return settings, lambda env: Workspace(env, settings.environments[env])


@dataclass
class Stack:
    forge: Service
    workspace: Service
    config: Path  # the bot's config.toml
    env: dict[str, str]  # the bot's processes' environment


def tiny_ml_seed(src: Path, web_url: str) -> str:
    """The forge hosting acme/tiny-ml from `src`, its webhook to the receiver at `web_url`."""
    return mlrepo.forge_seed(src, web_url, SECRETS["GITHUB_WEBHOOK_SECRET"])


@contextmanager
def bot_stack(
    tmp: Path,
    redis_url: str,
    seed: Callable[[Path, str], str] = tiny_ml_seed,
    code_source: str = "git",
    config: Callable[[str], str] = lambda text: text,
    env: dict[str, str] | None = None,
) -> Iterator[Stack]:
    """The forge (`seed(src, receiver URL)`), the workspace, the receiver and a worker (concurrency 2) on Redis at
    `redis_url`; the bot configured by `mlrepo.config_text` as `config` rewrites it, with the test secrets and `env`."""
    web_port = free_port()
    (tmp / "forge.toml").write_text(seed(mlrepo.write_files(tmp / "tiny-ml-src"), f"http://127.0.0.1:{web_port}"))
    services = []
    try:
        services.append(forge := start_forge(tmp, tmp / "forge.toml"))
        services.append(ws := start_workspace(tmp))
        path = tmp / "config.toml"
        git_url = f"{forge.url}/{mlrepo.REPO}.git"
        path.write_text(config(mlrepo.config_text(ws.url, git_url, forge_url=forge.url, code_source=code_source)))
        bot_env = {
            **SECRETS,
            "REDIS_URL": redis_url,
            "MLOPS_BOT_CONFIG": str(path),
            "SANDBOX_DATABRICKS_TOKEN": WORKSPACE_TOKEN,
            "SANDBOX_GITHUB_TOKEN": mlrepo.TOKENS[mlrepo.BOT],
            **(env or {}),
        }
        services.append(start_web(tmp, bot_env, port=web_port))
        services.append(start_worker(tmp, bot_env, concurrency=2))
        yield Stack(forge, ws, path, bot_env)
    finally:
        for s in reversed(services):
            s.stop()
