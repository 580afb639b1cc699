"""The App deliveries pass on the shared fakes (real Redis): which failed deliveries GitHub is asked to redeliver,
the watermark, the cap, and nothing at all for a bot with a token."""

from __future__ import annotations

import itertools
import logging

import pytest

from tests.fakes import world
from workers.core.state import State
from workers.delivery import redelivery
from workers.delivery.reconciler import epoch, iso

NOW = epoch("2026-12-07T12:00:00Z")
_ids = itertools.count(1)


def app_world(settings, redis_client, cap: int = 50):
    """The shared fakes for a bot authenticated as a GitHub App."""
    github = settings.github.model_copy(update={"app_id": 123, "installation_id": 456, "redeliver_per_pass": cap})
    return world(settings.model_copy(update={"github": github}), State(redis_client))


@pytest.fixture
def w(settings, redis_client):
    return app_world(settings, redis_client)


def attempt(w, guid: str, status: int, ago: float, redelivery: bool = False) -> int:
    """One attempt of the App's webhook, delivered `ago` seconds before NOW, answered `status` (0: no answer)."""
    aid = next(_ids)
    w.forge.deliveries.append(
        {
            "id": aid,
            "guid": guid,
            "delivered_at": iso(int(NOW - ago)),
            "redelivery": redelivery,
            "status": "OK" if 200 <= status < 300 else "failed",
            "status_code": status,
            "event": "issue_comment",
            "action": "created",
            "installation_id": 456,
            "repository_id": 1,
        }  # fmt: skip
    )
    return aid


def run(w, now: float = NOW, grace: float = redelivery.GRACE_SECONDS) -> list[int]:
    before = len(w.forge.redelivered)
    redelivery.redeliver_failed(w.deps, now=now, grace=grace)
    return w.forge.redelivered[before:]


def test_each_guid_without_a_2xx_attempt_is_redelivered_once_from_its_newest_attempt(w):
    attempt(w, "ok", 202, 300)
    refused = attempt(w, "down", 0, 290)  # no answer (connection refused)
    attempt(w, "busy", 503, 280)
    busy_again = attempt(w, "busy", 503, 200, redelivery=True)
    attempt(w, "late", 503, 270)
    attempt(w, "late", 200, 100, redelivery=True)  # a redelivery got through: done
    attempt(w, "dup", 200, 260)
    attempt(w, "dup", 500, 250, redelivery=True)  # failed after a success: never again
    assert run(w) == [refused, busy_again]


def test_an_attempt_in_its_grace_period_waits_for_the_next_pass(w):
    fresh = attempt(w, "fresh", 503, 10)
    assert run(w) == []
    assert run(w, now=NOW + 60) == [fresh]


def test_the_watermark_keeps_a_failure_from_being_redelivered_twice(w):
    failed = attempt(w, "down", 503, 300)
    assert run(w) == [failed]
    assert run(w, now=NOW + 120) == []  # the redelivery is not attempted yet: nothing to judge
    again = attempt(w, "down", 503, -100, redelivery=True)  # ...then it fails too: one more
    assert run(w, now=NOW + 240) == [again]
    attempt(w, "down", 202, -200, redelivery=True)
    assert run(w, now=NOW + 360) == []
    assert w.deps.state.app_deliveries_watermark() == int(NOW + 200) + 1


def test_the_first_pass_looks_back_an_hour(w):
    attempt(w, "ancient", 503, redelivery.LOOK_BACK_SECONDS + 60)
    recent = attempt(w, "recent", 503, redelivery.LOOK_BACK_SECONDS - 60)
    assert run(w) == [recent]


def test_a_pass_asks_for_at_most_the_cap_and_the_rest_wait_for_the_next(settings, redis_client):
    w = app_world(settings, redis_client, cap=3)
    failed = [attempt(w, f"g{i}", 503, 600 - i * 10) for i in range(5)]  # 5 guids, oldest first
    assert run(w) == failed[:3]
    for i in range(3):  # their redeliveries got through
        attempt(w, f"g{i}", 200, 100, redelivery=True)
    assert run(w, now=NOW + 120) == failed[3:]
    assert run(w, now=NOW + 240) == []


def test_many_pages_are_read_down_to_the_watermark(w):
    failed = [attempt(w, f"g{i}", 503, 1000 - i) for i in range(250)]
    assert run(w) == failed[:50]  # three pages of 100 read, the cap asks 50


def test_with_a_token_the_pass_does_nothing_and_says_so_in_the_debug_log(settings, redis_client, caplog):
    w = world(settings, State(redis_client))
    attempt(w, "down", 503, 300)
    with caplog.at_level(logging.DEBUG, logger="workers.delivery.redelivery"):
        assert redelivery.redeliver_failed(w.deps, now=NOW) == 0
    assert w.forge.redelivered == []
    assert any("redelivery.skipped" in r.getMessage() and r.levelno == logging.DEBUG for r in caplog.records)


@pytest.mark.parametrize(
    ("status", "done"), [(200, True), (202, True), (299, True), (0, False), (301, False), (404, False), (503, False)]
)
def test_only_a_2xx_answer_is_a_success(status, done):
    assert redelivery.succeeded({"status_code": status}) is done


@pytest.mark.parametrize(("status", "again"), [(0, True), (408, True), (429, True), (500, True), (503, True),
                                               (400, False), (401, False), (404, False), (413, False)])  # fmt: skip
def test_only_a_failure_another_attempt_can_mend_is_redelivered(w, status, again):
    """A 4xx is the receiver's decision (a wrong signature, a body over the limit): the same body gets it again."""
    failed = attempt(w, "g", status, 300)
    assert run(w) == ([failed] if again else [])


def test_a_delivery_that_fails_every_time_is_redelivered_three_times_then_left_with_a_warning(w, caplog):
    asked = []
    for n in range(5):
        attempt(w, "doomed", 503, 300 - n * 120, redelivery=n > 0)
        with caplog.at_level(logging.WARNING, logger="workers.delivery.redelivery"):
            asked += run(w, now=NOW + n * 120)
    assert len(asked) == redelivery.MAX_REDELIVERIES
    assert any("redelivery.gave_up" in r.getMessage() for r in caplog.records)
