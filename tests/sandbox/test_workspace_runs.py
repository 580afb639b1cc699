"""The sandbox workspace's runs, outputs, folders and Git folders refuse and answer what Databricks does.

Each test drives the stand-in through the real databricks-sdk and quotes the sentence — an SDK
docstring (`databricks/sdk/service/jobs.py`, `workspace.py`) or Databricks' documentation — that
states the rule it holds the stand-in to.
"""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest
from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import (
    DatabricksError,
    DeadlineExceeded,
    InvalidParameterValue,
    NotFound,
    ResourceAlreadyExists,
    ResourceDoesNotExist,
    Unknown,
)
from databricks.sdk.service import compute, jobs
from databricks.sdk.service.workspace import ObjectType

from devstack.mlrepo import make_repo
from devstack.sandboxes import start_workspace
from tests.support.stacks import finished_run, service_fixture, workspace_client

MB5 = 5 * 1024 * 1024
CLUSTER = compute.ClusterSpec(spark_version="15.4.x-scala2.12", node_type_id="i3.xlarge", num_workers=1)
FILES = {
    "steps/hello.py": 'import json\nprint("hello from a script")\nprint(json.dumps({"metrics": {"score": 1}}))\n',
    "steps/loud.py": f'import sys\nsys.stdout.write("x" * {MB5 + 1000})\nprint("THE END")\n',
    "steps/sleep.py": "import time\ntime.sleep(60)\n",
    "notebooks/exits.py": (
        "# Databricks notebook source\n"
        "print('printed, never returned')\n"
        'dbutils.notebook.exit(\'{"metrics": {"score": 2}}\')\n'
    ),
    "notebooks/silent.py": "# Databricks notebook source\nprint('ends without dbutils.notebook.exit')\n",
    "notebooks/huge.py": f"# Databricks notebook source\ndbutils.notebook.exit('y' * {MB5 + 10})\n",
}


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    return make_repo(tmp_path_factory.mktemp("git") / "runs-repo", FILES, "runs")


sandbox = service_fixture(start_workspace, "ws")


@pytest.fixture(scope="module")
def w(sandbox) -> WorkspaceClient:
    return workspace_client(sandbox.url, 15)


def fault(sandbox, spec: str) -> None:
    body = json.dumps({"spec": spec}).encode()
    req = urllib.request.Request(
        sandbox.url + "/sandbox/faults", data=body, method="POST", headers={"Content-Type": "application/json"}
    )
    urllib.request.urlopen(req).close()


def script(key: str, file: str) -> jobs.Task:
    return jobs.Task(task_key=key, spark_python_task=jobs.SparkPythonTask(python_file=file), new_cluster=CLUSTER)


def notebook(key: str, path: str) -> jobs.Task:
    return jobs.Task(task_key=key, notebook_task=jobs.NotebookTask(notebook_path=path), new_cluster=CLUSTER)


def make_job(w: WorkspaceClient, repo: Path, name: str, *tasks: jobs.Task) -> int:
    source = jobs.GitSource(git_url=str(repo), git_provider=jobs.GitProvider.GIT_HUB, git_branch="main")
    return w.jobs.create(name=name, git_source=source, tasks=list(tasks)).job_id


def output(w: WorkspaceClient, run: jobs.Run, key: str) -> jobs.RunOutput:
    return w.jobs.get_run_output(next(t.run_id for t in run.tasks if t.task_key == key))


# --- Workspace API: folders ------------------------------------------------------------------------


def test_mkdirs_creates_the_parents_too_and_an_existing_folder_is_fine(w):
    # WorkspaceAPI.mkdirs: "Creates the specified directory (and necessary parent directories if they do
    # not exist)." ":param path: ... If the directory already exists, this command will do nothing and succeed."
    w.workspace.mkdirs("/Shared/team-a/nested")
    w.workspace.mkdirs("/Shared/team-a/nested")
    for path in ("/Shared/team-a", "/Shared/team-a/nested"):
        info = w.workspace.get_status(path)
        assert (info.object_type, info.path) == (ObjectType.DIRECTORY, path)


