"""Two models in one repository, first-class (issue #19), on the shared fakes: `/train` trains each (one run,
report and status per model, each against its own champion), `/train <model>` one; a bare `/approve`, `/reject`,
`/deploy` or `/rollback` that could mean either model is refused with the commands to paste; each model deploys to
a GitHub environment of its own; the release comment tells each model's own truth; the audit trail answers to the
model's name.

The repository `acme/churn-model` holds `card_fraud` and `ato_risk` (tests/support/configs.py), default stages:
dev `<model>-dev`, staging `<model>-staging`, prod `<model>`.
"""

import pytest

from core import audit
from core.commands import Command, parse_command
from core.config import parse_config
from tests.fakes import pull, run_record, world
from tests.support.configs import several_models, several_models_config
from tests.unit.test_release import SCORED, finish, register, ws
from workers.core.state import State
from workers.pr import chatops, runs
from workers.release import policy as release_policy
from workers.release import train as release

REPO, PR, COMMENT, MERGE = "acme/churn-model", 7, 555, "m" * 40
MODELS = ("card_fraud", "ato_risk")


@pytest.fixture
def w(redis_client):
    w = world(parse_config(several_models(REPO)), State(redis_client))
    w.forge.pulls[PR] = pull(PR, author="alice")
    w.forge.roles.update(alice="write", bob="write", mo="maintain")
    for model, accuracy in (("card_fraud", 0.8), ("ato_risk", 0.6)):  # each model's own prod champion
        w.registry.add_version(model, "1", f"r-{model}-1", {"accuracy": accuracy})
        w.registry.set_alias(model, "champion", "1")
    return w


def say(w, user: str, text: str, index: int = 0) -> str | None:
    """`text` as a PR comment's command by `user`: the bot's reply, if it made one."""
    command = parse_command(*text[1:].partition(" ")[::2])
    assert isinstance(command, Command), command
    chatops.run_command(chatops.command_context(w.deps, REPO, PR, COMMENT, user, f"d-{index}", index), command)
    return w.forge.comment("reply", f"{COMMENT}-{index}")


def dev_runs(w) -> dict[str, int]:
    """The dev registry each run of the PR writes → its run id."""
    return {params["model"]: run_id for run_id, params in w.workspace.parameters.items()}


# --- /train -------------------------------------------------------------------------------------------------------
def test_a_bare_train_trains_each_model_with_a_report_and_a_status_of_its_own(w):
    assert say(w, "alice", "/train") is None
    started = dev_runs(w)
    assert sorted(started) == ["ato_risk-dev", "card_fraud-dev"]  # `{model}`: each model's dev registry
    assert w.workspace.cancelled == []  # the second model's run does not supersede the first's
    for model in MODELS:
        assert f"`train` of `{model}` — PENDING" in w.forge.comment("report", f"train/{model}")
    assert w.forge.comment("report", "train") is None
    assert [s["context"] for s in w.forge.statuses] == ["mlops-bot/train/card_fraud", "mlops-bot/train/ato_risk"]


def test_each_report_measures_its_model_against_its_own_champion(w):
    say(w, "alice", "/train")
    for run_id in dev_runs(w).values():
        w.registry.metrics[f"r-{run_id}"] = {"accuracy": 0.7}
        w.workspace.finish(run_id, "SUCCESS", f'{{"mlflow_run_id": "r-{run_id}"}}')
        assert runs.follow(w.deps, "dev", run_id) == "pr"  # neither run is "superseded" by the other
    card, ato = (w.forge.comment("report", f"train/{m}") for m in MODELS)
    assert "#### Metrics vs champion (card_fraud v1)" in card and "| accuracy | 0.7000 | 0.8000 | -0.1000 |" in card
    assert "#### Metrics vs champion (ato_risk v1)" in ato and "| accuracy | 0.7000 | 0.6000 | +0.1000 |" in ato


