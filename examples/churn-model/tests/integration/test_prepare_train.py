"""prepare -> train -> evaluate on the tiny dataset, as subprocesses, logging to a throw-away
SQLite tracking store in a temp dir (no server needed)."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _run(step, *args, env, cwd):
    # cwd is the temp dir, so the local store's default artifact root (./mlruns) lands there.
    proc = subprocess.run(
        [sys.executable, str(ROOT / "steps" / f"{step}.py"), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_prepare_train_evaluate_tiny(tmp_path):
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "src")]),
        "MLFLOW_DISABLE_TELEMETRY": "true",
    }
    workdir = tmp_path / "work"
    prepared = _run("prepare", "--dataset", "tiny", "--workdir", str(workdir), env=env, cwd=tmp_path)
    assert prepared["rows"] == 400
    assert (workdir / "data" / "train.csv").exists()

    trained = _run("train", "--workdir", str(workdir), "--param", "n_estimators=20", env=env, cwd=tmp_path)
    assert trained["params"]["n_estimators"] == 20
    assert json.loads((workdir / "train.json").read_text())["mlflow_run_id"] == trained["mlflow_run_id"]

    evaluated = _run("evaluate", "--workdir", str(workdir), env=env, cwd=tmp_path)
    assert evaluated["mlflow_run_id"] == trained["mlflow_run_id"]
    assert evaluated["metrics"]["accuracy"] > 0.6
    assert (workdir / "plots" / "confusion_matrix.png").exists()
