"""Where a workflow's tasks run on Databricks, and the Jobs API's limits, checked when config is loaded.

Every task of a job needs compute (the Jobs API refuses a task without it: "One of
job_cluster_key, new_cluster, or existing_cluster_id must be specified"; on serverless "An
environment is required"). A workflow chooses one kind with `compute`:

- ``serverless`` (the default): job-level ``environments`` (an environment version and pip
  dependencies); Python script and wheel tasks name one with ``environment_key``, notebooks may go
  without (they then use the notebook's own environment).
- ``job_clusters``: clusters created for the run (``new_cluster``, any field of the SDK's
  ``compute.ClusterSpec``); each task names one.
- ``existing_cluster``: an all-purpose cluster, ``existing_cluster_id``.

The web process loads config and never imports databricks-sdk, so the few names the SDK defines
are copied here; tests/unit/test_compute_config.py holds them equal to the SDK's.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from core.vocabulary import FINGERPRINT_TAG, MANAGED_TAG

ComputeKind = Literal["serverless", "job_clusters", "existing_cluster"]
# Jobs API reference (jobs/create): task_key "string [ 1 .. 100 ] characters ^[\w\-\_]+$"; job_cluster_key alike.
KEY = re.compile(r"^[\w-]{1,100}$", re.ASCII)
KEY_HELP = "use 1 to 100 letters, digits, '_' or '-' (Databricks' key pattern ^[\\w-]{1,100}$)"
# JobParameterDefinition.name: "May only contain alphanumeric characters, _, -, and ."
PARAMETER_NAME = re.compile(r"\A[A-Za-z0-9_.-]+\Z")
MAX_TAGS = 25  # JobSettings.tags: "A maximum of 25 tags can be added to the job."
MAX_CONCURRENT_RUNS = 1000  # JobSettings.max_concurrent_runs: "This value cannot exceed 1000."
BOT_JOB_TAGS = (MANAGED_TAG, "repo", "branch", "workflow", "sha", FINGERPRINT_TAG)  # workers.jobs.spec.job_tags
NEEDS_ENVIRONMENT = ("spark_python_task", "python_wheel_task")  # Task.environment_key docstring
DEFAULT_ENVIRONMENT = "default"

CLUSTER_SPEC_FIELDS = frozenset(
    """apply_policy_default_values autoscale autotermination_minutes aws_attributes azure_attributes
    cluster_log_conf cluster_name custom_tags data_security_mode dependency_mode docker_image
    driver_instance_pool_id driver_node_type_flexibility driver_node_type_id enable_elastic_disk
    enable_local_disk_encryption gcp_attributes init_scripts instance_pool_id is_single_node kind
    node_type_id num_workers policy_id remote_disk_throughput runtime_engine single_user_name spark_conf
    spark_env_vars spark_version ssh_public_keys total_initial_remote_disk_size use_ml_runtime
    worker_node_type_flexibility workload_type""".split()
)
DataSecurityMode = Literal[
    "DATA_SECURITY_MODE_AUTO",
    "DATA_SECURITY_MODE_DEDICATED",
    "DATA_SECURITY_MODE_STANDARD",
    "LEGACY_PASSTHROUGH",
    "LEGACY_SINGLE_USER",
    "LEGACY_SINGLE_USER_STANDARD",
    "LEGACY_TABLE_ACL",
    "NONE",
    "SINGLE_USER",
    "USER_ISOLATION",
]


class AutoScale(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    min_workers: int = Field(ge=0)
    max_workers: int = Field(ge=1)

    @model_validator(mode="after")
    def _range(self) -> AutoScale:
        if self.max_workers <= self.min_workers:  # AutoScale docstring: "strictly greater than min_workers"
            raise ValueError("max_workers must be greater than min_workers")
        return self


class JobCluster(BaseModel):
    """A `new_cluster`: the usual fields typed here, any other `compute.ClusterSpec` field passed through."""

    model_config = ConfigDict(extra="allow", frozen=True)
    spark_version: str = "15.4.x-cpu-ml-scala2.12"
    node_type_id: str = ""
    num_workers: int | None = Field(None, ge=0)
    autoscale: AutoScale | None = None
    data_security_mode: DataSecurityMode | None = None
    policy_id: str = ""
    instance_pool_id: str = ""
    spark_conf: dict[str, str] = {}
    custom_tags: dict[str, str] = {}

    @model_validator(mode="after")
    def _shape(self) -> JobCluster:
        unknown = sorted(set(self.model_extra or {}) - CLUSTER_SPEC_FIELDS)
        if unknown:
            raise ValueError(f"{unknown[0]!r} is not a new_cluster field (see databricks-sdk compute.ClusterSpec)")
        if self.num_workers is not None and self.autoscale is not None:
            raise ValueError("give `num_workers` or `autoscale`, not both")
        if self.num_workers is None and self.autoscale is None and not self.policy_id:
            raise ValueError("give `num_workers` (0 for a single node) or `autoscale`")
        if not (self.node_type_id or self.instance_pool_id or self.policy_id):
            raise ValueError("give `node_type_id`, `instance_pool_id` or a `policy_id` that sets the node type")
        return self

    def new_cluster(self) -> dict[str, Any]:
        """The cluster as the Jobs API's `new_cluster` object: unset fields left out."""
        spec = self.model_dump(exclude_none=True)
        return {k: v for k, v in spec.items() if v not in ("", {}, [])}


