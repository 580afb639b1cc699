"""Links to the right UI per kind of tracking/registry URI (shapes: workers/gateways/links.py)."""

import pytest

from workers.gateways.links import kind, run_link, version_link

HOST = "https://adb-1111111111111111.11.azuredatabricks.net"


@pytest.mark.parametrize(
    "uri, expected",
    [
        ("http://127.0.0.1:5000", "oss"),
        ("https://mlflow.acme.com/", "oss"),
        ("databricks", "databricks"),
        ("databricks://prod-profile", "databricks"),
        ("databricks-uc", "databricks-uc"),
        ("databricks-uc://prod-profile", "databricks-uc"),
        ("sqlite:///tmp/mlflow.db", "none"),
        ("file:///tmp/mlruns", "none"),
    ],
)
def test_kind(uri, expected):
    assert kind(uri) == expected


@pytest.mark.parametrize(
    "tracking, host, expected",
    [
        ("http://127.0.0.1:5000", "", "http://127.0.0.1:5000/#/experiments/7/runs/abc"),
        ("https://mlflow.acme.com/", HOST, "https://mlflow.acme.com/#/experiments/7/runs/abc"),
        ("databricks", HOST, f"{HOST}/ml/experiments/7/runs/abc"),
        ("databricks://prod", HOST + "/", f"{HOST}/ml/experiments/7/runs/abc"),
        ("databricks", "", ""),  # no host known: no link rather than a wrong one
        ("sqlite:///tmp/mlflow.db", HOST, ""),  # a local store has no UI
    ],
)
def test_run_link(tracking, host, expected):
    assert run_link(tracking, host, "7", "abc") == expected


def test_no_run_link_without_experiment_or_run():
    assert run_link("http://127.0.0.1:5000", "", "", "abc") == run_link("http://127.0.0.1:5000", "", "7", "") == ""


@pytest.mark.parametrize(
    "registry, host, model, expected",
    [
        ("http://127.0.0.1:5000", "", "churn-model", "http://127.0.0.1:5000/#/models/churn-model/versions/3"),
        ("http://127.0.0.1:5000", "", "a b/c", "http://127.0.0.1:5000/#/models/a%20b%2Fc/versions/3"),
        ("databricks-uc", HOST, "prod.ml.churn", f"{HOST}/explore/data/models/prod/ml/churn/version/3"),
        ("databricks-uc://prod", HOST, "prod.ml.churn", f"{HOST}/explore/data/models/prod/ml/churn/version/3"),
        ("databricks-uc", HOST, "ml.churn", ""),  # not a Unity Catalog name
        ("databricks-uc", "", "prod.ml.churn", ""),
        ("databricks", HOST, "churn-model", f"{HOST}#mlflow/models/churn-model/versions/3"),
        ("sqlite:///tmp/mlflow.db", HOST, "churn-model", ""),
    ],
)
def test_version_link(registry, host, model, expected):
    assert version_link(registry, host, model, "3") == expected
