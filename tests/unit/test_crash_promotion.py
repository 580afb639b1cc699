"""Crash points of an approval, `/rollback` and a finished deploy (issue #12), each found by
tests/reliability/test_crash_points.py: the task is stopped at one write (SIGKILL before it, or its answer lost
after it) and runs again from its start, as Celery redelivers an `acks_late` task or retries a Transient one.
"""

from dataclasses import replace

import pytest

from core import audit
from core.commands import Command
from tests.fakes import Faults, Killed, faulty, pull, world
from tests.unit.test_release import PR, PROD, REPO, STAGING, released, ws
from workers.core.state import State
from workers.errors import Transient
from workers.pr import chatops, runs
from workers.release import slack_commands


@pytest.fixture
def w(settings, redis_client):
    w = world(settings, State(redis_client))
    w.forge.pulls[PR] = pull(PR, author="alice", state="closed")
    w.forge.roles.update(alice="admin", bob="write", mo="maintain")
    w.registry.add_version(PROD, "1", "r-prod-1", {"accuracy": 0.85})
    w.registry.set_alias(PROD, "champion", "1")
    return w


def again(w, faults: Faults, task, attempts: int = 3) -> None:
    """Run `task` on the faulty fakes until it completes, from its start after each fault."""
    for _ in range(attempts):
        try:
            return task(faulty(w, faults).deps)
        except (Killed, Transient):
            continue
    raise AssertionError("the task never completed")


def command(comment_id: int, user: str, name: str, **args):
    parsed = Command(name, **args)
    return lambda deps: chatops.run_command(chatops.command_context(deps, REPO, PR, comment_id, user, "d", 0), parsed)


def decisions(redis_client) -> list[str]:
    return [e["decision"] for e in audit.entries(redis_client)]


@pytest.mark.parametrize("kind", ["kill", "lost"])
def test_approve_stopped_at_the_prod_copy_still_copies_crowns_and_deploys_once(w, redis_client, kind):
    """Crash point: `registry.copy_version` of `/approve` (the request already said "approved": the run again was
    refused as "already decided", and nothing reached prod)."""
    released(w)
    faults = Faults()
    faults.armed(1, kind, on="registry.copy_version")
    again(w, faults, command(900, "bob", name="approve", line="/approve"))
    assert w.registry.aliases[(PROD, "champion")] == "2"
    assert [v for (m, _), v in w.registry.versions_.items() if m == PROD and v.source] == [
        w.registry.versions_[(PROD, "2")]
    ]
    assert len(ws(w, "prod").runs) == 1  # one deploy
    assert "@bob approved: churn-model-staging@2 is now `churn-model@champion` (v2)." in w.forge.comment(
        "reply", "900-0"
    )
    assert decisions(redis_client).count("copied") == 1 and decisions(redis_client).count("promoted") == 1


def test_approve_stopped_after_the_alias_moved_says_which_champion_it_replaced(w, redis_client):
    """Crash point: the release comment after `registry.set_alias` (the run again read the alias it had just
    moved: "(was v2)", and v2 became its own previous champion)."""
    released(w)
    faults = Faults()
    faults.armed(1, "kill", on="forge.upsert_comment")  # the release comment, right after the alias moved
    again(w, faults, command(900, "bob", name="approve", line="/approve"))
    [promoted] = [e for e in audit.entries(redis_client) if e["decision"] == "promoted"]
    assert promoted["reason"] == "champion → v2 (was v1), from churn-model-staging@2"
    assert w.deps.state.champion_history(PROD) == ["1", "2"]
    assert "`churn-model@champion` → v2 (was v1)" in w.forge.comment("release", "churn-model")


@pytest.mark.parametrize("kind", ["kill", "lost"])
def test_approve_whose_reply_was_lost_answers_approved_again(w, redis_client, kind):
    """Crash point: the reply to `/approve` after the promotion finished (the run again answered "no version is
    waiting for a decision")."""
    released(w)
    faults = Faults()
    faults.armed(4, kind, on="forge.upsert_comment")  # the reply (after the release comment twice and the decision)
    again(w, faults, command(900, "bob", name="approve", line="/approve"))
    assert "is now `churn-model@champion` (v2)" in w.forge.comment("reply", "900-0")
    assert "refused" not in decisions(redis_client)


