"""A run as people read it: the one poll that notices it finished, and its result as plain values —
the result, each task's state and duration, and what each task said (read by task type: Databricks
returns `logs` for script and wheel tasks, and for a notebook only its `dbutils.notebook.exit` value).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from core.logs import get_logger
from core.vocabulary import GOOD
from mlops_bot_task import check
from workers.core.base import poll_delay
from workers.core.run_records import RunResult, TaskResult
from workers.core.state import State
from workers.errors import NotFound
from workers.gateways import RunInfo, TaskOutput, TaskRun, WorkspaceGateway
from workers.jobs import texts

log = get_logger("workers.jobs.results")
OUTPUT_TAIL = 3000  # characters of a task's output kept for people (the end, where the errors are)


def run_result(ws: WorkspaceGateway, run: RunInfo) -> RunResult:
    """The final state of a run: its result, per-task states and durations, what each task said."""
    return RunResult(
        run_id=run.run_id,
        job_id=run.job_id,
        life_cycle=run.life_cycle,
        result=run.result_state or run.life_cycle or "UNKNOWN",
        message=run.message,
        run_page_url=run.run_page_url,
        duration_s=_duration(run.start_time, run.end_time),
        used_commit=run.used_commit,
        tasks=tuple(
            TaskResult(t.key, t.run_id, t.state, _duration(t.start_time, t.end_time), _output(ws, t)) for t in run.tasks
        ),
    )


def _output(ws: WorkspaceGateway, task: TaskRun) -> str:
    try:
        return _task_said(ws.task_output(task.run_id), task.kind)
    except NotFound:
        return ""


def _task_said(out: TaskOutput, kind: str) -> str:
    """What a task said, by its type: Databricks returns no `logs` for notebooks; a notebook's value is
    `notebook_output.result` (its `dbutils.notebook.exit`). Then the error, if it failed."""
    if kind == "notebook_task":
        said = out.result
    elif kind:
        said = out.logs
    else:  # type unknown: whichever was returned
        said = "\n".join(part for part in (out.logs, out.result) if part)
    return (said + (f"\n{out.error}" if out.error else ""))[-OUTPUT_TAIL:]


def _duration(start: int | None, end: int | None) -> float:
    return round(((end or 0) - (start or 0)) / 1000, 1) if start and end else 0.0


def follow(ws: WorkspaceGateway, state: State, run_id: int) -> tuple[bool, RunResult | None, float]:
    """One poll: (finished, result if finished, next delay). Never sleeps."""
    run = ws.get_run(run_id)
    record = state.run(ws.name, run_id)
    if not run.terminal:
        if record is not None and record.state != run.life_cycle:
            state.update_run(ws.name, run_id, state=run.life_cycle)
        elapsed = time.time() - record.started_at if record is not None else 0.0
        return False, None, poll_delay(elapsed)
    result = run_result(ws, run)
    state.update_run(ws.name, run_id, state=result.result, result=result, finished_at=time.time())
    log.info("run.finished", run_id=run_id, result=result.result, duration_s=result.duration_s)
    return True, result, 0.0


# --- run results -----------------------------------------------------------------------------------------
def is_good(result: str) -> bool:
    return result in GOOD


def verdict(ws: WorkspaceGateway, run_id: int, task_key: str) -> TaskReport:
    """What one named task of a run reported, read through the Jobs API for that task alone (its run id from
    runs/get, its output from runs/get-output): its values, or why there are none (no such task, no result line,
    a line the bot cannot read). No other task's output is read: a step that loads a model under review may print
    anything."""
    task = next((t for t in ws.get_run(run_id).tasks if t.key == task_key), None)
    if task is None:
        return TaskReport(task_key, {}, texts.no_such_task(task_key))
    try:
        out = ws.task_output(task.run_id)
    except NotFound:
        return TaskReport(task_key, {}, texts.output_gone(task_key))
    said = out.result if task.kind == "notebook_task" else out.logs if task.kind else out.logs or out.result
    return read_report(task_key, said)


@dataclass(frozen=True)
class TaskReport:
    """What one task reported: the values of its result line, or why the bot could not read one (`problem`, for
    people; then `values` is empty — an unreadable result is never read, so it never passes). `printed`: the task
    printed a line that looks like a result (a JSON object), readable or not."""

    task: str
    values: dict[str, Any]
    problem: str = ""
    printed: bool = True


def read_report(task: str, said: str) -> TaskReport:
    """The task's result line: the last line of `said` that is a JSON object (a library may log to stderr after it:
    `logs` has both), checked against the keys the bot reads (mlops_bot_task.RESULT_KEYS)."""
    line = next((s for s in map(str.strip, reversed(said.splitlines())) if s.startswith("{") and s.endswith("}")), "")
    if not line:
        return TaskReport(task, {}, texts.no_result_line(task), printed=False)
    try:
        found = json.loads(line)  # a line from { to } that parses is an object
    except ValueError as exc:
        return TaskReport(task, {}, texts.result_not_json(task, str(exc)))
    problems = check(found)
    if problems:
        return TaskReport(task, {}, texts.bad_result_key(task, *problems[0]))
    return TaskReport(task, found)


def task_outputs(result: RunResult) -> dict[str, Any]:
    """Merge what each task reported (steps end with one JSON line of results); a line the bot cannot read is left
    out (`report_notes` says why). For showing people what a run said; never a decision: any task may print any
    line (a decision reads `verdict`)."""
    merged: dict[str, Any] = {}
    for t in result.tasks:
        merged.update(read_report(t.key, t.output).values)
    return merged


def report_notes(result: RunResult, expects: str = "") -> list[str]:
    """What people should know about a finished run's result lines: each result line the bot cannot read and, when
    the run succeeded but no task reported `expects` (a training run's `mlflow_run_id`), that, with who was silent."""
    said = [read_report(t.key, t.output) for t in result.tasks]
    notes = [r.problem for r in said if r.problem and r.printed]
    if expects and is_good(result.result) and not any(expects in r.values for r in said):
        notes.append(texts.nothing_reported(expects, [r.task for r in said if not r.printed]))
    return notes
