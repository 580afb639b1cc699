"""One gate per right, whatever the path (issue #18): a right checked on one path holds on every other —
`/retest`, the named `/approve`, `/rollback`, two approvers at once, edited comments, a replayed `/ok-to-test`.

On the shared fakes (tests/fakes.py) for the decisions; real Redis (the conftest's private server) throughout.
"""

import contextlib
import dataclasses
import threading
import time

import pytest

from core.commands import Command
from core.events import Event
from core.routing import Ignored
from handlers.github import on_issue_comment_changed, on_issue_comment_created
from tests.fakes import pull, world
from tests.unit import test_reconciler as rec
from tests.unit.test_release import MERGE, PR, PROD, REPO, STAGING, finish, released, ws
from workers.core.state import State
from workers.delivery import reconciler
from workers.pr import chatops
from workers.release import approvals


@pytest.fixture
def w(settings, redis_client):
    w = world(settings, State(redis_client))
    w.forge.pulls[PR] = pull(PR, author="alice", state="closed", sha=MERGE)
    w.forge.roles.update(alice="admin", bob="write", carol="write", dave="read", mo="maintain")
    w.registry.add_version(PROD, "1", "r-prod-1", {"accuracy": 0.85})
    w.registry.set_alias(PROD, "champion", "1")
    return w


def say(w, pr, comment_id, user, line, **command):
    """`user` comments `line` on `pr`; the bot's reply to it."""
    name = line[1:].split(" ", 1)[0]
    ctx = chatops.command_context(w.deps, REPO, pr, comment_id, user, f"d-{comment_id}", 0)
    chatops.run_command(ctx, Command.from_kwargs({"name": name, "line": line, **command}))
    return w.forge.comment("reply", f"{comment_id}-0") or ""


def test_retest_of_someone_elses_full_training_checks_train_full_users(w):
    """config.toml: `train_full_users = ["bob"]`. carol (write) may `/retest`, but not have full data trained."""
    w.forge.pulls[8] = pull(8, author="carol", state="open")
    say(w, 8, 700, "bob", "/train full", dataset="full")
    [run_id] = ws(w, "dev").runs
    assert ws(w, "dev").parameters[run_id]["dataset"] == "full"
    finish(w, "dev", run_id, result="FAILED")
    reply = say(w, 8, 701, "carol", "/retest")
    assert "`/train full` costs money: only @bob may start it." in reply, reply
    assert list(ws(w, "dev").runs) == [run_id]  # nothing started again
    say(w, 8, 702, "bob", "/retest")  # the one allowed still can
    assert len(ws(w, "dev").runs) == 2


def test_a_named_approve_on_an_open_pull_request_is_refused(w):
    """`/approve churn-model-staging@2` in an open PR's comment: the bare form says "#8 is not merged"; so does
    the named one — a version is approved on the merged pull request it was trained from."""
    request = released(w)
    assert request.pr == PR and request.status == "pending"
    w.forge.pulls[8] = pull(8, author="carol", state="open")
    reply = say(w, 8, 710, "bob", f"/approve {STAGING}@2", model=STAGING, version="2")
    assert "refused" in reply and "trained for the merge of #7, not for #8" in reply, reply
    assert w.deps.state.approval(STAGING, "2").approvals == ()
    assert w.registry.aliases[(PROD, "champion")] == "1"
    # on its own merged pull request, the named form is taken as before
    reply = say(w, PR, 711, "bob", f"/approve {STAGING}@2", model=STAGING, version="2")
    assert w.registry.aliases[(PROD, "champion")] == "2", reply


def test_rollback_only_to_a_past_champion(w):
    """`/rollback prod 4` crowned a version never validated, approved or champion: refused, saying how."""
    released(w)
    approvals.decide(w.deps, "approve", STAGING, "2", "bob", "github")
    assert w.registry.aliases[(PROD, "champion")] == "2"
    w.registry.add_version(PROD, "4", "r-prod-4", {"accuracy": 0.1})  # copied in by hand, never through the train
    prod_runs = len(ws(w, "prod").runs)
    reply = say(w, PR, 720, "mo", "/rollback prod 4", environment="prod", version="4")
    assert "v4 of `churn-model` was never `@champion` by the bot's record" in reply, reply
    assert "past champions: v2, v1" in reply
    assert w.registry.aliases[(PROD, "champion")] == "2" and len(ws(w, "prod").runs) == prod_runs
    say(w, PR, 721, "mo", "/rollback prod 1", environment="prod", version="1")  # a past champion: as before
    assert w.registry.aliases[(PROD, "champion")] == "1"


class Racing:
    """Two approvers' tasks reach the same point together: each waits (briefly) at the role look-up until the other
    is there too — the interleaving where both read the request before either writes it."""

    def __init__(self, forge):
        self.forge, self.barrier = forge, threading.Barrier(2, timeout=2)

    def permission(self, repo, user):
        with contextlib.suppress(threading.BrokenBarrierError):  # held back by the lock: goes on alone
            self.barrier.wait()
        return self.forge.permission(repo, user)

    def __getattr__(self, name):
        return getattr(self.forge, name)


