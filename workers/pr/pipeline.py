"""A push or pull request of a repository that keeps its pipeline in a file of its own (core/pipeline.py): the
web process cannot read the file, so the worker does it here, at the pushed commit.

    the file does not validate   the `mlops-bot/pipeline` check fails and the PR is told each key; nothing runs
    the file changed in the PR   the plan: jobs created, changed (with the fields) or removed, model rules changed
    then                         the branch's jobs are brought up to date, and the workflows this event runs are
                                 started (their jobs made if missing: branch_jobs.sync_branch)
"""

from __future__ import annotations

from core import stages
from core.config import Repo
from core.logs import get_logger
from workers.core import pipelines, sticky
from workers.core.context import Deps
from workers.jobs import branch_jobs, plan
from workers.pr import runs

log = get_logger("workers.pr.pipeline")
PLAN_KIND = "plan"


def on_branch_event(
    deps: Deps,
    *,
    repo: str,
    branch: str,
    sha: str,
    trigger: str,
    pr: int | None = None,
    requested_by: str = "",
    base_sha: str = "",
) -> list[int]:
    """A push (`trigger` "push") or a pull request's new head ("pull_request"): plan, sync, start. Returns the
    runs started."""
    own = deps.settings.own_pipeline(repo)
    try:
        effective = pipelines.at(deps, repo, sha)
    except pipelines.PipelineRefused as refused:
        if pr and own:
            _publish(
                deps,
                repo,
                pr,
                sha,
                "failure",
                "refused: see the pull request",
                plan.render_refused(own.pipeline_file, refused.lines),
            )
        log.info("pipeline.nothing_runs", repo=repo, branch=branch, sha=sha, reason=refused.message[:300])
        return []
    if pr and own:
        _plan(deps, effective, own, pr, sha, base_sha)
    branch_jobs.sync_branch(effective.workspaces, effective.state, effective.settings, repo, branch, sha, trigger)
    cfg = effective.settings.repo(repo)
    started = []
    for name, wf in effective.settings.repo_workflows(cfg).items() if cfg else ():
        if branch_jobs.starts(wf, branch, trigger):  # one run per model, for a workflow that trains several
            started += runs.start_for_each_model(
                effective,
                repo=repo,
                branch=branch,
                sha=sha,
                workflow=name,
                trigger=runs.run_trigger(sha, pr),
                pr=pr,
                requested_by=requested_by,
            )  # fmt: skip
    return started


def _plan(deps: Deps, effective: Deps, own: Repo, pr: int, sha: str, base_sha: str) -> None:
    """The plan, when the PR's file differs from its base's (a PR that does not touch it gets no plan)."""
    repo, source = own.name, own.pipeline_file
    if base_sha and pipelines.file_text(deps, own, base_sha) == pipelines.file_text(deps, own, sha):
        return
    try:
        before = pipelines.at(deps, repo, base_sha).settings if base_sha else None
    except pipelines.PipelineRefused:
        before = None  # the base's file is not usable: every job is new to this one
    changes = plan.plan(before, effective.settings, repo)
    warnings = [w.removeprefix(f"{repo}: ") for w in stages.pipeline_warnings(effective.settings)]
    _publish(deps, repo, pr, sha, "success", plan.headline(changes), plan.render(source, changes, warnings))


def _publish(deps: Deps, repo: str, pr: int, sha: str, state: str, headline: str, body: str) -> None:
    forge = deps.need_forge()
    sticky.upsert(forge, deps.state, repo, pr, PLAN_KIND, "pipeline", body)
    forge.set_status(repo, sha, plan.PLAN_CONTEXT, state, headline)
