"""The due index on a real Redis: work for later waits in a sorted set, beat sends what is due exactly once."""

from __future__ import annotations

import base64
import json
import threading
import time

import pytest

from core import keys
from core.celery_app import SHORT_COUNTDOWN, TASK_TIME_LIMIT, VISIBILITY_TIMEOUT, create_celery, seconds_until
from core.queue import DEFAULT_QUEUE
from core.vocabulary import FOLLOW_RUN
from workers.core.base import CeleryScheduler
from workers.core.state import State

FOLLOW = {"environment": "dev", "run_id": 7, "polls": 3}


@pytest.fixture
def state(redis_client) -> State:
    return State(redis_client)


def member(run_id: int = 7, polls: int = 3) -> str:
    return CeleryScheduler.due_member(FOLLOW_RUN, {"environment": "dev", "run_id": run_id, "polls": polls})


def queued(redis_client) -> list[dict]:
    """The messages on the bot's queue as a worker would read them: headers + decoded (args, kwargs)."""
    out = []
    for raw in reversed(redis_client.lrange(DEFAULT_QUEUE, 0, -1)):
        message = json.loads(raw)
        args, kwargs, _ = json.loads(base64.b64decode(message["body"]))
        out.append({"headers": message["headers"], "args": args, "kwargs": kwargs})
    return out


def test_only_what_is_due_is_sent_and_the_index_forgets_it(state, redis_client):
    now = time.time()
    state.put_due(member(1), now - 1)
    state.put_due(member(2), now + 60)
    assert CeleryScheduler.send_due(state, now) == 1
    [sent] = queued(redis_client)
    assert sent["headers"]["task"] == FOLLOW_RUN and sent["kwargs"]["run_id"] == 1 and sent["args"] == []
    assert [json.loads(m)["kwargs"]["run_id"] for m, _ in state.due_entries()] == [2]
    assert CeleryScheduler.send_due(state, now) == 0  # nothing twice


def test_the_same_work_scheduled_twice_is_one_entry_at_the_later_time(state):
    # a redelivered poll re-schedules the same next poll: the entry moves, the follower chain is not doubled
    state.put_due(member(), 100.0)
    state.put_due(member(), 200.0)
    assert state.due_entries() == [(member(), 200.0)]


def test_members_are_canonical_json_whatever_the_order_of_the_arguments():
    a = CeleryScheduler.due_member(FOLLOW_RUN, {"run_id": 7, "environment": "dev", "polls": 3})
    b = CeleryScheduler.due_member(FOLLOW_RUN, {"polls": 3, "environment": "dev", "run_id": 7})
    assert a == b == member()


def test_two_beats_at_once_send_each_entry_exactly_once(state, redis_client):
    now = time.time()
    for run_id in range(300):  # more than one batch
        state.put_due(member(run_id), now - 1)
    counts: list[int] = []
    barrier = threading.Barrier(4)

    def beat() -> None:
        barrier.wait()
        counts.append(CeleryScheduler.send_due(State(redis_client.__class__.from_url(url(redis_client))), now))

    threads = [threading.Thread(target=beat) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    run_ids = sorted(m["kwargs"]["run_id"] for m in queued(redis_client))
    assert run_ids == list(range(300)) and sum(counts) == 300
    assert state.due_entries() == []


def url(client) -> str:
    kw = client.connection_pool.connection_kwargs
    return f"redis://{kw['host']}:{kw['port']}/{kw.get('db', 0)}"


def test_an_entry_moved_later_after_it_was_read_is_not_sent_early(state, redis_client):
    now = time.time()
    state.put_due(member(), now - 1)
    [read] = state.due(now)
    state.put_due(member(), now + 60)  # re-scheduled between the beat's read and its move
    assert state.send_due(DEFAULT_QUEUE, [(read, CeleryScheduler.message(read, DEFAULT_QUEUE))], now) == 0
    assert queued(redis_client) == [] and len(state.due_entries()) == 1


def test_a_retry_keeps_its_task_id_and_count(state, redis_client):
    entry = CeleryScheduler.due_member("run_command", {"repo": "acme/x", "delivery_id": "d-1"}, "task-1", 3)
    state.put_due(entry, time.time() - 1)
    CeleryScheduler.send_due(state)
    [sent] = queued(redis_client)
    assert (sent["headers"]["id"], sent["headers"]["retries"], sent["headers"]["task"]) == ("task-1", 3, "run_command")
    assert sent["kwargs"] == {"repo": "acme/x", "delivery_id": "d-1"}


@pytest.mark.parametrize(
    "countdown, to_index",
    [
        (None, False),
        (2.0, False),  # the follower's first polls
        (SHORT_COUNTDOWN, False),
        (SHORT_COUNTDOWN + 0.5, True),
        (600.0, True),  # a rate limit's wait
    ],
)
def test_send_task_keeps_only_short_countdowns_as_eta_messages(redis_server, redis_client, countdown, to_index):
    app = create_celery(redis_server.url)
    later: list[tuple] = []
    app.due_index = lambda *entry: later.append(entry)
    app.send_task(FOLLOW_RUN, kwargs=FOLLOW, countdown=countdown, task_id="t-1", retries=2)
    if to_index:
        [(task, kwargs, due_at, task_id, retries)] = later
        assert (task, kwargs, task_id, retries) == (FOLLOW_RUN, FOLLOW, "t-1", 2)
        assert due_at == pytest.approx(time.time() + countdown, abs=2)
        assert queued(redis_client) == []
    else:
        assert later == []
        [sent] = queued(redis_client)
        assert sent["kwargs"] == FOLLOW and (sent["headers"]["eta"] is not None) == bool(countdown)
    app.close()


def test_without_the_workers_hook_send_task_is_celerys_own(redis_server, redis_client):
    app = create_celery(redis_server.url)  # the web process, beat, tests: no due index
    app.send_task(FOLLOW_RUN, kwargs=FOLLOW, countdown=600)
    [sent] = queued(redis_client)
    assert sent["headers"]["eta"] is not None and redis_client.zcard(keys.DUE) == 0
    app.close()


def test_no_message_waits_unacked_in_a_live_worker_longer_than_the_visibility_timeout():
    assert SHORT_COUNTDOWN + TASK_TIME_LIMIT <= VISIBILITY_TIMEOUT <= 120 - 10 - 5  # + restore sweep + worker start
    assert seconds_until(None, None, 0) == 0 and seconds_until(30, None, 0) == 30
