"""One forge, one scenario played through it by a user and by the bot's own gateway (as a token and as an App);
the tests then hold what the forge answered and sent to GitHub's published contract."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from github import Auth, Github

from core.config import GitHubSettings
from devstack.processes import free_port
from devstack.sandboxes import start_forge
from tests.support.app_keys import APP_SEED, app_key_pair

REPO = "acme/churn-model"
BOT_LOGINS = {"mlops-bot", "mlops-bot[bot]"}
TOKEN_ENV, KEY_ENV = "CONTRACT_GITHUB_TOKEN", "CONTRACT_GITHUB_APP_KEY"
SEED = """\
[users.alice]
token = "ghp_alice"
name = "Alice A."
email = "alice@example.com"
[users."mlops-bot"]
token = "ghp_bot"
type = "Bot"
[[repos]]
full_name = "acme/churn-model"
permissions = {{ alice = "write", "mlops-bot" = "write" }}
[repos.webhook]
url = "{hook_url}"
secret = "contract-secret"
events = ["*"]
"""
SEED += APP_SEED + 'webhook = {{ url = "{hook_url}", secret = "contract-secret", events = ["issues"] }}\n'


@dataclass
class Played:
    """What the scenario left on the forge: every API exchange and every webhook delivery."""

    url: str
    exchanges: list[dict]
    deliveries: list[dict]

    def bot_exchanges(self) -> list[dict]:
        return [x for x in self.exchanges if x["user"] in BOT_LOGINS]


def git(*args: str, cwd: Path) -> str:
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_AUTHOR_NAME": "Alice A.",
           "GIT_AUTHOR_EMAIL": "alice@example.com", "GIT_COMMITTER_NAME": "Alice A.",
           "GIT_COMMITTER_EMAIL": "alice@example.com"}  # fmt: skip
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout.strip()


def push_commit(clone: Path, url: str, branch: str, name: str) -> str:
    (clone / name).write_text(f"{name}\n")
    git("add", name, cwd=clone)
    git("commit", "-q", "-m", f"Add {name}", cwd=clone)
    git("push", "-q", url.replace("http://", "http://alice:ghp_alice@") + f"/{REPO}.git", branch, cwd=clone)
    return git("rev-parse", "HEAD", cwd=clone)


def bot_gateways(url: str, pem: str):
    from workers.gateways.forge import Forge  # the bot's own gateway, with its own retry and auth set-up

    os.environ[TOKEN_ENV], os.environ[KEY_ENV] = "ghp_bot", pem
    as_token = Forge(GitHubSettings(base_url=url, token_env=TOKEN_ENV, seconds_between_writes=0))
    as_app = Forge(GitHubSettings(base_url=url, app_id=123, installation_id=456, app_private_key_env=KEY_ENV,
                                  seconds_between_writes=0))  # fmt: skip
    return as_token, as_app


def play_user_side(url: str, clone: Path):
    """Alice pushes a branch, opens a PR, pushes again and comments: push, create, pull_request, issue_comment."""
    git("clone", "-q", f"{url}/{REPO}.git", str(clone), cwd=clone.parent)
    git("checkout", "-q", "-b", "feature/churn", cwd=clone)
    push_commit(clone, url, "feature/churn", "a.py")
    alice = Github(base_url=url, auth=Auth.Token("ghp_alice"), seconds_between_requests=0, seconds_between_writes=0)
    repo = alice.get_repo(REPO)
    pr = repo.create_pull(title="Churn features", body="", head="feature/churn", base="main")
    sha = push_commit(clone, url, "feature/churn", "b.py")
    comment = pr.as_issue().create_comment("/mlops train dataset=toy")
    return repo, pr, sha, comment


def play_bot_side(url: str, pem: str, pr_number: int, sha: str) -> None:
    """The calls the bot's workers make for a `/mlops train` comment, as a token and as an App."""
    as_token, as_app = bot_gateways(url, pem)
    as_token.pull(REPO, pr_number)
    as_token.permission(REPO, "alice")
    as_token.branch_names(REPO)  # the janitor's one listing of a repository's branches
    as_token.open_pull_numbers(REPO)  # and of its open pull requests, for a fork's `pull/<n>` jobs
    as_token.open_pulls_with_head(REPO, sha)
    key = as_token.upsert_comment(REPO, pr_number, "report", "train", "running")
    as_token.upsert_comment(REPO, pr_number, "report", "train", "done", known_id=key)
    as_token.set_status(REPO, sha, "mlops-bot/train", "pending", "train is running", "http://x/run/1")
    as_token.set_status(REPO, sha, "mlops-bot/train", "success", "train SUCCESS", "http://x/run/1")
    run = as_app.set_status(REPO, sha, "mlops-bot/validate", "pending", "validate is running", "http://x/run/2")
    as_app.set_status(REPO, sha, "mlops-bot/validate", "failure", "validate FAILED", "http://x/run/2", run)  # by id
    as_app.set_status(REPO, sha, "mlops-bot/validate", "error", "validate: lost track")  # no id: the latest, found
    as_app.upsert_comment(REPO, pr_number, "report", "validate", "failed")
    play_deployments(as_token, as_app, sha)
    listed = as_token.comments_since(REPO, "2000-01-01T00:00:00Z")  # the comment reconciler, then its next pass:
    as_token.comments_since(REPO, "2000-01-01T00:00:00Z", etag=listed.etag)  # the same listing, a 304
    as_app.app_events()  # whether the App's webhook carries issue_comment


