"""The release train on the shared fakes: merge → staging training → proven lineage → validation against the
prod champion on the same data → four eyes → copy into prod, alias, deploy → rollback.

config.toml's `churn-model` rides the default stages: dev (`churn-model-dev`), staging (`churn-model-staging`),
prod (`churn-model`, where `champion` moves).
"""

import json
from dataclasses import replace

import pytest

from core import audit
from core.commands import Command
from handlers.registry import model_event
from tests.fakes import pull, world
from workers.core.records import ApprovalRequest
from workers.core.state import State
from workers.pr import chatops, runs
from workers.release import approvals
from workers.release import polling as registry_watch
from workers.release import train as release

REPO, PR, MERGE = "acme/churn-model", 7, "m" * 40
DEV, STAGING, PROD = "churn-model-dev", "churn-model-staging", "churn-model"
JOB_RUN = "mlflow.databricks.jobRunId"
SCORED = {
    "metrics": {"accuracy": 0.9, "roc_auc": 0.8},
    "champion_metrics": {"accuracy": 0.85, "roc_auc": 0.75},
    "champion_version": "1",
    "data": "validation set: 2,000 generated rows, seed 7 (full)",
    "passed": True,
}


@pytest.fixture
def w(settings, redis_client):
    w = world(settings, State(redis_client))
    w.forge.pulls[PR] = pull(PR, author="alice", state="closed")
    w.forge.roles.update(alice="admin", bob="write", carol="write", dave="read", mo="maintain")
    w.registry.add_version(PROD, "1", "r-prod-1", {"accuracy": 0.85})
    w.registry.set_alias(PROD, "champion", "1")
    return w


def ws(w, env):
    return w.deps.workspaces(env)


def merge(w, pr=PR, sha=MERGE, author="alice", merged_by="alice", delivery="d-merge") -> int:
    [run_id] = release.on_merged(
        w.deps, repo=REPO, pr=pr, sha=sha, author=author, merged_by=merged_by, delivery_id=delivery
    )
    return run_id


def register(w, name, version, job_run_id, **claimed):
    """What the training code does: register a version whose MLflow run carries the job run id."""
    run = f"r-{name}-{version}"
    w.registry.add_version(name, version, run, {"accuracy": 0.9}, **claimed)
    w.registry.run_tags_[run] = {JOB_RUN: str(job_run_id), **claimed}


def finish(w, env, run_id, result="SUCCESS", output=None):
    if output is None:  # a training run: its register step ends saying which MLflow run it registered
        registered = [r for r, tags in w.registry.run_tags_.items() if tags.get(JOB_RUN) == str(run_id)]
        output = {"mlflow_run_id": registered[0]} if registered else ""
    ws(w, env).finish(run_id, result, json.dumps(output) if isinstance(output, dict) else (output or ""))
    return runs.follow(w.deps, env, run_id)


def validation_run(w):
    return max(ws(w, "staging").runs)


def released(w, version="2", output=SCORED) -> ApprovalRequest:
    """Merge → staging training registers `version` → validation scores it: the request for approval."""
    train = merge(w)
    register(w, STAGING, version, train, triggered_by="carol", pr="99")  # forged: carol did not write it
    finish(w, "staging", train)
    finish(w, "staging", validation_run(w), output=output)
    return w.deps.state.approval(STAGING, version)


def test_a_merge_trains_the_merge_commit_on_full_data_in_staging(w):
    run_id = merge(w)
    staging = ws(w, "staging")
    params = staging.parameters[run_id]
    assert (params["sha"], params["dataset"], params["model"]) == (MERGE, "full", STAGING)
    assert staging.jobs[staging.runs[run_id].job_id]["name"] == "mlops-bot/acme/churn-model/main/train@staging"
    assert w.scheduler.follows == [("staging", run_id, 0)]
    comment = w.forge.comment("release", "churn-model")
    assert "### 🚆 Release of `churn-model` from #7 (merge commit `mmmmmmm`)" in comment
    assert [d["environment"] for d in w.forge.deployments.values()] == ["staging"]
    assert merge(w) == run_id  # a redelivered merge starts nothing new


