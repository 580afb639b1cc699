"""Registries without webhooks (Unity Catalog): poll versions and aliases, and turn what is new into
the same model events the webhooks bring, exactly once each.
"""

from __future__ import annotations

from workers import approvals
from workers.context import Deps


def poll(deps: Deps) -> int:
    """One poll of every configured model; returns how many events it emitted."""
    if not deps.settings.mlflow.poll:
        return 0
    return sum(_poll_model(deps, model) for model in deps.settings.models)


def _poll_model(deps: Deps, model: str) -> int:
    versions = deps.registry.versions(model)
    if deps.state.first_poll(model, [v.version for v in versions]):
        return 0  # what exists already is history, not news
    emitted = 0
    for v in versions:
        if deps.state.newly_seen(model, v.version):
            approvals.on_model_event(
                deps,
                {"registry": "poll", "kind": "version_created", "model": model, "version": v.version},
                f"poll:{model}:{v.version}",
            )
            emitted += 1
    for v in versions:  # aliases moved since the last poll become alias_set events, once per move
        for alias in v.aliases:
            if deps.state.alias_moved(model, alias, v.version):
                approvals.on_model_event(
                    deps,
                    {"registry": "poll", "kind": "alias_set", "model": model, "version": v.version, "alias": alias},
                    f"poll:{model}:{alias}:{v.version}",
                )
                emitted += 1
    return emitted
