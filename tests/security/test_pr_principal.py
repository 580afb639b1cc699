"""Attack (issue #18, step 1): a PR's `/train toy` code writes the staging or prod registry.

alice's open PR changes `steps/prepare.py`. Her train job is made as the bot makes it (workers.jobs.spec from
the demo's config, examples/demo.config.toml, through the bot's workspace gateway) on the sandbox workspace
seeded as the demo seeds it (devstack/principals.py), and run. Her code has only what the workspace gives a
task -- `DATABRICKS_HOST` and `DATABRICKS_TOKEN` -- and with them tries, through MLflow's own Unity Catalog
client and the raw API, to register her model into `staging.ml.churn` and `prod.ml.churn`, to move prod's
`champion`, to tag the staging version (`job_run_id`, the claim lineage read) and to make herself a job that
runs as the staging principal. Each must be refused with PERMISSION_DENIED, and the registries unchanged.

Before: every task got the workspace's (the bot's) token and `dev`/`staging` shared one principal: all of it
worked. Now each stage's jobs run as their own service principal, holding only the grants seeded for them.
"""

from __future__ import annotations

import json
import os
import time
import tomllib
import urllib.request
from pathlib import Path
from string import Template

import pytest

from core.config import parse_config
from devstack import ROOT, principals
from devstack.mlrepo import make_repo
from devstack.sandboxes import WORKSPACE_TOKEN, start_workspace
from workers.gateways.workspace import Workspace
from workers.jobs.spec import job_settings

UC = "/api/2.0/mlflow/unity-catalog"
STAGING, PROD = "staging.ml.churn", "prod.ml.churn"
ATTACK = Template(r"""
import json, os, urllib.error, urllib.request
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

HOST, TOKEN = os.environ["DATABRICKS_HOST"], os.environ["DATABRICKS_TOKEN"]


def api(method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Authorization": "Bearer " + TOKEN, "Content-Type": "application/json"}
    try:
        with urllib.request.urlopen(urllib.request.Request(HOST + path, data, headers, method=method)) as r:
            return "done" if method != "GET" else json.loads(r.read())
    except urllib.error.HTTPError as e:
        return json.loads(e.read() or b"{}").get("error_code", str(e.code))


def mlflow_call(fn, *args):
    try:
        fn(*args)
        return "done"
    except MlflowException as e:
        return e.error_code


uc = MlflowClient(registry_uri="databricks-uc")
version = {"source": "dbfs:/alice/model", "run_id": "alice-run"}
task = {"task_key": "t", "spark_python_task": {"python_file": "x.py"}, "existing_cluster_id": "c"}
as_staging = {"name": "alice/escalate", "run_as": {"service_principal_name": "$STAGING_SP"}, "tasks": [task]}
print(json.dumps({
    "whoami": api("GET", "/api/2.0/preview/scim/v2/Me")["userName"],
    "create a staging version": api("POST", "$UC/model-versions/create", {"name": "$STAGING", **version}),
    "create a prod version": api("POST", "$UC/model-versions/create", {"name": "$PROD", **version}),
    "create a staging model": mlflow_call(uc.create_registered_model, "staging.ml.alice"),
    "move prod's champion": mlflow_call(uc.set_registered_model_alias, "$PROD", "champion", "2"),
    "drop prod's champion": mlflow_call(uc.delete_registered_model_alias, "$PROD", "champion"),
    "tag the staging version": mlflow_call(uc.set_model_version_tag, "$STAGING", "1", "job_run_id", "4242"),
    "tag the prod model": mlflow_call(uc.set_registered_model_tag, "$PROD", "approved_by", "bob"),
    "run a job as staging": api("POST", "/api/2.2/jobs/create", as_staging),
}))
""").substitute(UC=UC, STAGING=STAGING, PROD=PROD, STAGING_SP=principals.STAGING)


def admin_api(url: str, method: str, path: str, body: dict | None = None, token: str = WORKSPACE_TOKEN) -> dict:
    req = urllib.request.Request(
        url + path,
        data=json.dumps(body).encode() if body is not None else None,
        method=method,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read() or b"{}")