class ServerlessEnvironment(BaseModel):
    """A job environment (`compute.Environment`): the environment version and the pip dependencies."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    environment_version: str = ""  # "a string, consisting of an integer": each brings a Python version
    base_environment: str = ""
    dependencies: list[str] = []  # pip requirement lines, installed before the task runs

    @model_validator(mode="after")
    def _version(self) -> ServerlessEnvironment:
        if bool(self.environment_version) == bool(self.base_environment):
            raise ValueError('give `environment_version` (e.g. "4") or `base_environment`, one of them')
        if self.environment_version and not self.environment_version.isdigit():
            raise ValueError(f'environment_version {self.environment_version!r}: write the version number, e.g. "4"')
        return self

    def spec(self) -> dict[str, Any]:
        spec = self.model_dump()
        return {k: v for k, v in spec.items() if v not in ("", [])}


def check_keys(what: str, keys: list[str]) -> None:
    for key in keys:
        if not KEY.match(key):
            raise ValueError(f"{what} {key!r}: {KEY_HELP}")


def check_tags(tags: dict[str, str]) -> None:
    """User tags plus the bot's own must fit Databricks' 25 per job."""
    clash = sorted(set(tags) & set(BOT_JOB_TAGS))
    if clash:
        raise ValueError(f"tag {clash[0]!r} is the bot's own; choose another name")
    room = MAX_TAGS - len(BOT_JOB_TAGS)
    if len(tags) > room:
        raise ValueError(
            f"at most {room} tags: Databricks allows {MAX_TAGS} per job and the bot adds {len(BOT_JOB_TAGS)} "
            f"({', '.join(BOT_JOB_TAGS)})"
        )


def task_environment(environments: dict[str, Any], task_type: str, requested: str) -> str:
    """The environment_key a serverless task runs in ('' for a notebook without one)."""
    if requested:
        return requested
    if len(environments) == 1:
        return next(iter(environments))
    if DEFAULT_ENVIRONMENT in environments or task_type in NEEDS_ENVIRONMENT:
        return DEFAULT_ENVIRONMENT
    return ""


def task_cluster(job_clusters: dict[str, Any], requested: str) -> str:
    """The job cluster a task runs on: the one it names, or the workflow's only one."""
    return requested or (next(iter(job_clusters)) if len(job_clusters) == 1 else "")


