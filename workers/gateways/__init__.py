"""The four gateways' contracts: the plain values they return and the `Protocol` each implements.

    workspace.Workspace  Databricks (databricks-sdk)     forge.Forge     GitHub (PyGithub)
    registry.Registry    MLflow (MlflowClient)           chat.Slack      Slack (slack_sdk)

Gateways return these frozen dataclasses (never SDK objects) and raise only `workers.errors`
exceptions. The in-memory fakes in `tests/fakes.py` implement the same protocols. Nothing here
imports an SDK.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from core.vocabulary import TERMINAL


@dataclass(frozen=True)
class Pull:
    number: int
    state: str
    author: str
    head_sha: str
    head_ref: str
    head_repo: str
    head_clone_url: str
    fork: bool
    html_url: str


@dataclass(frozen=True)
class GitIdentity:
    """A commit's author or committer: the GitHub account GitHub linked it to (by its email), else none — then
    only what git recorded, which whoever made the commit chose."""

    login: str = ""  # "" when GitHub linked the commit to no account
    kind: str = ""  # the account's `type`: User | Bot | Organization ("" when unlinked)
    name: str = ""
    email: str = ""


@dataclass(frozen=True)
class PullCommit:
    """One commit of a pull request, as GitHub's PR commits listing gives it."""

    sha: str
    author: GitIdentity
    committer: GitIdentity
    message: str


@dataclass(frozen=True)
class Listing:
    """One page of a GitHub listing and the ETag it came with. `changed` False: GitHub answered `304 Not Modified` to
    the ETag sent (the page is what it was when that ETag was given; `items` is empty)."""

    items: list[dict]
    etag: str = ""
    changed: bool = True


@dataclass(frozen=True)
class JobRef:
    job_id: int
    name: str
    tags: dict[str, str]
    created_time: int = 0


@dataclass(frozen=True)
class TaskRun:
    key: str
    run_id: int
    state: str  # result state when finished, else life-cycle state
    start_time: int = 0
    end_time: int = 0
    kind: str = ""  # the task type: notebook_task, spark_python_task, python_wheel_task, …


@dataclass(frozen=True)
class RunInfo:
    run_id: int
    job_id: int
    life_cycle: str = "PENDING"
    result_state: str = ""
    message: str = ""
    run_page_url: str = ""
    start_time: int = 0
    end_time: int = 0
    used_commit: str = ""
    tasks: tuple[TaskRun, ...] = ()

    @property
    def terminal(self) -> bool:
        return self.life_cycle in TERMINAL


@dataclass(frozen=True)
class TaskOutput:
    """runs/get-output: `logs` for script and wheel tasks (never for notebooks), `result` for a notebook
    (its `dbutils.notebook.exit` value), `error` for any task that failed."""

    logs: str = ""
    error: str = ""
    result: str = ""


@dataclass(frozen=True)
class Version:
    """A model version. From a search (`recent_versions`) Unity Catalog gives no tags and no aliases: read
    those with `version`. `status`: READY, PENDING_REGISTRATION or FAILED_REGISTRATION."""

    model: str
    version: str
    run_id: str
    tags: dict[str, str] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()
    stage: str = ""
    status: str = "READY"
    source: str = ""
    created: int = 0  # ms since the epoch
    # who the registry says created it (MLflow's `user_id`; Unity Catalog's `created_by`: the principal whose token
    # made the call, never what the caller sent); "" from a registry that records no creator (MLflow OSS)
    created_by: str = ""

    @property
    def number(self) -> int:
        return int(self.version) if self.version.isdigit() else 0


class WorkspaceGateway(Protocol):
    name: str

    def find_job(self, name: str) -> JobRef | None: ...
    def find_jobs(self, name: str) -> list[JobRef]: ...
    def create_job(self, settings: dict) -> int: ...
    def reset_job(self, job_id: int, settings: dict) -> None: ...
    def delete_job(self, job_id: int) -> bool: ...
    def managed_jobs(self, prefix: str, tag: str) -> list[JobRef]: ...
    def run_now(self, job_id: int, parameters: dict[str, str], token: str) -> int: ...
    def active_runs(self, job_id: int) -> list[int]: ...
    def cancel_run(self, run_id: int) -> None: ...
    def get_run(self, run_id: int) -> RunInfo: ...
    def task_output(self, task_run_id: int) -> TaskOutput: ...
    def checkout_repo(self, path: str, url: str, provider: str, branch: str) -> int: ...
    def delete_repo(self, path: str) -> bool: ...


