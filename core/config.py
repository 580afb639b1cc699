"""config.toml → typed, validated settings. Loaded once, explicitly; secrets come from the environment.

Every error names the key (`workflows.train.tasks[1].depends_on`) and says what was expected,
so `mlops-bot check-config` is the place to find a typo, not a stack trace in a worker.
"""

from __future__ import annotations

import functools
import os
import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from core.commands import DEFAULT_PERMISSIONS, Permission
from core.compute import (
    KEY,
    KEY_HELP,
    MAX_CONCURRENT_RUNS,
    ComputeKind,
    JobCluster,
    ServerlessEnvironment,
    check_acyclic,
    check_compute,
    check_tags,
    check_verdict,
)
from core.identity import DatabricksAccess, Environment
from core.stages import Model, Stage, check_stages, resolve_stages
from core.triggers import Schedule, branch_matches, check_command, command_clash, command_workflows, normalise_run_on
from core.vocabulary import BOT, PLACEHOLDER, PLACEHOLDERS

__all__ = ["ConfigError", "Environment", "JobCluster", "Settings", "load_config", "parse_config", "secret"]

PERMISSION_RANK = {"none": 0, "read": 1, "triage": 2, "write": 3, "maintain": 4, "admin": 5}
TaskType = Literal["spark_python_task", "notebook_task", "python_wheel_task"]
_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


