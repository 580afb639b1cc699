"""The reconciler on the shared fakes: PR commands whose delivery was lost are queued once, as the receiver would."""

from __future__ import annotations

import pytest

from core import keys
from core import vocabulary as V
from core.commands import Command
from core.events import Event
from core.routing import Action
from handlers.github import on_issue_comment_created
from tests.conftest import payload
from tests.fakes import pull, world
from workers.core.state import State
from workers.delivery import reconciler
from workers.delivery.reconciler import epoch, iso
from workers.errors import Permanent, Transient
from workers.pr import chatops

REPO, PR = "acme/churn-model", 7
NOW = epoch("2026-11-28T12:00:00Z")


@pytest.fixture
def w(settings, redis_client):
    w = world(settings, State(redis_client))
    w.forge.pulls[PR] = pull(PR)
    w.forge.roles.update(alice="write", rita="read")
    return w


def said(w, cid: int, body: str, *, ago: float = 120, user: str = "alice", issue: bool = False, edited_ago=None):
    """A person's comment on the forge, `ago` seconds before NOW (GitHub's clock)."""
    w.forge.comments[cid] = {
        "pr": PR,
        "body": body,
        "user": user,
        "issue": issue,
        "created_at": iso(int(NOW - ago)),
        "updated_at": iso(int(NOW - (ago if edited_ago is None else edited_ago))),
    }


def reconcile(w, now: float = NOW, grace: float = reconciler.GRACE_SECONDS, due_only: bool = False) -> list[Action]:
    """A pass; over every repository unless `due_only` (the beat's pass: quiet repositories wait, see below)."""
    queued: list[Action] = []
    reconciler.reconcile(w.deps, queued.append, now=now, grace=grace, due_only=due_only)
    return queued


def execute(w, action: Action) -> None:
    """What workers/tasks.py does with a command task."""
    kw = dict(action.kwargs)
    ctx = chatops.command_context(
        w.deps,
        kw.pop("repo"),
        kw.pop("pr"),
        kw.pop("comment_id"),
        kw.pop("user"),
        kw.pop("delivery_id"),
        kw.pop("index"),
    )
    if action.task == V.RUN_COMMAND:
        chatops.run_command(ctx, Command.from_kwargs(kw["command"]))  # as workers/tasks.py does
    else:
        chatops.answer_malformed(ctx, kw["line"], kw["error"], kw["usage"])


def test_a_lost_command_is_queued_with_the_kwargs_the_receiver_would_have_queued(w, settings):
    live = payload("issue_comment_pr")
    said(w, 1001, live["comment"]["body"])
    [action] = reconcile(w)
    live["comment"]["created_at"] = iso(int(NOW - 120))
    [expected] = on_issue_comment_created(Event("github", "issue_comment", "created", "d-1", live), settings)
    assert action.task == V.RUN_COMMAND
    assert action.kwargs == {**expected.kwargs, "delivery_id": "reconcile:1001"}
    assert action.kwargs["command"]["name"] == "train"


def test_a_malformed_command_is_refused_as_on_the_live_path(w):
    said(w, 1, "/train huge --param")
    [action] = reconcile(w)
    assert action.task == V.REFUSE_COMMAND and action.kwargs["index"] == 0


@pytest.mark.parametrize(
    "why, comment",
    [
        ("on an issue, not a PR", {"body": "/train", "issue": True}),
        ("by the bot", {"body": "/train", "user": "mlops-bot"}),
        ("by the bot as an App", {"body": "/train", "user": "mlops-bot[bot]"}),
        ("no command", {"body": "Looks good to me"}),
        ("a command in a code block", {"body": "```\n/train\n```"}),
        ("older than the first pass's look-back", {"body": "/train", "ago": 2 * 3600}),
        ("an old comment edited to hold a command", {"body": "/train", "ago": 2 * 3600, "edited_ago": 120}),
    ],
)
def test_what_the_live_path_ignores_the_reconciler_ignores(w, why, comment):
    said(w, 1, **comment)
    assert reconcile(w) == []


@pytest.mark.parametrize("body", ["/train", "/train huge --param"])
def test_a_command_a_worker_took_live_or_refused_is_left_alone(w, body):
    said(w, 1, body)
    [action] = reconcile(w)
    execute(w, Action(action.task, {**action.kwargs, "delivery_id": "live"}))  # the live path's task
    w.deps.state.r.delete(keys.comments_watermark(REPO))  # judged afresh
    assert reconcile(w) == []


