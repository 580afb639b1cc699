"""The sandbox forge answers what GitHub answers where the bot is easily fooled: rate limits (primary and secondary,
403 or 429, as an injectable fault), a lost response after the write happened, custom repository roles, a deleted
fork's pull requests, `form` webhooks, a fork's check runs, and the pull requests of a commit.

Each answer is held to GitHub's published contract (contracts/github, @octokit/openapi and webhook schemas)."""

from __future__ import annotations

import hashlib
import hmac
import json
import subprocess
import textwrap
import time
from urllib.parse import parse_qs

import pytest
import requests
from github import Auth, Github, RateLimitExceededException

from devstack.sandboxes import start_forge
from sandbox.forge.contract import rest_contract, webhook_problems
from tests.contract.conftest import git, push_commit
from tests.support.app_keys import APP_SEED, app_key_pair
from tests.support.forge_seeds import ML_ENGINEER_ROLE, users
from tests.support.receivers import Receiver

REPO = "acme/churn-model"
SECRET = "limits-secret"
TOKENS = {"alice": "ghp_alice", "bob": "ghp_bob", "dave": "ghp_dave", "frank": "ghp_frank"}


def payloads(hook: Receiver, event: str) -> list[dict]:
    """The payloads of `event`'s deliveries (form-encoded: `payload=<JSON>`)."""
    return [
        json.loads(parse_qs(d["raw"].decode())["payload"][0])
        for d in hook.got
        if d["headers"].get("X-GitHub-Event") == event
    ]


