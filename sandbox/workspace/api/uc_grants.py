"""Unity Catalog privileges on the model registry, and the grants API that changes them.

What each call needs, as Databricks documents it (tests/sandbox/test_workspace_principals.py cites each sentence):
* every call: the metastore admin passes; anyone else also needs, on the model's parent catalog and schema,
  ownership or `USE_CATALOG` / `USE_SCHEMA`;
* create a registered model: `CREATE_MODEL` (or `CREATE_FUNCTION`) on the schema;
* create a model version, set or delete an alias, change or delete the model or a version: own the model;
* set or delete a tag (model or version): own the model, or `APPLY_TAG` on it;
* read a model, its versions and their files: own the model, or `EXECUTE` on it.
Privileges are inherited downward (catalog → schema → model); `ALL_PRIVILEGES` holds every privilege but
`MANAGE`; an owner holds every privilege on what it owns, not on what that contains. The metastore admin owns
every catalog and schema (the sandbox serves none of their own APIs). A registered model is owned by the
principal that created it.

Grants API (what databricks-sdk's `w.grants.get/update` call): `GET|PATCH
/api/2.1/unity-catalog/permissions/{securable_type}/{full_name}`, securable types `catalog`, `schema` and
`function` (a registered model; `model` and `registered_model` are taken as the same), case-insensitive.
GET answers `{"privilege_assignments": [{"principal", "privileges"}]}` (`?principal=` narrows it; inherited
grants not included); PATCH takes `{"changes": [{"principal", "add", "remove"}]}` and answers the same shape.
Grants are changed by the metastore admin, the object's owner or a holder of `MANAGE` on it. A principal the
workspace does not know is refused. Not confirmed against a real workspace: the exact messages.
"""

from __future__ import annotations

from flask import Blueprint, jsonify, request

from ..principals import Principal
from .uc_registry import not_found, registry
from .web import ApiError, bad, caller, denied, json_body, workspace

bp = Blueprint("uc_grants", __name__)
KINDS = {"catalog": "catalog", "schema": "schema", "function": "function", "model": "function"}
KINDS["registered_model"] = "function"
LEVELS = {"catalog": 1, "schema": 2, "function": 3}
SHOWN = {"catalog": "Catalog", "schema": "Schema", "function": "Registered Model"}
APPLICABLE = {
    "function": {"ALL_PRIVILEGES", "APPLY_TAG", "BROWSE", "EXECUTE", "MANAGE"},
    "schema": {"ALL_PRIVILEGES", "APPLY_TAG", "BROWSE", "EXECUTE", "MANAGE", "USE_SCHEMA"}
    | {"CREATE_FUNCTION", "CREATE_MODEL", "CREATE_TABLE", "CREATE_VOLUME", "SELECT", "MODIFY", "READ_VOLUME"},
}
APPLICABLE["catalog"] = APPLICABLE["schema"] | {"USE_CATALOG", "CREATE_SCHEMA"}


def _key(kind: str, name: str) -> str:
    return f"{kind}:{name}"


def ancestry(kind: str, name: str) -> list[tuple[str, str]]:
    """The securable and its parents, catalog first: `dev.ml.churn` → catalog dev, schema dev.ml, model."""
    parts = name.split(".")
    return [(k, ".".join(parts[:n])) for k, n in LEVELS.items() if n <= LEVELS[kind]]


def owns(who: Principal, kind: str, name: str) -> bool:
    if kind != "function":
        return who.admin  # the metastore admin owns every catalog and schema
    model = registry.models.get(name)
    return model is not None and model.get("_owner") == who.name


def holds(who: Principal, privilege: str, kind: str, name: str) -> bool:
    """`privilege` on the securable: owned, or granted on it or on a parent (ALL_PRIVILEGES: all but MANAGE)."""
    if owns(who, kind, name):
        return True
    wanted = {privilege} | ({"ALL_PRIVILEGES"} if privilege != "MANAGE" else set())
    return any(wanted & set(registry.grants.get(_key(k, n), {}).get(who.name, [])) for k, n in ancestry(kind, name))


def _may_use(who: Principal, model: str) -> None:
    catalog, schema, _ = ancestry("function", model)
    for (kind, name), privilege in ((catalog, "USE_CATALOG"), (schema, "USE_SCHEMA")):
        if not holds(who, privilege, kind, name):
            raise denied(f"User does not have {privilege.replace('_', ' ')} on {SHOWN[kind]} '{name}'.")


