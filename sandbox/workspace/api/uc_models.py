"""The Unity Catalog 2.1 API's read side of the model registry: who created what, and what changed when.

What databricks-sdk's `w.registered_models.get(full_name)`, `w.registered_models.list(catalog_name=,
schema_name=)`, `w.model_versions.get(full_name, version)` and `w.model_versions.list(full_name)` call, answered
with the SDK's own `RegisteredModelInfo` / `ModelVersionInfo`: `created_by` (and a model's `owner`) is the
principal whose token made the create call -- a user's email, a service principal's application id -- never
anything the caller sent. The same principal is MLflow's `user_id` on the `/api/2.0/mlflow/unity-catalog` side.
Reads need what `uc_grants.may_read` says (owner or EXECUTE).

Listing a schema's registered models (`GET /api/2.1/unity-catalog/models`), as the REST reference and the SDK's
`RegisteredModelsAPI.list` docstring say it (tests/sandbox/test_uc_model_listing.py quotes each sentence):
* "The returned models are filtered based on the privileges of the calling user. For example, the metastore
  admin is able to list all the registered models. A regular user needs to be the owner or have the **EXECUTE**
  privilege on the registered model to receive the registered models in the response. For the latter case, the
  caller must also be the owner or have the **USE_CATALOG** privilege on the parent catalog and the
  **USE_SCHEMA** privilege on the parent schema." -- a model the caller may not read is left out, never refused.
* "PAGINATION BEHAVIOR: The API is by default paginated, a page may contain zero results while still providing
  a next_page_token. Clients must continue reading pages until next_page_token is absent" -- the sandbox pages
  first and filters each page after, so a page the caller may read none of is empty and still has a token.
* `catalog_name`: "If specified, schema_name must be specified" (and the reverse) -- else 400.
* `max_results` with catalog and schema: unset or 0, a page of 10000; above 0, "the minimum of this value and a
  server configured value (10000 ...)"; "a value less than 0, an invalid parameter error". "There is no guarantee of a specific ordering" (the sandbox's is by name).
* `updated_at`: "Last-update timestamp of the registered model". The reference says no more: not whether a new
  version, a tag or an alias counts as an update of the model. The sandbox changes it where the reference
  calls the change an update of the registered model -- `update` (PATCH: "Updates the specified registered
  model") and its aliases ("To update other registered model or model version metadata (comments, aliases)
  ... users must be owners") -- and NOT when a version is created or a tag set, so nothing tested here can
  come to depend on more than that.
* Aliases: `get` takes `include_aliases` ("Whether to include registered model aliases in the response") and
  the sandbox includes them only when it is true; the list takes no such parameter: the sandbox lists without
  them.
Not served: the 2.1 writes (MLflow's client writes through the 2.0 API), `include_browse`, listing the whole
metastore (without catalog and schema), a schema that does not exist (any catalog.schema lists what it holds).
"""

from __future__ import annotations

from databricks.sdk.service import catalog as C
from flask import Blueprint, jsonify, request

from .uc_grants import may_read, readable
from .uc_registry import BAD_PART, full_name, registry, version_number
from .web import ApiError, bad, boolean, decode_token, encode_token, integer

bp = Blueprint("uc_models", __name__)
MODELS = "/api/2.1/unity-catalog/models"
PAGE = 100
SCHEMA_PAGE = 10000  # "a server configured value (10000, as of 4/2/2024)" when catalog and schema are given


def model_info(m: dict, aliases: bool = True) -> dict:
    catalog, schema, name = m["name"].split(".")
    return C.RegisteredModelInfo(
        name=name,
        catalog_name=catalog,
        schema_name=schema,
        full_name=m["name"],
        owner=m.get("_owner"),
        created_by=m.get("user_id"),
        created_at=m["creation_timestamp"],
        updated_at=m["last_updated_timestamp"],
        comment=m.get("description") or None,
        storage_location="/Models/" + m["name"].replace(".", "/"),
        aliases=[C.RegisteredModelAlias(alias_name=a, version_num=int(v)) for a, v in sorted(m["aliases"].items())]
        if aliases
        else None,
    ).as_dict()


