"""What a job on Databricks gives MLflow's Unity Catalog client, on this machine: the UC registry on the
sandbox workspace, a local sqlite tracking store, and a small model with the signature UC requires; and a config
whose models' registries are in Unity Catalog."""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import mlflow
import numpy as np
import pytest
from mlflow import MlflowClient
from mlflow.models import infer_signature
from sklearn.linear_model import LogisticRegression

from core.config import Settings, parse_config
from devstack import ROOT
from devstack.sandboxes import WORKSPACE_TOKEN

X = np.array([[0.0, 1.0], [1.0, 0.0], [0.2, 0.9], [0.9, 0.1], [0.1, 0.8], [0.8, 0.3]])
Y = np.array([0, 1, 0, 1, 0, 1])


@contextmanager
def uc_client_env(workspace_url: str, tmp: Path) -> Iterator[pytest.MonkeyPatch]:
    """Environment for the UC client against `workspace_url` (restored afterwards); yields the monkeypatch."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DATABRICKS_HOST", workspace_url)
        mp.setenv("DATABRICKS_TOKEN", WORKSPACE_TOKEN)
        mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp / 'mlflow.db'}")
        mp.setenv("MLFLOW_REGISTRY_URI", "databricks-uc")
        mp.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # a refusal is an answer: fail fast, never back off
        mp.setenv("MLFLOW_DATABRICKS_ENDPOINT_HTTP_RETRY_TIMEOUT", "10")
        mp.setenv("MLFLOW_ENABLE_ASYNC_LOGGING", "false")
        mp.chdir(tmp)
        mlflow.set_experiment(experiment_id=MlflowClient().create_experiment("uc", artifact_location=str(tmp / "art")))
        yield mp


def log_model(**options) -> mlflow.models.model.ModelInfo:
    """A small sklearn model with the signature Unity Catalog requires, logged to the local tracking store."""
    model = LogisticRegression().fit(X, Y)
    with mlflow.start_run():
        return mlflow.sklearn.log_model(model, name="model", signature=infer_signature(X, model.predict(X)), **options)


def uc_settings(staging_names: list[str], tracking_uri: str = "databricks") -> Settings:
    """config.toml's churn-model once per name in `staging_names` (its staging registry: what polling watches),
    every registry in Unity Catalog."""
    data = tomllib.loads((ROOT / "config.toml").read_text())
    data["mlflow"] = {"tracking_uri": tracking_uri, "registry_uri": "databricks-uc"}
    template, data["models"] = data["models"]["churn-model"], {}
    for n, staging in enumerate(staging_names):
        names = {"dev": f"dev.ml.m{n}", "staging": staging, "prod": f"prod.ml.m{n}"}
        stages = [{**stage, "registry_name": names[stage["name"]]} for stage in template["stages"]]
        data["models"][f"m{n}"] = {**template, "stages": stages}
    return parse_config(data)
