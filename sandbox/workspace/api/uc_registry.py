"""The Unity Catalog model registry's state and rules, shared by `unity_catalog.py` (the registry API) and
`files.py` (the model files area).

Names follow Databricks' "Names" reference: three levels `catalog.schema.model`, each at most 255 characters,
without period, space, forward slash, ASCII control characters or DEL; "Unity Catalog stores all object names
as lowercase". Versions are decimal strings ("1"), numbered per model and never reused.
State lives in DATA/unity_catalog.json (its own file: the jobs store is not shared), files in DATA/uc-files/.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path

from flask import Blueprint, current_app
from werkzeug.local import LocalProxy

from ...common import JsonStore, on_shutdown
from .web import ApiError, bad, caller

THREE_LEVELS = (
    "Bad model name: please specify all three levels of the model in the form `catalog_name.schema_name.model_name`"
)
BAD_PART = re.compile(r"[ ./\x00-\x1f\x7f]")
VERSION = re.compile(r"^[1-9][0-9]{0,17}$")
ALIAS = re.compile(r"^[\w-]{1,255}$")  # MLflow's own alias rule (mlflow/utils/validation.py)


def now_ms() -> int:
    return int(time.time() * 1000)


def not_found(message: str) -> ApiError:
    return ApiError(404, "RESOURCE_DOES_NOT_EXIST", message)


class Registry(JsonStore):
    """Registered models by full name; their versions by number; grants by securable (`uc_grants.py`); model
    files under `files`."""

    def __init__(self, data_dir: str | os.PathLike):
        super().__init__(data_dir, "unity_catalog.json")
        saved = self.read()
        self.models: dict[str, dict] = saved.get("models", {})
        self.versions: dict[str, dict[str, dict]] = saved.get("versions", {})
        self.grants: dict[str, dict[str, list[str]]] = saved.get("grants", {})  # "kind:name" -> principal -> privs
        self.files = (self.data_dir / "uc-files").resolve()
        self.files.mkdir(exist_ok=True)

    def document(self) -> dict:
        return {"models": self.models, "versions": self.versions, "grants": self.grants}

    # ---- lookups (caller holds `lock`) -----------------------------------------------------------
    def model(self, name: str) -> dict:
        m = self.models.get(name)
        if m is None:
            raise not_found(f"Registered model '{name}' does not exist.")
        return m

    def version(self, name: str, version: str) -> dict:
        self.model(name)
        v = self.versions.get(name, {}).get(version)
        if v is None:
            raise not_found(f"Model version '{name}/{version}' does not exist.")
        return v

    def version_dir(self, name: str, version: str) -> Path:
        return self.files.joinpath("Models", *name.split("."), version)

    def drop_files(self, name: str, version: str | None = None) -> None:
        target = self.version_dir(name, version) if version else self.files.joinpath("Models", *name.split("."))
        if target.resolve().is_relative_to(self.files):
            shutil.rmtree(target, ignore_errors=True)


registry: Registry = LocalProxy(lambda: current_app.extensions["unity_catalog"])  # type: ignore[assignment]


def attach_registry(bp: Blueprint) -> None:
    """Open the registry next to the workspace's state when the blueprint is registered (once per app)."""

    def attach(setup) -> None:
        app = setup.app
        if "unity_catalog" not in app.extensions:
            reg = Registry(app.extensions["workspace"].store.data_dir)
            app.extensions["unity_catalog"] = reg
            on_shutdown(app, reg.flush)

    bp.record_once(attach)


# ---- request checks ------------------------------------------------------------------------------
def full_name(value: object) -> str:
    """A three-level model name, lower-cased as Unity Catalog stores it."""
    if value is None or value == "":
        raise bad("Missing required field: name")
    if not isinstance(value, str):
        raise bad(f"Invalid value for name: {value!r}")
    parts = value.split(".")
    if len(parts) != 3 or not all(parts):
        raise bad(THREE_LEVELS)
    for part in parts:
        if len(part) > 255 or BAD_PART.search(part):
            raise bad(
                f"Invalid name '{part}': names are at most 255 characters, without space, '/' or control characters."
            )
    return value.lower()