def test_mkdirs_refuses_a_path_under_something_that_is_not_a_folder(w, repo):
    # WorkspaceAPI.mkdirs: "If there is an object (not a directory) at any prefix of the input path, this
    # call returns an error RESOURCE_ALREADY_EXISTS."
    w.workspace.mkdirs("/Repos/team-b")
    w.repos.create(url=str(repo), provider="gitHub", path="/Repos/team-b/proj")
    with pytest.raises(ResourceAlreadyExists):
        w.workspace.mkdirs("/Repos/team-b/proj/below-a-git-folder")


def test_mkdirs_refuses_a_relative_path(w):
    # WorkspaceAPI.mkdirs ":param path: str The absolute path of the directory."
    with pytest.raises(InvalidParameterValue):
        w.workspace.mkdirs("Repos/relative")


def test_get_status_of_a_missing_path_is_resource_does_not_exist(w):
    # WorkspaceAPI.get_status: "If `path` does not exist, this call returns an error RESOURCE_DOES_NOT_EXIST."
    with pytest.raises(ResourceDoesNotExist):
        w.workspace.get_status("/Repos/nobody-made-this")


def test_get_status_tells_folders_git_folders_files_and_notebooks_apart(w, repo):
    # ObjectInfo.object_type: "NOTEBOOK ... DIRECTORY: directory ... FILE: file ... REPO: repository"
    w.workspace.mkdirs("/Repos/team-c")
    w.repos.create(url=str(repo), provider="gitHub", path="/Repos/team-c/proj")
    kinds = {
        path: w.workspace.get_status(path).object_type
        for path in (
            "/Repos/team-c",
            "/Repos/team-c/proj",
            "/Repos/team-c/proj/steps",
            "/Repos/team-c/proj/steps/hello.py",
            "/Repos/team-c/proj/notebooks/exits",
            "/Workspace/Repos/team-c/proj",
        )
    }
    assert list(kinds.values()) == [
        ObjectType.DIRECTORY,
        ObjectType.REPO,
        ObjectType.DIRECTORY,
        ObjectType.FILE,
        ObjectType.NOTEBOOK,
        ObjectType.REPO,
    ]


# --- Repos API: the parent folder ------------------------------------------------------------------


def test_a_git_folder_needs_its_parent_folder(w, repo):
    # Databricks answers repos/create in a folder nobody made with 404 RESOURCE_DOES_NOT_EXIST
    # "Parent directory /Repos/<folder> does not exist." (as quoted in
    # databricks/terraform-provider-databricks#862); the fix Databricks' own tools use is to create the
    # folder first (terraform-provider-databricks#895: "Create parent directory for Repos").
    with pytest.raises(ResourceDoesNotExist, match="Parent directory /Repos/team-d does not exist"):
        w.repos.create(url=str(repo), provider="gitHub", path="/Repos/team-d/proj")
    assert [r.path for r in w.repos.list(path_prefix="/Repos/team-d")] == []
    w.workspace.mkdirs("/Repos/team-d")
    made = w.repos.create(url=str(repo), provider="gitHub", path="/Repos/team-d/proj")
    assert made.path == "/Repos/team-d/proj"


def test_the_users_own_repos_folder_exists_from_the_start(w, repo):
    # ReposAPI.create ":param path: ... If repo is created in /Repos, path must be in the format
    # /Repos/{folder}/{repo-name}." — without a path, it goes to the caller's own folder, which exists.
    made = w.repos.create(url=str(repo), provider="gitHub")
    me = w.current_user.me().user_name
    assert made.path == f"/Repos/{me}/runs-repo"
    assert w.workspace.get_status(f"/Repos/{me}").object_type == ObjectType.DIRECTORY
    w.repos.delete(made.id)


# --- runs/get-output: by task type -----------------------------------------------------------------


