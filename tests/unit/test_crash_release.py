"""Crash points of the release train before the approval (issue #12), found by
tests/reliability/test_crash_points.py: the task stops at one write and runs again from its start."""

import json

import pytest

from tests.fakes import Faults, pull, world
from tests.unit.test_crash_promotion import again
from tests.unit.test_release import PR, PROD, SCORED, STAGING, merge, register, ws
from workers.core.state import State
from workers.pr import runs
from workers.release.texts import history_text


@pytest.fixture
def w(settings, redis_client):
    w = world(settings, State(redis_client))
    w.forge.pulls[PR] = pull(PR, author="alice", state="closed")
    w.registry.add_version(PROD, "1", "r-prod-1", {"accuracy": 0.85})
    w.registry.set_alias(PROD, "champion", "1")
    return w


def trained(w) -> int:
    train = merge(w)
    register(w, STAGING, "2", train)
    ws(w, "staging").finish(train, "SUCCESS", json.dumps({"mlflow_run_id": f"r-{STAGING}-2"}))  # its register step
    return train


@pytest.mark.parametrize("kind", ["kill", "lost"])
def test_a_validation_stopped_after_it_started_is_still_followed(w, kind):
    """Crash point: the release comment right after the validate run started (the run again found the approval
    request and answered "already validating": nobody followed the validation, the approval was never asked)."""
    train = trained(w)
    faults = Faults()
    faults.armed(2, kind, on="forge.upsert_comment")  # the first says "registered v2", the second "validation started"
    again(w, faults, lambda deps: runs.follow(deps, "staging", train))
    [validation] = [r for r in ws(w, "staging").runs if r != train]
    assert ("staging", validation, 0) in w.scheduler.follows
    ws(w, "staging").finish(validation, "SUCCESS", json.dumps(SCORED))
    runs.follow(w.deps, "staging", validation)
    assert w.deps.state.approval(STAGING, "2").validation == "passed" and len(w.slack.requests) == 1


def test_a_step_run_again_adds_its_release_history_line_once(w):
    """Crash point: the release comment after the release was saved (the run again added "staging training
    registered v2" a second time)."""
    train = trained(w)
    faults = Faults()
    faults.armed(1, "kill", on="forge.upsert_comment")
    again(w, faults, lambda deps: runs.follow(deps, "staging", train))
    history = [history_text(e) for e in w.deps.state.release("churn-model", "acme/churn-model", PR).history]
    assert history.count("staging training registered `churn-model-staging` v2") == 1
