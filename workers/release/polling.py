"""Registries without webhooks (Unity Catalog, or any with `[mlflow] poll = true`): poll versions and aliases,
and turn what is new into the same model events the webhooks bring, once each, across restarts.

Per model, in Redis (`core/keys.py`, through `workers.core.state`):
- a watermark: every version numbered <= it is settled. A version created while the worker was down is above
  it, so the next poll finds it, however long the worker was gone;
- above the watermark, a done mark per version whose event was handled, and a short claim while it is handled
  (a worker killed mid-event frees it after keys.POLL_CLAIM_SECONDS, and the event is handled again, never lost);
- the aliases' positions at the last poll (a move, or a new alias, is an `alias_set` event);
- a guard (SET NX EX): at most one poll of a model a minute, however many beats and workers ask.

A poll costs: one search call newest first (a page of PAGE versions; more pages only while the page is all
new, up to MAX_PAGES), one `get_registered_model` for the aliases, and per new version the reads its event
needs. The first poll of a model records what exists as history: no events.
"""

from __future__ import annotations

import time

from core import stages
from core.logs import get_logger
from workers.core import pipelines
from workers.core.context import Deps
from workers.gateways import Version
from workers.release import train as release

log = get_logger("workers.release.polling")

PENDING = "PENDING_REGISTRATION"
FAILED = "FAILED_REGISTRATION"
STUCK_PENDING_MS = 24 * 3600 * 1000  # a registration pending this long was abandoned (its client died)


def poll(deps: Deps, now_ms: int | None = None) -> int:
    """One poll of every configured model that is due; returns how many events it emitted."""
    if not deps.settings.mlflow.poll:
        return 0
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    return sum(poll_model(deps, name, now_ms) for name in watched(deps) if deps.state.poll_due(name))


def watched(deps: Deps) -> list[str]:
    """The registries whose new versions mean work: every model's staging registry (dev versions come from
    PRs and need nothing; prod versions are the bot's own copies)."""
    central = [stages.stage(deps.settings, model, "merge").registry_name for model in deps.settings.models]
    return central + pipelines.released_registries(deps)  # repositories' own models, as last released


def poll_model(deps: Deps, model: str, now_ms: int) -> int:
    """One poll of one model (its guard already taken): new versions, then moved aliases."""
    mark = deps.state.watermark(model)
    if mark is None:  # what exists already is history, not news
        top = deps.registry.recent_versions(model, newer_than=0, max_pages=1)
        aliases = deps.registry.model_aliases(model)
        deps.state.set_watermark(model, max((v.number for v in top), default=0))
        deps.state.save_alias_positions(model, aliases)
        log.info("registry_watch.baseline", model=model, watermark=max((v.number for v in top), default=0))
        return 0
    found = deps.registry.recent_versions(model, newer_than=mark)
    emitted = _new_versions(deps, model, mark, found, now_ms)
    return emitted + _moved_aliases(deps, model, deps.registry.model_aliases(model))


def _new_versions(deps: Deps, model: str, mark: int, found: list[Version], now_ms: int) -> int:
    """Oldest first, one event per settled-for-the-first-time version; the watermark stops below anything
    still pending or handled elsewhere, so that version is looked at again next time."""
    state, emitted, blocked, settled = deps.state, 0, False, mark
    for v in sorted(found, key=lambda v: v.number):
        if v.number <= mark:
            continue
        if state.version_done(model, v.version) or _abandoned(v, now_ms):
            pass
        elif v.status == PENDING or not state.claim_version(model, v.version):
            blocked = True  # files still uploading, or another worker has it
            continue
        elif v.status != FAILED:
            _emit(deps, model, v.version)
            emitted += 1
        else:
            state.finish_version(model, v.version)  # a failed registration: nothing to validate
        if not blocked:
            settled = v.number
    state.set_watermark(model, settled, [v.version for v in found])
    return emitted


def _abandoned(v: Version, now_ms: int) -> bool:
    return v.status == PENDING and v.created > 0 and now_ms - v.created > STUCK_PENDING_MS


def _emit(deps: Deps, model: str, version: str) -> None:
    """Hand the event to the approvals service; the claim is released if that fails (the task is retried)."""
    try:
        release.on_model_event(
            deps, release.ModelEvent("poll", "version_created", model, version), f"poll:{model}:{version}"
        )
    except BaseException:
        deps.state.release_version(model, version)
        raise
    deps.state.finish_version(model, version)


def _moved_aliases(deps: Deps, model: str, aliases: dict[str, str]) -> int:
    """An alias that points elsewhere than at the last poll (or is new) → one `alias_set` event each."""
    before = deps.state.alias_positions(model)
    emitted = 0
    for alias, version in sorted(aliases.items()):
        if before is None or before.get(alias) == version:
            continue  # None: never recorded (polled by the first design): record, announce nothing
        release.on_model_event(
            deps,
            release.ModelEvent("poll", "alias_set", model, version, alias=alias),
            f"poll:{model}:{alias}:{version}",
        )
        emitted += 1
    deps.state.save_alias_positions(model, aliases)  # after the events: a crash repeats one, never loses one
    return emitted