def test_a_notebook_returns_its_exit_value_and_no_logs(w, repo):
    # RunOutput.logs: "The output from tasks that write to standard streams (stdout/stderr) such as
    # spark_jar_task, spark_python_task, python_wheel_task. It's not supported for the notebook_task".
    # NotebookOutput.result: "The value passed to dbutils.notebook.exit()."
    run = finished_run(w, w.jobs.run_now(make_job(w, repo, "nb-exits", notebook("nb", "notebooks/exits"))).run_id)
    out = output(w, run, "nb")
    assert out.notebook_output.result == '{"metrics": {"score": 2}}'
    assert out.notebook_output.truncated is False
    assert out.logs is None and out.logs_truncated is None


def test_a_notebook_that_never_exits_has_an_empty_output(w, repo):
    # RunOutput.notebook_output: "A notebook task that terminates (either successfully or with a failure)
    # without calling dbutils.notebook.exit() is considered to have an empty output. This field is set but
    # its result value is empty." NotebookOutput.result: "This field is absent if dbutils.notebook.exit()
    # was never called."
    run = finished_run(w, w.jobs.run_now(make_job(w, repo, "nb-silent", notebook("nb", "notebooks/silent"))).run_id)
    raw = w.api_client.do("GET", "/api/2.2/jobs/runs/get-output", query={"run_id": run.tasks[0].run_id})
    assert raw["notebook_output"] == {} and "logs" not in raw


def test_a_scripts_output_is_its_logs(w, repo):
    # RunOutput.logs: "The output from tasks that write to standard streams (stdout/stderr) such as ...
    # spark_python_task" — and NotebookOutput belongs to notebook tasks only.
    run = finished_run(w, w.jobs.run_now(make_job(w, repo, "script", script("s", "steps/hello.py"))).run_id)
    out = output(w, run, "s")
    assert "hello from a script" in out.logs and out.logs_truncated is False
    assert out.notebook_output is None


def test_a_notebook_value_is_cut_to_its_first_5_mb(w, repo):
    # NotebookOutput.result: "Databricks restricts this API to return the first 5 MB of the value."
    # NotebookOutput.truncated: "Whether or not the result was truncated."
    run = finished_run(w, w.jobs.run_now(make_job(w, repo, "nb-huge", notebook("nb", "notebooks/huge"))).run_id)
    out = output(w, run, "nb")
    assert len(out.notebook_output.result) == MB5 and out.notebook_output.truncated is True


def test_logs_are_cut_to_their_last_5_mb(w, repo):
    # RunOutput.logs: "Databricks restricts this API to return the last 5 MB of these logs."
    # RunOutput.logs_truncated: "Whether the logs are truncated."
    run = finished_run(w, w.jobs.run_now(make_job(w, repo, "loud", script("s", "steps/loud.py"))).run_id)
    out = output(w, run, "s")
    assert len(out.logs.encode()) == MB5 and out.logs.endswith("THE END\n") and out.logs_truncated is True


# --- run-now's idempotency token -------------------------------------------------------------------


def test_the_same_token_returns_the_same_run(w, repo):
    # RunNow idempotency_token: "If a run with the provided token already exists, the request does not
    # create a new run but returns the ID of the existing run instead."
    job_id = make_job(w, repo, "idem-same", script("s", "steps/hello.py"))
    first = w.jobs.run_now(job_id, idempotency_token="t" * 64).run_id
    assert w.jobs.run_now(job_id, idempotency_token="t" * 64).run_id == first
    assert [r.run_id for r in w.jobs.list_runs(job_id=job_id)] == [first]


def test_a_token_longer_than_64_characters_is_refused(w, repo):
    # RunNow idempotency_token: "This token must have at most 64 characters."
    job_id = make_job(w, repo, "idem-long", script("s", "steps/hello.py"))
    with pytest.raises(InvalidParameterValue):
        w.jobs.run_now(job_id, idempotency_token="t" * 65)
    assert list(w.jobs.list_runs(job_id=job_id)) == []


