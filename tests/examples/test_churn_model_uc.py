"""The example project's register, validate and deploy steps on Unity Catalog, as a release train runs them.

Every step is a real subprocess (as the sandbox workspace runs a spark_python_task) with what a Databricks task
has: `DATABRICKS_HOST`/`DATABRICKS_TOKEN` for a real sandbox workspace process, `MLFLOW_REGISTRY_URI=databricks-uc`
(MLflow's own UC client against the workspace's UC endpoints) and `MLFLOW_TRACKING_URI` on a real MLflow server.
A PR trains into dev, a merge into staging; validate scores the staging candidate and the prod champion on the
same rows; deploy moves the environment's alias. Tiny data, few trees: it stays fast.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from mlflow import MlflowClient

from devstack.mlflow import start_mlflow
from devstack.sandboxes import WORKSPACE_TOKEN, start_workspace
from tests.examples.test_churn_model import EXAMPLE, LINEAGE, Step, lineage_args, run_step
from tests.support.stacks import service_fixture

DEV, STAGING, PROD = "dev.ml.churn", "staging.ml.churn", "prod.ml.churn"
CHAMPION = f"models:/{PROD}@champion"
JOB_RUN_ID = "77"


mlflow_server = service_fixture(start_mlflow, "mlflow")


workspace = service_fixture(start_workspace, "uc")


@pytest.fixture(scope="module")
def checkout(tmp_path_factory) -> Path:
    dest = tmp_path_factory.mktemp("checkout") / "churn-model"
    shutil.copytree(EXAMPLE, dest, ignore=shutil.ignore_patterns(".mlops-run", "__pycache__", "mlruns", "*.egg-info"))
    return dest


@pytest.fixture(scope="module")
def step_env(mlflow_server, workspace, checkout) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "DATABRICKS_"))}
    env.update(
        {
            "DATABRICKS_HOST": workspace.url,
            "DATABRICKS_TOKEN": WORKSPACE_TOKEN,
            "MLFLOW_REGISTRY_URI": "databricks-uc",
            "MLFLOW_TRACKING_URI": mlflow_server.url,
            "MLFLOW_DISABLE_TELEMETRY": "true",
            "DATABRICKS_JOB_ID": "9",
            "DATABRICKS_JOB_RUN_ID": JOB_RUN_ID,
            "PYTHONPATH": os.pathsep.join([str(checkout), str(checkout / "src")]),
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


@pytest.fixture(scope="module")
def uc(mlflow_server, workspace):
    """The registry as the bot sees it: MLflow's UC client on the workspace, tracking on the server."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DATABRICKS_HOST", workspace.url)
        mp.setenv("DATABRICKS_TOKEN", WORKSPACE_TOKEN)
        # Copying a version downloads its source through the process-wide URIs, not the client's.
        mp.setenv("MLFLOW_REGISTRY_URI", "databricks-uc")
        mp.setenv("MLFLOW_TRACKING_URI", mlflow_server.url)
        yield MlflowClient(tracking_uri=mlflow_server.url, registry_uri="databricks-uc")


def validate_candidate(checkout: Path, step_env: dict[str, str], dataset: str) -> Step:
    """The validate step on staging's version 1 against prod's champion, on `dataset` ("" = the generated rows)."""
    args = ["--model-name", STAGING, "--version", "1", "--champion", CHAMPION, "--dataset", dataset]
    return run_step(checkout, step_env, "validate", *args)


def ok(step: Step) -> dict:
    assert step.code == 0, step
    assert step.result is not None, f"no JSON line: {step!r}"
    return step.result


def train(checkout: Path, env: dict[str, str], workdir: str, *params: str) -> str:
    """prepare + train on tiny data into `workdir`; the MLflow run id."""
    ok(run_step(checkout, env, "prepare", "--dataset", "tiny", "--workdir", workdir))
    return ok(run_step(checkout, env, "train", "--workdir", workdir, *params))["mlflow_run_id"]


def test_release_train_on_unity_catalog(checkout, step_env, uc):
    pr_run = train(checkout, step_env, "pr", "--params", "n_estimators=20,max_depth=3")
    main_run = train(checkout, step_env, "main", "--params", "n_estimators=30,max_depth=3")

    # A PR trains into dev, a merge into staging: three-level names, lineage as version tags.
    registered = ok(run_step(checkout, step_env, "register", "--workdir", "pr", "--model-name", DEV, *lineage_args()))
    assert (registered["model_name"], registered["version"]) == (DEV, "1")
    staged = ok(
        run_step(
            checkout, step_env, "register", "--workdir", "main", "--model-name", STAGING, *lineage_args(), "--pr", ""
        )
    )
    assert (staged["model_name"], staged["version"], staged["mlflow_run_id"]) == (STAGING, "1", main_run)
    version = uc.get_model_version(DEV, "1")
    assert version.run_id == pr_run
    assert {k: version.tags.get(k) for k in LINEAGE} == LINEAGE and version.tags["job_run_id"] == JOB_RUN_ID
    assert "pr" not in uc.get_model_version(STAGING, "1").tags  # empty values are not recorded

    # First release: prod.ml.churn does not exist yet, so there is no champion; the candidate alone passes.
    first = validate_candidate(checkout, step_env, "")
    result = ok(first)
    assert result["passed"] is True and all(result["checks"].values())
    assert (result["champion"], result["champion_version"], result["champion_metrics"]) == (CHAMPION, "", None)
    assert result["data"].startswith("validation set: 2,000 generated rows, seed ") and result["data"].endswith("(toy)")
    assert "no champion yet" in first.stdout

    # The approved version is copied into prod and becomes the champion (what the bot does), then deployed.
    uc.create_registered_model(PROD)
    uc.create_model_version(PROD, source=f"models:/{DEV}/1", run_id=pr_run)
    uc.set_registered_model_alias(PROD, "champion", "1")
    deployed = ok(
        run_step(checkout, step_env, "deploy", "--model-name", PROD, "--version", "1", "--environment", "prod")
    )
    assert (deployed["alias"], deployed["version"], deployed["previous_version"]) == ("prod", "1", None)
    assert uc.get_model_version_by_alias(PROD, "prod").version == "1"
    assert uc.get_model_version(PROD, "1").tags["deployed_prod_at"] == deployed["deployed_at"]

    # The next release: the staging candidate and the prod champion on the same rows.
    result = ok(validate_candidate(checkout, step_env, "tiny"))
    assert result["passed"] is True and result["champion"] == CHAMPION and result["champion_version"] == "1"
    assert set(result["champion_metrics"]) == set(result["metrics"]) == set(result["delta"])
    assert result["metrics"] != result["champion_metrics"]  # two different models
    assert result["rows"] == 400 and result["data"].endswith("(tiny)")
    run = uc.get_run(result["validation_run_id"])
    assert run.data.tags["validation_of"] == f"{STAGING}/1" and run.data.tags["champion_version"] == "1"
    assert run.data.metrics["champion_accuracy"] == result["champion_metrics"]["accuracy"]

    # Deploy works in every environment, on every stage's name.
    for name, environment in [(DEV, "dev"), (STAGING, "staging")]:
        deployed = ok(
            run_step(checkout, step_env, "deploy", "--model-name", name, "--version", "1", "--environment", environment)
        )
        assert uc.get_model_version_by_alias(name, environment).version == "1"
        assert uc.get_model_version(name, "1").tags[f"deployed_{environment}_at"] == deployed["deployed_at"]
