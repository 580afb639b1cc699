"""Model-registry deliveries (MLflow webhooks, Databricks registry webhooks) → one model event.

Both registries become the same `model_event` dict, so validation and approvals work with either.
Payload fields are read through `handlers.shapes`: a field of the wrong type reads as missing, and a
version is a positive whole number before anything is queued about it.
"""

from __future__ import annotations

from core import vocabulary as V
from core.config import Settings
from core.events import Event
from core.routing import Action, Ignored, Outcome, Router
from handlers.shapes import ident, items, obj, text, version_problem

router = Router()

# MLflow entity:action → internal kind
MLFLOW_KINDS = {
    ("registered_model", "created"): "model_created",
    ("model_version", "created"): "version_created",
    ("model_version_tag", "set"): "tag_set",
    ("model_version_tag", "deleted"): "tag_deleted",
    ("model_version_alias", "created"): "alias_set",
    ("model_version_alias", "deleted"): "alias_deleted",
}
# about a model, not one of its versions (MLflow's alias deletion names only the alias)
UNVERSIONED_KINDS = frozenset({"model_created", "alias_deleted"})
# Databricks workspace registry event → internal kind
DATABRICKS_KINDS = {
    "REGISTERED_MODEL_CREATED": "model_created",
    "MODEL_VERSION_CREATED": "version_created",
    "MODEL_VERSION_TAG_SET": "tag_set",
    "COMMENT_CREATED": "comment_created",
    "TRANSITION_REQUEST_CREATED": "transition_requested",
    "TRANSITION_REQUEST_TO_STAGING_CREATED": "transition_requested",
    "TRANSITION_REQUEST_TO_PRODUCTION_CREATED": "transition_requested",
    "TRANSITION_REQUEST_TO_ARCHIVED_CREATED": "transition_requested",
    "MODEL_VERSION_TRANSITIONED_STAGE": "stage_transitioned",
    "MODEL_VERSION_TRANSITIONED_TO_STAGING": "stage_transitioned",
    "MODEL_VERSION_TRANSITIONED_TO_PRODUCTION": "stage_transitioned",
    "MODEL_VERSION_TRANSITIONED_TO_ARCHIVED": "stage_transitioned",
}


def model_event(registry: str, kind: str, model: str, version: str = "", **details) -> dict:
    """The internal model-event type: plain values only."""
    return {
        "registry": registry,
        "kind": kind,
        "model": model,
        "version": str(version or ""),
        **{k: v for k, v in details.items() if v not in (None, "", {}, [])},
    }


def _enqueue(event: Event, settings: Settings, mev: dict) -> Outcome:
    # the model's name is one of config's (or a repository's own pipeline may write it): no other reaches a worker
    if not settings.may_write_registry(mev["model"]):
        return Ignored(f"model {mev['model']!r} is no stage's registry_name in [models]")
    needs_version = mev["version"] or mev["kind"] not in UNVERSIONED_KINDS
    if needs_version and (why := version_problem(mev["version"])):
        return Ignored(f"{mev['registry']} {mev['kind']} of {mev['model']}: {why}")
    # a version is created once: whatever a delivery of it is called, one starts validation. Other kinds keep
    # the delivery id, which is signed content already (MLflow signs it; Databricks' is the body's hash), and
    # may legitimately repeat for one version (a transition requested again, a tag set again).
    key = f"registry:{mev['kind']}:{mev['model']}:{mev['version']}" if mev["kind"] == "version_created" else ""
    return [Action(V.HANDLE_MODEL_EVENT, {"model_event": mev, "delivery_id": event.delivery_id}, key)]


@router.register("mlflow", "registered_model")
@router.register("mlflow", "model_version")
@router.register("mlflow", "model_version_tag")
@router.register("mlflow", "model_version_alias")
def on_mlflow_model_event(event: Event, settings: Settings) -> Outcome:
    """MLflow registry webhook → handle_model_event (validation, approvals, reports)."""
    kind = MLFLOW_KINDS.get((event.name, event.action))
    if kind is None:
        return Ignored(f"MLflow {event.name}.{event.action} is not a model event the bot acts on")
    d = event.data
    tags = dict(obj(d, "tags"))
    if "key" in d:
        tags = {text(d, "key"): d.get("value", "")}
    if kind in ("tag_set", "tag_deleted") and tags and all(V.is_bot_tag(k) for k in tags):
        return Ignored(f"tag {', '.join(sorted(tags))} is written by mlops-bot itself")
    mev = model_event(
        "mlflow",
        kind,
        text(d, "name"),
        ident(d, "version"),
        alias=text(d, "alias"),
        tags=tags,
        run_id=text(d, "run_id"),
        source=text(d, "source"),
    )
    return _enqueue(event, settings, mev)


@router.register("databricks", "registry")
def on_databricks_registry_event(event: Event, settings: Settings) -> Outcome:
    """Databricks workspace registry webhook → the same handle_model_event as MLflow's."""
    kind = DATABRICKS_KINDS.get(event.action)
    if kind is None:
        return Ignored(f"Databricks {event.action} is not a model event the bot acts on")
    d = event.data
    tags = {text(t, "key"): t.get("value", "") for t in items(d, "tags")}
    mev = model_event(
        "databricks",
        kind,
        text(d, "model_name"),
        ident(d, "version"),
        tags=tags,
        to_stage=text(d, "to_stage"),
        from_stage=text(d, "from_stage"),
        comment=text(d, "comment"),
        text=text(d, "text"),
    )
    return _enqueue(event, settings, mev)
