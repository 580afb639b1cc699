"""What the reconciler asks GitHub at idle, on the shared fakes: a listing unchanged since its last pass is asked with
its ETag and answered 304, a quiet repository waits twice as long after each quiet pass (up to 30 minutes), anything
new brings it back to every beat, and a bot that is a GitHub App whose webhook carries comments lists nothing."""

from __future__ import annotations

import pytest

from core import keys
from core.routing import Action
from tests.fakes import pull, world
from workers.core.delivery_state import Pace
from workers.core.state import State
from workers.delivery import reconciler
from workers.delivery.reconciler import BEAT_SECONDS, QUIET_WAIT_MAX, epoch, iso, next_pace
from workers.errors import Permanent, Transient

REPO, PR = "acme/churn-model", 7
NOW = epoch("2026-11-28T12:00:00Z")


@pytest.fixture
def w(settings, redis_client):
    w = world(settings, State(redis_client))
    w.forge.pulls[PR] = pull(PR)
    w.forge.roles.update(alice="write")
    return w


def as_app(settings):
    github = settings.github.model_copy(update={"app_id": 123, "installation_id": 456})
    return settings.model_copy(update={"github": github})


def said(w, cid: int, body: str, at: float) -> None:
    """alice's comment on the PR, made at `at` (GitHub's clock)."""
    stamp = iso(int(at))
    w.forge.comments[cid] = {"pr": PR, "body": body, "user": "alice", "created_at": stamp, "updated_at": stamp}


def beat(w, now: float) -> list[Action]:
    """The beat's pass at `now`: only the repositories due."""
    queued: list[Action] = []
    reconciler.reconcile(w.deps, queued.append, now=now, due_only=True)
    return queued


def listings(w) -> list[str]:
    return [a for a in w.forge.asked if a.startswith("comments_since")]


def pace(w) -> Pace:
    return w.deps.state.reconcile_paces([REPO])[REPO]


def test_a_quiet_repository_waits_twice_as_long_after_each_quiet_pass_up_to_30_minutes():
    waits, current = [], Pace()
    for _ in range(6):
        current = next_pace(current, NOW, found=False)
        waits.append(current.wait)
    assert waits == [240, 480, 960, 1800, 1800, 1800] and QUIET_WAIT_MAX == 1800
    assert next_pace(current, NOW, found=True).wait == BEAT_SECONDS == 120
    assert next_pace(current, NOW, found=True).due == NOW + 120


def test_an_unchanged_listing_is_asked_with_its_etag_and_a_304_doubles_the_wait(w):
    assert beat(w, NOW) == []  # nothing said: an empty listing, read whole
    assert (pace(w).wait, pace(w).etag != "") == (240, True)
    assert beat(w, NOW + 120) == [] and len(listings(w)) == 1  # not due yet
    beat(w, NOW + 240)
    assert listings(w)[-1].endswith(" 304") and pace(w).wait == 480
    for at in (NOW + 720, NOW + 1680, NOW + 3480):
        beat(w, at)
    assert len(listings(w)) == 5 and all(a.endswith(" 304") for a in listings(w)[1:])
    assert pace(w).wait == QUIET_WAIT_MAX


def test_a_beat_a_little_early_still_passes_and_one_a_beat_early_does_not(w):
    beat(w, NOW)
    beat(w, NOW + 240 - 50)  # beat fires every 2 minutes, a few seconds early or late
    assert len(listings(w)) == 2
    beat(w, NOW + 190 + 480 - 120)
    assert len(listings(w)) == 2


def test_a_command_after_a_304_is_found_queued_once_and_the_repository_is_back_to_every_beat(w):
    beat(w, NOW)
    beat(w, NOW + 240)
    assert listings(w)[-1].endswith(" 304")
    said(w, 1001, "/train toy", at=NOW + 300)
    [action] = beat(w, NOW + 720)
    assert action.kwargs["comment_id"] == 1001 and pace(w).wait == BEAT_SECONDS
    assert beat(w, NOW + 840) == []  # the listing since its second holds it again: judged, nothing new
    assert pace(w).wait == 240 and not listings(w)[-1].endswith(" 304")
    assert beat(w, NOW + 1080) == [] and listings(w)[-1].endswith(" 304")


def test_any_new_comment_is_activity_even_one_with_no_command(w):
    beat(w, NOW)
    beat(w, NOW + 240)
    said(w, 5, "LGTM", at=NOW + 300)  # or the bot's own report, edited as a run goes on
    assert beat(w, NOW + 720) == [] and pace(w).wait == BEAT_SECONDS


