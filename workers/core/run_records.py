"""A run as the workers keep it in Redis: what started it (`RunContext`), the record the follower reads
(`RunRecord`), what the finished run said (`RunResult`, per task `TaskResult`), and the job-id cache
(`CachedJob`). The same rules as workers/core/records.py: pure, today's JSON keys, frozen.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Self

from workers.core.records import Json, Record


# --- runs (workers/jobs/branch_jobs.py starts them, workers/pr/runs.py follows them) ----------------------------------
@dataclass(frozen=True)
class RunContext(Record):
    """Why a run was started, beyond what started it: the command that asked, or the release step it is."""

    comment_id: int | None = None  # the comment whose command asked for it
    command: str = ""
    release_model: str = ""  # a release's run: its model, stage and purpose (train | validate | retrain | deploy)
    stage: str = ""
    purpose: str = ""
    release_pr: int | None = None
    name: str = ""  # validate and deploy: the version
    version: str = ""
    deploy_to: str = ""
    repo_of_release: str = ""
    release_of: tuple[str, str, int] | None = None  # the release comment a deploy shows on: (model, repo, pr)
    approved: str = ""  # retrain: the approved `name@version`
    model: str = ""  # a pull request's or branch's run in a repository of several models: the model it trains

    @property
    def for_model(self) -> str:
        return f"/{self.model}" if self.model else ""

    @classmethod
    def from_json(cls, data: Json) -> Self:
        found = super().from_json(data)
        release_of = data.get("release_of")
        return replace(found, release_of=(release_of[0], release_of[1], release_of[2]) if release_of else None)


@dataclass(frozen=True)
class TaskResult(Record):
    """One task of a finished run (workers/jobs/results.py `run_result`)."""

    writes_defaults = True

    key: str
    run_id: int
    result: str  # its result state
    duration_s: float = 0.0
    output: str = ""  # the end of what it said (a script's logs, a notebook's exit value), then its error


@dataclass(frozen=True)
class RunResult(Record):
    """A finished run as plain values (workers/jobs/results.py `run_result`), kept in its run record."""

    writes_defaults = True

    run_id: int
    job_id: int
    life_cycle: str
    result: str  # the result state, else the life cycle: what people are told
    message: str = ""
    run_page_url: str = ""
    duration_s: float = 0.0
    used_commit: str = ""
    tasks: tuple[TaskResult, ...] = ()

    @classmethod
    def from_json(cls, data: Json) -> Self:
        return replace(super().from_json(data), tasks=tuple(TaskResult.from_json(t) for t in data.get("tasks") or []))


@dataclass(frozen=True)
class RunRecord(Record):
    """A run the bot started, as it last saw it (`context` is saved flat, beside the other keys)."""

    run_id: int
    job_id: int
    job: str
    environment: str
    repo: str
    branch: str
    sha: str
    workflow: str
    pr: int | None  # the PR whose report it owns (none for a release's runs)
    requested_by: str
    parameters: dict[str, str]
    token: str
    state: str
    started_at: float
    context: RunContext = field(default=RunContext(), metadata={"flat": True})
    result: RunResult | None = None
    finished_at: float | None = None
    error: str = ""
    cancelled_by: str = ""
    superseded_by: int | None = None
    deployment_id: int | None = None

    @property
    def report_key(self) -> str:
        """What the run owns on its PR, a report, a status and "the latest run" of: its workflow, for one model of
        several `<workflow>/<model>` (`train/ato_risk`), so the models' runs never supersede each other."""
        return self.workflow + self.context.for_model

    @classmethod
    def from_json(cls, data: Json) -> Self:
        result = data.get("result")
        found = super().from_json(data)
        return replace(
            found, context=RunContext.from_json(data), result=RunResult.from_json(result) if result else None
        )


@dataclass(frozen=True)
class CachedJob(Record):
    """A branch's job id, found by its name once (workers/jobs/branch_jobs.py `upsert_job`)."""

    job_id: int
    fingerprint: str  # of the settings it was last made to match
    updated_at: float


@dataclass(frozen=True)
class RemovedJob(Record):
    """A job the janitor removed, where, and why (told in Slack, returned by the task)."""

    environment: str
    job: str
    job_id: int
    why: str
