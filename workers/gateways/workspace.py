"""Databricks, through databricks-sdk, with plain-language methods and an explicit retry budget.

The SDK retries 429/503 and connection errors until `retry_timeout_seconds`; whatever it gives up
on is translated here, at the edge, by `workers.errors` (classified by class and `error_code`:
the SDK's errors carry no HTTP status). Methods return `workers.gateways` values, never SDK objects.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from databricks.sdk import WorkspaceClient
from databricks.sdk.config import Config
from databricks.sdk.errors import DatabricksError, InvalidParameterValue
from databricks.sdk.service.jobs import JobAccessControlRequest, JobSettings, Run, RunTask
from requests import RequestException

from core.config import Environment
from workers.errors import NotFound, Permanent, classify, is_not_found, is_transient
from workers.gateways import JobRef, RunInfo, TaskOutput, TaskRun


def job_gone(exc: BaseException) -> bool:
    """Databricks answers an unknown job id with 404 on some endpoints and 400 "does not exist" on others."""
    return is_not_found(exc) or (isinstance(exc, InvalidParameterValue) and "does not exist" in str(exc))


def _state(state, attr: str) -> str:
    value = getattr(state, attr, None) if state else None
    return value.value if value is not None else ""


# RunTask fields naming the task's type; what runs/get-output returns depends on it
TASK_KINDS = ("notebook_task", "spark_python_task", "python_wheel_task", "spark_jar_task", "spark_submit_task")


def _task_run(t: RunTask) -> TaskRun:
    return TaskRun(
        t.task_key,
        t.run_id or 0,
        _state(t.state, "result_state") or _state(t.state, "life_cycle_state"),
        t.start_time or 0,
        t.end_time or 0,
        next((kind for kind in TASK_KINDS if getattr(t, kind, None) is not None), ""),
    )


def _run_info(run: Run) -> RunInfo:
    snapshot = run.git_source.git_snapshot if run.git_source else None
    return RunInfo(
        run.run_id or 0,
        run.job_id or 0,
        _state(run.state, "life_cycle_state") or "PENDING",
        _state(run.state, "result_state"),
        (run.state.state_message or "") if run.state else "",
        run.run_page_url or "",
        run.start_time or 0,
        run.end_time or 0,
        (snapshot.used_commit or "") if snapshot else "",
        tuple(_task_run(t) for t in run.tasks or []),
    )


# Per sign-in kind: the SDK's Config attribute -> the config key naming the env var that holds the secret.
_SECRETS = {
    "pat": {"token": "token_env"},
    "oauth-m2m": {"client_secret": "client_secret_env"},
    "azure-client-secret": {"azure_client_secret": "azure_client_secret_env"},
}
_PLAIN = {"pat": (), "oauth-m2m": ("client_id",), "azure-client-secret": ("azure_client_id", "azure_tenant_id")}


def sdk_config(name: str, env: Environment, getenv: Callable[[str], str | None]) -> dict[str, Any]:
    """databricks.sdk.Config's keyword arguments for one environment (unified auth, one explicit kind).

    Secrets are read from the variables config names; a missing one is a Permanent error naming it.
    """
    kind = env.auth_type
    kwargs: dict[str, Any] = {"host": env.host, "auth_type": kind, "retry_timeout_seconds": env.retry_timeout_seconds}
    kwargs.update({attr: getattr(env, attr) for attr in _PLAIN[kind]})
    if kind == "azure-client-secret" and env.azure_workspace_resource_id:
        kwargs["azure_workspace_resource_id"] = env.azure_workspace_resource_id
    for attr, key in _SECRETS[kind].items():
        variable = getattr(env, key)
        kwargs[attr] = getenv(variable)
        if not kwargs[attr]:
            raise Permanent(f"environment `{name}`: {variable} ({key}) is not set, so the bot cannot reach {env.host}")
    return kwargs


def _settings_and_acl(body: dict) -> tuple[JobSettings, list[JobAccessControlRequest] | None]:
    acl = [JobAccessControlRequest.from_dict(a) for a in body.get("access_control_list", [])]
    return JobSettings.from_dict(body), acl or None


class Workspace:
    def __init__(self, name: str, env: Environment, client: WorkspaceClient | None = None):
        self.name = name
        self.host = env.host
        if client is None:
            client = WorkspaceClient(config=Config(**sdk_config(name, env, os.environ.get)))
        self.client = client

    @contextmanager
    def _edge(self, what: str) -> Iterator[None]:
        """Every SDK error becomes Transient, NotFound or Permanent, worded for a person."""
        try:
            yield
        except (DatabricksError, RequestException, OSError) as exc:
            if job_gone(exc):
                raise NotFound(f"Databricks ({self.name}): cannot {what}: {exc}") from exc
            verb = "could not" if is_transient(exc) else "refused to"
            raise classify(exc, f"Databricks ({self.name}) {verb} {what}: {exc}") from exc

    # --- jobs ----------------------------------------------------------------------------------
    def find_job(self, name: str) -> JobRef | None:
        """The job with exactly this name (the oldest, should there be two)."""
        found = self.find_jobs(name)
        return found[0] if found else None

    def find_jobs(self, name: str) -> list[JobRef]:
        """Every job with exactly this name, oldest first (the API matches case-insensitively; we do not)."""
        with self._edge(f"list jobs named {name}"):
            return sorted(
                (
                    JobRef(job.job_id or 0, name, dict(job.settings.tags or {}), job.created_time or 0)
                    for job in self.client.jobs.list(name=name)
                    if job.settings and job.settings.name == name
                ),
                key=lambda job: job.job_id,
            )

    def create_job(self, settings: dict) -> int:
        """jobs/create with `workers.jobs.spec.job_settings`' body: the settings and their permissions."""
        spec, acl = _settings_and_acl(settings)
        fields = {f.name: getattr(spec, f.name) for f in dataclasses.fields(spec) if getattr(spec, f.name) is not None}
        with self._edge(f"create job {settings['name']}"):
            return self.client.jobs.create(**fields, access_control_list=acl).job_id or 0

    def reset_job(self, job_id: int, settings: dict) -> None:
        """jobs/reset replaces the settings but takes no permissions: those are granted after it."""
        spec, acl = _settings_and_acl(settings)
        with self._edge(f"update job {settings['name']}"):
            self.client.jobs.reset(job_id, spec)
            if acl:  # PATCH adds grants and never drops the owner, as PUT could
                self.client.jobs.update_permissions(str(job_id), access_control_list=acl)

    def delete_job(self, job_id: int) -> bool:
        """False when the job was gone already."""
        try:
            with self._edge(f"delete job {job_id}"):
                self.client.jobs.delete(job_id)
            return True
        except NotFound:
            return False

    def managed_jobs(self, prefix: str, tag: str) -> list[JobRef]:
        with self._edge("list jobs"):
            return [
                JobRef(j.job_id or 0, j.settings.name or "", dict(j.settings.tags or {}), j.created_time or 0)
                for j in self.client.jobs.list()
                if j.settings and (j.settings.name or "").startswith(prefix + "/") and tag in (j.settings.tags or {})
            ]

    # --- runs ----------------------------------------------------------------------------------
    def run_now(self, job_id: int, parameters: dict[str, str], token: str) -> int:
        with self._edge(f"start job {job_id}"):
            return self.client.jobs.run_now(job_id, job_parameters=parameters, idempotency_token=token).run_id or 0

    def active_runs(self, job_id: int) -> list[int]:
        with self._edge(f"list the runs of job {job_id}"):
            return [r.run_id or 0 for r in self.client.jobs.list_runs(job_id=job_id, active_only=True)]

    def cancel_run(self, run_id: int) -> None:
        with self._edge(f"cancel run {run_id}"):
            self.client.jobs.cancel_run(run_id)

    def get_run(self, run_id: int) -> RunInfo:
        with self._edge(f"read run {run_id}"):
            return _run_info(self.client.jobs.get_run(run_id))

    def task_output(self, task_run_id: int) -> TaskOutput:
        with self._edge(f"read the output of task run {task_run_id}"):
            out = self.client.jobs.get_run_output(task_run_id)
        result = out.notebook_output.result if out.notebook_output else None
        return TaskOutput(out.logs or "", out.error or "", result or "")

    # --- repos ---------------------------------------------------------------------------------
    def _find_repo(self, path: str) -> int | None:
        for repo in self.client.repos.list(path_prefix=path):
            if repo.path == path:
                return repo.id
        return None

    def checkout_repo(self, path: str, url: str, provider: str, branch: str) -> int:
        """Make the Databricks Repo at `path` exist and point at `branch` (pulling its newest commit)."""
        with self._edge(f"check out {branch} at {path}"):
            repo_id = self._find_repo(path)
            if repo_id is None:
                # repos.create answers 404 "Parent directory … does not exist" until the folder is made
                self.client.workspace.mkdirs(path.rsplit("/", 1)[0])
                repo_id = self.client.repos.create(url=url, provider=provider, path=path).id or 0
            self.client.repos.update(repo_id, branch=branch)
            return repo_id

    def delete_repo(self, path: str) -> bool:
        with self._edge(f"delete the repo at {path}"):
            repo_id = self._find_repo(path)
            if repo_id is None:
                return False
            self.client.repos.delete(repo_id)
            return True
