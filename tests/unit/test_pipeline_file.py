"""A repository's own pipeline file (core/pipeline.py, workers/core/pipelines.py): schema, guard rails, the plan,
and which commit's file decides a release."""

from __future__ import annotations

import pytest

from core.config import parse_config
from core.pipeline import PipelineError, load_pipeline
from tests.fakes import world
from tests.support.configs import ROOT, example
from workers.core import pipelines
from workers.core.state import State
from workers.jobs import plan

REPO = "acme/fraud-detection"
RAILS = {
    "environments": ["dev", "staging", "prod"],
    "node_types": ["Standard_DS3_v2", "Standard_DS4_v2"],
    "max_workers": 8,
    "datasets": ["toy", "full"],
    "registry_names": ["dev.fraud.*", "staging.fraud.*", "prod.fraud.*"],
    "min_approvals": 2,
    "approvers": ["@acme/fraud-leads", "bob"],
}
FILE = """\
schema_version = 1
[workflows.fit]
environment = "dev"
datasets = ["toy", "full"]
compute = "job_clusters"
[workflows.fit.job_clusters.small]
node_type_id = "Standard_DS3_v2"
num_workers = 2
[[workflows.fit.tasks]]
key = "train"
file = "steps/train.py"
parameters = ["--model-name", "{model}"]
cluster = "small"
[workflows.champion-check]
environment = "staging"
[workflows.champion-check.environments.default]
environment_version = "4"
[[workflows.champion-check.tasks]]
key = "judge"
file = "steps/judge.py"
[workflows.ship]
environment = "staging"
[workflows.ship.environments.default]
environment_version = "4"
[[workflows.ship.tasks]]
key = "ship"
file = "steps/ship.py"
[models.card_fraud]
approvers = ["@acme/fraud-leads"]
required_approvals = 2
gates = ["roc_auc >= 0.8"]
validate_workflow = "champion-check"
deploy_workflow = "ship"
[[models.card_fraud.stages]]
name = "dev"
registry_name = "dev.fraud.card_fraud"
workflow = "fit"
[[models.card_fraud.stages]]
name = "staging"
registry_name = "staging.fraud.card_fraud"
workflow = "fit"
[[models.card_fraud.stages]]
name = "prod"
registry_name = "prod.fraud.card_fraud"
"""


@pytest.fixture
def central():
    data = example()
    data["repos"].append({"name": REPO, "pipeline_file": "mlops-bot.toml", "guard_rails": RAILS})
    return parse_config(data)


def effective(central, text=FILE):
    return load_pipeline(central, central.repo(REPO), text, "mlops-bot.toml")


def problems(central, text) -> list[str]:
    with pytest.raises(PipelineError) as refused:
        effective(central, text)
    return refused.value.lines


def test_the_file_is_the_repositorys_only_pipeline(central):
    assert central.repo_workflows(central.repo(REPO)) == {}  # nothing of the central [workflows] runs there
    own = effective(central)
    assert set(own.repo_workflows(own.repo(REPO))) == {"fit", "champion-check", "ship"}
    assert own.models["card_fraud"].repo == REPO
    assert [s.registry_name for s in own.stages("card_fraud")] == [
        "dev.fraud.card_fraud", "staging.fraud.card_fraud", "prod.fraud.card_fraud",
    ]  # fmt: skip


def test_a_node_type_outside_the_guard_rails_is_refused_naming_key_and_rail(central):
    found = problems(central, FILE.replace('node_type_id = "Standard_DS3_v2"', 'node_type_id = "Standard_NC24ads"'))
    assert found == [
        "workflows.fit.job_clusters.small.node_type_id = 'Standard_NC24ads': outside the guard rail `node_types` "
        "(allowed: Standard_DS3_v2, Standard_DS4_v2)"
    ]


def test_more_workers_than_allowed_and_another_teams_registry_are_refused(central):
    text = FILE.replace("num_workers = 2", "num_workers = 64").replace(
        'registry_name = "prod.fraud.card_fraud"', 'registry_name = "prod.ml.churn"'
    )
    found = problems(central, text)
    assert any("num_workers = 64: outside the guard rail `max_workers` (allowed: at most 8)" in p for p in found)
    assert any("registry_name = 'prod.ml.churn': outside the guard rail `registry_names`" in p for p in found)


def test_fewer_approvals_or_an_approver_outside_the_platforms_list_are_refused(central):
    found = problems(central, FILE.replace("required_approvals = 2", "required_approvals = 1").replace(
        'approvers = ["@acme/fraud-leads"]', 'approvers = ["mallory"]'
    ))  # fmt: skip
    assert any(
        "required_approvals = 1: outside the guard rail `min_approvals` (allowed: at least 2)" in p for p in found
    )
    assert any("approvers = 'mallory': outside the guard rail `approvers`" in p for p in found)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (FILE.replace("schema_version = 1\n", ""), "schema_version: missing"),
        (FILE.replace("schema_version = 1", "schema_version = 2"), "this bot reads schema_version = 1, not 2"),
        (FILE.replace("[workflows.fit]\n", "[workflows.fit]\nnum_gpus = 4\n"), "workflows.fit.num_gpus: unknown key"),
        ("schema_version = 1\n[models.x\n", "not valid TOML"),
        (FILE.replace('environment = "staging"', 'environment = "qa"', 1), "is not in [environments]"),
    ],
)
def test_a_file_that_does_not_validate_names_the_key(central, text, expected):
    assert any(expected in p for p in problems(central, text))


