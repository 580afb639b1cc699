"""The sandbox workspace lists a schema's registered models as Unity Catalog documents it.

databricks-sdk's own `w.registered_models.list(catalog_name=, schema_name=)` against the stand-in. Each rule is a
sentence of `RegisteredModelsAPI.list`'s docstring (databricks/sdk/service/catalog.py), which is the REST
reference's text (docs.databricks.com/api/uc-registered-models/v1/list-registered-models), quoted where tested.
What `updated_at` means beyond "Last-update timestamp of the registered model" is not documented: the sandbox
changes it only where the reference calls the change an update of the registered model (sandbox/workspace/api/
uc_models.py), and the bot's polling does not rely on more (workers/release/polling.py).
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest
from databricks.sdk import WorkspaceClient
from databricks.sdk.config import Config
from databricks.sdk.errors import InvalidParameterValue
from databricks.sdk.service.catalog import PermissionsChange, Privilege

from devstack.sandboxes import WORKSPACE_TOKEN, start_workspace

READER = "44444444-0000-4000-8000-00000000000d"
TOKENS = {READER: "dapi-reader"}
UC = "/api/2.0/mlflow/unity-catalog"
LIST = "/api/2.1/unity-catalog/models"
SCHEMA = ("listed", "ml")
NAMES = ["listed.ml.a", "listed.ml.b", "listed.ml.c"]


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    service = start_workspace(tmp_path_factory.mktemp("ws"), service_principals=TOKENS)
    yield service
    service.stop()


def client(sandbox, token: str = WORKSPACE_TOKEN) -> WorkspaceClient:
    return WorkspaceClient(config=Config(host=sandbox.url, token=token, auth_type="pat", retry_timeout_seconds=10))


def call(sandbox, method: str, path: str, body: dict | None = None, token: str = WORKSPACE_TOKEN, **query):
    url = sandbox.url + path + ("?" + urllib.parse.urlencode(query) if query else "")
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data, headers, method=method), timeout=10) as r:
            return r.status, json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def listed(sandbox, token: str = WORKSPACE_TOKEN) -> dict:
    return {
        m.full_name: m for m in client(sandbox, token).registered_models.list(catalog_name="listed", schema_name="ml")
    }


@pytest.fixture(scope="module")
def models(sandbox) -> list[str]:
    """Three models in `listed.ml` (version 1 of each, READY) and one elsewhere, made by the admin."""
    for name in [*NAMES, "other.ml.z"]:
        assert call(sandbox, "POST", f"{UC}/registered-models/create", {"name": name})[0] == 200
        body = {"name": name, "source": "dbfs:/m", "run_id": "r"}
        assert call(sandbox, "POST", f"{UC}/model-versions/create", body)[0] == 200
        assert call(sandbox, "POST", f"{UC}/model-versions/finalize", {"name": name, "version": "1"})[0] == 200
    return NAMES


def test_a_schemas_listing_has_its_models_with_when_each_was_last_updated(sandbox, models):
    # "You can list registered models under a particular schema"; RegisteredModelInfo.updated_at: "Last-update
    # timestamp of the registered model in milliseconds since the Unix epoch"
    found = listed(sandbox)
    assert sorted(found) == models  # not other.ml.z
    assert all(m.updated_at and m.updated_at >= m.created_at for m in found.values())
    assert {(m.catalog_name, m.schema_name) for m in found.values()} == {SCHEMA}


@pytest.fixture(scope="module")
def reader(sandbox, models) -> str:
    """READER may read NAMES[1] only: EXECUTE on it, USE CATALOG and USE SCHEMA on its parents. Before those two,
    the listing leaves it out as well: "For the latter case, the caller must also be the owner or have the
    **USE_CATALOG** privilege on the parent catalog and the **USE_SCHEMA** privilege on the parent schema." """
    w = client(sandbox)
    w.grants.update("function", NAMES[1], changes=[PermissionsChange(principal=READER, add=[Privilege.EXECUTE])])
    assert listed(sandbox, TOKENS[READER]) == {}  # filtered, not refused
    w.grants.update("catalog", "listed", changes=[PermissionsChange(principal=READER, add=[Privilege.USE_CATALOG])])
    w.grants.update("schema", "listed.ml", changes=[PermissionsChange(principal=READER, add=[Privilege.USE_SCHEMA])])
    return TOKENS[READER]


