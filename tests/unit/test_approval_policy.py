"""The approval policy's rules, in order, as a table: who may approve what."""

import pytest

from core.stages import stage
from workers.core.records import ApprovalRequest
from workers.release.policy import approval_refusal as refusal
from workers.release.policy import approvals_needed

BASE = {  # an approval request as the bot saves it (workers/core/records.py reads it back)
    "model": "churn-model",
    "name": "churn-model-staging",
    "version": "2",
    "status": "pending",
    "validation": "passed",
    "repo": "acme/churn-model",
    "pr_author": "alice",
    "trained_by": "alice",
    "proven": True,  # the bot started the training from a merge and recorded it (workers/release/lineage.py)
    "merged_by": "erin",
    # who wrote the PR, as the bot listed it at merge (workers/release/authorship.py): alice opened it, wrote its commit
    "authorship": {
        "authors": [{"role": "opened", "login": "alice"}, {"role": "authored", "login": "alice"}],
        "commits": 1,
    },
    "approvals": [],
    "requested_at": 0.0,
    "claimed": {},
    "mlflow_run_id": "r2",
    "needed": 1,
}


def request(**change) -> ApprovalRequest:
    return ApprovalRequest.from_json({**BASE, **change})


@pytest.mark.parametrize(
    "change, approver, role, listed, expected",
    [
        ({}, "bob", "admin", False, None),
        ({}, "dave", "read", False, "approving needs write permission"),
        ({}, "bob", "read", True, None),  # bob is one of the prod stage's approvers
        (
            {},
            "alice",
            "admin",
            False,
            "four eyes: @alice opened the pull request, wrote commits of it and started the training, "
            "so cannot approve churn-model-staging@2",
        ),
        ({"pr_author": "carol", "authorship": None}, "alice", "admin", True, "four eyes: @alice started the training"),
        ({"validation": "failed"}, "bob", "admin", False, "has not passed validation (validation: failed)"),
        ({"validation": "pending"}, "bob", "admin", False, "has not passed validation (validation: pending)"),
        ({"validation": "cancelled"}, "bob", "admin", False, "has not passed validation (validation: cancelled)"),
        ({"status": "approved"}, "bob", "admin", False, "is already approved"),
        ({"approvals": [{"by": "bob"}]}, "bob", "admin", False, "@bob has approved churn-model-staging@2 already"),
        # lineage the bot cannot prove: tags are only claims, so only listed approvers may approve
        ({"proven": False}, "carol", "admin", False, "churn-model-staging@2 has no lineage the bot can prove"),
        ({"proven": False}, "bob", "admin", True, None),
        ({"proven": False}, "alice", "admin", True, "four eyes: @alice opened the pull request"),
        # no gate decided (a first release, no absolute gate): people do, and only the listed ones
        ({"unchecked": True}, "carol", "admin", False, "no gate decided on churn-model-staging@2"),
        ({"unchecked": True}, "bob", "read", True, None),
        ({"unchecked": True}, "alice", "admin", True, "four eyes: @alice opened the pull request"),
    ],
)
def test_policy(settings, change, approver, role, listed, expected):
    why = refusal(request(**change), approver, role, settings, "churn-model-staging", "2", listed=listed)
    if expected is None:
        assert why is None
    else:
        assert expected in why


def test_an_unproven_refusal_names_the_listed_approvers(settings):
    why = refusal(request(proven=False), "carol", "admin", settings, "churn-model-staging", "2")
    assert "only the model's listed approvers (bob) may approve it, and it needs two of them" in why


def test_an_unchecked_refusal_names_the_listed_approvers_or_says_none_are(settings):
    why = refusal(request(unchecked=True), "carol", "admin", settings, "churn-model-staging", "2")
    assert why == (
        "no gate decided on churn-model-staging@2 (its gates against the champion do not apply yet, and none is "
        "absolute): only the model's listed approvers (bob) may approve it"
    )
    nobody = settings.model_copy(
        update={"models": {"churn-model": settings.models["churn-model"].model_copy(update={"approvers": []})}}
    )
    why = refusal(request(unchecked=True), "carol", "admin", nobody, "churn-model-staging", "2")
    assert "only the model's listed approvers (none are listed: name them in the model's `approvers`)" in why


def test_no_request_is_refused_with_a_hint(settings):
    assert "no approval request for churn-model-staging@9" in refusal(
        None, "bob", "admin", settings, "churn-model-staging", "9"
    )


@pytest.mark.parametrize("proven, required, needed", [(True, 1, 1), (False, 1, 2), (True, 3, 3), (False, 3, 3)])
def test_a_version_without_proven_lineage_needs_two_approvals_at_least(settings, proven, required, needed):
    prod = stage(settings, "churn-model", "approval").model_copy(update={"required_approvals": required})
    assert approvals_needed(proven, prod) == needed
