"""The sandbox forge serves Deployments and deployment statuses as GitHub documents them, so the repository's
Environments page shows what runs where.

Oracle: GitHub's OpenAPI description (@octokit/openapi 23.0.2, contracts/github/openapi.json: `repos/create-deployment`,
`repos/create-deployment-status`, `repos/list-deployments`, `repos/get-all-environments`) and the REST docs
(https://docs.github.com/en/rest/deployments/deployments, .../deployments/statuses). Each test quotes its sentence.
Every answer (but the 409s, whose body the description leaves undescribed) is held to the operation's schema, every
`deployment`/`deployment_status` webhook to both published webhook descriptions.
"""

from __future__ import annotations

import json

import pytest
import requests

from devstack.processes import free_port
from devstack.sandboxes import start_forge
from sandbox.forge.contract import rest_contract, webhook_problems
from tests.contract.conftest import git, push_commit

REPO = "acme/churn-model"
QUIET = "acme/quiet"
ALICE = {"Authorization": "token ghp_alice"}
READER = {"Authorization": "token ghp_rita"}
SEED = """\
[users.alice]
token = "ghp_alice"
name = "Alice A."
email = "alice@example.com"
[users.rita]
token = "ghp_rita"
[[repos]]
full_name = "acme/churn-model"
permissions = {{ alice = "write", rita = "read" }}
[repos.webhook]
url = "{hook}"
events = ["deployment", "deployment_status"]
[[repos]]
full_name = "acme/quiet"
permissions = {{ alice = "write" }}
[repos.webhook]
url = "{hook}"
events = ["push"]
"""


