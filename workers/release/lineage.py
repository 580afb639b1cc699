"""Lineage the bot can prove: where a model version came from, from the bot's own records only.

When the bot starts a training run for a release stage it writes down, in Redis and without expiry,
what it knows (`record`): the repository, the commit it pinned, the PR, who wrote and who merged it,
and the registry the run may write. A version counts as that run's only when

  - its source MLflow run names that job run (`mlflow.databricks.jobRunId`, which MLflow sets on
    Databricks, or `job_run_id`) — a pointer only: everything else comes from the bot's record;
  - the bot's record of that job run exists, belongs to the version's registry, and the version was
    created while the run ran;
  - it is the first version that run vouches for in that registry (a second one is not proven).

Tags written by training code (`repo`, `pr`, `triggered_by`…) are shown to people as "claimed", never
used to decide who may approve. A version without proven lineage can still be approved — by the
model's listed approvers only, two of them at least (`policy.approval_refusal`).
"""

from __future__ import annotations

import time
from dataclasses import replace

from workers.core.records import Lineage
from workers.core.run_records import RunRecord
from workers.core.state import State
from workers.gateways import RegistryGateway, Version

JOB_RUN_TAGS = ("mlflow.databricks.jobRunId", "job_run_id")
CLAIMED = ("repo", "branch", "commit", "pr", "triggered_by")  # what training code says of itself: shown only
SLACK_MS = 60_000  # clocks of the registry and the bot differ a little


def record(*, repo: str, branch: str, sha: str, pr: int | None, author: str, merged_by: str, registry: str) -> Lineage:
    """What the bot writes down when it starts a release stage's training run."""
    return Lineage(repo, branch, sha, pr, author, merged_by, registry, started_at=time.time())


def remember(
    state: State,
    environment: str,
    run_id: int,
    *,
    repo: str,
    branch: str,
    sha: str,
    pr: int | None,
    author: str,
    merged_by: str,
    registry: str,
) -> bool:
    """Write down what the bot knows of a training run it started (`record`), once: a retried task that found its
    run again keeps the first record. True when it was written now."""
    if state.lineage(environment, run_id) is not None:
        return False
    found = record(repo=repo, branch=branch, sha=sha, pr=pr, author=author, merged_by=merged_by, registry=registry)
    state.record_lineage(environment, run_id, found)
    return True


def finished(state: State, environment: str, run_id: int) -> None:
    """The run ended: versions created after this (plus the clock slack) are not its."""
    found = state.lineage(environment, run_id)
    if found is not None and not found.finished_at:
        state.record_lineage(environment, run_id, replace(found, finished_at=time.time()))


def job_run_of(tags: dict[str, str]) -> str:
    return next((tags[k] for k in JOB_RUN_TAGS if str(tags.get(k, "")).isdigit()), "")


def source_tags(registry: RegistryGateway, v: Version) -> dict[str, str]:
    return registry.run_tags(v.run_id) if v.run_id else {}


def prove(state: State, environment: str, v: Version, run_tags: dict[str, str]) -> Lineage | None:
    """The bot's record of the training run that created `v` (with that run's id), or None when nothing the bot
    holds proves it."""
    job_run = job_run_of(run_tags) or job_run_of(v.tags)
    if not job_run:
        return None
    found = state.lineage(environment, job_run)
    if found is None or found.registry != v.model:
        return None
    started_ms = found.started_at * 1000 - SLACK_MS
    ended_ms = (found.finished_at or time.time()) * 1000 + SLACK_MS
    if v.created and not started_ms <= v.created <= ended_ms:
        return None
    if not state.claim_lineage(v.model, job_run, v.version):
        return None
    return replace(found, job_run_id=int(job_run))


def claimed(v: Version, run_tags: dict[str, str]) -> dict[str, str]:
    """What the version's own tags (or its run's) say of its origin: for people to read, never to decide."""
    return {k: str(v.tags.get(k) or run_tags.get(k)) for k in CLAIMED if v.tags.get(k) or run_tags.get(k)}


def registered_by(
    state: State, registry: RegistryGateway, environment: str, name: str, record: RunRecord
) -> tuple[Version, Lineage, dict[str, str]] | None:
    """The version of registry `name` that the bot's lineage record proves the run `record` created (the oldest
    such), with the proof and its source run's tags; None when no version can be traced to that run."""
    since_ms = int(record.started_at * 1000) - SLACK_MS
    for v in sorted(registry.recent_versions(name, newer_than=0, max_pages=1), key=lambda v: v.number):
        if v.created and v.created < since_ms:
            continue
        run_tags = source_tags(registry, v)
        proven = prove(state, environment, v, run_tags)
        if proven and proven.job_run_id == record.run_id:
            return v, proven, run_tags
    return None
