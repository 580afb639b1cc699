"""Jobs API: create, reset, update, get, list, delete, run-now."""

from __future__ import annotations

import json

from databricks.sdk.service import jobs as J
from flask import Blueprint, jsonify, request

from ..principals import ADMIN, run_as_name
from ..runner import topo_order
from ..state import ACTIVE_STATES, now_ms, set_state
from .idempotency import check_token, run_for_token
from .job_access import require, require_run_as
from .job_rules import check_access_control_list, check_settings
from .permissions import add_permission_routes
from .web import bad, boolean, caller, decode_token, encode_token, integer, jobs_route, json_body, runner, store

bp = Blueprint("jobs", __name__)
route = jobs_route(bp)
add_permission_routes(bp)


def normalized_settings(d: dict) -> dict:
    """The settings as Databricks keeps them (unknown fields dropped), or its refusal (see job_rules)."""
    try:
        settings = J.JobSettings.from_dict(d).as_dict()
    except Exception as e:  # bad enum values etc.
        raise bad(f"Invalid job settings: {e}") from None
    tasks = settings.get("tasks", [])
    check_settings(settings, d)
    try:
        topo_order(tasks)
    except ValueError as e:
        raise bad(str(e)) from None
    for t in tasks:
        if (t.get("timeout_seconds") or 0) < 0:
            raise bad("timeout_seconds must be >= 0")
    settings.setdefault("name", "Untitled")
    settings.setdefault("max_concurrent_runs", 1)
    settings.setdefault("timeout_seconds", 0)
    settings.setdefault("email_notifications", {})
    settings["format"] = "MULTI_TASK"
    return settings


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
    owner = job.get("owner", ADMIN)
    kw = dict(
        job_id=job["job_id"],
        created_time=job["created_time"],
        creator_user_name=owner,
        settings=J.JobSettings.from_dict(settings),
    )
    if cls is J.Job:
        kw["run_as_user_name"] = run_as_name(job["settings"], owner)
    return cls(**kw).as_dict()


@route("/create", ["POST"])
def jobs_create():
    body = json_body()
    settings = normalized_settings(body)
    require_run_as(settings)
    acl = check_access_control_list(body.get("access_control_list") or [])
    with store.lock:
        job_id = store.next_id("job")
        job = {"job_id": job_id, "created_time": now_ms(), "settings": settings, "acl": acl, "owner": caller().name}
        store.jobs[job_id] = job
        store.save()
    return jsonify(J.CreateResponse(job_id=job_id).as_dict())


@route("/reset", ["POST"])
def jobs_reset():
    b = json_body()
    job_id = integer(b.get("job_id"), "job_id")
    if not isinstance(b.get("new_settings"), dict):
        raise bad("Missing required field: new_settings")
    settings = normalized_settings(b["new_settings"])
    require_run_as(settings)
    with store.lock:
        job = get_job(job_id)
        require(job, "CAN_MANAGE", "reset it")
        job["settings"] = settings
        store.save()
    return jsonify({})


@route("/update", ["POST"])
def jobs_update():
    b = json_body()
    job_id = integer(b.get("job_id"), "job_id")
    new = b.get("new_settings") or {}
    with store.lock:
        job = get_job(job_id)
        require(job, "CAN_MANAGE", "update it")
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
                kname = {
                    "tasks": "task_key",
                    "job_clusters": "job_cluster_key",
                    "parameters": "name",
                    "environments": "environment_key",
                }[k]
                existing = {x.get(kname): x for x in merged.get(k, [])}
                order = [x.get(kname) for x in merged.get(k, [])]
                for x in v:
                    if x.get(kname) not in existing:
                        order.append(x.get(kname))
                    existing[x.get(kname)] = x
                merged[k] = [existing[n] for n in order]
            else:
                merged[k] = v
        settings = normalized_settings(merged)
        require_run_as(settings)  # before the job changes: a refused update changes nothing
        job["settings"] = settings
        store.save()
    return jsonify({})


@route("/get", ["GET"])
def jobs_get():
    job_id = integer(request.args.get("job_id"), "job_id")
    with store.lock:
        return jsonify(job_json(get_job(job_id)))