class ForgeGateway(Protocol):
    def pull(self, repo: str, number: int) -> Pull: ...
    def open_pulls_with_head(self, repo: str, sha: str) -> list[Pull]: ...
    def pull_commits(self, repo: str, number: int) -> list[PullCommit]: ...
    def permission(self, repo: str, user: str) -> str: ...
    def file_at(self, repo: str, path: str, ref: str) -> str | None: ...
    def commit_parents(self, repo: str, sha: str) -> list[str]: ...
    def in_team(self, org: str, team_slug: str, login: str) -> bool: ...
    def branch_names(self, repo: str) -> set[str]: ...
    def open_pull_numbers(self, repo: str) -> set[int]: ...
    def comments_since(self, repo: str, since: str, page: int = 1, etag: str = "") -> Listing: ...
    def app_deliveries(self, cursor: str = "", per_page: int = 100) -> tuple[list[dict], str]: ...
    def app_events(self) -> list[str]: ...
    def redeliver(self, delivery_id: int) -> None: ...
    def marked_comments(self, repo: str, pr: int) -> dict[str, int]: ...
    def upsert_comment(
        self, repo: str, pr: int, kind: str, key: str, body: str, known_id: int | None = None, absent: bool = False
    ) -> int: ...
    def set_status(
        self, repo: str, sha: str, context: str, state: str, description: str, target_url: str = "",
        check_run_id: int | None = None,
    ) -> int | None: ...  # fmt: skip
    def create_deployment(self, repo: str, sha: str, environment: str, description: str, payload: dict) -> int: ...
    def set_deployment_status(
        self,
        repo: str,
        deployment_id: int,
        state: str,
        description: str,
        log_url: str = "",
        environment_url: str = "",
    ) -> None: ...


class RegistryGateway(Protocol):
    """MLflow OSS, the Databricks workspace registry (legacy, stages) or Unity Catalog (`databricks-uc`:
    three-level names, aliases and tags, no stages, no webhooks: polled). `creators`: the registry records, itself,
    who created a version (Databricks' two do; an MLflow server does not)."""

    creators: bool

    def run_metrics(self, run_id: str) -> dict[str, float]: ...
    def run_url(self, run_id: str) -> str: ...
    def version_url(self, model: str, version: str) -> str: ...
    def run_tags(self, run_id: str) -> dict[str, str]: ...
    def version(self, model: str, version: str) -> Version: ...
    def versions(self, model: str) -> list[Version]: ...
    def champion(self, model: str, alias: str) -> dict | None: ...
    def by_alias(self, model: str, alias: str) -> Version | None: ...
    def set_tags(self, model: str, version: str, tags: dict[str, str]) -> None: ...
    def set_alias(self, model: str, alias: str, version: str) -> None: ...
    def transition_stage(self, model: str, version: str, stage: str) -> None: ...
    def recent_versions(self, model: str, newer_than: int, max_pages: int = 5) -> list[Version]: ...
    def model_aliases(self, model: str) -> dict[str, str]: ...
    def listed_models(self, schema: str) -> dict[str, int]: ...
    def copy_version(self, src_name: str, version: str, dst_name: str) -> Version: ...


class Scheduler(Protocol):
    def follow(self, environment: str, run_id: int, polls: int = 0, countdown: float | None = None) -> None: ...


class SlackGateway(Protocol):
    """`key`: what tags a post in its message metadata, so `find_post` finds it again (Slack takes no idempotency
    key); `find_post` → (channel, ts) of the bot's own message with that key since `oldest`, or None."""

    def request_approval(self, model: str, version: str, text: str, key: str = "") -> tuple[str, str]: ...
    def post(self, text: str, thread_ts: str = "", channel: str = "", key: str = "") -> tuple[str, str]: ...
    def find_post(
        self, key: str, channel: str = "", thread_ts: str = "", oldest: float = 0.0
    ) -> tuple[str, str] | None: ...
    def close_request(self, channel: str, ts: str, text: str) -> None: ...
    def respond(self, response_url: str, text: str, in_channel: bool = False, key: str = "") -> None: ...
