"""Every answer the forge gave in the scenario, held to the response schema of its operation in GitHub's OpenAPI
description (@octokit/openapi, contracts/github/openapi.json)."""

from __future__ import annotations

import pytest

from sandbox.forge.contract import rest_contract

# What workers/gateways/forge.py calls, and PyGithub's App auth (Auth.AppAuth(...).get_installation_auth)
BOT_OPERATIONS = [
    "GET /repos/{owner}/{repo}/pulls/{pull_number}",
    "GET /repos/{owner}/{repo}/collaborators/{username}/permission",
    "GET /repos/{owner}/{repo}/branches",
    "GET /repos/{owner}/{repo}/pulls",
    "GET /repos/{owner}/{repo}",
    "GET /repos/{owner}/{repo}/commits/{commit_sha}/pulls",
    "GET /repos/{owner}/{repo}/issues/{issue_number}/comments",
    "POST /repos/{owner}/{repo}/issues/{issue_number}/comments",
    "PATCH /repos/{owner}/{repo}/issues/comments/{comment_id}",
    "POST /repos/{owner}/{repo}/statuses/{sha}",
    "GET /repos/{owner}/{repo}/commits/{ref}/check-runs",
    "POST /repos/{owner}/{repo}/check-runs",
    "PATCH /repos/{owner}/{repo}/check-runs/{check_run_id}",
    "POST /app/installations/{installation_id}/access_tokens",
    "GET /app/hook/deliveries",
    "POST /app/hook/deliveries/{delivery_id}/attempts",
    "GET /repos/{owner}/{repo}/deployments",
    "POST /repos/{owner}/{repo}/deployments",
    "POST /repos/{owner}/{repo}/deployments/{deployment_id}/statuses",
    "GET /repos/{owner}/{repo}/issues/comments",
    "GET /app",
]
# What the Environments page reads (PyGithub's own objects in the scenario)
PAGE_OPERATIONS = [
    "GET /repos/{owner}/{repo}/deployments/{deployment_id}",
    "GET /repos/{owner}/{repo}/deployments/{deployment_id}/statuses",
    "GET /repos/{owner}/{repo}/environments",
]


def exchanges_of(played, operation: str) -> list[dict]:
    contract = rest_contract()
    found = []
    for x in played.exchanges:
        op = contract.operation(x["method"], x["path"])
        if op is not None and op.name == operation:
            found.append(x)
    return found


def answer_problems(exchanges: list[dict]) -> list[str]:
    contract = rest_contract()
    return [
        f"{x['method']} {x['path']} -> {problem}"
        for x in exchanges
        for problem in contract.response_problems(x["method"], x["path"], x["status"], x["response"])
    ]


@pytest.mark.parametrize("operation", BOT_OPERATIONS + PAGE_OPERATIONS)
def test_forge_answers_the_bot_as_the_operation_documents(played, operation):
    exchanges = exchanges_of(played, operation)
    assert exchanges, f"the scenario never reached {operation}"
    assert answer_problems(exchanges) == []


def test_the_branch_listing_names_every_branch_the_scenario_pushed(played):
    """The janitor's one listing per repository (repos/list-branches): the branch alice pushed and the default one."""
    [listing] = exchanges_of(played, "GET /repos/{owner}/{repo}/branches")
    assert {"main", "feature/churn"} <= {b["name"] for b in listing["response"]} and answer_problems([listing]) == []


def test_the_reconciler_s_listing_asked_again_with_its_etag_is_a_304_with_no_body(played):
    # "Best practices for using the REST API", § Use conditional requests: "If the response has not changed, you will
    # receive a `304 Not Modified` response." The 304 is documented for any GET there, not in the OpenAPI's operation.
    listed = exchanges_of(played, "GET /repos/{owner}/{repo}/issues/comments")
    assert [x["status"] for x in listed][-2:] == [200, 304] and listed[-1]["response"] is None
    assert answer_problems(listed) == []


def test_every_answer_of_the_scenario_follows_its_schema(played):
    assert answer_problems(played.exchanges) == []
