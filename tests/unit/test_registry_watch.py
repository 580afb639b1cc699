"""Polling a registry without webhooks, on the shared fakes and a real Redis: each model's staging registry is
watched, with a watermark per registry, each new version's event once (also for versions created while no
worker ran), at most one poll a minute, few calls."""

import pytest

from core import keys
from tests.fakes import world
from workers.core.state import State
from workers.errors import Transient
from workers.release import polling as registry_watch
from workers.release import train as release

MODEL = "churn-model-staging"  # the staging registry of config.toml's churn-model: the one that is watched
NOW = 1_800_000_000_000
DAY_MS = 24 * 3600 * 1000


@pytest.fixture
def w(settings, redis_client):
    polled = settings.model_copy(update={"mlflow": settings.mlflow.model_copy(update={"poll": True})})
    w = world(polled, State(redis_client))
    for n in ("1", "2"):
        w.registry.add_version(MODEL, n, f"r{n}")
    w.registry.set_alias(MODEL, "challenger", "1")
    return w


def again(w) -> int:
    """The next poll of the model, as a beat a minute later would run it (the guard has expired)."""
    return registry_watch.poll_model(w.deps, MODEL, NOW)


def validated(w) -> list[str]:
    """Versions whose version_created event reached the release train (each starts one validate run)."""
    return sorted(v for v in ("1", "2", "3", "4", "5", "6", "7") if w.deps.state.approval(MODEL, v))


def test_each_models_staging_registry_is_watched_and_nothing_else(w):
    assert registry_watch.watched(w.deps) == [MODEL]
    registry_watch.poll(w.deps, NOW)
    w.registry.add_version("churn-model-dev", "1", "d1")  # a PR's /train: needs nothing
    w.registry.add_version("churn-model", "1", "p1")  # prod: the bot's own copy
    w.registry.add_version(MODEL, "3", "r3")
    assert again(w) == 1 and validated(w) == ["3"]
    assert w.deps.state.watermark("churn-model") is None and w.deps.state.watermark("churn-model-dev") is None
    assert w.deps.state.approval(MODEL, "3").model == "churn-model"


def test_the_first_poll_records_what_exists_as_history(w):
    assert registry_watch.poll(w.deps, NOW) == 0
    assert w.deps.state.watermark(MODEL) == 2
    assert w.deps.state.alias_positions(MODEL) == {"challenger": "1"}
    assert validated(w) == [] and w.scheduler.follows == []


def test_versions_created_while_no_worker_ran_are_found_at_the_next_poll_once_each(w):
    registry_watch.poll(w.deps, NOW)
    w.registry.add_version(MODEL, "3", "r3")  # the worker is down: nobody polls
    w.registry.add_version(MODEL, "4", "r4")
    assert again(w) == 2
    assert again(w) == 0
    assert validated(w) == ["3", "4"] and len(w.scheduler.follows) == 2
    assert w.deps.state.watermark(MODEL) == 4


def test_at_most_one_poll_a_minute_per_model_however_many_beats_ask(w, redis_client):
    assert registry_watch.poll(w.deps, NOW) == 0
    w.registry.add_version(MODEL, "3", "r3")
    calls = len(w.registry.calls)
    assert registry_watch.poll(w.deps, NOW) == 0  # a second beat, another worker: the guard holds
    assert len(w.registry.calls) == calls
    assert 0 < redis_client.ttl(keys.poll_guard(MODEL)) <= keys.POLL_GUARD_SECONDS
    redis_client.delete(keys.poll_guard(MODEL))  # a minute later
    assert registry_watch.poll(w.deps, NOW) == 1


def test_a_poll_costs_one_search_and_one_model_read(w):
    registry_watch.poll(w.deps, NOW)
    w.registry.calls.clear()
    w.registry.add_version(MODEL, "3", "r3")
    again(w)
    assert w.registry.calls == ["search", "get_registered_model"]


def test_many_new_versions_are_read_page_by_page_down_to_the_watermark(w):
    w.registry.page = 2
    registry_watch.poll(w.deps, NOW)
    for n in range(3, 8):
        w.registry.add_version(MODEL, str(n), f"r{n}")
    w.registry.calls.clear()
    assert again(w) == 5
    assert w.registry.calls.count("search") == 3  # 7 6 | 5 4 | 3 2: stops at the page holding the watermark
    assert w.deps.state.watermark(MODEL) == 7


