"""Saved jobs: which ones a branch may have, and how many a workspace will hold (`mlops-bot check-config`'s estimate).

A branch's jobs are made when first needed (workers/jobs/branch_jobs.py): a push makes the jobs of the workflows it
runs, a pull request or a command the job of the workflow it starts; the janitor removes a job the bot has not run
for `[bot] job_ttl_days`. Databricks caps the saved jobs of a workspace — its resource-limits table reads "Jobs |
Saved jobs | 10000 | Workspace | Fixed: Yes" (docs.databricks.com/aws/en/resources/limits; learn.microsoft.com's
Azure page says the same) — so check-config adds up what a configuration may keep at once, per workspace (the
environments that share a host are one workspace):

    saved jobs ≈ active_branches_per_repo × Σ over repositories (the jobs one of its branches may have there)
                 + Σ over repositories (its default branch's jobs there: one per workflow and environment it runs in)

counted high on purpose, as if every active branch had run every workflow it may run within the TTL. A repository
that keeps its workflows in a file of its own (core/pipeline.py) cannot be read here: it counts as
PIPELINE_FILE_BRANCH_JOBS a branch and PIPELINE_FILE_DEFAULT_JOBS on its default branch (examples/fraud-detection's
file: `fit` and `unit-tests` on a branch; with `champion-check` and `ship`, four on its default branch).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from core import stages

if TYPE_CHECKING:  # config.py builds on core; this module reads its settings
    from core.config import Repo, Settings

SAVED_JOBS_LIMIT = 10_000  # Databricks' saved jobs per workspace (fixed: no increase can be asked for)
WARN_SHARE = 0.8  # check-config warns past this share of the limit
PIPELINE_FILE_BRANCH_JOBS = 2
PIPELINE_FILE_DEFAULT_JOBS = 4

# --- which jobs a branch may have ---------------------------------------------------------------------
# The default branch's code is reviewed: every workflow may have a job there (the release train's among them).
# Any other branch's code is under review: its jobs run only where a pull request trains, as that stage's
# principal, or anyone who may run the job from the Databricks UI runs unreviewed code as staging or prod.
DEFAULT_RELEASE_ENVIRONMENTS = frozenset({"staging", "prod"})  # the default stages', when no model names its own


def branch_environments(settings: Settings, repo: Repo) -> set[str]:
    """Where a branch under review runs: the environments of the PR stages of the repository's models; for a
    repository without models, every environment no model's staging or prod stage runs in."""
    models = settings.models_for_repo(repo.name)
    if models:
        return {stages.stage(settings, m, "pull_request").environment for m in models}
    released = {s.environment for m in settings.models for s in settings.stages(m) if s.trigger != "pull_request"}
    return set(settings.environments) - (released or DEFAULT_RELEASE_ENVIRONMENTS)


def release_workflows(settings: Settings, repo: Repo) -> set[str]:
    """What only the release train runs, from the default branch: its staging and prod stages' workflows and
    validation, unless a PR stage runs the same workflow (train)."""
    train = [s for m in settings.models_for_repo(repo.name) for s in settings.stages(m)]
    by_pr = {s.workflow for s in train if s.trigger == "pull_request"}
    return {w for s in train if s.trigger != "pull_request" for w in (s.workflow, s.validate_workflow) if w} - by_pr


def branch_environment(settings: Settings, repo: Repo, workflow: str) -> str:
    """Where a branch's job of `workflow` lives: the PR stage's environment when a model's PR stage runs it (a
    PR's `/train`), else the workflow's own."""
    dev = stages.dev_model(settings, repo.name, workflow)
    return dev[1].environment if dev else settings.workflows[workflow].environment


def branch_workflows(settings: Settings, repo: Repo) -> dict[str, str]:
    """The workflows a branch other than the default one may have a job of, each with the environment it lives in."""
    release, allowed = release_workflows(settings, repo), branch_environments(settings, repo)
    where = {w: branch_environment(settings, repo, w) for w in settings.repo_workflows(repo) if w not in release}
    return {w: env for w, env in where.items() if env in allowed}


def default_branch_jobs(settings: Settings, repo: Repo) -> set[tuple[str, str]]:
    """(workflow, environment) of every job the default branch may have: each workflow where it lives, and each
    release stage's workflow and validation where that stage runs (`…/main/train@staging`)."""
    jobs = {(w, wf.environment) for w, wf in settings.repo_workflows(repo).items()}
    for s in (s for m in settings.models_for_repo(repo.name) for s in settings.stages(m)):
        jobs |= {(w, s.environment) for w in (s.workflow, s.validate_workflow) if w}
    return jobs


# --- check-config's estimate --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class WorkspaceEstimate:
    host: str
    environments: tuple[str, ...]
    repos: int  # repositories whose branches have jobs here
    branch_jobs: int  # Σ over those repositories: the jobs one active branch may have here
    default_jobs: int  # Σ over repositories: their default branches' jobs here
    active_branches: int  # [bot] active_branches_per_repo

    @property
    def saved_jobs(self) -> int:
        return self.active_branches * self.branch_jobs + self.default_jobs


def estimate(settings: Settings) -> list[WorkspaceEstimate]:
    """The saved jobs each workspace of the configuration may hold at once (the module's docstring says how)."""
    hosts: dict[str, list[str]] = {}
    for env, cfg in sorted(settings.environments.items()):
        hosts.setdefault(cfg.host.rstrip("/").lower(), []).append(env)
    out = []
    for host, envs in hosts.items():
        per_repo = [_jobs_there(settings, repo, set(envs)) for repo in settings.repos]
        out.append(
            WorkspaceEstimate(
                host=host,
                environments=tuple(envs),
                repos=sum(1 for branch, _ in per_repo if branch),
                branch_jobs=sum(branch for branch, _ in per_repo),
                default_jobs=sum(default for _, default in per_repo),
                active_branches=settings.bot.active_branches_per_repo,
            )
        )
    return out


def _jobs_there(settings: Settings, repo: Repo, envs: set[str]) -> tuple[int, int]:
    """(jobs one active branch of `repo` may have in `envs`, its default branch's jobs there)."""
    if repo.pipeline_file:
        here = bool(branch_environments(settings, repo) & envs)
        return (PIPELINE_FILE_BRANCH_JOBS, PIPELINE_FILE_DEFAULT_JOBS) if here else (0, 0)
    branch = sum(1 for env in branch_workflows(settings, repo).values() if env in envs)
    return branch, sum(1 for _, env in default_branch_jobs(settings, repo) if env in envs)


def saved_jobs_warnings(settings: Settings) -> list[str]:
    """One line per workspace whose estimate passes WARN_SHARE of SAVED_JOBS_LIMIT, with the numbers behind it."""
    return [
        f"workspace {e.host} ({', '.join(e.environments)}): about {e.saved_jobs:,} saved jobs — {e.repos} "
        f"repositories × {e.active_branches} active branches ([bot] active_branches_per_repo) × "
        f"{e.branch_jobs / max(e.repos, 1):.1f} jobs per active branch + {e.default_jobs:,} on default branches — over "
        f"{WARN_SHARE:.0%} of the {SAVED_JOBS_LIMIT:,} saved jobs Databricks allows a workspace; lower [bot] "
        "job_ttl_days, or give some repositories a workspace of their own"
        for e in estimate(settings)
        if e.saved_jobs > WARN_SHARE * SAVED_JOBS_LIMIT
    ]
