"""A repository's own pipeline: its workflows and models in a TOML file of the repository, read from Git at an
exact commit and kept within the guard rails the central config sets for it.

    schema_version = 1
    [workflows.fit]          as config.toml's [workflows.<name>]
    [models.card_fraud]      as config.toml's [models.<name>], without `repo` (it is the file's repository)

The central config names the file (`[[repos]] pipeline_file`) and keeps what belongs to the platform: the
environments and who runs in each, permissions, and `[repos.guard_rails]` (core/config.py `GuardRails`). Which
commit's file decides what is workers/core/pipelines.py's: a branch's jobs and a pull request's runs follow the
branch head's file; staging training, validation, approval and prod follow the default branch's file at the
release's merge commit, so a pull request cannot loosen what decides its own release.
"""

from __future__ import annotations

import tomllib
from fnmatch import fnmatchcase
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from core.config import Repo, Settings, Workflow, problems
from core.guard_rails import GuardRails
from core.stages import Model

SCHEMA_VERSION = 1


class PipelineError(ValueError):
    """The file is not TOML, does not match the schema, or leaves its guard rails: one line per problem."""

    def __init__(self, source: str, lines: list[str]):
        self.source, self.lines = source, lines
        super().__init__(f"{source}: " + "; ".join(lines))


class PipelineFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    schema_version: int
    workflows: dict[str, Workflow] = {}
    models: dict[str, Model] = {}

    @field_validator("schema_version")
    @classmethod
    def _version(cls, v: int) -> int:
        if v != SCHEMA_VERSION:
            raise ValueError(f"this bot reads schema_version = {SCHEMA_VERSION}, not {v}")
        return v

    @field_validator("models")
    @classmethod
    def _no_repo(cls, v: dict[str, Model]) -> dict[str, Model]:
        for name, model in v.items():
            if model.repo:
                raise ValueError(f"{name}.repo: a pipeline file's models are its own repository's; leave `repo` out")
        return v


def parse_pipeline(text: str, source: str) -> PipelineFile:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PipelineError(source, [f"not valid TOML: {exc}"]) from None
    if "schema_version" not in data:
        raise PipelineError(source, [f"schema_version: missing; write `schema_version = {SCHEMA_VERSION}` first"])
    try:
        return PipelineFile.model_validate(data)
    except ValidationError as exc:
        raise PipelineError(source, problems(exc)) from None


def with_pipeline(settings: Settings, repo: Repo, file: PipelineFile, source: str) -> Settings:
    """The settings a task of `repo` works with: the central ones, with the file's workflows and models as the
    repository's only ones (they refer to the central environments; the central checks run on them again)."""
    # the repository as if config.toml listed the file's workflows: that is what these settings are
    own = repo.model_copy(update={"workflows": list(file.workflows), "pipeline_file": ""})
    data: dict[str, Any] = {name: getattr(settings, name) for name in Settings.model_fields}
    data.update(
        workflows=file.workflows,
        models={name: m.model_copy(update={"repo": repo.name}) for name, m in file.models.items()},
        repos=[own],
    )
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        raise PipelineError(source, problems(exc)) from None


def load_pipeline(settings: Settings, repo: Repo, text: str, source: str) -> Settings:
    """`text` (the file at some commit) as the repository's effective settings, or PipelineError naming every
    problem: schema first, then each key outside the guard rails."""
    file = parse_pipeline(text, source)
    effective = with_pipeline(settings, repo, file, source)
    refused = refusals(effective, repo.guard_rails)
    if refused:
        raise PipelineError(source, refused)
    return effective


def _outside(key: str, value: object, rail: str, allowed: list[str] | str) -> str:
    shown = ", ".join(allowed) if isinstance(allowed, list) else allowed
    return f"{key} = {value!r}: outside the guard rail `{rail}` (allowed: {shown})"


