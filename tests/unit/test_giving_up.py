"""The last retry tells the person, where they asked: a PR command, a Slack command, a run followed for a PR."""

from __future__ import annotations

import pytest

from core import vocabulary as V
from core.commands import Command
from tests.fakes import pull, run_record, world
from workers import giving_up
from workers.core.state import State
from workers.errors import MAX_RETRIES, Transient
from workers.pr import chatops

REPO, PR, COMMENT = "acme/churn-model", 7, 555
BAD_GATEWAY = "GitHub said 502 to POST /repos/acme/churn-model/issues/7/comments: Bad Gateway"


@pytest.fixture
def w(settings, redis_client):
    w = world(settings, State(redis_client))
    w.forge.pulls[PR] = pull(PR)
    w.forge.roles["alice"] = "write"
    return w


def command_kwargs(line: str = "/train toy", **extra) -> dict:
    name = line.split()[0].lstrip("/")
    return {
        "repo": REPO,
        "pr": PR,
        "comment_id": COMMENT,
        "user": "alice",
        "command": {"name": name, "line": line},
        "delivery_id": "d-1",
        "index": 0,
    } | extra


def test_a_pr_command_that_gave_up_gets_a_reply_saying_what_and_how_often(w):
    giving_up.tell(V.RUN_COMMAND, command_kwargs(), BAD_GATEWAY, MAX_RETRIES, deps=w.deps)
    reply = w.forge.comment("reply", f"{COMMENT}-0")
    assert reply.startswith("@alice `/train toy` failed and I gave up: GitHub said 502")
    assert f"it was retried {MAX_RETRIES} times" in reply


def test_the_reply_is_the_commands_own_reply_edited_in_place(w):
    ctx = chatops.command_context(w.deps, REPO, PR, COMMENT, "alice", "d-1")
    ctx.reply("@alice working on it")
    giving_up.tell(V.RUN_COMMAND, command_kwargs(), BAD_GATEWAY, deps=w.deps)
    replies = [c for c in w.forge.comments.values() if c["pr"] == PR]
    assert len(replies) == 1 and "gave up" in replies[0]["body"]


def test_a_malformed_commands_answer_that_gave_up_names_the_line(w):
    kwargs = {k: v for k, v in command_kwargs().items() if k != "command"}
    kwargs |= {"line": "/trian `x` @acme/ml-leads", "error": "unknown command", "usage": ""}
    giving_up.tell(V.REFUSE_COMMAND, kwargs, "Redis did not answer", 3, deps=w.deps)
    reply = w.forge.comment("reply", f"{COMMENT}-0")
    assert "``/trian `x` @acme/ml-leads`` failed" in reply and "it was retried 3 times" in reply


def test_a_slack_command_that_gave_up_is_answered_in_slack_inert(w):
    kwargs = {
        "user_id": "U0BOB",
        "delivery_id": "d-2",
        "response_url": "https://hooks.slack.test/1",
        "command": {"name": "reject", "line": "/reject churn@3 <!channel>"},
    }
    giving_up.tell(V.RUN_SLACK_COMMAND, kwargs, "Slack could not answer: <timeout>", deps=w.deps)
    [answer] = w.slack.responses
    assert answer["url"] == "https://hooks.slack.test/1"
    assert answer["text"].startswith("`/reject churn@3 &lt;!channel&gt;` failed and I gave up")
    assert "&lt;timeout&gt;" in answer["text"] and f"retried {MAX_RETRIES} times" in answer["text"]


def test_a_slack_button_that_gave_up_names_the_button(w):
    kwargs = {"action": "approve", "value": "churn@3", "user_id": "U0BOB", "delivery_id": "d", "response_url": "u"}
    giving_up.tell(V.HANDLE_SLACK_BUTTON, kwargs, "MLflow did not answer", deps=w.deps)
    assert w.slack.responses[0]["text"].startswith("`approve churn@3` failed")


