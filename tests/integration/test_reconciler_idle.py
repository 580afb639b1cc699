"""What the comment reconciler costs GitHub at idle, measured on the stand-in GitHub (its ETags, 304s and request
counts) through the bot's own gateway (PyGithub) and a real Redis: a quiet repository's second pass is a 304 that costs
no rate limit ("Making a conditional request does not count against your primary rate limit if a `304` response is
returned and the request was made while correctly authorized with an `Authorization` header" — GitHub, "Best practices
for using the REST API"), a comment after a 304 is found and queued once, a quiet repository is listed less and less
often, and a bot that is a GitHub App whose webhook carries comments lists nothing."""

from __future__ import annotations

import subprocess
import textwrap
import time
from dataclasses import replace

import pytest
import requests

from core.config import GitHubSettings, Settings
from core.routing import Action
from devstack.sandboxes import start_forge
from tests.fakes import world
from tests.support.app_keys import APP_ID, INSTALLATION_ID, app_key_pair
from workers.core.state import State
from workers.delivery import reconciler
from workers.gateways.forge import Forge

ACTIVE = "acme/churn-model"  # the configured repository with workflows: its `/train` queues a run
QUIET = [f"acme/quiet-{i}" for i in range(1, 10)]
REPOS = [ACTIVE, *QUIET]
LISTING = "GET /repos/{owner}/{repo}/issues/comments"
TOKEN_ENV, KEY_ENV, BOT = "IDLE_GITHUB_TOKEN", "IDLE_GITHUB_APP_KEY", "mlops-bot"
ALICE = {"Authorization": "token ghp_alice"}


def seed() -> str:
    people = '[users.alice]\ntoken = "ghp_alice"\n[users."mlops-bot"]\ntoken = "ghp_bot"\ntype = "Bot"\n'
    repos = "".join(
        f'[[repos]]\nfull_name = "{name}"\npermissions = {{ alice = "write", "mlops-bot" = "write" }}\n'
        for name in REPOS
    )
    app = textwrap.dedent(f"""\
        [[apps]]
        id = {APP_ID}
        slug = "{BOT}"
        installation_id = {INSTALLATION_ID}
        public_key_file = "app.pub.pem"
        [apps.webhook]
        url = "http://127.0.0.1:9/nobody-listens"
        secret = "idle"
        events = ["push", "pull_request", "issue_comment"]
        """)
    return people + repos + app


@pytest.fixture
def forge(tmp_path_factory):
    """A forge of its own for each test: what one test says on a repository would change another's counts."""
    tmp = tmp_path_factory.mktemp("idle")
    pem = app_key_pair(tmp)
    (tmp / "seed.toml").write_text(seed())
    service = start_forge(tmp, tmp / "seed.toml")
    service.pem, service.tmp = pem, tmp
    try:
        yield service
    finally:
        service.stop()


@pytest.fixture
def deps(forge, settings, redis_client, monkeypatch):
    """The reconciler's Deps: ten configured repositories, the real gateway as a token, Redis."""
    monkeypatch.setenv(TOKEN_ENV, "ghp_bot")
    github = GitHubSettings(base_url=forge.url, token_env=TOKEN_ENV, seconds_between_writes=0)
    repos = [settings.repos[0].model_copy(update={"name": name}) for name in REPOS]
    configured: Settings = settings.model_copy(update={"github": github, "repos": repos})
    requests.post(f"{forge.url}/sandbox/requests/reset")
    return replace(world(configured, State(redis_client)).deps, forge=Forge(github, login=BOT))


def counts(forge) -> dict:
    return requests.get(f"{forge.url}/sandbox/requests").json()


def used(forge) -> int:
    """The bot's requests counted against its rate limit this hour (this probe included)."""
    return int(
        requests.get(f"{forge.url}/user", headers={"Authorization": "token ghp_bot"}).headers["X-RateLimit-Used"]
    )


def reconcile(deps, now: float, due_only: bool = False) -> list[Action]:
    queued: list[Action] = []
    reconciler.reconcile(deps, queued.append, now=now, grace=0, due_only=due_only)
    return queued