@route("/list", ["GET"])
def jobs_list():
    a = request.args
    limit = integer(a.get("limit"), "limit", required=False) or 20
    if not 1 <= limit <= 100:
        raise bad("limit must be between 1 and 100")
    name = a.get("name")
    expand = boolean(a.get("expand_tasks", False))
    after = decode_token(a["page_token"]).get("after", 0) if a.get("page_token") else 0
    offset = integer(a.get("offset"), "offset", required=False) or 0
    with store.lock:
        wanted = None if name is None else name.lower()
        # filtered before sorted: a workspace of tens of thousands of jobs answers a look-up by name in ~ms
        jobs = sorted(
            (j for jid, j in store.jobs.items() if jid > after and (wanted is None or _name(j) == wanted)),
            key=lambda j: j["job_id"],
        )
        if offset and not a.get("page_token"):
            jobs = jobs[offset:]
        page, more = jobs[:limit], len(jobs) > limit
        resp = J.ListJobsResponse(
            jobs=[J.BaseJob.from_dict(job_json(j, expand, J.BaseJob)) for j in page],
            has_more=more,
            next_page_token=encode_token({"after": page[-1]["job_id"]}) if more else None,
        )
    return jsonify(resp.as_dict())


def _name(job: dict) -> str:
    return job["settings"].get("name", "").lower()


@route("/delete", ["POST"])
def jobs_delete():
    job_id = integer(json_body().get("job_id"), "job_id")
    with store.lock:
        require(get_job(job_id), "CAN_MANAGE", "delete it")
        del store.jobs[job_id]
        store.save()
    return jsonify({})


@route("/run-now", ["POST"])
def jobs_run_now():
    b = json_body()
    job_id = integer(b.get("job_id"), "job_id")
    token_ = b.get("idempotency_token")
    check_token(token_)
    jp = b.get("job_parameters") or {}
    if not isinstance(jp, dict):
        raise bad("job_parameters must be an object of string values")
    base_url = request.host_url.rstrip("/")
    with store.lock:
        job = get_job(job_id)
        require(job, "CAN_MANAGE_RUN", "run it")
        rid = run_for_token(job_id, token_)
        if rid is not None:
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
            task.update(
                {
                    "run_id": trid,
                    "attempt_number": 0,
                    "start_time": 0,
                    "end_time": 0,
                    "setup_duration": 0,
                    "execution_duration": 0,
                    "cleanup_duration": 0,
                    "run_page_url": f"{base_url}/jobs/{job_id}/runs/{trid}",
                }
            )
            if settings.get("git_source"):
                task["git_source"] = settings["git_source"]
            set_state(task, "PENDING", message="")
            tasks.append(task)
            store.task_runs[trid] = run_id
        run = {
            "job_id": job_id,
            "run_id": run_id,
            "number_in_job": run_id,
            "original_attempt_run_id": run_id,
            "attempt_number": 0,
            "run_name": settings.get("name"),
            "creator_user_name": caller().name,
            "run_page_url": page,
            "run_type": "JOB_RUN",
            "trigger": "ONE_TIME",
            "format": "MULTI_TASK",
            "start_time": t,
            "end_time": 0,
            "setup_duration": 0,
            "execution_duration": 0,
            "cleanup_duration": 0,
            "tasks": tasks,
            "job_parameters": [
                {
                    "name": k,
                    "value": v,
                    **(
                        {"default": d["default"]}
                        if (d := next((x for x in defs if x["name"] == k), None)) and "default" in d
                        else {}
                    ),
                }
                for k, v in params.items()
            ],
            "_settings": settings,
            "_run_as": run_as_name(settings, job.get("owner", ADMIN)),  # whose token its tasks are given
            "_params": params,
            "_overrides": {
                k: b[k] for k in ("python_params", "python_named_params", "notebook_params") if b.get(k) is not None
            },
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
        active = [
            r
            for r in store.runs.values()
            if r["job_id"] == job_id and r["run_id"] != run_id and r["state"]["life_cycle_state"] in ACTIVE_STATES
        ]
        running = [r for r in active if r["state"]["life_cycle_state"] != "QUEUED"]
        queued = [r for r in active if r["state"]["life_cycle_state"] == "QUEUED"]
        mcr = settings.get("max_concurrent_runs", 1)
        queue_on = (b.get("queue") or settings.get("queue") or {}).get("enabled", False)
        start = False
        if len(running) < mcr and not queued:
            set_state(run, "PENDING", message="Waiting for the run to start.")
            start = True
        elif queue_on and mcr > 0:
            set_state(run, "QUEUED", message=f"Queued: the limit of {mcr} maximum concurrent runs has been reached.")
            for task in tasks:
                set_state(task, "QUEUED", message="")
        else:
            msg = f"Skipping this run because the limit of {mcr} maximum concurrent runs has been reached."
            set_state(run, "SKIPPED", None, msg, code="MAX_CONCURRENT_RUNS_EXCEEDED", ttype="CLIENT_ERROR")
            run["end_time"] = t
            run["run_duration"] = 0
            for task in tasks:
                set_state(task, "SKIPPED", None, msg, code="SKIPPED", ttype="SUCCESS")
        store.save()
        if start:
            runner.start(run_id)
    return jsonify(J.RunNowResponse(run_id=run_id, number_in_job=run_id).as_dict())
