"""config.toml → typed, validated settings. Loaded once, explicitly; secrets come from the environment.

Every error names the key (`workflows.train.tasks[1].depends_on`) and says what was expected,
so `mlops-bot check-config` is the place to find a typo, not a stack trace in a worker.
"""

from __future__ import annotations

import functools
import os
import re
import tomllib
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from core.commands import DEFAULT_PERMISSIONS, Permission
from core.compute import (
    JobCluster,
)
from core.guard_rails import GuardRails
from core.identity import DatabricksAccess, Environment
from core.stages import Model, Stage, check_stages, resolve_stages
from core.triggers import command_clash, command_workflows
from core.vocabulary import BOT
from core.workflows import Library, TaskSpec, Workflow

__all__ = [
    "ConfigError", "Environment", "JobCluster", "Library", "Settings", "TaskSpec", "Workflow", "load_config",
    "parse_config", "secret",
]  # fmt: skip

PERMISSION_RANK = {"none": 0, "read": 1, "triage": 2, "write": 3, "maintain": 4, "admin": 5}
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
    # the janitor removes a managed job the bot has not run for this many days (never run: since its creation; 0: never)
    job_ttl_days: int = Field(30, ge=0)
    # check-config's estimate of saved jobs (core/saved_jobs.py): a repository's branches that run something within
    # job_ttl_days
    active_branches_per_repo: int = Field(25, ge=0)


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
    # the repository's own pipeline (core/pipeline.py): its workflows and models, read from Git at each commit
    pipeline_file: str = ""  # e.g. "mlops-bot.toml"; empty: the central [workflows] and [models]
    guard_rails: GuardRails = GuardRails.model_validate({})  # model_validate: mypy runs without the pydantic plugin

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        parts = v.split("/")
        if len(parts) != 2 or not all(_NAME.fullmatch(p) for p in parts):
            raise ValueError("write it as owner/repo")
        return v

    @model_validator(mode="after")
    def _own_pipeline(self) -> Repo:
        if self.pipeline_file and not self.guard_rails.registry_names:
            raise ValueError(
                "pipeline_file: name the registry names its models may write in [repos.guard_rails] registry_names "
                '(e.g. ["dev.fraud.*", "staging.fraud.*", "prod.fraud.*"]): no repository writes another\'s models'
            )
        if self.pipeline_file and self.workflows:
            raise ValueError("workflows: a repository with a pipeline_file takes its workflows from that file")
        return self


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

    def commands(self, repo: str) -> dict[str, str]:
        """The one look-up of what a command runs: command → the workflow of `repo` it runs (core/triggers.py)."""
        configured = self.repo(repo)
        return command_workflows(self.repo_workflows(configured) if configured else self.workflows)

    def own_pipeline(self, full_name: str) -> Repo | None:
        """The repository's config when it keeps its pipeline in a file of its own (core/pipeline.py), else None.
        Asked of the central settings: a repository's own settings list its file's workflows as config.toml would."""
        configured = self.repo(full_name)
        return configured if configured is not None and configured.pipeline_file else None

    def repo(self, full_name: str) -> Repo | None:
        return next((r for r in self.repos if r.name.lower() == full_name.lower()), None)

    def repo_workflows(self, repo: Repo) -> dict[str, Workflow]:
        """The repository's workflows: those it names, else every one; none from the central config when it keeps
        them in a file of its own (core/pipeline.py gives it its file's, by name)."""
        names = repo.workflows or ([] if repo.pipeline_file else list(self.workflows))
        return {n: self.workflows[n] for n in names}

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

    def may_write_registry(self, name: str) -> bool:
        """A registry name some model writes: a stage's of [models], or one a repository's own pipeline file may
        name (its guard rails' `registry_names`; the worker finds which model, if any, from the file)."""
        return name in self.registry_names or any(
            fnmatchcase(name, glob) for r in self.repos if r.pipeline_file for glob in r.guard_rails.registry_names
        )

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


def problems(exc: ValidationError) -> list[str]:
    """One line per problem, each naming its key (`workflows.train.tasks[1].depends_on: ...`)."""
    lines = []
    for err in exc.errors():
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key (check the spelling; see config.toml for the known keys)"
        lines.append(f"{_location(err['loc'])}: {msg}")
    return lines


def parse_config(data: dict[str, Any], source: str = "config") -> Settings:
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        lines = [f"{source}: {exc.error_count()} problem(s)", *(f"  {line}" for line in problems(exc))]
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
