"""Per-branch jobs, pure: the naming convention, tags, and Jobs API settings built from config.

    <prefix>/<owner>/<repo>/<branch>/<workflow>

The branch is kept verbatim (Git allows slashes and unicode; workflow names have no slash, so the
last segment is always the workflow). Tags are sanitised to Databricks' rules.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata

from databricks.sdk.service import jobs as J

from core import stages
from core.compute import BOT_JOB_TAGS, MAX_TAGS
from core.config import Repo, Settings, TaskSpec, Workflow
from core.saved_jobs import branch_environment, branch_environments, release_workflows
from core.vocabulary import FINGERPRINT_TAG, MANAGED_TAG, PLACEHOLDER, PLACEHOLDERS, job_name, parse_job_name
from workers.errors import Permanent
from workers.jobs import texts
from workers.jobs.compute import access_control_list, job_compute, run_as, task_compute

__all__ = [
    "FINGERPRINT_TAG",
    "MANAGED_TAG",
    "job_name",
    "parse_job_name",
    "job_settings",
    "job_spec",
    "job_tags",
    "tag_value",
    "repo_path",
    "fingerprint",
    "idempotency_token",
    "run_parameters",
    "dev_defaults",
    "schedule",
    "branch_refusal",
    "release_workflows",
]
MAX_TAG_VALUE = 255
# Fixed per job (the job belongs to one branch); every other placeholder is a job parameter.
LITERAL_PLACEHOLDERS = {"branch", "repo", "workflow"}
JOB_PARAMETERS = [p for p in PLACEHOLDERS if p not in LITERAL_PLACEHOLDERS]
_TAG_UNSAFE = re.compile(r"[^A-Za-z0-9 +\-=._:/@]")


def tag_value(value: str, limit: int = MAX_TAG_VALUE) -> str:
    """Databricks tags allow letters, digits, spaces and + - = . _ : / @; anything else becomes _."""
    ascii_ = unicodedata.normalize("NFKD", value).encode("ascii", "ignore").decode()
    return _TAG_UNSAFE.sub("_", ascii_)[:limit]


def job_tags(repo: str, branch: str, workflow: str, sha: str, fingerprint: str = "") -> dict[str, str]:
    tags = {
        MANAGED_TAG: "managed",
        "repo": tag_value(repo),
        "branch": tag_value(branch),
        "workflow": tag_value(workflow),
        "sha": tag_value(sha),
    }
    if fingerprint:
        tags[FINGERPRINT_TAG] = fingerprint
    assert set(tags) <= set(BOT_JOB_TAGS) and len(BOT_JOB_TAGS) <= MAX_TAGS  # config counts on these
    return tags


def repo_path(repo: Repo, branch: str) -> str:
    """/Repos/<folder>/<repo>-<branch>, made path-safe; a short hash keeps distinct branches distinct."""
    name = repo.name.split("/")[1]
    safe = re.sub(r"[^A-Za-z0-9._-]+", "-", branch).strip("-") or "branch"
    if safe != branch:
        safe = f"{safe[:80]}-{hashlib.sha256(branch.encode()).hexdigest()[:8]}"
    return f"/Repos/{repo.repos_folder}/{name}-{safe}"


def no_references(what: str, value: str) -> str:
    """`value` as it is, or Permanent when it holds `{{`: Databricks resolves `{{…}}` in task parameters
    (dynamic value references) and has no escape for it, so such a value would not arrive as written."""
    if "{{" in value:
        raise Permanent(
            f"{what} {value[:80]!r} contains '{{{{', which Databricks would read as a dynamic value reference; "
            "rename it (the bot cannot pass it as written)"
        )
    return value


def _expand(text: str, literals: dict[str, str]) -> str:
    def sub(m: re.Match) -> str:
        name = m.group(1)
        if name in literals:
            return no_references(name, literals[name])
        return f"{{{{job.parameters.{name}}}}}"  # resolved by Databricks at run time

    return PLACEHOLDER.sub(sub, text)


def _used_parameters(workflow: Workflow) -> list[str]:
    used = {name for t in workflow.tasks for p in t.parameters for name in PLACEHOLDER.findall(p)}
    return [p for p in JOB_PARAMETERS if p in used or p == "sha"]


def _code(spec: TaskSpec, repo: Repo, branch: str, params: list[str]) -> dict:
    """The task's code: a Python file, a notebook (widgets from "key=value" parameters) or a wheel entry point."""
    in_repo = repo.code_source == "repos"
    path = f"{repo_path(repo, branch)}/{spec.file}" if in_repo else spec.file
    source = J.Source.WORKSPACE if in_repo else J.Source.GIT
    if spec.type == "spark_python_task":
        return {"spark_python_task": J.SparkPythonTask(python_file=path, parameters=params, source=source)}
    if spec.type == "notebook_task":
        base = {}
        for p in params:  # notebooks take widgets: "key=value" parameters become base_parameters
            key, _, value = p.partition("=")
            base[key] = value
        notebook = J.NotebookTask(notebook_path=path.removesuffix(".py"), base_parameters=base, source=source)
        return {"notebook_task": notebook}
    wheel = J.PythonWheelTask(package_name=spec.package, entry_point=spec.entry_point, parameters=params)
    return {"python_wheel_task": wheel}


