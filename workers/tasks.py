"""Celery tasks. Each builds the one dependencies object, calls one service function and lets
BotTask classify errors (workers/errors.py). Arguments are plain values from the handlers (JSON); a
parsed command and a model event become their typed values here, and nowhere else. The worker re-reads
current state.
"""

from __future__ import annotations

from typing import Any

from core import vocabulary as V
from core.commands import Command
from core.logs import get_logger
from workers import giving_up
from workers.core import pipelines
from workers.core.base import BotTask, CeleryScheduler, app
from workers.core.context import deps, state
from workers.delivery import reconciler, redelivery
from workers.jobs import branch_jobs, janitor
from workers.pr import chatops, feedback, runs
from workers.pr import pipeline as pr_pipeline
from workers.release import polling as registry_watch
from workers.release import slack_commands
from workers.release import train as release

log = get_logger("workers.tasks")


class TellingTask(BotTask):
    """A task that gives up tells whoever asked: the PR, the Slack thread (workers/giving_up.py)."""

    def give_up(self, kwargs: dict, error: str) -> None:
        giving_up.tell(self.name, kwargs, error, self.request.retries)


@app.task(base=TellingTask, name=V.SYNC_BRANCH_JOBS, bind=True)
def sync_branch_jobs(
    self,
    repo: str,
    branch: str,
    sha: str,
    delivery_id: str,
    trigger: str = "",
    pr: int | None = None,
    requested_by: str = "",
    base_sha: str = "",
) -> None:
    """push / PR update → the branch's jobs brought up to date, and those of the workflows a push starts made
    (branch_jobs.sync_branch). A repository with a pipeline file of its own (`trigger` given: the handler could not
    read it) also starts what the file's workflows run on, and a pull request gets the plan of its file's changes."""
    if trigger:
        pr_pipeline.on_branch_event(
            deps(),
            repo=repo,
            branch=branch,
            sha=sha,
            trigger=trigger,
            pr=pr,
            requested_by=requested_by,
            base_sha=base_sha,
        )
        return
    d = deps()
    done = branch_jobs.sync_branch(d.workspaces, d.state, d.settings, repo, branch, sha)
    log.info("branch.synced", delivery_id=delivery_id, repo=repo, branch=branch, jobs={u.name: u.outcome for u in done})


@app.task(base=TellingTask, name=V.REMOVE_BRANCH_JOBS, bind=True)
def remove_branch_jobs(self, repo: str, branch: str, delivery_id: str, reason: str = "") -> None:
    """branch deleted / PR closed → cancel the branch's runs, delete its jobs and Repos."""
    d = deps()
    removed = branch_jobs.remove_branch(d.workspaces, d.state, d.settings, repo, branch)
    log.info("branch.cleaned", delivery_id=delivery_id, repo=repo, branch=branch, reason=reason, removed=removed)


@app.task(base=TellingTask, name=V.START_RELEASE, bind=True)
def start_release(self, repo: str, pr: int, sha: str, author: str, merged_by: str, delivery_id: str) -> list:
    """a PR merged into the default branch → its models ride the release train: staging training first."""
    d = deps()
    pipelines.decide_release_pipeline(d, repo, pr, sha)  # a repository's own file: as it was before this merge
    return release.on_merged(
        pipelines.at(d, repo, sha),
        repo=repo,
        pr=pr,
        sha=sha,
        author=author,
        merged_by=merged_by,
        delivery_id=delivery_id,
    )


@app.task(base=TellingTask, name=V.START_RUN, bind=True)
def start_run(
    self,
    repo: str,
    branch: str,
    sha: str,
    workflow: str,
    delivery_id: str,
    index: int = 0,
    pr: int | None = None,
    requested_by: str = "",
    **options: Any,
) -> list[int]:
    """a workflow should run for a commit → run_now (idempotent per commit and PR; one run per model, for a workflow
    that trains several), tell the PR, follow it."""
    return runs.start_for_each_model(
        pipelines.at(deps(), repo, sha),
        repo=repo,
        branch=branch,
        sha=sha,
        workflow=workflow,
        trigger=runs.run_trigger(sha, pr),
        pr=pr,
        requested_by=requested_by,
        **options,
    )


@app.task(base=TellingTask, name=V.FOLLOW_RUN, bind=True)
def follow_run(self, environment: str, run_id: int, polls: int = 0) -> None:
    """a started run → one poll; not finished: poll again later (never sleeps); finished: route + report."""
    runs.follow(deps(), environment, run_id, polls)


@app.task(base=TellingTask, name=V.AWAIT_OK_TO_TEST, bind=True)
def await_ok_to_test(self, repo: str, pr: int, sha: str, author: str, delivery_id: str, pushed_at: str = "") -> None:
    """fork PR opened/updated → nothing runs; ask a maintainer for /ok-to-test (one sticky comment)."""
    d = deps()
    d.state.note_head(repo, pr, sha, pushed_at)  # an /ok-to-test written before this push does not cover it
    feedback.ask_for_ok_to_test(d.need_forge(), d.settings, repo, pr, sha, author)