def version_number(value: object) -> str:
    """A version is a decimal string in the protocol (`"1"`); a JSON number is not parsed by the service."""
    if value is None or value == "":
        raise bad("Missing required field: version")
    if not isinstance(value, str):
        raise bad(f'Invalid value for version: {value!r} (a version is a string, e.g. "1")')
    if not VERSION.match(value):
        raise bad(f"Invalid version '{value}': a version is a positive integer, e.g. \"1\".")
    return value


def text(body: dict, field: str, required: bool = False) -> str:
    value = body.get(field)
    if value is None or value == "":
        if required:
            raise bad(f"Missing required field: {field}")
        return ""
    if not isinstance(value, str):
        raise bad(f"Invalid value for {field}: {value!r}")
    return value


def alias_name(value: object) -> str:
    """MLflow's rules for alias names: `[\\w-]`, at most 255, not `latest`, not a version alias like `v1`."""
    name = value if isinstance(value, str) else ""
    if not name:
        raise bad("Missing required field: alias")
    if not ALIAS.match(name):
        raise bad(
            f"Invalid alias name: '{name}'. Names may only contain alphanumerics, underscores (_), and dashes (-)."
        )
    if name.lower() == "latest" or re.match(r"^[vV]\d+$", name):
        raise bad(f"Alias name '{name}' is reserved.")
    return name


def tag_list(value: object) -> dict[str, str]:
    """`tags: [{key, value}]` as sent by the client, as a dict."""
    if value in (None, ""):
        return {}
    if not isinstance(value, list):
        raise bad("Invalid value for tags: expected a list of {key, value}")
    tags = {}
    for t in value:
        if not isinstance(t, dict) or not isinstance(t.get("key"), str) or not t["key"]:
            raise bad(f"Invalid tag: {t!r} (every tag needs a non-empty key)")
        tags[t["key"]] = str(t.get("value") or "")
    return tags


# ---- answers -------------------------------------------------------------------------------------
def model_json(m: dict) -> dict:
    out = {k: v for k, v in m.items() if not k.startswith("_") and k not in ("aliases", "tags")}
    out["aliases"] = [{"alias": a, "version": v} for a, v in sorted(m["aliases"].items())]
    out["tags"] = [{"key": k, "value": v} for k, v in sorted(m["tags"].items())]
    return out


def version_json(v: dict, model: dict, with_aliases_and_tags: bool = True) -> dict:
    out = {k: val for k, val in v.items() if k != "tags" and not k.startswith("_")}
    if with_aliases_and_tags:
        out["aliases"] = [{"alias": a, "version": n} for a, n in sorted(model["aliases"].items()) if n == v["version"]]
        out["tags"] = [{"key": k, "value": val} for k, val in sorted(v["tags"].items())]
    return out


def new_model(name: str, description: str, tags: dict[str, str]) -> dict:
    """Created by the caller, who owns it (`user_id` in MLflow's protocol, `created_by`/`owner` in the 2.1 API)."""
    t, who = now_ms(), caller().name
    return {
        "name": name,
        "creation_timestamp": t,
        "last_updated_timestamp": t,
        "user_id": who,
        "_owner": who,
        "description": description,
        "aliases": {},
        "tags": tags,
        "_last_version": 0,
    }


def new_version(name: str, number: str, body: dict, tags: dict[str, str]) -> dict:
    """PENDING_REGISTRATION until finalize; `model_id` only when the client sent one (never made up); `user_id`
    is the principal whose token created it, whatever the body says."""
    t = now_ms()
    v = {
        "name": name,
        "version": number,
        "creation_timestamp": t,
        "last_updated_timestamp": t,
        "user_id": caller().name,
        "description": text(body, "description"),
        "source": text(body, "source", required=True),
        "run_id": text(body, "run_id"),
        "status": "PENDING_REGISTRATION",
        "status_message": "",
        "storage_location": "/Models/" + name.replace(".", "/") + "/" + number,
        "tags": tags,
    }
    for optional in ("run_tracking_server_id", "model_id"):
        if text(body, optional):
            v[optional] = text(body, optional)
    return v
