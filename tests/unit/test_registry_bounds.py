"""A slow or absent MLflow costs a worker slot seconds, not minutes: the registry gateway bounds MLflow's
HTTP calls (MLflow's defaults: 120 s a request, 7 retries with backoff factor 2), unless the operator set them."""

from mlflow.environment_variables import MLFLOW_HTTP_REQUEST_MAX_RETRIES, MLFLOW_HTTP_REQUEST_TIMEOUT

from workers.gateways.registry import Registry


def test_mlflow_calls_are_bounded_and_an_operators_setting_wins(monkeypatch):
    monkeypatch.delenv("MLFLOW_HTTP_REQUEST_TIMEOUT", raising=False)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "4")  # the operator's choice
    Registry("http://127.0.0.1:9")  # nothing listens: constructing makes no call
    assert MLFLOW_HTTP_REQUEST_TIMEOUT.get() == 15
    assert MLFLOW_HTTP_REQUEST_MAX_RETRIES.get() == 4
