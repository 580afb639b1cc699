"""The Unity Catalog 2.1 API's read side of the model registry: who created what, as the server recorded it.

What databricks-sdk's `w.registered_models.get(full_name)`, `w.model_versions.get(full_name, version)` and
`w.model_versions.list(full_name)` call, answered with the SDK's own `RegisteredModelInfo` / `ModelVersionInfo`:
`created_by` (and a model's `owner`) is the principal whose token made the create call -- a user's email, a
service principal's application id -- never anything the caller sent. The same principal is MLflow's `user_id`
on the `/api/2.0/mlflow/unity-catalog` side. Reads need what `uc_grants.may_read` says (owner or EXECUTE).
Not served: the 2.1 writes (MLflow's client writes through the 2.0 API), `include_browse`.
"""

from __future__ import annotations

from databricks.sdk.service import catalog as C
from flask import Blueprint, jsonify, request

from .uc_grants import may_read
from .uc_registry import full_name, registry, version_number
from .web import bad, decode_token, encode_token, integer

bp = Blueprint("uc_models", __name__)
MODELS = "/api/2.1/unity-catalog/models"
PAGE = 100


def model_info(m: dict) -> dict:
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
        aliases=[C.RegisteredModelAlias(alias_name=a, version_num=int(v)) for a, v in sorted(m["aliases"].items())],
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


@bp.get(f"{MODELS}/<name>")
def get_model(name: str):
    name = full_name(name)
    with registry.lock:
        may_read(name)
        return jsonify(model_info(registry.model(name)))


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
