"""Lineage the bot can prove: where a model version came from, from facts nobody under review can write.

When the bot starts a training run for a release stage it writes down, in Redis and without expiry,
what it knows (`record`): the repository, the commit it pinned, the PR, who wrote and who merged it,
and the registry the run may write. A version counts as that run's only when

  - the bot's record of that job run exists and belongs to the version's registry;
  - the registry says the version was created by the stage's principal (`created_by`, MLflow's `user_id`:
    recorded server-side by Databricks from the caller's token) — the environment's `run_as_service_principal`.
    An MLflow server records no creator: there this is not checked (docs/security-model.md);
  - it was created while the run ran, as the Jobs API reports the run's start and end (a minute's allowance);
  - its MLflow run (`run_id`) is one the run's tasks reported (`mlflow_run_id` in the JSON line a task ends
    with), read through the Jobs API from the run the bot started — the merged code's own output;
  - it is the first version that passes all of this for that run (a second one is not proven).

A version's tags and its run's (`job_run_id`, `mlflow.databricks.jobRunId`, `repo`, `pr`, `triggered_by`…) are
written by whoever created them: shown to people as "claimed", and at most a pointer to the run to check.
A version without proven lineage can still be approved — by the model's listed approvers only, two of them at
least (`policy.approval_refusal`).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, replace

from workers.core.context import Deps
from workers.core.records import Lineage
from workers.core.run_records import RunRecord, RunResult
from workers.core.state import State
from workers.errors import NotFound
from workers.gateways import RegistryGateway, Version
from workers.jobs import results

JOB_RUN_TAGS = ("mlflow.databricks.jobRunId", "job_run_id")  # claims: which run to check, never proof
CLAIMED = ("repo", "branch", "commit", "pr", "triggered_by")  # what training code says of itself: shown only
SLACK_MS = 60_000  # clocks of the registry and Databricks differ a little


@dataclass(frozen=True)
class RunFacts:
    """What the Jobs API says of one finished training run: when it ran, and the MLflow runs its tasks reported."""

    run_id: int
    start_ms: int
    end_ms: int
    mlflow_runs: frozenset[str]


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
    """The run ended: the bot has seen it end (versions pointing at it are decided by it, not by their events)."""
    found = state.lineage(environment, run_id)
    if found is not None and not found.finished_at:
        state.record_lineage(environment, run_id, replace(found, finished_at=time.time()))


def job_run_of(tags: dict[str, str]) -> str:
    return next((tags[k] for k in JOB_RUN_TAGS if str(tags.get(k, "")).isdigit()), "")


def source_tags(registry: RegistryGateway, v: Version) -> dict[str, str]:
    return registry.run_tags(v.run_id) if v.run_id else {}


# --- the facts ------------------------------------------------------------------------------------------------------
def run_facts(deps: Deps, environment: str, run_id: int) -> RunFacts | None:
    """The run as the Jobs API reports it (runs/get, then each task's runs/get-output); None until it has ended."""
    ws = deps.workspaces(environment)
    try:
        run = ws.get_run(run_id)
    except NotFound:
        return None
    if not run.terminal or not (run.start_time and run.end_time):
        return None
    said = results.run_result(ws, run)
    return RunFacts(run_id, run.start_time, run.end_time, frozenset(mlflow_runs(said)))


def mlflow_runs(result: RunResult) -> set[str]:
    """The MLflow runs a run's tasks reported: `mlflow_run_id` in the JSON line each task ended with."""
    found = set()
    for t in result.tasks:
        lines = [line.strip() for line in t.output.splitlines()]
        said = next((line for line in reversed(lines) if line.startswith("{") and line.endswith("}")), "")
        try:
            value = json.loads(said).get("mlflow_run_id") if said else None
        except (ValueError, AttributeError):
            continue
        if isinstance(value, str) and value:
            found.add(value)
    return found


def refusal(deps: Deps, environment: str, v: Version, facts: RunFacts) -> str:
    """Why `v` is not the version training run `facts` registered ("" when nothing says it is not)."""
    ref, run = f"`{v.model}` version {v.version}", f"training run {facts.run_id}"
    if deps.registry.creators:
        env = deps.settings.environments.get(environment)
        principal = env.run_as_service_principal if env else ""
        if not principal:
            return f"{ref}: the `{environment}` environment names no `run_as_service_principal` to check its creator"
        if v.created_by != principal:
            who = f"`{v.created_by}`" if v.created_by else "nobody the registry names"
            return f"{ref} was created by {who}, not by `{environment}`'s principal `{principal}`"
    if not facts.start_ms - SLACK_MS <= v.created <= facts.end_ms + SLACK_MS:
        return f"{ref} was not created while {run} ran"
    if not v.run_id or v.run_id not in facts.mlflow_runs:
        reported = ", ".join(f"`{r}`" for r in sorted(facts.mlflow_runs)) or "none"
        return f"{ref} comes from MLflow run `{v.run_id or '?'}`; {run} reported {reported}"
    return ""


# --- the proofs -----------------------------------------------------------------------------------------------------
def waits_for(deps: Deps, environment: str, v: Version, run_tags: dict[str, str]) -> int:
    """The bot's training run, not yet seen to end, that `v` says it came from (0: none): its end decides."""
    job_run = job_run_of(run_tags) or job_run_of(v.tags)
    found = deps.state.lineage(environment, job_run) if job_run else None
    if found is None or found.registry != v.model or found.finished_at:
        return 0
    return int(job_run)


def prove(deps: Deps, environment: str, v: Version, run_tags: dict[str, str]) -> Lineage | None:
    """The bot's record of the training run that created `v` (with that run's id), or None when the facts do not
    prove it. The tags only name which run to check."""
    job_run = job_run_of(run_tags) or job_run_of(v.tags)
    if not job_run:
        return None
    found = deps.state.lineage(environment, job_run)
    if found is None or found.registry != v.model:
        return None
    facts = run_facts(deps, environment, int(job_run))
    if facts is None or refusal(deps, environment, v, facts):
        return None
    if not deps.state.claim_lineage(v.model, job_run, v.version):
        return None
    return replace(found, job_run_id=int(job_run))


def claimed(v: Version, run_tags: dict[str, str]) -> dict[str, str]:
    """What the version's own tags (or its run's) say of its origin: for people to read, never to decide."""
    return {k: str(v.tags.get(k) or run_tags.get(k)) for k in CLAIMED if v.tags.get(k) or run_tags.get(k)}


def registered_by(
    deps: Deps, environment: str, name: str, record: RunRecord
) -> tuple[Version, Lineage, dict[str, str]] | None:
    """The version of registry `name` that the run `record` created, as the facts prove it (the oldest such), with
    the bot's record of the run and the version's source run tags; None when no version can be traced to it."""
    found = deps.state.lineage(environment, record.run_id)
    facts = run_facts(deps, environment, record.run_id)
    if found is None or found.registry != name or facts is None:
        return None
    for v in candidates(deps, name, facts):
        if not refusal(deps, environment, v, facts) and deps.state.claim_lineage(name, record.run_id, v.version):
            return v, replace(found, job_run_id=record.run_id), source_tags(deps.registry, v)
    return None


def refused(deps: Deps, environment: str, name: str, record: RunRecord) -> list[str]:
    """Why each version that says it came from run `record` (its tags) was not taken as that run's."""
    facts = run_facts(deps, environment, record.run_id)
    if facts is None:
        return []
    claims = (v for v in candidates(deps, name, facts) if _points_at(deps.registry, v, record.run_id))
    return [why for why in (refusal(deps, environment, v, facts) for v in claims) if why]


def candidates(deps: Deps, name: str, facts: RunFacts) -> list[Version]:
    """The versions of `name` not created before the run started, oldest first."""
    since_ms = facts.start_ms - SLACK_MS
    found = deps.registry.recent_versions(name, newer_than=0, max_pages=1)
    return sorted((v for v in found if v.created >= since_ms), key=lambda v: v.number)


def _points_at(registry: RegistryGateway, v: Version, run_id: int) -> bool:
    return str(run_id) in (job_run_of(v.tags), job_run_of(source_tags(registry, v)))
