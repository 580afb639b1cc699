"""The contract checks can fail: an answer, a webhook or a bot request bent away from the spec is reported."""

from __future__ import annotations

import copy
import json

from sandbox.forge.contract import rest_contract, webhook_problems


def bot_exchange(played, suffix: str, method: str = "GET") -> dict:
    return next(x for x in played.bot_exchanges() if x["method"] == method and x["path"].endswith(suffix))


def test_a_pull_request_answer_without_number_is_reported(played):
    x = copy.deepcopy(bot_exchange(played, "/pulls/1"))
    assert rest_contract().response_problems(x["method"], x["path"], x["status"], x["response"]) == []
    del x["response"]["number"]
    [problem] = rest_contract().response_problems(x["method"], x["path"], x["status"], x["response"])
    assert "'number' is a required property" in problem.message


def test_a_permission_answer_with_an_unknown_role_is_reported(played):
    x = copy.deepcopy(bot_exchange(played, "/collaborators/alice/permission"))
    x["response"]["permission"] = 3
    assert rest_contract().response_problems(x["method"], x["path"], x["status"], x["response"])


def test_an_undocumented_status_code_is_reported(played):
    x = next(e for e in played.bot_exchanges() if e["method"] == "POST" and "/statuses/" in e["path"])
    [problem] = rest_contract().response_problems(x["method"], x["path"], 202, x["response"])
    assert "status 202 is not documented" in problem.message


def test_a_bent_bot_request_is_reported(played):
    x = copy.deepcopy(next(e for e in played.bot_exchanges() if e["method"] == "POST" and "/statuses/" in e["path"]))
    x["request"]["state"] = "passed"
    [problem] = rest_contract().request_problems(x["method"], x["path"], x["request"])
    assert "'passed' is not one of" in problem.message


def test_a_webhook_without_its_repository_is_reported(played):
    push = next(json.loads(d["payload"]) for d in played.deliveries if d["event"] == "push")
    assert webhook_problems("push", push) == []
    del push["repository"]
    assert any("'repository' is a required property" in p.message for p in webhook_problems("push", push))


def test_a_pull_request_webhook_with_a_string_number_is_reported(played):
    opened = next(
        json.loads(d["payload"]) for d in played.deliveries if d["event"] == "pull_request" and d["action"] == "opened"
    )
    opened["number"] = str(opened["number"])
    assert webhook_problems("pull_request", opened)


def test_only_a_deleted_forks_null_head_repository_is_let_through(played):
    # GitHub answers head.repo null once the fork is deleted (github/rest-api-description#161, #424, #1811)
    x = copy.deepcopy(bot_exchange(played, "/pulls/1"))
    x["response"]["head"]["repo"] = None
    assert rest_contract().response_problems(x["method"], x["path"], x["status"], x["response"]) == []
    x["response"]["head"]["repo"] = "gone"
    assert rest_contract().response_problems(x["method"], x["path"], x["status"], x["response"])
    x["response"]["head"]["repo"], x["response"]["base"]["repo"] = x["response"]["base"]["repo"], None
    assert rest_contract().response_problems(x["method"], x["path"], x["status"], x["response"])


def test_a_deployment_status_webhook_with_an_undocumented_state_is_reported(played):
    sent = next(json.loads(d["payload"]) for d in played.deliveries if d["event"] == "deployment_status")
    assert webhook_problems("deployment_status", sent) == []
    sent["deployment_status"]["state"] = "deployed"
    assert any("'deployed' is not one of" in p.message for p in webhook_problems("deployment_status", sent))


def test_a_bent_deployment_request_is_reported(played):
    x = copy.deepcopy(bot_exchange(played, "/deployments", method="POST"))
    assert rest_contract().request_problems(x["method"], x["path"], x["request"]) == []
    x["request"]["auto_merge"] = "no"
    [problem] = rest_contract().request_problems(x["method"], x["path"], x["request"])
    assert "'no' is not of type 'boolean'" in problem.message