def check_compute(wf: Any) -> None:
    """One kind of compute per workflow, and every task able to run on it; messages say what to add."""
    check_keys("job cluster", list(wf.job_clusters))
    check_keys("environment", list(wf.environments))
    checks = {"serverless": _check_serverless, "job_clusters": _check_job_clusters, "existing_cluster": _check_existing}
    checks[wf.compute](wf)


def check_verdict(wf: Any) -> None:
    """A validate workflow's verdict is one task's last line (the Jobs API's output of that task alone): the
    task named must be one of the workflow's, so no other task, and no code under review, can speak for it."""
    keys = [t.key for t in wf.tasks]
    if wf.verdict_task and wf.verdict_task not in keys:
        raise ValueError(f"verdict_task {wf.verdict_task!r} is not one of the workflow's tasks {keys}")


def verdict_task(wf: Any) -> str:
    """The task whose last line is a validate workflow's verdict: `verdict_task`, else the last task listed
    (the one that runs after the others in a score → judge workflow, and the only one in a one-task workflow)."""
    return wf.verdict_task or wf.tasks[-1].key


def _check_serverless(wf: Any) -> None:
    if wf.job_clusters or wf.existing_cluster_id:
        raise ValueError('job_clusters and existing_cluster_id need compute = "job_clusters" or "existing_cluster"')
    # Serverless tasks install no task libraries: pip dependencies belong to the job environment.
    if wf.libraries or any(t.libraries for t in wf.tasks):
        raise ValueError("serverless tasks take no `libraries`: list them in environments.<key>.dependencies")
    for t in wf.tasks:
        if t.cluster:
            raise ValueError(f'task {t.key!r} names cluster {t.cluster!r}: set compute = "job_clusters"')
        env = task_environment(wf.environments, t.type, t.environment)
        if env and env not in wf.environments and t.environment:
            raise ValueError(f"task {t.key!r} uses environment {env!r}, not in environments")
        if env and env not in wf.environments:
            raise ValueError(
                f"task {t.key!r} is a {t.type} on serverless compute, which needs an environment: add "
                f'[workflows.<name>.environments.{DEFAULT_ENVIRONMENT}] with environment_version = "4" (and dependencies)'
            )


def _check_job_clusters(wf: Any) -> None:
    if not wf.job_clusters:
        raise ValueError('compute = "job_clusters" needs at least one [job_clusters.<key>] table')
    if wf.existing_cluster_id or wf.environments:
        raise ValueError('existing_cluster_id and environments do not go with compute = "job_clusters"')
    for t in wf.tasks:
        if t.environment:
            raise ValueError(f"task {t.key!r}: `environment` is for serverless compute, use `cluster`")
        if not task_cluster(wf.job_clusters, t.cluster):
            raise ValueError(f"task {t.key!r} has no `cluster`: name one of {sorted(wf.job_clusters)}")


def _check_existing(wf: Any) -> None:
    if not wf.existing_cluster_id:
        raise ValueError('compute = "existing_cluster" needs existing_cluster_id (the all-purpose cluster\'s id)')
    if wf.job_clusters or wf.environments:
        raise ValueError('job_clusters and environments do not go with compute = "existing_cluster"')
    for t in wf.tasks:
        if t.cluster or t.environment:
            raise ValueError(f"task {t.key!r} runs on existing_cluster_id: remove its `cluster` and `environment`")


def check_acyclic(graph: dict[str, list[str]]) -> None:
    """Tasks' `depends_on` make no cycle (a job's tasks run in dependency order)."""
    seen: dict[str, int] = {}

    def visit(node: str, path: tuple[str, ...]) -> None:
        if seen.get(node) == 2:
            return
        if seen.get(node) == 1:
            raise ValueError(f"depends_on forms a cycle: {' -> '.join(path + (node,))}")
        seen[node] = 1
        for dep in graph[node]:
            visit(dep, path + (node,))
        seen[node] = 2

    for node in graph:
        visit(node, ())