class ConfigError(ValueError):
    """config.toml is missing, not TOML, or does not match the schema; the message names each key."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BotSettings(Strict):
    login: str = BOT  # the bot's own GitHub login: its comments are never commands
    job_prefix: str = BOT
    max_body_bytes: int = Field(25 * 1024 * 1024, gt=0)  # GitHub caps webhook payloads at 25 MB
    dedupe_ttl_seconds: int = Field(7 * 24 * 3600, gt=0)
    public_url: str = "http://127.0.0.1:8000"
    job_ttl_days: int = Field(30, ge=0)  # the janitor removes managed jobs older than this (0: never)


class GitHubSettings(Strict):
    base_url: str = "https://api.github.com"
    token_env: str = "GITHUB_TOKEN"
    app_id: int | None = None
    app_private_key_env: str = "GITHUB_APP_PRIVATE_KEY"
    installation_id: int | None = None
    permission_cache_seconds: int = Field(60, ge=0)
    seconds_between_requests: float = Field(0.0, ge=0)  # PyGithub's default throttle is 0.25 s
    seconds_between_writes: float = Field(0.5, ge=0)  # GitHub asks for spacing between content writes
    # App auth only: failed deliveries of the App's webhook redelivered per pass (workers/delivery/redelivery.py)
    redeliver_per_pass: int = Field(50, ge=0)


UC_REGISTRY = "databricks-uc"


class MlflowSettings(Strict):
    tracking_uri: str = "http://127.0.0.1:5000"
    # "" = MLflow's own default: "databricks-uc" (Unity Catalog) for a Databricks tracking URI, else the tracking URI;
    # "databricks" = the legacy workspace registry
    registry_uri: str = ""
    champion_alias: str = "champion"
    webhook_url: str = ""  # where the MLflow server reaches the bot; defaults to bot.public_url + /webhooks/mlflow
    promote_stage: str = ""  # workspace registries: also transition the approved version to this stage
    # registries without webhooks: celery beat polls versions every minute; unset = true on Unity Catalog
    poll: bool = False

    @model_validator(mode="before")
    @classmethod
    def _registry_default(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        tracking = str(data.get("tracking_uri", "http://127.0.0.1:5000"))
        on_databricks = tracking.split(":", 1)[0].lower() == "databricks"
        registry = data.get("registry_uri") or (UC_REGISTRY if on_databricks else tracking)
        polled = {"poll": True} if registry == UC_REGISTRY and "poll" not in data else {}  # UC sends no webhooks
        return {**data, "registry_uri": registry, **polled}

    @model_validator(mode="after")
    def _no_stages_on_uc(self) -> MlflowSettings:
        if self.uc and self.promote_stage:
            raise ValueError("promote_stage: Unity Catalog has no stages (use aliases); leave it unset")
        return self

    @property
    def uc(self) -> bool:
        return self.registry_uri == UC_REGISTRY


class SlackSettings(Strict):
    bot_token_env: str = "SLACK_BOT_TOKEN"
    channel: str = ""
    base_url: str = "https://slack.com/api/"
    users: dict[str, str] = {}  # Slack user id -> GitHub login


class Library(Strict):
    pypi: str | None = None
    whl: str | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> Library:
        if (self.pypi is None) == (self.whl is None):
            raise ValueError("give exactly one of `pypi` (a requirement) or `whl` (a path)")
        return self


class TaskSpec(Strict):
    key: str
    type: TaskType = "spark_python_task"
    file: str = ""  # spark_python_task: python file; notebook_task: notebook path
    package: str = ""  # python_wheel_task
    entry_point: str = ""  # python_wheel_task
    parameters: list[str] = []
    depends_on: list[str] = []
    cluster: str = ""  # compute = "job_clusters": the key of one of the workflow's job_clusters
    environment: str = ""  # compute = "serverless": the key of one of the workflow's environments
    libraries: list[Library] = []
    timeout_seconds: int = Field(0, ge=0)

    @field_validator("key")
    @classmethod
    def _key(cls, v: str) -> str:
        if not KEY.match(v):
            raise ValueError(KEY_HELP)
        return v

    @field_validator("parameters")
    @classmethod
    def _placeholders(cls, v: list[str]) -> list[str]:
        for p in v:
            for name in PLACEHOLDER.findall(p):
                if name not in PLACEHOLDERS:
                    raise ValueError(f"unknown placeholder {{{name}}}; known: {', '.join(PLACEHOLDERS)}")
        return v

    @model_validator(mode="after")
    def _shape(self) -> TaskSpec:
        if self.type == "python_wheel_task":
            if not (self.package and self.entry_point):
                raise ValueError("python_wheel_task needs `package` and `entry_point`")
        elif not self.file:
            raise ValueError(f"{self.type} needs `file`")
        return self


class Workflow(Strict):
    description: str = ""
    environment: str = "dev"
    # events; a push filtered to branches is written { event = "push", branches = ["main", "release/*"] }
    run_on: list[Literal["push", "pull_request", "model_version", "command"]] = ["command"]
    push_branches: list[str] = []  # from run_on's push filter: empty = every branch
    schedule: Schedule | None = None  # on the default branch's job: paused in dev, running in staging and prod
    datasets: list[str] = ["toy"]
    default_dataset: str = ""
    suites: list[str] = []  # /test <suite>
    default_suite: str = ""  # what `{suite}` is when /test names none
    params_allowed: list[str] = []
    max_concurrent_runs: int = Field(1, ge=1, le=MAX_CONCURRENT_RUNS)
    timeout_seconds: int = Field(3600, ge=0)
    on_conflict: Literal["supersede", "refuse"] = "supersede"
    cancel_superseded: bool = True
    compute: ComputeKind = "serverless"
    environments: dict[str, ServerlessEnvironment] = {}  # serverless: environment key -> version, dependencies
    job_clusters: dict[str, JobCluster] = {}  # job_clusters: cluster key -> new_cluster
    existing_cluster_id: str = ""  # existing_cluster: an all-purpose cluster
    libraries: list[Library] = []  # clusters only: serverless takes environments.<key>.dependencies
    tags: dict[str, str] = {}  # job tags, besides the bot's own
    tasks: Annotated[list[TaskSpec], Field(min_length=1)]
    command: Annotated[str | None, AfterValidator(check_command)] = None  # /train runs it: core/triggers.py
    verdict_task: str = ""  # a validate workflow's verdict: this task's last line only (default: the last task)

    @model_validator(mode="before")
    @classmethod
    def _run_on(cls, data: Any) -> Any:
        if not isinstance(data, dict) or "run_on" not in data:
            return data
        events, branches = normalise_run_on(data["run_on"])
        return {**data, "run_on": events, "push_branches": branches}

    @field_validator("tags")
    @classmethod
    def _tags(cls, v: dict[str, str]) -> dict[str, str]:
        check_tags(v)
        return v

    def runs_on_push_to(self, branch: str) -> bool:
        return "push" in self.run_on and branch_matches(branch, self.push_branches)

    @model_validator(mode="after")
    def _graph(self) -> Workflow:
        check_compute(self)
        keys = [t.key for t in self.tasks]
        if len(set(keys)) != len(keys):
            raise ValueError(f"task keys must be unique, got {keys}")
        for t in self.tasks:
            for d in t.depends_on:
                if d not in keys:
                    raise ValueError(f"task {t.key!r} depends on unknown task {d!r}")
            if t.cluster and t.cluster not in self.job_clusters:
                raise ValueError(f"task {t.key!r} uses cluster {t.cluster!r}, not in job_clusters")
        check_acyclic({t.key: t.depends_on for t in self.tasks})
        check_verdict(self)
        if self.default_dataset and self.default_dataset not in self.datasets:
            raise ValueError(f"default_dataset {self.default_dataset!r} is not in datasets")
        return self

    @property
    def dataset(self) -> str:
        return self.default_dataset or self.datasets[0]


class Repo(Strict):
    name: str  # owner/repo
    default_branch: str = "main"  # deploys, and validation of versions without lineage, run from here
    code_source: Literal["git", "repos"] = "git"
    git_url: str = ""  # default: https://github.com/<name>.git
    git_provider: str = "gitHub"
    pin: Literal["commit", "branch"] = "commit"
    repos_folder: str = BOT
    workflows: list[str] = []  # empty: every workflow
    fork_policy: Literal["ok-to-test", "never"] = "ok-to-test"
    run_as_service_principal: str = ""  # overrides the environment's: this repository's jobs run as it

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        parts = v.split("/")
        if len(parts) != 2 or not all(_NAME.fullmatch(p) for p in parts):
            raise ValueError("write it as owner/repo")
        return v


def _permission_key(command: str) -> str:
    return command.replace("-", "_")  # config.toml has always spelt `/ok-to-test` as ok_to_test


_PERMISSION_KEYS = {_permission_key(name): name for name in DEFAULT_PERMISSIONS}


def _a_command(key: str) -> str:
    if key not in _PERMISSION_KEYS:
        raise ValueError(f"unknown key: no command is named so (known: {', '.join(_PERMISSION_KEYS)})")
    return key


class Permissions(BaseModel):
    """Minimum repository permission per command (`ok_to_test = "write"`; each default is the command's spec in
    core/commands.py); `train_full_users` narrows `/train full` further."""

    model_config = ConfigDict(extra="allow", frozen=True)  # the commands' keys, checked by `_a_command`
    __pydantic_extra__: dict[Annotated[str, AfterValidator(_a_command)], Permission] = Field(init=False)
    train_full_users: list[str] = []

    def needed(self, command: str) -> Permission:
        """The least role `/command` (or a gated form: `train-full`) needs: config.toml's, else its spec's."""
        written: dict[str, Permission] = self.model_extra or {}
        return written.get(_permission_key(command)) or DEFAULT_PERMISSIONS[command]


class Settings(Strict):
    # model_validate({}), not BotSettings(): mypy runs without the pydantic plugin
    bot: BotSettings = BotSettings.model_validate({})
    github: GitHubSettings = GitHubSettings.model_validate({})
    mlflow: MlflowSettings = MlflowSettings.model_validate({})
    slack: SlackSettings = SlackSettings.model_validate({})
    environments: dict[str, Environment] = {}
    databricks: DatabricksAccess = DatabricksAccess()
    workflows: dict[str, Workflow] = {}
    repos: list[Repo] = []
    permissions: Permissions = Permissions()
    models: dict[str, Model] = {}

    @model_validator(mode="after")
    def _references(self) -> Settings:
        for env in self.environments:
            if not _NAME.fullmatch(env) or len(env) > 100:
                raise ValueError(f"environments.{env}: an environment name is letters, digits, '_', '-' and '.'")
        for name, wf in self.workflows.items():
            if not _NAME.fullmatch(name) or len(name) > 100:
                raise ValueError(
                    f"workflows.{name}: a workflow name is letters, digits, '_', '-' and '.' (at most 100)"
                )
            if wf.environment not in self.environments:
                raise ValueError(f"workflows.{name}.environment: {wf.environment!r} is not in [environments]")
        for i, repo in enumerate(self.repos):
            for wf_name in repo.workflows:
                if wf_name not in self.workflows:
                    raise ValueError(f"repos[{i}].workflows: {wf_name!r} is not in [workflows]")
            if clash := command_clash(self.repo_workflows(repo)):
                raise ValueError(f"repos[{i}] ({repo.name}): {clash}")
        if not self.repos and (clash := command_clash(self.workflows)):
            raise ValueError(clash)
        return self

    def repo(self, full_name: str) -> Repo | None:
        return next((r for r in self.repos if r.name.lower() == full_name.lower()), None)

    def repo_workflows(self, repo: Repo) -> dict[str, Workflow]:
        names = repo.workflows or list(self.workflows)
        return {n: self.workflows[n] for n in names}

    def commands(self, repo: str) -> dict[str, str]:
        """The one look-up of what a command runs: command → the workflow of `repo` it runs (core/triggers.py)."""
        configured = self.repo(repo)
        return command_workflows(self.repo_workflows(configured) if configured else self.workflows)

    @model_validator(mode="after")
    def _stages(self) -> Settings:
        commands = {m: self.commands(spec.repo) for m, spec in self.models.items()}
        check_stages(
            self.models, uc=self.mlflow.uc, environments=self.environments, workflows=self.workflows, commands=commands
        )
        return self

    def models_for_repo(self, full_name: str) -> list[str]:
        return [m for m, spec in self.models.items() if spec.repo.lower() == full_name.lower()]

    def stages(self, model: str) -> list[Stage]:
        """The model's release train, every default filled in (dev → staging → prod when none are written)."""
        spec = self.models[model]
        return resolve_stages(
            model, spec, uc=self.mlflow.uc, environments=self.environments, workflows=self.workflows,
            commands=self.commands(spec.repo),
        )  # fmt: skip

    @functools.cached_property
    def registry_names(self) -> frozenset[str]:
        """Every stage's registry name (a registry event about any other model is not the bot's)."""
        return frozenset(s.registry_name for m in self.models for s in self.stages(m))

    def development_environments(self) -> set[str]:
        """Where pull requests train (every model's pull_request stages): schedules are paused there."""
        envs = {s.environment for m in self.models for s in self.stages(m) if s.trigger == "pull_request"}
        return envs or {"dev"}


def _location(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif str(part).startswith(("function-", "literal[")):
            continue
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def parse_config(data: dict[str, Any], source: str = "config") -> Settings:
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        lines = [f"{source}: {exc.error_count()} problem(s)"]
        for err in exc.errors():
            msg = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                msg = "unknown key (check the spelling; see config.toml for the known keys)"
            lines.append(f"  {_location(err['loc'])}: {msg}")
        raise ConfigError("\n".join(lines)) from None


def load_config(path: str | os.PathLike[str] | None = None) -> Settings:
    """Read and validate config.toml (MLOPS_BOT_CONFIG, default ./config.toml)."""
    path = Path(path or os.environ.get("MLOPS_BOT_CONFIG", "config.toml"))
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file (set MLOPS_BOT_CONFIG or pass a path)") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    return parse_config(data, str(path))


def secret(name: str) -> str | None:
    """A secret from the environment, or None when unset or empty. Never logged."""
    return os.environ.get(name) or None
