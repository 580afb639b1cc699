"""Job permissions (``/api/2.0/permissions/jobs/{job_id}``): get, set (PUT, replaces) and update (PATCH, merges).

The job's creator is its owner (IS_OWNER), as on Databricks; grants name one principal each.
"""

from __future__ import annotations

from databricks.sdk.service import jobs as J
from flask import Blueprint, jsonify, request

from .job_access import require
from .job_rules import check_access_control_list
from .web import USER, bad, json_body, store

PRINCIPALS = ("user_name", "group_name", "service_principal_name")


def _principal(entry: dict) -> tuple[str, str]:
    return next((k, entry[k]) for k in PRINCIPALS if entry.get(k))


def permissions_json(job_id: int) -> dict:
    owner = store.jobs[job_id].get("owner", USER)
    kind = "user_name" if "@" in owner else "service_principal_name"
    grants = [{kind: owner, "permission_level": "IS_OWNER"}, *store.jobs[job_id].get("acl", [])]
    acl = [
        {
            _principal(g)[0]: _principal(g)[1],
            "all_permissions": [{"permission_level": g["permission_level"], "inherited": False}],
        }
        for g in grants
    ]
    return J.JobPermissions(
        object_id=f"/jobs/{job_id}",
        object_type="job",
        access_control_list=[J.JobAccessControlResponse.from_dict(a) for a in acl],
    ).as_dict()


def _job(job_id: int) -> dict:
    if job_id not in store.jobs:
        raise bad(f"Job {job_id} does not exist.")
    return store.jobs[job_id]


def add_permission_routes(bp: Blueprint) -> None:
    @bp.route("/api/2.0/permissions/jobs/<int:job_id>", methods=["GET"])
    def job_permissions_get(job_id: int):
        with store.lock:
            _job(job_id)
            return jsonify(permissions_json(job_id))

    @bp.route("/api/2.0/permissions/jobs/<int:job_id>", methods=["PUT", "PATCH"])
    def job_permissions_write(job_id: int):
        grants = check_access_control_list(json_body().get("access_control_list") or [])
        with store.lock:
            job = _job(job_id)
            require(job, "CAN_MANAGE", "change its permissions")
            kept = {} if request.method == "PUT" else {_principal(g): g for g in job.get("acl", [])}
            kept.update({_principal(g): g for g in grants})
            job["acl"] = list(kept.values())
            store.save()
            return jsonify(permissions_json(job_id))