def test_validation_scores_candidate_and_champion_on_the_same_data_with_trusted_code(w):
    train = merge(w)
    register(w, STAGING, "2", train)
    finish(w, "staging", train)
    params = ws(w, "staging").parameters[validation_run(w)]
    assert params["champion"] == f"models:/{PROD}@champion"
    assert (params["model"], params["version"], params["sha"], params["dataset"]) == (STAGING, "2", MERGE, "full")
    finish(w, "staging", validation_run(w), output=SCORED)
    request = w.deps.state.approval(STAGING, "2")
    assert request.validation == "passed" and request.proven and request.commit == MERGE
    assert request.champion.metrics == SCORED["champion_metrics"]  # not the champion's training metrics
    pr_text = w.forge.comment("approval", f"{STAGING}@2")
    assert "Validation data: validation set: 2,000 generated rows, seed 7 (full)" in pr_text
    assert "| accuracy | 0.9000 | 0.8500 | +0.0500 |" in pr_text
    [asked] = w.slack.requests
    assert "@alice wrote the change and cannot approve it." in asked["text"]


def test_forged_lineage_tags_do_not_decide_four_eyes(w):
    request = released(w)
    assert request.claimed == {"triggered_by": "carol", "pr": "99"}
    verdict = approvals.decide(w.deps, "approve", STAGING, "2", "alice", "github")
    assert not verdict.ok and "@alice opened the pull request" in verdict.message  # the bot's record says alice
    assert (PROD, "champion") in w.registry.aliases and w.registry.aliases[(PROD, "champion")] == "1"


def test_a_model_event_task_message_reads_as_the_typed_event():
    sent = model_event("databricks", "transition_requested", STAGING, 3, tags={"k": "v"}, to_stage="Production")
    event = release.ModelEvent.from_json(json.loads(json.dumps(sent | {"newer": 1})))
    assert event == release.ModelEvent(
        "databricks", "transition_requested", STAGING, "3", tags={"k": "v"}, to_stage="Production"
    )


def test_a_version_whose_lineage_cannot_be_proven_needs_two_listed_approvers(w, settings):
    pr_run = 4242  # a job run the bot never started from a merge (e.g. a PR's, pointed at by forged tags)
    register(w, STAGING, "3", pr_run, repo=REPO, pr=str(PR), triggered_by="carol")
    assert release.on_model_event(w.deps, release.ModelEvent("mlflow", "version_created", STAGING, "3"), "d-1")
    finish(w, "staging", validation_run(w), output=SCORED)
    request = w.deps.state.approval(STAGING, "3")
    assert not request.proven and request.needed == 2
    carol = approvals.decide(w.deps, "approve", STAGING, "3", "carol", "github")
    assert not carol.ok and "has no lineage the bot can prove" in carol.message and "(bob)" in carol.message
    assert approvals.decide(w.deps, "approve", STAGING, "3", "bob", "github").message == (
        f"approval 1 of 2 recorded for {STAGING}@3."
    )
    assert w.registry.aliases[(PROD, "champion")] == "1"


def test_a_listed_team_member_may_approve(w):
    w.forge.teams["acme/ml-leads"] = {"erin"}
    approvers = w.deps.settings.models["churn-model"].approvers  # the prod stage's default
    approvers.append("@acme/ml-leads")
    try:
        assert approvals.listed(w.deps, "churn-model", "erin")  # a member, asked on GitHub
        assert not approvals.listed(w.deps, "churn-model", "dave")
        assert approvals.listed(w.deps, "churn-model", "BOB")  # logins compare as GitHub does
    finally:
        approvers.remove("@acme/ml-leads")


def test_approval_copies_into_prod_moves_the_alias_and_deploys(w, redis_client):
    released(w)
    verdict = approvals.decide(w.deps, "approve", "churn-model", "2", "bob", "github")  # the model's name works too
    assert verdict.ok and verdict.message == f"approved: {STAGING}@2 is now `{PROD}@champion` (v2)."
    assert w.registry.aliases[(PROD, "champion")] == "2"
    assert w.registry.versions_[(PROD, "2")].source == f"models:/{STAGING}/2"
    deploy = max(ws(w, "prod").runs)
    assert (ws(w, "prod").parameters[deploy]["model"], ws(w, "prod").parameters[deploy]["version"]) == (PROD, "2")
    finish(w, "prod", deploy)
    assert w.registry.tags[(PROD, "2")]["deployed_prod_by"] == "bob"
    assert w.forge.deployment_states("prod") == [["in_progress", "success"]]
    decisions = [e["decision"] for e in audit.entries(redis_client)]
    assert decisions[-4:] == ["copied", "promoted", "deploy-started", "deployed"]
    comment = w.forge.comment("release", "churn-model")
    assert "✅ approved by @bob" in comment and "`@champion` → v2" in comment


