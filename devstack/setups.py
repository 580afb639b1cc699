"""Named setups: which processes the demo, the tests and the benchmarks run, assembled in one place.

- `receiver_only`: a private Redis and the web process (bench/ingest.py).
- `jobs`: Redis, the sandbox forge hosting `acme/tiny-ml` (devstack/mlrepo.py), the sandbox
  workspace, the web process, a worker and beat, configured by `mlrepo.config_text` (bench/commands.py).
- `whole_loop`: every process of the loop — Redis, a real MLflow server (tracking), the sandbox Slack, the
  forge hosting a project's repository, the workspace (jobs, and the Unity Catalog registry with the grants
  the config's registry names need), web, worker and beat, configured by the project's config template
  (devstack/project.py): the demo's acme/churn-model (the demo, tests/e2e) or your own (`devstack up`).

Each process runs in its own process group, on a free port, under the setup's workdir.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import textwrap
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

from devstack import mlrepo
from devstack.bot import start_beat, start_web, start_worker
from devstack.mlflow import start_mlflow
from devstack.principals import OAUTH_SECRETS, TOKENS, seed_grants
from devstack.processes import Service, free_port
from devstack.project import DEMO_REPO, Project, demo_project
from devstack.project import EXAMPLE as EXAMPLE  # the demo's source, for its callers
from devstack.redis import start_redis
from devstack.sandboxes import SLACK_TOKEN, WORKSPACE_TOKEN, start_forge, start_slack, start_workspace

Say = Callable[[str, Service], None]

REPO = DEMO_REPO  # the demo's (examples/churn-model)
USERS = {"alice": "ghp_alice", "bob": "ghp_bob", "carol": "ghp_carol", "mlops-bot": "ghp_mlops_bot"}
# Local, demo-only secrets: the whole loop's processes get them, nothing else does.
SECRETS = {
    "GITHUB_WEBHOOK_SECRET": "demo-github-secret",
    "MLFLOW_WEBHOOK_SECRET": "demo-mlflow-secret",
    "DATABRICKS_WEBHOOK_SECRET": "demo-databricks-secret",
    "SLACK_SIGNING_SECRET": "demo-slack-secret",
    "MLOPS_BOT_DASHBOARD_TOKEN": "demo-dashboard-token",
}


def _quiet(name: str, service: Service) -> None:
    pass


class Setup:
    """Started services by name, the environment the bot's processes got, and one `stop()` for all."""

    def __init__(self, workdir: Path, say: Say = _quiet):
        self.workdir = workdir
        self.services: dict[str, Service] = {}
        self.env: dict[str, str] = {}
        self.config_path = workdir / "config.toml"
        self._say = say
        self._lock = threading.Lock()  # services may start side by side

    def url(self, name: str) -> str:
        return self.services[name].url

    def add(self, name: str, service: Service) -> Service:
        with self._lock:
            self.services[name] = service
        self._say(name, service)
        return service

    def stop(self) -> None:
        for service in reversed(list(self.services.values())):
            service.stop()

    def __enter__(self) -> Setup:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


@contextlib.contextmanager
def _stopped_on_failure(setup: Setup) -> Iterator[Setup]:
    """Whatever started is stopped again when a later service fails to start (or on Ctrl-C)."""
    try:
        yield setup
    except BaseException:
        setup.stop()
        raise


def _side_by_side(setup: Setup, starters: dict[str, Callable[[], Service]]) -> None:
    """Start independent services at once: each waits for its own readiness."""
    with concurrent.futures.ThreadPoolExecutor(len(starters)) as pool:
        futures = [pool.submit(lambda n=name, s=start: setup.add(n, s())) for name, start in starters.items()]
    for future in futures:
        future.result()


def receiver_only(
    workdir: Path, env: dict[str, str], *, workers: int = 1, threads: int = 4, say: Say = _quiet
) -> Setup:
    """A private Redis and the web process; `env` is the web process's environment (REDIS_URL is added)."""
    setup = Setup(workdir, say)
    with _stopped_on_failure(setup):
        redis = setup.add("redis", start_redis(workdir / "redis"))
        setup.env = {**env, "REDIS_URL": redis.url}
        setup.add("web", start_web(workdir, setup.env, workers=workers, threads=threads))
    return setup


def jobs(workdir: Path, env: dict[str, str], *, worker_concurrency: int = 2, say: Say = _quiet) -> Setup:
    """Redis, the forge hosting `acme/tiny-ml`, the workspace, web, a worker and beat (`env`: the webhook secrets)."""
    setup = Setup(workdir, say)
    web_port = free_port()
    seed = workdir / "forge.toml"
    seed.write_text(
        mlrepo.forge_seed(
            mlrepo.write_files(workdir / "tiny-ml-src"), f"http://127.0.0.1:{web_port}", env["GITHUB_WEBHOOK_SECRET"]
        )
    )
    with _stopped_on_failure(setup):
        _side_by_side(
            setup,
            {
                "redis": lambda: start_redis(workdir / "redis"),
                "forge": lambda: start_forge(workdir, seed),
                "workspace": lambda: start_workspace(workdir),
            },
        )
        forge_url = setup.url("forge")
        setup.config_path.write_text(
            mlrepo.config_text(setup.url("workspace"), f"{forge_url}/{mlrepo.REPO}.git", forge_url=forge_url)
        )
        setup.env = {
            **env,
            "REDIS_URL": setup.url("redis"),
            "MLOPS_BOT_CONFIG": str(setup.config_path),
            "SANDBOX_DATABRICKS_TOKEN": WORKSPACE_TOKEN,
            "SANDBOX_GITHUB_TOKEN": mlrepo.TOKENS[mlrepo.BOT],
        }
        _side_by_side(
            setup,
            {
                "web": lambda: start_web(workdir, setup.env, port=web_port),
                "worker": lambda: start_worker(workdir, setup.env, concurrency=worker_concurrency),
                "beat": lambda: start_beat(workdir, setup.env),
            },
        )
    return setup


