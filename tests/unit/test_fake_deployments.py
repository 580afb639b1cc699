"""The shared fake forge keeps Deployments like the gateway: one per (sha, environment, payload key)."""

from __future__ import annotations

import pytest

from tests.fakes import FakeForge
from workers.errors import NotFound, RateLimited

REPO = "acme/churn-model"


def test_a_retried_create_returns_the_same_deployment():
    forge = FakeForge()
    first = forge.create_deployment(REPO, "a" * 40, "staging", "v1", {"key": "churn@1"})
    assert forge.create_deployment(REPO, "a" * 40, "staging", "v1", {"key": "churn@1"}) == first


@pytest.mark.parametrize(
    ("sha", "environment", "key"),
    [("b" * 40, "staging", "churn@1"), ("a" * 40, "prod", "churn@1"), ("a" * 40, "staging", "churn@2")],
)
def test_another_commit_environment_or_key_is_another_deployment(sha, environment, key):
    forge = FakeForge()
    first = forge.create_deployment(REPO, "a" * 40, "staging", "v1", {"key": "churn@1"})
    assert forge.create_deployment(REPO, sha, environment, "v1", {"key": key}) != first


def test_statuses_are_kept_in_order_and_an_unknown_deployment_is_not_found():
    forge = FakeForge()
    did = forge.create_deployment(REPO, "a" * 40, "prod", "v1", {"key": "churn@1"})
    forge.set_deployment_status(REPO, did, "in_progress", "deploying")
    forge.set_deployment_status(REPO, did, "success", "serving", environment_url="http://serving")
    assert forge.deployment_states("prod") == [["in_progress", "success"]]
    with pytest.raises(NotFound):
        forge.set_deployment_status(REPO, did + 1, "success", "serving")


def test_a_failure_set_on_the_fake_is_raised():
    forge = FakeForge(failures={"create_deployment": RateLimited("GitHub said 403", 30)})
    with pytest.raises(RateLimited):
        forge.create_deployment(REPO, "a" * 40, "prod", "v1", {"key": "churn@1"})
