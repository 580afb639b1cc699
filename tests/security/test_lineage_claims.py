"""Attack (issue #18, step 1): a version claims a merge's staging training run through its tags.

alice's open PR ran `/train toy`; its `prepare` step waited for the staging training of bob's merged PR, then
registered its own model into the staging registry with the tag `job_run_id=<that staging run>`. The lineage rule
read the run id from the tag and the first version to claim the run won: alice's version became bob's PR's
"proven" candidate (its four-eyes check then looked at bob, not at alice).

Now a version is the run's only on facts nobody under review writes (workers/release/lineage.py): who the registry
says created it, when it was created against the run's start and end as the Jobs API reports them, and its MLflow
run against the one the run's own tasks reported. Each test below gives alice's version the staging run's tag and
one of those facts wrong -- even the principal right, as if the PR principal could write staging (defence in depth:
tests/security/test_pr_principal.py shows it cannot) -- and checks the real version is taken and hers is not.

On the shared fakes through the release service; `creators` makes the registry record who created a version, as
Unity Catalog does: "created_by: The identifier of the user who created the model version" (Databricks REST API,
Model Versions > Get, `ModelVersionInfo.created_by`; MLflow's UC client reads it as `ModelVersion.user_id`).
"""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from tests.fakes import pull, world
from workers.core.state import State
from workers.pr import runs
from workers.release import approvals
from workers.release import train as release

REPO, PR, MERGE = "acme/churn-model", 7, "m" * 40
STAGING, PROD = "churn-model-staging", "churn-model"
DEV_SP, STAGING_SP = "0b9e6a7c-0000-4000-8000-0000000000de", "5e7a9d21-0000-4000-8000-0000000005a9"  # config.toml
SCORED = {"metrics": {"accuracy": 0.9, "roc_auc": 0.8}, "champion_metrics": {"accuracy": 0.85, "roc_auc": 0.75},
          "champion_version": "1", "data": "full", "passed": True}  # fmt: skip


@pytest.fixture
def w(settings, redis_client):
    w = world(settings, State(redis_client))
    w.registry.creators = True  # Unity Catalog: the server records the creator from the caller's token
    w.forge.pulls[PR] = pull(PR, author="bob", state="closed")
    w.forge.roles.update(alice="write", bob="write", carol="write")
    w.registry.add_version(PROD, "1", "r-prod-1", {"accuracy": 0.85})
    w.registry.set_alias(PROD, "champion", "1")
    return w


def merged(w) -> int:
    """bob's PR is merged (erin merged it): the bot starts the staging training and records it."""
    [run_id] = release.on_merged(
        w.deps, repo=REPO, pr=PR, sha=MERGE, author="bob", merged_by="erin", delivery_id="d-merge"
    )
    return run_id


def alices(w, train: int, version: str, *, created_by: str = DEV_SP, mlflow_run: str = "r-alice") -> None:
    """alice's PR job registers her model into staging, claiming the staging run (tags on the version and run)."""
    w.registry.add_version(STAGING, version, mlflow_run, {"accuracy": 0.999}, created_by=created_by,
                           job_run_id=str(train), pr=str(PR), triggered_by="bob")  # fmt: skip
    w.registry.run_tags_[mlflow_run] = {"job_run_id": str(train), "mlflow.databricks.jobRunId": str(train)}


def bobs(w, train: int, version: str) -> None:
    """The merged code, running as the staging principal, registers its model."""
    w.registry.add_version(STAGING, version, "r-bob", {"accuracy": 0.9}, created_by=STAGING_SP)
    w.registry.run_tags_["r-bob"] = {"mlflow.databricks.jobRunId": str(train)}


def train_ends(w, train: int) -> str:
    """The staging run ends; its register step said which MLflow run it registered (read through the Jobs API)."""
    w.deps.workspaces("staging").finish(train, "SUCCESS", json.dumps({"mlflow_run_id": "r-bob", "version": "3"}))
    return runs.follow(w.deps, "staging", train)


def validated(w, version: str):
    validation = max(w.deps.workspaces("staging").runs)
    w.deps.workspaces("staging").finish(validation, "SUCCESS", json.dumps(SCORED))
    runs.follow(w.deps, "staging", validation)
    return w.deps.state.approval(STAGING, version)


def candidate(w) -> str:
    """The version the release of bob's PR took as its candidate."""
    return w.deps.state.release("churn-model", REPO, PR).staging.version


@pytest.mark.parametrize(
    "fact, forged",
    [
        ("another principal created it", {}),
        ("the staging principal, another MLflow run", {"created_by": STAGING_SP}),
    ],
)
def test_a_version_claiming_the_staging_run_is_not_the_merges(w, fact, forged):
    train = merged(w)
    alices(w, train, "2", **forged)  # first: the old rule took the first version that claimed the run
    bobs(w, train, "3")
    train_ends(w, train)
    assert candidate(w) == "3", fact
    request = validated(w, "3")
    assert request.proven and (request.pr, request.pr_author, request.mlflow_run_id) == (PR, "bob", "r-bob")
    assert w.deps.state.approval(STAGING, "2") is None


def test_a_version_created_before_the_run_started_is_not_the_merges(w):
    """Even by the staging principal and naming the run's own MLflow run: alice's job registered while bob's run
    waited for its cluster -- after the bot started it, before it ran (its start as the Jobs API reports it)."""
    train = merged(w)
    staging = w.deps.workspaces("staging")
    start = staging.runs[train].start_time + 10 * 60_000  # PENDING ten minutes: the cluster was starting
    staging.runs[train] = replace(staging.runs[train], start_time=start)
    alices(w, train, "2", created_by=STAGING_SP, mlflow_run="r-bob")
    bobs(w, train, "3")
    w.registry.versions_[(STAGING, "3")] = replace(w.registry.versions_[(STAGING, "3")], created=start + 30_000)
    train_ends(w, train)
    assert candidate(w) == "3" and validated(w, "3").proven
    event = release.ModelEvent(registry="poll", kind="version_created", model=STAGING, version="2")
    assert release.on_model_event(w.deps, event, "poll:2").startswith("validating")
    request = validated(w, "2")
    assert not request.proven and request.pr is None and request.needed == 2  # unproven: two listed approvers
    assert request.claimed == {"pr": str(PR), "triggered_by": "bob"}  # shown, not trusted
    carol = approvals.decide(w.deps, "approve", STAGING, "2", "carol", "github")
    assert not carol.ok and "has no lineage the bot can prove" in carol.message


def test_the_claim_found_by_polling_is_left_to_the_run_and_then_refused(w):
    """Polling finds alice's version while the run still runs: it waits for the run's end, which takes bob's."""
    train = merged(w)
    alices(w, train, "2")
    event = release.ModelEvent(registry="poll", kind="version_created", model=STAGING, version="2")
    assert release.on_model_event(w.deps, event, "poll:2") == f"left to training run {train}"
    bobs(w, train, "3")
    train_ends(w, train)
    assert candidate(w) == "3" and validated(w, "3").proven
    assert release.on_model_event(w.deps, event, "poll:2").startswith("validating")  # found again: unproven
    assert not w.deps.state.approval(STAGING, "2").proven


def test_a_run_with_only_the_claim_says_why_it_was_not_taken(w):
    train = merged(w)
    alices(w, train, "2")
    assert train_ends(w, train)
    problem = w.deps.state.release("churn-model", REPO, PR).staging.problem
    assert f"`{STAGING}` version 2 was created by `{DEV_SP}`, not by `staging`'s principal `{STAGING_SP}`" in problem
    assert candidate(w) == "" and w.deps.state.approval(STAGING, "2") is None