def test_slack_approve_whose_answer_was_lost_is_not_refused_as_already_approved(w, redis_client):
    """Crash point: `slack.respond` after an Approve button promoted the version."""
    released(w)
    faults = Faults()
    faults.armed(1, "kill", on="slack.respond")
    url = "https://hooks.slack.test/r/1"
    again(w, faults, lambda deps: slack_commands.press_button(deps, "approve", f"{STAGING}@2", "U0BOB", url))
    [answer] = w.slack.responses
    assert answer["text"] == "@bob: approved: churn-model-staging@2 is now `churn-model@champion` (v2)."
    assert "refused" not in decisions(redis_client)


@pytest.mark.parametrize("kind", ["kill", "lost"])
def test_rollback_whose_alias_answer_was_lost_does_not_roll_forward_again(w, redis_client, kind):
    """Crash point: `registry.set_alias` of `/rollback prod` (applied, answer lost: the run again saw v1 as the
    champion and "rolled back" to v2 — the version being rolled back)."""
    released(w)
    command(899, "bob", name="approve", line="/approve")(w.deps)
    faults = Faults()
    faults.armed(1, kind, on="registry.set_alias")
    again(w, faults, command(902, "mo", name="rollback", environment="prod", line="/rollback prod"))
    assert w.registry.aliases[(PROD, "champion")] == "1"
    assert "rolled `churn-model@champion` back from v2 to v1" in w.forge.comment("reply", "902-0")
    assert [ws(w, "prod").parameters[r]["version"] for r in ws(w, "prod").runs] == ["2", "1"]
    assert decisions(redis_client).count("rolled-back") == 1
    assert len(w.slack.posts) == 2  # the approval's echo, the rollback's


def test_rollback_stopped_after_its_slack_post_posts_once(w):
    """Crash point: the reply on the PR after the rollback was posted to Slack (the run again posted it twice)."""
    released(w)
    command(899, "bob", name="approve", line="/approve")(w.deps)
    faults = Faults()
    faults.armed(3, "kill", on="forge.upsert_comment")  # the reply (after the release comment twice)
    again(w, faults, command(902, "mo", name="rollback", environment="prod", line="/rollback prod"))
    assert [p["text"][:20] for p in w.slack.posts][1:] == ["@mo ↩️ rolled `churn"]


def test_a_finished_deploy_reported_again_is_audited_once(w, redis_client):
    """Crash point: the release comment after a prod deploy finished (the run again audited `deployed` twice)."""
    released(w)
    command(900, "bob", name="approve", line="/approve")(w.deps)
    deploy = max(ws(w, "prod").runs)
    ws(w, "prod").finish(deploy)
    faults = Faults()
    faults.armed(1, "kill", on="forge.upsert_comment")
    again(w, faults, lambda deps: runs.follow(deps, "prod", deploy))
    assert decisions(redis_client).count("deployed") == 1


def test_a_slack_approve_delivered_again_after_it_finished_answers_once(w):
    """Crash point: after the last write, before the ack (the worker died: Celery delivers the task again)."""
    released(w)
    url = "https://hooks.slack.test/r/2"
    for _ in range(2):
        slack_commands.press_button(w.deps, "approve", f"{STAGING}@2", "U0BOB", url)
    assert [r["text"] for r in w.slack.responses] == [
        "@bob: approved: churn-model-staging@2 is now `churn-model@champion` (v2)."
    ]


def test_a_first_of_two_approvals_run_again_is_counted_not_refused(w, redis_client):
    """Crash point: the release comment after the first of two approvals was recorded (the run again refused it:
    "@bob already approved")."""
    w.deps.state.save_approval(replace(released(w), needed=2))
    faults = Faults()
    faults.armed(1, "kill", on="forge.upsert_comment")
    again(w, faults, command(903, "bob", name="approve", line="/approve"))
    assert "@bob approval 1 of 2 recorded for churn-model-staging@2." in w.forge.comment("reply", "903-0")
    assert "refused" not in decisions(redis_client)
    assert "| approval | 1 of 2 |" in w.forge.comment("release", "churn-model")


@pytest.mark.parametrize("kind", ["kill", "lost"])
def test_a_reject_stopped_after_it_was_recorded_still_tags_and_tells(w, redis_client, kind):
    """Crash point: `registry.set_tags` of `/reject` (the request already said "rejected": the run again found no
    version waiting for a decision — no tags, no echo)."""
    released(w)
    faults = Faults()
    faults.armed(1, kind, on="registry.set_tags")
    again(w, faults, command(904, "bob", name="reject", reason="drifts", line="/reject"))
    assert w.registry.tags[(STAGING, "2")]["rejected_by"] == "bob"
    assert "rejected by @bob" in w.forge.comment("decision", f"{STAGING}@2")
    assert "refused" not in decisions(redis_client) and decisions(redis_client).count("rejected") == 1