@pytest.mark.parametrize("text", ["/train ato_risk", "/train ato_risk toy"])
def test_train_with_a_models_name_trains_that_model_alone(w, text):
    say(w, "alice", text)
    [(registry, run_id)] = dev_runs(w).items()
    assert (registry, w.workspace.parameters[run_id]["dataset"]) == ("ato_risk-dev", "toy")
    assert w.forge.comment("report", "train/ato_risk") is not None


def test_an_unknown_word_is_answered_with_the_models_and_datasets(w):
    reply = say(w, "alice", "/train fraud")
    assert reply.startswith(
        "@alice `fraud` is neither a model nor a dataset of this repository; "
        "models: `card_fraud`, `ato_risk`; datasets: toy, full."
    )
    assert "Usage: `/train [model] [toy|full] [--param key=value ...]`" in reply
    assert w.workspace.runs == {} and not w.forge.statuses


def test_a_new_train_supersedes_only_the_same_models_run(w):
    say(w, "alice", "/train")
    first = dev_runs(w)
    say(w, "alice", "/train card_fraud", index=1)
    assert w.workspace.cancelled == [first["card_fraud-dev"]]
    assert not w.workspace.get_run(first["ato_risk-dev"]).terminal


def test_retest_runs_again_each_models_failed_training(w):
    say(w, "alice", "/train")
    for run_id in dev_runs(w).values():
        w.workspace.finish(run_id, "FAILED", "boom")
        runs.follow(w.deps, "dev", run_id)
    say(w, "alice", "/retest", index=1)
    again = [w.workspace.parameters[r]["model"] for r, run in w.workspace.runs.items() if not run.terminal]
    assert sorted(again) == ["ato_risk-dev", "card_fraud-dev"]


# --- the release train --------------------------------------------------------------------------------------------
def merged(w) -> dict[str, int]:
    """The PR merged: each model's staging training run."""
    started = release.on_merged(
        w.deps, repo=REPO, pr=PR, sha=MERGE, author="alice", merged_by="alice", delivery_id="d-merge"
    )
    return dict(zip(MODELS, started, strict=True))


def validated(w, model: str, version: str = "2") -> None:
    """`model`'s staging training registers `version`, and validation passes."""
    staging = ws(w, "staging")
    train = merged(w)[model]
    register(w, f"{model}-staging", version, train)
    finish(w, "staging", train)
    [validation] = [r for r, p in staging.parameters.items() if p.get("model") == f"{model}-staging" and r != train]
    finish(w, "staging", validation, output=SCORED)


def test_the_release_comment_says_which_model_was_trained_on_the_pull_request(w):
    say(w, "alice", "/train ato_risk")
    [run_id] = dev_runs(w).values()
    w.workspace.finish(run_id, "SUCCESS")
    runs.follow(w.deps, "dev", run_id)
    merged(w)
    card, ato = (w.forge.comment("release", m) for m in MODELS)
    assert "| dev | `ato_risk-dev` | trained on this pull request (reports above); never promoted" in ato
    assert "| dev | `card_fraud-dev` | not trained on this pull request; never promoted" in card


def test_each_model_has_github_environments_of_its_own(w):
    merged(w)
    assert sorted(d["environment"] for d in w.forge.deployments.values()) == ["staging/ato_risk", "staging/card_fraud"]


def test_a_bare_approve_is_refused_when_several_models_wait_and_each_is_listed_to_paste(w):
    for model in MODELS:
        validated(w, model)
    reply = say(w, "bob", "/approve")
    assert "several models of this repository have a version this `/approve` could mean" in reply
    assert "- `/approve card_fraud@2`" in reply and "- `/approve ato_risk@2`" in reply
    reply = say(w, "bob", "/reject too slow", index=1)
    assert "- `/reject card_fraud@2 too slow`" in reply
    assert w.deps.state.approval("card_fraud-staging", "2").status == "pending"  # nothing was decided


