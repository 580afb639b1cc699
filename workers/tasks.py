"""Celery tasks: thin. Each builds its gateways, calls a service function and lets BotTask
classify errors. Arguments are plain values from the handlers; the worker re-reads current state.
"""
from __future__ import annotations

from bot import tasknames as T
from bot.logs import get_logger
from workers.app import BotTask, app

log = get_logger("workers.tasks")


def _pending(task: str, issue: str, **fields) -> None:
    log.info("task.not_built_yet", task=task, comes_with=issue, **fields)


@app.task(base=BotTask, name=T.SYNC_BRANCH_JOBS, bind=True)
def sync_branch_jobs(self, repo: str, branch: str, sha: str, delivery_id: str) -> None:
    """push / PR update → upsert the branch's jobs. Not built yet: comes with the per-branch jobs issue."""
    _pending(self.name, "per-branch jobs", repo=repo, branch=branch, sha=sha, delivery_id=delivery_id)


@app.task(base=BotTask, name=T.REMOVE_BRANCH_JOBS, bind=True)
def remove_branch_jobs(self, repo: str, branch: str, delivery_id: str, reason: str = "") -> None:
    """branch deleted / PR closed → cancel runs, delete jobs. Not built yet: per-branch jobs issue."""
    _pending(self.name, "per-branch jobs", repo=repo, branch=branch, reason=reason, delivery_id=delivery_id)


@app.task(base=BotTask, name=T.START_RUN, bind=True)
def start_run(self, repo: str, branch: str, sha: str, workflow: str, delivery_id: str, **options) -> None:
    """a workflow should run for a commit → run_now. Not built yet: per-branch jobs issue."""
    _pending(self.name, "per-branch jobs", repo=repo, branch=branch, workflow=workflow, delivery_id=delivery_id)


@app.task(base=BotTask, name=T.FOLLOW_RUN, bind=True)
def follow_run(self, environment: str, run_id: int, context: dict, polls: int = 0) -> None:
    """a started run → poll until terminal, then report. Not built yet: per-branch jobs issue."""
    _pending(self.name, "per-branch jobs", run_id=run_id)


@app.task(base=BotTask, name=T.AWAIT_OK_TO_TEST, bind=True)
def await_ok_to_test(self, repo: str, pr: int, sha: str, author: str, delivery_id: str) -> None:
    """fork PR opened/updated → ask a maintainer for /ok-to-test. Not built yet: PR chat-ops issue."""
    _pending(self.name, "PR chat-ops", repo=repo, pr=pr, delivery_id=delivery_id)


@app.task(base=BotTask, name=T.RUN_COMMAND, bind=True)
def run_command(self, repo: str, pr: int, comment_id: int, user: str, command: dict, delivery_id: str,
                index: int = 0) -> None:
    """`/command` on a PR → check permission, act, reply. Not built yet: PR chat-ops issue."""
    _pending(self.name, "PR chat-ops", repo=repo, pr=pr, user=user, command=command.get("name"),
             delivery_id=delivery_id)


@app.task(base=BotTask, name=T.REFUSE_COMMAND, bind=True)
def refuse_command(self, repo: str, pr: int, comment_id: int, user: str, line: str, error: str, usage: str,
                   delivery_id: str, index: int = 0) -> None:
    """malformed `/command` → reply with the usage. Not built yet: PR chat-ops issue."""
    _pending(self.name, "PR chat-ops", repo=repo, pr=pr, error=error, delivery_id=delivery_id)


@app.task(base=BotTask, name=T.RERUN_CHECK, bind=True)
def rerun_check(self, repo: str, check_run_id: int, name: str, sha: str, delivery_id: str, **context) -> None:
    """check run "Re-run" → run its workflow again. Not built yet: PR chat-ops issue."""
    _pending(self.name, "PR chat-ops", repo=repo, check=name, delivery_id=delivery_id)


@app.task(base=BotTask, name=T.HANDLE_MODEL_EVENT, bind=True)
def handle_model_event(self, model_event: dict, delivery_id: str) -> None:
    """registry event → validate / request approval / record. Not built yet: registry approvals issue."""
    _pending(self.name, "registry approvals", kind=model_event.get("kind"), model=model_event.get("model"),
             version=model_event.get("version"), delivery_id=delivery_id)


@app.task(base=BotTask, name=T.RUN_SLACK_COMMAND, bind=True)
def run_slack_command(self, user_id: str, delivery_id: str, **details) -> None:
    """Slack `/mlops …` → approve/reject/status via response_url. Not built yet: registry approvals issue."""
    _pending(self.name, "registry approvals", user_id=user_id, delivery_id=delivery_id)


@app.task(base=BotTask, name=T.HANDLE_SLACK_BUTTON, bind=True)
def handle_slack_button(self, action: str, value: str, user_id: str, delivery_id: str, **details) -> None:
    """Approve/Reject button → the approval policy. Not built yet: registry approvals issue."""
    _pending(self.name, "registry approvals", action=action, value=value, delivery_id=delivery_id)


@app.task(base=BotTask, name=T.CLEAN_UP_STALE_JOBS, bind=True)
def clean_up_stale_jobs(self) -> None:
    """beat, hourly → remove managed jobs of gone branches or past the TTL. Not built yet: per-branch jobs issue."""
    _pending(self.name, "per-branch jobs")