def whole_loop(
    workdir: Path, *, project: Project | None = None, worker_concurrency: int = 2, say: Say = _quiet
) -> Setup:
    """Every process of the loop around `project` (default: the demo's acme/churn-model): what the demo, `devstack
    up` and the end-to-end tests run. The MLflow webhook is installed apart (`install_registry_hook`), so a caller
    can act on the registry before deliveries start."""
    project = project or demo_project()
    setup = Setup(workdir, say)
    web_port = free_port()
    web_url = f"http://127.0.0.1:{web_port}"
    with _stopped_on_failure(setup):
        redis = setup.add("redis", start_redis(workdir))
        mlflow = setup.add("mlflow", start_mlflow(workdir))
        setup.add(
            "slack",
            start_slack(
                workdir,
                signing_secret=SECRETS["SLACK_SIGNING_SECRET"],
                interactions_url=f"{web_url}/webhooks/slack/interactions",
                commands_url=f"{web_url}/webhooks/slack/commands",
            ),
        )
        seed = workdir / "forge-seed.toml"
        seed.write_text(forge_seed(project, web_url))
        forge = setup.add("forge", start_forge(workdir, seed))
        # Unity Catalog is the registry: the workspace serves its API, and its jobs register there, each stage's
        # as its own service principal (devstack/principals.py), holding only the grants its registry names need
        setup.add(
            "workspace",
            start_workspace(
                workdir,
                mlflow_tracking_uri=mlflow.url,
                mlflow_registry_uri="databricks-uc",
                service_principals=TOKENS,
                oauth_secrets=OAUTH_SECRETS,
            ),
        )
        config = project.config_text(
            WEB_URL=web_url,
            FORGE_URL=forge.url,
            MLFLOW_URL=mlflow.url,
            SLACK_URL=setup.url("slack"),
            WORKSPACE_URL=setup.url("workspace"),
        )
        seed_grants(setup.url("workspace"), WORKSPACE_TOKEN, project.grants(config))
        setup.config_path.write_text(config)
        setup.env = {
            **SECRETS,
            "REDIS_URL": redis.url,
            "MLOPS_BOT_CONFIG": str(setup.config_path),
            "GITHUB_TOKEN": USERS["mlops-bot"],
            "DATABRICKS_TOKEN": WORKSPACE_TOKEN,
            "DATABRICKS_HOST": setup.url("workspace"),  # where MlflowClient(registry_uri="databricks-uc") goes
            "SLACK_BOT_TOKEN": SLACK_TOKEN,
            "MLFLOW_TRACKING_URI": mlflow.url,
        }
        setup.add("web", start_web(workdir, setup.env, port=web_port, workers=1, threads=4))
        setup.add("worker", start_worker(workdir, setup.env, concurrency=worker_concurrency))
        setup.add("beat", start_beat(workdir, setup.env))
    return setup


PERMISSIONS = {"alice": "write", "bob": "admin", "carol": "read", "mlops-bot": "write"}
# every team the config names as approvers (`@acme/fraud-leads`) has these members on the local forge
TEAM_MEMBERS = ("bob", "carol")


def forge_seed(project: Project, web_url: str) -> str:
    """The forge's seed: the demo's people and `project`'s repository (a git repository with its branches and
    history), its webhook pointing at the bot."""
    users = "".join(
        f'[users."{u}"]\ntoken = "{t}"\n' + ('type = "Bot"\n' if u == "mlops-bot" else f'email = "{u}@acme.test"\n')
        for u, t in USERS.items()
    )  # the email each person commits with is on their account: the forge links their commits to them, as GitHub does
    permissions = ", ".join(f"{json.dumps(u)} = {json.dumps(p)}" for u, p in PERMISSIONS.items())
    named = project.teams()
    teams = "".join(f"{json.dumps(t)} = {json.dumps(list(TEAM_MEMBERS))}\n" for t in named)
    # the bot reads a team's members only as a member of its organization (GitHub: "only available to authenticated
    # members of the team's organization"), as a GitHub App reads them with Members: read
    orgs = "".join(f'{json.dumps(org)} = ["mlops-bot"]\n' for org in sorted({t.partition("/")[0] for t in named}))
    return (
        users
        + (f"[teams]\n{teams}[org_members]\n{orgs}" if named else "")
        + textwrap.dedent(f"""\
        [[repos]]
        full_name = {json.dumps(project.repo)}
        default_branch = {json.dumps(project.default_branch)}
        init_from = {json.dumps(str(project.source))}
        permissions = {{ {permissions} }}
        [repos.webhook]
        url = "{web_url}/webhooks/github"
        secret = "{SECRETS["GITHUB_WEBHOOK_SECRET"]}"
        """)
    )


def install_registry_hook(setup: Setup) -> str:
    """The bot's webhook on the whole loop's MLflow server: "created", "updated" or "unchanged"."""
    from bot.mlflow_webhook import install_hook
    from core.config import load_config

    _hook, what = install_hook(load_config(setup.config_path), SECRETS["MLFLOW_WEBHOOK_SECRET"])
    return what