def test_an_approval_on_an_open_pr_never_moves_a_prod_alias(w):
    w.registry.writes.clear()  # the fixture's own champion
    w.forge.pulls[8] = pull(8, author="alice", state="open")
    ctx = chatops.command_context(w.deps, REPO, 8, 900, "alice", "d-pr", 0)
    chatops.run_command(ctx, Command("train", line="/train"))
    [pr_run] = ws(w, "dev").runs
    assert ws(w, "dev").parameters[pr_run]["model"] == DEV
    register(w, DEV, "1", pr_run)
    finish(w, "dev", pr_run)
    assert release.on_model_event(w.deps, release.ModelEvent("mlflow", "version_created", DEV, "1"), "d-2") == (
        "noted dev version"
    )
    for i, (user, line) in enumerate(
        [("bob", "/approve"), ("mo", "/deploy prod"), ("bob", "/approve churn-model-dev@1")]
    ):
        ctx = chatops.command_context(w.deps, REPO, 8, 901, user, "d-pr", i)
        name, _, rest = line[1:].partition(" ")
        command = Command(name, line=line)
        if name == "deploy":
            command = replace(command, environment=rest)
        elif rest:
            command = replace(command, model=rest.split("@")[0], version=rest.split("@")[1])
        chatops.run_command(ctx, command)
        assert "refused" in w.forge.comment("reply", f"901-{i}") or "not merged" in w.forge.comment("reply", f"901-{i}")
    assert "#8 is not merged" in w.forge.comment("reply", "901-0")
    assert "is the dev registry" in w.forge.comment("reply", "901-2")
    assert not [write for write in w.registry.writes if write[1] in (STAGING, PROD)]
    assert w.registry.aliases[(PROD, "champion")] == "1" and not ws(w, "prod").runs


def test_deploy_prod_follows_the_chain(w):
    released(w)
    ctx = chatops.command_context(w.deps, REPO, PR, 777, "mo", "d-dep", 0)
    chatops.run_command(ctx, Command("deploy", environment="prod", line="/deploy prod"))
    assert "a version reaches prod only after it passed staging with the 1 approval(s) prod requires" in (
        w.forge.comment("reply", "777-0")
    )
    assert not ws(w, "prod").runs


def test_deploy_prod_after_a_rollback_is_refused_for_the_version_rolled_back(w):
    released(w)
    approvals.decide(w.deps, "approve", STAGING, "2", "bob", "github")
    chatops.run_command(
        chatops.command_context(w.deps, REPO, PR, 810, "mo", "d", 0), Command("rollback", environment="prod")
    )
    prod_runs = len(ws(w, "prod").runs)
    chatops.run_command(
        chatops.command_context(w.deps, REPO, PR, 811, "mo", "d", 0), Command("deploy", environment="prod")
    )
    assert "it is not the champion (v1 is); `/rollback prod 2` brings it back" in w.forge.comment("reply", "811-0")
    assert len(ws(w, "prod").runs) == prod_runs


