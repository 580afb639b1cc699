"""Two models in one repository through the real stack (issue #19): the sandbox forge, the sandbox workspace
(really runs the tasks), the receiver and a Celery worker on a private Redis. People comment through the forge's
API; what they see is read back there, and what ran is read from the workspace through databricks-sdk.

`acme/tiny-ml` holds `card_fraud` and `ato_risk` (tests/support/configs.py); its `train` workflow takes `{model}`,
which a PR's run fills with the model's dev registry (`<model>-dev`).
"""

from __future__ import annotations

import pytest

from tests.integration.test_chatops import REPO, as_user, bot_comments, comment, push_branch, report, status_of
from tests.integration.test_chatops import wait_until as waited
from tests.support.configs import SEVERAL_MODELS, several_models_toml
from tests.support.stacks import bot_stack, workspace_client

PREPARE = 'parameters = ["--dataset", "{dataset}", "--branch", "{branch}"]'


def two_models(text: str) -> str:
    """The stack's config with the two models, and `{model}` among the train workflow's parameters."""
    assert PREPARE in text
    return text.replace(PREPARE, PREPARE[:-1] + ', "--model", "{model}"]') + several_models_toml(REPO)


@pytest.fixture(scope="module")
def ops(redis_server, empty_redis, tmp_path_factory):
    with bot_stack(tmp_path_factory.mktemp("models"), redis_server.url, config=two_models) as stack:
        yield stack.forge, stack.workspace


@pytest.fixture
def pr(ops, tmp_path, request):
    forge, _ = ops
    name = f"feature/models-{request.node.name[-12:]}"
    push_branch(forge, "alice", REPO, name, tmp_path)
    return as_user(forge, "alice").get_repo(REPO).create_pull(title=name, body="", head=name, base="main")


def trained(ws_url: str, branch: str) -> list[str]:
    """The `model` parameter of every run of the branch's train job, as Databricks ran them."""
    client = workspace_client(ws_url)
    [job] = [j for j in client.jobs.list() if j.settings and j.settings.name.endswith(f"/{branch}/train")]
    runs = [client.jobs.get_run(r.run_id) for r in client.jobs.list_runs(job_id=job.job_id)]
    return sorted(p.value or "" for r in runs for p in r.job_parameters or [] if p.name == "model")


def test_a_bare_train_trains_each_model_with_a_report_and_a_status_of_its_own(ops, pr):
    forge, ws = ops
    comment(forge, "alice", pr.number, "/train")
    for model in SEVERAL_MODELS:
        [rep] = report(forge, pr.number, f"train/{model}", "SUCCESS")
        assert f"`train` of `{model}` — SUCCESS" in rep.body and "**Dataset** toy" in rep.body
        waited(lambda model=model: status_of(forge, pr.head.sha, f"mlops-bot/train/{model}") == "success")
    assert trained(ws.url, pr.head.ref) == ["ato_risk-dev", "card_fraud-dev"]  # one run per model, neither cancelled
    assert [c for c in bot_comments(forge, pr.number, "report") if "key=train -->" in c.body] == []  # no shared one


def test_train_names_one_model_and_an_unknown_word_is_answered_with_the_choices(ops, pr):
    forge, ws = ops
    c = comment(forge, "alice", pr.number, "/train ato_risk\n/train fraud")
    [rep] = report(forge, pr.number, "train/ato_risk", "SUCCESS")
    [reply] = waited(lambda: bot_comments(forge, pr.number, "reply", f"{c.id}-1"))
    assert "`fraud` is neither a model nor a dataset of this repository" in reply.body
    assert "models: `card_fraud`, `ato_risk`; datasets: toy, full." in reply.body
    assert trained(ws.url, pr.head.ref) == ["ato_risk-dev"]
    assert bot_comments(forge, pr.number, "report", "train/card_fraud") == []
