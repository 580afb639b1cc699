"""Polling Unity Catalog for real: the bot's registry gateway (databricks-sdk for the listing and the reads,
MlflowClient for the rest) against the sandbox workspace, real Redis, the approvals service on the shared fakes.

What a user would check: what a minute of polling costs, counted by the workspace (`GET /sandbox/requests`) --
one request per schema at idle, and the sweep's reads spread over its round -- and that each change becomes one
event: an alias moved (found at the next minute: the listing's `updated_at` moved), a version registered while
polling ran or while no worker did (found by the sweep: nothing documented says a new version moves the model's
`updated_at`, and the sandbox does not move it). Time is simulated: `minute(t)` is beat's pass t minutes later.
Then a real Celery worker (the Procfile's command line), stopped while versions are registered.
"""

from __future__ import annotations

import dataclasses
import json
import urllib.request
from collections import Counter
from pathlib import Path

import mlflow
import mlflow.tracking._model_registry.utils as registry_utils
import pytest

from core import keys
from core import vocabulary as V
from core.celery_app import create_celery
from devstack.bot import start_worker
from devstack.sandboxes import WORKSPACE_TOKEN, start_workspace
from devstack.waiting import wait_until
from tests.fakes import world
from tests.support.stacks import service_fixture
from tests.support.unity_catalog import log_model, uc_client_env, uc_settings
from workers.core.state import State
from workers.gateways import catalog
from workers.gateways.registry import Registry
from workers.release import polling as registry_watch