def test_rollback_goes_back_to_the_previous_champion_and_deploys_it(w, redis_client):
    released(w)
    approvals.decide(w.deps, "approve", STAGING, "2", "bob", "github")
    ctx = chatops.command_context(w.deps, REPO, PR, 800, "mo", "d-rb", 0)
    chatops.run_command(ctx, Command("rollback", environment="prod", line="/rollback prod"))
    assert w.registry.aliases[(PROD, "champion")] == "1"
    assert "rolled `churn-model@champion` back from v2 to v1" in w.forge.comment("reply", "800-0")
    deploy = max(ws(w, "prod").runs)
    assert ws(w, "prod").parameters[deploy]["version"] == "1"
    assert audit.entries(redis_client)[-2]["decision"] == "rolled-back"
    finish(w, "prod", deploy)
    comment = w.forge.comment("release", "churn-model")  # the release whose version left prod says so
    assert "rolled `churn-model@champion` back from v2 to v1" in comment and "`@champion` → v1" in comment
    assert w.forge.deployment_states("prod")[-1] == ["in_progress", "success"]
    ctx = chatops.command_context(w.deps, REPO, PR, 801, "mo", "d-rb2", 0)
    chatops.run_command(ctx, Command("rollback", environment="prod", line="/rollback prod"))
    assert "has no earlier champion" in w.forge.comment("reply", "801-0")
    ctx = chatops.command_context(w.deps, REPO, PR, 802, "bob", "d-rb3", 0)
    chatops.run_command(ctx, Command("rollback", environment="prod", version="2", line="/rollback prod 2"))
    assert "needs maintain permission" in w.forge.comment("reply", "802-0")


def test_a_cancelled_validation_is_not_a_failed_one(w):
    assert released(w, output="").validation == "failed"  # a successful run that said nothing proves nothing
    merge(w, pr=9, sha="9" * 40, delivery="d-9")
    train = max(ws(w, "staging").runs)
    register(w, STAGING, "5", train)
    finish(w, "staging", train)
    finish(w, "staging", validation_run(w), result="CANCELED")
    assert w.deps.state.approval(STAGING, "5").validation == "cancelled"
    assert w.registry.tags[(STAGING, "5")]["validation_status"] == "cancelled"


def test_polling_finds_a_staging_version_created_while_the_worker_was_down_once(settings, redis_client):
    polled = settings.model_copy(update={"mlflow": settings.mlflow.model_copy(update={"poll": True})})
    w = world(polled, State(redis_client))
    registry_watch.poll(w.deps, now_ms=1)  # the first poll records what exists as history
    train = merge(w)
    register(w, STAGING, "1", train)  # the worker was down: nobody followed the training run
    w.deps.state.r.delete(*w.deps.state.r.keys("mlops-bot:poll-guard:*"))
    assert registry_watch.poll(w.deps, now_ms=2) == 1
    # its training run has not been seen to end: the run's end proves which version is its (issue #18: the Jobs
    # API's record of the finished run, not the version's tags), so polling leaves it to the run
    assert w.deps.state.approval(STAGING, "1") is None
    finish(w, "staging", train)
    w.deps.state.r.delete(*w.deps.state.r.keys("mlops-bot:poll-guard:*"))
    assert registry_watch.poll(w.deps, now_ms=3) == 0
    assert w.deps.state.approval(STAGING, "1").proven
    assert len([r for r in ws(w, "staging").runs if ws(w, "staging").parameters[r].get("version") == "1"]) == 1


def test_validations_of_different_versions_never_cancel_each_other(w):
    train = merge(w)
    register(w, STAGING, "2", train)
    finish(w, "staging", train)
    first = validation_run(w)
    merge(w, pr=9, sha="9" * 40, delivery="d-9")  # another merge: its training and validation run meanwhile
    train9 = max(ws(w, "staging").runs)
    register(w, STAGING, "3", train9)
    finish(w, "staging", train9)
    assert validation_run(w) != first and not ws(w, "staging").cancelled


def _written(settings, **prod) -> object:
    """config.toml's settings with the three default stages written out, the prod stage given `prod`'s fields."""
    import tomllib

    from core.config import parse_config
    from tests.conftest import ROOT

    data = tomllib.loads((ROOT / "config.toml").read_text())
    data["models"]["churn-model"]["stages"][2].update(prod)
    return parse_config(data)


def test_retrain_trains_again_in_prod_from_the_recorded_commit_and_crowns_what_it_registered(settings, redis_client):
    w = world(_written(settings, retrain=True), State(redis_client))
    w.forge.pulls[PR] = pull(PR, author="alice", state="closed")
    w.forge.roles.update(bob="write")
    w.registry.add_version(PROD, "1", "r-prod-1", {"accuracy": 0.85})
    w.registry.set_alias(PROD, "champion", "1")
    released(w)
    verdict = approvals.decide(w.deps, "approve", STAGING, "2", "bob", "github")
    assert verdict.ok and "re-training in prod" in verdict.message
    assert not [write for write in w.registry.writes if write == ("copy", PROD)]  # trained again, not copied
    [retrain] = ws(w, "prod").runs
    params = ws(w, "prod").parameters[retrain]
    assert (params["sha"], params["model"], params["dataset"]) == (MERGE, PROD, "full")
    register(w, PROD, "2", retrain)
    finish(w, "prod", retrain)
    assert w.registry.aliases[(PROD, "champion")] == "2"
    deploy = max(ws(w, "prod").runs)
    assert deploy != retrain and ws(w, "prod").parameters[deploy]["version"] == "2"


