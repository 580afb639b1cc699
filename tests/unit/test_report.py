"""The PR report, rendered from a run record and its result: what a reader of the PR sees."""

from dataclasses import replace

from tests.fakes import run_record, run_result
from workers.core.gates import evaluate_all
from workers.core.records import Champion
from workers.jobs.reports import render_result, render_status

RECORD = run_record(
    workflow="train",
    sha="f8d8bbc" + "0" * 33,
    parameters={"dataset": "toy", "params": "max_depth=4"},
    started_at=1795660000,
    requested_by="alice",
    command="/train toy",
)
RESULT = run_result(
    run_id=7,
    result="FAILED",
    duration_s=41.0,
    run_page_url="http://ws/jobs/1/runs/7",
    message="Task train failed",
    tasks=[
        {"key": "prepare", "run_id": 71, "result": "SUCCESS", "duration_s": 3.1, "output": "ok"},
        {
            "key": "train",
            "run_id": 72,
            "result": "FAILED",
            "duration_s": 5.0,
            "output": "Traceback...\nValueError: boom",
        },
        {"key": "register", "run_id": 73, "result": "UPSTREAM_FAILED", "duration_s": 0, "output": ""},
    ],
)


def test_failed_run_report_has_tasks_links_and_the_failing_output():
    text = render_result(RECORD, RESULT, mlflow_run_url="http://mlflow/#/runs/1")
    assert text.startswith("### ❌ `train` — FAILED")
    assert "**Commit** `f8d8bbc` · **Dataset** toy · **Params** `max_depth=4`" in text
    assert "requested by @alice with `/train toy`" in text
    assert "[Databricks run](http://ws/jobs/1/runs/7) · [MLflow run](http://mlflow/#/runs/1)" in text
    assert "| `train` | ❌ FAILED | 5.0 s |" in text and "| `register` | ⏭️ UPSTREAM_FAILED | — |" in text
    assert "<details><summary>Output of <code>train</code> (FAILED)</summary>" in text and "ValueError: boom" in text
    assert "Output of <code>register</code>" not in text


def test_metrics_against_the_champion_and_gates():
    metrics, champion = (
        {"accuracy": 0.80, "roc_auc": 0.7},
        Champion("churn-model", "3", {"accuracy": 0.78}),
    )
    gates = evaluate_all(["accuracy >= champion - 0.01"], metrics, champion.metrics)
    text = render_result(
        RECORD, replace(RESULT, result="SUCCESS", tasks=()), metrics=metrics, champion=champion, gates=gates
    )
    assert "#### Metrics vs champion (churn-model v3)" in text
    assert "| accuracy | 0.8000 | 0.7800 | +0.0200 |" in text and "| roc_auc | 0.7000 | — | — |" in text
    assert "| `accuracy >= champion - 0.01` | ✅ pass — 0.8000 >= 0.7700 |" in text


def test_a_gate_against_a_champion_there_is_not_is_shown_not_applicable():
    metrics = {"accuracy": 0.61, "roc_auc": 0.63}
    gates = evaluate_all(["accuracy >= champion - 0.01", "roc_auc >= 0.7"], metrics, None)
    text = render_result(RECORD, replace(RESULT, result="SUCCESS", tasks=()), metrics=metrics, gates=gates)
    assert "#### Metrics (no champion yet)" in text
    assert "| `accuracy >= champion - 0.01` | ➖ n/a — no champion yet |" in text
    assert "| `roc_auc >= 0.7` | ❌ fail — 0.6300 >= 0.7000 |" in text


def test_status_lists_runs_newest_first():
    runs = [
        {"run_id": 1, "workflow": "test", "state": "SUCCESS", "started_at": 1, "sha": "a" * 40, "requested_by": "bob"},
        {
            "run_id": 2,
            "workflow": "train",
            "state": "RUNNING",
            "started_at": 2,
            "sha": "b" * 40,
            "requested_by": "alice",
        },
    ]
    lines = render_status([run_record(**run) for run in runs]).splitlines()
    assert lines[4].startswith("| `train` | 2 | ⏳ RUNNING") and lines[5].startswith("| `test` | 1 | ✅ SUCCESS")
    assert render_status([]).startswith("No runs for this pull request yet")
