"""The same registry gateway on an MLflow OSS registry (MLflow's real client and SQL store, in a sqlite file):
newest-first paging down to a watermark, aliases in one call, a copy made once, links to the MLflow UI."""

from __future__ import annotations

import pytest
from mlflow import MlflowClient

from workers.gateways import registry as gateway_module
from workers.gateways.registry import Registry


@pytest.fixture
def oss(tmp_path, monkeypatch):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri, uri)
    client.create_registered_model("churn-model")
    for _ in range(7):
        client.create_model_version("churn-model", source=str(tmp_path), run_id=None)
    monkeypatch.setattr(gateway_module, "PAGE", 2)
    return client, Registry(uri, uri)


def test_versions_above_the_watermark_newest_first_in_few_calls(oss, monkeypatch):
    client, gateway = oss
    calls = []
    search = client.search_model_versions
    monkeypatch.setattr(gateway.client, "search_model_versions", lambda *a, **k: calls.append(k) or search(*a, **k))
    assert [v.version for v in gateway.recent_versions("churn-model", newer_than=3)] == ["7", "6", "5", "4"]
    assert len(calls) == 3 and calls[0]["order_by"] == ["version_number DESC"]  # 7 6 | 5 4 | 3 2: reached
    assert gateway.recent_versions("no-such-model", newer_than=0) == []


def test_aliases_copy_and_links(oss):
    client, gateway = oss
    client.set_registered_model_alias("churn-model", "champion", "2")
    assert gateway.model_aliases("churn-model") == {"champion": "2"}
    copy = gateway.copy_version("churn-model", "2", "churn-model-prod")
    assert (copy.version, copy.source) == ("1", "models:/churn-model/2")
    assert gateway.copy_version("churn-model", "2", "churn-model-prod") == copy
    assert gateway.version_url("churn-model", "2") == ""  # a sqlite registry has no UI
    gateway.transition_stage("churn-model", "2", "Production")  # stages: deprecated in OSS, still accepted
    assert client.get_model_version("churn-model", "2").current_stage == "Production"
