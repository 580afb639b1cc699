"""MLflow's own Unity Catalog client, unchanged, against the sandbox workspace.

`MlflowClient(registry_uri="databricks-uc")` with `DATABRICKS_HOST`/`DATABRICKS_TOKEN` pointing at the
stand-in; runs and logged models in a local sqlite tracking store. What each call sends and gets back is in
docs/UNITY-CATALOG.md; the stand-in follows MLflow's UC store, not the bot.

Found here about `copy_model_version` (MLflow #22012): with a non-Databricks tracking store the public client
never sends a `model_id` (MlflowClient._create_model_version drops it for a UC registry), so every version has
`model_id == ""` and `copy_model_version` fails in the client. With a Databricks tracking URI the id is sent.
Copying through `create_model_version(dst, source="models:/<src>/<n>", run_id=…)` works in both.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import mlflow
import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from devstack.sandboxes import WORKSPACE_TOKEN, start_workspace
from tests.support.stacks import service_fixture
from tests.support.unity_catalog import X, Y, log_model, uc_client_env

NAME = "dev.ml.churn"
UC = "/api/2.0/mlflow/unity-catalog"


workspace = service_fixture(start_workspace, "uc")


@pytest.fixture(scope="module")
def uc(workspace, tmp_path_factory):
    """The environment a Databricks job would give the client: UC registry on the stand-in, local tracking."""
    with uc_client_env(workspace.url, tmp_path_factory.mktemp("tracking")):
        yield MlflowClient(registry_uri="databricks-uc")


def api(workspace, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
    """A raw call with the token, for what the client never sends."""
    req = urllib.request.Request(
        workspace.url + path,
        data=json.dumps(body).encode() if body is not None else None,
        method=method,
        headers={"Authorization": f"Bearer {WORKSPACE_TOKEN}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def code_of(exc: pytest.ExceptionInfo) -> str:
    return exc.value.error_code


@pytest.fixture(scope="module")
def v1(uc):
    """`mlflow.register_model` of a freshly logged model: version "1" of dev.ml.churn."""
    info = log_model()
    return info, mlflow.register_model(info.model_uri, NAME)


@pytest.fixture(scope="module")
def v2(uc, v1):
    """`log_model(..., registered_model_name=)`: logs and registers in one call, version "2"."""
    info = log_model(registered_model_name=NAME)
    return info, uc.get_model_version(NAME, str(info.registered_model_version))


# ---- registering and loading ---------------------------------------------------------------------


def test_register_model_creates_version_1_ready(uc, v1):
    info, mv = v1
    assert (mv.name, mv.version, mv.status) == (NAME, "1", "READY")
    got = uc.get_model_version(NAME, "1")
    assert (got.version, got.status, got.run_id) == ("1", "READY", info.run_id)
    # MlflowClient._create_model_version, for a UC registry and a non-Databricks tracking store, swaps the
    # models:/<model_id> source for the logged model's artifact location and drops model_id: none is sent.
    assert got.source.endswith(f"/models/{info.model_id}/artifacts")
    assert got.model_id == ""
    assert uc.get_registered_model(NAME).name == NAME


def test_the_registered_version_loads_and_predicts(uc, v1):
    loaded = mlflow.pyfunc.load_model(f"models:/{NAME}/1")
    assert list(loaded.predict(X)) == list(Y)


def test_log_model_with_registered_model_name_numbers_version_2_without_model_id(uc, v2):
    info, mv = v2
    assert (str(info.registered_model_version), mv.version, mv.status) == ("2", "2", "READY")
    assert info.model_id and mv.model_id == ""  # the same client path: the logged model's id is not sent
    assert {v.version for v in uc.search_model_versions(f"name='{NAME}'")} >= {"1", "2"}


# ---- aliases and tags ----------------------------------------------------------------------------


def test_alias_champion_shows_on_model_and_version_and_can_be_deleted(uc, v1):
    uc.set_registered_model_alias(NAME, "champion", "1")
    assert uc.get_model_version_by_alias(NAME, "champion").version == "1"
    assert uc.get_registered_model(NAME).aliases == {"champion": "1"}
    assert uc.get_model_version(NAME, "1").aliases == ["champion"]
    assert list(mlflow.pyfunc.load_model(f"models:/{NAME}@champion").predict(X)) == list(Y)

    uc.delete_registered_model_alias(NAME, "champion")
    with pytest.raises(MlflowException) as exc:
        uc.get_model_version_by_alias(NAME, "champion")
    assert code_of(exc) == "RESOURCE_DOES_NOT_EXIST"
    assert uc.get_registered_model(NAME).aliases == {}
    assert uc.get_model_version(NAME, "1").aliases == []


def test_an_alias_on_an_unknown_version_or_a_reserved_alias_is_refused(uc, v1):
    with pytest.raises(MlflowException) as exc:
        uc.set_registered_model_alias(NAME, "champion", "99")
    assert code_of(exc) == "RESOURCE_DOES_NOT_EXIST"
    with pytest.raises(MlflowException) as exc:
        uc.set_registered_model_alias(NAME, "v3", "1")
    assert code_of(exc) == "INVALID_PARAMETER_VALUE"


def test_version_and_model_tags_are_set_and_deleted(uc, v1):
    uc.set_model_version_tag(NAME, "1", "validated", "true")
    uc.set_registered_model_tag(NAME, "owner", "ml-team")
    assert uc.get_model_version(NAME, "1").tags == {"validated": "true"}
    assert uc.get_registered_model(NAME).tags == {"owner": "ml-team"}

    uc.delete_model_version_tag(NAME, "1", "validated")
    uc.delete_registered_model_tag(NAME, "owner")
    assert uc.get_model_version(NAME, "1").tags == {}
    assert uc.get_registered_model(NAME).tags == {}


def test_descriptions_of_a_version_and_a_model_are_updated(uc, v1):
    assert uc.update_model_version(NAME, "1", description="baseline").description == "baseline"
    assert uc.get_model_version(NAME, "1").description == "baseline"
    assert uc.update_registered_model(NAME, description="Churn").description == "Churn"
    assert uc.get_registered_model(NAME).description == "Churn"


# ---- search --------------------------------------------------------------------------------------


def test_search_model_versions_by_name_newest_first_and_paged(uc, v1, v2):
    found = uc.search_model_versions(f"name='{NAME}'")
    assert [v.version for v in found][:2] == ["2", "1"] and all(v.status == "READY" for v in found)
    first = uc.search_model_versions(f"name='{NAME}'", max_results=1)
    assert [v.version for v in first] == ["2"] and first.token
    second = uc.search_model_versions(f"name='{NAME}'", max_results=1, page_token=first.token)
    assert [v.version for v in second] == ["1"]
    assert [v.version for v in uc.search_model_versions(f"run_id='{v1[0].run_id}'")] == ["1"]
    assert NAME in [m.name for m in uc.search_registered_models()]


def test_search_refuses_an_unknown_model_and_an_unsupported_filter(uc, v1):
    with pytest.raises(MlflowException) as exc:
        uc.search_model_versions("name='dev.ml.nothing'")
    assert code_of(exc) == "RESOURCE_DOES_NOT_EXIST"
    with pytest.raises(MlflowException) as exc:
        uc.search_model_versions("tags.x = 'y'")
    assert code_of(exc) == "INVALID_PARAMETER_VALUE"


# ---- what the service refuses --------------------------------------------------------------------


def test_a_two_level_name_is_refused_with_the_documented_message(uc, workspace):
    with pytest.raises(MlflowException, match="please specify all three levels of the model") as exc:
        uc.create_registered_model("ml.churn")
    assert "set the Model Registry URI to 'databricks' (legacy)" in exc.value.message  # the client's own hint
    # The client re-raises with its hint as MlflowException(error_code="INVALID_PARAMETER_VALUE"), a string where
    # it expects the enum number, so the code is lost: callers see INTERNAL_ERROR for this permanent refusal.
    assert code_of(exc) == "INTERNAL_ERROR"
    status, body = api(workspace, "POST", f"{UC}/registered-models/create", {"name": "ml.churn"})
    assert (status, body["error_code"]) == (400, "INVALID_PARAMETER_VALUE")


def test_unknown_version_and_model_and_a_duplicate_model(uc, v1):
    with pytest.raises(MlflowException) as exc:
        uc.get_model_version(NAME, "99")
    assert code_of(exc) == "RESOURCE_DOES_NOT_EXIST"
    with pytest.raises(MlflowException) as exc:
        uc.get_registered_model("dev.ml.nothing")
    assert code_of(exc) == "RESOURCE_DOES_NOT_EXIST"
    with pytest.raises(MlflowException) as exc:
        uc.create_registered_model(NAME)
    assert code_of(exc) == "RESOURCE_ALREADY_EXISTS"


def test_a_version_sent_as_a_number_is_refused(workspace, v1):
    status, body = api(workspace, "POST", f"{UC}/model-versions/finalize", {"name": NAME, "version": 1})
    assert (status, body["error_code"]) == (400, "INVALID_PARAMETER_VALUE")


# ---- copying across catalogs (MLflow issue #22012) -----------------------------------------------


def test_copy_model_version_fails_in_the_client_when_the_source_has_no_model_id(uc, v1):
    # AbstractStore.copy_model_version passes model_id=src_mv.model_id (""), the UC store checks only for None
    # and calls mlflow.get_logged_model(""), which refuses it. Real Databricks gives the same (#22012).
    with pytest.raises(MlflowException, match="`model_id` must be a non-empty string, but got ''"):
        uc.copy_model_version(f"models:/{NAME}/1", "prod.ml.churn")
    # What it leaves behind: the destination model, created before the failure, without versions.
    assert uc.get_registered_model("prod.ml.churn").name == "prod.ml.churn"
    assert list(uc.search_model_versions("name='prod.ml.churn'")) == []


def test_a_copy_through_create_model_version_from_the_models_uri_works(uc, v1):
    """What copy_model_version does, minus model_id: destination version with source models:/dev.ml.churn/1."""
    src = uc.get_model_version(NAME, "1")
    try:
        uc.create_registered_model("prod.ml.churn")
    except MlflowException as e:
        assert e.error_code == "RESOURCE_ALREADY_EXISTS"
    copy = uc.create_model_version(
        "prod.ml.churn", source=f"models:/{NAME}/1", run_id=src.run_id, tags=src.tags, description=src.description
    )
    assert (copy.name, copy.status, copy.source, copy.run_id) == (
        "prod.ml.churn",
        "READY",
        f"models:/{NAME}/1",
        src.run_id,
    )
    assert list(mlflow.pyfunc.load_model(f"models:/prod.ml.churn/{copy.version}").predict(X)) == list(Y)


def test_copy_model_version_works_when_the_source_version_carries_a_known_model_id(uc):
    # Only the registry store itself sends model_id (the public client drops it for a non-Databricks tracking
    # store); the stand-in keeps what was sent and invents nothing.
    info = log_model()
    uc.create_registered_model("dev.ml.withid")
    store = uc._get_registry_client()
    source = uc.get_logged_model(info.model_id).artifact_location
    src = store.create_model_version("dev.ml.withid", source=source, run_id=info.run_id, model_id=info.model_id)
    assert src.model_id == info.model_id
    copy = uc.copy_model_version(f"models:/dev.ml.withid/{src.version}", "prod.ml.withid")
    assert (copy.version, copy.status, copy.model_id) == ("1", "READY", info.model_id)


# ---- the files area --------------------------------------------------------------------------------

FS = "/api/2.0/fs"


def test_listing_pages_and_a_file_is_not_a_directory(workspace, v1):
    status, page1 = api(workspace, "GET", f"{FS}/directories/Models/dev/ml/churn/1/?page_size=2")
    assert status == 200 and len(page1["contents"]) == 2 and page1["next_page_token"]
    names = [e["name"] for e in page1["contents"]]
    token = page1["next_page_token"]
    while token:
        status, more = api(workspace, "GET", f"{FS}/directories/Models/dev/ml/churn/1/?page_size=2&page_token={token}")
        names += [e["name"] for e in more["contents"]]
        token = more.get("next_page_token")
    assert "MLmodel" in names and len(names) == len(set(names))
    status, body = api(workspace, "GET", f"{FS}/directories/Models/dev/ml/churn/1/MLmodel")
    assert (status, body["error_code"]) == (404, "NOT_FOUND")


@pytest.mark.parametrize(
    "method,path,body",
    [
        ("GET", f"{FS}/directories/Models/dev/ml/../../../../etc", None),
        ("GET", f"{FS}/directories/Models/dev/ml/churn/1/%2e%2e/%2e%2e", None),
        ("POST", f"{FS}/create-download-url", {"path": "/Models/dev/ml/churn/1/../../../../../state.json"}),
        ("POST", f"{FS}/create-upload-url", {"path": "/Models/dev/ml/churn/1/../2/x"}),
    ],
)
def test_paths_that_climb_out_are_refused(workspace, v1, method, path, body):
    status, answer = api(workspace, method, path, body)
    assert (status, answer["error_code"]) == (400, "INVALID_PARAMETER_VALUE")


def test_presigned_urls_need_their_signature_not_a_token(workspace, v1):
    status, body = api(workspace, "POST", f"{FS}/create-download-url", {"path": "/Models/dev/ml/churn/1/MLmodel"})
    assert status == 200 and body["url"].startswith(workspace.url + "/")
    with urllib.request.urlopen(body["url"], timeout=10) as r:  # no Authorization header, as the client sends it
        assert b"flavors" in r.read()
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(body["url"].replace("signature=", "signature=0"), timeout=10)
    assert exc.value.code == 403


def test_a_ready_version_takes_no_more_files(workspace, v1):
    status, body = api(workspace, "POST", f"{FS}/create-upload-url", {"path": "/Models/dev/ml/churn/1/extra.txt"})
    assert (status, body["error_code"]) == (400, "INVALID_PARAMETER_VALUE")


def test_deleting_a_version_removes_it_and_its_files(uc, v1):
    uc.create_registered_model("dev.ml.scratch")
    mv = uc.create_model_version("dev.ml.scratch", source=f"models:/{NAME}/1", run_id=v1[0].run_id)
    uc.set_registered_model_alias("dev.ml.scratch", "champion", mv.version)
    uc.delete_model_version("dev.ml.scratch", mv.version)
    with pytest.raises(MlflowException) as exc:
        uc.get_model_version("dev.ml.scratch", mv.version)
    assert code_of(exc) == "RESOURCE_DOES_NOT_EXIST"
    assert uc.get_registered_model("dev.ml.scratch").aliases == {}
    uc.delete_registered_model("dev.ml.scratch")
    with pytest.raises(MlflowException) as exc:
        uc.get_registered_model("dev.ml.scratch")
    assert code_of(exc) == "RESOURCE_DOES_NOT_EXIST"


def test_the_registry_and_its_files_survive_a_restart(tmp_path):
    first = start_workspace(tmp_path)
    try:
        api(first, "POST", f"{UC}/registered-models/create", {"name": "dev.ml.kept"})
        api(first, "POST", f"{UC}/model-versions/create", {"name": "dev.ml.kept", "source": "runs:/r/model"})
        _, up = api(first, "POST", f"{FS}/create-upload-url", {"path": "/Models/dev/ml/kept/1/MLmodel"})
        put = urllib.request.Request(up["url"], data=b"flavors: {}\n", method="PUT")
        for h in up["headers"]:
            put.add_header(h["name"], h["value"])
        urllib.request.urlopen(put, timeout=10).close()
        api(first, "POST", f"{UC}/model-versions/finalize", {"name": "dev.ml.kept", "version": "1"})
    finally:
        first.stop()
    again = start_workspace(tmp_path)
    try:
        _, got = api(again, "GET", f"{UC}/model-versions/get?name=dev.ml.kept&version=1")
        assert got["model_version"]["status"] == "READY"
        _, listing = api(again, "GET", f"{FS}/directories/Models/dev/ml/kept/1/")
        assert [e["name"] for e in listing["contents"]] == ["MLmodel"]
        _, created = api(again, "POST", f"{UC}/model-versions/create", {"name": "dev.ml.kept", "source": "s"})
        assert created["model_version"]["version"] == "2"
    finally:
        again.stop()
