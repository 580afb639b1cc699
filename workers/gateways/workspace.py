"""Databricks, through databricks-sdk, with plain-language methods and an explicit retry budget.

The SDK retries 429/503 and connection errors until `retry_timeout_seconds`; plain 500 and 4xx
surface as exceptions, which `workers.errors` classifies (5xx transient, 4xx permanent).
"""
from __future__ import annotations

import os
from dataclasses import dataclass

from databricks.sdk import WorkspaceClient
from databricks.sdk.config import Config
from contextlib import contextmanager

from databricks.sdk.errors import DatabricksError, InvalidParameterValue, NotFound, ResourceDoesNotExist
from databricks.sdk.service.jobs import JobSettings, RunLifeCycleState

from bot.config import Environment
from workers.errors import Permanent

def job_gone(exc: Exception) -> bool:
    """Databricks answers an unknown job id with 404 on some endpoints and 400 "does not exist" on others."""
    return isinstance(exc, (NotFound, ResourceDoesNotExist)) or (
        isinstance(exc, InvalidParameterValue) and "does not exist" in str(exc))


TERMINAL = {RunLifeCycleState.TERMINATED, RunLifeCycleState.SKIPPED, RunLifeCycleState.INTERNAL_ERROR}


@dataclass
class JobRef:
    job_id: int
    name: str
    tags: dict[str, str]
    created_time: int = 0


class Workspace:
    def __init__(self, name: str, env: Environment, client: WorkspaceClient | None = None):
        self.name = name
        self.host = env.host
        if client is None:
            token = os.environ.get(env.token_env)
            if not token:
                raise Permanent(f"environment `{name}`: {env.token_env} is not set, so the bot cannot reach {env.host}")
            client = WorkspaceClient(config=Config(host=env.host, token=token, auth_type="pat",
                                                   retry_timeout_seconds=env.retry_timeout_seconds))
        self.client = client

    # --- jobs ----------------------------------------------------------------------------------
    def find_job(self, name: str) -> JobRef | None:
        """The job with exactly this name (the API matches case-insensitively; we do not)."""
        for job in self.client.jobs.list(name=name):
            if job.settings and job.settings.name == name:
                return JobRef(job.job_id, name, dict(job.settings.tags or {}), job.created_time or 0)
        return None

    @contextmanager
    def _rejected_is_permanent(self, what: str):
        """A 4xx on a write means the settings or the request are wrong: retrying cannot help."""
        try:
            yield
        except DatabricksError as exc:
            status = getattr(exc, "_status_code", None) or getattr(getattr(exc, "response", None), "status_code", 0)
            if type(exc).__name__ in ("TooManyRequests", "TemporarilyUnavailable", "InternalError") or \
                    (status and (status == 429 or status >= 500)):
                raise
            raise Permanent(f"Databricks ({self.name}) refused to {what}: {exc}") from exc

    def create_job(self, settings: dict) -> int:
        s = JobSettings.from_dict(settings)
        with self._rejected_is_permanent(f"create job {settings['name']}"):
            return self.client.jobs.create(**{k: getattr(s, k) for k in settings}).job_id

    def reset_job(self, job_id: int, settings: dict) -> None:
        with self._rejected_is_permanent(f"update job {settings['name']}"):
            self.client.jobs.reset(job_id, JobSettings.from_dict(settings))

    def delete_job(self, job_id: int) -> bool:
        try:
            self.client.jobs.delete(job_id)
            return True
        except (NotFound, ResourceDoesNotExist, InvalidParameterValue) as exc:
            if job_gone(exc):
                return False
            raise

    def managed_jobs(self, prefix: str, tag: str) -> list[JobRef]:
        return [JobRef(j.job_id, j.settings.name, dict(j.settings.tags or {}), j.created_time or 0)
                for j in self.client.jobs.list()
                if j.settings and (j.settings.name or "").startswith(prefix + "/") and tag in (j.settings.tags or {})]

    # --- runs ----------------------------------------------------------------------------------
    def run_now(self, job_id: int, parameters: dict[str, str], token: str) -> int:
        with self._rejected_is_permanent(f"start job {job_id}"):
            return self.client.jobs.run_now(job_id, job_parameters=parameters, idempotency_token=token).run_id

    def active_runs(self, job_id: int) -> list[int]:
        return [r.run_id for r in self.client.jobs.list_runs(job_id=job_id, active_only=True)]

    def cancel_run(self, run_id: int) -> None:
        self.client.jobs.cancel_run(run_id)

    def get_run(self, run_id: int):
        return self.client.jobs.get_run(run_id)

    def task_output(self, task_run_id: int):
        return self.client.jobs.get_run_output(task_run_id)

    # --- repos ---------------------------------------------------------------------------------
    def find_repo(self, path: str):
        for repo in self.client.repos.list(path_prefix=path):
            if repo.path == path:
                return repo
        return None

    def checkout_repo(self, path: str, url: str, provider: str, branch: str) -> int:
        """Make the Databricks Repo at `path` exist and point at `branch` (pulling its newest commit)."""
        repo = self.find_repo(path)
        if repo is None:
            repo = self.client.repos.create(url=url, provider=provider, path=path)
        self.client.repos.update(repo.id, branch=branch)
        return repo.id

    def delete_repo(self, path: str) -> bool:
        repo = self.find_repo(path)
        if repo is None:
            return False
        self.client.repos.delete(repo.id)
        return True


def is_terminal(run) -> bool:
    return run.state is not None and run.state.life_cycle_state in TERMINAL
