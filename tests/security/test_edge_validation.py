"""Issue #18, "validate at the edge what is queued": a signed delivery whose values have the wrong shape queues nothing.

A signed receiver fuzz queued a model version `../../x`, an empty branch and a `None` check-run id: the
workers refused them only later, after a task had been written, retried and logged as a failure. Now the
handlers check what they queue (handlers/shapes.py): every delivery here is correctly signed and goes
through the real receiver (Flask app, real Redis); the queue stays empty and the answer says which value
and why. The table tests hold the shape checks to their sources: Git's own `git check-ref-format --branch`
for branch names, and the registries' version numbers ("3", or 3).
"""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
import time
from urllib.parse import urlencode

import pytest

from bot.web import create_app
from handlers.shapes import branch_problem, id_problem, login_problem, sha_problem, version_problem
from tests.conftest import payload
from tests.integration.test_receiver import queued_tasks

pytestmark = pytest.mark.usefixtures("secrets")


@pytest.fixture
def client(settings, redis_client):
    return create_app(settings, redis_client=redis_client).test_client()


def _with(name: str, path: tuple, value, delete: bool = False) -> dict:
    doc = copy.deepcopy(payload(name))
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    if delete:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return doc


def _push(ref: str, after: str = "b" * 40) -> dict:
    return payload("push_new_branch") | {"ref": ref, "after": after}


# (GitHub event, payload, words the answer's reason holds)
GITHUB = {
    "push: empty branch": ("push", _push("refs/heads/"), "the branch name is empty"),
    "push: ../../x": ("push", _push("refs/heads/../../x"), "'..'"),
    "push: leading dash": ("push", _push("refs/heads/-x"), "starts with '-'"),
    "push: @{": ("push", _push("refs/heads/main@{1}"), "'@{'"),
    "push: .lock": ("push", _push("refs/heads/feature/x.lock"), "'.lock'"),
    "push: ends with /": ("push", _push("refs/heads/feature/"), "empty '/' component"),
    "push: control character": ("push", _push("refs/heads/a\x1bb"), "control character"),
    "push: HEAD": ("push", _push("refs/heads/HEAD"), "is 'HEAD'"),
    "push: no commit": ("push", _push("refs/heads/feature/x", after="HEAD~1"), "pushed commit 'HEAD~1'"),
    "deleted branch ..": (
        "delete",
        payload("delete_branch") | {"ref": "../../x"},
        "is no valid Git branch name",
    ),
    "PR head branch ..": (
        "pull_request",
        _with("pull_request_opened", ("pull_request", "head", "ref"), "a..b"),
        "'..'",
    ),
    "PR head commit": (
        "pull_request",
        _with("pull_request_opened", ("pull_request", "head", "sha"), "../../x"),
        "head commit '../../x'",
    ),
    "PR number 0": (
        "pull_request",
        _with("pull_request_opened", ("pull_request", "number"), 0) | {"number": 0},
        "PR number 0 is not a positive whole number",
    ),
    "closed PR branch empty": (
        "pull_request",
        _with("pull_request_closed_merged", ("pull_request", "head", "ref"), ""),
        "the branch name is empty",
    ),
    "comment: PR number as text": (
        "issue_comment",
        _with("issue_comment_pr", ("issue", "number"), "7"),
        "PR number '7'",
    ),
    "comment: no comment id": (
        "issue_comment",
        _with("issue_comment_pr", ("comment", "id"), None, delete=True),
        "comment id None",
    ),
    "comment: negative comment id": (
        "issue_comment",
        _with("issue_comment_pr", ("comment", "id"), -1001),
        "comment id -1001",
    ),
    "check run: no id": (
        "check_run",
        _with("check_run_rerequested", ("check_run", "id"), None),
        "check run id None",
    ),
    "check run: id as bool": (
        "check_run",
        _with("check_run_rerequested", ("check_run", "id"), True),
        "check run id True",
    ),
    "check run: branch ..": (
        "check_run",
        _with("check_run_rerequested", ("check_run", "check_suite", "head_branch"), "../x"),
        "'..'",
    ),
    "check run: PR number as text": (
        "check_run",
        _with("check_run_rerequested", ("check_run", "pull_requests"), [{"number": "7"}]),
        "PR number '7'",
    ),
    "check run: no commit": (
        "check_run",
        _with("check_run_rerequested", ("check_run", "head_sha"), ""),
        "check run commit ''",
    ),
}


