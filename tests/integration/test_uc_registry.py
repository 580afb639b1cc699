"""The bot's registry gateway on Unity Catalog: MLflow's real client (`registry_uri="databricks-uc"`) against the
sandbox workspace's UC endpoints, runs and logged models in a local sqlite tracking store. Polling:
tests/integration/test_uc_polling.py.
"""

from __future__ import annotations

import mlflow
import mlflow.tracking._model_registry.utils as registry_utils
import pytest
import requests

from devstack.sandboxes import WORKSPACE_TOKEN, start_workspace
from tests.support.stacks import service_fixture
from tests.support.unity_catalog import X, Y, log_model, uc_client_env
from workers.errors import NotFound, Permanent, Transient
from workers.gateways import registry as registry_gateway
from workers.gateways.registry import Registry

DEV, PROD = "dev.ml.churn", "prod.ml.churn"


workspace = service_fixture(start_workspace, "uc")


@pytest.fixture(scope="module")
def tracking(workspace, tmp_path_factory):
    """What a worker on Databricks has: DATABRICKS_HOST/TOKEN; here a local sqlite tracking store besides."""
    with uc_client_env(workspace.url, tmp_path_factory.mktemp("tracking")) as mp:
        mp.setattr(registry_utils, "_registry_uri", None)  # restored afterwards, as is what the gateway sets
        yield mlflow.get_tracking_uri()


@pytest.fixture(scope="module")
def gateway(tracking):
    return Registry(tracking, "databricks-uc")


def register(name: str) -> str:
    """A freshly trained model (with the signature UC requires) registered as the next version of `name`."""
    return str(mlflow.register_model(log_model().model_uri, name).version)


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


def _half_made_copy(workspace, src: str, version: str, dst: str) -> str:
    """What a worker killed inside `copy_version` leaves: the version created (PENDING_REGISTRATION), its files never
    uploaded, never finalized — the steps MLflow's UC client takes one after another."""
    base, auth = workspace.url + "/api/2.0/mlflow/unity-catalog", {"Authorization": f"Bearer {WORKSPACE_TOKEN}"}
    requests.post(f"{base}/registered-models/create", json={"name": dst}, headers=auth, timeout=5)
    body = {"name": dst, "source": f"models:/{src}/{version}", "run_id": gateway_run_id(src, version)}
    answer = requests.post(f"{base}/model-versions/create", json=body, headers=auth, timeout=5).json()
    assert answer["model_version"]["status"] == "PENDING_REGISTRATION"
    return answer["model_version"]["version"]


def gateway_run_id(name: str, version: str) -> str:
    return mlflow.MlflowClient().get_model_version(name, version).run_id


def test_a_half_made_copy_is_never_the_copy_and_is_made_again_once_its_maker_is_gone(
    gateway, v1, workspace, monkeypatch
):
    """A half-made copy has no files: crowned, it would be a champion nothing can load (chaos: the worker killed
    inside the copy of an approval, tests/reliability/test_chaos_release.py)."""
    dst = "prod.ml.half"
    pending = _half_made_copy(workspace, DEV, v1, dst)
    with pytest.raises(Transient, match="still being registered"):  # its maker may still be uploading
        gateway.copy_version(DEV, v1, dst)
    monkeypatch.setattr(registry_gateway, "ABANDONED_AFTER_S", 0)  # ...its maker is gone
    copy = gateway.copy_version(DEV, v1, dst)
    assert (copy.status, copy.source) == ("READY", f"models:/{DEV}/{v1}")
    assert [v.version for v in gateway.recent_versions(dst, newer_than=0)] == [copy.version] != [pending]
    assert list(mlflow.pyfunc.load_model(f"models:/{dst}/{copy.version}").predict(X)) == list(Y)


def test_a_stage_on_unity_catalog_is_refused_plainly(gateway, v1):
    with pytest.raises(Permanent, match="Unity Catalog has no stages"):
        gateway.transition_stage(DEV, v1, "Production")


def test_a_two_level_name_is_permanent_though_the_client_says_internal_error(gateway, v1):
    with pytest.raises(Permanent, match="three levels, catalog.schema.model") as exc:
        gateway.copy_version(DEV, v1, "ml.churn")
    assert type(exc.value) is Permanent  # never retried as transient
