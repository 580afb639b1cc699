"""Unity Catalog model registry: the `/api/2.0/mlflow/unity-catalog/...` calls MLflow's UC store makes.

The contract is MLflow's own client (`mlflow/store/_unity_catalog/registry/rest_store.py`, the service and
message protos `databricks_uc_registry_{service,messages}_pb2`), so `MlflowClient(registry_uri="databricks-uc")`
runs unchanged against the sandbox. GET takes its parameters from the query string; POST, PATCH and DELETE from
a JSON body. Errors are `{"error_code", "message"}` with the status databricks-sdk maps the code to
(INVALID_PARAMETER_VALUE 400, RESOURCE_DOES_NOT_EXIST 404, RESOURCE_ALREADY_EXISTS 409).

Served (prefix `/api/2.0/mlflow/unity-catalog`):
* registered-models: `create` (POST), `get` (GET), `update` (PATCH: description; `new_name` → 501),
  `delete` (DELETE: its versions, aliases and files too), `search` (GET, paged), `set-tag` (POST),
  `delete-tag` (DELETE), `alias` (POST set, GET version by alias, DELETE),
  `:is-databricks-sdk-models-artifact-repository-enabled` (GET → false: files go through presigned URLs).
* model-versions: `create` (POST → PENDING_REGISTRATION, numbered per model), `finalize` (POST → READY),
  `get`, `get-download-uri` (GET), `update` (PATCH: description), `delete` (DELETE: its files and aliases too),
  `search` (GET, `filter=name='…'` or `run_id='…'`, newest first, paged; as in the client, no aliases or tags),
  `set-tag` (POST), `delete-tag` (DELETE), `generate-temporary-credentials` (POST → `DEFAULT_STORAGE`).
* The files those credentials lead to: see `files.py`.
* `GET /sandbox/uc/alias-moves?name=…` (the sandbox's own, no token): every alias set on the model, in order.
Every call is checked against the caller's Unity Catalog privileges (`uc_grants.py`: USE CATALOG/USE SCHEMA,
CREATE MODEL, ownership for versions and aliases, APPLY TAG, EXECUTE) and records who made it (`user_id`).
Not served: catalogs and schemas (any catalog.schema is accepted), lineage (`emit-lineage`, the lineage header
is ignored), model serving, deployment jobs, prompts, renames, the `/api/2.1/unity-catalog/*` writes
(`MLFLOW_ENABLE_UC_NATIVE_MODEL_REGISTRY`; `uc_models.py` serves the 2.1 reads). A model's `last_updated_timestamp`
(the 2.1 API's `updated_at`) moves when it is updated or its aliases change, not with a new version or a tag
(`uc_models.py` says why).
Not confirmed against a real workspace: the exact messages; 404 (not an empty list) when searching the
versions of a model that does not exist; write credentials refused once a version is READY.
"""

from __future__ import annotations

import re

from flask import Blueprint, jsonify, request

from .uc_grants import may_create_model, may_read, may_tag, must_own, readable
from .uc_registry import (
    alias_name,
    attach_registry,
    full_name,
    model_json,
    new_model,
    new_version,
    not_found,
    now_ms,
    registry,
    tag_list,
    text,
    version_json,
    version_number,
)
from .web import ApiError, bad, decode_token, encode_token, integer, json_body

bp = Blueprint("unity_catalog", __name__)
attach_registry(bp)
UC = "/api/2.0/mlflow/unity-catalog"
MAX_RESULTS = 10000  # what MLflow's client asks for by default (SEARCH_MODEL_VERSION_MAX_RESULTS_DEFAULT)
FILTER = re.compile(r"""^\s*(name|run_id)\s*=\s*(['"])(.*)\2\s*$""")
OPERATIONS = ("MODEL_VERSION_OPERATION_READ", "MODEL_VERSION_OPERATION_READ_WRITE")


def body_name_version() -> tuple[dict, str, str]:
    body = json_body()
    return body, full_name(body.get("name")), version_number(body.get("version"))


def page(items: list, max_results: int) -> tuple[list, str | None]:
    """One page of `items` and the token for the next, from the `page_token` query parameter."""
    token = request.args.get("page_token") or ""
    state = decode_token(token) if token else {"start": 0}
    start = state.get("start") if isinstance(state, dict) else None
    if not isinstance(start, int) or start < 0:
        raise bad(f"Invalid page_token: {token!r}")
    chunk = items[start : start + max_results]
    more = start + max_results < len(items)
    return chunk, encode_token({"start": start + max_results}) if more else None


def max_results_arg() -> int:
    n = integer(request.args.get("max_results"), "max_results", required=False) or MAX_RESULTS
    if not 1 <= n <= MAX_RESULTS:
        raise bad(f"max_results must be between 1 and {MAX_RESULTS}, got {n}")
    return n