def test_a_repository_with_a_file_must_name_its_registry_names():
    data = example()
    data["repos"].append({"name": REPO, "pipeline_file": "mlops-bot.toml"})
    with pytest.raises(ValueError, match="registry_names"):
        parse_config(data)


def test_the_plan_names_the_fields_a_change_touches(central):
    before = effective(central)
    after = effective(central, FILE.replace("num_workers = 2", "num_workers = 8") + """\
[[workflows.fit.tasks]]
key = "explain"
file = "steps/explain.py"
cluster = "small"
depends_on = ["train"]
""")  # fmt: skip
    changes = plan.plan(before, after, REPO)
    assert [(c.kind, c.what) for c in changes] == [("change", "job `fit`")]
    assert changes[0].details[:2] == ("+ task `explain`", "cluster `small`: 2 → 8 workers")
    assert plan.headline(changes) == "0 to create, 1 to change, 0 to remove"
    shown = plan.render("mlops-bot.toml", changes)
    assert "| ~ change | job `fit` | + task `explain`<br>cluster `small`: 2 → 8 workers |" in shown


def test_a_new_file_plans_every_job_and_model(central):
    changes = plan.plan(None, effective(central), REPO)
    assert {(c.kind, c.what) for c in changes} == {
        ("create", "job `fit`"), ("create", "job `champion-check`"), ("create", "job `ship`"),
        ("create", "model `card_fraud`"),
    }  # fmt: skip


# --- which commit's file a task works with ------------------------------------------------------------------
BASE, HEAD, MERGE = "b" * 40, "c" * 40, "d" * 40


def test_a_task_reads_the_file_at_its_commit_once(central, redis_client):
    w = world(central, State(redis_client))
    w.forge.files[("mlops-bot.toml", HEAD)] = FILE
    first = pipelines.settings_at(w.deps, REPO, HEAD)
    w.forge.failures["file_at"] = AssertionError("read again")  # the file at a commit never changes
    pipelines._effective.clear()
    assert pipelines.settings_at(w.deps, REPO, HEAD).workflows.keys() == first.workflows.keys()
    assert pipelines.settings_at(w.deps, "acme/churn-model", HEAD) is central  # no file of its own


def test_a_commit_without_the_file_runs_nothing_and_says_why(central, redis_client):
    w = world(central, State(redis_client))
    with pytest.raises(pipelines.PipelineRefused, match="no such file in acme/fraud-detection at this commit"):
        pipelines.settings_at(w.deps, REPO, HEAD)


def test_a_pr_that_loosens_its_gate_does_not_decide_its_own_release(central, redis_client):
    """The merge commit holds the PR's file (gate loosened to 0.1); its release follows the default branch's
    file before the merge (0.8), found from GitHub's commit parents and recorded for every later step."""
    w = world(central, State(redis_client))
    loosened = FILE.replace("roc_auc >= 0.8", "roc_auc >= 0.1")
    w.forge.files.update({("mlops-bot.toml", BASE): FILE, ("mlops-bot.toml", HEAD): loosened})
    w.forge.files[("mlops-bot.toml", MERGE)] = loosened
    w.forge.parents[MERGE] = [BASE, HEAD]
    assert pipelines.settings_at(w.deps, REPO, HEAD).models["card_fraud"].gates == ["roc_auc >= 0.1"]  # its PR runs
    assert pipelines.decide_release_pipeline(w.deps, REPO, 7, MERGE) == BASE
    assert pipelines.settings_at(w.deps, REPO, MERGE).models["card_fraud"].gates == ["roc_auc >= 0.8"]


def test_a_squash_merge_is_walked_back_past_every_commit_of_the_pr(central, redis_client):
    from tests.fakes import commit

    w = world(central, State(redis_client))
    older, squashed = "e" * 40, "f" * 40
    w.forge.parents.update({squashed: [BASE], BASE: [older]})
    w.forge.commits[7] = [commit("alice"), commit("alice")]  # two commits in the PR: walk back two
    assert pipelines.decide_release_pipeline(w.deps, REPO, 7, squashed) == older  # older still: reviewed rules


def test_check_config_checks_a_repositorys_own_file_within_its_guard_rails(tmp_path, capsys):
    from bot.cli import main

    central = tmp_path / "config.toml"
    central.write_text(
        (ROOT / "config.toml").read_text()
        + '\n[[repos]]\nname = "acme/fraud-detection"\npipeline_file = "mlops-bot.toml"\n'
        + '[repos.guard_rails]\nnode_types = ["Standard_DS3_v2"]\nregistry_names = ["*.fraud.*"]\nmin_approvals = 2\n'
    )
    good, bad = tmp_path / "good.toml", tmp_path / "bad.toml"
    good.write_text(FILE)
    bad.write_text(FILE.replace("Standard_DS3_v2", "Standard_NC24ads"))
    assert main(["check-config", str(central), "--pipeline", str(good)]) == 0
    said = capsys.readouterr().out
    assert "ok for acme/fraud-detection — 3 workflow(s), 1 model(s)" in said
    assert '/test: no workflow has command = "test"' in said  # a warning: /test would answer so
    assert main(["check-config", str(central), "--pipeline", str(bad)]) == 1
    assert "outside the guard rail `node_types`" in capsys.readouterr().err