def test_a_version_still_uploading_waits_and_holds_the_watermark_below_it(w):
    registry_watch.poll(w.deps, NOW)
    w.registry.add_version(MODEL, "3", "r3")
    w.registry.set_status(MODEL, "3", "PENDING_REGISTRATION", created=NOW)
    w.registry.add_version(MODEL, "4", "r4")
    assert again(w) == 1 and validated(w) == ["4"]
    assert w.deps.state.watermark(MODEL) == 2
    w.registry.set_status(MODEL, "3", "READY")
    assert again(w) == 1 and validated(w) == ["3", "4"]
    assert w.deps.state.watermark(MODEL) == 4
    assert again(w) == 0


@pytest.mark.parametrize(
    "status, created",
    [("FAILED_REGISTRATION", NOW), ("PENDING_REGISTRATION", NOW - 2 * DAY_MS)],
    ids=["failed", "abandoned"],
)
def test_a_failed_or_abandoned_registration_is_passed_without_an_event(w, status, created):
    registry_watch.poll(w.deps, NOW)
    w.registry.add_version(MODEL, "3", "r3")
    w.registry.set_status(MODEL, "3", status, created=created)
    assert again(w) == 0 and validated(w) == []
    assert w.deps.state.watermark(MODEL) == 3


def test_a_failed_event_is_handled_again_at_the_next_poll(w, monkeypatch):
    registry_watch.poll(w.deps, NOW)
    w.registry.add_version(MODEL, "3", "r3")
    real = release.on_model_event

    def down(*args, **kwargs):
        raise Transient("Databricks is down")

    monkeypatch.setattr(release, "on_model_event", down)
    with pytest.raises(Transient):
        again(w)
    monkeypatch.setattr(release, "on_model_event", real)
    assert again(w) == 1 and validated(w) == ["3"]


def test_a_version_another_worker_is_handling_is_left_to_it(w):
    registry_watch.poll(w.deps, NOW)
    w.registry.add_version(MODEL, "3", "r3")
    assert w.deps.state.claim_version(MODEL, "3")  # another worker, mid-event (or killed: the claim expires)
    assert again(w) == 0 and w.deps.state.watermark(MODEL) == 2
    w.deps.state.release_version(MODEL, "3")
    assert again(w) == 1


def test_an_alias_moved_or_added_is_one_event(w, monkeypatch):
    registry_watch.poll(w.deps, NOW)
    seen = []
    monkeypatch.setattr(release, "on_model_event", lambda deps, mev, delivery: seen.append((mev, delivery)))
    w.registry.set_alias(MODEL, "challenger", "2")
    w.registry.set_alias(MODEL, "candidate", "1")
    assert again(w) == 2
    assert again(w) == 0
    assert [(m.kind, m.alias, m.version, d) for m, d in seen] == [
        ("alias_set", "candidate", "1", f"poll:{MODEL}:candidate:1"),
        ("alias_set", "challenger", "2", f"poll:{MODEL}:challenger:2"),
    ]


def test_a_model_polled_by_the_first_design_keeps_its_place(w, redis_client):
    redis_client.set(keys.polled_baseline(MODEL), 1)
    redis_client.sadd(keys.polled_versions(MODEL), "1", "2")
    w.registry.add_version(MODEL, "3", "r3")
    assert registry_watch.poll(w.deps, NOW) == 1 and validated(w) == ["3"]


def test_nothing_is_polled_unless_asked(w, settings):
    w = world(settings, w.deps.state)
    assert not settings.mlflow.poll
    assert registry_watch.poll(w.deps, NOW) == 0 and w.registry.calls == []


def test_a_slow_overlapping_poll_neither_lowers_the_watermark_nor_repeats_an_event(w):
    registry_watch.poll(w.deps, NOW)
    w.registry.add_version(MODEL, "3", "r3")
    stale = w.registry.recent_versions(MODEL, newer_than=2)  # a poll slower than the guard's minute read this
    assert (
        again(w) == 1
    )  # meanwhile the next poll handles version 3 (and forgets its done mark: the watermark covers it)
    assert registry_watch._new_versions(w.deps, MODEL, 2, stale, NOW) == 0  # the slow one ends, with its old watermark
    assert w.deps.state.watermark(MODEL) == 3 and validated(w) == ["3"]
    w.deps.state.set_watermark(MODEL, 2)
    assert w.deps.state.watermark(MODEL) == 3
