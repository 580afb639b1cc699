"""Runs someone or something asked for: start one (and tell the PR), follow it poll by poll, and
route the finished run to whoever waits for it (validation, deploy) and to the PR's report.
"""

from __future__ import annotations

from typing import Any

from bot.logs import get_logger
from workers import approvals, branch_jobs, feedback, policy, texts
from workers.context import Deps
from workers.errors import Permanent

log = get_logger("workers.runs")


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
    **options: Any,
) -> int:
    """Start the run (idempotent per trigger), tell the PR, schedule its follower.

    A permanent failure (refused by Databricks, unknown workflow) is told to the PR, when there is
    one and GitHub is configured, as an error status and the report's reason; then it is re-raised.
    """
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
            **options,
        )
    except Permanent as exc:
        if pr and deps.forge:  # tell the PR, where people look, why its workflow did not start
            feedback.could_not_start(deps.forge, deps.state, repo, pr, sha, workflow, exc.message)
        raise
    if pr and deps.forge:  # without GitHub credentials the run still runs; only the PR is not told
        feedback.announce(deps.forge, deps.state, started.record, started.run_page_url)
    deps.scheduler.follow(started.environment, started.run_id)
    return started.run_id


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
    workflow = policy.check_workflow(deps.settings, name)
    if workflow is None:
        log.info("check.not_ours", check=name)
        return None
    if not branch:
        raise Permanent(texts.check_names_no_branch(check_run_id, workflow))
    return start_and_follow(
        deps, repo=repo, branch=branch, sha=sha, workflow=workflow, trigger=trigger, pr=pr, requested_by=user
    )


def follow(deps: Deps, environment: str, run_id: int, polls: int = 0) -> str:
    """One poll of a run: not finished → poll again later; finished → route and report."""
    finished, result, delay = branch_jobs.follow(deps.workspaces(environment), deps.state, run_id)
    if not finished or result is None:
        deps.scheduler.follow(environment, run_id, polls + 1, delay)
        return "following"
    record = deps.state.run(environment, run_id) or {}
    model = deps.settings.models.get(record.get("model", ""))
    if model and record["workflow"] == model.validate_workflow:
        approvals.on_validated(deps, record, result, policy.task_outputs(result))
    elif model and record.get("deploy_to"):
        approvals.deployed(deps, record, result)
    has_pr = bool(record.get("pr"))
    return feedback.report_run(
        record,
        result,
        forge=deps.forge if has_pr else None,
        state=deps.state,
        settings=deps.settings,
        registry=deps.registry if has_pr else None,
    )
