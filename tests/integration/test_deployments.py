"""The bot's forge gateway (PyGithub) gives each environment a GitHub Deployment with deployment statuses on the
sandbox forge, so the repository's Environments page shows what runs where.

What is proved: create → in_progress → success, with the statuses on the forge; a later success in the same
(non-production) environment marks the earlier deployment inactive; a retried create — after a lost answer too —
returns the same deployment; an unknown commit is refused as Permanent; a rate limit is RateLimited; every request
the gateway sent is documented and its body valid (tests/contract holds the answers and webhooks).
"""

from __future__ import annotations

import os

import pytest
import requests

from core.config import GitHubSettings
from devstack.processes import free_port
from devstack.sandboxes import start_forge
from sandbox.forge.contract import rest_contract
from workers.errors import Permanent, RateLimited, Transient
from workers.gateways.forge import Forge

REPO = "acme/churn-model"
TOKEN_ENV = "DEPLOYMENTS_GITHUB_TOKEN"
SEED = """\
[users."mlops-bot"]
token = "ghp_bot"
type = "Bot"
[[repos]]
full_name = "acme/churn-model"
permissions = {{ "mlops-bot" = "write" }}
[repos.webhook]
url = "{hook}"
events = ["deployment", "deployment_status"]
"""


@pytest.fixture(scope="module")
def forge_url(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("deployments")
    (tmp / "seed.toml").write_text(SEED.format(hook=f"http://127.0.0.1:{free_port()}/nobody-listens"))
    service = start_forge(tmp, tmp / "seed.toml")
    try:
        yield service.url
    finally:
        service.stop()


@pytest.fixture(scope="module")
def gateway(forge_url):
    os.environ[TOKEN_ENV] = "ghp_bot"
    try:
        yield Forge(GitHubSettings(base_url=forge_url, token_env=TOKEN_ENV, seconds_between_writes=0))
    finally:
        os.environ.pop(TOKEN_ENV, None)


@pytest.fixture(scope="module")
def sha(forge_url) -> str:
    branch = requests.get(f"{forge_url}/repos/{REPO}/branches/main", headers={"Authorization": "token ghp_bot"})
    return branch.json()["commit"]["sha"]


def states(forge_url: str, deployment_id: int) -> list[str]:
    r = requests.get(f"{forge_url}/repos/{REPO}/deployments/{deployment_id}/statuses")
    return [s["state"] for s in r.json()]


def deployment(forge_url: str, deployment_id: int) -> dict:
    return requests.get(f"{forge_url}/repos/{REPO}/deployments/{deployment_id}").json()


def fault(forge_url: str, spec: str) -> None:
    assert requests.post(f"{forge_url}/sandbox/faults", json={"spec": spec}).status_code == 201


def test_a_deployment_goes_in_progress_then_success(gateway, forge_url, sha):
    did = gateway.create_deployment(REPO, sha, "prod", "churn v3 to prod", {"key": "churn@3", "version": "3"})
    gateway.set_deployment_status(REPO, did, "in_progress", "deploy is running", log_url="http://dbc/run/1")
    gateway.set_deployment_status(
        REPO, did, "success", "churn v3 serves", log_url="http://dbc/run/1", environment_url="http://serving/churn"
    )
    d = deployment(forge_url, did)
    assert (d["sha"], d["environment"], d["payload"]) == (sha, "prod", {"key": "churn@3", "version": "3"})
    assert d["production_environment"] is True and d["description"] == "churn v3 to prod"
    assert states(forge_url, did) == ["success", "in_progress"]
    [latest, _] = requests.get(f"{forge_url}/repos/{REPO}/deployments/{did}/statuses").json()
    assert latest["log_url"] == "http://dbc/run/1" and latest["environment_url"] == "http://serving/churn"
    envs = requests.get(f"{forge_url}/repos/{REPO}/environments").json()["environments"]
    assert "prod" in [e["name"] for e in envs]


def test_a_second_success_marks_the_first_deployment_inactive(gateway, forge_url, sha):
    # staging is not a production environment: auto_inactive applies to "prior non-transient, non-production
    # environment deployments with the same repository and `environment` name"
    first = gateway.create_deployment(REPO, sha, "staging", "churn v1", {"key": "churn@1"})
    gateway.set_deployment_status(REPO, first, "success", "churn v1 validated")
    second = gateway.create_deployment(REPO, sha, "staging", "churn v2", {"key": "churn@2"})
    assert second != first and deployment(forge_url, second)["production_environment"] is False
    gateway.set_deployment_status(REPO, second, "success", "churn v2 validated")
    assert states(forge_url, first) == ["inactive", "success"]
    assert states(forge_url, second) == ["success"]


def test_two_models_deploy_to_prod_environments_of_their_own_that_never_inactivate_each_other(gateway, forge_url, sha):
    """A repository of several models deploys each to `prod/<model>` (workers/release/feedback.github_environment):
    each a production environment, each with its own live deployment."""
    fraud = gateway.create_deployment(REPO, sha, "prod/card_fraud", "card_fraud v1", {"key": "card_fraud@1"})
    gateway.set_deployment_status(REPO, fraud, "success", "card_fraud v1 serves")
    ato = gateway.create_deployment(REPO, sha, "prod/ato_risk", "ato_risk v1", {"key": "ato_risk@1"})
    gateway.set_deployment_status(REPO, ato, "success", "ato_risk v1 serves")
    assert [deployment(forge_url, d)["production_environment"] for d in (fraud, ato)] == [True, True]
    assert states(forge_url, fraud) == ["success"] and states(forge_url, ato) == ["success"]
    envs = requests.get(f"{forge_url}/repos/{REPO}/environments").json()["environments"]
    assert {"prod/card_fraud", "prod/ato_risk"} <= {e["name"] for e in envs}


def test_a_retried_create_returns_the_same_deployment(gateway, forge_url, sha):
    did = gateway.create_deployment(REPO, sha, "dev", "churn v4", {"key": "churn@4"})
    assert gateway.create_deployment(REPO, sha, "dev", "churn v4", {"key": "churn@4"}) == did
    # the answer to the create is lost: the task's retry finds the deployment the forge made
    fault(forge_url, f"POST:/repos/{REPO}/deployments=lose,user=mlops-bot:1")
    with pytest.raises(Transient):
        gateway.create_deployment(REPO, sha, "dev", "churn v5", {"key": "churn@5"})
    again = gateway.create_deployment(REPO, sha, "dev", "churn v5", {"key": "churn@5"})
    listed = requests.get(f"{forge_url}/repos/{REPO}/deployments", params={"environment": "dev"}).json()
    assert sorted(d["payload"]["key"] for d in listed) == ["churn@4", "churn@5"]
    assert again in [d["id"] for d in listed] and again != did


def test_a_deployment_of_an_unknown_commit_is_permanent(gateway):
    with pytest.raises(Permanent) as refused:
        gateway.create_deployment(REPO, "f" * 40, "staging", "nothing", {"key": "churn@0"})
    assert "422" in refused.value.message and "No ref found" in refused.value.message


def test_a_rate_limited_status_is_waited_out_not_refused(gateway, forge_url, sha):
    did = gateway.create_deployment(REPO, sha, "qa", "churn v6", {"key": "churn@6"})
    fault(forge_url, f"POST:/repos/{REPO}/deployments/*/statuses=secondary,wait=30:1")
    with pytest.raises(RateLimited) as limited:
        gateway.set_deployment_status(REPO, did, "queued", "waiting for a worker")
    assert limited.value.wait == 30
    gateway.set_deployment_status(REPO, did, "queued", "waiting for a worker")
    assert states(forge_url, did) == ["queued"]


def test_every_request_the_gateway_sent_is_documented(forge_url, gateway):
    exchanges = [x for x in requests.get(f"{forge_url}/sandbox/exchanges").json() if x["user"] == "mlops-bot"]
    contract = rest_contract()
    assert [str(p) for x in exchanges for p in contract.request_problems(x["method"], x["path"], x["request"])] == []
    sent = [x["request"] for x in exchanges if x["method"] == "POST" and x["path"].endswith("/deployments")]
    assert sent and all(b["auto_merge"] is False and b["required_contexts"] == [] for b in sent)
