"""What a task finds in its environment on the sandbox workspace: what a job on Databricks has implicitly.

A job runs as its run-as principal without configuration: the task's `WorkspaceClient()` and MLflow's
`databricks-uc` registry reach the workspace that runs it. The stand-in for that is `DATABRICKS_HOST` = the
workspace's own URL and `DATABRICKS_TOKEN` = its token; `--mlflow-registry-uri` becomes
`MLFLOW_REGISTRY_URI` as `--mlflow-tracking-uri` becomes `MLFLOW_TRACKING_URI`.
"""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from databricks.sdk import WorkspaceClient
from databricks.sdk.service import compute, jobs

from devstack.mlrepo import make_repo
from devstack.sandboxes import WORKSPACE_TOKEN, start_workspace
from tests.support.stacks import workspace_client

CLUSTER = compute.ClusterSpec(spark_version="15.4.x-scala2.12", node_type_id="i3.xlarge", num_workers=1)
SHOWN = ["DATABRICKS_HOST", "DATABRICKS_TOKEN", "DATABRICKS_CLIENT_ID", "MLFLOW_REGISTRY_URI", "MLFLOW_TRACKING_URI"]
FILES = {
    "steps/env.py": (f"import json, os\nprint(json.dumps({{k: os.environ.get(k) for k in {SHOWN!r}}}))\n"),
    # The Unity Catalog registry through MLflow's own client, configured by nothing but the task environment.
    "steps/register_uc.py": (
        "import json\n"
        "from mlflow import MlflowClient\n"
        "model = MlflowClient().create_registered_model('dev.ml.from_task', description='made by a task')\n"
        "print(json.dumps({'name': model.name}))\n"
    ),
}


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    return make_repo(tmp_path_factory.mktemp("git") / "env-repo", FILES, "env")


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    # Credentials for some other workspace in the sandbox's own environment must not reach its tasks.
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DATABRICKS_HOST", "https://elsewhere.cloud.databricks.com")
        mp.setenv("DATABRICKS_TOKEN", "dapi-elsewhere")
        mp.setenv("DATABRICKS_CLIENT_ID", "someone-else")
        mp.delenv("MLFLOW_REGISTRY_URI", raising=False)
        service = start_workspace(
            tmp_path_factory.mktemp("ws"),
            mlflow_tracking_uri="sqlite:///mlflow.db",
            mlflow_registry_uri="databricks-uc",
        )
    yield service
    service.stop()


@pytest.fixture(scope="module")
def w(sandbox) -> WorkspaceClient:
    return workspace_client(sandbox.url, 15)


def run_task(w: WorkspaceClient, repo: Path, file: str) -> tuple[jobs.Run, dict]:
    """Run `file` as the one spark_python_task of a new job; (the run, the last JSON line it printed)."""
    source = jobs.GitSource(git_url=str(repo), git_provider=jobs.GitProvider.GIT_HUB, git_branch="main")
    task = jobs.Task(task_key="t", spark_python_task=jobs.SparkPythonTask(python_file=file), new_cluster=CLUSTER)
    job_id = w.jobs.create(name=f"env-{file}", git_source=source, tasks=[task]).job_id
    run_id = w.jobs.run_now(job_id).run_id
    deadline = time.monotonic() + 120
    while (run := w.jobs.get_run(run_id)).state.life_cycle_state.value not in ("TERMINATED", "INTERNAL_ERROR"):
        assert time.monotonic() < deadline, f"run {run_id} did not finish"
        time.sleep(0.2)
    out = w.jobs.get_run_output(run.tasks[0].run_id)
    lines = (out.logs or "").strip().splitlines()
    return run, json.loads(lines[-1]) if lines and lines[-1].startswith("{") else {"logs": out.logs}


def test_a_task_gets_the_workspace_url_token_and_registry_uri(w, repo, sandbox):
    run, env = run_task(w, repo, "steps/env.py")
    assert run.state.result_state == jobs.RunResultState.SUCCESS, env
    assert env == {
        "DATABRICKS_HOST": sandbox.url,
        "DATABRICKS_TOKEN": WORKSPACE_TOKEN,
        "DATABRICKS_CLIENT_ID": None,
        "MLFLOW_REGISTRY_URI": "databricks-uc",
        "MLFLOW_TRACKING_URI": "sqlite:///mlflow.db",
    }


def test_a_task_registers_in_unity_catalog_without_configuration(w, repo, sandbox):
    run, printed = run_task(w, repo, "steps/register_uc.py")
    assert run.state.result_state == jobs.RunResultState.SUCCESS, printed
    assert printed == {"name": "dev.ml.from_task"}
    query = urllib.parse.urlencode({"name": "dev.ml.from_task"})
    req = urllib.request.Request(
        f"{sandbox.url}/api/2.0/mlflow/unity-catalog/registered-models/get?{query}",
        headers={"Authorization": f"Bearer {WORKSPACE_TOKEN}"},
    )
    with urllib.request.urlopen(req, timeout=10) as r:
        assert json.loads(r.read())["registered_model"]["description"] == "made by a task"
