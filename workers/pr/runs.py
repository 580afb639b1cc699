"""Runs someone or something asked for: start one (and tell the PR), follow it poll by poll, and
route the finished run to whoever waits for it (validation, deploy) and to the PR's report.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from core.logs import get_logger
from core.vocabulary import status_context
from workers.core import pipelines
from workers.core.context import Deps
from workers.core.run_records import RunContext
from workers.errors import Permanent
from workers.jobs import branch_jobs
from workers.jobs import results as run_results
from workers.pr import feedback, policy, texts
from workers.release import train as release

log = get_logger("workers.pr.runs")


def run_trigger(sha: str, pr: int | None) -> str:
    """What a push's or a PR's run is, from the signed body (the run token adds repo, branch and workflow): the
    pushed commit, or the PR and its head — never the delivery id, which anyone replaying the body chooses."""
    return f"pr:{pr}:{sha}" if pr else f"push:{sha}"


def start_and_follow(
    deps: Deps,
    *,
    repo: str,
    branch: str,
    sha: str,
    workflow: str,
    trigger: str,
    pr: int | None = None,
    requested_by: str = "",
    for_model: str = "",
    **options: Any,
) -> int:
    """Start the run (idempotent per trigger; `for_model`: for one of the repository's several models), tell the
    PR, schedule its follower.

    A permanent failure (refused by Databricks, unknown workflow) is told to the PR, when there is
    one and GitHub is configured, as an error status and the report's reason; then it is re-raised.
    """
    context = RunContext(model=for_model)
    try:
        started = branch_jobs.start_run(
            deps.workspaces,
            deps.state,
            deps.settings,
            repo=repo,
            branch=branch,
            sha=sha,
            workflow=workflow,
            trigger=trigger,
            pr=pr,
            requested_by=requested_by,
            context=context,
            **options,
        )
    except Permanent as exc:
        if pr and deps.forge:  # tell the PR, where people look, why its workflow did not start
            key = workflow + context.for_model
            feedback.could_not_start(deps.forge, deps.state, repo, pr, sha, key, exc.message)
        raise
    if pr and deps.forge:  # without GitHub credentials the run still runs; only the PR is not told
        feedback.announce(deps.forge, deps.state, started.record, started.run_page_url)
    deps.scheduler.follow(started.environment, started.run_id)
    return started.run_id


def start_for_each_model(deps: Deps, *, repo: str, workflow: str, **kwargs: Any) -> list[int]:
    """`start_and_follow` once per model the workflow's run is for (`policy.run_models`): one, unless it trains
    several models of the repository."""
    return [
        start_and_follow(deps, repo=repo, workflow=workflow, for_model=model, **kwargs)
        for model in policy.run_models(deps.settings, repo, workflow)
    ]


def rerun_check(
    deps: Deps,
    *,
    check_run_id: int,
    name: str,
    repo: str,
    sha: str,
    branch: str,
    trigger: str,
    pr: int | None,
    user: str,
) -> int | None:
    """ "Re-run" on one of the bot's check runs → that workflow again for the same commit."""
    found = policy.check_workflow(deps.settings, name, repo)
    if found is None:
        log.info("check.not_ours", check=name)
        return None
    workflow, model = found
    git_url = ""
    if not branch:  # a fork's commit: GitHub names neither its branch nor its pull request
        key = workflow + (f"/{model}" if model else "")  # the check the person clicked
        branch, pr, git_url = _pull_source(deps, repo, sha, pr, key, check_run_id)
    return start_and_follow(
        deps,
        repo=repo,
        branch=branch,
        sha=sha,
        workflow=workflow,
        trigger=trigger,
        pr=pr,
        requested_by=user,
        git_url=git_url,
        for_model=model,
    )


def _pull_source(
    deps: Deps, repo: str, sha: str, pr: int | None, workflow: str, check_run_id: int
) -> tuple[str, int, str]:
    """(branch, pr, git_url) to re-run a check of a commit no branch names: its open pull request, found
    by the commit, run as `/ok-to-test` allows; otherwise the person is told why not, and Permanent."""
    forge = deps.need_forge()
    pull = forge.pull(repo, pr) if pr else next(iter(forge.open_pulls_with_head(repo, sha)), None)
    if pull is None:
        why = texts.check_names_no_branch(check_run_id, workflow)
        forge.set_status(repo, sha, status_context(workflow), "error", why)  # the check run the person clicked
        raise Permanent(why)
    ok_sha = deps.state.ok_to_test_sha(repo, pull.number) if pull.fork else None
    refusal = policy.head_refusal(replace(pull, head_sha=sha), pull.number, ok_sha)  # /ok-to-test is per commit
    if refusal:
        feedback.could_not_start(forge, deps.state, repo, pull.number, sha, workflow, refusal)
        raise Permanent(refusal)
    branch, git_url = policy.run_source(pull, pull.number)
    return branch, pull.number, git_url


def follow(deps: Deps, environment: str, run_id: int, polls: int = 0) -> str:
    """One poll of a run: not finished → poll again later; finished → route and report; lost (Databricks
    refuses to tell, e.g. the run was deleted) → the PR that waits for it is told, then it stops."""
    try:
        finished, result, delay = run_results.follow(deps.workspaces(environment), deps.state, run_id)
    except Permanent as exc:
        _lost(deps, environment, run_id, exc.message)
        raise
    if not finished or result is None:
        deps.scheduler.follow(environment, run_id, polls + 1, delay)
        return "following"
    record = deps.state.run(environment, run_id)
    if record is None:  # its record expired (keys.RUN_TTL) or was never written: nobody to tell
        log.info("run.unknown", run_id=run_id, environment=environment, result=result.result)
        return "logged"
    deps = pipelines.at(deps, record.repo, record.sha)  # the pipeline it was started from (its file, if any)
    if record.context.purpose:  # a step of the release train (workers/release/train.py)
        release.on_run_finished(deps, record, result)
    has_pr = bool(record.pr)
    return feedback.report_run(
        record,
        result,
        forge=deps.forge if has_pr else None,
        state=deps.state,
        settings=deps.settings,
        registry=deps.registry if has_pr else None,
    )


def _lost(deps: Deps, environment: str, run_id: int, reason: str) -> None:
    """A run the bot can no longer follow: its record says so, and its PR (if any) is told."""
    record = deps.state.update_run(environment, run_id, state="INTERNAL_ERROR", error=reason)
    log.warning("run.lost", run_id=run_id, environment=environment, reason=reason)
    if record is not None and record.pr and deps.forge:
        feedback.could_not_follow(deps.forge, deps.state, record, record.pr, reason)
