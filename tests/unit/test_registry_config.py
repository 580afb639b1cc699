"""[mlflow] registry_uri: MLflow's own defaults, Unity Catalog's three-level names and no stages."""

import tomllib
from pathlib import Path

import pytest

from bot.config import ConfigError, parse_config

ROOT = Path(__file__).resolve().parents[2]


def example(**mlflow) -> dict:
    data = tomllib.loads((ROOT / "config.toml").read_text())
    data["mlflow"] = {k: v for k, v in {**data["mlflow"], **mlflow}.items() if v is not None}
    return data


def uc_models(data: dict, *names: str) -> dict:
    spec = data["models"].pop("churn-model")
    data["models"] = {name: spec for name in names}
    return data


@pytest.mark.parametrize(
    "tracking, registry, expected, polled",
    [
        ("http://127.0.0.1:5000", None, "http://127.0.0.1:5000", False),  # MLflow OSS: the tracking server
        ("databricks", None, "databricks-uc", True),  # on Databricks: Unity Catalog, polled
        ("databricks://prod", None, "databricks-uc", True),
        ("databricks", "databricks", "databricks", False),  # the legacy workspace registry, on request
        ("sqlite:///tmp/m.db", "databricks-uc", "databricks-uc", True),
    ],
)
def test_the_registry_defaults_as_mlflow_does(tracking, registry, expected, polled):
    data = example(tracking_uri=tracking, registry_uri=registry)
    if expected == "databricks-uc":
        uc_models(data, "prod.ml.churn")
    mlflow = parse_config(data).mlflow
    assert (mlflow.registry_uri, mlflow.uc, mlflow.poll) == (expected, expected == "databricks-uc", polled)


def test_polling_can_be_turned_off_on_unity_catalog():
    data = uc_models(example(tracking_uri="databricks", poll=False), "prod.ml.churn")
    assert parse_config(data).mlflow.poll is False


@pytest.mark.parametrize("name", ["churn-model", "ml.churn", "a.b.c.d", "prod..churn"])
def test_a_model_name_under_unity_catalog_has_three_levels(name):
    with pytest.raises(ConfigError, match=rf"models\.{name}: with \[mlflow\] registry_uri = 'databricks-uc'"):
        parse_config(uc_models(example(registry_uri="databricks-uc"), name))


def test_unity_catalog_has_no_stages():
    data = uc_models(example(registry_uri="databricks-uc", promote_stage="Production"), "prod.ml.churn")
    with pytest.raises(ConfigError, match="mlflow: promote_stage: Unity Catalog has no stages"):
        parse_config(data)


def test_two_level_names_stay_fine_outside_unity_catalog():
    assert "ml.churn" in parse_config(uc_models(example(), "ml.churn")).models