def test_on_a_workspace_registry_the_prod_copy_also_moves_to_promote_stage(settings, redis_client):
    staged = settings.model_copy(update={"mlflow": settings.mlflow.model_copy(update={"promote_stage": "Production"})})
    w = world(staged, State(redis_client))
    w.forge.pulls[PR] = pull(PR, author="alice", state="closed")
    w.forge.roles.update(bob="write")
    released(w)
    assert approvals.decide(w.deps, "approve", STAGING, "2", "bob", "github").ok
    assert w.registry.stages == {(PROD, "1"): "Production"}  # the prod copy (v1: the first in this prod registry)


FIRST = {"metrics": {"accuracy": 0.61, "roc_auc": 0.63}, "data": "full", "passed": True}  # no champion scored


def first_release(settings, redis_client, gates: list[str]):
    """A world with no prod champion yet and the model's `gates` as given."""
    model = settings.models["churn-model"].model_copy(update={"gates": gates})
    w = world(settings.model_copy(update={"models": {"churn-model": model}}), State(redis_client))
    w.forge.pulls[PR] = pull(PR, author="alice", state="closed")
    w.forge.roles.update(alice="admin", bob="write", carol="write")
    return w


@pytest.mark.parametrize(
    "gates, validation, shown",
    [
        # issue #19: roc_auc 0.63 reached an approval request with every gate green; the absolute gate decides now
        (["accuracy >= champion - 0.01", "roc_auc >= 0.7"], "failed", "failed: roc_auc >= 0.7 (0.6300 >= 0.7000)"),
        (
            ["accuracy >= champion - 0.01", "roc_auc >= 0.6"],
            "passed",
            "passed: accuracy=0.6100, roc_auc=0.6300 (accuracy >= champion - 0.01: n/a — no champion yet)",
        ),
    ],
)
def test_a_first_release_is_decided_by_the_absolute_gates_the_relative_ones_shown_not_applicable(
    settings, redis_client, gates, validation, shown
):
    w = first_release(settings, redis_client, gates)
    request = released(w, output=FIRST)
    assert (request.validation, request.summary, request.unchecked) == (validation, shown, False)
    assert w.registry.tags[(STAGING, "2")]["validation_status"] == validation
    comment = w.forge.comment("release", "churn-model")
    assert "| gate `accuracy >= champion - 0.01` | ➖ n/a | | no champion yet |" in comment
    assert bool(w.slack.requests) is (validation == "passed")


def test_a_first_release_with_no_absolute_gate_is_left_to_the_listed_approvers(settings, redis_client):
    w = first_release(settings, redis_client, ["accuracy >= champion - 0.01"])
    request = released(w, output=FIRST)
    assert request.validation == "passed" and request.unchecked
    assert request.summary.endswith(
        "(accuracy >= champion - 0.01: n/a — no champion yet); no gate decided: the listed approvers do"
    )
    asked = w.forge.comment("approval", f"{STAGING}@2")
    assert "was not validated by any gate and needs 1 approval(s) from the model's listed approvers" in asked
    assert (
        "⚠️ No gate decided: there is no prod champion yet, and [models.churn-model] `gates` name no absolute" in asked
    )
    assert "| gate `accuracy >= champion - 0.01` | ➖ n/a | | no champion yet |" in asked
    assert "no gate checked it: the listed approvers decide" in w.forge.comment("release", "churn-model")
    refused = approvals.decide(w.deps, "approve", STAGING, "2", "carol", "github", role="write")
    assert not refused.ok and "only the model's listed approvers (bob) may approve it" in refused.message
    assert approvals.decide(w.deps, "approve", STAGING, "2", "bob", "github", role="write").ok
