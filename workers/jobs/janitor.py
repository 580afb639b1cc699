"""The janitor (beat, hourly): remove the managed jobs nobody needs any more, asking GitHub as little as it can.

A managed job goes when
  - its repository is no longer configured, or its branch may no longer have it (spec.branch_refusal);
  - the bot has not started a run of it for `[bot] job_ttl_days`: counted from its last run in the bot's own
    records (Redis, `State.save_run`), or from its creation when it never ran; and no run of it is active. A
    scheduled workflow's job on the default branch stays: Databricks starts its runs;
  - its branch is surely gone (a fork's `pull/<n>` job: its pull request is no longer open).
The last is asked of GitHub only with a token, and then one listing per repository and pass (its branches, paged;
its open pull requests when it has `pull/<n>` jobs), never one request per branch. A GitHub App asks nothing: a
deleted branch and a closed pull request remove their jobs on their own deliveries (workers/tasks.py
`remove_branch_jobs`), and a failed delivery is redelivered (workers/delivery/redelivery.py); the TTL catches what
slips through. An unsure answer (GitHub could not list, or cut a listing short) removes nothing: next hour asks again.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from core.config import Settings
from core.logs import get_logger
from core.vocabulary import MANAGED_TAG, parse_job_name
from workers.core.context import Deps
from workers.core.run_records import RemovedJob
from workers.core.state import State
from workers.errors import BotError
from workers.gateways import ForgeGateway, JobRef, WorkspaceGateway
from workers.jobs import texts
from workers.jobs.branch_jobs import Workspaces
from workers.jobs.spec import branch_refusal

log = get_logger("workers.jobs.janitor")
BranchExists = Callable[[str, str], bool | None]  # (repo, branch) → True, False (surely gone) or None (no sure answer)
DAY = 86400


def clean_up_and_tell(deps: Deps) -> list[RemovedJob]:
    """The hourly pass, and a line in Slack for what it removed."""
    removed = clean_up(deps.workspaces, deps.state, deps.settings, branch_answers(deps.forge, deps.settings))
    if removed and deps.slack:
        deps.slack.post(texts.stale_jobs_removed(removed))
    return removed


def clean_up(
    workspaces: Workspaces, state: State, settings: Settings, branch_exists: BranchExists, now: float | None = None
) -> list[RemovedJob]:
    """Remove the stale managed jobs of every environment (as of `now`); returns what it removed and why."""
    removed: list[RemovedJob] = []
    for env in settings.environments:
        ws = workspaces(env)
        for job_id, name, why, idle in stale_jobs(ws, state, settings, branch_exists, now):
            active = ws.active_runs(job_id)
            if idle and active:  # running now: not idle, whatever the records say
                log.info("janitor.kept_running", job=name, environment=env, runs=active)
                continue
            for run_id in active:
                ws.cancel_run(run_id)
            if ws.delete_job(job_id):
                state.forget_job(ws.name, name)
                removed.append(RemovedJob(environment=env, job=name, job_id=job_id, why=why))
    log.info("janitor.done", removed=len(removed), jobs=[r.job for r in removed])
    return removed


def stale_jobs(
    ws: WorkspaceGateway, state: State, settings: Settings, branch_exists: BranchExists, now: float | None = None
) -> list[tuple[int, str, str, bool]]:
    """The managed jobs of `ws` to remove: (job_id, name, why, idle), idle when only the TTL decided it. The last
    runs noted for jobs no longer in `ws` (deleted behind the bot's back) are dropped on the way."""
    now = time.time() if now is None else now
    last_runs = state.job_last_runs(ws.name)
    jobs = ws.managed_jobs(settings.bot.job_prefix, MANAGED_TAG)
    state.forget_job_runs(ws.name, set(last_runs) - {job.name for job in jobs})
    out = []
    for job in jobs:
        parsed = parse_job_name(settings.bot.job_prefix, job.name)
        if parsed is None:
            continue
        if why := _not_wanted(settings, job.name, *parsed):
            out.append((job.job_id, job.name, why, False))
        elif idle := _idle(settings, job, parsed, last_runs.get(job.name, 0.0), now):
            out.append((job.job_id, job.name, idle, True))
        elif _branch_of_review(settings, *parsed[:2]) and branch_exists(*parsed[:2]) is False:
            out.append((job.job_id, job.name, _gone(parsed[1]), False))
    return out


def _not_wanted(settings: Settings, name: str, repo_name: str, branch: str, workflow: str) -> str:
    """Why no branch of the configuration may have this job any more, or "": its repository is not configured, or
    the job was made before branch jobs ran only where pull requests train (issue #18: a branch's `deploy` job ran
    its code as prod)."""
    repo, wf = settings.repo(repo_name), settings.workflows.get(workflow)
    if repo is None:
        return f"repository {repo_name} is no longer configured"
    if wf is None:
        return ""
    environment = name.rpartition("/")[2].partition("@")[2] or wf.environment  # `…/train@staging`: another's
    return branch_refusal(settings, repo, branch, workflow, environment)


def _branch_of_review(settings: Settings, repo_name: str, branch: str) -> bool:
    """Could the branch be gone: any branch but the configured default one (which the janitor never asks about)."""
    repo = settings.repo(repo_name)
    return repo is not None and branch != repo.default_branch


def _idle(settings: Settings, job: JobRef, parsed: tuple[str, str, str], last_run: float, now: float) -> str:
    """Why the job is idle — the bot started no run of it for `[bot] job_ttl_days` (a job never run: since its
    creation) — or "". The default branch's job of a scheduled workflow is never idle: Databricks runs it."""
    days, (repo_name, branch, workflow) = settings.bot.job_ttl_days, parsed
    repo, wf = settings.repo(repo_name), settings.workflows.get(workflow)
    if not days or (repo and wf and wf.schedule and branch == repo.default_branch):
        return ""
    since = max(last_run, job.created_time / 1000)
    if not since or now - since <= days * DAY:  # no date at all: no sure answer
        return ""
    return f"no run for {days} days" if last_run else f"never ran in the {days} days since it was made"


def _gone(branch: str) -> str:
    """Why a job went, as a person reads it: `pull/7` jobs ran a fork's pull request."""
    number = _pr_number(branch)
    return f"pull request #{number} is closed" if number else f"branch {branch} no longer exists"


def _pr_number(branch: str) -> int | None:
    """7 for a fork's `pull/7` job (not a branch on GitHub: only refs/pull/7/head exists)."""
    number = branch.removeprefix("pull/")
    return int(number) if branch.startswith("pull/") and number.isdigit() else None


def branch_answers(forge: ForgeGateway | None, settings: Settings) -> BranchExists:
    """Is what a job ran for still there, asked of GitHub once per repository and pass? A GitHub App (or no GitHub
    at all) asks nothing and answers None: its deliveries remove the jobs of deleted branches and closed PRs."""
    if forge is None or (settings.github.app_id and settings.github.installation_id):
        why = "an App's failed deliveries are redelivered" if forge else "GitHub is not configured"
        log.info("janitor.asks_github_nothing", why=why)
        return lambda repo, branch: None
    listings: dict[tuple[str, str], set | None] = {}

    def listed(kind: str, repo: str) -> set | None:
        if (kind, repo.lower()) not in listings:
            try:
                found = forge.open_pull_numbers(repo) if kind == "pulls" else forge.branch_names(repo)
            except BotError as exc:  # never removed on an error: it is asked again in an hour
                log.warning("janitor.unsure", repo=repo, listing=kind, reason=exc.message)
                found = None
            listings[kind, repo.lower()] = found
        return listings[kind, repo.lower()]

    def alive(repo: str, branch: str) -> bool | None:
        number = _pr_number(branch)
        known = listed("pulls", repo) if number else listed("branches", repo)
        return None if known is None else (number or branch) in known

    return alive
