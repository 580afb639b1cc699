"""Validation and four-eyes approvals of staging versions on the shared fakes: tags, alias, PR and Slack
messages, audit."""

from dataclasses import replace

import pytest

from core import audit
from tests.fakes import commit, pull, world
from workers.core.state import State
from workers.pr import runs
from workers.release import approvals, authorship, lineage, slack_commands
from workers.release import train as release

MODEL, REPO, PR = "churn-model", "acme/churn-model", 7
STAGING, PROD = "churn-model-staging", "churn-model"  # the registries of the staging and prod stages
TRAIN_RUN = 4242  # the staging training job run the bot started for the merge of PR 7
SCORES = '"champion_metrics": {"accuracy": 0.85, "roc_auc": 0.7}, "champion_version": "1", "data": "full"'
GOOD = '{"metrics": {"accuracy": 0.9, "roc_auc": 0.8}, ' + SCORES + ', "passed": true}'


@pytest.fixture
def w(settings, redis_client):
    w = world(settings, State(redis_client))
    w.forge.pulls[PR] = pull(PR, author="alice")
    w.forge.roles.update(alice="admin", carol="write", dave="read")
    w.registry.add_version(PROD, "1", "r1", {"accuracy": 0.5, "roc_auc": 0.5})  # its old scores: not compared
    w.registry.set_alias(PROD, "champion", "1")
    w.registry.add_version(STAGING, "2", "r2", {"accuracy": 0.9})
    # the bot's own record of the merge training (workers/release/train.py), which the version's run points at
    w.registry.run_tags_["r2"] = {"mlflow.databricks.jobRunId": str(TRAIN_RUN)}
    record = lineage.record(
        repo=REPO, branch="main", sha="c" * 40, pr=PR, author="alice", merged_by="erin", registry=STAGING
    )
    w.deps.state.record_lineage("staging", TRAIN_RUN, record)
    # and the merge's release, with who wrote the PR as GitHub listed it then: alice opened it and wrote its commit
    merged = release.new_release(w.deps, MODEL, REPO, PR, "c" * 40, "alice", "erin")
    w.deps.state.save_release(replace(merged, authorship=authorship.authorship_of("alice", [commit("alice")])))
    w.deps.workspaces("staging").ran(TRAIN_RUN, '{"mlflow_run_id": "r2"}')  # what its register step said
    lineage.finished(w.deps.state, "staging", TRAIN_RUN)  # the bot saw it end
    return w


def validate(w, output=GOOD, result="SUCCESS"):
    event = release.ModelEvent("mlflow", "version_created", STAGING, "2")
    assert release.on_model_event(w.deps, event, "d-1").startswith("validating in run")
    [(environment, run_id, _)] = w.scheduler.follows
    w.deps.workspaces(environment).finish(run_id, result, output)
    runs.follow(w.deps, environment, run_id)
    return environment, run_id


def test_a_new_version_is_validated_against_the_champion_and_approval_is_asked_for(w, redis_client):
    environment, run_id = validate(w)
    assert environment == "staging"
    parameters = w.deps.workspaces(environment).parameters[run_id]
    assert (parameters["model"], parameters["version"]) == (STAGING, "2")
    assert parameters["champion"] == "models:/churn-model@champion"
    assert w.registry.tags[(STAGING, "2")]["validation_status"] == "passed"
    assert "Approval needed: `churn-model-staging@2`" in w.forge.comment("approval", "churn-model-staging@2")
    [request] = w.slack.requests
    assert "**" not in request["text"] and "Prod champion today: version 1" in request["text"]
    assert [e["decision"] for e in audit.entries(redis_client, STAGING)] == ["validated", "requested"]
    approval = w.deps.state.approval(STAGING, "2")
    assert (approval.model, approval.proven, approval.needed) == (MODEL, True, 1)


def test_a_failed_validation_says_so_in_slack(w):
    validate(w, '{"metrics": {"accuracy": 0.5, "roc_auc": 0.8}, ' + SCORES + "}")
    assert w.registry.tags[(STAGING, "2")]["validation_status"] == "failed"
    [post] = w.slack.posts
    assert post["text"].startswith(
        "❌ *churn-model-staging* version 2 failed validation: failed: accuracy >= champion - 0.01"
    )
    assert not w.slack.requests


