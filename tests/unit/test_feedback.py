"""What a PR sees of its runs, on the shared fakes: the report, the status, superseding."""

import pytest

from core.commands import Command
from tests.fakes import pull, world
from workers.core.state import State
from workers.errors import Permanent
from workers.pr import chatops, runs

REPO, PR, COMMENT = "acme/churn-model", 7, 555


@pytest.fixture
def w(settings, redis_client):
    w = world(settings, State(redis_client))
    w.forge.pulls[PR] = pull(PR)
    w.forge.roles["alice"] = "write"
    w.registry.add_version("churn-model", "1", "r1", {"accuracy": 0.85})
    w.registry.set_alias("churn-model", "champion", "1")
    return w


def train(w, index=0):
    chatops.run_command(
        chatops.command_context(w.deps, REPO, PR, COMMENT, "alice", f"d-{index}", index),
        Command("train", line="/train"),
    )
    return w.scheduler.follows[-1][1]


def test_a_finished_run_is_reported_with_metrics_against_the_champion(w):
    run_id = train(w)
    w.registry.metrics["r9"] = {"accuracy": 0.9}
    w.workspace.finish(run_id, "SUCCESS", '{"mlflow_run_id": "r9"}')
    assert runs.follow(w.deps, "dev", run_id) == "pr"
    report = w.forge.comment("report", "train")
    assert "`train` — SUCCESS" in report and "#### Metrics vs champion (churn-model v1)" in report
    assert "| accuracy | 0.9000 | 0.8500 | +0.0500 |" in report
    assert w.forge.statuses[-1]["state"] == "success"


def test_a_failed_run_shows_its_output_and_a_failure_status(w):
    run_id = train(w)
    w.workspace.finish(run_id, "FAILED", "Traceback: boom")
    runs.follow(w.deps, "dev", run_id)
    assert "Traceback: boom" in w.forge.comment("report", "train")
    assert w.forge.statuses[-1]["state"] == "failure"


def test_an_unfinished_run_is_polled_again_later(w):
    run_id = train(w)
    assert runs.follow(w.deps, "dev", run_id) == "following"
    assert w.scheduler.follows[-1] == ("dev", run_id, 1)


def test_a_superseded_run_leaves_the_report_to_the_newer_one(w):
    old = train(w, 0)
    new = train(w, 1)
    w.workspace.finish(old, "CANCELED")
    assert runs.follow(w.deps, "dev", old) == "superseded"
    assert f"[Databricks run](https://dbc/run/{new})" in w.forge.comment("report", "train")


def test_a_run_that_cannot_start_is_told_on_the_pr(w):
    w.workspace.refuse_run_now = "bad settings"
    with pytest.raises(Permanent):
        runs.start_and_follow(
            w.deps, repo=REPO, branch="feature/x", sha="a" * 40, workflow="test", trigger="d:0", pr=PR
        )
    assert w.forge.statuses[-1]["state"] == "error"
    assert w.forge.comment("report", "test").startswith("### 💥 `test` could not start")
