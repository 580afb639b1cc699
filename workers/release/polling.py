"""Registries without webhooks (Unity Catalog, or any with `[mlflow] poll = true`): poll versions and aliases,
and turn what is new into the same model events the webhooks bring, once each, across restarts.

Which models a pass reads (beat asks every minute; reading a model is `poll_model`, below):
- Unity Catalog: one listing per schema (`GET /api/2.1/unity-catalog/models`, every model of one
  `catalog.schema` the bot may read with its `updated_at`, up to 10,000 a page). A model whose `updated_at` is
  not the one listed before its last read is read now. Databricks documents `updated_at` only as the model's
  "Last-update timestamp" -- not whether a new version or an alias changes it -- so the listing only makes
  news arrive sooner; it is never what makes sure news arrives:
- the sweep: each pass also reads, oldest first, up to SWEEP_PER_PASS models not read for SWEEP_SECONDS.
  Whatever no listing shows is found within max(SWEEP_SECONDS, models / SWEEP_PER_PASS minutes) -- about 34
  minutes for 200 models, 5 1/2 hours for 2,000 -- however long the worker was down.
- a model this design never read (new in the config, or the first pass after an upgrade) is read at once;
  a model's very first read records what exists as history: no events.
- any other registry (nothing to list), or a schema whose listing is refused (said in the log): every model,
  every pass.

Per model, in Redis (`core/keys.py`, through `workers.core.state`):
- a watermark: every version numbered <= it is settled. A version created while the worker was down is above
  it, so the read after it finds it, however long the worker was gone;
- above the watermark, a done mark per version whose event was handled, and a short claim while it is handled
  (a worker killed mid-event frees it after keys.POLL_CLAIM_SECONDS, and the event is handled again, never lost);
- the aliases' positions at the last read (a move, or a new alias, is an `alias_set` event);
- when it was last read, and the `updated_at` listed before that read (recorded after the read: a change
  between the listing and the read shows in the next listing);
- guards (SET NX EX): at most one read of a model, and one listing of a schema, a minute.

Cost: reading a model is one search call newest first (a page of PAGE versions; more pages only while the page is
all new, up to MAX_PAGES), one `get_registered_model` for the aliases, and per new version the reads its event
needs. At idle on Unity Catalog a minute costs one listing per schema plus 2 x SWEEP_PER_PASS reads: 16 requests
for 200 models in 4 schemas (2 a model, 400, before the listing), and 16 for 2,000. Elsewhere 2 a model a minute,
as before.
"""

from __future__ import annotations

import time

from core import stages
from core.logs import get_logger
from workers.core import pipelines
from workers.core.context import Deps
from workers.errors import Permanent
from workers.gateways import Version
from workers.release import train as release

log = get_logger("workers.release.polling")

PENDING = "PENDING_REGISTRATION"
FAILED = "FAILED_REGISTRATION"
STUCK_PENDING_MS = 24 * 3600 * 1000  # a registration pending this long was abandoned (its client died)
SWEEP_SECONDS = 30 * 60  # a model no listing showed changed is read again after this long…
SWEEP_PER_PASS = 6  # …at most this many of them a pass (a minute): 12 requests


def poll(deps: Deps, now_ms: int | None = None) -> int:
    """One pass: read the models that are due (and not read elsewhere this minute); how many events it emitted."""
    if not deps.settings.mlflow.poll:
        return 0
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    emitted, chosen = 0, due(deps, watched(deps), now_ms)
    for model, stamp in chosen:
        if deps.state.poll_due(model):
            emitted += _read(deps, model, stamp, now_ms)
    log.info("registry_watch.pass", read=len(chosen), emitted=emitted)
    return emitted


def watched(deps: Deps) -> list[str]:
    """The registries whose new versions mean work: every model's staging registry (dev versions come from
    PRs and need nothing; prod versions are the bot's own copies)."""
    central = [stages.stage(deps.settings, model, "merge").registry_name for model in deps.settings.models]
    return list(dict.fromkeys(central + pipelines.released_registries(deps)))  # repositories' own, as last released


def due(deps: Deps, models: list[str], now_ms: int) -> list[tuple[str, str | None]]:
    """The models this pass reads, each with the `updated_at` its schema's listing showed ("": not listed; None:
    its schema was not listed this pass)."""
    if not deps.settings.mlflow.uc:
        return [(m, None) for m in models]  # nothing to list: every model, every pass
    listed, blind = _listings(deps, models)
    stamps, read_at = deps.state.poll_marks()
    now = [m for m in models if m in blind or m not in read_at or (m in listed and listed[m] != stamps.get(m))]
    old = [m for m in models if m not in now and now_ms - read_at[m] >= SWEEP_SECONDS * 1000]
    swept = sorted(old, key=read_at.__getitem__)[:SWEEP_PER_PASS]
    return [(m, listed.get(m)) for m in now + swept]


def _listings(deps: Deps, models: list[str]) -> tuple[dict[str, str], set[str]]:
    """model -> the `updated_at` its schema lists now ("": not listed), for each schema not listed elsewhere this
    minute; and the models no listing can speak for (read every pass). A listing that fails transiently fails the
    pass (retried): an error is never taken for "nothing changed"."""
    by_schema: dict[str, list[str]] = {}
    for m in models:  # catalog.schema.model: config refuses any other name on Unity Catalog
        by_schema.setdefault(m.rsplit(".", 1)[0].lower(), []).append(m)
    listed: dict[str, str] = {}
    blind: set[str] = set()
    for schema, members in by_schema.items():
        if not deps.state.listing_due(schema):
            continue  # listed this minute by another pass
        try:
            found = deps.registry.listed_models(schema)
        except Permanent as exc:
            log.warning("registry_watch.unlisted", schema=schema, reason=exc.message, reads=len(members))
            blind.update(members)
            continue
        listed.update({m: str(found[m.lower()]) if m.lower() in found else "" for m in members})
    return listed, blind


def _read(deps: Deps, model: str, stamp: str | None, now_ms: int) -> int:
    """Read one model, then note when and against which listing. A refusal (say, no EXECUTE on that model) is
    said in the log and the others are read; its listed stamp is not noted, so it is read again."""
    try:
        emitted = poll_model(deps, model, now_ms)
    except Permanent as exc:
        log.warning("registry_watch.refused", model=model, reason=exc.message)
        deps.state.note_polled(model, now_ms, None)
        return 0
    deps.state.note_polled(model, now_ms, stamp)
    return emitted


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