def test_a_cancelled_validation_is_cancelled_not_failed(w):
    validate(w, "", result="CANCELED")
    assert w.registry.tags[(STAGING, "2")]["validation_status"] == "cancelled"
    assert w.deps.state.approval(STAGING, "2").validation == "cancelled"


def test_the_champion_is_compared_on_the_scores_the_validate_run_reported(w):
    # the champion's historical run scored 0.5: against that, 0.8 would pass; on the same data it does not
    validate(w, '{"metrics": {"accuracy": 0.8, "roc_auc": 0.8}, ' + SCORES + "}")
    assert w.registry.tags[(STAGING, "2")]["validation_status"] == "failed"


@pytest.mark.parametrize(
    "approver, role, message",
    [
        (
            "alice",
            "admin",
            "refused: four eyes: @alice opened the pull request and wrote commits of it, so cannot approve "
            "churn-model-staging@2.",
        ),
        (
            "dave",
            "read",
            "refused: approving needs write permission on acme/churn-model or a place in the approvers "
            "of churn-model-staging; @dave has read.",
        ),
    ],
)
def test_refusals_name_the_rule(w, approver, role, message):
    validate(w)
    verdict = approvals.decide(w.deps, "approve", STAGING, "2", approver, "github", role=role)
    assert (verdict.ok, verdict.message) == (False, message)
    assert w.registry.aliases[(PROD, "champion")] == "1"


@pytest.mark.parametrize("name", [STAGING, MODEL])  # the model's own name means its staging registry
def test_an_approval_copies_the_version_to_prod_moves_the_champion_and_is_echoed(w, redis_client, name):
    validate(w)
    verdict = approvals.decide(w.deps, "approve", name, "2", "carol", "github")
    assert verdict.ok, verdict.message
    [prod_version] = [v for (m, v) in w.registry.versions_ if m == PROD and v != "1"]
    assert w.registry.versions_[(PROD, prod_version)].source == "models:/churn-model-staging/2"
    assert w.registry.aliases[(PROD, "champion")] == prod_version
    assert w.registry.tags[(STAGING, "2")]["approved_by"] == "carol"
    decision = w.forge.comment("decision", "churn-model-staging@2")
    assert "churn-model-staging@2" in decision and "@carol" in decision and "champion" in decision
    assert "*Decision:* ✅" in w.slack.closed[0]["text"]
    assert "promoted" in [e["decision"] for e in audit.entries(redis_client, PROD)]  # the prod version's entry


def test_slack_users_decide_through_the_same_policy(w, settings):
    validate(w)
    slack_commands.press_button(w.deps, "reject", "churn-model-staging@2", "U0BOB", "https://hooks/r")
    login = settings.slack.users["U0BOB"]
    assert w.slack.responses[-1]["text"] == f"@{login}: rejected churn-model-staging@2."
    assert w.registry.tags[(STAGING, "2")]["rejection_reason"] == "rejected with the Slack button"
    slack_commands.press_button(w.deps, "approve", "churn-model-staging@2", "U0NOBODY", "https://hooks/r")
    assert "is not mapped to a GitHub login" in w.slack.responses[-1]["text"]


def test_a_version_the_bot_cannot_trace_needs_two_listed_approvers(w):
    del w.registry.run_tags_["r2"]  # registered by hand: nothing points at a run the bot started
    validate(w)
    assert w.deps.state.approval(STAGING, "2").needed == 2
    verdict = approvals.decide(w.deps, "approve", STAGING, "2", "carol", "github")
    assert not verdict.ok and "has no lineage the bot can prove" in verdict.message  # write, but not listed
    assert approvals.decide(w.deps, "approve", STAGING, "2", "bob", "github").ok  # bob is listed: 1 of 2
    assert w.registry.aliases[(PROD, "champion")] == "1"
    assert (
        "has approved churn-model-staging@2 already"
        in approvals.decide(w.deps, "approve", STAGING, "2", "bob", "github").message
    )