# ---- the checks the registry's views make (the caller holds `registry.lock`) -----------------------
def may_create_model(name: str) -> None:
    who = caller()
    if who.admin:
        return
    _may_use(who, name)
    schema = ancestry("function", name)[1][1]
    if not (holds(who, "CREATE_MODEL", "schema", schema) or holds(who, "CREATE_FUNCTION", "schema", schema)):
        raise denied(f"User does not have CREATE MODEL on Schema '{schema}'.")


def must_own(name: str, what: str) -> None:
    """Create versions, move aliases, change or delete: the model's owner (or the metastore admin) only."""
    who = caller()
    if who.admin:
        return
    _may_use(who, name)
    if not owns(who, "function", name):
        raise denied(f"User is not an owner of Registered Model '{name}': only its owner may {what}.")


def may_tag(name: str) -> None:
    who = caller()
    if not who.admin:
        _may_use(who, name)
        if not holds(who, "APPLY_TAG", "function", name):
            raise denied(f"User does not have APPLY TAG on Registered Model '{name}'.")


def may_read(name: str) -> None:
    who = caller()
    if not who.admin:
        _may_use(who, name)
        if not holds(who, "EXECUTE", "function", name):
            raise denied(f"User does not have EXECUTE on Registered Model '{name}'.")


def readable(name: str) -> bool:
    try:
        may_read(name)
    except ApiError:
        return False
    return True


# ---- the grants API ------------------------------------------------------------------------------
PERMISSIONS = "/api/2.1/unity-catalog/permissions/<securable_type>/<path:full_name>"


def securable(securable_type: str, full_name: str) -> tuple[str, str]:
    kind = KINDS.get(securable_type.lower())
    if kind is None:
        raise bad(f"Unsupported securable type: {securable_type} (the sandbox serves catalog, schema, function).")
    name = full_name.lower()
    parts = name.split(".")
    if len(parts) != LEVELS[kind] or not all(parts):
        raise bad(f"Invalid {kind} name '{full_name}'.")
    if kind == "function" and name not in registry.models:
        raise not_found(f"Registered model '{name}' does not exist.")
    return kind, name


def assignments(kind: str, name: str, principal: str | None = None) -> dict:
    granted = registry.grants.get(_key(kind, name), {})
    return {
        "privilege_assignments": [
            {"principal": p, "privileges": sorted(privs)}
            for p, privs in sorted(granted.items())
            if privs and principal in (None, p)
        ]
    }


@bp.get(PERMISSIONS)
def get_permissions(securable_type: str, full_name: str):
    with registry.lock:
        kind, name = securable(securable_type, full_name)
        return jsonify(assignments(kind, name, request.args.get("principal")))


@bp.patch(PERMISSIONS)
def update_permissions(securable_type: str, full_name: str):
    changes = json_body().get("changes") or []
    if not isinstance(changes, list):
        raise bad("changes: expected a list of {principal, add, remove}")
    with registry.lock:
        kind, name = securable(securable_type, full_name)
        who = caller()
        if not (who.admin or owns(who, kind, name) or holds(who, "MANAGE", kind, name)):
            raise denied(f"User does not have MANAGE on {SHOWN[kind]} '{name}'.")
        granted = registry.grants.setdefault(_key(kind, name), {})
        for change in changes:
            principal, add, remove = _change(change, kind)
            kept = (set(granted.get(principal, [])) | add) - remove
            granted[principal] = sorted(kept)
        registry.save()
        return jsonify(assignments(kind, name))


def _change(change: object, kind: str) -> tuple[str, set[str], set[str]]:
    if not isinstance(change, dict) or not isinstance(change.get("principal"), str) or not change["principal"]:
        raise bad(f"Invalid change: {change!r} (each names a principal)")
    principal = change["principal"]
    if not workspace.principals.known(principal):
        raise bad(f"Could not find principal with name {principal}.")
    add, remove = set(change.get("add") or []), set(change.get("remove") or [])
    for privilege in add | remove:
        if privilege not in APPLICABLE[kind]:
            raise bad(f"Privilege {privilege} is not applicable to this entity [{kind}].")
    return principal, add, remove
