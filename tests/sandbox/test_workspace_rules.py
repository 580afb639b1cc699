"""The sandbox workspace refuses job settings the way Databricks does, one rule at a time.

Each test quotes the sentence it follows: a databricks-sdk docstring (generated from Databricks'
API spec) or Databricks' REST reference. Refusals are 400 INVALID_PARAMETER_VALUE, which the SDK
raises as `InvalidParameterValue` (databricks/sdk/errors/platform.py maps the code to the class).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest
from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import InvalidParameterValue
from databricks.sdk.service import jobs as J

from devstack.sandboxes import WORKSPACE_TOKEN, start_workspace
from tests.support.stacks import service_fixture, workspace_client

CLUSTER = {"spark_version": "15.4.x-scala2.12", "node_type_id": "Standard_DS3_v2", "num_workers": 1}
ENV = {"environment_key": "default", "spec": {"environment_version": "4", "dependencies": ["pandas>=2"]}}


workspace = service_fixture(start_workspace, "rules")


@pytest.fixture(scope="module")
def w(workspace) -> WorkspaceClient:
    return workspace_client(workspace.url, 10)


def py(key: str = "t", **compute) -> dict:
    return {"task_key": key, "spark_python_task": {"python_file": "steps/ok.py"}, **compute}


def job(*tasks: dict, **settings) -> dict:
    return {"name": "rules", "tasks": list(tasks), **settings}


def create(w: WorkspaceClient, body: dict) -> int:
    """POST the body as is (the SDK's typed `jobs.create` could not send some of these)."""
    return w.api_client.do("POST", "/api/2.2/jobs/create", body=body)["job_id"]


def refused(w: WorkspaceClient, body: dict, match: str) -> InvalidParameterValue:
    with pytest.raises(InvalidParameterValue, match=match) as exc:
        create(w, body)
    assert exc.value.error_code == "INVALID_PARAMETER_VALUE"
    return exc.value


# --- the refusals, each with the sentence it follows ---------------------------------------------


def test_a_python_task_without_compute_is_refused(w):
    # Databricks' answer to such a job: 400 INVALID_PARAMETER_VALUE "One of job_cluster_key,
    # new_cluster, or existing_cluster_id must be specified." (databricks/cli#838 shows it verbatim).
    refused(w, job(py()), "One of job_cluster_key, new_cluster, or existing_cluster_id must be specified")


def test_a_misspelt_compute_field_is_dropped_so_the_task_has_no_compute(w):
    # Fields the API does not know are dropped (see test_unknown_fields_are_dropped_not_refused).
    refused(w, job(py(cluster_id="0123-456789-abc")), "One of job_cluster_key")


def test_a_python_task_on_serverless_needs_an_environment(w):
    # Task.environment_key: "This field is required for Python script, Python wheel and dbt tasks
    # when using serverless compute or a compute resource that uses Environments mode."
    refused(w, job(py(), environments=[ENV]), "an environment is required for spark_python_task")
    wheel = {"task_key": "w", "python_wheel_task": {"package_name": "p", "entry_point": "e"}}
    refused(w, job(wheel, environments=[ENV]), "an environment is required for python_wheel_task")


def test_a_notebook_may_run_serverless_without_an_environment(w):
    # JobSettings.environments: "For notebook tasks that use serverless compute ... if the
    # environment_key is not specified, the notebook environment will be used if present."
    notebook = {"task_key": "nb", "notebook_task": {"notebook_path": "notebooks/nb"}}
    assert create(w, job(notebook))


def test_an_environment_key_naming_no_environment_is_refused(w):
    # Task.environment_key: "The key that references an environment spec in a job."
    refused(w, job(py(environment_key="gpu"), environments=[ENV]), "refers to environment gpu")


def test_a_job_cluster_key_naming_no_cluster_is_refused(w):
    # Task.job_cluster_key: "this task is executed reusing the cluster specified in
    # ``job.settings.job_clusters``."
    clusters = [{"job_cluster_key": "small", "new_cluster": CLUSTER}]
    refused(w, job(py(job_cluster_key="big"), job_clusters=clusters), "refers to job cluster big")


def test_an_environment_needs_a_version(w):
    # compute.Environment.environment_version: "Either ``environment_version`` or
    # ``base_environment`` must be provided."
    env = {"environment_key": "default", "spec": {"dependencies": ["pandas"]}}
    refused(w, job(py(environment_key="default"), environments=[env]), "environment_version or base_environment")


@pytest.mark.parametrize("key", ["prepare.data", "a b", "", "k" * 101, "ünï"])
def test_task_keys_outside_the_pattern_are_refused(w, key):
    # REST reference, jobs/create: task_key "string [ 1 .. 100 ] characters ^[\w\-\_]+$".
    refused(w, job(py(key, existing_cluster_id="c")), "Invalid task_key")


@pytest.mark.parametrize("key", ["small.one", "k" * 101])
def test_job_cluster_keys_outside_the_pattern_are_refused(w, key):
    # REST reference, jobs/create: job_cluster_key "string [ 1 .. 100 ] characters ^[\w\-\_]+$".
    clusters = [{"job_cluster_key": key, "new_cluster": CLUSTER}]
    refused(w, job(py(job_cluster_key=key), job_clusters=clusters), "Invalid job_cluster_key")


def test_keys_at_the_limits_are_accepted(w):
    key = "k-_9" * 25  # 100 characters
    clusters = [{"job_cluster_key": key, "new_cluster": CLUSTER}]
    assert create(w, job(py(key, job_cluster_key=key), job_clusters=clusters))


def test_more_than_25_tags_are_refused(w):
    # JobSettings.tags: "A maximum of 25 tags can be added to the job."
    tags = {f"t{i}": "v" for i in range(26)}
    refused(w, job(py(existing_cluster_id="c"), tags=tags), "at most 25 tags")
    assert create(w, job(py(existing_cluster_id="c"), tags=dict(list(tags.items())[:25])))


@pytest.mark.parametrize("value", [-1, 1001])
def test_max_concurrent_runs_outside_0_to_1000_is_refused(w, value):
    # JobSettings.max_concurrent_runs: "This value cannot exceed 1000. Setting this value to ``0``
    # causes all new runs to be skipped."
    refused(w, job(py(existing_cluster_id="c"), max_concurrent_runs=value), "between 0 and 1000")


@pytest.mark.parametrize("value", [0, 1000])
def test_max_concurrent_runs_at_its_limits_is_accepted(w, value):
    assert create(w, job(py(existing_cluster_id="c"), max_concurrent_runs=value))


@pytest.mark.parametrize("name", ["my param", "a/b", "ä", ""])
def test_job_parameter_names_outside_the_pattern_are_refused(w, name):
    # JobParameterDefinition.name: "May only contain alphanumeric characters, ``_``, ``-``, and ``.``"
    parameters = [{"name": name, "default": ""}]
    refused(w, job(py(existing_cluster_id="c"), parameters=parameters), "Invalid job parameter name")


def test_duplicate_task_keys_are_refused(w):
    # Task.task_key: "This field is required and must be unique within its parent job."
    refused(w, job(py("a", existing_cluster_id="c"), py("a", existing_cluster_id="c")), "must be unique")


def test_depends_on_an_unknown_task_is_refused(w):
    # Task.depends_on: "All tasks specified in this field must complete before executing this task."
    task = py("b", existing_cluster_id="c", depends_on=[{"task_key": "nope"}])
    refused(w, job(task), "depends on nope which is not in the job")


def test_run_as_naming_nobody_is_refused(w):
    # JobRunAs: "One of ``user_name``, ``service_principal_name``, or ``group_name`` should be
    # specified. If not, an error is thrown."
    refused(w, job(py(existing_cluster_id="c"), run_as={}), "run_as: one of user_name")


def test_an_access_control_entry_naming_nobody_or_no_level_is_refused(w):
    # JobAccessControlRequest: group_name, service_principal_name or user_name, and a
    # permission_level among JobPermissionLevel (CAN_MANAGE, CAN_MANAGE_RUN, CAN_VIEW, IS_OWNER).
    body = job(py(existing_cluster_id="c"), access_control_list=[{"permission_level": "CAN_VIEW"}])
    refused(w, body, "names one of user_name")
    body["access_control_list"] = [{"user_name": "a@x", "permission_level": "CAN_READ"}]
    refused(w, body, "permission_level must be one of")


def test_reset_and_update_are_held_to_the_same_rules(w):
    job_id = create(w, job(py(existing_cluster_id="c")))
    with pytest.raises(InvalidParameterValue, match="One of job_cluster_key"):
        w.api_client.do("POST", "/api/2.2/jobs/reset", body={"job_id": job_id, "new_settings": job(py())})
    with pytest.raises(InvalidParameterValue, match="at most 25 tags"):
        tags = {f"t{i}": "v" for i in range(26)}
        w.api_client.do("POST", "/api/2.2/jobs/update", body={"job_id": job_id, "new_settings": {"tags": tags}})


def test_unknown_fields_are_dropped_not_refused(w):
    # Databricks documents no refusal of unknown fields; measured against a live workspace, a value
    # it does not recognise "is accepted with 200 and dropped — jobs/get afterwards shows no
    # performance_target at all" (apache/airflow#72148). The stand-in does the same.
    job_id = create(w, job(py(existing_cluster_id="c"), colour="blue"))
    got = w.api_client.do("GET", "/api/2.2/jobs/get", query={"job_id": job_id})
    assert "colour" not in got["settings"] and got["settings"]["tasks"][0]["existing_cluster_id"] == "c"


def test_a_refusal_is_400_with_databricks_error_shape(workspace):
    request = urllib.request.Request(
        workspace.url + "/api/2.2/jobs/create",
        data=json.dumps(job(py())).encode(),
        headers={"Authorization": f"Bearer {WORKSPACE_TOKEN}", "Content-Type": "application/json"},
        method="POST",
    )
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(request, timeout=10)
    assert exc.value.code == 400
    body = json.loads(exc.value.read())
    assert body["error_code"] == "INVALID_PARAMETER_VALUE" and "must be specified" in body["message"]


def test_job_permissions_are_kept_and_merged(w):
    acl = [{"user_name": "alice@acme.com", "permission_level": "CAN_VIEW"}]
    job_id = create(w, job(py(existing_cluster_id="c"), access_control_list=acl))
    w.jobs.update_permissions(
        str(job_id),
        access_control_list=[
            J.JobAccessControlRequest(group_name="ml-engineers", permission_level=J.JobPermissionLevel.CAN_VIEW)
        ],
    )
    got = w.jobs.get_permissions(str(job_id))
    levels = {
        (a.user_name or a.group_name): a.all_permissions[0].permission_level.value for a in got.access_control_list
    }
    assert levels == {"sandbox-user@example.com": "IS_OWNER", "alice@acme.com": "CAN_VIEW", "ml-engineers": "CAN_VIEW"}
