"""Polling Unity Catalog by schema, on the shared fakes and a real Redis: which models a pass reads.

One listing per schema a minute gives each model's `updated_at`; a model whose `updated_at` moved is read at
once; every model is read again by the sweep within SWEEP_SECONDS (at most SWEEP_PER_PASS a pass), which is
what finds a change the listing does not show -- Databricks does not say a new version changes `updated_at`,
and the fake, like the sandbox, leaves it alone (an alias set does change it). Time is simulated: each `minute`
is a beat a minute later (the guards have expired).
"""

from __future__ import annotations

import logging

import pytest

from core import keys
from tests.fakes import world
from tests.support.unity_catalog import uc_settings
from workers.core.state import State
from workers.errors import Permanent, Transient
from workers.release import polling as registry_watch
from workers.release import train as release

NOW = 1_800_000_000_000
MINUTE = 60_000
SCHEMAS, PER_SCHEMA = ("staging.a", "staging.b", "staging.c"), 4
MODELS = [f"{schema}.m{i}" for schema in SCHEMAS for i in range(PER_SCHEMA)]
SWEEP_MINUTES = registry_watch.SWEEP_SECONDS // 60


@pytest.fixture
def w(redis_client):
    w = world(uc_settings(MODELS), State(redis_client))
    for model in MODELS:
        w.registry.add_version(model, "1", f"{model}-r1")
    return w


def minute(w, t: int) -> int:
    """The pass a beat runs `t` minutes after NOW: guards expired, as a minute later."""
    for key in w.redis.scan_iter(f"{keys.P}poll-guard*"):
        w.redis.delete(key)
    return registry_watch.poll(w.deps, NOW + t * MINUTE)


def reads(w) -> int:
    """Models read since the calls were last cleared (each read is one search)."""
    return w.registry.calls.count("search")


def listings(w) -> int:
    return sum(c.startswith("list ") for c in w.registry.calls)


def validated(w) -> list[tuple[str, str]]:
    return sorted((m, v) for m in MODELS for v in "1234" if w.deps.state.approval(m, v))


def said(caplog, event: str, reason: str) -> int:
    """How many log lines of `event` give a reason containing `reason`."""
    return sum(r.getMessage() == event and reason in getattr(r, "fields", {}).get("reason", "") for r in caplog.records)


@pytest.fixture(autouse=True)
def redis_of(w, redis_client):
    w.redis = redis_client


def test_the_first_pass_reads_every_model_once_and_records_history(w):
    assert minute(w, 0) == 0
    assert (reads(w), listings(w)) == (len(MODELS), len(SCHEMAS))
    assert all(w.deps.state.watermark(m) == 1 for m in MODELS) and validated(w) == []


def test_at_idle_a_minute_costs_one_listing_per_schema_and_the_sweep(w):
    minute(w, 0)
    w.registry.calls.clear()
    for t in range(1, SWEEP_MINUTES):
        minute(w, t)
    assert (reads(w), listings(w)) == (0, len(SCHEMAS) * (SWEEP_MINUTES - 1))  # nothing changed, nothing read
    per_pass = []
    for t in range(SWEEP_MINUTES, SWEEP_MINUTES + 10):
        before = reads(w)
        minute(w, t)
        per_pass.append(reads(w) - before)
    assert max(per_pass) == registry_watch.SWEEP_PER_PASS and sum(per_pass) == len(MODELS)  # each once, spread
    assert w.registry.calls.count("get_registered_model") == len(MODELS)


def test_an_alias_moved_is_read_at_the_next_minute_as_one_event(w, monkeypatch):
    minute(w, 0)
    seen = []
    monkeypatch.setattr(release, "on_model_event", lambda deps, mev, delivery: seen.append((mev, delivery)))
    w.registry.calls.clear()
    w.registry.set_alias(MODELS[5], "champion", "1")  # the listing's updated_at moves (as in the sandbox)
    minute(w, 1)
    assert reads(w) == 1
    minute(w, 2)
    assert [(m.kind, m.model, m.alias, m.version, d) for m, d in seen] == [
        ("alias_set", MODELS[5], "champion", "1", f"poll:{MODELS[5]}:champion:1")
    ]