@pytest.fixture(scope="module")
def forge(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("limits")
    pem, hook = app_key_pair(tmp), Receiver("/hook")
    (tmp / "seed.toml").write_text(
        users(TOKENS)
        + ML_ENGINEER_ROLE
        + textwrap.dedent(f"""\
        [[repos]]
        full_name = "{REPO}"
        permissions = {{ alice = "write", bob = "admin", dave = "ml-engineer" }}
        [repos.webhook]
        url = "{hook.url}"
        secret = "{SECRET}"
        content_type = "form"
        events = ["*"]
        """)
        + APP_SEED
    )
    service = start_forge(tmp, tmp / "seed.toml")
    service.pem, service.hook, service.tmp = pem, hook, tmp
    yield service
    service.stop()
    hook.close()


def as_user(forge, login: str, **kwargs) -> Github:
    return Github(base_url=forge.url, auth=Auth.Token(TOKENS[login]), seconds_between_requests=0,
                  seconds_between_writes=0, **kwargs)  # fmt: skip


def api(forge, method: str, path: str, login: str = "alice", **kwargs) -> requests.Response:
    return requests.request(method, forge.url + path, headers={"Authorization": f"token {TOKENS[login]}"}, **kwargs)


def add_fault(forge, spec: str) -> None:
    r = requests.post(f"{forge.url}/sandbox/faults", json={"spec": spec})
    assert r.status_code == 201, r.text


def basic_error_problems(body: dict) -> list:
    # Rate limits apply to every operation (GitHub's REST docs), so their body is GitHub's basic-error
    contract = rest_contract()
    return contract.errors({"$ref": "#/components/schemas/basic-error"}, body, "rate limit")


# --- rate limits ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("status", [403, 429])
def test_a_primary_rate_limit_says_remaining_0_and_when_it_resets(forge, status):
    # "If you exceed your primary rate limit, you will receive a 403 or 429 response, and the x-ratelimit-remaining
    # header will be 0. You should not retry your request until after the time specified by the x-ratelimit-reset"
    add_fault(forge, f"GET:/repos/{REPO}/branches/*=primary,status={status},wait=30:1")
    r = api(forge, "GET", f"/repos/{REPO}/branches/main")
    assert r.status_code == status and r.headers["x-ratelimit-remaining"] == "0"
    assert 25 <= int(r.headers["x-ratelimit-reset"]) - time.time() <= 31
    assert r.json()["message"].startswith("API rate limit exceeded") and basic_error_problems(r.json()) == []
    assert api(forge, "GET", f"/repos/{REPO}/branches/main").status_code == 200  # the fault fired once


@pytest.mark.parametrize("status", [403, 429])
def test_a_secondary_rate_limit_says_so_and_how_long_to_wait(forge, status):
    # "If you exceed a secondary rate limit, you will receive a 403 or 429 response and an error message that
    # indicates that you exceeded a secondary rate limit. If the retry-after response header is present, ..."
    add_fault(forge, f"POST:/repos/{REPO}/issues/*/comments=secondary,status={status},wait=7:1")
    r = api(forge, "POST", f"/repos/{REPO}/issues/1/comments", json={"body": "hi"})
    assert r.status_code == status and r.headers["retry-after"] == "7"
    assert "secondary rate limit" in r.json()["message"] and basic_error_problems(r.json()) == []


def test_a_rate_limit_without_a_count_lasts_until_its_reset(forge):
    # "You should not retry your request until after the time specified by the x-ratelimit-reset header": every
    # request before then is refused with the same reset; after it, the limit is over
    add_fault(forge, f"GET:/repos/{REPO}/branches/*=primary,wait=2")
    first, second = (api(forge, "GET", f"/repos/{REPO}/branches/main") for _ in range(2))
    assert first.status_code == second.status_code == 403
    assert first.headers["x-ratelimit-reset"] == second.headers["x-ratelimit-reset"]
    time.sleep(max(0.0, int(first.headers["x-ratelimit-reset"]) - time.time()) + 0.1)
    assert api(forge, "GET", f"/repos/{REPO}/branches/main").status_code == 200
    [fault] = [f for f in requests.get(f"{forge.url}/sandbox/faults").json() if f["spec"].endswith("wait=2")]
    assert fault["fired"] == 2


def test_pygithub_reads_the_forges_rate_limit_as_one(forge):
    # PyGithub's Requester.createException: a 403 whose message isRateLimitError is RateLimitExceededException
    add_fault(forge, f"GET:/repos/{REPO}/branches/*=secondary,wait=0:1")
    with pytest.raises(RateLimitExceededException) as raised:
        as_user(forge, "alice", retry=None).get_repo(REPO).get_branch("main")
    assert raised.value.status == 403 and "retry-after" not in raised.value.headers


def test_a_bad_fault_spec_is_refused(forge):
    r = requests.post(f"{forge.url}/sandbox/faults", json={"spec": "GET:/x=primary,status=500"})
    assert r.status_code == 422 and "403 or 429" in r.json()["message"]


# --- a lost response --------------------------------------------------------------------------------------------------
def test_a_lost_response_applies_the_write_and_drops_the_answer(forge):
    issue = as_user(forge, "alice").get_repo(REPO).create_issue(title="lost answers")
    add_fault(forge, f"POST:/repos/{REPO}/issues/{issue.number}/comments=lose:1")
    with pytest.raises(requests.ConnectionError):
        api(forge, "POST", f"/repos/{REPO}/issues/{issue.number}/comments", json={"body": "applied"}, timeout=10)
    assert [c.body for c in issue.get_comments()] == ["applied"]  # the write happened
    lost = [x for x in requests.get(f"{forge.url}/sandbox/exchanges").json() if x.get("lost")]
    assert [(x["method"], x["status"]) for x in lost] == [("POST", 201)]


# --- custom roles ---------------------------------------------------------------------------------------------------------
def test_a_custom_role_answers_its_name_and_its_base_permission(forge):
    # "The `role_name` attribute provides the name of the assigned role, including custom roles. The `permission`
    # can also be used to determine which base level of access the collaborator has to the repository."
    path = f"/repos/{REPO}/collaborators/dave/permission"
    r = api(forge, "GET", path)
    assert (r.json()["permission"], r.json()["role_name"]) == ("write", "ml-engineer")
    assert rest_contract().response_problems("GET", path, r.status_code, r.json()) == []
    sha = api(forge, "GET", f"/repos/{REPO}/branches/main").json()["commit"]["sha"]
    assert api(forge, "POST", f"/repos/{REPO}/statuses/{sha}", "dave", json={"state": "success"}).status_code == 201


# --- forks: deleted forks, fork check runs, a commit's pull requests -------------------------------------------------
@pytest.fixture(scope="module")
def fork_pr(forge):
    """frank forks the repository, pushes `feature/f` to his fork and opens a pull request from it."""
    frank = as_user(forge, "frank")
    fork = frank.get_repo(REPO).create_fork()
    clone = forge.tmp / "frank-clone"
    git("clone", "-q", f"{forge.url}/{fork.full_name}.git", str(clone), cwd=forge.tmp)
    git("checkout", "-q", "-b", "feature/f", cwd=clone)
    (clone / "f.py").write_text("f\n")
    git("add", "f.py", cwd=clone)
    git("commit", "-q", "-m", "f", cwd=clone)
    url = forge.url.replace("http://", "http://frank:ghp_frank@") + f"/{fork.full_name}.git"
    git("push", "-q", url, "feature/f", cwd=clone)
    pr = frank.get_repo(REPO).create_pull(title="from a fork", body="", head="frank:feature/f", base="main")
    return pr, git("rev-parse", "HEAD", cwd=clone)


def app_client(forge) -> Github:
    auth = Auth.AppAuth(123, forge.pem).get_installation_auth(456)
    return Github(base_url=forge.url, auth=auth, seconds_between_requests=0, seconds_between_writes=0)


def test_a_forks_check_run_names_no_pull_request_and_no_branch(forge, fork_pr):
    # @octokit/openapi 23.0.2, checks/get: "Pushes to a branch in a forked repository are not detected and return an
    # empty `pull_requests` array"; check suite `pull_requests`: "When the check suite's `head_branch` is in a forked
    # repository it will be `null` and the `pull_requests` array will be empty."
    pr, sha = fork_pr
    run = app_client(forge).get_repo(REPO).create_check_run(name="mlops-bot/test", head_sha=sha)
    # only a completed check run offers "Re-run" (check_run$rerequested requires its conclusion)
    assert (
        requests.post(f"{forge.url}/sandbox/check-runs/{run.id}/rerequest", json={"sender": "bob"}).status_code == 422
    )
    run.edit(status="completed", conclusion="failure")
    requests.post(f"{forge.url}/sandbox/check-runs/{run.id}/rerequest", json={"sender": "bob"})
    time.sleep(1)
    [rerequested] = [p for p in payloads(forge.hook, "check_run") if p["action"] == "rerequested"]
    check = rerequested["check_run"]
    assert check["pull_requests"] == [] and check["check_suite"]["head_branch"] is None
    assert check["check_suite"]["pull_requests"] == [] and webhook_problems("check_run", rerequested) == []


def test_a_same_repository_check_run_names_its_pull_request(forge, tmp_path):
    clone = tmp_path / "alice"
    git("clone", "-q", f"{forge.url}/{REPO}.git", str(clone), cwd=tmp_path)
    git("checkout", "-q", "-b", "feature/same", cwd=clone)
    sha = push_commit(clone, forge.url, "feature/same", "same.py")
    pr = as_user(forge, "alice").get_repo(REPO).create_pull(title="same", body="", head="feature/same", base="main")
    run = app_client(forge).get_repo(REPO).create_check_run(name="mlops-bot/test", head_sha=sha)
    assert [p.number for p in run.pull_requests] == [pr.number]


def test_the_pull_requests_of_a_forks_head_commit(forge, fork_pr):
    pr, sha = fork_pr
    path = f"/repos/{REPO}/commits/{sha}/pulls"
    r = api(forge, "GET", path)
    assert [p["number"] for p in r.json()] == [pr.number] and r.json()[0]["head"]["repo"][
        "full_name"
    ] == "frank/churn-model"
    assert rest_contract().response_problems("GET", path, r.status_code, r.json()) == []


def test_a_deleted_forks_pull_request_has_no_head_repository(forge, fork_pr):
    pr, _ = fork_pr
    assert api(forge, "DELETE", "/repos/frank/churn-model", "alice").status_code == 403  # admin only
    r = api(forge, "DELETE", "/repos/frank/churn-model", "frank")
    assert (
        r.status_code == 204
        and rest_contract().response_problems("DELETE", "/repos/frank/churn-model", 204, None) == []
    )
    path = f"/repos/{REPO}/pulls/{pr.number}"
    got = api(forge, "GET", path).json()
    assert got["head"]["repo"] is None and rest_contract().response_problems("GET", path, 200, got) == []
    assert api(forge, "PATCH", path, "bob", json={"state": "closed"}).status_code == 200
    time.sleep(1)
    [closed] = [p for p in payloads(forge.hook, "pull_request") if p["action"] == "closed" and p["number"] == pr.number]
    assert closed["pull_request"]["head"]["repo"] is None and webhook_problems("pull_request", closed) == []


# --- form webhooks ------------------------------------------------------------------------------------------------------
def test_a_form_hook_sends_the_json_as_a_payload_field_signed_over_the_form_body(forge, fork_pr):
    # "application/x-www-form-urlencoded will send the JSON payload as a form parameter called payload"
    assert forge.hook.got
    for d in forge.hook.got:
        assert d["headers"]["Content-Type"] == "application/x-www-form-urlencoded"
        assert d["raw"].startswith(b"payload=")
        expected = "sha256=" + hmac.new(SECRET.encode(), d["raw"], hashlib.sha256).hexdigest()
        assert hmac.compare_digest(d["headers"]["X-Hub-Signature-256"], expected)
    [opened] = [p for p in payloads(forge.hook, "pull_request") if p["action"] == "opened"][:1]
    assert webhook_problems("pull_request", opened) == []


def test_the_forge_refuses_a_fault_free_run_nothing(forge):
    requests.delete(f"{forge.url}/sandbox/faults")
    assert requests.get(f"{forge.url}/sandbox/faults").json() == []
    assert subprocess.run(["git", "--version"], capture_output=True).returncode == 0