@pytest.mark.parametrize("case", GITHUB)
def test_a_github_delivery_with_a_bad_value_queues_nothing_and_says_why(client, signer, redis_client, caplog, case):
    event, doc, why = GITHUB[case]
    body, headers = signer.github(event, doc, delivery=f"d-edge-{case}")
    r = client.post("/webhooks/github", data=body, headers=headers)
    assert (r.status_code, r.json["status"]) == (200, "ignored"), r.json
    assert why in r.json["reason"], r.json["reason"]
    assert queued_tasks(redis_client) == []
    [logged] = [rec.fields for rec in caplog.records if rec.getMessage() == "webhook.ignored"]
    assert logged["reason"] == r.json["reason"] and logged["delivery_id"] == f"d-edge-{case}"


@pytest.mark.parametrize("version", ["../../x", "", "0", "-3", "+3", "03", "3.0", " 3", "3\n", "\u0663", -3, 0, 3.0])
def test_an_mlflow_version_that_is_no_positive_whole_number_queues_nothing(client, signer, redis_client, version):
    doc = payload("mlflow_model_version_created")
    doc["data"]["version"] = version
    body, headers = signer.mlflow(doc)
    r = client.post("/webhooks/mlflow", data=body, headers=headers)
    assert (r.status_code, r.json["status"]) == (200, "ignored"), r.json
    assert "is not a positive whole number" in r.json["reason"]
    assert queued_tasks(redis_client) == []


def test_a_databricks_version_of_a_path_queues_nothing(client, signer, redis_client):
    doc = payload("databricks_model_version_created") | {
        "version": "../../x",
        "event_timestamp": int(time.time() * 1000),
    }
    body, headers = signer.databricks(doc)
    r = client.post("/webhooks/databricks", data=body, headers=headers)
    assert (r.status_code, r.json["status"]) == (200, "ignored"), r.json
    assert r.json["reason"] == (
        "databricks version_created of churn-model: model version '../../x' is not a positive whole number"
    )
    assert queued_tasks(redis_client) == []


@pytest.mark.parametrize(
    "value, why",
    [
        ("churn-model@../../x", "model version '../../x'"),
        ("churn-model@0", "model version '0'"),
        ("../x@3", "model name '../x'"),
        ("churn-model", "is not model@version"),
    ],
)
def test_a_slack_button_with_a_bad_value_queues_nothing_and_slack_shows_why(client, signer, redis_client, value, why):
    doc = payload("slack_button")
    doc["actions"][0]["value"] = value
    body, headers = signer.slack(urlencode({"payload": json.dumps(doc)}).encode())
    r = client.post("/webhooks/slack/interactions", data=body, headers=headers)
    assert r.status_code == 200 and why in r.json["text"], r.json  # Slack shows the text to the person
    assert queued_tasks(redis_client) == []


def test_a_slack_command_from_no_slack_user_id_queues_nothing(client, signer, redis_client):
    form = {"command": "/mlops", "text": "approve churn-model 3", "user_id": "../bob", "trigger_id": "t-1"}
    body, headers = signer.slack(urlencode(form).encode())
    r = client.post("/webhooks/slack/commands", data=body, headers=headers)
    assert r.status_code == 200 and "is not a Slack user id" in r.json["text"], r.json
    assert queued_tasks(redis_client) == []