def test_a_comment_in_its_grace_period_waits_and_holds_the_watermark_below_it(w):
    said(w, 1, "/status", ago=300)
    said(w, 2, "/train", ago=10)  # the live path may still be on it
    assert [a.kwargs["comment_id"] for a in reconcile(w)] == [1]
    assert w.deps.state.comments_watermark(REPO) == NOW - 300
    assert [a.kwargs["comment_id"] for a in reconcile(w, now=NOW + 120)] == [2]
    assert w.deps.state.comments_watermark(REPO) == NOW - 10
    assert reconcile(w, now=NOW + 240) == []


def test_the_first_pass_starts_an_hour_back_and_a_restart_resumes_from_the_watermark(w):
    said(w, 1, "/train", ago=3700)
    said(w, 2, "/train", ago=3500)
    assert [a.kwargs["comment_id"] for a in reconcile(w)] == [2]
    assert w.deps.state.comments_watermark(REPO) == NOW - 3500
    # the worker is gone for a day; what was said meanwhile is found from the watermark kept in Redis
    later = NOW + 24 * 3600
    said(w, 3, "/test", ago=-20 * 3600)
    assert [a.kwargs["comment_id"] for a in reconcile(w, now=later)] == [3]


def test_an_edited_comment_not_yet_judged_runs_nothing(w):
    # issue #18: an edit runs nothing, on the live path and here alike (tests/security/test_gates_per_path.py)
    said(w, 1, "/train", ago=200, edited_ago=100)  # posted during the outage, a typo fixed since
    assert reconcile(w) == []


def test_pages_within_one_second_are_read_page_by_page_and_each_comment_queued_once(w):
    for cid in range(1, 231):  # 230 comments: 150 in one second, then 80 in the next
        said(w, cid, "/status", ago=200 if cid <= 150 else 199)
    queued = reconcile(w)
    assert sorted(a.kwargs["comment_id"] for a in queued) == list(range(1, 231))
    assert w.deps.state.comments_watermark(REPO) == NOW - 199
    assert reconcile(w, now=NOW + 120) == []


def test_a_pass_held_by_another_worker_does_nothing(w):
    said(w, 1, "/train")
    token = w.deps.state.claim_reconcile(REPO)
    assert reconcile(w) == []
    w.deps.state.release_reconcile(REPO, token)
    assert len(reconcile(w)) == 1


def test_github_failing_moves_nothing_and_the_task_is_retried(w):
    said(w, 1, "/train")
    w.forge.failures["comments_since"] = Transient("GitHub said 502")
    with pytest.raises(Transient):
        reconcile(w)
    del w.forge.failures["comments_since"]
    assert len(reconcile(w)) == 1  # the guard was released; the watermark stayed where the first pass put it


def test_a_repository_the_bot_cannot_read_is_logged_and_skipped(w):
    w.forge.failures["comments_since"] = Permanent("GitHub said 404 to GET /repos/acme/churn-model/issues/comments")
    assert reconcile(w) == []


def test_a_command_queued_by_both_paths_starts_one_run_and_gets_one_report(w):
    """The live task is still in the queue when the reconciler looks (a backlog past the grace period): both run."""
    said(w, 1001, "/train toy")
    [reconciled] = reconcile(w)
    live = Action(V.RUN_COMMAND, {**reconciled.kwargs, "delivery_id": "live-delivery"})
    execute(w, live)
    execute(w, reconciled)
    assert len(w.workspace.runs) == 1
    assert len([c for c in w.forge.comments.values() if c["body"].startswith("<!-- mlops-bot:report")]) == 1
    assert reconcile(w, now=NOW + 120) == []
    w.deps.state.r.delete(keys.comments_watermark(REPO))  # even judged afresh: a worker took it
    assert reconcile(w, now=NOW + 240) == []


def test_without_github_there_is_nothing_to_reconcile(settings, redis_client):
    assert reconciler.reconcile(world(settings, State(redis_client), github=False).deps, print) == 0


@pytest.mark.parametrize(
    "stamp, seconds",
    [("2026-11-28T12:00:00Z", NOW), ("2026-11-28T12:00:00+00:00", NOW), ("", 0), ("yesterday", 0)],
)
def test_github_times_read_as_epoch_seconds(stamp, seconds):
    assert epoch(stamp) == seconds


def test_a_listed_comment_reads_as_the_delivery_github_would_have_sent():
    comment = {
        "id": 5,
        "html_url": "https://github.com/acme/churn-model/pull/7#issuecomment-5",
        "issue_url": "https://api.github.com/repos/acme/churn-model/issues/7",
    }
    event = reconciler.as_event(REPO, comment)
    assert (event.key, event.delivery_id) == ("github/issue_comment:created", "reconcile:5")
    assert event.data["issue"]["number"] == 7 and "pull_request" in event.data["issue"]
    on_issue = {**comment, "html_url": "https://github.com/acme/churn-model/issues/7#issuecomment-5"}
    assert "pull_request" not in reconciler.as_event(REPO, on_issue).data["issue"]
