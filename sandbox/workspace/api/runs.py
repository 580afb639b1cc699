"""Jobs API runs: get, get-output, cancel, cancel-all, delete, list."""

from __future__ import annotations

import shutil

from databricks.sdk.service import jobs as J
from flask import Blueprint, jsonify, request

from ..runner import OUTPUT_LIMIT_BYTES, read_log_tail
from ..state import ACTIVE_STATES, now_ms
from .job_access import require, require_on_run
from .jobs import get_job
from .web import (
    USER,
    ApiError,
    bad,
    boolean,
    caller,
    decode_token,
    denied,
    encode_token,
    integer,
    jobs_route,
    json_body,
    runner,
    store,
)

RUNS_LIST_MAX = 25

bp = Blueprint("runs", __name__)
route = jobs_route(bp)


def get_run(run_id: int) -> dict:
    run = store.runs.get(run_id)
    if run is None:
        raise bad(f"Run {run_id} does not exist.")
    return run


def run_json(run: dict, with_tasks: bool = True, cls=J.Run) -> dict:
    d = {k: v for k, v in run.items() if not k.startswith("_")}
    if d["state"]["life_cycle_state"] in ACTIVE_STATES and d.get("start_time"):
        d["run_duration"] = now_ms() - d["start_time"]
    if not with_tasks:
        d.pop("tasks", None)
    return cls.from_dict(d).as_dict()


@route("/runs/get", ["GET"])
def runs_get():
    run_id = integer(request.args.get("run_id"), "run_id")
    with store.lock:
        if run_id in store.task_runs and run_id not in store.runs:
            return jsonify(task_run_json(run_id))
        return jsonify(run_json(get_run(run_id)))


def task_run_json(trid: int) -> dict:
    run = store.runs[store.task_runs[trid]]
    task = next(t for t in run["tasks"] if t["run_id"] == trid)
    td = {k: v for k, v in task.items() if not k.startswith("_")}
    d = {
        "job_id": run["job_id"],
        "run_id": trid,
        "number_in_job": trid,
        "job_run_id": run["run_id"],
        "original_attempt_run_id": trid,
        "attempt_number": 0,
        "run_name": task["task_key"],
        "creator_user_name": run.get("creator_user_name", USER),
        "run_page_url": task.get("run_page_url"),
        "run_type": "JOB_RUN",
        "trigger": "ONE_TIME",
        "state": task["state"],
        "status": task.get("status"),
        "start_time": task.get("start_time"),
        "end_time": task.get("end_time"),
        "setup_duration": 0,
        "execution_duration": task.get("execution_duration", 0),
        "cleanup_duration": 0,
        "run_duration": task.get("run_duration"),
        "job_parameters": run.get("job_parameters"),
        "tasks": [td],
    }
    if run.get("git_source"):
        d["git_source"] = run["git_source"]
    return J.Run.from_dict(d).as_dict()


@route("/runs/get-output", ["GET"])
def runs_get_output():
    """One task run's output, by task type (`RunOutput` docstrings):

    * `logs`: "The output from tasks that write to standard streams (stdout/stderr) such as
      spark_jar_task, spark_python_task, python_wheel_task. It's not supported for the notebook_task
      [...]. Databricks restricts this API to return the last 5 MB of these logs." (+ `logs_truncated`)
    * `notebook_output.result`: "The value passed to dbutils.notebook.exit(). Databricks restricts this
      API to return the first 5 MB of the value. [...] This field is absent if dbutils.notebook.exit()
      was never called." (+ `truncated`); a notebook that never called it still has `notebook_output`.
    """
    rid = integer(request.args.get("run_id"), "run_id")
    with store.lock:
        if rid in store.runs:
            raise bad(
                "Retrieving the output of runs with multiple tasks is not supported. Please retrieve "
                "the output of each individual task run instead."
            )
        if rid not in store.task_runs:
            raise bad(f"Run {rid} does not exist.")
        meta = task_run_json(rid)
        run = store.runs[store.task_runs[rid]]
        task = next(t for t in run["tasks"] if t["run_id"] == rid)
        out = dict(store.outputs.get(rid, {}))
    ro = J.RunOutput(metadata=J.Run.from_dict(meta), error=out.get("error"), error_trace=out.get("error_trace"))
    if task.get("notebook_task") is None:
        log = runner.runs_dir / str(run["run_id"]) / "logs" / f"{rid}.log"
        ro.logs, ro.logs_truncated = read_log_tail(log, OUTPUT_LIMIT_BYTES)
        return jsonify(ro.as_dict())
    result, truncated = first_bytes(out.get("notebook_result"), OUTPUT_LIMIT_BYTES)
    ro.notebook_output = J.NotebookOutput(result=result, truncated=truncated)
    d = ro.as_dict()
    d.setdefault("notebook_output", {})  # set, with its result absent, when exit() was never called
    return jsonify(d)


