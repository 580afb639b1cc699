"""A new team's repository, through `python -m devstack up`: examples/fraud-detection (two models, its own pipeline
file with custom workflow names, a notebook and script tasks, job clusters and serverless) and its central config
(examples/fraud.config.toml: guard rails, two approvals, a team among the approvers).

As its people would: a PR that changes the pipeline gets the plan; a node type outside the guard rails fails the
check; `/train card_fraud toy` and `/train ato_risk toy` each report against their own prod champion; the merge
takes both models through staging; a bare `/approve` is refused, naming both; each model is approved (bob and carol,
a member of @acme/fraud-leads) and rolled back without touching the other's deployment.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from devstack import ROOT, principals
from devstack.mlrepo import git
from devstack.sandboxes import WORKSPACE_TOKEN
from devstack.setups import USERS
from devstack.waiting import wait_until
from tests.support.devstack_up import Up, devstack_up, gh, url

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]  # a stack to start, four trainings, two releases
REPO = "acme/fraud-detection"
EXAMPLE = ROOT / "examples" / "fraud-detection"
MODELS = ("card_fraud", "ato_risk")
BRANCH = "feature/velocity"
GIT_ENV = {"GIT_AUTHOR_NAME": "Alice", "GIT_AUTHOR_EMAIL": "alice@acme.test"}
GIT_ENV |= {"GIT_COMMITTER_NAME": "Alice", "GIT_COMMITTER_EMAIL": "alice@acme.test"}


def wait(check, timeout=120.0, what="the condition"):
    return wait_until(check, timeout, what, every=0.5)


@pytest.fixture(scope="module")
def up():
    config = ROOT / "examples" / "fraud.config.toml"
    with devstack_up("--repo", str(EXAMPLE), "--config", str(config), "--name", REPO) as running:
        yield running


def uc(up: Up, token: str):
    from mlflow import MlflowClient

    os.environ.update({"DATABRICKS_HOST": url(up, "workspace"), "DATABRICKS_TOKEN": token})
    return MlflowClient(tracking_uri=url(up, "mlflow"), registry_uri="databricks-uc")


@pytest.fixture(scope="module")
def champions(up, tmp_path_factory) -> dict[str, str]:
    """An earlier release of each model, trained with weak settings and registered by the prod principal (which so
    owns `prod.fraud.<model>`), the champion of its own registry."""
    work = tmp_path_factory.mktemp("champions")
    env = {
        **os.environ,
        "DATABRICKS_HOST": url(up, "workspace"),
        "DATABRICKS_TOKEN": principals.TOKENS[principals.PROD],
        "MLFLOW_TRACKING_URI": url(up, "mlflow"),
        "MLFLOW_REGISTRY_URI": "databricks-uc",
    }
    for model in MODELS:
        name, workdir = f"prod.fraud.{model}", str(work / model)
        steps = [
            ["notebooks/build_features.py", f"model_name={name}", "dataset=toy", f"workdir={workdir}"],
            ["steps/train.py", "--model-name", name, "--workdir", workdir, "--params", "n_estimators=5,max_depth=1"],
            ["steps/register.py", "--model-name", name, "--workdir", workdir, "--triggered-by", "carol"],
        ]
        for step in steps:
            done = subprocess.run([sys.executable, *step], cwd=EXAMPLE, env=env, capture_output=True, text=True)
            assert done.returncode == 0, f"{step[0]} for {model}:\n{done.stdout}\n{done.stderr}"
    client = uc(up, principals.TOKENS[principals.PROD])
    for model in MODELS:
        client.set_registered_model_alias(f"prod.fraud.{model}", "champion", "1")
    return {model: "1" for model in MODELS}


@pytest.fixture(scope="module")
def checkout(up, tmp_path_factory):
    """alice's clone of the repository on the forge."""
    where = tmp_path_factory.mktemp("alice") / "fraud-detection"
    forge = url(up, "forge").replace("http://", f"http://alice:{USERS['alice']}@")
    subprocess.run(["git", "clone", "-q", f"{forge}/{REPO}.git", str(where)], check=True, env={**os.environ, **GIT_ENV})
    return where


def commit_and_push(checkout, message: str, edit) -> str:
    pipeline = checkout / "mlops-bot.toml"
    pipeline.write_text(edit(pipeline.read_text()))
    env = {**os.environ, **GIT_ENV}
    for args in (["add", "-A"], ["commit", "-qm", message], ["push", "-q", "origin", f"HEAD:{BRANCH}"]):
        subprocess.run(["git", *args], cwd=checkout, check=True, env=env, capture_output=True)
    return git(checkout, "rev-parse", "HEAD")


def repo(up: Up, user: str = "bob"):
    return gh(up, user).get_repo(REPO)


def bot_comments(up: Up, pr: int, kind: str, key: str = ""):
    marker = f"<!-- mlops-bot:{kind} key={key}"
    return [c for c in repo(up).get_issue(pr).get_comments() if c.user.login == "mlops-bot" and marker in c.body]


def status(up: Up, sha: str, context: str) -> str | None:
    found = [s for s in repo(up).get_commit(sha).get_statuses() if s.context == context]
    return found[0].state if found else None


def answer(up: Up, pr: int, user: str, body: str, timeout: float = 120) -> str:
    c = repo(up, user).get_issue(pr).create_comment(body)
    return wait(lambda: bot_comments(up, pr, "reply", f"{c.id}-0"), timeout, f"the answer to {body}")[0].body


