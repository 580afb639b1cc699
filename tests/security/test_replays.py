"""Replays under a new delivery id act again (issue #18): `X-GitHub-Delivery` is not covered by the signature, so
anyone holding a captured delivery can send it again under a new id. What a command or a merge does is keyed on
the signed body — the comment (and the command's place in it), the PR number and merge commit — and a kept plan
that was carried out is done: its replay changes nothing.

On the shared fakes with real Redis: the task functions as the worker calls them (workers/tasks.py), the
delivery id being the only thing that differs.
"""

import pytest

from core.commands import Command
from tests.fakes import pull, world
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
