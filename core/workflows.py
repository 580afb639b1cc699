"""`[workflows.<name>]`: a multi-task Databricks job, as config.toml (or a repository's pipeline file) writes it.

Every error names what it expected: `mlops-bot check-config` finds a typo, not a worker's stack trace.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

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
from core.triggers import Schedule, branch_matches, check_command, normalise_run_on
from core.vocabulary import PLACEHOLDER, PLACEHOLDERS

TaskType = Literal["spark_python_task", "notebook_task", "python_wheel_task"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


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
