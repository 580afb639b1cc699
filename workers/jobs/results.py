"""A run as people read it: the one poll that notices it finished, and its result as plain values —
the result, each task's state and duration, and what each task said (read by task type: Databricks
returns `logs` for script and wheel tasks, and for a notebook only its `dbutils.notebook.exit` value).
"""

from __future__ import annotations

import json
import time
from typing import Any

from core.logs import get_logger
from core.vocabulary import GOOD
from workers.core.base import poll_delay
from workers.core.run_records import RunResult, TaskResult
from workers.core.state import State
from workers.errors import NotFound
from workers.gateways import RunInfo, TaskOutput, TaskRun, WorkspaceGateway

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


def verdict(ws: WorkspaceGateway, run_id: int, task_key: str) -> dict:
    """The last JSON object one named task of a run printed, read through the Jobs API for that task alone (its
    run id from runs/get, its output from runs/get-output): {} when the run has no such task or it printed none.
    No other task's output is read: a step that loads a model under review may print anything."""
    task = next((t for t in ws.get_run(run_id).tasks if t.key == task_key), None)
    if task is None:
        return {}
    try:
        out = ws.task_output(task.run_id)
    except NotFound:
        return {}
    said = out.result if task.kind == "notebook_task" else out.logs if task.kind else out.logs or out.result
    return _last_json(said)


def _last_json(said: str) -> dict:
    """The last line of `said` that is one JSON object (a library may log to stderr after it: `logs` has both)."""
    for line in reversed(said.splitlines()):
        line = line.strip()
        if line.startswith("{") and line.endswith("}"):
            try:
                found = json.loads(line)
            except ValueError:
                continue
            return found if isinstance(found, dict) else {}
    return {}


def task_outputs(result: RunResult) -> dict[str, Any]:
    """Merge the JSON object each task printed last (steps end with one JSON line of results). For showing
    people what a run said; never a decision: any task may print any line (a decision reads `verdict`)."""
    merged: dict[str, Any] = {}
    for t in result.tasks:
        merged.update(_last_json(t.output))
    return merged
