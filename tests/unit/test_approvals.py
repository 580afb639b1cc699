"""Validation and four-eyes approvals on the shared fakes: tags, alias, PR and Slack messages, audit."""

import pytest

from bot import audit
from tests.fakes import pull, world
from workers import approvals, runs, slack_commands
from workers.state import State

MODEL, REPO, PR = "churn-model", "acme/churn-model", 7
GOOD = '{"metrics": {"accuracy": 0.9, "roc_auc": 0.8}, "passed": true}'


@pytest.fixture
def w(settings, redis_client):
    w = world(settings, State(redis_client))
    w.forge.pulls[PR] = pull(PR, author="alice")
    w.forge.roles.update(alice="admin", carol="write", dave="read")
    w.registry.add_version(MODEL, "1", "r1", {"accuracy": 0.85, "roc_auc": 0.7})
    w.registry.set_alias(MODEL, "champion", "1")
    w.registry.add_version(
        MODEL,
        "2",
        "r2",
        {"accuracy": 0.9},
        repo=REPO,
        branch="feature/x",
        commit="c" * 40,
        pr=str(PR),
        triggered_by="alice",
    )
    return w


def validate(w, output=GOOD, result="SUCCESS"):
    assert approvals.on_model_event(
        w.deps, {"kind": "version_created", "model": MODEL, "version": "2"}, "d-1"
    ).startswith("validating in run")
    [(environment, run_id, _)] = w.scheduler.follows
    w.deps.workspaces(environment).finish(run_id, result, output)
    runs.follow(w.deps, environment, run_id)


def test_a_new_version_is_validated_and_approval_is_asked_for(w, redis_client):
    validate(w)
    assert w.registry.tags[(MODEL, "2")]["validation_status"] == "passed"
    assert "### 🗳️ Approval needed: `churn-model@2`" in w.forge.comment("approval", "churn-model@2")
    [request] = w.slack.requests
    assert "**" not in request["text"] and "Champion today: version 1." in request["text"]
    assert [e["decision"] for e in audit.entries(redis_client, MODEL)] == ["validated", "requested"]


def test_a_failed_validation_says_so_in_slack(w):
    validate(w, '{"metrics": {"accuracy": 0.5, "roc_auc": 0.8}}')
    assert w.registry.tags[(MODEL, "2")]["validation_status"] == "failed"
    [post] = w.slack.posts
    assert post["text"].startswith("❌ *churn-model* version 2 failed validation: failed: accuracy >= champion - 0.01")


@pytest.mark.parametrize(
    "approver, role, message",
    [
        (
            "alice",
            "admin",
            "refused: four eyes: @alice opened the pull request and started the training of "
            "churn-model@2 and cannot approve it.",
        ),
        (
            "dave",
            "read",
            "refused: approving needs write permission on acme/churn-model or a place in the approvers "
            "of churn-model; @dave has read.",
        ),
    ],
)
def test_refusals_name_the_rule(w, approver, role, message):
    validate(w)
    verdict = approvals.decide(w.deps, "approve", MODEL, "2", approver, "github", role=role)
    assert (verdict.ok, verdict.message) == (False, message)
    assert w.registry.aliases[(MODEL, "champion")] == "1"


def test_an_approval_moves_the_champion_and_is_echoed(w, redis_client):
    validate(w)
    verdict = approvals.decide(w.deps, "approve", MODEL, "2", "carol", "github")
    assert verdict.message == "approved: churn-model@2 is now `champion`."
    assert w.registry.aliases[(MODEL, "champion")] == "2"
    assert w.registry.tags[(MODEL, "2")]["approved_by"] == "carol"
    assert (
        w.forge.comment("decision", "churn-model@2")
        == "✅ churn-model@2 approved by @carol and promoted to `champion`."
    )
    assert "*Decision:* ✅" in w.slack.closed[0]["text"]
    assert audit.entries(redis_client, MODEL)[-1]["decision"] == "promoted"


def test_slack_users_decide_through_the_same_policy(w, settings):
    validate(w)
    slack_commands.press_button(w.deps, "reject", "churn-model@2", "U0BOB", "https://hooks/r")
    login = settings.slack.users["U0BOB"]
    assert w.slack.responses[-1]["text"] == f"@{login}: rejected churn-model@2."
    assert w.registry.tags[(MODEL, "2")]["rejection_reason"] == "rejected with the Slack button"
    slack_commands.press_button(w.deps, "approve", "churn-model@2", "U0NOBODY", "https://hooks/r")
    assert "is not mapped to a GitHub login" in w.slack.responses[-1]["text"]