@pytest.fixture(scope="module")
def pr(up, checkout, champions):
    """alice's PR: a bigger training cluster (the plan), then a node type outside the guard rails (refused), then
    back within them."""
    sha = commit_and_push(
        checkout, "Bigger training cluster", lambda t: t.replace("num_workers = 2", "num_workers = 4")
    )
    pull = repo(up, "alice").create_pull(title="Velocity features", body="More workers.", head=BRANCH, base="main")
    return {"number": pull.number, "first": sha}


def test_a_pipeline_change_gets_the_plan(up, pr):
    done = wait(lambda: status(up, pr["first"], "mlops-bot/pipeline"), 120, "the pipeline check")
    assert done == "success"
    [plan] = bot_comments(up, pr["number"], "plan", "pipeline")
    assert "| ~ change | job `fit` | cluster `train`: 2 → 4 workers |" in plan.body, plan.body


def test_a_node_type_outside_the_guard_rails_fails_the_check_and_runs_nothing(up, pr, checkout):
    sha = commit_and_push(
        checkout, "GPUs", lambda t: t.replace('node_type_id = "Standard_DS3_v2"', 'node_type_id = "Standard_NC24ads"')
    )
    assert wait(lambda: status(up, sha, "mlops-bot/pipeline"), 120, "the refused check") == "failure"
    [plan] = bot_comments(up, pr["number"], "plan", "pipeline")
    assert "is refused" in plan.body and "node_type_id = 'Standard_NC24ads'" in plan.body
    assert "outside the guard rail `node_types`" in plan.body
    refused = answer(up, pr["number"], "alice", "/train card_fraud toy")
    assert "node_types" in refused  # a command on this head is refused for the same reason
    back = commit_and_push(
        checkout,
        "Back to DS3",
        lambda t: t.replace('node_type_id = "Standard_NC24ads"', 'node_type_id = "Standard_DS3_v2"'),
    )
    assert wait(lambda: status(up, back, "mlops-bot/pipeline"), 120, "the check again") == "success"
    pr["head"] = back


def test_each_model_trains_on_the_pr_and_reports_against_its_own_champion(up, pr):
    if "head" not in pr:
        pytest.skip("the PR's head is not back within the guard rails")
    for model in MODELS:
        repo(up, "alice").get_issue(pr["number"]).create_comment(f"/train {model} toy")
    for model in MODELS:
        [report] = wait(
            lambda m=model: (
                [r for r in bot_comments(up, pr["number"], "report", f"fit/{m}") if "SUCCESS" in r.body] or None
            ),
            300,
            f"{model}'s train report",
        )
        assert f"Metrics vs champion (prod.fraud.{model} v1)" in report.body, report.body


@pytest.fixture(scope="module")
def merged(up, pr):
    if "head" not in pr:
        pytest.skip("the PR's head is not back within the guard rails")
    merge = repo(up, "bob").get_pull(pr["number"]).merge(merge_method="merge")
    asks = {}
    for model in MODELS:
        [ask] = wait(
            lambda m=model: bot_comments(up, pr["number"], "approval", f"staging.fraud.{m}@") or None,
            420,
            f"{model}'s approval request",
        )
        asks[model] = re.search(rf"key=staging\.fraud\.{model}@(\d+)", ask.body).group(1)
    return {"sha": merge.sha, "versions": asks, "number": pr["number"]}


def test_the_merge_takes_both_models_through_staging(up, merged):
    client = uc(up, WORKSPACE_TOKEN)  # the metastore admin reads every catalog
    for model, version in merged["versions"].items():
        v = client.get_model_version(f"staging.fraud.{model}", version)
        assert v.tags.get("validation_status") == "passed", (model, v.tags)


def test_a_bare_approve_is_refused_naming_both_candidates(up, merged):
    refused = answer(up, merged["number"], "bob", "/approve")
    for model, version in merged["versions"].items():
        assert f"/approve {model}@{version}" in refused, refused


def deployments(up: Up, model: str) -> list[str]:
    found = list(repo(up).get_deployments(environment=f"prod/{model}"))
    return [s.state for s in reversed(list(found[0].get_statuses()))] if found else []


def champion(up: Up, model: str) -> str:
    return (
        uc(up, principals.TOKENS[principals.PROD]).get_model_version_by_alias(f"prod.fraud.{model}", "champion").version
    )


def test_each_model_is_approved_and_rolled_back_without_touching_the_other(up, merged, champions):
    number, versions = merged["number"], merged["versions"]
    card, ato = MODELS
    said = [answer(up, number, who, f"/approve {card}@{versions[card]}") for who in ("bob", "carol")]
    assert all("refused" not in a.lower() for a in said), said  # two approvals; carol is in @acme/fraud-leads
    wait(lambda: deployments(up, card)[-1:] == ["success"] or None, 300, f"{card}'s prod deployment after {said}")
    assert champion(up, card) != champions[card] and champion(up, ato) == champions[ato]
    said = [answer(up, number, who, f"/approve {ato}@{versions[ato]}") for who in ("bob", "carol")]
    assert all("refused" not in a.lower() for a in said), said
    wait(lambda: deployments(up, ato)[-1:] == ["success"] or None, 300, f"{ato}'s prod deployment")
    assert deployments(up, card)[-1] == "success"  # ato_risk's deployment did not mark card_fraud's inactive

    rolled = answer(up, number, "bob", f"/rollback prod {card}@{champions[card]}")
    assert champion(up, card) == champions[card], rolled
    assert champion(up, ato) != champions[ato]  # the other model stays where it was
    wait(lambda: len(list(repo(up).get_deployments(environment=f"prod/{card}"))) >= 2 or None, 300, "the redeploy")
    assert deployments(up, ato)[-1] == "success"
