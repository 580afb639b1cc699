"""The bot's registry gateway on Unity Catalog: MLflow's real client (`registry_uri="databricks-uc"`) against the
sandbox workspace's UC endpoints, runs and logged models in a local sqlite tracking store, real Redis for polling.

Polling is driven through the service function (`registry_watch.poll`, what the beat's `poll_registry` task
calls) with the real client and real Redis; the approvals service it feeds runs on the shared fakes for the
workspace, GitHub and Slack (a validate run per new version is the observable event).
"""

from __future__ import annotations

import dataclasses
import tomllib

import mlflow
import mlflow.tracking._model_registry.utils as registry_utils
import numpy as np
import pytest
from mlflow import MlflowClient
from mlflow.models import infer_signature
from sklearn.linear_model import LogisticRegression

from bot import keys
from bot.config import parse_config
from devstack.sandboxes import WORKSPACE_TOKEN, start_workspace
from tests.conftest import ROOT
from tests.fakes import world
from workers import registry_watch
from workers.errors import NotFound, Permanent
from workers.gateways.registry import Registry
from workers.state import State

DEV, PROD = "dev.ml.churn", "prod.ml.churn"
X = np.array([[0.0, 1.0], [1.0, 0.0], [0.2, 0.9], [0.9, 0.1], [0.1, 0.8], [0.8, 0.3]])
Y = np.array([0, 1, 0, 1, 0, 1])


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    service = start_workspace(tmp_path_factory.mktemp("uc"))
    yield service
    service.stop()


@pytest.fixture(scope="module")
def tracking(workspace, tmp_path_factory):
    """What a worker on Databricks has: DATABRICKS_HOST/TOKEN; here a local sqlite tracking store besides."""
    d = tmp_path_factory.mktemp("tracking")
    uri = f"sqlite:///{d / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DATABRICKS_HOST", workspace.url)
        mp.setenv("DATABRICKS_TOKEN", WORKSPACE_TOKEN)
        mp.setenv("MLFLOW_TRACKING_URI", uri)
        mp.setenv("MLFLOW_REGISTRY_URI", "databricks-uc")  # restored afterwards, as is what the gateway sets
        mp.setattr(registry_utils, "_registry_uri", None)
        mp.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # a refusal is an answer: fail fast, never back off
        mp.setenv("MLFLOW_DATABRICKS_ENDPOINT_HTTP_RETRY_TIMEOUT", "10")
        mp.setenv("MLFLOW_ENABLE_ASYNC_LOGGING", "false")
        mp.chdir(d)
        mlflow.set_experiment(experiment_id=MlflowClient().create_experiment("uc", artifact_location=str(d / "art")))
        yield uri


@pytest.fixture(scope="module")
def gateway(tracking):
    return Registry(tracking, "databricks-uc")


def register(name: str) -> str:
    """A freshly trained model (with the signature UC requires) registered as the next version of `name`."""
    model = LogisticRegression().fit(X, Y)
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(model, name="model", signature=infer_signature(X, model.predict(X)))
    return str(mlflow.register_model(info.model_uri, name).version)


@pytest.fixture(scope="module")
def v1(gateway):
    return register(DEV)


def test_the_gateway_reads_versions_aliases_and_tags_and_sets_an_alias(gateway, v1, workspace):
    gateway.set_tags(DEV, v1, {"validation_status": "passed"})
    gateway.set_alias(DEV, "champion", v1)
    got = gateway.version(DEV, v1)
    assert (got.version, got.status, got.tags["validation_status"], got.aliases) == (
        "1",
        "READY",
        "passed",
        ("champion",),
    )
    assert got.run_id and got.source
    assert gateway.model_aliases(DEV) == {"champion": "1"}
    assert gateway.champion(DEV, "champion")["version"] == "1"
    [listed] = gateway.recent_versions(DEV, newer_than=0)
    assert (listed.version, listed.status, listed.tags, listed.aliases) == ("1", "READY", {}, ())  # search: no tags
    assert gateway.version_url(DEV, v1) == f"{workspace.url}/explore/data/models/dev/ml/churn/version/1"
    assert gateway.run_url(got.run_id) == ""  # a sqlite tracking store has no UI to link to


def test_a_model_that_does_not_exist_yet_has_no_versions_and_no_aliases(gateway):
    assert gateway.recent_versions("dev.ml.nothing", newer_than=0) == []
    assert gateway.model_aliases("dev.ml.nothing") == {}
    with pytest.raises(NotFound):
        gateway.version("dev.ml.nothing", "1")


def test_copy_to_prod_works_around_mlflow_22012_and_happens_once(gateway, v1):
    copy = gateway.copy_version(DEV, v1, PROD)
    src = gateway.version(DEV, v1)
    assert (copy.model, copy.version, copy.status, copy.source, copy.run_id) == (
        PROD,
        "1",
        "READY",
        f"models:/{DEV}/1",
        src.run_id,
    )
    assert copy.tags["validation_status"] == "passed"  # the source's tags come along
    assert gateway.copy_version(DEV, v1, PROD) == copy  # a retried task: the same version, no second copy
    assert [v.version for v in gateway.recent_versions(PROD, newer_than=0)] == ["1"]
    assert list(mlflow.pyfunc.load_model(f"models:/{PROD}/1").predict(X)) == list(Y)


def test_a_stage_on_unity_catalog_is_refused_plainly(gateway, v1):
    with pytest.raises(Permanent, match="Unity Catalog has no stages"):
        gateway.transition_stage(DEV, v1, "Production")


def test_a_two_level_name_is_permanent_though_the_client_says_internal_error(gateway, v1):
    with pytest.raises(Permanent, match="three levels, catalog.schema.model") as exc:
        gateway.copy_version(DEV, v1, "ml.churn")
    assert type(exc.value) is Permanent  # never retried as transient


# ---- polling ---------------------------------------------------------------------------------------

POLLED = "dev.ml.polled"


@pytest.fixture
def polling(tracking, gateway, redis_client):
    data = tomllib.loads((ROOT / "config.toml").read_text())
    data["mlflow"] = {"tracking_uri": tracking, "registry_uri": "databricks-uc"}
    data["models"] = {POLLED: data["models"]["churn-model"]}
    w = world(parse_config(data), State(redis_client))
    return dataclasses.replace(w.deps, registry_factory=lambda: gateway), w


def test_polling_finds_a_version_created_while_the_worker_was_down_once(polling, redis_client):
    deps, w = polling
    assert deps.settings.mlflow.poll  # on by default on Unity Catalog: it sends no webhooks
    register(POLLED)
    assert registry_watch.poll(deps) == 0  # the first poll: version 1 is history
    assert deps.state.watermark(POLLED) == 1

    # the worker is down: nobody polls while two versions are registered
    assert [register(POLLED), register(POLLED)] == ["2", "3"]

    assert registry_watch.poll(deps) == 0  # within the minute: the guard holds, no call is made
    redis_client.delete(keys.poll_guard(POLLED))  # a minute later
    assert registry_watch.poll(deps) == 2
    redis_client.delete(keys.poll_guard(POLLED))
    assert registry_watch.poll(deps) == 0
    assert [(d.state.approval(POLLED, v) or {}).get("version") for d in [deps] for v in "123"] == [None, "2", "3"]
    assert len(w.scheduler.follows) == 2  # one validate run per new version
    assert deps.state.watermark(POLLED) == 3