def open_pr(forge, branch: str) -> int:
    """alice pushes `branch` (one commit) to the active repository and opens a PR."""
    url = forge.url.replace("http://", "http://alice:ghp_alice@") + f"/{ACTIVE}.git"
    clone = forge.tmp / f"clone-{branch}"
    git = lambda *a: subprocess.run(["git", *a], cwd=clone, check=True, capture_output=True)  # noqa: E731
    subprocess.run(["git", "clone", "-q", url, str(clone)], check=True, capture_output=True)
    git("checkout", "-q", "-b", branch)
    (clone / "NOTES.md").write_text(branch)
    git("add", "-A")
    git("-c", "user.name=Alice", "-c", "user.email=alice@example.com", "commit", "-qm", branch)
    git("push", "-q", "origin", branch)
    body = {"title": branch, "head": branch, "base": "main"}
    return requests.post(f"{forge.url}/repos/{ACTIVE}/pulls", json=body, headers=ALICE).json()["number"]


def test_a_quiet_repository_s_second_pass_is_a_304_that_costs_no_rate_limit(forge, deps):
    now = time.time()
    reconcile(deps, now)
    before = used(forge)
    assert reconcile(deps, now + 120) == []
    assert used(forge) == before + 1  # the probe: the ten 304s of the second pass cost nothing
    seen = counts(forge)
    assert seen["by_user_route"][BOT][LISTING] == 20  # each pass asked each repository once
    assert seen["not_modified_by_user"] == {BOT: 10}  # the second pass: ten 304s


def test_a_command_after_a_304_is_found_and_queued_once(forge, deps):
    pr, now = open_pr(forge, "feature/idle"), time.time()
    reconcile(deps, now)
    reconcile(deps, now + 1)
    assert counts(forge)["not_modified_by_user"][BOT] == 10
    comment = requests.post(f"{forge.url}/repos/{ACTIVE}/issues/{pr}/comments", json={"body": "/train toy"},
                            headers=ALICE).json()["id"]  # fmt: skip
    time.sleep(1.1)  # GitHub's times are whole seconds: the pass judges what was said before its `now`
    [queued] = reconcile(deps, time.time())
    assert (queued.kwargs["comment_id"], queued.kwargs["repo"], queued.kwargs["pr"]) == (comment, ACTIVE, pr)
    assert reconcile(deps, time.time() + 120) == []  # the listing since the comment's second: judged already
    assert reconcile(deps, time.time() + 240) == []
    assert counts(forge)["not_modified_by_user"][BOT] == 10 + 9 + 9 + 10  # the quiet nine stayed 304s


def test_an_idle_hour_lists_each_quiet_repository_5_times_then_2_an_hour_all_but_the_first_free(forge, deps):
    """The beat fires every 2 minutes for two hours (time given, not waited for): before this backoff and ETags each
    repository was listed 30 times an hour, every listing counted against the rate limit."""
    start, hours = time.time(), []
    for hour in range(2):
        requests.post(f"{forge.url}/sandbox/requests/reset")
        before = used(forge)
        for tick in range(30):
            reconcile(deps, start + 3600 * hour + 120 * tick, due_only=True)
        seen = counts(forge)
        hours.append(
            (seen["by_user_route"][BOT][LISTING], seen["not_modified_by_user"].get(BOT, 0), used(forge) - before - 1)
        )
    per_repo = [(listed / len(REPOS), free / len(REPOS), spent / len(REPOS)) for listed, free, spent in hours]
    assert per_repo == [(5, 4, 1), (2, 2, 0)]  # (listings, of them 304s, counted against the rate limit) an hour


def test_as_a_github_app_whose_webhook_carries_comments_it_asks_github_nothing_but_once_an_hour(
    forge, deps, monkeypatch
):
    monkeypatch.setenv(KEY_ENV, forge.pem)
    app = GitHubSettings(
        base_url=forge.url, app_id=APP_ID, installation_id=INSTALLATION_ID, app_private_key_env=KEY_ENV
    )
    deps = replace(deps, settings=deps.settings.model_copy(update={"github": app}), forge=Forge(app, login=BOT))
    now = time.time()
    for tick in range(30):  # an hour of beats
        assert reconcile(deps, now + 120 * tick, due_only=True) == []
    seen = counts(forge)
    assert seen["by_route"] == {"GET /app": 1}  # the App's webhook subscribes to issue_comment: redelivery covers it
    assert seen["by_user"] == {f"app:{APP_ID}": 1}