def play_deployments(as_token, as_app, sha: str) -> None:
    """The release train's Deployments: staging twice (the second success marks the first inactive), prod once."""
    for n, gateway in ((1, as_token), (2, as_app)):
        did = gateway.create_deployment(REPO, sha, "staging", f"churn v{n}", {"key": f"churn@{n}"})
        gateway.create_deployment(REPO, sha, "staging", f"churn v{n}", {"key": f"churn@{n}"})  # a retry: found
        gateway.set_deployment_status(REPO, did, "in_progress", "deploying", log_url="http://x/run/3")
        gateway.set_deployment_status(REPO, did, "success", "serving", environment_url="http://serving/churn")
    prod = as_app.create_deployment(REPO, sha, "prod", "churn v2 to prod", {"key": "churn@2"})
    as_app.set_deployment_status(REPO, prod, "failure", "deploy FAILED", log_url="http://x/run/4")


def play_closing(url: str, repo, pr, comment) -> None:
    """Re-run a check, edit and delete the comment, merge, delete the branch, open and close an issue."""
    exchanges = requests.get(f"{url}/sandbox/exchanges").json()
    check_run = next(x for x in exchanges if x["method"] == "POST" and x["path"].endswith("/check-runs"))
    requests.post(f"{url}/sandbox/check-runs/{check_run['response']['id']}/rerequest", json={"sender": "alice"})
    comment.edit("/mlops train dataset=full")
    comment.delete()
    pr.merge(merge_method="merge")
    repo.get_git_ref("heads/feature/churn").delete()
    issue = repo.create_issue(title="An issue")
    issue.edit(state="closed")
    read_deployments(repo)


def read_deployments(repo) -> None:
    """What the Environments page reads, through PyGithub's own objects."""
    for deployment in repo.get_deployments(environment="staging"):
        assert [s.state for s in deployment.get_statuses()]
    assert repo.get_deployment(next(iter(repo.get_deployments())).id).environment
    assert {e.name for e in repo.get_environments()} >= {"staging", "prod"}


def play_app_deliveries(url: str, pem: str) -> None:
    """workers/delivery/redelivery.py's calls: the App webhook's deliveries (its `issues` events), a page at a time, and a
    redelivery of the newest."""
    from devstack.waiting import wait_until

    _, as_app = bot_gateways(url, pem)
    wait_until(lambda: len(as_app.app_deliveries()[0]) == 2, 10, "the two issues events attempted")
    page, cursor = as_app.app_deliveries(per_page=1)
    assert cursor, "a next page"
    assert as_app.app_deliveries(cursor, per_page=1)[0]
    as_app.redeliver(page[0]["id"])


@pytest.fixture(scope="session")
def played(tmp_path_factory) -> Played:
    """The scenario, played once per session (a few seconds)."""
    tmp = tmp_path_factory.mktemp("contract")
    pem = app_key_pair(tmp)
    (tmp / "seed.toml").write_text(SEED.format(hook_url=f"http://127.0.0.1:{free_port()}/nobody-listens"))
    forge = start_forge(tmp, tmp / "seed.toml")
    try:
        repo, pr, sha, comment = play_user_side(forge.url, tmp / "clone")
        play_bot_side(forge.url, pem, pr.number, sha)
        play_closing(forge.url, repo, pr, comment)
        play_app_deliveries(forge.url, pem)
        exchanges = requests.get(f"{forge.url}/sandbox/exchanges").json()
        deliveries = requests.get(f"{forge.url}/sandbox/deliveries", params={"payload": 1}).json()["deliveries"]
        yield Played(forge.url, exchanges, deliveries)
    finally:
        forge.stop()
        for name in (TOKEN_ENV, KEY_ENV):
            os.environ.pop(name, None)


@pytest.fixture(scope="session")
def forge_url(played) -> str:
    return played.url
