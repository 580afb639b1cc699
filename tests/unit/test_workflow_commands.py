"""A workflow says which command runs it (issue #19): the `command` key, the one look-up, the stages' defaults that
follow it, what `/run` may start, what `/help` lists per repository, and `check-config`'s warnings."""

from pathlib import Path

import pytest

from core.commands import Command
from core.config import ConfigError, parse_config
from core.stages import pipeline_warnings
from tests.support.configs import example, renamed_pipeline
from workers.core.permissions import Refusal
from workers.pr import policy, texts

REPO = "acme/churn-model"
ROOT = Path(__file__).resolve().parents[2]


def test_a_workflow_named_as_a_command_is_its_own_and_the_key_moves_it():
    assert parse_config(example()).commands(REPO) == {"train": "train", "test": "test", "deploy": "deploy"}
    assert parse_config(renamed_pipeline()).commands(REPO) == {"train": "fit", "test": "unit-tests", "deploy": "ship"}
    assert parse_config(renamed_pipeline(commands=False)).commands(REPO) == {}


def test_command_empty_frees_a_workflow_named_as_a_command():
    data = example()
    data["workflows"]["test"]["command"] = ""
    data["workflows"]["validate"]["command"] = "test"
    assert parse_config(data).commands(REPO) == {"train": "train", "test": "validate", "deploy": "deploy"}


@pytest.mark.parametrize(
    "edit, message",
    [
        (
            {"validate": "status"},
            "workflows.validate.command: 'status' is no command that runs a workflow (one of train, test, deploy)",
        ),
        ({"validate": "run"}, "'run' is no command that runs a workflow"),
        (
            {"validate": "train"},
            "repos[0] (acme/churn-model): /train is run by two workflows, workflows.train (by its name: write "
            'command = "" to free it) and workflows.validate (command = "train"); one workflow per command',
        ),
        (
            {"validate": "test", "deploy": "test"},
            "/test is run by two workflows, workflows.test (by its name",
        ),
    ],
)
def test_a_command_no_workflow_or_two_workflows_may_claim_is_refused_naming_both(edit, message):
    data = example()
    for workflow, command in edit.items():
        data["workflows"][workflow]["command"] = command
    with pytest.raises(ConfigError) as refused:
        parse_config(data, "config.toml")
    assert message in str(refused.value)


def test_two_repositories_may_each_have_their_own_workflow_for_a_command():
    data = example()
    data["workflows"]["fit"] = {**data["workflows"]["train"], "command": "train"}
    data["repos"].append({**data["repos"][0], "name": "acme/fraud", "workflows": ["fit", "test"]})
    settings = parse_config(data)
    assert settings.commands("acme/fraud") == {"train": "fit", "test": "test"}
    assert settings.commands(REPO)["train"] == "train"
    without_repos = {**data, "repos": []}
    with pytest.raises(ConfigError, match="/train is run by two workflows"):
        parse_config(without_repos)  # no repository to tell them apart: one workflow per command


def test_the_stages_defaults_follow_the_commands():
    settings = parse_config(renamed_pipeline())
    assert [(s.name, s.workflow, s.validate_workflow) for s in settings.stages("churn-model")] == [
        ("dev", "fit", ""),
        ("staging", "fit", "champion-check"),
        ("prod", "ship", ""),
    ]
    data = renamed_pipeline()
    data["models"]["churn-model"]["deploy_workflow"] = "unit-tests"  # named by the model: it wins
    assert parse_config(data).stages("churn-model")[-1].workflow == "unit-tests"


# --- the one look-up, in the worker ----------------------------------------------------------------------------
def test_train_and_test_run_the_workflow_their_command_names():
    settings = parse_config(renamed_pipeline())
    assert policy.train_options(settings, REPO, Command("train", dataset="toy"), "alice", "write") == ("fit", "toy", {})
    assert policy.test_suite(settings, REPO, Command("test")) == ("unit-tests", "")
    unnamed = parse_config(renamed_pipeline(commands=False))
    with pytest.raises(Refusal) as refused:
        policy.train_options(unnamed, REPO, Command("train"), "alice", "write")
    assert refused.value.reason == '`/train` runs nothing here: no workflow of this repository has `command = "train"`.'