def test_the_same_deliveries_with_good_values_are_still_queued(client, signer, redis_client):
    """The checks refuse only what no source sends: real values pass, unicode and slashes in branches too."""
    deliveries = [
        ("push", _push("refs/heads/ünï/cödé-1.2_x@y")),
        ("push", _push("refs/heads/feature/x", after="0" * 40) | {"deleted": True}),
        ("pull_request", payload("pull_request_opened")),
        ("pull_request", payload("pull_request_closed_merged")),
        ("issue_comment", payload("issue_comment_pr")),
        ("check_run", payload("check_run_rerequested")),
        ("check_run", _with("check_run_rerequested", ("check_run", "check_suite", "head_branch"), None)),  # a fork's
    ]
    for event, doc in deliveries:
        body, headers = signer.github(event, doc)
        r = client.post("/webhooks/github", data=body, headers=headers)
        assert (r.status_code, r.json["status"]) == (202, "queued"), (event, r.json)
    doc = payload("mlflow_model_version_created")
    doc["data"]["version"] = 3  # MLflow may send the number itself
    body, headers = signer.mlflow(doc)
    assert client.post("/webhooks/mlflow", data=body, headers=headers).status_code == 202


# --- the shape checks, as tables ---------------------------------------------------------------

BRANCHES = [
    "main",
    "feature/better-features",
    "ünï/cödé",
    "release/1.2",
    "a@b",
    "pull/7",
    "x.lockx",
    "",
    "../../x",
    "a..b",
    "-x",
    "HEAD",
    "a/.hidden",
    ".a",
    "a.lock",
    "a/b.lock/c",
    "a/",
    "/a",
    "a//b",
    "a.",
    "a@{1}",
    "@{-1}",
    "a b",
    "a\tb",
    "a\x7fb",
    "a~1",
    "a^",
    "a:b",
    "a?",
    "a*",
    "a[b",
    "a\\b",
]


@pytest.mark.parametrize("name", BRANCHES)
def test_branch_names_are_checked_as_git_checks_them(name, tmp_path):
    """The rules of `git check-ref-format --branch` ("They cannot have two consecutive dots .. anywhere", "cannot
    contain a sequence @{", "no slash-separated component can begin with a dot . or end with the sequence .lock",
    ...; git-check-ref-format(1)), asked of Git itself."""
    git = shutil.which("git")
    if git is None:
        pytest.skip("git is not installed")
    # outside any repository: in one, `--branch` reads `@{-1}` as the branch checked out before
    accepted = (
        subprocess.run([git, "check-ref-format", "--branch", name], capture_output=True, cwd=tmp_path).returncode == 0
    )
    assert (branch_problem(name) == "") is accepted, branch_problem(name)


def test_a_single_at_is_refused_though_git_reads_it_as_the_current_branch():
    """`@` alone is Git's name for HEAD (rule 9: a ref "cannot be the single character @"): never a branch of ours."""
    assert branch_problem("@")


@pytest.mark.parametrize(
    "value, ok",
    [("1", True), ("3", True), ("123456789012", True), ("0", False), ("03", False), ("-3", False), ("+3", False),
     ("3.0", False), ("", False), (" 3", False), ("3 ", False), ("\u0663", False), ("../../x", False), ("1e3", False),
     ("9" * 19, False)],
)  # fmt: skip
def test_a_version_is_a_positive_whole_number_in_digits(value, ok):
    assert (version_problem(value) == "") is ok


@pytest.mark.parametrize(
    "value, ok",
    [(1, True), (2**40, True), (0, False), (-1, False), (None, False), (True, False), ("7", False), (7.0, False),
     (2**63, False)],
)  # fmt: skip
def test_an_id_is_a_positive_whole_number(value, ok):
    assert (id_problem(value, "id") == "") is ok


@pytest.mark.parametrize(
    "check, value, ok",
    [(sha_problem, "b" * 40, True), (sha_problem, "B" * 40, False), (sha_problem, "b" * 39, False),
     (sha_problem, "HEAD", False), (login_problem, "alice", True), (login_problem, "mlops-bot[bot]", True),
     (login_problem, "", False), (login_problem, "-alice", False), (login_problem, "a/b", False)],
)  # fmt: skip
def test_commits_and_logins(check, value, ok):
    assert (check(value) == "") is ok