def test_a_comment_in_its_grace_period_keeps_no_etag_and_the_next_beat_judges_it(w):
    said(w, 1, "/train", at=NOW - 10)  # the live path may still be on it
    assert beat(w, NOW) == []
    assert (pace(w).etag, pace(w).wait) == ("", BEAT_SECONDS)  # a 304 would hide it next time
    [action] = beat(w, NOW + 120)
    assert action.kwargs["comment_id"] == 1 and not listings(w)[-1].endswith(" 304")


def test_a_listing_over_several_pages_keeps_no_etag_page_one_would_not_show_what_came_after_it(w):
    for cid in range(1, 151):  # 150 comments in one second: the listing since that second is two pages
        said(w, cid, "looks good", at=NOW - 120)
    beat(w, NOW)
    beat(w, NOW + 120)  # nothing new: pages 1 and 2 (and an empty 3) since the watermark's second
    assert (pace(w).wait, pace(w).etag) == (240, "")
    said(w, 151, "/train", at=NOW + 200)  # lands on page 2: page 1 is what it was
    [action] = beat(w, NOW + 360)
    assert action.kwargs["comment_id"] == 151
    assert not any(a.endswith(" 304") for a in listings(w))


def test_github_failing_is_not_read_as_nothing_new(w):
    beat(w, NOW)
    kept = pace(w)
    w.forge.failures["comments_since"] = Transient("GitHub said 502")
    with pytest.raises(Transient):
        beat(w, NOW + 240)
    assert pace(w) == kept  # the task is retried; the pace and the ETag are as they were
    del w.forge.failures["comments_since"]
    said(w, 2, "/train", at=NOW + 100)
    assert [a.kwargs["comment_id"] for a in beat(w, NOW + 240)] == [2]


def test_a_repository_github_refuses_backs_off_too(w):
    # "If you are polling and a resource repeatedly returns a `404 Not Found` response, do not keep requesting it on
    # every poll." (Best practices for using the REST API)
    w.forge.failures["comments_since"] = Permanent("GitHub said 404 to GET /repos/acme/churn-model/issues/comments")
    beat(w, NOW)
    beat(w, NOW + 120)
    assert pace(w).wait == 240 and w.forge.asked == []


def test_the_pace_survives_a_restart(w, settings, redis_client):
    beat(w, NOW)
    again = world(settings, State(redis_client))  # a new worker process: what it knows is in Redis
    beat(again, NOW + 120)
    assert listings(again) == []


def test_a_task_run_with_due_only_false_passes_over_every_repository(w):
    beat(w, NOW)
    reconciler.reconcile(w.deps, print, now=NOW + 1, due_only=False)
    assert len(listings(w)) == 2 and listings(w)[-1].endswith(" 304")


def test_as_a_github_app_whose_webhook_carries_comments_it_lists_nothing_and_asks_once_an_hour(settings, redis_client):
    w = world(as_app(settings), State(redis_client))
    said(w, 1, "/train", at=NOW - 300)
    assert beat(w, NOW) == [] and beat(w, NOW + 120) == []
    assert w.forge.asked == ["app_events"]  # App redelivery covers the comment's failed delivery
    assert 3590 <= redis_client.ttl(keys.app_webhook_comments()) <= reconciler.APP_CHECK_SECONDS
    redis_client.delete(keys.app_webhook_comments())  # an hour later
    beat(w, NOW + 3600)
    assert w.forge.asked == ["app_events", "app_events"]


@pytest.mark.parametrize(
    "why, subscribes, failure",
    [
        ("its webhook does not deliver issue_comment", ["push", "pull_request"], None),
        ("GitHub refused to say", [], Permanent("GitHub said 403 to GET /app")),
    ],
)
def test_as_a_github_app_without_comments_on_its_webhook_it_reconciles_as_with_a_token(
    settings, redis_client, why, subscribes, failure
):
    w = world(as_app(settings), State(redis_client))
    w.forge.app_subscribes = subscribes
    if failure:
        w.forge.failures["app_events"] = failure
    w.forge.pulls[PR] = pull(PR)
    said(w, 1, "/train", at=NOW - 300)
    assert [a.kwargs["comment_id"] for a in beat(w, NOW)] == [1], why
    assert w.deps.state.app_webhook_covers_comments() is False


def test_as_a_github_app_a_transient_failure_to_ask_is_retried_not_read_as_an_answer(settings, redis_client):
    w = world(as_app(settings), State(redis_client))
    w.forge.failures["app_events"] = Transient("GitHub said 502 to GET /app")
    with pytest.raises(Transient):
        beat(w, NOW)
    assert w.deps.state.app_webhook_covers_comments() is None and listings(w) == []