def test_run_starts_a_command_workflow_and_refuses_others_listing_those_it_may_start():
    data = renamed_pipeline()
    data["workflows"]["lint"] = {**data["workflows"]["unit-tests"], "run_on": ["push"], "command": ""}
    data["repos"][0]["workflows"].append("lint")
    settings = parse_config(data)
    assert sorted(policy.runnable(settings, REPO)) == ["fit", "unit-tests"]  # champion-check, ship: release only
    assert policy.run_options(settings, REPO, Command("run", workflow="unit-tests"), "alice", "write") == {"params": {}}
    cases = {
        "lint": '`lint` does not run on a command (its `run_on` has no `"command"`); `/run` starts `fit`, `unit-tests`.',
        "ship": "`ship` runs only in the release train, from the default branch; `/run` starts `fit`, `unit-tests`.",
        "nope": "this repository has no workflow `nope`; `/run` starts `fit`, `unit-tests`.",
    }
    for workflow, reason in cases.items():
        with pytest.raises(Refusal) as refused:
            policy.run_options(settings, REPO, Command("run", workflow=workflow), "alice", "write")
        assert (refused.value.reason, refused.value.usage) == (reason, "/run <workflow> [--param key=value ...]")


def test_run_keeps_the_training_rules_parameters_and_full_data():
    data = renamed_pipeline()
    data["workflows"]["fit"]["default_dataset"] = "full"
    settings = parse_config(data)
    with pytest.raises(Refusal, match="parameter `lr` is not allowed for `fit`"):
        policy.run_options(settings, REPO, Command("run", workflow="fit", params={"lr": "1"}), "bob", "write")
    with pytest.raises(Refusal, match="costs money: only @bob may start it"):
        policy.run_options(settings, REPO, Command("run", workflow="fit"), "alice", "write")
    assert policy.run_options(settings, REPO, Command("run", workflow="fit"), "bob", "write") == {"params": {}}


# --- /help, per repository -----------------------------------------------------------------------------------
def test_help_lists_what_the_repository_has_with_the_workflow_each_runs():
    allowed = ["train", "test", "run", "status", "deploy"]
    rows, missing = policy.help_rows(parse_config(renamed_pipeline()), REPO, allowed)
    assert rows == [
        ("train", ["fit"]),
        ("test", ["unit-tests"]),
        ("run", ["fit", "unit-tests"]),
        ("status", []),
        ("deploy", ["ship"]),
    ]
    assert missing == []
    rows, missing = policy.help_rows(parse_config(renamed_pipeline(commands=False)), REPO, allowed)
    assert rows == [("run", ["fit", "ship", "unit-tests"]), ("status", [])]  # no model deploys with `ship` now
    assert missing == ["train", "test", "deploy"]


def test_help_says_which_commands_run_nothing_here():
    reply = texts.help_table("alice", [("train", ["fit"]), ("status", [])], ["test"])
    assert (
        "| train this branch on Databricks: each model of the repository, or the one named (dataset toy by default)"
        " — workflow `fit` |" in reply
    )
    assert "| show this PR's runs and their state |" in reply
    assert reply.endswith('`/test` runs nothing here: no workflow of this repository has `command = "test"`.')


# --- check-config ----------------------------------------------------------------------------------------------
def test_the_warnings_name_each_command_and_stage_without_a_workflow():
    assert pipeline_warnings(parse_config(renamed_pipeline())) == []
    assert pipeline_warnings(parse_config(example())) == []
    assert pipeline_warnings(parse_config(renamed_pipeline(commands=False))) == [
        'acme/churn-model: /train: no workflow has command = "train"; /train will answer so',
        'acme/churn-model: /test: no workflow has command = "test"; /test will answer so',
        "acme/churn-model: models.churn-model: its dev and staging stages run 'train', which is no workflow of its "
        'repository; the release train stops there (give the training workflow command = "train")',
        "acme/churn-model: models.churn-model: its prod stage runs 'deploy', which is no workflow of its "
        "repository; the release train stops there (write deploy_workflow in [models.churn-model], or give the "
        'workflow command = "deploy")',
    ]


def test_check_config_warns_of_a_command_with_no_workflow_and_passes(tmp_path, capsys):
    """The issue's case: `unit-tests` passed "ok" and `/test` answered it had no workflow. Now it says so first."""
    from bot.cli import main

    text = (ROOT / "config.toml").read_text().replace("[workflows.test", "[workflows.unit-tests")
    text = text.replace('["train", "test",', '["train", "unit-tests",')
    (tmp_path / "c.toml").write_text(text)
    assert main(["check-config", str(tmp_path / "c.toml")]) == 0  # a warning, not a failure
    out = capsys.readouterr().out.splitlines()
    assert out[0].endswith("ok — 1 repo(s), 4 workflow(s), 3 environment(s), 1 model(s)")
    assert out[1:] == ['  warning: acme/churn-model: /test: no workflow has command = "test"; /test will answer so']
    (tmp_path / "c.toml").write_text(text.replace("[workflows.unit-tests]", '[workflows.unit-tests]\ncommand = "test"'))
    assert main(["check-config", str(tmp_path / "c.toml")]) == 0
    assert "warning" not in capsys.readouterr().out
