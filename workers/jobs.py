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

from bot.config import Repo, Settings, TaskSpec, Workflow
from bot.vocabulary import FINGERPRINT_TAG, MANAGED_TAG, PLACEHOLDER, PLACEHOLDERS, job_name, parse_job_name

__all__ = [
    "FINGERPRINT_TAG",
    "MANAGED_TAG",
    "job_name",
    "parse_job_name",
    "job_settings",
    "job_tags",
    "tag_value",
    "repo_path",
    "fingerprint",
    "idempotency_token",
    "run_parameters",
]
MAX_TAGS = 25
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
    assert len(tags) <= MAX_TAGS
    return tags


def repo_path(repo: Repo, branch: str) -> str:
    """/Repos/<folder>/<repo>-<branch>, made path-safe; a short hash keeps distinct branches distinct."""
    name = repo.name.split("/")[1]
    safe = re.sub(r"[^A-Za-z0-9._-]+", "-", branch).strip("-") or "branch"
    if safe != branch:
        safe = f"{safe[:80]}-{hashlib.sha256(branch.encode()).hexdigest()[:8]}"
    return f"/Repos/{repo.repos_folder}/{name}-{safe}"


def _expand(text: str, literals: dict[str, str]) -> str:
    def sub(m: re.Match) -> str:
        name = m.group(1)
        if name in literals:
            return literals[name]
        return f"{{{{job.parameters.{name}}}}}"  # resolved by Databricks at run time

    return PLACEHOLDER.sub(sub, text)


def _used_parameters(workflow: Workflow) -> list[str]:
    used = {name for t in workflow.tasks for p in t.parameters for name in PLACEHOLDER.findall(p)}
    return [p for p in JOB_PARAMETERS if p in used or p == "sha"]


def _task(spec: TaskSpec, workflow: Workflow, repo: Repo, branch: str, literals: dict[str, str]) -> dict:
    params = [_expand(p, literals) for p in spec.parameters]
    task: dict = {"task_key": spec.key}
    if spec.depends_on:
        task["depends_on"] = [{"task_key": d} for d in spec.depends_on]
    if spec.cluster:
        task["job_cluster_key"] = spec.cluster
    libraries = [*workflow.libraries, *spec.libraries]
    if libraries:
        task["libraries"] = [{"pypi": {"package": lib.pypi}} if lib.pypi else {"whl": lib.whl} for lib in libraries]
    if spec.timeout_seconds:
        task["timeout_seconds"] = spec.timeout_seconds
    in_repo = repo.code_source == "repos"
    path = f"{repo_path(repo, branch)}/{spec.file}" if in_repo else spec.file
    source = "WORKSPACE" if in_repo else "GIT"
    if spec.type == "spark_python_task":
        task["spark_python_task"] = {"python_file": path, "parameters": params, "source": source}
    elif spec.type == "notebook_task":
        base = {}
        for p in params:  # notebooks take widgets: "key=value" parameters become base_parameters
            key, _, value = p.partition("=")
            base[key] = value
        task["notebook_task"] = {"notebook_path": path.removesuffix(".py"), "base_parameters": base, "source": source}
    else:
        task["python_wheel_task"] = {
            "package_name": spec.package,
            "entry_point": spec.entry_point,
            "parameters": params,
        }
    return task


def job_settings(settings: Settings, repo: Repo, branch: str, workflow_name: str, sha: str, git_url: str = "") -> dict:
    """The Jobs API 2.2 settings for one branch's workflow, as a plain dict (JobSettings.from_dict).

    `git_url` overrides the repository's URL: a fork's pull request runs the fork's code.
    """
    workflow = settings.workflows[workflow_name]
    name = job_name(settings.bot.job_prefix, repo.name, branch, workflow_name)
    literals = {"branch": branch, "repo": repo.name, "workflow": workflow_name}
    body: dict = {
        "name": name,
        "max_concurrent_runs": workflow.max_concurrent_runs,
        "timeout_seconds": workflow.timeout_seconds,
        "parameters": [{"name": p, "default": _default(p, workflow, sha)} for p in _used_parameters(workflow)],
        "tasks": [_task(t, workflow, repo, branch, literals) for t in workflow.tasks],
        "queue": {"enabled": True},
    }
    if workflow.description:
        body["description"] = workflow.description
    if workflow.job_clusters:
        body["job_clusters"] = [
            {"job_cluster_key": key, "new_cluster": cluster.model_dump(exclude_defaults=False)}
            for key, cluster in workflow.job_clusters.items()
        ]
    if repo.code_source == "git":
        url = git_url or repo.git_url or f"https://github.com/{repo.name}.git"
        git = {"git_url": url, "git_provider": repo.git_provider}
        git.update({"git_commit": sha} if repo.pin == "commit" and sha else {"git_branch": branch})
        body["git_source"] = git
    body["tags"] = job_tags(repo.name, branch, workflow_name, sha)
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


def run_parameters(workflow_settings: dict, **values: object) -> dict[str, str]:
    """Job parameters for run_now: only those the job defines; None/empty values keep the default."""
    defined = {p["name"] for p in workflow_settings.get("parameters", [])}
    return {k: str(v) for k, v in values.items() if k in defined and v not in (None, "")}