def test_a_pr_run_the_bot_lost_track_of_says_so_in_the_report(w):
    ctx = chatops.command_context(w.deps, REPO, PR, COMMENT, "alice", "d-1")
    chatops.run_command(ctx, Command("train", line="/train"))
    run_id = w.scheduler.follows[-1][1]
    giving_up.tell(V.FOLLOW_RUN, {"environment": "dev", "run_id": run_id, "polls": 4}, "Databricks: 503", deps=w.deps)
    report = w.forge.comment("report", "train")
    assert f"could not follow run {run_id}" in report and "lost track of this run" in report
    assert f"retried {MAX_RETRIES} times" in report
    assert w.forge.statuses[-1]["state"] == "error"
    assert w.deps.state.run("dev", run_id).state == "INTERNAL_ERROR"


def test_a_run_nobody_waits_for_on_a_pr_is_only_logged(w):
    w.deps.state.save_run(run_record(environment="dev", run_id=42, repo=REPO, branch="main", workflow="train"))
    giving_up.tell(V.FOLLOW_RUN, {"environment": "dev", "run_id": 42}, "Databricks: 503", deps=w.deps)
    assert not w.forge.comments and not w.forge.statuses


def test_a_run_for_a_pr_that_never_started_says_so_in_the_report(w):
    kwargs = {"repo": REPO, "branch": "feature/x", "sha": "a" * 40, "workflow": "test", "delivery_id": "d", "pr": PR}
    giving_up.tell(V.START_RUN, kwargs, "Databricks: 429", deps=w.deps)
    assert "Starting it failed and the bot gave up: Databricks: 429" in w.forge.comment("report", "test")
    assert w.forge.statuses[-1]["state"] == "error"


def test_work_nobody_asked_for_is_only_logged(w):
    kwargs = {"repo": REPO, "branch": "main", "sha": "a" * 40, "delivery_id": "d"}
    giving_up.tell(V.SYNC_BRANCH_JOBS, kwargs, "Databricks: 503", deps=w.deps)
    assert not w.forge.comments and not w.slack.responses


def test_telling_never_raises(w):
    w.forge.failures["upsert_comment"] = Transient(BAD_GATEWAY)  # GitHub still down
    giving_up.tell(V.RUN_COMMAND, command_kwargs(), BAD_GATEWAY, deps=w.deps)  # logged as untold, not raised
    assert not w.forge.comments


@pytest.mark.parametrize(("github", "slack"), [(False, True), (True, False)])
def test_nothing_to_tell_with_is_logged_not_raised(settings, redis_client, github, slack):
    w = world(settings, State(redis_client), github=github, slack=slack)
    giving_up.tell(V.RUN_COMMAND, command_kwargs(), "x", deps=w.deps)
    giving_up.tell(V.RUN_SLACK_COMMAND, {"response_url": "u", "user_id": "U1"}, "x", deps=w.deps)
    giving_up.tell(V.FOLLOW_RUN, {"environment": "dev", "run_id": 1}, "x", deps=w.deps)


def test_an_unexpected_error_is_told_without_claiming_retries(w):
    giving_up.tell(V.RUN_COMMAND, command_kwargs(), "KeyError: 'model'", 0, deps=w.deps)
    assert "(it was not retried)" in w.forge.comment("reply", f"{COMMENT}-0")


def test_a_huge_error_is_cut_for_people(w):
    giving_up.tell(V.RUN_COMMAND, command_kwargs(), "x" * 70_000, deps=w.deps)
    assert len(w.forge.comment("reply", f"{COMMENT}-0")) < 1_000


def test_every_task_tells_whoever_asked_when_it_gives_up():
    """Each registered task is a TellingTask, so its last failed try reaches giving_up.tell (the PR, Slack)."""
    from workers.app import app
    from workers.tasks import TellingTask

    ours = [task for name, task in app.tasks.items() if not name.startswith("celery.")]
    assert ours and all(isinstance(task, TellingTask) for task in ours), [t.name for t in ours]
