"""The approval policy's rules, in order, as a table: who may approve what."""

import pytest

from workers.policy import approval_refusal as refusal

BASE = {
    "model": "churn-model",
    "version": "2",
    "status": "pending",
    "validation": "passed",
    "repo": "acme/churn-model",
    "pr_author": "alice",
    "trained_by": "alice",
    "approvals": [],
}


@pytest.mark.parametrize(
    "change, approver, role, expected",
    [
        ({}, "bob", "admin", None),
        ({}, "dave", "read", "approving needs write permission"),
        ({}, "bob", "read", None),  # bob is in the model's approvers list
        ({}, "alice", "admin", "four eyes: @alice opened the pull request and started the training of churn-model@2"),
        ({"pr_author": "carol"}, "alice", "admin", "four eyes: @alice started the training"),
        ({"validation": "failed"}, "bob", "admin", "has not passed validation (validation: failed)"),
        ({"validation": "pending"}, "bob", "admin", "has not passed validation (validation: pending)"),
        ({"status": "approved"}, "bob", "admin", "is already approved"),
        ({"approvals": [{"by": "bob"}]}, "bob", "admin", "@bob has approved churn-model@2 already"),
    ],
)
def test_policy(settings, change, approver, role, expected):
    why = refusal({**BASE, **change}, approver, role, settings, "churn-model", "2")
    if expected is None:
        assert why is None
    else:
        assert expected in why


def test_no_request_is_refused_with_a_hint(settings):
    assert "no approval request for churn-model@9" in refusal(None, "bob", "admin", settings, "churn-model", "9")