def test_a_deleted_runs_token_is_refused(w, repo):
    # RunNow idempotency_token: "If a run with the provided token is deleted, an error is returned."
    job_id = make_job(w, repo, "idem-deleted", script("s", "steps/hello.py"))
    run_id = w.jobs.run_now(job_id, idempotency_token="deleted-token").run_id
    finished_run(w, run_id)
    w.jobs.delete_run(run_id)
    with pytest.raises(InvalidParameterValue, match="deleted"):
        w.jobs.run_now(job_id, idempotency_token="deleted-token")
    assert list(w.jobs.list_runs(job_id=job_id)) == []


def test_an_active_run_cannot_be_deleted(w, repo):
    # JobsAPI.delete_run: "Deletes a non-active run. Returns an error if the run is active."
    run_id = w.jobs.run_now(make_job(w, repo, "active", script("s", "steps/sleep.py"))).run_id
    with pytest.raises(DatabricksError):
        w.jobs.delete_run(run_id)
    w.jobs.cancel_run(run_id)
    finished_run(w, run_id)
    w.jobs.delete_run(run_id)
    with pytest.raises(NotFound):
        w.jobs.get_run(run_id)


# --- faults: answers lost after the write happened -------------------------------------------------


def test_a_create_whose_answer_is_dropped_is_sent_again_by_the_sdk_and_makes_two_jobs(w, sandbox, repo):
    # jobs/create has no idempotency token (JobsAPI.create takes none); the SDK retries a dropped
    # connection ("cannot connect" is retryable in databricks/sdk/_base_client.py): the stand-in
    # makes the real consequence happen, a second job of the same name.
    fault(sandbox, "POST:/api/2.2/jobs/create=apply_then_drop:1")
    make_job(w, repo, "dropped-create", script("s", "steps/hello.py"))
    assert [j.settings.name for j in w.jobs.list(name="dropped-create")] == ["dropped-create"] * 2


def test_a_run_now_whose_answer_is_dropped_is_sent_again_and_the_token_keeps_one_run(w, sandbox, repo):
    # RunNow idempotency_token: "If you specify the idempotency token, upon failure you can retry until
    # the request succeeds. Databricks guarantees that exactly one run is launched with that idempotency token."
    job_id = make_job(w, repo, "dropped-run-now", script("s", "steps/hello.py"))
    fault(sandbox, "POST:/api/2.2/jobs/run-now=apply_then_drop:1")
    run_id = w.jobs.run_now(job_id, idempotency_token="dropped").run_id
    assert [r.run_id for r in w.jobs.list_runs(job_id=job_id)] == [run_id]


@pytest.mark.parametrize(
    "kind, error",
    [("apply_then_504", DeadlineExceeded), ("apply_then_502", Unknown), ("apply_then_502html", DatabricksError)],
)
def test_a_gateway_error_after_the_write_leaves_the_write_done(w, sandbox, repo, kind, error):
    # A 502/504 from the gateway says nothing about the request behind it: the job may exist.
    name = f"gateway-{kind}"
    fault(sandbox, f"POST:/api/2.2/jobs/create={kind}:1")
    with pytest.raises(error):
        make_job(w, repo, name, script("s", "steps/hello.py"))
    assert [j.settings.name for j in w.jobs.list(name=name)] == [name]


@pytest.mark.parametrize(
    "kind, error, code",
    [
        ("502", Unknown, "UNKNOWN"),
        ("502html", DatabricksError, "BAD_GATEWAY"),
        ("504", DeadlineExceeded, "DEADLINE_EXCEEDED"),
    ],
)
def test_gateway_errors_reach_the_sdk_as_databricks_shows_them(w, sandbox, kind, error, code):
    fault(sandbox, f"GET:/api/2.2/jobs/list={kind}:1")
    with pytest.raises(error) as raised:
        list(w.jobs.list())
    assert raised.value.error_code == code