def _task(spec: TaskSpec, workflow: Workflow, repo: Repo, branch: str, literals: dict[str, str]) -> J.Task:
    params = [_expand(p, literals) for p in spec.parameters]
    return J.Task(
        task_key=spec.key,
        depends_on=[J.TaskDependency(task_key=d) for d in spec.depends_on] or None,
        timeout_seconds=spec.timeout_seconds or None,
        **task_compute(spec, workflow),
        **_code(spec, repo, branch, params),
    )


def _git_source(repo: Repo, branch: str, sha: str, git_url: str) -> J.GitSource:
    url = git_url or repo.git_url or f"https://github.com/{repo.name}.git"
    by_commit = repo.pin == "commit" and bool(sha)
    return J.GitSource(
        git_url=url,
        git_provider=J.GitProvider(repo.git_provider),
        git_commit=sha if by_commit else None,
        git_branch=None if by_commit else branch,
    )


def job_spec(
    settings: Settings, repo: Repo, branch: str, workflow_name: str, sha: str, git_url: str = "", environment: str = ""
) -> J.JobSettings:
    """The Jobs API 2.2 settings for one branch's workflow, built from the SDK's dataclasses.

    `git_url` overrides the repository's URL: a fork's pull request runs the fork's code.
    `environment` is where the job is written (default: the workflow's): it chooses `run_as`.
    """
    workflow = settings.workflows[workflow_name]
    literals = {"branch": branch, "repo": repo.name, "workflow": workflow_name}
    return J.JobSettings(
        name=job_name(
            settings.bot.job_prefix,
            repo.name,
            branch,
            workflow_name,
            "" if environment in ("", workflow.environment) else environment,
        ),
        description=workflow.description or None,
        max_concurrent_runs=workflow.max_concurrent_runs,
        timeout_seconds=workflow.timeout_seconds,
        parameters=[
            J.JobParameterDefinition(name=p, default=_default(p, workflow, sha)) for p in _used_parameters(workflow)
        ],
        tasks=[_task(t, workflow, repo, branch, literals) for t in workflow.tasks],
        queue=J.QueueSettings(enabled=True),
        git_source=_git_source(repo, branch, sha, git_url) if repo.code_source == "git" else None,
        run_as=run_as(settings, repo, environment or workflow.environment),
        schedule=schedule(settings, repo, branch, workflow, environment or workflow.environment),
        tags={**{k: tag_value(v) for k, v in workflow.tags.items()}, **job_tags(repo.name, branch, workflow_name, sha)},
        **job_compute(workflow),
    )