UC = "/api/2.0/mlflow/unity-catalog"
LIST = "GET /api/2.1/unity-catalog/models"
NOW = 1_800_000_000_000
MINUTE = 60_000
SCHEMAS = ("staging.a", "staging.b", "staging.c")
MODELS = [f"{schema}.m{i}" for schema in SCHEMAS for i in range(4)]
SWEEP_MINUTES = registry_watch.SWEEP_SECONDS // 60
ROUND = -(-len(MODELS) // registry_watch.SWEEP_PER_PASS)  # passes the sweep takes to read every model once


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


def api(workspace, method: str, path: str, body: dict | None = None) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Authorization": f"Bearer {WORKSPACE_TOKEN}", "Content-Type": "application/json"}
    request = urllib.request.Request(workspace.url + path, data, headers, method=method)
    with urllib.request.urlopen(request, timeout=10) as r:
        return json.loads(r.read() or b"{}")


def register(name: str) -> str:
    """A freshly trained model (with the signature UC requires) registered as the next version of `name`."""
    return str(mlflow.register_model(log_model().model_uri, name).version)


@pytest.fixture(scope="module")
def models(workspace, tracking) -> list[str]:
    """Twelve models in three schemas, each with version 1 (made through the REST API: polling reads no files)."""
    for name in MODELS:
        api(workspace, "POST", f"{UC}/registered-models/create", {"name": name})
        api(workspace, "POST", f"{UC}/model-versions/create", {"name": name, "source": "dbfs:/m", "run_id": ""})
        api(workspace, "POST", f"{UC}/model-versions/finalize", {"name": name, "version": "1"})
    return MODELS


@pytest.fixture
def w(gateway, redis_client, models, tracking):
    w = world(uc_settings(models, tracking), State(redis_client))
    w.deps = dataclasses.replace(w.deps, registry_factory=lambda: gateway)
    w.redis = redis_client
    return w


class Minutes:
    """Beat's passes, a minute apart on a simulated clock; what each cost, as the workspace counted it."""

    def __init__(self, w, workspace):
        self.w, self.workspace = w, workspace

    def __call__(self, t: int) -> tuple[int, Counter]:
        for key in self.w.redis.scan_iter(f"{keys.P}poll-guard*"):  # a minute later: the guards have expired
            self.w.redis.delete(key)
        api(self.workspace, "POST", "/sandbox/requests/reset")
        emitted = registry_watch.poll(self.w.deps, NOW + t * MINUTE)
        return emitted, Counter(api(self.workspace, "GET", "/sandbox/requests"))


@pytest.fixture
def minute(w, workspace) -> Minutes:
    return Minutes(w, workspace)


def reads(cost: Counter) -> int:
    """Models read in a pass: each read is one versions listing (and one aliases read)."""
    return sum(n for k, n in cost.items() if k.endswith("/versions"))


def test_the_gateway_lists_a_schemas_models_and_reads_every_page_of_versions(gateway, models, workspace, monkeypatch):
    listed = gateway.listed_models("staging.a")
    assert sorted(listed) == [m for m in models if m.startswith("staging.a.")]
    assert all(isinstance(stamp, int) and stamp > 0 for stamp in listed.values())
    monkeypatch.setattr(catalog, "VERSIONS_PAGE", 2)  # five versions: three pages, in no promised order
    for _ in range(4):
        api(workspace, "POST", f"{UC}/model-versions/create", {"name": models[0], "source": "dbfs:/m", "run_id": ""})
    api(workspace, "POST", "/sandbox/requests/reset")
    assert [v.version for v in gateway.recent_versions(models[0], newer_than=2)] == ["5", "4", "3"]
    assert api(workspace, "GET", "/sandbox/requests")[f"GET /api/2.1/unity-catalog/models/{models[0]}/versions"] == 3
    assert gateway.listed_models("nothing.here") == {}


def test_at_idle_a_minute_costs_one_listing_per_schema_then_the_sweep_spread_over_its_round(w, minute):
    emitted, first = minute(0)
    assert (emitted, first[LIST], reads(first)) == (0, len(SCHEMAS), len(MODELS))  # history: no events
    for t in range(1, SWEEP_MINUTES):
        emitted, cost = minute(t)
        assert (emitted, cost) == (0, Counter({LIST: len(SCHEMAS)})), f"minute {t}"
    swept = [minute(t)[1] for t in range(SWEEP_MINUTES, SWEEP_MINUTES + ROUND)]
    assert [reads(c) for c in swept] == [registry_watch.SWEEP_PER_PASS] * ROUND  # every model once, spread
    assert all(sum(c.values()) == len(SCHEMAS) + 2 * registry_watch.SWEEP_PER_PASS for c in swept)
    assert minute(SWEEP_MINUTES + ROUND)[1] == Counter({LIST: len(SCHEMAS)})


def test_an_alias_moved_is_one_alias_set_event_the_next_minute(w, minute, gateway):
    minute(0)
    mlflow.MlflowClient().set_registered_model_alias(MODELS[5], "challenger", "1")  # as a person would
    emitted, cost = minute(1)
    assert (emitted, reads(cost)) == (1, 1)
    assert w.deps.state.alias_positions(MODELS[5]) == {"challenger": "1"}
    assert minute(2)[0] == 0


def test_a_new_version_is_one_event_found_by_the_sweep(w, minute):
    minute(0)
    version = register(MODELS[7])
    found = [t for t in range(1, SWEEP_MINUTES + ROUND + 1) if minute(t)[0]]
    assert found and found[0] <= SWEEP_MINUTES + ROUND
    again = range(found[0] + SWEEP_MINUTES, found[0] + SWEEP_MINUTES + ROUND + 1)  # the next round reads it again
    assert sum(minute(t)[0] for t in again) == 0
    assert len(found) == 1 and w.deps.state.approval(MODELS[7], version).version == version
    assert len(w.scheduler.follows) == 1  # one validate run


def test_versions_registered_while_polling_was_off_are_found_once(w, minute):
    minute(0)
    made = [register(MODELS[10]), register(MODELS[2])]  # no worker for three hours
    emitted = sum(minute(t)[0] for t in range(180, 180 + ROUND + 1))
    assert emitted == 2
    assert [w.deps.state.approval(m, v) is not None for m, v in zip((MODELS[10], MODELS[2]), made)] == [True, True]
    again = range(180 + SWEEP_MINUTES + ROUND, 180 + SWEEP_MINUTES + 2 * ROUND + 1)  # the next round: nothing new
    assert sum(minute(t)[0] for t in again) == 0


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
        for key in redis_client.scan_iter(f"{keys.P}poll-guard*"):  # a minute later
            redis_client.delete(key)
        celery.send_task(V.POLL_REGISTRY)
        wait_until(lambda: len(poll_tasks_ended(worker)) > done_before, timeout=60)

    first = start_worker(tmp_path, env, concurrency=1, name="first")
    try:
        poll_once(first, 0)
        assert state.watermark(WORKED) == 1 and poll_tasks_ended(first) == ["task.done"]  # version 1 is history
    finally:
        first.stop()

    assert [register(WORKED), register(WORKED)] == ["2", "3"]  # no worker runs…
    last_read = int(redis_client.zscore(keys.POLLED_AT, WORKED))  # …for half an hour, as its last read says
    redis_client.zadd(keys.POLLED_AT, {WORKED: last_read - registry_watch.SWEEP_SECONDS * 1000})

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