def approve_together(w, approvers):
    w.deps = dataclasses.replace(w.deps, forge=Racing(w.forge))
    verdicts = {}
    threads = [
        threading.Thread(
            target=lambda a=a: verdicts.update({a: approvals.decide(w.deps, "approve", STAGING, "2", a, "github")})
        )
        for a in approvers
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return verdicts


@pytest.mark.parametrize("already", [(), ("mo",)])
def test_two_approvers_at_once_are_both_recorded_and_promote_at_most_once(w, already):
    """2 required. None in: both were told "1 of 2" and one approval was lost. One in: both promoted."""
    request = released(w)
    w.deps.state.save_approval(dataclasses.replace(request, needed=2))
    for a in already:
        approvals.decide(w.deps, "approve", STAGING, "2", a, "github")
    prod_runs = len(ws(w, "prod").runs)
    verdicts = approve_together(w, ["bob", "carol"])
    request = w.deps.state.approval(STAGING, "2")
    promoted = [a for a, v in verdicts.items() if "is now" in v.message]
    copies = [write for write in w.registry.writes if write == ("copy", PROD)]
    assert len(promoted) == 1 and len(copies) == 1, (verdicts, copies)
    assert len(ws(w, "prod").runs) == prod_runs + 1  # one deploy
    assert request.status == "approved" and w.registry.aliases[(PROD, "champion")] == "2"
    recorded = {a.by for a in request.approvals}
    if already:  # the one who came second finds the request decided
        [late] = set(verdicts) - set(promoted)
        assert "refused" in verdicts[late].message and recorded == {"mo", promoted[0]}
    else:  # two approvals recorded, the second decides
        assert recorded == {"bob", "carol"}
        assert any("1 of 2" in v.message or "(1 of 2)" in v.message for v in verdicts.values()), verdicts


# --- edited comments: one rule (handlers.github.edited) on the live path and the reconciler -----------------------
@pytest.fixture
def r(settings, redis_client):
    r = world(settings, State(redis_client))
    r.forge.pulls[rec.PR] = pull(rec.PR)
    r.forge.roles.update(alice="write", rita="read", mo="maintain")
    return r


@pytest.mark.parametrize(
    "body, user",
    [
        ("/help", "rita"),  # written without a command, edited into one by its author
        ("/approve", "mo"),  # mo's "LGTM", edited into `/approve` by someone else with write access
    ],
)
def test_an_edited_comment_runs_nothing_on_any_path(r, body, user):
    rec.said(r, 1, body, user=user, ago=300, edited_ago=200)
    assert rec.reconcile(r) == []  # the reconciler: it ran as its original author before
    comment = r.forge.comments_since(rec.REPO, "2000-01-01T00:00:00Z").items[0]
    live = Event("github", "issue_comment", "created", "d-1", reconciler.as_event(rec.REPO, comment).data)
    outcome = on_issue_comment_created(live, r.deps.settings)  # a created delivery showing the edit: the same rule
    assert isinstance(outcome, Ignored) and "edited" in outcome.reason
    edited = Event("github", "issue_comment", "edited", "d-2", live.data)
    assert isinstance(on_issue_comment_changed(edited, r.deps.settings), Ignored)
    rec.said(r, 2, body, user=user, ago=150)  # the same command as written still runs
    assert [a.kwargs["comment_id"] for a in rec.reconcile(r, now=rec.NOW + 120)] == [2]


# --- `/ok-to-test` binds to the head at the comment's time ------------------------------------------------------
def test_a_replayed_ok_to_test_whose_head_push_time_is_unknown_is_refused(r):
    """The fork's push delivery was lost (no push time), `/ok-to-test` was replayed by the reconciler: the head
    the PR shows now may have been pushed after the comment. Refused, saying so; said again later, it runs."""
    r.forge.pulls[rec.PR] = pull(rec.PR, fork=True, sha="f" * 40)
    rec.said(r, 1, "/ok-to-test", user="alice")
    [action] = rec.reconcile(r)
    rec.execute(r, action)
    reply = r.forge.comment("reply", "1-0")
    assert "I cannot tell whether the head `fffffff` was there when you commented" in reply, reply
    assert not r.workspace.runs and r.deps.state.ok_to_test_sha(rec.REPO, rec.PR) is None
    later = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 5))
    ctx = chatops.command_context(r.deps, rec.REPO, rec.PR, 2, "alice", "d-2", 0)
    chatops.run_command(ctx, Command("ok-to-test", line="/ok-to-test", commented_at=later))
    assert r.deps.state.ok_to_test_sha(rec.REPO, rec.PR) == "f" * 40 and r.workspace.runs