def first_bytes(text: str | None, limit: int) -> tuple[str | None, bool | None]:
    """(the first `limit` bytes of `text` as UTF-8, cut on a character boundary; whether it was cut)."""
    if text is None:
        return None, None
    data = text.encode()
    if len(data) <= limit:
        return text, False
    return data[:limit].decode("utf-8", errors="ignore"), True


@route("/runs/cancel", ["POST"])
def runs_cancel():
    rid = integer(json_body().get("run_id"), "run_id")
    with store.lock:
        if rid in store.task_runs and rid not in store.runs:
            rid = store.task_runs[rid]
        require_on_run(store.jobs, get_run(rid), "CAN_MANAGE_RUN", "cancel its runs")
    runner.cancel(rid)
    return jsonify({})


@route("/runs/cancel-all", ["POST"])
def runs_cancel_all():
    b = json_body()
    job_id = integer(b.get("job_id"), "job_id", required=False)
    with store.lock:
        if job_id is not None:
            require(get_job(job_id), "CAN_MANAGE_RUN", "cancel its runs")
        elif not caller().admin:
            raise denied("Only a workspace admin may cancel the queued runs of every job.")
        ids = [
            r["run_id"]
            for r in store.runs.values()
            if (job_id is None or r["job_id"] == job_id)
            and r["state"]["life_cycle_state"] in ACTIVE_STATES
            and (job_id is not None or r["state"]["life_cycle_state"] == "QUEUED")
        ]
    for rid in ids:
        runner.cancel(rid)
    return jsonify({})


@route("/runs/delete", ["POST"])
def runs_delete():
    rid = integer(json_body().get("run_id"), "run_id")
    with store.lock:
        run = get_run(rid)
        require_on_run(store.jobs, run, "CAN_MANAGE", "delete its runs")
        if run["state"]["life_cycle_state"] in ACTIVE_STATES:
            raise ApiError(400, "INVALID_STATE", f"Run {rid} is active and cannot be deleted.")
        for t in run["tasks"]:
            store.task_runs.pop(t["run_id"], None)
            store.outputs.pop(t["run_id"], None)
        del store.runs[rid]
        store.save()
    shutil.rmtree(runner.runs_dir / str(rid), ignore_errors=True)
    return jsonify({})


@route("/runs/list", ["GET"])
def runs_list():
    a = request.args
    active_only, completed_only = boolean(a.get("active_only", False)), boolean(a.get("completed_only", False))
    if active_only and completed_only:
        raise bad("active_only and completed_only cannot both be true")
    limit = integer(a.get("limit"), "limit", required=False)
    limit = 20 if limit is None else (RUNS_LIST_MAX if limit == 0 else limit)
    if not 1 <= limit <= RUNS_LIST_MAX:
        raise bad(f"limit must be between 1 and {RUNS_LIST_MAX}")
    job_id = integer(a.get("job_id"), "job_id", required=False)
    expand = boolean(a.get("expand_tasks", False))
    before = decode_token(a["page_token"]).get("before") if a.get("page_token") else None
    offset = integer(a.get("offset"), "offset", required=False) or 0
    t_from = integer(a.get("start_time_from"), "start_time_from", required=False)
    t_to = integer(a.get("start_time_to"), "start_time_to", required=False)
    with store.lock:
        runs = []
        for rid in sorted(store.runs, reverse=True):
            r = store.runs[rid]
            life = r["state"]["life_cycle_state"]
            if job_id is not None and r["job_id"] != job_id:
                continue
            if before is not None and rid >= before:
                continue
            if active_only and life not in ACTIVE_STATES or completed_only and life in ACTIVE_STATES:
                continue
            if t_from is not None and r["start_time"] < t_from or t_to is not None and r["start_time"] > t_to:
                continue
            runs.append(r)
        if offset and before is None:
            runs = runs[offset:]
        page, more = runs[:limit], len(runs) > limit
        resp = J.ListRunsResponse(
            runs=[J.BaseRun.from_dict(run_json(r, expand, J.BaseRun)) for r in page],
            has_more=more,
            next_page_token=encode_token({"before": page[-1]["run_id"]}) if more else None,
        )
    return jsonify(resp.as_dict())
