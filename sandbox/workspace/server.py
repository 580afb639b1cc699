"""Flask application and CLI of the sandbox workspace (see package docstring)."""

from __future__ import annotations

import argparse
import base64
import html
import json
import os
import re
import shutil
import signal
import sys
import threading
import time
from collections import Counter
from pathlib import Path

from databricks.sdk.service import jobs as J
from databricks.sdk.service import workspace as W
from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException

from . import gitutil
from .faults import STATUS_ERROR_CODES, FaultSet
from .runner import Runner, read_log_tail, topo_order
from .state import ACTIVE_STATES, Store, now_ms, set_state

USER = "sandbox-user@example.com"
JOBS_PREFIXES = ("/api/2.2/jobs", "/api/2.1/jobs")
RUNS_LIST_MAX = 25
REPOS_PAGE = 20


class ApiError(Exception):
    def __init__(self, status: int, error_code: str, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status, self.error_code, self.message, self.headers = status, error_code, message, headers or {}


def bad(msg: str) -> ApiError:
    return ApiError(400, "INVALID_PARAMETER_VALUE", msg)


def error_response(status: int, code: str, message: str, headers: dict | None = None) -> Response:
    resp = jsonify({"error_code": code, "message": message})
    resp.status_code = status
    for k, v in (headers or {}).items():
        resp.headers[k] = v
    return resp


# ---- request parsing helpers ---------------------------------------------------------------------
def _body() -> dict:
    if not request.data:
        return {}
    try:
        d = json.loads(request.data)
    except ValueError:
        raise ApiError(400, "MALFORMED_REQUEST", "Request body is not valid JSON") from None
    if not isinstance(d, dict):
        raise ApiError(400, "MALFORMED_REQUEST", "Request body must be a JSON object")
    return d


def _int(value, name: str, required: bool = True) -> int | None:
    if value is None or value == "":
        if required:
            raise bad(f"Missing required field: {name}")
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise bad(f"Invalid value for {name}: {value!r}") from None


def _bool(value) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).lower() in ("true", "1", "yes")


def _token_encode(v) -> str:
    return base64.urlsafe_b64encode(json.dumps(v).encode()).decode().rstrip("=")


def _token_decode(tok: str):
    try:
        return json.loads(base64.urlsafe_b64decode(tok + "=" * (-len(tok) % 4)))
    except Exception:
        raise bad(f"Invalid page_token: {tok!r}") from None


def _normalize_settings(d: dict) -> dict:
    try:
        settings = J.JobSettings.from_dict(d).as_dict()
    except Exception as e:  # bad enum values etc.
        raise bad(f"Invalid job settings: {e}") from None
    tasks = settings.get("tasks", [])
    keys = [t.get("task_key") for t in tasks]
    if any(not k for k in keys):
        raise bad("Every task must have a task_key")
    if len(set(keys)) != len(keys):
        raise bad("Task keys must be unique within a job")
    try:
        topo_order(tasks)
    except ValueError as e:
        raise bad(str(e)) from None
    for t in tasks:
        if (t.get("timeout_seconds") or 0) < 0:
            raise bad("timeout_seconds must be >= 0")
    if (settings.get("max_concurrent_runs", 1) or 0) < 0:
        raise bad("max_concurrent_runs must be >= 0")
    settings.setdefault("name", "Untitled")
    settings.setdefault("max_concurrent_runs", 1)
    settings.setdefault("timeout_seconds", 0)
    settings.setdefault("email_notifications", {})
    settings["format"] = "MULTI_TASK"
    return settings


