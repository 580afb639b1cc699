"""A job's compute and access, as databricks-sdk dataclasses, purely: environments or job clusters per
workflow, the compute field of each task, whom the job runs as, and who may view its runs."""

from __future__ import annotations

from typing import Any

from databricks.sdk.service import compute
from databricks.sdk.service import jobs as J

from core.compute import task_cluster, task_environment
from core.config import Library, Repo, Settings, TaskSpec, Workflow


def job_compute(workflow: Workflow) -> dict[str, Any]:
    """The job-level half: `environments` (serverless) or `job_clusters`; nothing for an existing cluster."""
    if workflow.compute == "serverless" and workflow.environments:
        return {
            "environments": [
                J.JobEnvironment(environment_key=key, spec=compute.Environment.from_dict(env.spec()))
                for key, env in workflow.environments.items()
            ]
        }
    if workflow.compute == "job_clusters":
        return {
            "job_clusters": [
                J.JobCluster(job_cluster_key=key, new_cluster=compute.ClusterSpec.from_dict(cluster.new_cluster()))
                for key, cluster in workflow.job_clusters.items()
            ]
        }
    return {}


def task_compute(spec: TaskSpec, workflow: Workflow) -> dict[str, Any]:
    """The task-level half: the one field that says where this task runs, and its libraries on clusters."""
    if workflow.compute == "serverless":
        key = task_environment(workflow.environments, spec.type, spec.environment)
        return {"environment_key": key} if key else {}  # a notebook without one uses its own environment
    where = (
        {"job_cluster_key": task_cluster(workflow.job_clusters, spec.cluster)}
        if workflow.compute == "job_clusters"
        else {"existing_cluster_id": workflow.existing_cluster_id}
    )
    libraries = [_library(lib) for lib in [*workflow.libraries, *spec.libraries]]
    return {**where, "libraries": libraries or None}


def _library(lib: Library) -> compute.Library:
    return (
        compute.Library(pypi=compute.PythonPyPiLibrary(package=lib.pypi)) if lib.pypi else compute.Library(whl=lib.whl)
    )


def run_as(settings: Settings, repo: Repo, environment: str) -> J.JobRunAs | None:
    """The service principal the job runs as: the repository's, else the environment's; None: the bot itself."""
    env = settings.environments.get(environment)
    principal = repo.run_as_service_principal or (env.run_as_service_principal if env else "")
    return J.JobRunAs(service_principal_name=principal) if principal else None


def access_control_list(settings: Settings) -> list[J.JobAccessControlRequest]:
    """CAN_VIEW for the mapped people and the view group, CAN_MANAGE_RUN only for `manage_run` (least privilege)."""
    access = settings.databricks
    acl = [
        J.JobAccessControlRequest(
            user_name=user,
            permission_level=J.JobPermissionLevel.CAN_MANAGE_RUN
            if login in access.manage_run
            else J.JobPermissionLevel.CAN_VIEW,
        )
        for login, user in sorted(access.users.items())
    ]
    if access.view_group:
        acl.append(
            J.JobAccessControlRequest(group_name=access.view_group, permission_level=J.JobPermissionLevel.CAN_VIEW)
        )
    return acl
