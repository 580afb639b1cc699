"""The last retry tells the person: when a task stops retrying (a transient failure that outlasted every
retry, see `workers/core/base.py` and `workers/errors.py` MAX_RETRIES), whoever asked hears it where they asked.

    a PR command (kwargs: repo, pr, comment_id)   → a reply on the PR saying what failed and how often it was
                                                     retried (the command's own reply comment)
    a Slack command or button (kwargs: response_url) → the answer in Slack
    a run followed for a PR (follow_run: environment, run_id; the run record has repo and pr)
                                                   → the PR's report says the bot lost track, an error status
    a run started for a PR (start_run: repo, pr, sha, workflow) → the report says it could not start
    anything else (a push's job sync, the janitor)  → logged (`task.gave_up`): nobody asked

`tell` never raises: it runs in a task that is already failing, so each step that fails is logged
(`giving_up.untold`) and the next one is still tried.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from core import vocabulary as V
from core.logs import get_logger
from workers.core import context
from workers.core.context import Deps
from workers.errors import MAX_RETRIES
from workers.pr import feedback as pr_feedback
from workers.pr import texts as pr_texts

log = get_logger("workers.giving_up")

ERROR_SHOWN = 300  # characters of the error a person is shown (the log has it whole)


def tell(task_name: str, kwargs: dict, error: str, retries: int = MAX_RETRIES, *, deps: Deps | None = None) -> None:
    """Tell whoever asked for `task_name(**kwargs)` that it failed for good with `error`, after `retries` retries."""
    error = " ".join(str(error).split())[:ERROR_SHOWN] or "an unknown error"
    log.warning("task.gave_up", task=task_name, delivery_id=kwargs.get("delivery_id", ""), retries=retries)
    try:
        d = deps or context.deps()
    except Exception as exc:  # no configuration, nothing to tell with
        log.error("giving_up.untold", task=task_name, step="deps", error=type(exc).__name__, detail=str(exc)[:200])
        return
    if kwargs.get("response_url"):
        _tell_slack(d, task_name, kwargs, error, retries)
    elif kwargs.get("repo") and kwargs.get("pr") and kwargs.get("comment_id"):
        _tell_pr_command(d, task_name, kwargs, error, retries)
    elif task_name == V.FOLLOW_RUN and kwargs.get("environment") and kwargs.get("run_id"):
        _tell_run_lost(d, task_name, kwargs, error, retries)
    elif task_name == V.START_RUN and kwargs.get("repo") and kwargs.get("pr"):
        _tell_run_not_started(d, task_name, kwargs, error, retries)
    else:
        log.info("giving_up.nobody_asked", task=task_name, delivery_id=kwargs.get("delivery_id", ""))


def _step(task_name: str, step: str, action: Callable[[], Any]) -> None:
    """One way of telling; a failure is logged, never raised."""
    try:
        action()
    except Exception as exc:
        log.error("giving_up.untold", task=task_name, step=step, error=type(exc).__name__, detail=str(exc)[:200])


def what_was_asked(task_name: str, kwargs: dict) -> str:
    """The command line as the person typed it, else the task's name."""
    command = kwargs.get("command")
    if isinstance(command, dict) and (command.get("line") or command.get("name")):
        return str(command.get("line") or f"/{command['name']}")
    if kwargs.get("line"):
        return str(kwargs["line"])
    if kwargs.get("action"):  # a Slack button
        return f"{kwargs['action']} {kwargs.get('value', '')}".strip()
    return task_name


def _tell_pr_command(d: Deps, task_name: str, kwargs: dict, error: str, retries: int) -> None:
    forge = d.forge
    if forge is None:
        log.error("giving_up.untold", task=task_name, step="pr", error="GitHub is not configured")
        return
    repo, pr, comment_id = kwargs["repo"], kwargs["pr"], kwargs["comment_id"]
    body = pr_texts.gave_up(kwargs.get("user", ""), what_was_asked(task_name, kwargs), error, retries)
    key = f"{comment_id}-{kwargs.get('index', 0)}"  # the command's own reply (workers/pr/chatops.py), edited in place
    # no Redis here (it may be what failed): the reply is found by its marker
    _step(task_name, "reply", lambda: forge.upsert_comment(repo, pr, "reply", key, body))


def _tell_slack(d: Deps, task_name: str, kwargs: dict, error: str, retries: int) -> None:
    slack = d.slack
    if slack is None:
        log.error("giving_up.untold", task=task_name, step="slack", error="Slack is not configured")
        return
    text = pr_texts.slack_gave_up(what_was_asked(task_name, kwargs), error, retries)
    _step(task_name, "slack", lambda: slack.respond(kwargs["response_url"], text))


def _tell_run_lost(d: Deps, task_name: str, kwargs: dict, error: str, retries: int) -> None:
    environment, run_id = kwargs["environment"], kwargs["run_id"]
    reason = pr_texts.lost_track(error, retries)

    def told() -> None:
        record = d.state.update_run(environment, run_id, state="INTERNAL_ERROR", error=reason)
        if record is None or not record.pr:
            log.info("giving_up.nobody_asked", task=task_name, run_id=run_id, environment=environment)
            return
        if d.forge is None:
            log.error("giving_up.untold", task=task_name, step="report", error="GitHub is not configured")
            return
        pr_feedback.could_not_follow(d.forge, d.state, record, record.pr, reason)

    _step(task_name, "report", told)


def _tell_run_not_started(d: Deps, task_name: str, kwargs: dict, error: str, retries: int) -> None:
    forge = d.forge
    if forge is None:
        log.error("giving_up.untold", task=task_name, step="report", error="GitHub is not configured")
        return
    repo, pr, sha, workflow = kwargs["repo"], kwargs["pr"], kwargs.get("sha", ""), kwargs.get("workflow", "")
    reason = pr_texts.start_gave_up(error, retries)
    _step(task_name, "report", lambda: pr_feedback.could_not_start(forge, d.state, repo, pr, sha, workflow, reason))