def registered(url: str, token: str, name: str, versions: int) -> None:
    """`name` created by the principal of `token`, with `versions` READY versions."""
    admin_api(url, "POST", f"{UC}/registered-models/create", {"name": name}, token)
    for n in range(1, versions + 1):
        admin_api(url, "POST", f"{UC}/model-versions/create", {"name": name, "source": "dbfs:/m", "run_id": "r"}, token)
        admin_api(url, "POST", f"{UC}/model-versions/finalize", {"name": name, "version": str(n)}, token)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """The demo's workspace: three service principals, their grants, and what staging and prod hold already."""
    service = start_workspace(
        tmp_path_factory.mktemp("ws"), mlflow_registry_uri="databricks-uc", service_principals=principals.TOKENS
    )
    try:
        principals.seed_grants(service.url, WORKSPACE_TOKEN)
        registered(service.url, principals.TOKENS[principals.STAGING], STAGING, 1)  # bob's merged PR, trained
        registered(service.url, principals.TOKENS[principals.PROD], PROD, 2)  # an earlier release and its rival
        admin_api(
            service.url, "POST", f"{UC}/registered-models/alias", {"name": PROD, "alias": "champion", "version": "1"}
        )
        yield service
    finally:
        service.stop()


@pytest.fixture(scope="module")
def alice_branch(tmp_path_factory) -> Path:
    """acme/churn-model with alice's `steps/prepare.py`: the first task of her `/train toy` run."""
    return make_repo(tmp_path_factory.mktemp("git") / "churn-model", {"steps/prepare.py": ATTACK}, "Better features")


def demo_settings(workspace_url: str, git_url: Path):
    text = Template((ROOT / "examples" / "demo.config.toml").read_text()).substitute(
        WEB_URL="http://127.0.0.1:9",
        FORGE_URL="http://127.0.0.1:9",
        MLFLOW_URL="http://127.0.0.1:9",
        SLACK_URL="http://127.0.0.1:9",
        WORKSPACE_URL=workspace_url,
    )
    data = tomllib.loads(text)
    data["repos"][0]["git_url"] = str(git_url)
    return parse_config(data, "demo.config.toml")


def train_toy(workspace, alice_branch, monkeypatch) -> dict:
    """alice's `/train toy`, as the bot starts it; what her prepare step printed."""
    monkeypatch.setenv("DATABRICKS_TOKEN", WORKSPACE_TOKEN)  # the bot's token_env
    settings = demo_settings(workspace.url, alice_branch)
    repo = settings.repos[0]
    sha = os.popen(f"git -C {alice_branch} rev-parse HEAD").read().strip()
    bot = Workspace("dev", settings.environments["dev"])
    job_id = bot.create_job(job_settings(settings, repo, "feature/better-features", "train", sha))
    run_id = bot.run_now(job_id, {"dataset": "toy", "sha": sha, "pr": "1"}, token=f"attack-{time.time_ns()}")
    deadline = time.monotonic() + 120
    while not bot.get_run(run_id).terminal:
        assert time.monotonic() < deadline, "the train run did not finish"
        time.sleep(0.3)
    prepare = next(t for t in bot.client.jobs.get_run(run_id).tasks if t.task_key == "prepare")
    logs = bot.client.jobs.get_run_output(prepare.run_id).logs or ""
    lines = [line for line in logs.splitlines() if line.startswith("{")]
    assert lines, f"alice's prepare step printed nothing: {logs[-2000:]}"
    return json.loads(lines[-1])


def test_a_pr_jobs_code_cannot_write_the_staging_or_prod_registry(workspace, alice_branch, monkeypatch):
    tried = train_toy(workspace, alice_branch, monkeypatch)
    whoami = tried.pop("whoami")
    assert tried == {attack: "PERMISSION_DENIED" for attack in tried}, tried
    assert len(tried) == 8
    assert whoami == principals.DEV  # her task held the dev principal's token: not the bot's, not staging's
    # and nothing changed where the bot looks: versions, the champion, the tags lineage reads
    staging = admin_api(workspace.url, "GET", f"{UC}/model-versions/search?filter=name%3D%27{STAGING}%27")
    assert [v["version"] for v in staging["model_versions"]] == ["1"]
    prod = admin_api(workspace.url, "GET", f"{UC}/registered-models/get?name={PROD}")["registered_model"]
    assert prod["aliases"] == [{"alias": "champion", "version": "1"}] and prod["tags"] == []
    tags = admin_api(workspace.url, "GET", f"{UC}/model-versions/get?name={STAGING}&version=1")["model_version"]
    assert tags["tags"] == []
