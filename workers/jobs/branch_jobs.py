"""Per-branch jobs and their runs on Databricks: made when first needed, kept up to date, started, removed.

A branch has a saved job only where runs happen (core/saved_jobs.py counts them): a push makes the jobs of the
workflows it runs (and the default branch's scheduled ones), and brings the branch's other jobs up to date; a pull
request, a command or the release train makes the job of the workflow it starts, in `start_run`. The janitor
(workers/jobs/janitor.py) removes a job the bot has not run for `[bot] job_ttl_days`.

Idempotent by construction: a job is found by its name, `run_now` carries an idempotency token
derived from the triggering delivery, and a Redis lock keeps two workers from creating one name
twice. Any of these functions may be re-run after a crash and leaves the same end state.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from core.config import Repo, Settings, Workflow
from core.logs import get_logger
from core.vocabulary import FINGERPRINT_TAG, MANAGED_TAG, job_name, parse_job_name
from workers.core.run_records import RunContext, RunRecord
from workers.core.state import State
from workers.errors import NotFound, Permanent
from workers.gateways import JobRef, WorkspaceGateway
from workers.jobs import texts
from workers.jobs.spec import branch_refusal, dev_defaults, idempotency_token, job_settings, repo_path, run_parameters

log = get_logger("workers.jobs.branch_jobs")
Workspaces = Callable[[str], WorkspaceGateway]
Upsert = Callable[[], "Upserted"]  # upsert_job with every argument given
ABSENT = "absent"  # upsert_job(create=False) of a job that does not exist: left so


@dataclass
class Upserted:
    job_id: int
    name: str
    outcome: str  # created | reset | unchanged | absent (ABSENT: not made, job_id 0)
    settings: dict = field(repr=False, default_factory=dict)


def _repo(settings: Settings, name: str) -> Repo:
    repo = settings.repo(name)
    if repo is None:
        raise Permanent(texts.not_configured("repository", name))
    return repo


def upsert_job(
    ws: WorkspaceGateway,
    state: State,
    settings: Settings,
    repo: Repo,
    branch: str,
    workflow: str,
    sha: str,
    git_url: str = "",
    *,
    create: bool = True,
) -> Upserted:
    """Make the branch's job for `workflow` match config: reset only if changed; create it if absent, or with
    `create=False` leave it absent (a push brings the jobs a branch has up to date, and makes no others)."""
    # the environment the job lives in decides its run_as principal (/deploy prod runs in prod)
    body = job_settings(settings, repo, branch, workflow, sha, git_url, environment=ws.name)
    name, fp = body["name"], body["tags"][FINGERPRINT_TAG]
    cached = state.cached_job(ws.name, name)
    if cached and cached.fingerprint == fp:
        return Upserted(cached.job_id, name, "unchanged", body)
    with state.lock(f"job:{ws.name}:{name}"):
        job = ws.find_job(name)  # by name first: a create whose answer was lost may have happened
        if job is None and not create:
            state.forget_job(ws.name, name)
            return Upserted(0, name, ABSENT, body)
        if job is None:
            job_id, outcome = _create_once(ws, name, body), "created"
        elif job.tags.get(FINGERPRINT_TAG) != fp:
            job_id, outcome = job.job_id, "reset"
            ws.reset_job(job_id, body)
        else:
            job_id, outcome = job.job_id, "unchanged"
        state.cache_job(ws.name, name, job_id, fp)
    log.info("job.upserted", job=name, job_id=job_id, outcome=outcome, environment=ws.name)
    return Upserted(job_id, name, outcome, body)


def _check_out(ws: WorkspaceGateway, state: State, repo: Repo, branch: str) -> None:
    """The branch's Git folder at its newest commit, one worker at a time: a PR's workflows start side by
    side, and a second repos/create of one path is refused (RESOURCE_ALREADY_EXISTS)."""
    path = repo_path(repo, branch)
    with state.lock(f"git-folder:{ws.name}:{path}", ttl=120, wait=30):  # a clone can take a while
        ws.checkout_repo(path, repo.git_url, repo.git_provider, branch)


def _create_once(ws: WorkspaceGateway, name: str, body: dict) -> int:
    """jobs/create has no idempotency token, and the SDK re-sends a create whose connection dropped:
    a lost answer can leave two jobs of this name. Keep the oldest, delete the others (under the lock,
    only this call creates jobs of this name)."""
    created = ws.create_job(body)
    same = ws.find_jobs(name)
    keep = same[0].job_id if same else created
    for extra in same[1:]:
        ws.delete_job(extra.job_id)
        log.warning("job.duplicate_deleted", job=name, job_id=extra.job_id, kept=keep, environment=ws.name)
    return keep


def sync_branch(
    workspaces: Workspaces, state: State, settings: Settings, repo_name: str, branch: str, sha: str, event: str = "push"
) -> list[Upserted]:
    """A push (or a pull request's new head, `event` "pull_request") to `branch`: of the workflows the branch may
    run (spec.branch_refusal), each job the branch has is brought up to date, and the job of each workflow this
    event starts (`made_by`) is made if missing; every other job waits for the first run that needs it."""
    repo = _repo(settings, repo_name)
    out = []
    for workflow_name, workflow in settings.repo_workflows(repo).items():
        if why := branch_refusal(settings, repo, branch, workflow_name, workflow.environment):
            log.info("branch.job_skipped", repo=repo.name, branch=branch, workflow=workflow_name, why=why)
            continue
        ws, create = workspaces(workflow.environment), made_by(repo, branch, workflow, event)
        done = upsert_job(ws, state, settings, repo, branch, workflow_name, sha, create=create)
        if repo.code_source == "repos" and done.outcome != ABSENT:
            _check_out(ws, state, repo, branch)  # its Git folder at the branch's newest commit
        out.append(done)
    return out


def starts(workflow: Workflow, branch: str, event: str) -> bool:
    """Does `event` ("push", "pull_request") on `branch` start `workflow`?"""
    return workflow.runs_on_push_to(branch) if event == "push" else event in workflow.run_on


def made_by(repo: Repo, branch: str, workflow: Workflow, event: str) -> bool:
    """Does `event` on `branch` need the job of `workflow` now: it starts the workflow, or the job is the default
    branch's job of a scheduled workflow (Databricks starts those runs itself)?"""
    return starts(workflow, branch, event) or (branch == repo.default_branch and workflow.schedule is not None)


def _branch_jobs(
    workspaces: Workspaces, settings: Settings, repo: Repo, branch: str
) -> Iterator[tuple[WorkspaceGateway, str, JobRef | None]]:
    """The branch's jobs: one per workflow; with a pipeline file (workflows differ by commit) all named for it."""
    if not repo.pipeline_file:
        for workflow_name, workflow in settings.repo_workflows(repo).items():
            ws = workspaces(workflow.environment)
            name = job_name(settings.bot.job_prefix, repo.name, branch, workflow_name)
            yield ws, name, ws.find_job(name)
        return
    prefix = settings.bot.job_prefix
    for ws in map(workspaces, sorted(repo.guard_rails.environments or settings.environments)):
        for job in ws.managed_jobs(f"{prefix}/{repo.name}/{branch}", MANAGED_TAG):
            if (parse_job_name(prefix, job.name) or ())[:2] == (repo.name, branch):
                yield ws, job.name, job


def remove_branch(workspaces: Workspaces, state: State, settings: Settings, repo_name: str, branch: str) -> list[str]:
    """Cancel the branch's active runs, delete its jobs and Repos. Returns the names removed."""
    repo = _repo(settings, repo_name)
    removed: list[str] = []
    environments = sorted({wf.environment for wf in settings.repo_workflows(repo).values()})
    for ws, name, job in _branch_jobs(workspaces, settings, repo, branch):
        state.forget_job(ws.name, name)
        if job is None:
            continue
        for run_id in ws.active_runs(job.job_id):
            ws.cancel_run(run_id)
        if ws.delete_job(job.job_id):
            removed.append(name)
    if repo.code_source == "repos":
        for env in environments:
            if workspaces(env).delete_repo(repo_path(repo, branch)):
                removed.append(f"{env}:{repo_path(repo, branch)}")
    log.info("branch.removed", repo=repo.name, branch=branch, removed=removed)
    return removed


@dataclass
class Started:
    run_id: int
    job_id: int
    environment: str
    superseded: list[int]
    record: RunRecord
    run_page_url: str = ""


def start_run(
    workspaces: Workspaces,
    state: State,
    settings: Settings,
    *,
    repo: str,
    branch: str,
    sha: str,
    workflow: str,
    trigger: str,
    pr: int | None = None,
    requested_by: str = "",
    git_url: str = "",
    context: RunContext | None = None,
    **options: Any,
) -> Started:
    """Upsert the job, supersede (or refuse) older runs, run_now with an idempotency token derived from
    `trigger` (delivery id + command index): a retried or re-delivered task never starts a second run.
    `options`: dataset, params (dict), suite, model, version, champion, environment (a release stage's),
    supersede (False: leave the job's other active runs alone)."""
    repo_cfg = _code_source(_repo(settings, repo), git_url)
    wf = _workflow(settings, repo_cfg, workflow)
    context = context or RunContext()
    options = dev_defaults(settings, repo_cfg.name, workflow, options, context.model)
    ws = workspaces(_environment(settings, wf, options.get("environment", "")))
    if why := branch_refusal(settings, repo_cfg, branch, workflow, ws.name):
        raise Permanent(why)  # a branch's code under review never runs as staging or prod
    if repo_cfg.code_source == "repos":
        _check_out(ws, state, repo_cfg, branch)
    upsert = partial(upsert_job, ws, state, settings, repo_cfg, branch, workflow, sha, git_url)
    job, active = _job_and_active_runs(ws, state, upsert, context.model)
    token = idempotency_token(trigger, repo, branch, workflow, *([context.model] if context.model else []))
    if wf.on_conflict == "refuse":
        _refuse_if_running(ws, state, active, token, workflow, branch)
    parameters = _parameters(job.settings, wf, ws.name, sha, pr, requested_by, options)
    # run_now first: with the same token it returns the run a crashed attempt already started,
    # so what is cancelled below can never be this trigger's own run.
    job, run_id = _run_now(ws, state, job, upsert, parameters, token)
    # a release stage's runs (options["supersede"] = False) never cancel each other: each is another version
    superseded = (
        _supersede(ws, state, active, run_id) if wf.cancel_superseded and options.get("supersede", True) else []
    )
    record = _remember(state, RunRecord(
        run_id=run_id, job_id=job.job_id, job=job.name, environment=ws.name, repo=repo, branch=branch, sha=sha,
        workflow=workflow, pr=None if context.release_model else pr,  # a release's run owns no PR's report
        requested_by=requested_by, parameters=parameters, token=token, state="PENDING", started_at=time.time(),
        context=context,
    ))  # fmt: skip
    log.info("run.started", run_id=run_id, job=job.name, superseded=superseded, parameters=parameters)
    return Started(run_id, job.job_id, ws.name, superseded, record, ws.get_run(run_id).run_page_url)


def _environment(settings: Settings, wf: Workflow, asked: str) -> str:
    """The workflow's environment, or the one asked for (`/deploy prod`)."""
    return asked if asked in settings.environments else wf.environment


def _remember(state: State, record: RunRecord) -> RunRecord:
    """The run's record in Redis; a retried start keeps the first one."""
    if state.run(record.environment, record.run_id) is None:
        state.save_run(record)
    return state.run(record.environment, record.run_id) or record


def _workflow(settings: Settings, repo: Repo, workflow: str) -> Workflow:
    wf = settings.workflows.get(workflow)
    if wf is None or workflow not in settings.repo_workflows(repo):
        raise Permanent(f"workflow `{workflow}` is not configured for {repo.name}")
    return wf


def _code_source(repo: Repo, git_url: str) -> Repo:
    """A fork's PR (`git_url` given, branch `pull/<n>`) runs from Git at its head commit, whatever config says:
    `pull/<n>` is no branch on GitHub (only `refs/pull/<n>/head`), and a Git folder checks out only branches
    and tags. A PR's head commit can be fetched from its repository."""
    if not git_url:
        return repo
    return repo.model_copy(update={"pin": "commit", "code_source": "git"})


def _parameters(
    job_settings: dict, wf: Workflow, environment: str, sha: str, pr: int | None, requested_by: str, options: dict
) -> dict[str, str]:
    params = ",".join(f"{k}={v}" for k, v in (options.get("params") or {}).items())
    values = dict(sha=sha, dataset=options.get("dataset") or wf.dataset, pr=pr or "", params=params)
    values.update({k: options.get(k, "") for k in ("suite", "model", "version", "champion")})
    return run_parameters(job_settings, **values, environment=environment, requested_by=requested_by)


def _job_and_active_runs(
    ws: WorkspaceGateway, state: State, upsert: Upsert, model: str = ""
) -> tuple[Upserted, list[int]]:
    """The branch's job for `workflow` (upserted) and its active runs (of `model`'s, when the job trains several:
    one model's run never supersedes another's)."""
    job = upsert()
    try:
        active = ws.active_runs(job.job_id)
    except NotFound:  # deleted behind the cache's back: find or create it again
        state.forget_job(ws.name, job.name)
        job = upsert()
        active = ws.active_runs(job.job_id)
    return job, [r for r in active if (found := state.run(ws.name, r)) is None or found.context.model == model]


def _run_now(
    ws: WorkspaceGateway, state: State, job: Upserted, upsert: Upsert, parameters: dict[str, str], token: str
) -> tuple[Upserted, int]:
    """run_now; a job deleted behind the cache (Databricks answers 400 INVALID_PARAMETER_VALUE "Job …
    does not exist") is forgotten, found or created again, and run once more."""
    try:
        return job, ws.run_now(job.job_id, parameters, token)
    except NotFound:
        log.info("job.gone", job=job.name, job_id=job.job_id, environment=ws.name)
        state.forget_job(ws.name, job.name)
        job = upsert()
        return job, ws.run_now(job.job_id, parameters, token)


def _refuse_if_running(
    ws: WorkspaceGateway, state: State, active: list[int], token: str, workflow: str, branch: str
) -> None:
    """on_conflict = "refuse": another trigger's run is active → Permanent (told to whoever asked)."""
    others = [r for r in active if (found := state.run(ws.name, r)) is None or found.token != token]
    if others:
        raise Permanent(
            f"`{workflow}` is already running for {branch} (run {others[0]}); `/cancel` it or wait for it to finish"
        )


def _supersede(ws: WorkspaceGateway, state: State, active: list[int], run_id: int) -> list[int]:
    """Cancel the older active runs; each record says which run superseded it."""
    superseded = []
    for other in active:
        if other != run_id:
            ws.cancel_run(other)
            superseded.append(other)
            state.update_run(ws.name, other, superseded_by=run_id)
    return superseded