# ---- app -----------------------------------------------------------------------------------------
def create_app(data_dir, token: str = "dapi-sandbox", mlflow_tracking_uri: str | None = None,
               faults=None) -> Flask:
    store = Store(data_dir)
    runner = Runner(store, mlflow_tracking_uri)
    faultset = faults if isinstance(faults, FaultSet) else FaultSet(faults or [])
    counts: Counter = Counter()
    counts_lock = threading.Lock()

    app = Flask("sandbox.workspace")
    app.config["SANDBOX_STORE"] = store
    app.config["SANDBOX_RUNNER"] = runner
    app.config["SANDBOX_FAULTS"] = faultset

    @app.before_request
    def _gate():
        path, method = request.path, request.method
        if path.startswith("/sandbox/"):
            return None
        with counts_lock:
            counts[f"{method} {path}"] += 1
        for f in faultset.take(method, path):
            if f.delay:
                time.sleep(f.delay)
            if f.status is not None:
                code = STATUS_ERROR_CODES.get(f.status, "UNKNOWN")
                hdrs = {"Retry-After": "1"} if f.status in (429, 503) else {}
                return error_response(f.status, code, f"Sandbox injected fault ({f.spec})", hdrs)
        if path.startswith("/api/"):
            auth = request.headers.get("Authorization", "")
            if auth != f"Bearer {token}":
                return error_response(401, "UNAUTHENTICATED",
                                      "Invalid access token." if auth else "Missing Authorization header.")
        return None

    @app.errorhandler(ApiError)
    def _api_error(e: ApiError):
        return error_response(e.status, e.error_code, e.message, e.headers)

    @app.errorhandler(HTTPException)
    def _http_error(e: HTTPException):
        code = {404: "ENDPOINT_NOT_FOUND", 405: "BAD_REQUEST"}.get(e.code, STATUS_ERROR_CODES.get(e.code, "UNKNOWN"))
        msg = f"No API found for '{request.method} {request.path}'" if e.code in (404, 405) else e.description
        return error_response(e.code or 500, code, msg)

    @app.errorhandler(Exception)
    def _internal(e: Exception):
        import traceback
        traceback.print_exc()
        return error_response(500, "INTERNAL_ERROR", f"Sandbox internal failure: {type(e).__name__}: {e}")

    def route(rule, methods, prefixes=JOBS_PREFIXES):
        def deco(fn):
            for p in prefixes:
                app.add_url_rule(p + rule, f"{fn.__name__}{p}", fn, methods=methods)
            return fn
        return deco

    # ---- discovery / misc ------------------------------------------------------------------------
    @app.get("/.well-known/databricks-config")
    def well_known():
        return error_response(404, "NOT_FOUND", "Not available in the sandbox workspace")

    @app.get("/api/2.0/preview/scim/v2/Me")
    def me():
        return jsonify({"id": "1", "userName": USER, "displayName": "Sandbox User", "active": True,
                        "emails": [{"value": USER, "primary": True, "type": "work"}],
                        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"]})

    @app.get("/sandbox/requests")
    def sandbox_requests():
        with counts_lock:
            return jsonify(dict(counts))

    @app.post("/sandbox/requests/reset")
    def sandbox_requests_reset():
        with counts_lock:
            counts.clear()
        return jsonify({})

    @app.get("/sandbox/faults")
    def sandbox_faults():
        return jsonify({"faults": faultset.describe()})

    @app.post("/sandbox/faults")
    def sandbox_faults_add():
        spec = (request.get_json(silent=True) or {}).get("spec", "")
        try:
            faultset.add(spec)
        except ValueError as e:
            return error_response(400, "INVALID_PARAMETER_VALUE", str(e))
        return jsonify({"faults": faultset.describe()})

    @app.get("/sandbox/health")
    def sandbox_health():
        return jsonify({"ok": True})

    # ---- jobs ------------------------------------------------------------------------------------
    def get_job(job_id: int) -> dict:
        job = store.jobs.get(job_id)
        if job is None:
            raise bad(f"Job {job_id} does not exist.")
        return job

    def job_json(job: dict, with_tasks: bool = True, cls=J.Job) -> dict:
        settings = dict(job["settings"])
        if not with_tasks:
            settings.pop("tasks", None)
            settings.pop("job_clusters", None)
        kw = dict(job_id=job["job_id"], created_time=job["created_time"], creator_user_name=USER,
                  settings=J.JobSettings.from_dict(settings))
        if cls is J.Job:
            kw["run_as_user_name"] = USER
        return cls(**kw).as_dict()

    @route("/create", ["POST"])
    def jobs_create():
        settings = _normalize_settings(_body())
        with store.lock:
            job_id = store.next_id("job")
            store.jobs[job_id] = {"job_id": job_id, "created_time": now_ms(), "settings": settings}
            store.save()
        return jsonify(J.CreateResponse(job_id=job_id).as_dict())

    @route("/reset", ["POST"])
    def jobs_reset():
        b = _body()
        job_id = _int(b.get("job_id"), "job_id")
        if not isinstance(b.get("new_settings"), dict):
            raise bad("Missing required field: new_settings")
        settings = _normalize_settings(b["new_settings"])
        with store.lock:
            get_job(job_id)["settings"] = settings
            store.save()
        return jsonify({})

    @route("/update", ["POST"])
    def jobs_update():
        b = _body()
        job_id = _int(b.get("job_id"), "job_id")
        new = b.get("new_settings") or {}
        with store.lock:
            job = get_job(job_id)
            merged = json.loads(json.dumps(job["settings"]))
            for field in b.get("fields_to_remove") or []:
                if "/" in field:
                    arr, key = field.split("/", 1)
                    kname = "task_key" if arr == "tasks" else "job_cluster_key" if arr == "job_clusters" else "name"
                    merged[arr] = [x for x in merged.get(arr, []) if x.get(kname) != key]
                else:
                    merged.pop(field, None)
            for k, v in new.items():
                if k in ("tasks", "job_clusters", "parameters", "environments") and isinstance(v, list):
                    kname = {"tasks": "task_key", "job_clusters": "job_cluster_key",
                             "parameters": "name", "environments": "environment_key"}[k]
                    existing = {x.get(kname): x for x in merged.get(k, [])}
                    order = [x.get(kname) for x in merged.get(k, [])]
                    for x in v:
                        if x.get(kname) not in existing:
                            order.append(x.get(kname))
                        existing[x.get(kname)] = x
                    merged[k] = [existing[n] for n in order]
                else:
                    merged[k] = v
            job["settings"] = _normalize_settings(merged)
            store.save()
        return jsonify({})

    @route("/get", ["GET"])
    def jobs_get():
        job_id = _int(request.args.get("job_id"), "job_id")
        with store.lock:
            return jsonify(job_json(get_job(job_id)))

    @route("/list", ["GET"])
    def jobs_list():
        a = request.args
        limit = _int(a.get("limit"), "limit", required=False) or 20
        if not 1 <= limit <= 100:
            raise bad("limit must be between 1 and 100")
        name = a.get("name")
        expand = _bool(a.get("expand_tasks", False))
        after = _token_decode(a["page_token"]).get("after", 0) if a.get("page_token") else 0
        offset = _int(a.get("offset"), "offset", required=False) or 0
        with store.lock:
            jobs = [j for jid, j in sorted(store.jobs.items())
                    if jid > after and (name is None or j["settings"].get("name", "").lower() == name.lower())]
            if offset and not a.get("page_token"):
                jobs = jobs[offset:]
            page, more = jobs[:limit], len(jobs) > limit
            resp = J.ListJobsResponse(jobs=[J.BaseJob.from_dict(job_json(j, expand, J.BaseJob)) for j in page],
                                      has_more=more,
                                      next_page_token=_token_encode({"after": page[-1]["job_id"]}) if more else None)
        return jsonify(resp.as_dict())

    @route("/delete", ["POST"])
    def jobs_delete():
        job_id = _int(_body().get("job_id"), "job_id")
        with store.lock:
            get_job(job_id)
            del store.jobs[job_id]
            store.save()
        return jsonify({})

    @route("/run-now", ["POST"])
    def jobs_run_now():
        b = _body()
        job_id = _int(b.get("job_id"), "job_id")
        token_ = b.get("idempotency_token")
        if token_ is not None and (not isinstance(token_, str) or len(token_) > 64):
            raise bad("idempotency_token must be a string of at most 64 characters")
        jp = b.get("job_parameters") or {}
        if not isinstance(jp, dict):
            raise bad("job_parameters must be an object of string values")
        base_url = request.host_url.rstrip("/")
        with store.lock:
            job = get_job(job_id)
            if token_:
                key = f"{job_id}:{token_}"
                if key in store.idempotency and store.idempotency[key] in store.runs:
                    rid = store.idempotency[key]
                    return jsonify(J.RunNowResponse(run_id=rid, number_in_job=rid).as_dict())
            settings = json.loads(json.dumps(job["settings"]))
            defs = settings.get("parameters") or []
            params = {p["name"]: str(p.get("default", "")) for p in defs}
            params.update({str(k): str(v) for k, v in jp.items()})
            run_id = store.next_id("run")
            t = now_ms()
            page = f"{base_url}/jobs/{job_id}/runs/{run_id}"
            tasks = []
            for ts in settings.get("tasks", []):
                trid = store.next_id("run")
                task = dict(ts)
                task.update({"run_id": trid, "attempt_number": 0, "start_time": 0, "end_time": 0,
                             "setup_duration": 0, "execution_duration": 0, "cleanup_duration": 0,
                             "run_page_url": f"{base_url}/jobs/{job_id}/runs/{trid}"})
                if settings.get("git_source"):
                    task["git_source"] = settings["git_source"]
                set_state(task, "PENDING", message="")
                tasks.append(task)
                store.task_runs[trid] = run_id
            run = {
                "job_id": job_id, "run_id": run_id, "number_in_job": run_id, "original_attempt_run_id": run_id,
                "attempt_number": 0, "run_name": settings.get("name"), "creator_user_name": USER,
                "run_page_url": page, "run_type": "JOB_RUN", "trigger": "ONE_TIME", "format": "MULTI_TASK",
                "start_time": t, "end_time": 0, "setup_duration": 0, "execution_duration": 0,
                "cleanup_duration": 0, "tasks": tasks,
                "job_parameters": [{"name": k, "value": v, **({"default": d["default"]} if (
                    d := next((x for x in defs if x["name"] == k), None)) and "default" in d else {})}
                    for k, v in params.items()],
                "_settings": settings, "_params": params,
                "_overrides": {k: b[k] for k in ("python_params", "python_named_params", "notebook_params")
                               if b.get(k) is not None},
            }
            if settings.get("git_source"):
                run["git_source"] = dict(settings["git_source"])
            if settings.get("job_clusters"):
                run["job_clusters"] = settings["job_clusters"]
            if run["_overrides"]:
                run["overriding_parameters"] = dict(run["_overrides"])
            store.runs[run_id] = run
            if token_:
                store.idempotency[f"{job_id}:{token_}"] = run_id
            active = [r for r in store.runs.values() if r["job_id"] == job_id and r["run_id"] != run_id
                      and r["state"]["life_cycle_state"] in ACTIVE_STATES]
            running = [r for r in active if r["state"]["life_cycle_state"] != "QUEUED"]
            queued = [r for r in active if r["state"]["life_cycle_state"] == "QUEUED"]
            mcr = settings.get("max_concurrent_runs", 1)
            queue_on = (b.get("queue") or settings.get("queue") or {}).get("enabled", False)
            start = False
            if len(running) < mcr and not queued:
                set_state(run, "PENDING", message="Waiting for the run to start.")
                start = True
            elif queue_on and mcr > 0:
                set_state(run, "QUEUED", message=f"Queued: the limit of {mcr} maximum concurrent runs "
                                                 "has been reached.")
                for task in tasks:
                    set_state(task, "QUEUED", message="")
            else:
                msg = (f"Skipping this run because the limit of {mcr} maximum concurrent runs has been reached.")
                set_state(run, "SKIPPED", None, msg, code="MAX_CONCURRENT_RUNS_EXCEEDED", ttype="CLIENT_ERROR")
                run["end_time"] = t
                run["run_duration"] = 0
                for task in tasks:
                    set_state(task, "SKIPPED", None, msg, code="SKIPPED", ttype="SUCCESS")
            store.save()
            if start:
                runner.start(run_id)
        return jsonify(J.RunNowResponse(run_id=run_id, number_in_job=run_id).as_dict())

    # ---- runs ------------------------------------------------------------------------------------
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
        run_id = _int(request.args.get("run_id"), "run_id")
        with store.lock:
            if run_id in store.task_runs and run_id not in store.runs:
                return jsonify(task_run_json(run_id))
            return jsonify(run_json(get_run(run_id)))

    def task_run_json(trid: int) -> dict:
        run = store.runs[store.task_runs[trid]]
        task = next(t for t in run["tasks"] if t["run_id"] == trid)
        td = {k: v for k, v in task.items() if not k.startswith("_")}
        d = {"job_id": run["job_id"], "run_id": trid, "number_in_job": trid, "job_run_id": run["run_id"],
             "original_attempt_run_id": trid, "attempt_number": 0, "run_name": task["task_key"],
             "creator_user_name": USER, "run_page_url": task.get("run_page_url"), "run_type": "JOB_RUN",
             "trigger": "ONE_TIME", "state": task["state"], "status": task.get("status"),
             "start_time": task.get("start_time"), "end_time": task.get("end_time"),
             "setup_duration": 0, "execution_duration": task.get("execution_duration", 0),
             "cleanup_duration": 0, "run_duration": task.get("run_duration"),
             "job_parameters": run.get("job_parameters"), "tasks": [td]}
        if run.get("git_source"):
            d["git_source"] = run["git_source"]
        return J.Run.from_dict(d).as_dict()

    @route("/runs/get-output", ["GET"])
    def runs_get_output():
        rid = _int(request.args.get("run_id"), "run_id")
        with store.lock:
            if rid in store.runs:
                raise bad("Retrieving the output of runs with multiple tasks is not supported. Please retrieve "
                          "the output of each individual task run instead.")
            if rid not in store.task_runs:
                raise bad(f"Run {rid} does not exist.")
            meta = task_run_json(rid)
            run = store.runs[store.task_runs[rid]]
            task = next(t for t in run["tasks"] if t["run_id"] == rid)
            out = dict(store.outputs.get(rid, {}))
        logs, truncated = read_log_tail(runner.runs_dir / str(run["run_id"]) / "logs" / f"{rid}.log")
        ro = J.RunOutput(metadata=J.Run.from_dict(meta), logs=logs, logs_truncated=truncated,
                         error=out.get("error"), error_trace=out.get("error_trace"))
        if task.get("notebook_task") is not None:
            ro.notebook_output = J.NotebookOutput(result=out.get("notebook_result"), truncated=False)
        d = ro.as_dict()
        if task.get("notebook_task") is not None and "notebook_output" not in d:
            d["notebook_output"] = {}
        return jsonify(d)

    @route("/runs/cancel", ["POST"])
    def runs_cancel():
        rid = _int(_body().get("run_id"), "run_id")
        with store.lock:
            if rid in store.task_runs and rid not in store.runs:
                rid = store.task_runs[rid]
            get_run(rid)
        runner.cancel(rid)
        return jsonify({})

    @route("/runs/cancel-all", ["POST"])
    def runs_cancel_all():
        b = _body()
        job_id = _int(b.get("job_id"), "job_id", required=False)
        with store.lock:
            if job_id is not None:
                get_job(job_id)
            ids = [r["run_id"] for r in store.runs.values()
                   if (job_id is None or r["job_id"] == job_id) and r["state"]["life_cycle_state"] in ACTIVE_STATES
                   and (job_id is not None or r["state"]["life_cycle_state"] == "QUEUED")]
        for rid in ids:
            runner.cancel(rid)
        return jsonify({})

    @route("/runs/delete", ["POST"])
    def runs_delete():
        rid = _int(_body().get("run_id"), "run_id")
        with store.lock:
            run = get_run(rid)
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
        active_only, completed_only = _bool(a.get("active_only", False)), _bool(a.get("completed_only", False))
        if active_only and completed_only:
            raise bad("active_only and completed_only cannot both be true")
        limit = _int(a.get("limit"), "limit", required=False)
        limit = 20 if limit is None else (RUNS_LIST_MAX if limit == 0 else limit)
        if not 1 <= limit <= RUNS_LIST_MAX:
            raise bad(f"limit must be between 1 and {RUNS_LIST_MAX}")
        job_id = _int(a.get("job_id"), "job_id", required=False)
        expand = _bool(a.get("expand_tasks", False))
        before = _token_decode(a["page_token"]).get("before") if a.get("page_token") else None
        offset = _int(a.get("offset"), "offset", required=False) or 0
        t_from = _int(a.get("start_time_from"), "start_time_from", required=False)
        t_to = _int(a.get("start_time_to"), "start_time_to", required=False)
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
            resp = J.ListRunsResponse(runs=[J.BaseRun.from_dict(run_json(r, expand, J.BaseRun)) for r in page],
                                      has_more=more,
                                      next_page_token=_token_encode({"before": page[-1]["run_id"]}) if more else None)
        return jsonify(resp.as_dict())

    # ---- run page (HTML) -------------------------------------------------------------------------
    @app.get("/jobs/<int:job_id>/runs/<int:run_id>")
    def run_page(job_id: int, run_id: int):
        with store.lock:
            if run_id not in store.runs and run_id in store.task_runs:
                run_id = store.task_runs[run_id]
            run = store.runs.get(run_id)
            if run is None or run["job_id"] != job_id:
                return Response("<h1>Run not found</h1>", status=404, mimetype="text/html")
            run = json.loads(json.dumps(run))
        e = html.escape
        st = run["state"]
        active = st["life_cycle_state"] in ACTIVE_STATES
        parts = [
            "<!doctype html><html><head><meta charset='utf-8'>",
            "<meta http-equiv='refresh' content='2'>" if active else "",
            f"<title>Run {run_id} of job {job_id}</title>",
            "<style>body{font-family:sans-serif;margin:2em}pre{background:#f4f4f4;padding:1em;overflow:auto;"
            "max-height:30em}td,th{padding:.2em .8em;text-align:left}</style></head><body>",
            f"<h1>{e(str(run.get('run_name') or ''))} &mdash; run {run_id}</h1>",
            f"<p>Job {job_id} &middot; state <b id='life_cycle_state'>{e(st['life_cycle_state'])}</b> "
            f"&middot; result <b id='result_state'>{e(st.get('result_state') or '-')}</b></p>",
            f"<p>{e(st.get('state_message') or '')}</p>",
        ]
        if run.get("git_source"):
            gs = run["git_source"]
            used = (gs.get("git_snapshot") or {}).get("used_commit", "")
            parts.append(f"<p>git: {e(gs.get('git_url', ''))} "
                         f"{e(gs.get('git_branch') or gs.get('git_tag') or gs.get('git_commit') or '')} "
                         f"(commit {e(used)})</p>")
        if run.get("job_parameters"):
            parts.append("<p>parameters: " + ", ".join(
                f"{e(p['name'])}={e(str(p.get('value', '')))}" for p in run["job_parameters"]) + "</p>")
        parts.append("<table><tr><th>task</th><th>run id</th><th>state</th><th>result</th>"
                     "<th>duration (ms)</th></tr>")
        for t in run["tasks"]:
            ts = t["state"]
            parts.append(f"<tr><td><a href='#task-{e(t['task_key'])}'>{e(t['task_key'])}</a></td>"
                         f"<td>{t['run_id']}</td><td>{e(ts['life_cycle_state'])}</td>"
                         f"<td>{e(ts.get('result_state') or '-')}</td><td>{t.get('execution_duration', 0)}</td></tr>")
        parts.append("</table>")
        for t in run["tasks"]:
            logs, trunc = read_log_tail(runner.runs_dir / str(run_id) / "logs" / f"{t['run_id']}.log")
            out = store.outputs.get(t["run_id"], {})
            parts.append(f"<h2 id='task-{e(t['task_key'])}'>{e(t['task_key'])}</h2>")
            if out.get("error"):
                parts.append(f"<p><b>error:</b> {e(out['error'])}</p>")
            if out.get("notebook_result") is not None:
                parts.append(f"<p><b>notebook result:</b> {e(out['notebook_result'])}</p>")
            parts.append(("<p>(log truncated to the last 10 KB)</p>" if trunc else "")
                         + f"<pre>{e(logs) or '(no output)'}</pre>")
        parts.append("</body></html>")
        return Response("".join(parts), mimetype="text/html")

    # ---- repos -----------------------------------------------------------------------------------
    repos_root = store.data_dir / "repos"

    def repo_json(repo: dict, cls=W.RepoInfo) -> dict:
        return cls.from_dict({k: v for k, v in repo.items() if not k.startswith("_")}).as_dict()

    def get_repo(repo_id: int) -> dict:
        repo = store.repos.get(repo_id)
        if repo is None:
            raise ApiError(404, "RESOURCE_DOES_NOT_EXIST", f"Repo {repo_id} does not exist.")
        return repo

    def refresh_repo(repo: dict) -> None:
        co = Path(repo["_checkout"])
        repo["head_commit_id"] = gitutil.head_commit(co)
        branch = gitutil.current_branch(co)
        if branch:
            repo["branch"] = branch
        else:
            repo.pop("branch", None)

    @app.post("/api/2.0/repos")
    def repos_create():
        b = _body()
        url, provider = b.get("url"), b.get("provider")
        if not url:
            raise bad("Missing required field: url")
        if not provider:
            raise bad("Missing required field: provider")
        path = b.get("path")
        if path:
            if path.startswith("/Workspace/Repos/"):
                path = path[len("/Workspace"):]
            if not re.fullmatch(r"/Repos/[^/]+/[^/]+", path):
                raise bad(f"Invalid repo path {path!r}: expected /Repos/<folder>/<repo-name>")
        else:
            name = re.sub(r"\.git$", "", url.rstrip("/").rsplit("/", 1)[-1]) or "repo"
            path = f"/Repos/{USER}/{name}"
        with store.lock:
            if any(r["path"] == path for r in store.repos.values()):
                raise ApiError(400, "RESOURCE_ALREADY_EXISTS", f"Path ({path}) already exists.")
            repo_id = store.next_id("repo")
            # reserve the path while cloning
            store.repos[repo_id] = {"id": repo_id, "path": path, "url": url, "provider": provider,
                                    "_checkout": str(repos_root / str(repo_id)), "_cloning": True}
        co = repos_root / str(repo_id)
        try:
            if co.exists():
                shutil.rmtree(co)
            gitutil.clone(url, co)
            if b.get("branch"):
                gitutil.checkout_branch(co, b["branch"])
        except gitutil.GitError as e:
            with store.lock:
                store.repos.pop(repo_id, None)
            shutil.rmtree(co, ignore_errors=True)
            raise bad(f"Failed to clone repository {url}: {e}") from None
        with store.lock:
            repo = store.repos[repo_id]
            repo.pop("_cloning", None)
            refresh_repo(repo)
            store.save()
            return jsonify(repo_json(repo, W.CreateRepoResponse))

    @app.get("/api/2.0/repos/<int:repo_id>")
    def repos_get(repo_id: int):
        with store.lock:
            return jsonify(repo_json(get_repo(repo_id), W.GetRepoResponse))

    @app.patch("/api/2.0/repos/<int:repo_id>")
    def repos_update(repo_id: int):
        b = _body()
        with store.lock:
            repo = get_repo(repo_id)
        co = Path(repo["_checkout"])
        if b.get("branch") and b.get("tag"):
            raise bad("Only one of branch and tag can be given")
        try:
            gitutil.fetch(co)
            if b.get("tag"):
                gitutil.checkout_tag(co, b["tag"])
            else:
                branch = b.get("branch") or gitutil.current_branch(co) or repo.get("branch")
                if branch:
                    gitutil.checkout_branch(co, branch)
        except gitutil.GitError as e:
            raise bad(str(e)) from None
        with store.lock:
            refresh_repo(repo)
            store.save()
            return jsonify(repo_json(repo, W.GetRepoResponse))

    @app.get("/api/2.0/repos")
    def repos_list():
        prefix = request.args.get("path_prefix") or ""
        if prefix.startswith("/Workspace/Repos"):
            prefix = prefix[len("/Workspace"):]
        tok = request.args.get("next_page_token")
        after = _token_decode(tok).get("after", "") if tok else ""
        with store.lock:
            repos = sorted((r for r in store.repos.values() if not r.get("_cloning")
                            and r["path"].startswith(prefix) and r["path"] > after), key=lambda r: r["path"])
            page, more = repos[:REPOS_PAGE], len(repos) > REPOS_PAGE
            resp = W.ListReposResponse(repos=[W.RepoInfo.from_dict(repo_json(r)) for r in page],
                                       next_page_token=_token_encode({"after": page[-1]["path"]}) if more else None)
        return jsonify(resp.as_dict())

    @app.delete("/api/2.0/repos/<int:repo_id>")
    def repos_delete(repo_id: int):
        with store.lock:
            repo = get_repo(repo_id)
            del store.repos[repo_id]
            store.save()
        shutil.rmtree(repo["_checkout"], ignore_errors=True)
        return jsonify({})

    return app


# ---- CLI -----------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m sandbox.workspace",
                                description="Local Databricks-compatible workspace (Jobs 2.2 + Repos 2.0).")
    p.add_argument("--port", type=int, default=8765, help="port on 127.0.0.1 (0 = pick a free one)")
    p.add_argument("--data", required=True, help="directory for state, checkouts and logs")
    p.add_argument("--token", default="dapi-sandbox", help="the only accepted bearer token")
    p.add_argument("--mlflow-tracking-uri", default=None, help="exported to tasks as MLFLOW_TRACKING_URI")
    p.add_argument("--fault", action="append", default=[], metavar="SPEC",
                   help="METHOD:PATH=KIND[:COUNT], repeatable (see module docs)")
    args = p.parse_args(argv)
    try:
        faults = FaultSet(args.fault)
    except ValueError as e:
        p.error(str(e))
    from werkzeug.serving import make_server

    app = create_app(args.data, args.token, args.mlflow_tracking_uri, faults)
    server = make_server("127.0.0.1", args.port, app, threaded=True)
    runner: Runner = app.config["SANDBOX_RUNNER"]

    def _stop(signum, frame):
        runner.shutdown()
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    print(f"sandbox workspace listening on http://127.0.0.1:{server.server_port}", flush=True)
    try:
        server.serve_forever()
    finally:
        runner.shutdown()
        app.config["SANDBOX_STORE"].save()
