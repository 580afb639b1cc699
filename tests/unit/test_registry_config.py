"""[mlflow] registry_uri: MLflow's own defaults; under Unity Catalog every release stage's registry name has
three levels, and there are no MLflow registry stages (promote_stage)."""

import re
import tomllib
from pathlib import Path

import pytest

from core.config import ConfigError, parse_config

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


def stage_registries(data: dict, model: str, *names: str) -> dict:
    """Write each stage's registry_name (dev, staging, prod, in config.toml's order)."""
    for stage, name in zip(data["models"][model]["stages"], names, strict=True):
        stage["registry_name"] = name
    return data


@pytest.mark.parametrize(
    "name, first",
    [
        ("churn-model", "churn-model_dev"),
        ("ml.churn", "ml.churn_dev"),
        ("a.b.c.d", "a.b.c.d_dev"),
        ("prod..churn", "prod..churn_dev"),
    ],
)
def test_a_stage_registry_name_under_unity_catalog_has_three_levels(name, first):
    # the stages' default names derive from the model's: <model>_dev, <model>_staging, <model>
    message = rf"models\.{re.escape(name)}\.stages\[0\]\.registry_name: with \[mlflow\] registry_uri = 'databricks-uc' "
    with pytest.raises(ConfigError, match=message + rf"a registry name has three levels.*{re.escape(first)}"):
        parse_config(uc_models(example(registry_uri="databricks-uc"), name))


def test_a_model_named_freely_is_fine_when_its_stages_name_three_level_registries():
    data = stage_registries(
        example(registry_uri="databricks-uc"), "churn-model", "dev.ml.churn", "staging.ml.churn", "prod.ml.churn"
    )
    settings = parse_config(data)
    assert [s.registry_name for s in settings.stages("churn-model")] == [
        "dev.ml.churn",
        "staging.ml.churn",
        "prod.ml.churn",
    ]


def test_one_stage_registry_name_that_is_not_three_level_is_refused():
    data = stage_registries(
        example(registry_uri="databricks-uc"), "churn-model", "dev.ml.churn", "ml.churn", "prod.ml.churn"
    )
    with pytest.raises(ConfigError, match=r"models\.churn-model\.stages\[1\]\.registry_name: .*got 'ml\.churn'"):
        parse_config(data)


def test_a_three_level_model_name_gives_three_level_stage_registries():
    settings = parse_config(uc_models(example(registry_uri="databricks-uc"), "prod.ml.churn"))
    assert [s.registry_name for s in settings.stages("prod.ml.churn")] == [
        "prod.ml.churn_dev",
        "prod.ml.churn_staging",
        "prod.ml.churn",
    ]


def test_unity_catalog_has_no_stages():
    data = uc_models(example(registry_uri="databricks-uc", promote_stage="Production"), "prod.ml.churn")
    with pytest.raises(ConfigError, match="mlflow: promote_stage: Unity Catalog has no stages"):
        parse_config(data)


def test_two_level_names_stay_fine_outside_unity_catalog():
    assert "ml.churn" in parse_config(uc_models(example(), "ml.churn")).models