# ---- registered models ---------------------------------------------------------------------------
@bp.post(f"{UC}/registered-models/create")
def create_registered_model():
    body = json_body()
    name, tags = full_name(body.get("name")), tag_list(body.get("tags"))
    with registry.lock:
        may_create_model(name)
        if name in registry.models:
            raise ApiError(409, "RESOURCE_ALREADY_EXISTS", f"Registered model '{name}' already exists.")
        model = registry.models[name] = new_model(name, text(body, "description"), tags)
        registry.save()
        return jsonify({"registered_model": model_json(model)})


@bp.get(f"{UC}/registered-models/get")
def get_registered_model():
    name = full_name(request.args.get("name"))
    with registry.lock:
        may_read(name)
        return jsonify({"registered_model": model_json(registry.model(name))})


@bp.patch(f"{UC}/registered-models/update")
def update_registered_model():
    body = json_body()
    name = full_name(body.get("name"))
    if body.get("new_name"):
        raise ApiError(501, "NOT_IMPLEMENTED", "Renaming a registered model is not served by the sandbox workspace.")
    with registry.lock:
        must_own(name, "change it")
        model = registry.model(name)
        if "description" in body:
            model["description"] = text(body, "description")
        model["last_updated_timestamp"] = now_ms()
        registry.save()
        return jsonify({"registered_model": model_json(model)})


@bp.delete(f"{UC}/registered-models/delete")
def delete_registered_model():
    name = full_name(json_body().get("name"))
    with registry.lock:
        must_own(name, "delete it")
        registry.model(name)
        del registry.models[name]
        registry.versions.pop(name, None)
        registry.drop_files(name)
        registry.save()
    return jsonify({})


@bp.get(f"{UC}/registered-models/search")
def search_registered_models():
    n = max_results_arg()
    with registry.lock:
        models = [model_json(registry.models[k]) for k in sorted(registry.models) if readable(k)]
    chunk, token = page(models, n)
    return jsonify({"registered_models": chunk, **({"next_page_token": token} if token else {})})


@bp.post(f"{UC}/registered-models/set-tag")
def set_registered_model_tag():
    body = json_body()
    name, key = full_name(body.get("name")), text(body, "key", required=True)
    with registry.lock:
        may_tag(name)
        registry.model(name)["tags"][key] = text(body, "value")
        registry.save()
    return jsonify({})


@bp.delete(f"{UC}/registered-models/delete-tag")
def delete_registered_model_tag():
    body = json_body()
    name, key = full_name(body.get("name")), text(body, "key", required=True)
    with registry.lock:
        may_tag(name)
        tags = registry.model(name)["tags"]
        if key not in tags:
            raise not_found(f"Tag '{key}' does not exist on registered model '{name}'.")
        del tags[key]
        registry.save()
    return jsonify({})


@bp.get(f"{UC}/registered-models:is-databricks-sdk-models-artifact-repository-enabled")
def sdk_models_artifact_repository_enabled():
    return jsonify({"is_databricks_sdk_models_artifact_repository_enabled": False})


# ---- aliases -------------------------------------------------------------------------------------
@bp.post(f"{UC}/registered-models/alias")
def set_alias():
    body, name, version = body_name_version()
    alias = alias_name(body.get("alias"))
    with registry.lock:
        must_own(name, "move its aliases")
        registry.version(name, version)
        model = registry.model(name)
        was = model["aliases"].get(alias)
        model["aliases"][alias] = version
        model["last_updated_timestamp"] = now_ms()
        # what the service's audit log would show; served at /sandbox/uc/alias-moves, never in an API answer
        model.setdefault("_alias_moves", []).append({"alias": alias, "from": was, "to": version, "at": now_ms()})
        registry.save()
    return jsonify({})


@bp.get("/sandbox/uc/alias-moves")
def sandbox_alias_moves():
    """Every alias set on a model, in order (`from` → `to`; from == to: set again to the version it named)."""
    name = full_name(request.args.get("name"))
    with registry.lock:
        return jsonify({"name": name, "moves": list(registry.model(name).get("_alias_moves", []))})


@bp.get(f"{UC}/registered-models/alias")
def get_version_by_alias():
    name, alias = full_name(request.args.get("name")), alias_name(request.args.get("alias"))
    with registry.lock:
        may_read(name)
        model = registry.model(name)
        if alias not in model["aliases"]:
            raise not_found(f"Alias '{alias}' does not exist on registered model '{name}'.")
        v = registry.version(name, model["aliases"][alias])
        return jsonify({"model_version": version_json(v, model)})


@bp.delete(f"{UC}/registered-models/alias")
def delete_alias():
    body = json_body()
    name, alias = full_name(body.get("name")), alias_name(body.get("alias"))
    with registry.lock:
        must_own(name, "move its aliases")
        model = registry.model(name)
        if model["aliases"].pop(alias, None) is None:
            raise not_found(f"Alias '{alias}' does not exist on registered model '{name}'.")
        model["last_updated_timestamp"] = now_ms()
        registry.save()
    return jsonify({})


