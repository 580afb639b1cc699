"""What a task reported, as the bot reads it (workers/jobs/results.py, docs/task-contract.md): the last line that is a
JSON object, the keys the bot reads checked, and — on the shared fakes — the PR report, the release comment and
the validation saying which task printed nothing or what it printed wrong. An unreadable result never passes."""

from __future__ import annotations

import json

import pytest

from core.commands import Command
from tests.fakes import pull, run_result, world
from workers.core.state import State
from workers.jobs import results, texts
from workers.pr import chatops, runs
from workers.release import train as release

REPO, PR, COMMENT, MERGE = "acme/churn-model", 7, 555, "m" * 40
STAGING, PROD = "churn-model-staging", "churn-model"
DOC = "see mlops-bot's docs/task-contract.md"


@pytest.mark.parametrize(
    "said, values, problem",
    [
        ('training…\n{"mlflow_run_id": "r9"}\nWARNING mlflow: on stderr', {"mlflow_run_id": "r9"}, ""),
        ('{"passed": true}\n{"passed": false}', {"passed": False}, ""),  # the last one
        (
            '{"metrics": {"auc": 0.9}, "delta": NaN}',
            {"metrics": {"auc": 0.9}, "delta": pytest.approx(float("nan"), nan_ok=True)},
            "",
        ),  # fmt: skip
        ("", {}, "task `t` printed no result line: the last line of a task's output must be one JSON object"),
        ("Traceback …\nValueError: boom", {}, "task `t` printed no result line"),
        ('{"passed": true}\n{"passed": tru}', {}, "task `t` printed a result line that is not valid JSON (Expecting"),
        ("{'passed': True}", {}, "task `t` printed a result line that is not valid JSON"),  # a Python dict
        ('{"passed": "false"}', {}, "task `t` reported passed as a string; it must be true or false"),
        ('{"metrics": {"auc": NaN}}', {}, "task `t` reported metrics.auc as NaN; it must be a finite number"),
        ('{"mlflow_run_id": 12}', {}, "task `t` reported mlflow_run_id as a number; it must be a non-empty string"),
        ('{"champion_metrics": null, "champion_version": ""}', {"champion_metrics": None, "champion_version": ""}, ""),
    ],
)
def test_a_tasks_result_line_is_read_or_refused_with_the_reason(said, values, problem):
    found = results.read_report("t", said)
    assert found.values == values and found.problem.startswith(problem) and bool(found.problem) == bool(problem)
    assert not found.problem or found.problem.endswith(f"({DOC})")


def test_a_metric_name_from_the_task_is_echoed_inert():
    found = results.read_report("t", '{"metrics": {"<!channel> `@team`": "x"}}')
    assert "<!channel>" not in found.problem and "@team" not in found.problem
    assert "&lt;!channel&gt;" in found.problem


def tasks(*outputs: str) -> list[dict]:
    return [{"key": f"t{i}", "run_id": i, "result": "SUCCESS", "output": o} for i, o in enumerate(outputs)]


@pytest.mark.parametrize(
    "result, outputs, expects, notes",
    [
        ("SUCCESS", ["prepared", '{"mlflow_run_id": "r9"}'], "mlflow_run_id", []),
        ("SUCCESS", ["prepared", '{"rows": 400}'], "mlflow_run_id", ["no task reported `mlflow_run_id`: task `t0`"]),
        ("SUCCESS", ["a", "b"], "mlflow_run_id", ["no task reported `mlflow_run_id`: tasks `t0`, `t1` printed no"]),
        ("SUCCESS", ["a", "b"], "", []),  # a /test run owes no MLflow run
        ("FAILED", ["a", "Traceback"], "mlflow_run_id", []),  # the failure is the news: its output is shown
        ("FAILED", ['{"passed": "no"}', "b"], "", ["task `t0` reported passed as a string"]),
        (
            "SUCCESS",
            ['{"mlflow_run_id": 7}', "b"],
            "mlflow_run_id",
            ["task `t0` reported mlflow_run_id as a number", "no task reported `mlflow_run_id`: task `t1` printed no"],
        ),
    ],
)
def test_what_a_finished_run_says_about_its_result_lines(result, outputs, expects, notes):
    found = results.report_notes(run_result(result=result, tasks=tasks(*outputs)), expects)
    assert len(found) == len(notes) and all(f.startswith(n) for f, n in zip(found, notes))


