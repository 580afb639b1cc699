"""A validate workflow's verdict: one named task (`verdict_task`, checked at load; default the last task), read
through the Jobs API for that task alone — on the shared fakes."""

from __future__ import annotations

import pytest

from core.compute import verdict_task
from core.config import ConfigError, parse_config
from tests.fakes import FakeWorkspace
from tests.support.configs import example
from workers.gateways import RunInfo, TaskOutput, TaskRun
from workers.jobs import results


def test_the_shipped_validate_workflow_names_its_judge():
    assert verdict_task(parse_config(example()).workflows["validate"]) == "judge"


def test_without_verdict_task_the_last_task_listed_gives_the_verdict():
    data = example()
    del data["workflows"]["validate"]["verdict_task"]
    assert verdict_task(parse_config(data).workflows["validate"]) == "judge"
    assert verdict_task(parse_config(data).workflows["train"]) == "register"


def test_a_verdict_task_that_is_not_one_of_the_workflows_tasks_is_refused_by_name():
    data = example()
    data["workflows"]["validate"]["verdict_task"] = "validate"
    with pytest.raises(ConfigError) as exc:
        parse_config(data)
    assert "workflows.validate" in str(exc.value) and "verdict_task 'validate'" in str(exc.value)
    assert "['score', 'judge']" in str(exc.value)


class CountingWorkspace(FakeWorkspace):
    read: list[int]

    def task_output(self, task_run_id: int) -> TaskOutput:
        self.read.append(task_run_id)
        return super().task_output(task_run_id)


def workspace(score: str, judge: str, kind: str = "spark_python_task") -> CountingWorkspace:
    ws = CountingWorkspace("staging")
    ws.read = []
    tasks = (TaskRun("score", 11, "SUCCESS", kind=kind), TaskRun("judge", 12, "FAILED", kind=kind))
    ws.runs[10] = RunInfo(10, 1, "TERMINATED", "FAILED", tasks=tasks)
    said = (lambda text: TaskOutput(result=text)) if kind == "notebook_task" else (lambda text: TaskOutput(logs=text))
    ws.outputs.update({11: said(score), 12: said(judge)})
    return ws


PASSING = '{"passed": true, "metrics": {"roc_auc": 0.999}}'
FAILING = '{"passed": false, "metrics": {"roc_auc": 0.5}}'


@pytest.mark.parametrize(
    "score, judge, passed, problem",
    [
        (f"scored\n{PASSING}", f"FAILED\n{FAILING}\nINFO mlflow: a log line on stderr", False, ""),
        (PASSING, "judge.py: error: no predictions", None, "task `judge` printed no result line"),  # nothing passes
        (PASSING, "", None, "task `judge` printed no result line"),
        (PASSING, "[1, 2]", None, "task `judge` printed no result line"),  # JSON, not an object
        (PASSING, '{"passed": "yes"}', None, "task `judge` reported passed as a string; it must be true or false"),
        (PASSING, f"{PASSING}\n{{'passed': True}}", None, "task `judge` printed a result line that is not valid JSON"),
    ],
)
def test_only_the_verdict_tasks_output_is_read(score, judge, passed, problem):
    ws = workspace(score, judge)
    found = results.verdict(ws, 10, "judge")
    assert found.values.get("passed") is passed and found.problem.startswith(problem)
    assert bool(found.values) != bool(problem)  # an unreadable line gives no values at all
    assert ws.read == [12]  # runs/get-output of the judge's task run alone


def test_a_notebooks_verdict_is_its_exit_value():
    ws = workspace(PASSING, FAILING, kind="notebook_task")
    assert results.verdict(ws, 10, "judge").values["passed"] is False


def test_a_run_without_the_verdict_task_has_no_verdict_and_says_so():
    ws = workspace(PASSING, FAILING)
    found = results.verdict(ws, 10, "validate")
    assert found.values == {} and ws.read == []
    assert found.problem.startswith("the run has no task `validate`")
