"""Every request the bot sent is a documented operation with a body its schema accepts, and the forge refuses a
request off the contract the way GitHub does (404 for an undocumented operation, 422 for a body off schema)."""

from __future__ import annotations

import pytest
import requests

from sandbox.forge.contract import rest_contract
from tests.contract.conftest import REPO

BOT = {"Authorization": "token ghp_bot"}


def test_the_bot_sent_requests_in_the_scenario(played):
    assert len(played.bot_exchanges()) >= 15


def test_every_request_the_bot_sent_is_documented_and_its_body_valid(played):
    contract = rest_contract()
    problems = [
        str(p) for x in played.bot_exchanges() for p in contract.request_problems(x["method"], x["path"], x["request"])
    ]
    assert problems == []


def test_the_forge_refused_none_of_the_bots_requests(played):
    assert [(x["method"], x["path"], x["status"]) for x in played.bot_exchanges() if x["status"] == 422] == []


@pytest.mark.parametrize(
    ("method", "path", "body", "why"),
    [
        # reactions/create-for-issue-comment: content is one of +1 -1 laugh confused heart hooray rocket eyes
        ("POST", f"/repos/{REPO}/issues/comments/10000/reactions", {"content": "thumbsup"}, "is not one of"),
        # repos/create-commit-status: state is one of error failure pending success
        ("POST", f"/repos/{REPO}/statuses/{'a' * 40}", {"state": "ok"}, "is not one of"),
        # issues/create-comment: body is required
        ("POST", f"/repos/{REPO}/issues/1/comments", {"text": "hi"}, "'body' is a required property"),
        # issues/update-comment: body is a string
        ("PATCH", f"/repos/{REPO}/issues/comments/10000", {"body": 42}, "is not of type 'string'"),
    ],
)
def test_a_body_off_the_schema_is_refused_with_422(forge_url, method, path, body, why):
    r = requests.request(method, forge_url + path, json=body, headers=BOT)
    assert r.status_code == 422 and r.json()["message"].startswith("Invalid request.")
    assert why in r.json()["message"]


def test_an_undocumented_operation_is_404(forge_url):
    # no operation in the OpenAPI description: GitHub answers 404 Not Found
    r = requests.post(f"{forge_url}/repos/{REPO}/pulls/1/comments/react", json={}, headers=BOT)
    assert r.status_code == 404 and r.json()["message"] == "Not Found"


def test_a_path_parameter_of_the_wrong_type_is_404(forge_url):
    # issue_number is an integer in the description
    r = requests.get(f"{forge_url}/repos/{REPO}/issues/one/comments", headers=BOT)
    assert r.status_code == 404
