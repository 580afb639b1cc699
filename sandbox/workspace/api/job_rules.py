"""What jobs/create, jobs/reset and jobs/update refuse, as Databricks does: 400 INVALID_PARAMETER_VALUE.

Each rule quotes the databricks-sdk docstring or REST reference sentence it follows
(tests/sandbox/test_workspace_rules.py tests them one by one). The settings are checked after
``JobSettings.from_dict(...).as_dict()``: a field the API does not know is dropped, not refused, as
Databricks drops what it does not recognise; a misspelt compute field therefore leaves the task
without compute, and that is refused.

The workspace behaves as one with serverless compute enabled: a task without a cluster runs
serverless. It runs every task locally whatever its compute says; an environment's
``dependencies`` are checked for shape, not installed.
"""

from __future__ import annotations

import re
import zoneinfo

from databricks.sdk.service import jobs as J

from .web import bad

# REST reference, jobs/create: task_key "string [ 1 .. 100 ] characters ^[\w\-\_]+$"; job_cluster_key alike.
KEY = re.compile(r"^[\w-]{1,100}$", re.ASCII)
# JobParameterDefinition.name: "May only contain alphanumeric characters, ``_``, ``-``, and ``.``"
PARAMETER_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")
MAX_TAGS = 25
MAX_TASKS = 1000
MAX_CONCURRENT_RUNS = 1000
CLUSTER_FIELDS = ("job_cluster_key", "new_cluster", "existing_cluster_id")
# Task.environment_key: "required for Python script, Python wheel and dbt tasks when using serverless compute"
NEEDS_ENVIRONMENT = ("spark_python_task", "python_wheel_task", "dbt_task")
# Task types that run on a cluster or serverless compute (others run on warehouses or need none).
COMPUTE_TASKS = (*NEEDS_ENVIRONMENT, "notebook_task", "spark_jar_task", "spark_submit_task")


def check_settings(settings: dict, sent: dict) -> None:
    """Raise the first refusal Databricks would answer for these (normalised) job settings."""
    for rule in (_limits, _job_clusters, _environments, _parameters, _task_keys):
        rule(settings)
    _run_as(sent)  # as sent: the SDK's from_dict reads an empty run_as as none at all
    _schedule(sent.get("schedule"))
    clusters = {c.get("job_cluster_key") for c in settings.get("job_clusters") or []}
    environments = {e.get("environment_key") for e in settings.get("environments") or []}
    keys = {t.get("task_key") for t in settings.get("tasks") or []}
    for task in settings.get("tasks") or []:
        _task_compute(task, clusters, environments, bool(environments))
        for dep in task.get("depends_on") or []:
            if dep.get("task_key") not in keys:
                raise bad(f"Task {task['task_key']} depends on {dep.get('task_key')} which is not in the job.")


def _limits(settings: dict) -> None:
    # JobSettings.tags: "A maximum of 25 tags can be added to the job."
    if len(settings.get("tags") or {}) > MAX_TAGS:
        raise bad(f"A job can have at most {MAX_TAGS} tags; got {len(settings['tags'])}.")
    # JobSettings.max_concurrent_runs: "This value cannot exceed 1000. Setting this value to 0 causes
    # all new runs to be skipped."
    runs = settings.get("max_concurrent_runs")
    if runs is not None and not 0 <= runs <= MAX_CONCURRENT_RUNS:
        raise bad(f"max_concurrent_runs must be between 0 and {MAX_CONCURRENT_RUNS}; got {runs}.")
    # JobSettings.tasks: "It supports up to 1000 elements in write endpoints"
    if len(settings.get("tasks") or []) > MAX_TASKS:
        raise bad(f"A job can have at most {MAX_TASKS} tasks.")


def _task_keys(settings: dict) -> None:
    # Task.task_key: "This field is required and must be unique within its parent job."
    keys = [t.get("task_key") for t in settings.get("tasks") or []]
    for key in keys:
        if not key or not KEY.match(key):
            raise bad(f"Invalid task_key {key!r}: it must match ^[\\w\\-\\_]+$ and be 1 to 100 characters long.")
    duplicates = sorted({k for k in keys if keys.count(k) > 1})
    if duplicates:
        raise bad(f"Task key {duplicates[0]} is used by more than one task: task keys must be unique within a job.")


def _job_clusters(settings: dict) -> None:
    # JobCluster.job_cluster_key: "This field is required and must be unique within the job."
    keys = [c.get("job_cluster_key") for c in settings.get("job_clusters") or []]
    for key in keys:
        if not key or not KEY.match(key):
            raise bad(f"Invalid job_cluster_key {key!r}: it must match ^[\\w\\-\\_]+$ and be 1 to 100 characters long.")
    if len(set(keys)) != len(keys):
        raise bad("Job cluster keys must be unique within a job.")


