"""What people read about per-branch jobs themselves: the janitor's Slack note, a missing workflow, why a
branch has no job of a workflow, and why the bot could not read what a task reported (docs/task-contract.md)."""

from __future__ import annotations

from workers.core.run_records import RemovedJob
from workers.escaping import md_text, slack_text

CONTRACT = "see mlops-bot's docs/task-contract.md"
RESULT_LINE = (
    "the last line of a task's output must be one JSON object (a notebook's: its `dbutils.notebook.exit` value)"
)


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


# --- what a task reported (workers/jobs/results.py): shown in the PR's report, the release comment and Slack ----------
# Task keys match ^[\w-]+$ (config); JSON's error messages and key paths (metric names) come from the task: md_text.
def no_result_line(task: str) -> str:
    return f"task `{task}` printed no result line: {RESULT_LINE} ({CONTRACT})"


def result_not_json(task: str, error: str) -> str:
    return f"task `{task}` printed a result line that is not valid JSON ({md_text(error)}): {RESULT_LINE} ({CONTRACT})"


def bad_result_key(task: str, key: str, expected: str, got: str) -> str:
    return f"task `{task}` reported {md_text(key)} as {md_text(got)}; it must be {expected} ({CONTRACT})"


def no_such_task(task: str) -> str:
    return f"the run has no task `{task}`, whose result line is the verdict ({CONTRACT})"


def output_gone(task: str) -> str:
    return f"Databricks no longer has the output of task `{task}` (runs/get-output answered 404)"


def nothing_reported(key: str, silent: list[str]) -> str:
    quiet = ", ".join(f"`{t}`" for t in silent)
    who = f": {'task' if len(silent) == 1 else 'tasks'} {quiet} printed no result line" if silent else ""
    return f"no task reported `{key}`{who}; {RESULT_LINE} and a training task's holds `{key}` ({CONTRACT})"


def unreadable_verdict(result: str, problem: str) -> str:
    """A validation whose verdict the bot cannot read failed, whatever the run's result: the reason, then the run's."""
    return f"failed: {problem}" + ("" if result == "SUCCESS" else f" (validation run {result})")