def schedule(
    settings: Settings, repo: Repo, branch: str, workflow: Workflow, environment: str
) -> J.CronSchedule | None:
    """The workflow's schedule on the default branch's job only: paused where pull requests train (dev).

    Like bundles' development mode, which pauses the schedules of the jobs it deploys
    (docs.databricks.com/dev-tools/bundles/deployment-modes); staging and prod run them.
    """
    if workflow.schedule is None or branch != repo.default_branch:
        return None
    paused = environment in settings.development_environments()
    return J.CronSchedule(
        quartz_cron_expression=workflow.schedule.quartz_cron,
        timezone_id=workflow.schedule.timezone,
        pause_status=J.PauseStatus.PAUSED if paused else J.PauseStatus.UNPAUSED,
    )


def job_settings(
    settings: Settings, repo: Repo, branch: str, workflow_name: str, sha: str, git_url: str = "", environment: str = ""
) -> dict:
    """What jobs/create takes, as a plain dict: `job_spec(...).as_dict()` (so no field the API does not
    know), the job permissions (`access_control_list`) and the fingerprint tag over all of it."""
    body = job_spec(settings, repo, branch, workflow_name, sha, git_url, environment).as_dict()
    acl = access_control_list(settings)
    if acl:
        body["access_control_list"] = [entry.as_dict() for entry in acl]
    body["tags"][FINGERPRINT_TAG] = fingerprint(body)
    return body


def _default(parameter: str, workflow: Workflow, sha: str) -> str:
    return {
        "sha": sha,
        "dataset": workflow.dataset,
        "environment": workflow.environment,
        "suite": workflow.default_suite,
    }.get(parameter, "")


def fingerprint(body: dict) -> str:
    """A short hash of the settings (without the fingerprint tag itself): equal → no reset needed."""
    clean = {**body, "tags": {k: v for k, v in body.get("tags", {}).items() if k != FINGERPRINT_TAG}}
    return hashlib.sha256(json.dumps(clean, sort_keys=True).encode()).hexdigest()[:16]


def idempotency_token(*parts: object) -> str:
    """run_now's idempotency_token (≤ 64 chars) from what triggered the run: a retried task gets the same run."""
    return hashlib.sha256(":".join(str(p) for p in parts).encode()).hexdigest()[:64]


def dev_defaults(settings: Settings, repo: str, workflow: str, options: dict, model: str = "") -> dict:
    """A run no release stage asked for (a PR's, a branch's) trains in dev and writes the dev registry only: the
    dev registry of `model` (one of the repository's several), else of its first model."""
    dev = None if options.get("model") else stages.dev_model(settings, repo, workflow, model)
    if dev is None:
        if model:
            raise Permanent(texts.not_trained_by(model, workflow, repo))
        return options
    return {**options, "model": dev[1].registry_name, "environment": options.get("environment") or dev[1].environment}


def run_parameters(workflow_settings: dict, **values: object) -> dict[str, str]:
    """Job parameters for run_now: only those the job defines; None/empty values keep the default."""
    defined = {p["name"] for p in workflow_settings.get("parameters", [])}
    return {k: no_references(k, str(v)) for k, v in values.items() if k in defined and v not in (None, "")}


# --- which jobs a branch may have (core/saved_jobs.py says which, and where) -----------------------------------
def branch_refusal(settings: Settings, repo: Repo, branch: str, workflow: str, environment: str = "") -> str:
    """Why `branch` may have no job of `workflow` (in `environment`, default: where its job would live), or ""."""
    if branch == repo.default_branch or workflow not in settings.workflows:
        return ""
    if workflow in release_workflows(settings, repo):
        return texts.release_only(workflow, repo.default_branch)
    where, allowed = environment or branch_environment(settings, repo, workflow), branch_environments(settings, repo)
    return (
        "" if where in allowed else texts.not_where_branches_run(workflow, where, sorted(allowed), repo.default_branch)
    )