def test_the_listing_leaves_out_what_the_caller_may_not_read(sandbox, models, reader):
    # "The returned models are filtered based on the privileges of the calling user. For example, the metastore
    # admin is able to list all the registered models. A regular user needs to be the owner or have the
    # **EXECUTE** privilege on the registered model to receive the registered models in the response."
    assert sorted(listed(sandbox, reader)) == [NAMES[1]]
    assert sorted(listed(sandbox)) == models


def test_a_page_may_be_empty_and_still_lead_to_the_next(sandbox, models, reader):
    # "PAGINATION BEHAVIOR: The API is by default paginated, a page may contain zero results while still providing
    # a next_page_token. Clients must continue reading pages until next_page_token is absent"
    status, first = call(sandbox, "GET", LIST, token=reader, catalog_name="listed", schema_name="ml", max_results=1)
    assert status == 200 and first.get("registered_models", []) == [] and first["next_page_token"]
    seen, token, pages = [], first["next_page_token"], 1
    while token:
        _, page = call(sandbox, "GET", LIST, token=reader, catalog_name="listed", schema_name="ml",
                       max_results=1, page_token=token)  # fmt: skip
        seen += [m["full_name"] for m in page.get("registered_models", [])]
        token, pages = page.get("next_page_token"), pages + 1
    assert (seen, pages) == ([NAMES[1]], len(NAMES))
    # the SDK reads every page: `list` iterates "until next_page_token is absent"
    w = client(sandbox, reader)
    assert [m.full_name for m in w.registered_models.list(catalog_name="listed", schema_name="ml", max_results=1)] == [
        NAMES[1]
    ]


@pytest.mark.parametrize(
    "query",
    [
        {"catalog_name": "listed"},
        {"schema_name": "ml"},
        {"catalog_name": "listed", "schema_name": "ml", "max_results": -1},
    ],
    ids=["catalog-alone", "schema-alone", "negative-max-results"],
)
def test_a_malformed_listing_is_an_invalid_parameter(sandbox, models, query):
    # catalog_name: "If specified, schema_name must be specified."; schema_name: "If specified, catalog_name must
    # be specified."; max_results: "when set to a value less than 0, an invalid parameter error is returned"
    status, body = call(sandbox, "GET", LIST, **query)
    assert (status, body["error_code"]) == (400, "INVALID_PARAMETER_VALUE")
    with pytest.raises(InvalidParameterValue):
        list(client(sandbox).registered_models.list(**query))


def test_the_listing_carries_no_aliases_which_get_gives_when_asked(sandbox, models):
    # `get` takes include_aliases ("Whether to include registered model aliases in the response"); `list` does not
    assert (
        call(sandbox, "POST", f"{UC}/registered-models/alias", {"name": NAMES[0], "alias": "champion", "version": "1"})[
            0
        ]
        == 200
    )
    _, page = call(sandbox, "GET", LIST, catalog_name="listed", schema_name="ml")
    assert [m for m in page["registered_models"] if "aliases" in m] == []
    w = client(sandbox)
    assert [a.alias_name for a in w.registered_models.get(NAMES[0], include_aliases=True).aliases] == ["champion"]
    assert call(sandbox, "GET", f"{LIST}/{NAMES[0]}")[1].get("aliases") is None  # not asked for


def test_updated_at_moves_with_an_update_of_the_model_and_its_aliases_not_with_a_new_version(sandbox, models):
    # update: "Updates the specified registered model"; "To update other registered model or model version
    # metadata (comments, aliases) [...] users must be owners of the registered model". Nothing says a new
    # version updates the registered model: the sandbox does not, so nothing may rely on it.
    name = NAMES[2]

    def stamp() -> int:
        time.sleep(0.005)  # the next change gets a later millisecond
        return listed(sandbox)[name].updated_at

    before = stamp()
    body = {"name": name, "source": "dbfs:/m", "run_id": "r"}
    assert call(sandbox, "POST", f"{UC}/model-versions/create", body)[0] == 200
    assert call(sandbox, "POST", f"{UC}/model-versions/finalize", {"name": name, "version": "2"})[0] == 200
    assert stamp() == before
    assert (
        call(sandbox, "POST", f"{UC}/registered-models/alias", {"name": name, "alias": "champion", "version": "2"})[0]
        == 200
    )
    moved = stamp()
    assert moved > before
    assert call(sandbox, "PATCH", f"{UC}/registered-models/update", {"name": name, "description": "d"})[0] == 200
    assert stamp() > moved