def test_a_version_the_listing_does_not_show_is_found_by_the_sweep_once(w):
    minute(w, 0)
    w.registry.add_version(MODELS[7], "2", "r2")  # updated_at unchanged: the listing cannot tell
    found_at = next(t for t in range(1, 3 * SWEEP_MINUTES) if minute(w, t))
    assert found_at <= SWEEP_MINUTES + len(MODELS) // registry_watch.SWEEP_PER_PASS + 1
    for t in range(found_at + 1, found_at + 2 * SWEEP_MINUTES):
        assert minute(w, t) == 0
    assert validated(w) == [(MODELS[7], "2")]


def test_a_version_that_moves_updated_at_is_read_at_the_next_minute(w):
    minute(w, 0)
    w.registry.add_version(MODELS[2], "2", "r2")
    w.registry.touch(MODELS[2])  # a registry whose new versions do change the model's updated_at
    assert minute(w, 1) == 1 and validated(w) == [(MODELS[2], "2")]


def test_versions_created_while_no_worker_ran_are_found_after_a_long_outage(w):
    minute(w, 0)
    w.registry.add_version(MODELS[0], "2", "r2")
    w.registry.add_version(MODELS[11], "2", "r2")
    down = 6 * 60  # six hours without a worker: every model is due for the sweep, a few a pass
    emitted = sum(minute(w, t) for t in range(down, down + len(MODELS) // registry_watch.SWEEP_PER_PASS + 1))
    assert emitted == 2 and validated(w) == [(MODELS[0], "2"), (MODELS[11], "2")]


def test_a_listing_that_fails_transiently_fails_the_pass_and_loses_nothing(w):
    minute(w, 0)
    w.registry.set_alias(MODELS[1], "champion", "1")
    w.registry.listing_error = Transient("Databricks is down")
    with pytest.raises(Transient):
        minute(w, 1)
    assert w.deps.state.alias_positions(MODELS[1]) == {}  # not read: never "nothing changed"
    w.registry.listing_error = None
    w.registry.calls.clear()
    minute(w, 2)
    assert reads(w) == 1 and w.deps.state.alias_positions(MODELS[1]) == {"champion": "1"}


def test_a_refused_listing_is_said_and_its_schema_is_read_model_by_model(w, caplog):
    minute(w, 0)
    w.registry.listing_error = Permanent("PERMISSION_DENIED: no USE SCHEMA")
    w.registry.calls.clear()
    with caplog.at_level(logging.WARNING, logger="workers.release.polling"):
        minute(w, 1)
    assert reads(w) == len(MODELS)  # every schema's listing refused: every model read, as before the listing
    assert said(caplog, "registry_watch.unlisted", "no USE SCHEMA") == len(SCHEMAS)


def test_a_model_the_bot_may_not_read_is_said_and_the_others_are_read(w, caplog, monkeypatch):
    minute(w, 0)
    w.registry.add_version(MODELS[4], "2", "r2")
    w.registry.touch(MODELS[4])
    w.registry.touch(MODELS[3])
    real = w.registry.recent_versions

    def refused(model: str, newer_than: int, max_pages: int = 5):
        if model == MODELS[3]:
            raise Permanent(f"PERMISSION_DENIED: User does not have EXECUTE on Registered Model '{model}'.")
        return real(model, newer_than, max_pages)

    monkeypatch.setattr(w.registry, "recent_versions", refused)  # the fake registry, not the code under test
    with caplog.at_level(logging.WARNING, logger="workers.release.polling"):
        assert minute(w, 1) == 1
    assert validated(w) == [(MODELS[4], "2")]
    assert said(caplog, "registry_watch.refused", "does not have EXECUTE") == 1


def test_a_change_between_the_listing_and_the_read_is_read_again(w, monkeypatch):
    minute(w, 0)
    w.registry.touch(MODELS[6])
    real = w.registry.recent_versions

    def changing(model: str, newer_than: int, max_pages: int = 5):
        found = real(model, newer_than, max_pages)
        if model == MODELS[6] and ("v2", model) not in w.registry.writes:
            w.registry.writes.append(("v2", model))
            w.registry.add_version(model, "2", "r2")  # registered just after this read, and it moves updated_at
            w.registry.touch(model)
        return found

    monkeypatch.setattr(w.registry, "recent_versions", changing)
    assert minute(w, 1) == 0  # read what the listing announced; version 2 came after
    assert minute(w, 2) == 1  # the listing moved again: read again
    assert validated(w) == [(MODELS[6], "2")]
