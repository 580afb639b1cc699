"""The fit workflow for both models on tiny data: the features notebook as a script, then train, register,
score and judge in this process against a throw-away SQLite store (one MLflow import keeps it fast)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from fraud_detection.models import MODELS, parse_params
from fraud_detection.pipeline import prepare, register, train
from fraud_detection.validation import judge, score

ROOT = Path(__file__).resolve().parents[2]


def test_the_notebook_runs_as_a_script_with_widgets_from_arguments(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(ROOT / "notebooks" / "build_features.py"), "model_name=staging.fraud.ato_risk",
         "dataset=tiny", "workdir=work"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert (result["model"], result["dataset"], result["rows"]) == ("ato_risk", "tiny", 800)
    assert (tmp_path / "work" / "ato_risk" / "data" / "train.csv").exists()  # relative to where it ran


@pytest.fixture(scope="module")
def mlflow_store(tmp_path_factory):
    import mlflow

    where = tmp_path_factory.mktemp("mlflow")
    previous = os.getcwd()
    os.chdir(where)  # the SQLite store's default artifact root is ./mlruns
    mlflow.set_tracking_uri(f"sqlite:///{where / 'mlflow.db'}")
    yield where
    os.chdir(previous)


@pytest.mark.parametrize("model", list(MODELS))
def test_fit_then_validate_one_model(model, mlflow_store):
    spec, work = MODELS[model], mlflow_store / model
    prepare(spec, "tiny", work)
    trained = train(spec, work, parse_params(spec, ["n_estimators=15"]))
    assert trained["model"] == model and trained["params"]["n_estimators"] == 15
    registered = register(spec, work, model, lineage={"repo": "acme/fraud-detection"})
    assert (registered["version"], registered["mlflow_run_id"]) == ("1", trained["mlflow_run_id"])

    predictions = score(spec, model, "1", champion=f"models:/{model}@champion")
    verdict = judge(spec, model, "1", predictions, floors=spec.floors)
    assert verdict["passed"] is True and verdict["metrics"] == trained["metrics"]  # same rows, same numbers
    assert verdict["champion_metrics"] is None  # no champion yet
    other = next(name for name in MODELS if name != model)
    assert judge(MODELS[other], other, "1", predictions)["checks"]["same_model"] is False
