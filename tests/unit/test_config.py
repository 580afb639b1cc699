"""config.toml validation: errors name the key and say what is expected."""

from pathlib import Path

import pytest

from core.config import ConfigError, load_config, parse_config
from tests.support.configs import edited, example

ROOT = Path(__file__).resolve().parents[2]


def test_the_example_config_is_valid():
    settings = load_config(ROOT / "config.toml")
    assert settings.repo("ACME/churn-model").name == "acme/churn-model"
    assert [t.key for t in settings.workflows["train"].tasks] == ["prepare", "train", "evaluate", "register"]
    assert settings.workflows["train"].dataset == "toy"


@pytest.mark.parametrize(
    "path, value, message",
    [
        (["bot", "max_body_bytes"], 0, "bot.max_body_bytes: Input should be greater than 0"),
        (["bot", "job_prefx"], "x", "bot.job_prefx: unknown key"),
        (["environments", "dev", "host"], KeyError, "environments.dev.host: Field required"),
        (["workflows", "train", "environment"], "qa", "workflows.train.environment: 'qa' is not in [environments]"),
        (
            ["workflows", "train", "on_conflict"],
            "wait",
            "workflows.train.on_conflict: Input should be 'supersede' or 'refuse'",
        ),
        (
            ["workflows", "train", "tasks", 1, "depends_on"],
            ["prepar"],
            "workflows.train: task 'train' depends on unknown task 'prepar'",
        ),
        (
            ["workflows", "train", "tasks", 0, "parameters"],
            ["{datset}"],
            "workflows.train.tasks[0].parameters: unknown placeholder {datset}",
        ),
        (["workflows", "train", "tasks", 0, "type"], "jar_task", "workflows.train.tasks[0].type"),
        (["workflows", "train", "tasks", 0, "cluster"], "huge", "uses cluster 'huge', not in job_clusters"),
        (["workflows", "train", "default_dataset"], "medium", "default_dataset 'medium' is not in datasets"),
        (["repos", 0, "name"], "churn-model", "repos[0].name: write it as owner/repo"),
        (["repos", 0, "workflows"], ["train", "lint"], "repos[0].workflows: 'lint' is not in [workflows]"),
        (["permissions", "train"], "owner", "permissions.train: Input should be"),
        (["permissions", "deploi"], "maintain", "permissions.deploi: unknown key: no command is named so"),
        (["permissions", "ok-to-test"], "write", "permissions.ok-to-test: unknown key"),  # always spelt ok_to_test
        (["models", "churn-model", "gates"], ["accuracy is high"], "models.churn-model.gates: gate 'accuracy is high'"),
    ],
)
def test_errors_name_the_key(path, value, message):
    with pytest.raises(ConfigError) as exc:
        parse_config(edited(path, value), "config.toml")
    assert message in str(exc.value)


def test_a_dependency_cycle_is_named():
    data = example()
    data["workflows"]["train"]["tasks"][0]["depends_on"] = ["register"]
    with pytest.raises(ConfigError, match="cycle: prepare -> register -> evaluate -> train -> prepare"):
        parse_config(data)