@pytest.fixture(scope="module")
def forge(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("deployments")
    (tmp / "seed.toml").write_text(SEED.format(hook=f"http://127.0.0.1:{free_port()}/nobody-listens"))
    service = start_forge(tmp, tmp / "seed.toml")
    try:
        yield service
    finally:
        service.stop()


@pytest.fixture(scope="module")
def clone(forge, tmp_path_factory):
    folder = tmp_path_factory.mktemp("clone") / "wc"
    git("clone", "-q", f"{forge.url}/{REPO}.git", str(folder), cwd=folder.parent)
    return folder


# Answers GitHub gives that the operation does not list: 403 (no push access), 404 (no such deployment) for a
# status, and the 409s, whose body the description leaves undescribed.
UNLISTED = (403, 404, 409)


def call(forge, method: str, path: str, body=None, headers=None, **params) -> requests.Response:
    """One request, its answer held to the operation's documented schema."""
    r = requests.request(method, f"{forge.url}{path}", json=body, headers=headers or ALICE, params=params)
    if r.status_code not in UNLISTED:
        problems = rest_contract().response_problems(method, path, r.status_code, r.json() if r.content else None)
        assert [str(p) for p in problems] == []
    return r


def deploy(forge, ref: str, repo: str = REPO, **body) -> requests.Response:
    return call(forge, "POST", f"/repos/{repo}/deployments", {"ref": ref, **body})


def set_state(forge, deployment_id: int, state: str, **body) -> requests.Response:
    return call(forge, "POST", f"/repos/{REPO}/deployments/{deployment_id}/statuses", {"state": state, **body})


def states(forge, deployment_id: int) -> list[str]:
    return [s["state"] for s in call(forge, "GET", f"/repos/{REPO}/deployments/{deployment_id}/statuses").json()]


def main_sha(forge) -> str:
    return call(forge, "GET", f"/repos/{REPO}/branches/main").json()["commit"]["sha"]


def test_a_deployment_of_a_branch_resolves_it_and_takes_the_documented_defaults(forge):
    # "The `ref` parameter can be any named branch, tag, or SHA." / "The default environment is `production`."
    # task: "default": "deploy"; production_environment: "Default: `true` when `environment` is `production` and
    # `false` otherwise."; transient_environment: "Default: `false`"
    r = deploy(forge, "main", auto_merge=False)
    assert r.status_code == 201
    d = r.json()
    assert d["sha"] == main_sha(forge) and d["ref"] == "main" and d["task"] == "deploy"
    assert d["environment"] == d["original_environment"] == "production"
    assert d["production_environment"] is True and d["transient_environment"] is False
    staging = deploy(forge, main_sha(forge), environment="staging", description="train v3").json()
    assert staging["ref"] == main_sha(forge) and staging["production_environment"] is False
    assert staging["description"] == "train v3"


def test_a_deployment_of_a_tag_or_a_short_sha(forge, clone):
    git("tag", "v1", cwd=clone)
    git("push", "-q", forge.url.replace("http://", "http://alice:ghp_alice@") + f"/{REPO}.git", "v1", cwd=clone)
    assert deploy(forge, "v1", environment="qa").json()["sha"] == main_sha(forge)
    assert deploy(forge, main_sha(forge)[:10], environment="qa").json()["sha"] == main_sha(forge)


def test_a_json_text_payload_is_passed_on_as_an_object(forge):
    # "The `payload` parameter is available for any extra information that a deployment system might need. It is a
    # JSON text field that will be passed on when a deployment event is dispatched."
    d = deploy(forge, "main", environment="qa", payload='{"deploy": "migrate"}').json()
    assert d["payload"] == {"deploy": "migrate"}
    assert deploy(forge, "main", environment="qa", payload={"key": "churn@3"}).json()["payload"] == {"key": "churn@3"}


def test_an_unknown_ref_is_refused_with_422(forge):
    # responses of repos/create-deployment: "422": validation_failed ("Validation failed, or the endpoint has been
    # spammed."); GitHub's message names the ref it could not find
    r = deploy(forge, "no-such-branch")
    assert r.status_code == 422 and r.json()["message"] == "No ref found for: no-such-branch"


def test_failing_commit_statuses_refuse_the_deployment_unless_required_contexts_is_empty(forge, clone):
    # "By default, commit statuses for every submitted context must be in a `success` state." "Failed commit status
    # checks: This error happens when the `required_contexts` parameter indicates that one or more contexts need to
    # have a `success` status [...]" -> "409": "Conflict when there is a merge conflict or the commit's status checks
    # failed". "To bypass checking entirely, pass an empty array."
    sha = push_commit(clone, forge.url, "main", "checked.py")
    call(forge, "POST", f"/repos/{REPO}/statuses/{sha}", {"state": "failure", "context": "ci/tests"})
    refused = deploy(forge, sha, environment="staging")
    assert (
        refused.status_code == 409 and refused.json()["message"] == f"Conflict: Commit status checks failed for {sha}."
    )
    assert refused.json()["errors"][0]["contexts"] == ["ci/tests"]
    assert deploy(forge, sha, environment="staging", required_contexts=[]).status_code == 201
    # "or to specify contexts that have not yet been submitted": a context never reported is not `success`
    assert deploy(forge, sha, environment="staging", required_contexts=["ci/lint"]).status_code == 409
    call(forge, "POST", f"/repos/{REPO}/statuses/{sha}", {"state": "success", "context": "ci/tests"})
    assert deploy(forge, sha, environment="staging").status_code == 201


def test_auto_merge_merges_the_default_branch_into_a_branch_behind_it(forge, clone):
    # auto_merge: "default": true, "Attempts to automatically merge the default branch into the requested ref, if it's
    # behind the default branch." "Merged branch response: You will see this response when GitHub automatically
    # merges the base branch into the topic branch instead of creating a deployment." (202)
    git("checkout", "-q", "-b", "topic", "main", cwd=clone)
    topic = push_commit(clone, forge.url, "topic", "topic.py")
    git("checkout", "-q", "main", cwd=clone)
    ahead = push_commit(clone, forge.url, "main", "ahead.py")
    # auto_merge false: the ref is deployed as it is (what the bot sends)
    assert deploy(forge, "topic", environment="review", auto_merge=False).json()["sha"] == topic
    r = deploy(forge, "topic", environment="review", required_contexts=[])
    assert r.status_code == 202 and r.json()["message"] == "Auto-merged main into topic on deployment."
    merged = call(forge, "GET", f"/repos/{REPO}/branches/topic").json()["commit"]
    assert [p["sha"] for p in merged["parents"]] == [topic, ahead]
    # "If there are no new commits in the base branch, a new request to create a deployment should give a
    # successful response."
    assert deploy(forge, "topic", environment="review", required_contexts=[]).json()["sha"] == merged["sha"]


def test_auto_merge_with_a_conflict_is_refused_with_409(forge, clone):
    # "Merge conflict response: This error happens when the `auto_merge` option is enabled and when the default
    # branch [...] can't be merged into the branch that's being deployed [...] due to merge conflicts."
    git("checkout", "-q", "-b", "clash", "main", cwd=clone)
    (clone / "same.txt").write_text("branch\n")
    git("add", "same.txt", cwd=clone)
    push_commit(clone, forge.url, "clash", "clash.py")
    git("checkout", "-q", "main", cwd=clone)
    (clone / "same.txt").write_text("main\n")
    git("add", "same.txt", cwd=clone)
    push_commit(clone, forge.url, "main", "main.py")
    r = deploy(forge, "clash", environment="review", required_contexts=[])
    assert r.status_code == 409 and r.json()["message"] == "Conflict merging main into clash."


def test_deployments_are_listed_newest_first_and_filtered(forge):
    # list-deployments: "Simple filtering of deployments is available via query parameters": sha ("The SHA recorded
    # at creation time."), ref, task, environment
    sha = main_sha(forge)
    first = deploy(forge, sha, environment="filters", task="deploy:migrations", required_contexts=[]).json()
    second = deploy(forge, "main", environment="filters", required_contexts=[]).json()
    path = f"/repos/{REPO}/deployments"
    ids = [d["id"] for d in call(forge, "GET", path, environment="filters").json()]
    assert ids == [second["id"], first["id"]]
    assert [d["id"] for d in call(forge, "GET", path, environment="filters", ref="main").json()] == [second["id"]]
    assert [d["id"] for d in call(forge, "GET", path, task="deploy:migrations").json()] == [first["id"]]
    assert {d["sha"] for d in call(forge, "GET", path, sha=sha).json()} == {sha}
    assert call(forge, "GET", f"{path}/{first['id']}").json() == first
    assert call(forge, "GET", f"{path}/999999").status_code == 404


def test_statuses_take_the_documented_states_and_urls(forge):
    # state: "enum": error failure inactive in_progress queued pending success
    # "Setting `log_url` will automatically set `target_url` to the same value."
    # environment: "If not defined, the environment of the previous status on the deployment will be used, if it
    # exists. Otherwise, the environment of the deployment will be used."
    d = deploy(forge, "main", environment="states", required_contexts=[]).json()
    for state in ("queued", "pending", "in_progress", "error", "failure"):
        assert set_state(forge, d["id"], state).status_code == 201
    s = set_state(forge, d["id"], "success", log_url="http://ci/run/1", environment_url="http://app.states").json()
    assert s["target_url"] == s["log_url"] == "http://ci/run/1" and s["environment_url"] == "http://app.states"
    assert s["environment"] == "states" and s["deployment_url"].endswith(f"/deployments/{d['id']}")
    assert states(forge, d["id"]) == ["success", "failure", "error", "in_progress", "pending", "queued"]
    legacy = set_state(forge, d["id"], "success", target_url="http://ci/run/2").json()
    assert legacy["log_url"] == legacy["target_url"] == "http://ci/run/2"


def test_a_status_off_the_contract_is_refused(forge):
    d = deploy(forge, "main", environment="states", required_contexts=[]).json()
    r = set_state(forge, d["id"], "done")
    assert r.status_code == 422 and "is not one of" in r.json()["message"]
    # description: "The maximum description length is 140 characters."
    assert set_state(forge, d["id"], "success", description="x" * 141).status_code == 422
    assert set_state(forge, 999999, "success").status_code == 404


def test_a_success_marks_earlier_successful_deployments_of_the_environment_inactive(forge):
    # auto_inactive: "Adds a new `inactive` status to all prior non-transient, non-production environment
    # deployments with the same repository and `environment` name as the created status's deployment. An `inactive`
    # status is only added to deployments that had a `success` state. Default: `true`"
    old = deploy(forge, "main", environment="staging-ai", required_contexts=[]).json()["id"]
    failed = deploy(forge, "main", environment="staging-ai", required_contexts=[]).json()["id"]
    other = deploy(forge, "main", environment="elsewhere", required_contexts=[]).json()["id"]
    set_state(forge, old, "success")
    set_state(forge, failed, "failure")
    set_state(forge, other, "success")
    new = deploy(forge, "main", environment="staging-ai", required_contexts=[]).json()["id"]
    set_state(forge, new, "success")
    assert states(forge, old) == ["inactive", "success"]
    assert states(forge, failed) == ["failure"] and states(forge, other) == ["success"]
    assert states(forge, new) == ["success"]


def test_auto_inactive_false_production_and_transient_deployments_stay(forge):
    # "To avoid this, you can set `auto_inactive` to `false` when creating the deployment status." (REST docs,
    # "Inactive deployments"); production and transient deployments are not among "non-transient, non-production"
    kept = deploy(forge, "main", environment="keep", required_contexts=[]).json()["id"]
    set_state(forge, kept, "success")
    set_state(forge, deploy(forge, "main", environment="keep", required_contexts=[]).json()["id"], "success",
              auto_inactive=False)  # fmt: skip
    assert states(forge, kept) == ["success"]
    prod = deploy(forge, "main", environment="live", production_environment=True, required_contexts=[]).json()["id"]
    temp = deploy(forge, "main", environment="live", transient_environment=True, required_contexts=[]).json()["id"]
    set_state(forge, prod, "success")
    set_state(forge, temp, "success")
    set_state(forge, deploy(forge, "main", environment="live", required_contexts=[]).json()["id"], "success")
    assert states(forge, prod) == ["success"] and states(forge, temp) == ["success"]


def test_the_environments_page_lists_every_deployed_environment(forge):
    # repos/get-all-environments: "Lists the environments for a repository." (total_count, environments). No sentence
    # documents that a REST deployment creates its environment; GitHub's Environments page lists them (what
    # github/docs#3126 asks the docs to say: environments "can be created by other means" than a workflow)
    deploy(forge, "main", environment="dev", required_contexts=[])
    page = call(forge, "GET", f"/repos/{REPO}/environments").json()
    names = [e["name"] for e in page["environments"]]
    assert {"dev", "staging", "production"} <= set(names) and page["total_count"] == len(names)
    assert call(forge, "GET", f"/repos/{QUIET}/environments").json() == {"total_count": 0, "environments": []}


def test_deployment_webhooks_follow_the_published_schemas_and_reach_subscribed_hooks(forge):
    # "GitHub dispatches deployment and deployment_status events when new deployments and deployment statuses are
    # created."
    d = deploy(forge, "main", environment="hooks", payload={"key": "churn@9"}, required_contexts=[]).json()
    set_state(forge, d["id"], "in_progress")
    deploy(forge, "main", repo=QUIET, required_contexts=[])  # its hook takes push only
    sent = requests.get(f"{forge.url}/sandbox/deliveries", params={"payload": 1}).json()["deliveries"]
    payloads = {(x["event"], x["repository"]): json.loads(x["payload"]) for x in sent}
    mine = [json.loads(x["payload"]) for x in sent if x["event"] == "deployment" and x["repository"] == REPO]
    assert any(p["deployment"]["id"] == d["id"] and p["deployment"]["payload"] == {"key": "churn@9"} for p in mine)
    assert ("deployment", QUIET) not in payloads
    for x in sent:
        if x["event"] in ("deployment", "deployment_status"):
            assert [str(p) for p in webhook_problems(x["event"], json.loads(x["payload"]))] == []
    status = payloads[("deployment_status", REPO)]
    assert status["action"] == "created" and status["deployment_status"]["state"] in ("in_progress", "inactive")


def test_only_writers_deploy(forge):
    # create-deployment-status: "Users with `push` access can create deployment statuses for a given deployment."
    r = call(forge, "POST", f"/repos/{REPO}/deployments", {"ref": "main"}, headers=READER)
    assert r.status_code == 403
    d = deploy(forge, "main", environment="perm", required_contexts=[]).json()
    status = call(forge, "POST", f"/repos/{REPO}/deployments/{d['id']}/statuses", {"state": "success"}, READER)
    assert status.status_code == 403