def test_an_unreadable_line_is_left_out_of_what_the_run_said():
    said = run_result(tasks=tasks('{"metrics": [1]}', '{"mlflow_run_id": "r9"}'))
    assert results.task_outputs(said) == {"mlflow_run_id": "r9"}  # never a list where metrics go


# --- on the shared fakes: the PR's report, the validation, the release comment ------------------------------------
@pytest.fixture
def w(settings, redis_client):
    w = world(settings, State(redis_client))
    w.forge.pulls[PR] = pull(PR, author="alice")
    w.forge.roles.update(alice="write", bob="admin")
    w.registry.add_version(PROD, "1", "r1", {"accuracy": 0.85, "roc_auc": 0.7})
    w.registry.set_alias(PROD, "champion", "1")
    return w


def train_on_the_pr(w, output: str) -> str:
    chatops.run_command(
        chatops.command_context(w.deps, REPO, PR, COMMENT, "alice", "d-1", 1), Command("train", line="/train")
    )
    run_id = w.scheduler.follows[-1][1]
    w.workspace.finish(run_id, "SUCCESS", output)
    runs.follow(w.deps, "dev", run_id)
    return w.forge.comment("report", "train")


def test_a_training_that_reported_no_mlflow_run_says_which_task_was_silent(w):
    report = train_on_the_pr(w, "registered version 3\n")
    assert "> ⚠️ no task reported `mlflow_run_id`: task `register` printed no result line" in report
    assert DOC in report and "Metrics" not in report


def test_a_training_that_reported_a_bad_type_names_the_key(w):
    report = train_on_the_pr(w, json.dumps({"mlflow_run_id": "r9", "metrics": {"accuracy": "high"}}))
    assert "> ⚠️ task `register` reported metrics.accuracy as a string; it must be a finite number" in report


def test_a_readable_training_report_has_no_warning(w):
    w.registry.metrics["r9"] = {"accuracy": 0.9}
    assert "⚠️" not in train_on_the_pr(w, '{"mlflow_run_id": "r9"}')


def validate(w, output: str, result: str = "SUCCESS") -> str:
    """A staging version is validated and its notebook exits with `output`; the version's validation summary."""
    w.registry.add_version(STAGING, "2", "r2", {"accuracy": 0.9}, repo=REPO, commit=MERGE, triggered_by="bob")
    release.on_model_event(w.deps, release.ModelEvent("mlflow", "version_created", STAGING, "2"), "d-1")
    [(environment, run_id, _)] = w.scheduler.follows
    w.deps.workspaces(environment).finish(run_id, result, notebook_result=output)
    runs.follow(w.deps, environment, run_id)
    tags = w.registry.tags[(STAGING, "2")]
    return f"{tags['validation_status']}: {tags['validation_summary']}"


@pytest.mark.parametrize(
    "output, result, summary",
    [
        ("", "SUCCESS", "failed: failed: task `judge` printed no result line"),
        ('{"passed": "true", "metrics": {"accuracy": 0.9}}', "SUCCESS", "failed: failed: task `judge` reported passed"),
        ('{"passed": true, "metrics": {"accuracy": NaN}}', "SUCCESS", "failed: failed: task `judge` reported metrics."),
        ("", "FAILED", "failed: failed: task `judge` printed no result line"),
        ("", "CANCELED", "cancelled: failed: validation run CANCELED"),  # a cancelled run owes no verdict
    ],
)
def test_an_unreadable_verdict_fails_validation_with_the_reason(w, output, result, summary):
    found = validate(w, output, result)
    assert found.startswith(summary)
    assert result in ("SUCCESS", "CANCELED") or found.endswith(f"(validation run {result})")
    assert "passed" not in found.split(":")[0]


def test_the_release_comment_names_the_training_task_that_reported_no_mlflow_run(w):
    [train] = release.on_merged(w.deps, repo=REPO, pr=PR, sha=MERGE, author="alice", merged_by="bob", delivery_id="d")
    w.deps.workspaces("staging").finish(train, "SUCCESS", "registered\n")
    runs.follow(w.deps, "staging", train)
    comment = w.forge.comment("release", "churn-model")
    assert "no task reported `mlflow_run_id`: task `register` printed no result line" in comment


def test_the_wording_points_at_the_contract():
    assert texts.no_result_line("t").endswith(f"({DOC})")
    assert texts.unreadable_verdict("TIMEDOUT", "x") == "failed: x (validation run TIMEDOUT)"
