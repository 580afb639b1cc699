"""What people read about per-branch jobs themselves: the janitor's Slack note, a missing workflow, and why a
branch has no job of a workflow."""

from __future__ import annotations

from workers.core.run_records import RemovedJob
from workers.escaping import slack_text


def stale_jobs_removed(removed: list[RemovedJob]) -> str:
    lines = [f"• `{slack_text(r.job)}` ({r.environment}): {slack_text(r.why)}" for r in removed]
    return f"🧹 mlops-bot removed {len(removed)} stale job(s):\n" + "\n".join(lines)


def not_configured(what: str, name: str) -> str:
    return f"{what} {name} is not configured"


def not_trained_by(model: str, workflow: str, repo: str) -> str:
    return f"model `{model}` of {repo} is not trained by `{workflow}` (its dev stage runs another workflow, or none)"


def release_only(workflow: str, default_branch: str) -> str:
    return (
        f"`{workflow}` runs only from {default_branch}, started by the release train: "
        "a branch's code under review never runs as a release stage"
    )


def not_where_branches_run(workflow: str, environment: str, allowed: list[str], default_branch: str) -> str:
    where = ", ".join(allowed) or "no environment"
    return (
        f"`{workflow}` runs in {environment}, where only {default_branch}'s code runs; "
        f"a branch's code runs in {where} (where pull requests train)"
    )