def _environments(settings: dict) -> None:
    # JobEnvironment.environment_key: "It has to be unique within a job."
    envs = settings.get("environments") or []
    keys = [e.get("environment_key") for e in envs]
    if any(not k for k in keys) or len(set(keys)) != len(keys):
        raise bad("Every environment needs an environment_key, unique within the job.")
    for env in envs:
        spec = env.get("spec") or {}
        # compute.Environment.environment_version: "Either environment_version or base_environment must be provided."
        if not any(spec.get(k) for k in ("environment_version", "base_environment", "client", "project_environment")):
            raise bad(
                f"Environment {env['environment_key']}: environment_version or base_environment must be provided."
            )
        deps = spec.get("dependencies") or []
        if not all(isinstance(d, str) and d.strip() for d in deps):
            raise bad(f"Environment {env['environment_key']}: dependencies must be pip requirement lines.")


def _parameters(settings: dict) -> None:
    names = [p.get("name") for p in settings.get("parameters") or []]
    for name in names:
        if not name or not PARAMETER_NAME.match(name):
            raise bad(f"Invalid job parameter name {name!r}: it may only contain alphanumeric characters, _, - and .")
    if len(set(names)) != len(names):
        raise bad("Job parameter names must be unique.")


def _schedule(schedule: object) -> None:
    if schedule is None:
        return
    schedule = schedule if isinstance(schedule, dict) else {}
    cron, zone = schedule.get("quartz_cron_expression"), schedule.get("timezone_id")
    # CronSchedule.quartz_cron_expression: "A Cron expression using Quartz syntax ... This field is required."
    # (Quartz: six fields, seconds to day-of-week, and an optional year)
    if not isinstance(cron, str) or len(cron.split()) not in (6, 7):
        raise bad(f"schedule.quartz_cron_expression: invalid Quartz cron expression {cron!r}.")
    # CronSchedule.timezone_id: "A Java timezone ID. ... This field is required."
    try:
        zoneinfo.ZoneInfo(str(zone))
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise bad(f"schedule.timezone_id: invalid timezone id {zone!r}.") from None


def _run_as(settings: dict) -> None:
    # JobRunAs: "One of user_name, service_principal_name, or group_name should be specified. If not,
    # an error is thrown."
    run_as = settings.get("run_as")
    if (
        isinstance(run_as, dict)
        and sum(bool(run_as.get(k)) for k in ("user_name", "service_principal_name", "group_name")) != 1
    ):
        raise bad("run_as: one of user_name, service_principal_name, or group_name should be specified.")


def _task_compute(task: dict, clusters: set, environments: set, serverless_job: bool) -> None:
    key = task["task_key"]
    kind = next((k for k in COMPUTE_TASKS if k in task), "")
    # Task.job_cluster_key: "this task is executed reusing the cluster specified in job.settings.job_clusters"
    if task.get("job_cluster_key") and task["job_cluster_key"] not in clusters:
        raise bad(f"Task {key} refers to job cluster {task['job_cluster_key']}, which is not in job_clusters.")
    # Task.environment_key: "The key that references an environment spec in a job."
    if task.get("environment_key") and task["environment_key"] not in environments:
        raise bad(f"Task {key} refers to environment {task['environment_key']}, which is not in environments.")
    if not kind or any(task.get(f) for f in CLUSTER_FIELDS) or task.get("environment_key"):
        return
    if kind == "notebook_task":
        return  # JobSettings.environments: a serverless notebook without environment_key uses its own
    if kind in NEEDS_ENVIRONMENT and serverless_job:
        raise bad(f"Task {key}: an environment is required for {kind} on serverless compute: set environment_key.")
    raise bad(f"Task {key}: One of job_cluster_key, new_cluster, or existing_cluster_id must be specified.")


def check_access_control_list(acl: list) -> list[dict]:
    """jobs/create's access_control_list, each entry a `JobAccessControlRequest`."""
    if not isinstance(acl, list):
        raise bad("access_control_list must be a list.")
    out = []
    for entry in acl:
        parsed = J.JobAccessControlRequest.from_dict(entry if isinstance(entry, dict) else {})
        principals = [parsed.user_name, parsed.group_name, parsed.service_principal_name]
        if sum(bool(p) for p in principals) != 1:
            raise bad("Each access_control_list entry names one of user_name, group_name, service_principal_name.")
        if parsed.permission_level is None:
            levels = ", ".join(level.value for level in J.JobPermissionLevel)
            raise bad(
                f"access_control_list: permission_level must be one of {levels}; got {entry.get('permission_level')!r}."
            )
        out.append(parsed.as_dict())
    return out