def test_missing_file_and_bad_toml(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        load_config(tmp_path / "nope.toml")
    (tmp_path / "bad.toml").write_text("[bot\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(tmp_path / "bad.toml")


def test_config_path_comes_from_the_environment(tmp_path, monkeypatch):
    (tmp_path / "c.toml").write_text('[bot]\njob_prefix = "team-a"\n')
    monkeypatch.setenv("MLOPS_BOT_CONFIG", str(tmp_path / "c.toml"))
    assert load_config().bot.job_prefix == "team-a"


def test_check_config_cli(tmp_path, capsys):
    from bot.cli import main

    assert main(["check-config", str(ROOT / "config.toml")]) == 0
    assert "ok" in capsys.readouterr().out
    (tmp_path / "c.toml").write_text('[bot]\nmax_body_bytes = "big"\n')
    assert main(["check-config", str(tmp_path / "c.toml")]) == 1
    assert "bot.max_body_bytes" in capsys.readouterr().err


# [permissions] as config.toml has always accepted it: a key per command ('_' for '-'), `train_full`, the users
PERMISSION_KEYS = [
    *("train", "test", "retest", "cancel", "status", "help", "approve", "reject", "deploy", "rollback"),
    *("ok_to_test", "train_full"),
]


@pytest.mark.parametrize("key", PERMISSION_KEYS)
def test_each_permission_key_is_accepted_and_applied(key):
    permissions = parse_config({"permissions": {key: "admin", "train_full_users": ["bob"]}}).permissions
    assert permissions.needed(key.replace("_", "-")) == "admin"
    assert permissions.train_full_users == ["bob"]


def test_unset_permissions_default_to_each_commands_spec():
    permissions = parse_config({}).permissions
    assert [permissions.needed(k.replace("_", "-")) for k in PERMISSION_KEYS] == [
        *("write", "write", "write", "write", "read", "read", "write", "write", "maintain", "maintain"),
        *("write", "write"),
    ]
    assert permissions.train_full_users == []


# --- one principal per stage: what a pull request's code runs as ---------------------------------------------
DEV_SP = "0b9e6a7c-0000-4000-8000-0000000000de"


def identity_problems(edit) -> list[str]:
    from core.stages import principal_problems

    data = example()
    edit(data)
    return principal_problems(parse_config(data))


def test_the_shipped_config_gives_each_stage_a_principal_of_its_own():
    assert identity_problems(lambda data: None) == []
    envs = load_config(ROOT / "config.toml").environments
    assert len({envs[e].run_as_service_principal for e in ("dev", "staging", "prod")}) == 3


@pytest.mark.parametrize(
    "edit, message",
    [
        (
            lambda d: d["environments"]["staging"].update(run_as_service_principal=DEV_SP),
            "environments.dev.run_as_service_principal: '0b9e6a7c-0000-4000-8000-0000000000de' is also "
            "environments.staging.run_as_service_principal, which models.churn-model.stages[1] (staging) runs as, "
            "so a pull request's code could write its registry",
        ),
        (
            lambda d: d["environments"]["prod"].update(run_as_service_principal=DEV_SP),
            "is also environments.prod.run_as_service_principal, which models.churn-model.stages[2] (prod) runs as",
        ),
        (
            lambda d: d["environments"]["dev"].pop("run_as_service_principal"),
            "environments.dev.run_as_service_principal: models.churn-model.stages[0] (dev) runs pull requests' code "
            "in 'dev', which names no service principal to run it as, so it would run as the bot",
        ),
        (
            lambda d: d["repos"][0].update(run_as_service_principal="repo-sp"),
            "repos[0].run_as_service_principal: every job of acme/churn-model would run as 'repo-sp'",
        ),
        (
            lambda d: d["models"]["churn-model"]["stages"][1].update(environment="dev"),
            "models.churn-model.stages[1].environment: models.churn-model.stages[1] (staging) runs in 'dev'",
        ),
    ],
)
def test_a_pull_request_stage_sharing_or_lacking_a_principal_is_refused(edit, message):
    problems = identity_problems(edit)
    assert any(message in p for p in problems), problems


def test_check_config_refuses_a_shared_principal_and_says_why(tmp_path, capsys):
    from bot.cli import main

    shared = (ROOT / "config.toml").read_text().replace("5e7a9d21-0000-4000-8000-0000000005a9", DEV_SP)
    (tmp_path / "c.toml").write_text(shared)
    assert main(["check-config", str(tmp_path / "c.toml")]) == 1
    err = capsys.readouterr().err
    assert "1 problem(s)" in err and "environments.dev.run_as_service_principal" in err
    assert "environments.staging.run_as_service_principal" in err


def test_without_models_there_is_no_stage_to_check():
    from core.stages import principal_problems

    data = example()
    del data["models"]
    for env in data["environments"].values():
        env.pop("run_as_service_principal", None)
    assert principal_problems(parse_config(data)) == []
