"""The bot's registry gateway on Unity Catalog: MLflow's real client (`registry_uri="databricks-uc"`) against the
sandbox workspace's UC endpoints, runs and logged models in a local sqlite tracking store, real Redis for polling.

Polling twice over: through the service function (`registry_watch.poll`, what the beat's `poll_registry` task
calls) with the approvals service on the shared fakes, and by a real Celery worker (Procfile command line), stopped
while versions are registered, that starts the validate runs in the sandbox workspace. A validate run per new
version (and its approval record) is the observable event.
"""

from __future__ import annotations

import dataclasses
import json
import tomllib
from pathlib import Path

import mlflow
import mlflow.tracking._model_registry.utils as registry_utils
import pytest
import requests

from core import keys
from core import vocabulary as V
from core.celery_app import create_celery
from core.config import parse_config
from devstack.bot import start_worker
from devstack.sandboxes import WORKSPACE_TOKEN, start_workspace
from devstack.waiting import wait_until
from tests.conftest import ROOT
from tests.fakes import world
from tests.support.stacks import service_fixture
from tests.support.unity_catalog import X, Y, log_model, uc_client_env
from workers.core.state import State
from workers.errors import NotFound, Permanent, Transient
from workers.gateways import registry as registry_gateway
from workers.gateways.registry import Registry
from workers.release import polling as registry_watch

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


# ---- polling ---------------------------------------------------------------------------------------

POLLED = "staging.ml.polled"  # polling watches each model's staging registry: its versions are what gets validated


@pytest.fixture
def polling(tracking, gateway, redis_client):
    data = tomllib.loads((ROOT / "config.toml").read_text())
    data["mlflow"] = {"tracking_uri": tracking, "registry_uri": "databricks-uc"}
    names = {"dev": "dev.ml.polled", "staging": POLLED, "prod": "prod.ml.polled"}
    stages = [{**stage, "registry_name": names[stage["name"]]} for stage in data["models"]["churn-model"]["stages"]]
    data["models"] = {"polled": {**data["models"]["churn-model"], "stages": stages}}
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
    found = [deps.state.approval(POLLED, v) for v in "123"]
    assert [r.version if r else None for r in found] == [None, "2", "3"]
    assert len(w.scheduler.follows) == 2  # one validate run per new version
    assert deps.state.watermark(POLLED) == 3


# ---- polling by a real Celery worker, stopped while versions are registered ---------------------------------

WORKER_CONFIG = """\
[mlflow]
tracking_uri = "{tracking}"
registry_uri = "databricks-uc"
[environments.dev]
host = "{workspace}"
token_env = "DATABRICKS_TOKEN"
retry_timeout_seconds = 20
[[repos]]
name = "acme/churn-model"
git_url = "https://github.com/acme/churn-model.git"
workflows = ["validate"]
[workflows.validate]
run_on = ["model_version"]
[workflows.validate.environments.default]
environment_version = "4"
[[workflows.validate.tasks]]
key = "validate"
file = "steps/validate.py"
parameters = ["--model-name", "{{model}}", "--version", "{{version}}"]
[models.worked]
repo = "acme/churn-model"
[[models.worked.stages]]
name = "dev"
registry_name = "dev.ml.worked"
environment = "dev"
workflow = "validate"
[[models.worked.stages]]
name = "staging"
registry_name = "{model}"
environment = "dev"
workflow = "validate"
[[models.worked.stages]]
name = "prod"
registry_name = "prod.ml.worked"
environment = "dev"
workflow = "validate"
"""
WORKED = "staging.ml.worked"  # the staging registry: what polling watches


def poll_tasks_ended(worker) -> list[str]:
    """How each poll_registry task the worker ran ended: task.done, task.failed, …"""
    lines = [json.loads(x) for x in Path(worker.log_path).read_text().splitlines() if x.startswith("{")]
    return [x["event"] for x in lines if x.get("task") == V.POLL_REGISTRY and x.get("event") != "task.started"]


def test_a_real_worker_polling_finds_what_was_registered_while_it_was_down_once(
    tracking, workspace, redis_server, redis_client, tmp_path
):
    config = tmp_path / "config.toml"
    config.write_text(WORKER_CONFIG.format(tracking=tracking, workspace=workspace.url, model=WORKED))
    env = {
        "REDIS_URL": redis_server.url,
        "MLOPS_BOT_CONFIG": str(config),
        "DATABRICKS_HOST": workspace.url,
        "DATABRICKS_TOKEN": WORKSPACE_TOKEN,
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
        "MLFLOW_DATABRICKS_ENDPOINT_HTTP_RETRY_TIMEOUT": "10",
    }
    celery = create_celery(redis_server.url)
    state = State(redis_client)
    register(WORKED)

    def poll_once(worker, done_before: int) -> None:
        redis_client.delete(keys.poll_guard(WORKED))  # a minute later
        celery.send_task(V.POLL_REGISTRY)
        wait_until(lambda: len(poll_tasks_ended(worker)) > done_before, timeout=60)

    first = start_worker(tmp_path, env, concurrency=1, name="first")
    try:
        poll_once(first, 0)
        assert state.watermark(WORKED) == 1 and poll_tasks_ended(first) == ["task.done"]  # version 1 is history
    finally:
        first.stop()

    assert [register(WORKED), register(WORKED)] == ["2", "3"]  # no worker runs

    second = start_worker(tmp_path, env, concurrency=1, name="second")
    try:
        poll_once(second, 0)
        poll_once(second, 1)
    finally:
        second.stop()
    assert poll_tasks_ended(second) == ["task.done", "task.done"]
    assert [v for v in "123" if state.approval(WORKED, v)] == ["2", "3"]
    assert state.watermark(WORKED) == 3
    assert len(redis_client.zrange(keys.RUNS, 0, -1)) == 2  # one validate run per new version, no more