def version_info(v: dict, model: dict) -> dict:
    catalog, schema, name = v["name"].split(".")
    aliases = [a for a, n in sorted(model["aliases"].items()) if n == v["version"]]
    return C.ModelVersionInfo(
        model_name=name,
        catalog_name=catalog,
        schema_name=schema,
        version=int(v["version"]),
        created_by=v.get("user_id"),
        created_at=v["creation_timestamp"],
        updated_at=v["last_updated_timestamp"],
        comment=v.get("description") or None,
        run_id=v.get("run_id") or None,
        source=v.get("source"),
        status=C.ModelVersionInfoStatus(v["status"]),
        storage_location=v.get("storage_location"),
        aliases=[C.RegisteredModelAlias(alias_name=a, version_num=int(v["version"])) for a in aliases],
    ).as_dict()


@bp.get(MODELS)
def list_models():
    """One page of a schema's registered models the caller may read (see the module's docstring)."""
    catalog, schema = request.args.get("catalog_name") or "", request.args.get("schema_name") or ""
    if not (catalog and schema):
        if catalog or schema:
            raise bad("catalog_name and schema_name must be specified together")
        raise ApiError(501, "NOT_IMPLEMENTED", "Listing the whole metastore is not served by the sandbox workspace.")
    for part in (catalog, schema):
        if BAD_PART.search(part):
            raise bad(f"Invalid name '{part}'.")
    size = integer(request.args.get("max_results"), "max_results", required=False) or 0
    if size < 0:
        raise bad(f"max_results must be >= 0, got {size}")
    size = min(size or SCHEMA_PAGE, SCHEMA_PAGE)
    prefix = f"{catalog}.{schema}.".lower()
    token = request.args.get("page_token") or ""
    state = decode_token(token) if token else {"start": 0, "in": prefix}
    if not isinstance(state, dict) or state.get("in") != prefix or not isinstance(state.get("start"), int):
        raise bad(f"Invalid page_token: {token!r}")
    start = state["start"]
    with registry.lock:
        names = sorted(n for n in registry.models if n.startswith(prefix))
        page = [model_info(registry.models[n], aliases=False) for n in names[start : start + size] if readable(n)]
    more = start + size < len(names)
    return jsonify(
        {
            "registered_models": page,
            **({"next_page_token": encode_token({"start": start + size, "in": prefix})} if more else {}),
        }
    )


@bp.get(f"{MODELS}/<name>")
def get_model(name: str):
    """With its aliases only when asked (`include_aliases`)."""
    name, aliases = full_name(name), boolean(request.args.get("include_aliases", False))
    with registry.lock:
        may_read(name)
        return jsonify(model_info(registry.model(name), aliases=aliases))


@bp.get(f"{MODELS}/<name>/versions/<version>")
def get_version(name: str, version: str):
    name, version = full_name(name), version_number(version)
    with registry.lock:
        may_read(name)
        return jsonify(version_info(registry.version(name, version), registry.model(name)))


@bp.get(f"{MODELS}/<name>/versions")
def list_versions(name: str):
    """Newest first, `max_results` (0 or unset: a page of 100) a page, `page_token` from the last answer."""
    name = full_name(name)
    size = integer(request.args.get("max_results"), "max_results", required=False) or PAGE
    if not 1 <= size <= 1000:
        raise bad(f"max_results must be between 0 and 1000, got {size}")
    token = request.args.get("page_token") or ""
    state = decode_token(token) if token else {}
    start = state.get("start", 0) if isinstance(state, dict) else 0
    with registry.lock:
        may_read(name)
        model = registry.model(name)
        found = sorted(registry.versions.get(name, {}).values(), key=lambda v: -int(v["version"]))
        chunk = [version_info(v, model) for v in found[start : start + size]]
    more = {"next_page_token": encode_token({"start": start + size})} if start + size < len(found) else {}
    return jsonify({"model_versions": chunk, **more})
