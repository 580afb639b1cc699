"""Per-branch jobs and their runs on Databricks: upsert, start, follow, clean up.

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
from workers.core.context import Deps
from workers.core.run_records import RemovedJob, RunContext, RunRecord
from workers.core.state import State
from workers.errors import BotError, NotFound, Permanent
from workers.gateways import ForgeGateway, JobRef, WorkspaceGateway
from workers.jobs import texts
from workers.jobs.spec import branch_refusal, dev_defaults, idempotency_token, job_settings, repo_path, run_parameters

log = get_logger("workers.jobs.branch_jobs")
Workspaces = Callable[[str], WorkspaceGateway]
Upsert = Callable[[], "Upserted"]  # upsert_job with every argument given
BranchExists = Callable[[str, str], bool | None]  # None: no sure answer


@dataclass
class Upserted:
    job_id: int
    name: str
    outcome: str  # created | reset | unchanged
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
) -> Upserted:
    """Make the branch's job for `workflow` match config: create if absent, reset only if changed."""
    # the environment the job lives in decides its run_as principal (/deploy prod runs in prod)
    body = job_settings(settings, repo, branch, workflow, sha, git_url, environment=ws.name)
    name, fp = body["name"], body["tags"][FINGERPRINT_TAG]
    cached = state.cached_job(ws.name, name)
    if cached and cached.fingerprint == fp:
        return Upserted(cached.job_id, name, "unchanged", body)
    with state.lock(f"job:{ws.name}:{name}"):
        job = ws.find_job(name)  # by name first: a create whose answer was lost may have happened
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
    workspaces: Workspaces, state: State, settings: Settings, repo_name: str, branch: str, sha: str
) -> list[Upserted]:
    """Every configured workflow the branch may run gets its job for this branch (and its Repo, if used): on
    the default branch every one, on any other only those that run where pull requests train (spec.branch_refusal)."""
    repo = _repo(settings, repo_name)
    out = []
    for workflow_name, workflow in settings.repo_workflows(repo).items():
        if why := branch_refusal(settings, repo, branch, workflow_name, workflow.environment):
            log.info("branch.job_skipped", repo=repo.name, branch=branch, workflow=workflow_name, why=why)
            continue
        ws = workspaces(workflow.environment)
        if repo.code_source == "repos":
            _check_out(ws, state, repo, branch)
        out.append(upsert_job(ws, state, settings, repo, branch, workflow_name, sha))
    return out


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


def stale_jobs(
    ws: WorkspaceGateway, settings: Settings, branch_exists: BranchExists, now: float | None = None
) -> list[tuple[int, str, str]]:
    """Managed jobs whose branch is surely gone or that are older than the TTL: (job_id, name, why).

    `branch_exists` answers True, False (gone, confirmed) or None (could not tell): only False removes."""
    now = now or time.time()
    out = []
    answers: dict[tuple[str, str], bool | None] = {}  # one question per branch, not per job
    for job in ws.managed_jobs(settings.bot.job_prefix, MANAGED_TAG):
        parsed = parse_job_name(settings.bot.job_prefix, job.name)
        if parsed is None:
            continue
        repo, branch, workflow = parsed
        age_days = (now - job.created_time / 1000) / 86400 if job.created_time else 0
        if settings.bot.job_ttl_days and age_days > settings.bot.job_ttl_days:
            out.append((job.job_id, job.name, f"older than {settings.bot.job_ttl_days} days"))
        elif settings.repo(repo) is None:
            out.append((job.job_id, job.name, f"repository {repo} is no longer configured"))
        elif why := _out_of_scope(settings, job.name, repo, branch, workflow):
            out.append((job.job_id, job.name, why))
        else:
            if (repo, branch) not in answers:
                answers[repo, branch] = branch_exists(repo, branch)
            if answers[repo, branch] is False:
                out.append((job.job_id, job.name, _gone(branch)))
    return out


def _out_of_scope(settings: Settings, name: str, repo_name: str, branch: str, workflow: str) -> str:
    """Why a branch may no longer have this job, made before branch jobs ran only where pull requests train
    (issue #18: a branch's `deploy` job ran its code as prod), or ""."""
    repo, wf = settings.repo(repo_name), settings.workflows.get(workflow)
    if repo is None or wf is None:
        return ""
    environment = name.rpartition("/")[2].partition("@")[2] or wf.environment  # `…/train@staging`: another's
    return branch_refusal(settings, repo, branch, workflow, environment)


def _gone(branch: str) -> str:
    """Why a job went, as a person reads it: `pull/7` jobs ran a fork's pull request."""
    number = _pr_number(branch)
    return f"pull request #{number} is closed" if number else f"branch {branch} no longer exists"


def _pr_number(branch: str) -> int | None:
    """7 for a fork's `pull/7` job (not a branch on GitHub: only refs/pull/7/head exists)."""
    number = branch.removeprefix("pull/")
    return int(number) if branch.startswith("pull/") and number.isdigit() else None


def clean_up(workspaces: Workspaces, state: State, settings: Settings, branch_exists: BranchExists) -> list[RemovedJob]:
    """The janitor: remove stale managed jobs in every environment; returns what it removed and why."""
    removed: list[RemovedJob] = []
    for env in settings.environments:
        ws = workspaces(env)
        for job_id, name, why in stale_jobs(ws, settings, branch_exists):
            for run_id in ws.active_runs(job_id):
                ws.cancel_run(run_id)
            if ws.delete_job(job_id):
                state.forget_job(ws.name, name)
                removed.append(RemovedJob(environment=env, job=name, job_id=job_id, why=why))
    log.info("janitor.done", removed=len(removed), jobs=[r.job for r in removed])
    return removed


def clean_up_and_tell(deps: Deps) -> list[RemovedJob]:
    """The hourly janitor, and a line in Slack for what it removed. Without GitHub only the age and
    configuration rules apply: nothing is removed for a branch nobody could ask about."""
    removed = clean_up(deps.workspaces, deps.state, deps.settings, branch_alive(deps.forge))
    if removed and deps.slack:
        deps.slack.post(texts.stale_jobs_removed(removed))
    return removed


def branch_alive(forge: ForgeGateway | None) -> BranchExists:
    """Is what a job ran for still there? True, False (GitHub said it is gone) or None (no sure answer:
    no GitHub, a rate limit, an error). A fork's `pull/<n>` job lives as long as PR n is open."""

    def alive(repo: str, branch: str) -> bool | None:
        if forge is None:
            return None
        number = _pr_number(branch)
        try:
            return forge.pull(repo, number).state == "open" if number else forge.branch_exists(repo, branch)
        except BotError as exc:  # never removed on an error: it is asked again in an hour
            log.warning("janitor.unsure", repo=repo, branch=branch, reason=exc.message)
            return None

    return alive
