"""A `/train` comment whose delivery failed (Redis away: the receiver answered 503, and GitHub does not redeliver on
its own) is found again by the reconciler on devstack's `jobs` setup: one run, one report; reconciled again, nothing.

Also the forge's repository-wide comment listing, held to the sentences of GitHub's REST reference the
reconciler relies on (`since`, `sort`, `direction`).
"""

from __future__ import annotations

import time

import pytest
import redis

from core import keys
from core import vocabulary as V
from core.queue import DEFAULT_QUEUE, celery_message
from devstack import setups
from devstack.bot import start_beat, start_worker
from devstack.mlrepo import REPO
from devstack.processes import Service
from devstack.redis import start_again
from devstack.setups import Setup
from devstack.waiting import wait_until
from tests.conftest import SECRETS
from tests.reliability.test_chaos import Forge, logged, pr_ready, workspace_runs


@pytest.fixture
def stack(tmp_path):
    with setups.jobs(tmp_path, dict(SECRETS), worker_concurrency=2) as setup:
        yield setup


def restart_redis(setup: Setup, old: Service) -> None:
    """Start Redis again on its port and directory: it reloads what it kept (append-only file, as devstack runs it)."""
    setup.add("redis", start_again(old))


def supervised(setup: Setup, workers: list[Service]) -> list[Service]:
    """What a supervisor does: a worker or beat that exited on the Redis restart (kombu 5.7 may) is started again."""
    if not workers[-1].alive():
        workers.append(setup.add(f"worker-{len(workers)}", start_worker(setup.workdir, setup.env, concurrency=2)))
    if not setup.services["beat"].alive():
        setup.add("beat", start_beat(setup.workdir, setup.env))
    return workers


def reconcile_now(setup: Setup, workers: list[Service]) -> dict:
    """Queue one pass over every repository, due or not (no grace period: the test's comment is seconds old), and wait
    for what it says."""
    before = len(logged(workers, "reconciler.pass"))
    message = celery_message(V.RECONCILE_COMMENTS, {"grace_seconds": 0, "due_only": False})
    redis.Redis.from_url(setup.url("redis")).lpush(DEFAULT_QUEUE, message)
    passes = wait_until(lambda: logged(workers, "reconciler.pass")[before:], 30, "a reconciler pass")
    return passes[0]


def test_a_train_comment_lost_to_a_redis_outage_is_reconciled_into_one_run_and_one_report(stack):
    started = time.monotonic()
    forge, workers = Forge(stack), [stack.services["worker"]]
    pr, sha = pr_ready(stack, forge, "feature/lost")

    old = stack.services["redis"]
    old.stop()  # SIGTERM: Redis writes its append-only file and exits
    forge.comment(pr, "/train toy")
    [failed] = wait_until(
        lambda: [d for d in forge.deliveries() if d["status"] == "failed"], 20, "the comment's failed delivery"
    )
    assert failed["status_code"] == 503  # the receiver could not enqueue: GitHub would give up here
    restart_redis(stack, old)
    workers = supervised(stack, workers)

    first = reconcile_now(stack, workers)
    assert (first["repo"], first["queued"]) == (REPO, 1)
    wait_until(lambda: set(forge.statuses(sha, "mlops-bot/train")) - {"pending"}, 60, "the train run's report")
    assert forge.statuses(sha, "mlops-bot/train") == ["success", "pending"]  # newest first
    assert workspace_runs(stack, "/feature/lost/train") == 1
    markers = forge.bot_markers(pr)
    assert markers["<!-- mlops-bot:report key=train -->"] == 1

    assert reconcile_now(stack, workers)["queued"] == 0  # past the watermark
    redis.Redis.from_url(stack.url("redis")).delete(keys.comments_watermark(REPO))
    assert reconcile_now(stack, workers)["queued"] == 0  # judged afresh: a worker took it
    time.sleep(1.0)
    assert workspace_runs(stack, "/feature/lost/train") == 1
    assert forge.bot_markers(pr) == markers
    assert time.monotonic() - started < 60


def test_the_forge_lists_a_repository_s_comments_since_a_time_least_recently_updated_first(stack):
    forge = Forge(stack)
    pr, _ = forge.open_pr("feature/listing")
    ids = [forge.comment(pr, f"comment {i}") for i in range(3)]
    time.sleep(1.1)  # GitHub's times are whole seconds
    edited = forge.call("PATCH", f"/repos/{REPO}/issues/comments/{ids[0]}", json={"body": "edited"})
    path = f"/repos/{REPO}/issues/comments"

    # "since: Only show results that were last updated after the given time."
    since = forge.call("GET", path, params={"since": edited["updated_at"]})
    assert [c["id"] for c in since] == [ids[0]]
    # "sort: The property to sort the results by." + "direction: Either asc or desc."
    mine = [c["id"] for c in forge.call("GET", path, params={"sort": "updated", "direction": "asc"}) if c["id"] in ids]
    assert mine == [ids[1], ids[2], ids[0]]
    newest = forge.call("GET", path, params={"sort": "created", "direction": "desc"})
    assert [c["id"] for c in newest if c["id"] in ids] == sorted(ids, reverse=True)
    # a PR's comment says so: its html_url points at /pull/<n>
    assert f"/pull/{pr}#issuecomment-" in since[0]["html_url"]