# ---- model versions ------------------------------------------------------------------------------
@bp.post(f"{UC}/model-versions/create")
def create_model_version():
    body = json_body()
    name, tags = full_name(body.get("name")), tag_list(body.get("tags"))
    text(body, "source", required=True)
    with registry.lock:
        must_own(name, "create its versions")
        model = registry.model(name)
        model["_last_version"] += 1
        v = new_version(name, str(model["_last_version"]), body, tags)
        registry.versions.setdefault(name, {})[v["version"]] = v
        registry.save()
        return jsonify({"model_version": version_json(v, model)})


@bp.post(f"{UC}/model-versions/finalize")
def finalize_model_version():
    _, name, version = body_name_version()
    with registry.lock:
        must_own(name, "create its versions")
        v = registry.version(name, version)
        if v["status"] != "READY":
            v.update(status="READY", status_message="", last_updated_timestamp=now_ms())
            registry.save()
        return jsonify({"model_version": version_json(v, registry.model(name))})


@bp.get(f"{UC}/model-versions/get")
def get_model_version():
    name, version = full_name(request.args.get("name")), version_number(request.args.get("version"))
    with registry.lock:
        may_read(name)
        return jsonify({"model_version": version_json(registry.version(name, version), registry.model(name))})


@bp.get(f"{UC}/model-versions/get-download-uri")
def get_model_version_download_uri():
    name, version = full_name(request.args.get("name")), version_number(request.args.get("version"))
    with registry.lock:
        may_read(name)
        return jsonify({"artifact_uri": registry.version(name, version)["storage_location"]})


@bp.patch(f"{UC}/model-versions/update")
def update_model_version():
    body, name, version = body_name_version()
    with registry.lock:
        must_own(name, "change its versions")
        v = registry.version(name, version)
        if "description" in body:
            v["description"] = text(body, "description")
        v["last_updated_timestamp"] = now_ms()
        registry.save()
        return jsonify({"model_version": version_json(v, registry.model(name))})


@bp.delete(f"{UC}/model-versions/delete")
def delete_model_version():
    _, name, version = body_name_version()
    with registry.lock:
        must_own(name, "delete its versions")
        registry.version(name, version)
        model = registry.model(name)
        del registry.versions[name][version]
        kept = {a: n for a, n in model["aliases"].items() if n != version}
        if kept != model["aliases"]:  # its aliases go with it: the model's aliases changed (uc_models.py)
            model.update(aliases=kept, last_updated_timestamp=now_ms())
        registry.drop_files(name, version)
        registry.save()
    return jsonify({})


@bp.get(f"{UC}/model-versions/search")
def search_model_versions():
    n, found, filt = max_results_arg(), [], request.args.get("filter") or ""
    m = FILTER.match(filt)
    if filt and not m:
        raise bad("Unsupported filter: only `name='<catalog.schema.model>'` or `run_id='<run id>'` is supported.")
    field, value = (m.group(1), m.group(3)) if m else ("", "")
    with registry.lock:
        if field == "name":
            may_read(full_name(value))
            model = registry.model(full_name(value))
            found = [version_json(v, model, False) for v in registry.versions.get(model["name"], {}).values()]
        else:
            for versions in registry.versions.values():
                found += [
                    version_json(v, {}, False)
                    for v in versions.values()
                    if (not field or v["run_id"] == value) and readable(v["name"])
                ]
    found.sort(key=lambda v: (v["name"], -int(v["version"])))
    chunk, token = page(found, n)
    return jsonify({"model_versions": chunk, **({"next_page_token": token} if token else {})})


@bp.post(f"{UC}/model-versions/set-tag")
def set_model_version_tag():
    body, name, version = body_name_version()
    key = text(body, "key", required=True)
    with registry.lock:
        may_tag(name)
        v = registry.version(name, version)
        v["tags"][key] = text(body, "value")
        v["last_updated_timestamp"] = now_ms()
        registry.save()
    return jsonify({})


@bp.delete(f"{UC}/model-versions/delete-tag")
def delete_model_version_tag():
    body, name, version = body_name_version()
    key = text(body, "key", required=True)
    with registry.lock:
        may_tag(name)
        v = registry.version(name, version)
        if v["tags"].pop(key, None) is None:
            raise not_found(f"Tag '{key}' does not exist on model version '{name}/{version}'.")
        v["last_updated_timestamp"] = now_ms()
        registry.save()
    return jsonify({})


@bp.post(f"{UC}/model-versions/generate-temporary-credentials")
def generate_temporary_credentials():
    """Default storage: the client then asks `/api/2.0/fs/create-{upload,download}-url` per file."""
    body, name, version = body_name_version()
    operation = body.get("operation")
    if operation not in OPERATIONS:
        raise bad(f"Invalid operation: {operation!r}, expected one of {', '.join(OPERATIONS)}")
    with registry.lock:
        must_own(name, "write its versions' files") if operation.endswith("READ_WRITE") else may_read(name)
        v = registry.version(name, version)
        if operation.endswith("READ_WRITE") and v["status"] != "PENDING_REGISTRATION":
            raise bad(f"Model version '{name}/{version}' is {v['status']}: its files can no longer be written.")
    return jsonify({"credentials": {"storage_mode": "DEFAULT_STORAGE", "expiration_time": now_ms() + 15 * 60 * 1000}})
