"""Replays under a new delivery id act again (issue #18): `X-GitHub-Delivery` is not covered by the signature, so
anyone holding a captured delivery can send it again under a new id. What a command or a merge does is keyed on
the signed body — the comment (and the command's place in it), the PR number and merge commit — and a kept plan
that was carried out is done: its replay changes nothing.

On the shared fakes with real Redis: the task functions as the worker calls them (workers/tasks.py), the
delivery id being the only thing that differs. At the receiver (bot.web, a real private Redis, signed as GitHub
signs): the receiver dedupes on the delivery id and on what the signed body says the delivery is (a comment's id,
a push's ref and commits, a PR's number, action, head and `updated_at`) in its one Redis call, so the replay is
answered "duplicate" and nothing is queued.
"""

import pytest

from bot.web import create_app
from core.commands import Command
from tests.conftest import payload
from tests.fakes import pull, world
from tests.integration.test_receiver import queued_tasks
from tests.unit.test_release import MERGE, PR, PROD, REPO, STAGING, merge, released, ws
from workers.core.state import State
from workers.pr import chatops
from workers.release import approvals


@pytest.fixture
def w(settings, redis_client):
    w = world(settings, State(redis_client))
    w.forge.pulls[PR] = pull(PR, author="alice", state="closed", sha=MERGE)
    w.forge.roles.update(alice="admin", bob="write", carol="write", mo="maintain")
    w.registry.add_version(PROD, "1", "r-prod-1", {"accuracy": 0.85})
    w.registry.set_alias(PROD, "champion", "1")
    return w


def rollback_comment(w, delivery_id):
    """mo's `/rollback prod` comment 900, as the worker runs it for a delivery."""
    ctx = chatops.command_context(w.deps, REPO, PR, 900, "mo", delivery_id, 0)
    chatops.run_command(ctx, Command("rollback", environment="prod", line="/rollback prod"))


def test_a_captured_rollback_replayed_under_a_new_delivery_id_moves_nothing(w):
    released(w)
    approvals.decide(w.deps, "approve", STAGING, "2", "bob", "github")
    rollback_comment(w, "d-rollback")
    assert w.registry.aliases[(PROD, "champion")] == "1"
    # the champion moves on through the train (here: back to v2, by another rollback comment)
    ctx = chatops.command_context(w.deps, REPO, PR, 901, "mo", "d-other", 0)
    chatops.run_command(ctx, Command("rollback", environment="prod", version="2", line="/rollback prod 2"))
    assert w.registry.aliases[(PROD, "champion")] == "2", w.forge.comment("reply", "901-0")
    prod_runs = len(ws(w, "prod").runs)
    rollback_comment(w, "d-replayed")  # the captured delivery of comment 900, re-sent under a new id
    assert w.registry.aliases[(PROD, "champion")] == "2"
    assert len(ws(w, "prod").runs) == prod_runs
    assert w.deps.state.champion_history(PROD)[-1] == "2"


def test_a_captured_merge_replayed_under_a_new_delivery_id_trains_once(w):
    first = merge(w, delivery="d-merge")
    again = merge(w, delivery="d-merge-replayed")  # same PR, same merge commit: the same signed merge
    assert again == first and len(ws(w, "staging").runs) == 1
    other = merge(w, pr=9, sha="9" * 40, delivery="d-merge-9")  # another merge is another release
    assert other != first and len(ws(w, "staging").runs) == 2


# --- at the receiver ---------------------------------------------------------------------------------


@pytest.fixture
def client(settings, redis_client, secrets):
    return create_app(settings, redis_client=redis_client).test_client()


@pytest.mark.parametrize(
    ("event", "fixture"),
    [
        ("push", "push_new_branch"),
        ("issue_comment", "issue_comment_pr"),
        ("pull_request", "pull_request_closed_merged"),
    ],
)
def test_a_captured_delivery_re_sent_under_a_new_id_is_a_duplicate_and_queues_nothing(
    client, signer, redis_client, event, fixture
):
    data = payload(fixture)
    if event == "pull_request":  # a merge into the default branch, as GitHub sends it: with its merge commit
        data["pull_request"] = {**data["pull_request"], "merge_commit_sha": "e" * 40}
    body, headers = signer.github(event, data, delivery="d-captured")
    first = client.post("/webhooks/github", data=body, headers=headers)
    assert first.status_code == 202, first.json
    queued = queued_tasks(redis_client)
    assert queued
    if event == "pull_request":
        assert "start_release" in [t["task"] for t in queued]  # the merge starts the release train
    replay = client.post("/webhooks/github", data=body, headers={**headers, "X-GitHub-Delivery": "d-replayed"})
    assert replay.status_code == 200 and replay.json == {"status": "duplicate", "delivery_id": "d-replayed"}
    assert queued_tasks(redis_client) == queued


def test_another_push_to_the_branch_is_queued(client, signer, redis_client):
    """What makes a delivery the same is its content: the next push to the same branch is a new delivery."""
    data = payload("push_new_branch")
    body, headers = signer.github("push", data, delivery="d-push-1")
    assert client.post("/webhooks/github", data=body, headers=headers).status_code == 202
    pushed = {**data, "before": data["after"], "after": "c" * 40}
    body, headers = signer.github("push", pushed, delivery="d-push-2")
    assert client.post("/webhooks/github", data=body, headers=headers).status_code == 202
    # and back again (a force-push undone): from another commit, so another push
    body, headers = signer.github("push", {**data, "before": "c" * 40}, delivery="d-push-3")
    assert client.post("/webhooks/github", data=body, headers=headers).status_code == 202


def test_a_pr_closed_reopened_and_closed_again_at_one_head_is_three_deliveries(client, signer, redis_client):
    data = payload("pull_request_closed_merged")
    data = {**data, "pull_request": {**data["pull_request"], "merged": False, "updated_at": "2026-01-01T10:00:00Z"}}
    body, headers = signer.github("pull_request", data, delivery="d-close-1")
    assert client.post("/webhooks/github", data=body, headers=headers).status_code == 202
    again = {**data, "pull_request": {**data["pull_request"], "updated_at": "2026-01-01T11:00:00Z"}}
    body, headers = signer.github("pull_request", again, delivery="d-close-2")
    assert client.post("/webhooks/github", data=body, headers=headers).status_code == 202