def test_approving_one_model_deploys_it_to_its_own_prod_and_leaves_the_others_alone(w):
    for model in MODELS:
        validated(w, model)
    assert "is now `ato_risk@champion`" in say(w, "bob", "/approve ato_risk@2")
    assert "is now `card_fraud@champion`" in say(w, "bob", "/approve card_fraud@2", index=1)
    prod = ws(w, "prod")
    for run_id in list(prod.runs):
        finish(w, "prod", run_id)
    for model in MODELS:  # two models, two prod environments: neither deploy marks the other's inactive
        assert w.forge.deployment_states(f"prod/{model}") == [["in_progress", "success"]]
    reply = say(w, "mo", "/rollback prod", index=2)
    assert "- `/rollback prod card_fraud@1`" in reply and "- `/rollback prod ato_risk@1`" in reply
    assert w.registry.aliases[("ato_risk", "champion")] != "1"  # refused: nothing moved


def test_a_bare_approve_with_one_model_waiting_approves_it(w):
    validated(w, "ato_risk")
    assert "is now `ato_risk@champion`" in say(w, "bob", "/approve")


def test_the_audit_trail_answers_to_the_models_name(w):
    validated(w, "ato_risk")
    say(w, "bob", "/approve ato_risk@2")
    trail = audit.entries(w.deps.state.r, "ato_risk")
    names = {e["model"] for e in trail}
    assert names == {"ato_risk-staging", "ato_risk"}  # its staging version's decisions and its prod version's
    assert {"validated", "approved", "promoted"} <= {e["decision"] for e in trail}
    assert audit.entries(w.deps.state.r, "card_fraud") == []


OK, FAILED = {"run_id": 1, "job_id": 1, "life_cycle": "TERMINATED", "result": "SUCCESS"}, {"result": "FAILED"}


@pytest.mark.parametrize(
    "model, saved, said",
    [
        ("ato_risk", {"model": "ato_risk", "result": OK}, "trained"),
        ("ato_risk", {"model": "card_fraud", "result": OK}, "no"),  # the other model's run
        ("ato_risk", {"model": "ato_risk", "state": "RUNNING"}, "running"),
        ("ato_risk", {"model": "ato_risk", "result": {**OK, **FAILED}}, "failed"),
        # a run from before runs named their model: the dev registry it wrote, else the first model's
        ("ato_risk", {"parameters": {"model": "ato_risk-dev"}, "result": OK}, "trained"),
        ("ato_risk", {"parameters": {"model": "card_fraud-dev"}, "result": OK}, "no"),
        ("ato_risk", {"result": OK}, "no"),
        ("card_fraud", {"result": OK}, "trained"),
        ("ato_risk", {"model": "ato_risk", "purpose": "train", "result": OK}, "no"),  # a release's run
        ("ato_risk", {"model": "ato_risk", "workflow": "test", "result": OK}, "no"),
    ],
)
def test_what_a_prs_runs_say_of_a_models_dev_training(w, model, saved, said):
    dev = w.deps.settings.stages(model)[0]
    assert release_policy.dev_training([run_record(pr=PR, **saved)], model, dev, "card_fraud") == said


def test_audit_on_the_command_line_takes_the_models_name(w, redis_server, tmp_path, monkeypatch, capsys):
    from bot.cli import main

    r = w.deps.state.r
    audit.record(r, "validated", model="ato_risk-staging", version="2", actor="mlops-bot", source="validation")
    audit.record(
        r, "approved", model="ato_risk-staging", version="2", actor="bob", source="github", release_model="ato_risk"
    )
    audit.record(r, "approved", model="card_fraud-staging", version="2", actor="bob", source="github")
    monkeypatch.setenv("REDIS_URL", redis_server.url)
    monkeypatch.setenv("MLOPS_BOT_CONFIG", str(tmp_path / "nowhere.toml"))
    assert main(["audit", "--model", "ato_risk"]) == 0
    [line] = capsys.readouterr().out.splitlines()  # without config: the entries that name their model
    assert "approved" in line and "ato_risk-staging@2" in line
    (tmp_path / "config.toml").write_text(several_models_config(REPO))
    monkeypatch.setenv("MLOPS_BOT_CONFIG", str(tmp_path / "config.toml"))
    main(["audit", "--model", "ato_risk"])
    assert [line.split()[2] for line in capsys.readouterr().out.splitlines()] == ["validated", "approved"]
