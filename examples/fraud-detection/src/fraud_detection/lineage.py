"""Where a model came from: repository, branch, commit, PR, job run and who triggered it.

Each value comes from its command-line option, else from the environment; values that are empty or
absent are left out (never written as empty tags).

| key            | option             | environment fallback                          |
|----------------|--------------------|-----------------------------------------------|
| repo           | --repo             | MLOPS_REPO, GITHUB_REPOSITORY                 |
| branch         | --branch           | MLOPS_BRANCH, GITHUB_HEAD_REF                 |
| commit         | --commit           | MLOPS_COMMIT, GITHUB_SHA                      |
| pr             | --pr               | MLOPS_PR                                      |
| job_run_id     | --job-run-id       | DATABRICKS_JOB_RUN_ID                         |
| triggered_by   | --triggered-by     | MLOPS_TRIGGERED_BY, GITHUB_ACTOR              |
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from pathlib import Path

LINEAGE_KEYS = ("repo", "branch", "commit", "pr", "job_run_id", "triggered_by")

_ENV_FALLBACKS: dict[str, tuple[str, ...]] = {
    "repo": ("MLOPS_REPO", "GITHUB_REPOSITORY"),
    "branch": ("MLOPS_BRANCH", "GITHUB_HEAD_REF"),
    "commit": ("MLOPS_COMMIT", "GITHUB_SHA"),
    "pr": ("MLOPS_PR",),
    "job_run_id": ("DATABRICKS_JOB_RUN_ID",),
    "triggered_by": ("MLOPS_TRIGGERED_BY", "GITHUB_ACTOR"),
}

#: Databricks task context, set for every task of a job run.
DATABRICKS_ENV = {
    "databricks_job_id": "DATABRICKS_JOB_ID",
    "databricks_job_run_id": "DATABRICKS_JOB_RUN_ID",
    "databricks_task_run_id": "DATABRICKS_TASK_RUN_ID",
    "databricks_task_key": "DATABRICKS_TASK_KEY",
}


def add_lineage_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("lineage (empty values are not recorded)")
    group.add_argument("--repo", default=None, help="owner/name of the git repository")
    group.add_argument("--branch", default=None, help="git branch")
    group.add_argument("--commit", default=None, help="git commit SHA")
    group.add_argument("--pr", default=None, help="pull request number")
    group.add_argument("--job-run-id", dest="job_run_id", default=None, help="default: $DATABRICKS_JOB_RUN_ID")
    group.add_argument("--triggered-by", dest="triggered_by", default=None, help="login of whoever triggered the run")


def _clean(value) -> str | None:
    text = "" if value is None else str(value).strip()
    return text or None


def lineage_from(args: argparse.Namespace | Mapping | None = None, env: Mapping[str, str] | None = None) -> dict:
    """The non-empty lineage values, options first, then environment fallbacks."""
    env = os.environ if env is None else env
    values = vars(args) if isinstance(args, argparse.Namespace) else dict(args or {})
    lineage: dict[str, str] = {}
    for key in LINEAGE_KEYS:
        value = _clean(values.get(key))
        for name in _ENV_FALLBACKS[key]:
            value = value or _clean(env.get(name))
        if value is not None:
            lineage[key] = value
    return lineage


def databricks_context(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The non-empty Databricks task context (job id, job run id, task run id, task key)."""
    env = os.environ if env is None else env
    return {tag: value for tag, name in DATABRICKS_ENV.items() if (value := _clean(env.get(name)))}


def default_workdir(env: Mapping[str, str] | None = None) -> Path:
    """`.mlops-run/<DATABRICKS_JOB_RUN_ID or "local">`, relative to the current directory."""
    env = os.environ if env is None else env
    return Path(".mlops-run") / (_clean(env.get("DATABRICKS_JOB_RUN_ID")) or "local")