def refusals(effective: Settings, rails: GuardRails) -> list[str]:
    """Every key of the repository's workflows and models that its guard rails refuse, each naming key and rail."""
    out: list[str] = []
    for name, wf in effective.workflows.items():
        out += _workflow_refusals(f"workflows.{name}", wf, rails)
    for name in effective.models:
        out += _model_refusals(name, effective, rails)
    return out


def _workflow_refusals(key: str, wf: Workflow, rails: GuardRails) -> list[str]:
    out = []
    if rails.environments and wf.environment not in rails.environments:
        out.append(_outside(f"{key}.environment", wf.environment, "environments", rails.environments))
    if wf.compute not in rails.compute:
        out.append(_outside(f"{key}.compute", wf.compute, "compute", list(rails.compute)))
    for cluster_key, cluster in wf.job_clusters.items():
        where = f"{key}.job_clusters.{cluster_key}"
        extra = cluster.model_extra or {}
        if rails.node_types:
            for field in ("node_type_id", "driver_node_type_id"):
                value = cluster.node_type_id if field == "node_type_id" else extra.get(field, "")
                if value and value not in rails.node_types:
                    out.append(_outside(f"{where}.{field}", value, "node_types", rails.node_types))
            if not cluster.node_type_id:
                out.append(f"{where}.node_type_id: missing; the guard rail `node_types` needs it named")
        workers = cluster.autoscale.max_workers if cluster.autoscale else cluster.num_workers
        if rails.max_workers is not None and (workers or 0) > rails.max_workers:
            field = "autoscale.max_workers" if cluster.autoscale else "num_workers"
            out.append(_outside(f"{where}.{field}", workers, "max_workers", f"at most {rails.max_workers}"))
    if rails.datasets:
        for dataset in wf.datasets:
            if dataset not in rails.datasets:
                out.append(_outside(f"{key}.datasets", dataset, "datasets", rails.datasets))
    if rails.params:
        for param in wf.params_allowed:
            if param not in rails.params:
                out.append(_outside(f"{key}.params_allowed", param, "params", rails.params))
    if rails.max_timeout_seconds is not None:
        most = f"1 to {rails.max_timeout_seconds} seconds"
        if not 0 < wf.timeout_seconds <= rails.max_timeout_seconds:
            out.append(_outside(f"{key}.timeout_seconds", wf.timeout_seconds, "max_timeout_seconds", most))
        for i, task in enumerate(wf.tasks):
            if task.timeout_seconds > rails.max_timeout_seconds:
                where = f"{key}.tasks[{i}].timeout_seconds"
                out.append(_outside(where, task.timeout_seconds, "max_timeout_seconds", most))
    return out


def _model_refusals(name: str, effective: Settings, rails: GuardRails) -> list[str]:
    out = []
    model = effective.models[name]
    resolved = effective.stages(name)  # every default filled in, as the release train will see them
    for i, stage in enumerate(resolved):
        key = f"models.{name}.stages[{i}]" if model.stages else f"models.{name} ({stage.name} stage)"
        if rails.environments and stage.environment not in rails.environments:
            out.append(_outside(f"{key}.environment", stage.environment, "environments", rails.environments))
        if not any(fnmatchcase(stage.registry_name, glob) for glob in rails.registry_names):
            out.append(_outside(f"{key}.registry_name", stage.registry_name, "registry_names", rails.registry_names))
        if rails.datasets and stage.dataset and stage.dataset not in rails.datasets:
            out.append(_outside(f"{key}.dataset", stage.dataset, "datasets", rails.datasets))
        if stage.trigger != "approval":
            continue
        needed = stage.required_approvals or model.required_approvals
        if needed < rails.min_approvals:
            out.append(
                _outside(f"{key}.required_approvals", needed, "min_approvals", f"at least {rails.min_approvals}")
            )
        if rails.approvers:
            for approver in stage.approvers if stage.approvers is not None else model.approvers:
                if approver not in rails.approvers:
                    out.append(_outside(f"{key}.approvers", approver, "approvers", rails.approvers))
    return out
