"""The example ML project (examples/churn-model) against a real local MLflow server.

Every step runs as a real subprocess, the way the sandbox workspace runs a spark_python_task:
`python steps/<step>.py <parameters>` with cwd = a checkout of the project, PYTHONPATH =
checkout and checkout/src, MLFLOW_TRACKING_URI and the DATABRICKS_* task environment.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from devstack.mlflow import start_mlflow
from tests.support.receivers import Receiver
from tests.support.stacks import service_fixture

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "churn-model"
MODEL = "churn-model"
JOB_RUN_ID = "42"
LINEAGE = {
    "repo": "acme/churn-model",
    "branch": "feature/better-trees",
    "commit": "3f2c1e0d9b8a7f6e5d4c3b2a1f0e9d8c7b6a5f4e",
    "pr": "17",
    "triggered_by": "alice",
}


mlflow_server = service_fixture(start_mlflow, "mlflow")


@pytest.fixture(scope="module")
def client(mlflow_server):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=mlflow_server.url, registry_uri=mlflow_server.url)


@pytest.fixture(scope="module")
def checkout(tmp_path_factory) -> Path:
    dest = tmp_path_factory.mktemp("checkout") / "churn-model"
    shutil.copytree(
        EXAMPLE,
        dest,
        ignore=shutil.ignore_patterns(
            ".mlops-run", "__pycache__", "mlruns", "mlartifacts", "*.egg-info", ".pytest_cache"
        ),
    )
    return dest


@pytest.fixture(scope="module")
def step_env(mlflow_server, checkout) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "DATABRICKS_"))}
    env.update(
        {
            "MLFLOW_TRACKING_URI": mlflow_server.url,
            "MLFLOW_DISABLE_TELEMETRY": "true",
            "DATABRICKS_JOB_ID": "7",
            "DATABRICKS_JOB_RUN_ID": JOB_RUN_ID,
            "PYTHONPATH": os.pathsep.join([str(checkout), str(checkout / "src")]),
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


class Step:
    def __init__(self, proc: subprocess.CompletedProcess):
        self.proc = proc
        self.code = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr
        lines = proc.stdout.strip().splitlines()
        self.result = json.loads(lines[-1]) if lines and lines[-1].startswith("{") else None

    def __repr__(self) -> str:
        return f"exit {self.code}\n--- stdout\n{self.stdout}\n--- stderr\n{self.stderr[-4000:]}"


_task_runs = itertools.count(1000)


def run_step(checkout: Path, env: dict[str, str], step: str, *args: str) -> Step:
    """`python steps/<step>.py args...` as the sandbox runs a spark_python_task."""
    task_env = {**env, "DATABRICKS_TASK_KEY": step, "DATABRICKS_TASK_RUN_ID": str(next(_task_runs))}
    proc = subprocess.run(
        [sys.executable, f"steps/{step}.py", *args],
        cwd=checkout,
        env=task_env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    return Step(proc)


def lineage_args(lineage: dict[str, str] = LINEAGE) -> list[str]:
    return [
        "--repo",
        lineage["repo"],
        "--branch",
        lineage["branch"],
        "--commit",
        lineage["commit"],
        "--pr",
        lineage["pr"],
        "--triggered-by",
        lineage["triggered_by"],
    ]


@pytest.fixture(scope="module")
def pipeline(checkout, step_env) -> dict[str, Step]:
    """prepare -> train -> evaluate -> register on toy, in the default workdir of job run 42."""
    steps: dict[str, Step] = {}
    for name, args in [
        ("prepare", ["--dataset", "toy"]),
        ("train", ["--params", "n_estimators=80,max_depth=3", "--param", "learning_rate=0.1"]),
        ("evaluate", []),
        ("register", ["--model-name", MODEL, *lineage_args()]),
    ]:
        step = run_step(checkout, step_env, name, *args)
        assert step.code == 0, f"{name}: {step!r}"
        assert step.result is not None, f"{name} printed no JSON line: {step!r}"
        steps[name] = step
    return steps


def test_pipeline_registers_version_1_with_lineage(pipeline, client, checkout):
    prepared = pipeline["prepare"].result
    assert prepared["dataset"] == "toy" and prepared["rows"] == 2000
    assert prepared["train_rows"] + prepared["holdout_rows"] == 2000
    workdir = checkout / ".mlops-run" / JOB_RUN_ID
    assert (workdir / "data" / "train.csv").exists() and (workdir / "data" / "holdout.csv").exists()

    trained = pipeline["train"].result
    run_id = trained["mlflow_run_id"]
    assert json.loads((workdir / "train.json").read_text())["mlflow_run_id"] == run_id
    assert trained["params"]["n_estimators"] == 80 and trained["params"]["learning_rate"] == 0.1
    assert pipeline["evaluate"].result["mlflow_run_id"] == run_id

    registered = pipeline["register"].result
    assert registered["model_name"] == MODEL and registered["version"] == "1"
    assert registered["mlflow_run_id"] == run_id

    version = client.get_model_version(MODEL, "1")
    expected_tags = {**LINEAGE, "job_run_id": JOB_RUN_ID, "mlflow_run_id": run_id}
    assert {k: version.tags.get(k) for k in expected_tags} == expected_tags
    assert version.run_id == run_id

    run = client.get_run(run_id)
    assert client.get_experiment(run.info.experiment_id).name == "/churn-model"
    assert {k: run.data.tags.get(k) for k in LINEAGE} == LINEAGE
    assert run.data.tags["job_run_id"] == JOB_RUN_ID
    assert run.data.tags["databricks_job_id"] == "7"
    assert run.data.tags["registered_model_version"] == f"{MODEL}/1"
    metrics = run.data.metrics
    assert metrics["accuracy"] > 0.6
    for name in ("f1", "roc_auc", "precision", "recall", "train_accuracy", "holdout_accuracy"):
        assert 0 <= metrics[name] <= 1, name
    assert metrics["accuracy"] == pipeline["evaluate"].result["metrics"]["accuracy"]
    assert run.data.params["n_estimators"] == "80" and run.data.params["dataset"] == "toy"

    artifacts = {a.path for a in client.list_artifacts(run_id, "plots")}
    assert {"plots/confusion_matrix.png", "plots/roc_curve.png", "plots/feature_importance.png"} <= artifacts
    local = client.download_artifacts(run_id, "plots/confusion_matrix.png", str(workdir / "dl"))
    assert Path(local).read_bytes()[:4] == b"\x89PNG"


def test_validate_passes_for_the_registered_version(pipeline, client, checkout, step_env):
    step = run_step(checkout, step_env, "validate", "--model-name", MODEL, "--version", "1")
    assert step.code == 0, step
    result = step.result
    assert result["model"] == MODEL and result["version"] == "1" and result["passed"] is True
    assert all(result["checks"].values()) and {"loads", "signature", "shape", "no_nan", "min_accuracy"} <= set(
        result["checks"]
    )
    assert result["metrics"]["accuracy"] > 0.6
    runs = client.search_runs(
        [client.get_experiment_by_name("/churn-model").experiment_id], filter_string=f"tags.validation_of = '{MODEL}/1'"
    )
    assert result["validation_run_id"] in {r.info.run_id for r in runs}
    run = client.get_run(result["validation_run_id"])
    assert run.data.metrics["accuracy"] == result["metrics"]["accuracy"]
    # validate scores the same validation set evaluate did: same model, same numbers
    assert result["metrics"] == pipeline["evaluate"].result["metrics"]


def test_validate_compares_with_the_champion_on_an_mlflow_registry(pipeline, client, checkout, step_env):
    champion = f"models:/{MODEL}@champion"
    args = ["--model-name", MODEL, "--version", "1", "--champion", champion, "--dataset", ""]
    first = run_step(checkout, step_env, "validate", *args)
    assert first.code == 0, first
    assert first.result["champion_metrics"] is None and first.result["champion_version"] == ""
    assert "no champion yet" in first.stdout
    assert first.result["data"] == "validation set: 2,000 generated rows, seed 20240601 (toy)"

    client.set_registered_model_alias(MODEL, "champion", "1")
    try:
        step = run_step(checkout, step_env, "validate", *args)
    finally:
        client.delete_registered_model_alias(MODEL, "champion")
    assert step.code == 0, step
    result = step.result
    assert (result["champion"], result["champion_version"]) == (champion, "1")
    # the champion is the candidate here: the same rows give the same numbers
    assert result["champion_metrics"] == result["metrics"] == pipeline["evaluate"].result["metrics"]
    assert set(result["delta"].values()) == {0}


def test_score_then_judge_is_validate_split_where_the_model_is_loaded(pipeline, client, checkout, step_env):
    """The bot's validate workflow: score loads the models and writes predictions; judge loads none and prints
    the verdict — the same verdict validate.py gives in one process."""
    predictions = f".mlops-run/{JOB_RUN_ID}/predictions.json"
    champion = f"models:/{MODEL}@champion"
    client.set_registered_model_alias(MODEL, "champion", "1")
    try:
        scored = run_step(checkout, step_env, "score", "--model-name", MODEL, "--version", "1", "--champion", champion,
                          "--dataset", "", "--predictions", predictions)  # fmt: skip
    finally:
        client.delete_registered_model_alias(MODEL, "champion")
    assert scored.code == 0, scored
    assert "passed" not in scored.result and "metrics" not in scored.result  # the scorer judges nothing
    written = json.loads((checkout / predictions).read_text())
    assert len(written["candidate"]["pred"]) == 2000 and "labels" not in json.dumps(written)
    judged = run_step(checkout, step_env, "judge", "--predictions", predictions, "--dataset", "")
    assert judged.code == 0, judged
    result = judged.result
    assert result["passed"] is True and (result["model"], result["version"]) == (MODEL, "1")
    assert result["metrics"] == result["champion_metrics"] == pipeline["evaluate"].result["metrics"]
    assert client.get_run(result["validation_run_id"]).data.tags["validation_of"] == f"{MODEL}/1"


def test_judge_without_predictions_says_so(checkout, step_env):
    step = run_step(checkout, step_env, "judge", "--predictions", ".mlops-run/none/predictions.json")
    assert step.code == 2 and "run `python steps/score.py" in step.result["error"], step


def test_validate_fails_with_an_impossible_threshold(pipeline, checkout, step_env):
    step = run_step(checkout, step_env, "validate", "--model-name", MODEL, "--version", "1", "--min-accuracy", "0.999")
    assert step.code == 1, step
    assert step.result["passed"] is False
    assert step.result["checks"]["min_accuracy"] is False
    assert step.result["checks"]["loads"] is True


def test_validate_fails_for_a_missing_version(pipeline, checkout, step_env):
    step = run_step(checkout, step_env, "validate", "--model-name", MODEL, "--version", "99")
    assert step.code == 1, step
    assert step.result["checks"]["loads"] is False and step.result["passed"] is False


def test_deploy_sets_the_alias(pipeline, client, checkout, step_env):
    step = run_step(checkout, step_env, "deploy", "--model-name", MODEL, "--version", "1", "--environment", "staging")
    assert step.code == 0, step
    assert step.result["alias"] == "staging" and step.result["version"] == "1"
    assert client.get_model_version_by_alias(MODEL, "staging").version == "1"
    assert client.get_model_version(MODEL, "1").tags["deployed_staging_at"] == step.result["deployed_at"]


def test_run_tests_unit_passes(checkout, step_env):
    step = run_step(checkout, step_env, "run_tests", "unit")
    assert step.code == 0, step
    assert step.result["passed"] is True and step.result["tests"] > 0 and step.result["failures"] == 0


def test_unknown_param_is_a_clear_error(checkout, step_env):
    step = run_step(checkout, step_env, "train", "--param", "colour=red")
    assert step.code == 2, step
    assert "unknown parameter 'colour'" in step.stderr
    assert "n_estimators" in step.stderr  # the message names the known parameters
    bad = run_step(checkout, step_env, "train", "--params", "n_estimators=lots")
    assert bad.code == 2 and "must be int" in bad.stderr


def test_webhook_delivers_model_version_created(pipeline, client, checkout, step_env):
    receiver = Receiver("/webhooks/mlflow")
    secret = "churn-webhook-secret"
    webhook = client.create_webhook(
        name="bot",
        url=receiver.url,
        events=["model_version.created"],
        secret=secret,
    )
    try:
        time.sleep(1.2)  # the server caches its webhook list for MLFLOW_WEBHOOK_CACHE_TTL=1 s
        lineage = {**LINEAGE, "pr": "18", "triggered_by": "bob"}
        step = run_step(checkout, step_env, "register", "--model-name", MODEL, *lineage_args(lineage))
        assert step.code == 0, step
        version = step.result["version"]
        delivery = receiver.wait(lambda d: True, timeout=20)  # no delivery in 20 s: AssertionError
        headers = {k.lower(): v for k, v in delivery["headers"].items()}
        assert delivery["path"] == "/webhooks/mlflow"
        signature = headers["x-mlflow-signature"]
        signed = f"{headers['x-mlflow-delivery-id']}.{headers['x-mlflow-timestamp']}.{delivery['raw'].decode()}"
        expected = base64.b64encode(hmac.new(secret.encode(), signed.encode(), hashlib.sha256).digest()).decode()
        assert signature == f"v1,{expected}"
        payload = json.loads(delivery["raw"])
        assert (payload["entity"], payload["action"]) == ("model_version", "created")
        data = payload["data"]
        assert data["name"] == MODEL and data["version"] == version
        assert data["tags"]["pr"] == "18" and data["tags"]["triggered_by"] == "bob"
        assert data["tags"]["job_run_id"] == JOB_RUN_ID and data["tags"]["repo"] == LINEAGE["repo"]
        assert data["run_id"] == pipeline["train"].result["mlflow_run_id"]
    finally:
        client.delete_webhook(webhook.webhook_id)
        receiver.close()
