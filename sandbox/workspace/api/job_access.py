"""Who may change or run a job: its owner, the workspace admin, and whom its permissions name.

Databricks' defaults (docs.databricks.com/jobs/privileges): "The creator of the job is granted the IS OWNER
permission." and "The creator of the job is set for Run as." Permission levels, least first: CAN_VIEW,
CAN_MANAGE_RUN (run now, cancel), CAN_MANAGE (edit, delete, permissions), IS_OWNER. Running a job as
someone else takes the Service Principal User role on them ("This allows users to run jobs as the service
principal, instead of as their identity"): in the sandbox only the workspace admin holds it, so no job's code
can make itself a job that runs as another principal.

Whom a ``run_as`` names must exist: ``JobRunAs.service_principal_name`` is the "Application ID of an active
service principal", ``user_name`` "The email of an active workspace user" (databricks-sdk's docstrings, the REST
reference's text). Databricks answers a principal it does not know with ``RESOURCE_DOES_NOT_EXIST``
"Principal: ServicePrincipalName(<id>) does not exist" (or ``UserName(<email>)``), as its users have reported
(github.com/databricks/terraform-provider-databricks/issues/1415, github.com/databrickslabs/dbx/issues/744).
"""

from __future__ import annotations

from ..principals import ADMIN, Principal
from .web import ApiError, caller, denied, workspace

LEVELS = {"CAN_VIEW": 0, "CAN_MANAGE_RUN": 1, "CAN_MANAGE": 2, "IS_OWNER": 3}
NAMES = ("user_name", "service_principal_name")


def level_of(job: dict, who: Principal) -> int:
    if who.admin or job.get("owner", ADMIN) == who.name:
        return LEVELS["IS_OWNER"]
    named = [LEVELS.get(g.get("permission_level", ""), -1) for g in job.get("acl", []) if who.name in _names(g)]
    return max(named, default=-1)


def _names(grant: dict) -> list[str]:
    return [grant[k] for k in NAMES if grant.get(k)]


def require(job: dict, level: str, what: str) -> None:
    """403 PERMISSION_DENIED unless the caller holds `level` (or more) on `job`."""
    who = caller()
    if level_of(job, who) < LEVELS[level]:
        raise denied(f"{who.name} does not have {level} permission on job {job['job_id']}, needed to {what}.")


def require_run_as(settings: dict) -> None:
    """A run_as names a principal the workspace knows, and someone else only with the Service Principal User role
    on them (the admin's alone here)."""
    who = caller()
    run_as = settings.get("run_as") or {}
    kind = next((k for k in ("service_principal_name", "user_name") if run_as.get(k)), "")
    named = run_as[kind] if kind else who.name
    if not workspace.principals.known(named):
        shown = "ServicePrincipalName" if kind == "service_principal_name" else "UserName"
        raise ApiError(404, "RESOURCE_DOES_NOT_EXIST", f"Principal: {shown}({named}) does not exist")
    if named != who.name and not who.admin:
        raise denied(f"{who.name} cannot set run_as to {named}: it needs the Service Principal User role on it.")


def require_on_run(jobs: dict, run: dict, level: str, what: str) -> None:
    """`require` on the run's job (a run whose job is gone: the admin's alone)."""
    require(jobs.get(run["job_id"]) or {"job_id": run["job_id"], "owner": ""}, level, what)