@app.task(base=TellingTask, name=V.RUN_COMMAND, bind=True)
def run_command(
    self, repo: str, pr: int, comment_id: int, user: str, command: dict, delivery_id: str, index: int = 0
) -> None:
    """`/command` on a PR → acknowledge, check permission, act, answer on the PR."""
    ctx = chatops.command_context(deps(), repo, pr, comment_id, user, delivery_id, index)
    chatops.run_command(ctx, Command.from_kwargs(command))


@app.task(base=TellingTask, name=V.REFUSE_COMMAND, bind=True)
def refuse_command(
    self,
    repo: str,
    pr: int,
    comment_id: int,
    user: str,
    line: str,
    error: str,
    usage: str,
    delivery_id: str,
    index: int = 0,
) -> None:
    """malformed `/command` → a reply with the reason and the usage."""
    chatops.answer_malformed(
        chatops.command_context(deps(), repo, pr, comment_id, user, delivery_id, index), line, error, usage
    )


@app.task(base=TellingTask, name=V.RERUN_CHECK, bind=True)
def rerun_check(
    self,
    repo: str,
    check_run_id: int,
    name: str,
    sha: str,
    delivery_id: str,
    branch: str = "",
    pr: int | None = None,
    user: str = "",
    **context: Any,
) -> None:
    """ "Re-run" on one of the bot's check runs (GitHub Apps only) → that workflow again, same commit."""
    runs.rerun_check(
        pipelines.at(deps(), repo, sha),
        check_run_id=check_run_id,
        name=name,
        repo=repo,
        sha=sha,
        branch=branch,
        trigger=f"check:{check_run_id}:{delivery_id}",  # see handlers.github: a re-run has no time in its body
        pr=pr,
        user=user,
    )


@app.task(base=TellingTask, name=V.HANDLE_MODEL_EVENT, bind=True)
def handle_model_event(self, model_event: dict, delivery_id: str) -> None:
    """registry event (MLflow or Databricks) → validate a new staging version, re-ask on transition requests."""
    event = release.ModelEvent.from_json(model_event)
    done = release.on_model_event(deps(), event, delivery_id)
    log.info(
        "model_event.handled",
        delivery_id=delivery_id,
        kind=event.kind,
        model=event.model,
        version=event.version,
        outcome=done,
    )


@app.task(base=TellingTask, name=V.RUN_SLACK_COMMAND, bind=True)
def run_slack_command(
    self,
    user_id: str,
    delivery_id: str,
    response_url: str = "",
    command: dict | None = None,
    error: str = "",
    usage: str = "",
    **details: Any,
) -> None:
    """Slack `/mlops approve churn-model 7` → the same approval policy as on a PR; answer via response_url."""
    slack_commands.run_slash_command(
        deps(),
        user_id,
        response_url,
        Command.from_kwargs(command) if command else None,
        error,
        details.get("channel_id", ""),
    )


@app.task(base=TellingTask, name=V.HANDLE_SLACK_BUTTON, bind=True)
def handle_slack_button(
    self, action: str, value: str, user_id: str, delivery_id: str, response_url: str = "", **details: Any
) -> None:
    """Approve/Reject button on an approval request → the approval policy."""
    slack_commands.press_button(deps(), action, value, user_id, response_url, details.get("channel_id", ""))


@app.task(base=TellingTask, name=V.POLL_REGISTRY, bind=True)
def poll_registry(self) -> int:
    """beat, for registries without webhooks (Unity Catalog) → the same model events, once each."""
    return registry_watch.poll(deps())


@app.task(base=TellingTask, name=V.CLEAN_UP_STALE_JOBS, bind=True)
def clean_up_stale_jobs(self) -> list[dict]:
    """beat, hourly → remove managed jobs not run for the TTL or whose branch is gone (workers/jobs/janitor.py)."""
    return [removed.to_json() for removed in janitor.clean_up_and_tell(deps())]  # a task's result is JSON


@app.task(base=TellingTask, name=V.SEND_DUE_TASKS, bind=True)
def send_due_tasks(self) -> int:
    """beat, every 2 s → the follow-ups and retries due now go onto the queue, each exactly once."""
    return CeleryScheduler.send_due(state())


@app.task(base=TellingTask, name=V.RECONCILE_COMMENTS, bind=True)
def reconcile_comments(self, grace_seconds: float = reconciler.GRACE_SECONDS, due_only: bool = True) -> int:
    """beat, every 2 min → PR commands whose delivery never reached the bot are queued as the receiver would have
    (on the repositories due: quiet ones wait longer; `due_only=False`: every repository now)."""
    return reconciler.reconcile(
        deps(), lambda a: app.send_task(a.task, kwargs=a.kwargs), grace=grace_seconds, due_only=due_only
    )


@app.task(base=TellingTask, name=V.REDELIVER_FAILED_DELIVERIES, bind=True)
def redeliver_failed_deliveries(self, grace_seconds: float = redelivery.GRACE_SECONDS) -> int:
    """beat, every 2 min → GitHub is asked to redeliver each failed delivery of the App's webhook, once."""
    return redelivery.redeliver_failed(deps(), grace=grace_seconds)
