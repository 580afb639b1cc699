"""Every webhook the forge sent in the scenario, held to both published descriptions of its event and action:
@octokit/webhooks-schemas and the `x-webhooks` of GitHub's OpenAPI description."""

from __future__ import annotations

import json

import pytest

from sandbox.forge.contract import webhook_problems

SENT = [
    ("push", None),
    ("create", None),
    ("delete", None),
    ("pull_request", "opened"),
    ("pull_request", "synchronize"),
    ("pull_request", "closed"),
    ("issue_comment", "created"),
    ("issue_comment", "edited"),
    ("issue_comment", "deleted"),
    ("check_run", "created"),
    ("check_run", "completed"),
    ("check_run", "rerequested"),
    ("status", None),
    ("issues", "opened"),
    ("issues", "closed"),
    ("deployment", "created"),
    ("deployment_status", "created"),
]


@pytest.mark.parametrize(("event", "action"), SENT, ids=[f"{e}.{a}" if a else e for e, a in SENT])
def test_forge_webhook_follows_the_published_schema(played, event, action):
    sent = [json.loads(d["payload"]) for d in played.deliveries if d["event"] == event and d["action"] == action]
    assert sent, f"the scenario sent no {event} {action or ''}"
    assert [str(p) for payload in sent for p in webhook_problems(event, payload)] == []


def test_a_push_that_deletes_a_branch_says_so(played):
    pushes = [json.loads(d["payload"]) for d in played.deliveries if d["event"] == "push"]
    assert any(p["deleted"] and p["after"] == "0" * 40 for p in pushes)


def test_check_run_webhooks_carry_their_check_suite(played):
    # check_run$created requires check_suite.head_branch (null for a commit no branch points at), head_sha, status
    [created] = [
        json.loads(d["payload"]) for d in played.deliveries if d["event"] == "check_run" and d["action"] == "created"
    ]
    suite = created["check_run"]["check_suite"]
    assert suite["head_sha"] == created["check_run"]["head_sha"] and "head_branch" in suite


def test_deployment_statuses_sent_include_the_inactive_one_auto_inactive_added(played):
    # auto_inactive: "Adds a new `inactive` status to all prior non-transient, non-production environment deployments"
    sent = [json.loads(d["payload"]) for d in played.deliveries if d["event"] == "deployment_status"]
    states = [(p["deployment"]["environment"], p["deployment_status"]["state"]) for p in sent]
    assert ("staging", "inactive") in states and ("prod", "failure") in states
