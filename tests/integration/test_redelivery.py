"""A bot authenticated as a GitHub App, on the real stack (Redis, the forge with the App's webhook, the workspace, web,
a worker and beat): a `/train` comment whose delivery found the receiver down (GitHub does not redeliver on its own)
is redelivered by one pass of workers/delivery/redelivery.py — one redelivery, one run, one report; a second pass asks
for nothing."""

from __future__ import annotations

import textwrap
import time
from collections import Counter

import pytest
import redis

from core import vocabulary as V
from core.queue import DEFAULT_QUEUE, celery_message
from devstack import mlrepo
from devstack.bot import start_beat, start_web, start_worker
from devstack.processes import Service, free_port
from devstack.redis import start_redis
from devstack.sandboxes import WORKSPACE_TOKEN, start_forge, start_workspace
from devstack.setups import Setup
from devstack.waiting import wait_until
from tests.conftest import SECRETS
from tests.reliability.test_chaos import Forge, logged, workspace_runs
from tests.support.app_keys import app_key_pair

APP_ID, INSTALLATION_ID, KEY_ENV = 123, 456, "SANDBOX_GITHUB_APP_KEY"
APP_BOT = f"{mlrepo.BOT}[bot]"


def app_seed(src, web_url: str, public_key_file: str) -> str:
    """`acme/tiny-ml` with no repository webhook: its events reach the bot through the App's webhook only."""
    users = "".join(f'[users."{login}"]\ntoken = "{token}"\n' for login, token in mlrepo.TOKENS.items())
    return users + textwrap.dedent(f"""\
        [[repos]]
        full_name = "{mlrepo.REPO}"
        init_from = "{src}"
        permissions = {{ alice = "write", bob = "admin", carol = "read" }}
        [[apps]]
        id = {APP_ID}
        slug = "{mlrepo.BOT}"
        installation_id = {INSTALLATION_ID}
        public_key_file = "{public_key_file}"
        [apps.webhook]
        url = "{web_url}/webhooks/github"
        secret = "{SECRETS["GITHUB_WEBHOOK_SECRET"]}"
        """)


def app_config(workspace_url: str, forge_url: str) -> str:
    text = mlrepo.config_text(workspace_url, f"{forge_url}/{mlrepo.REPO}.git", forge_url=forge_url)
    app_auth = f'app_id = {APP_ID}\ninstallation_id = {INSTALLATION_ID}\napp_private_key_env = "{KEY_ENV}"'
    without_pr_runs = text.split("[workflows.test]", 1)[0]  # a quiet PR: no run, no report, no comment of the bot's
    return without_pr_runs.replace('token_env = "SANDBOX_GITHUB_TOKEN"', app_auth)


@pytest.fixture
def stack(tmp_path):
    setup, pem, web_port = Setup(tmp_path), app_key_pair(tmp_path), free_port()
    seed = tmp_path / "forge.toml"
    seed.write_text(
        app_seed(mlrepo.write_files(tmp_path / "tiny-ml-src"), f"http://127.0.0.1:{web_port}", "app.pub.pem")
    )
    try:
        setup.add("redis", start_redis(tmp_path / "redis"))
        setup.add("forge", start_forge(tmp_path, seed))
        setup.add("workspace", start_workspace(tmp_path))
        setup.config_path.write_text(app_config(setup.url("workspace"), setup.url("forge")))
        setup.env = {
            **SECRETS,
            "REDIS_URL": setup.url("redis"),
            "MLOPS_BOT_CONFIG": str(setup.config_path),
            "SANDBOX_DATABRICKS_TOKEN": WORKSPACE_TOKEN,
            KEY_ENV: pem,
        }
        setup.add("web", start_web(tmp_path, setup.env, port=web_port))
        setup.add("worker", start_worker(tmp_path, setup.env, concurrency=2))
        setup.add("beat", start_beat(tmp_path, setup.env))
        yield setup, web_port
    finally:
        setup.stop()


def app_deliveries(forge: Forge, **match) -> list[dict]:
    found = forge.call("GET", "/sandbox/deliveries", params={"payload": 1})["deliveries"]
    return [d for d in found if d["app_id"] == APP_ID and all(d.get(k) == v for k, v in match.items())]


def redeliver_now(setup: Setup, workers: list[Service]) -> dict:
    """Queue one pass (no grace period: the test's delivery is seconds old) and wait for what it says."""
    before = len(logged(workers, "redelivery.pass"))
    message = celery_message(V.REDELIVER_FAILED_DELIVERIES, {"grace_seconds": 0})
    redis.Redis.from_url(setup.url("redis")).lpush(DEFAULT_QUEUE, message)
    return wait_until(lambda: logged(workers, "redelivery.pass")[before:], 30, "a redelivery pass")[0]


def check_runs(forge: Forge, sha: str, name: str) -> list[tuple[str, str | None]]:
    found = forge.call("GET", f"/repos/{mlrepo.REPO}/commits/{sha}/check-runs", params={"check_name": name})
    return [(r["status"], r["conclusion"]) for r in found["check_runs"]]


def app_markers(forge: Forge, pr: int) -> Counter:
    """How many of the App's comments on the PR carry each hidden marker."""
    comments = forge.pages(f"/repos/{mlrepo.REPO}/issues/{pr}/comments")
    return Counter(c["body"].split("\n", 1)[0] for c in comments if c["user"]["login"] == APP_BOT)


def test_a_train_comment_the_receiver_missed_is_redelivered_once_and_runs_once(stack):
    setup, web_port = stack
    started = time.monotonic()
    forge, workers = Forge(setup), [setup.services["worker"]]
    pr, sha = forge.open_pr("feature/missed")
    wait_until(lambda: app_deliveries(forge, event="pull_request", status="OK"), 20, "the PR's delivery answered")

    setup.services["web"].stop()  # the receiver is down
    comment = forge.comment(pr, "/train toy")
    [failed] = wait_until(lambda: app_deliveries(forge, event="issue_comment", status="failed"), 20, "the failure")
    assert f'"id": {comment}' in failed["payload"]
    assert failed["status_code"] is None  # nobody answered: GitHub records the failure and stops there
    setup.add("web", start_web(setup.workdir, setup.env, port=web_port))

    first = redeliver_now(setup, workers)
    assert first["redelivered"] == 1 and first["listed"] > 1  # the comment's, of all the App's deliveries
    [again] = wait_until(lambda: app_deliveries(forge, guid=failed["guid"], redelivery=True, status_code=202), 20, "it")
    wait_until(lambda: ("completed", "success") in check_runs(forge, sha, "mlops-bot/train"), 60, "the train report")
    assert workspace_runs(setup, "/feature/missed/train") == 1
    markers = app_markers(forge, pr)
    assert markers["<!-- mlops-bot:report key=train -->"] == 1

    assert redeliver_now(setup, workers)["redelivered"] == 0  # the guid has its 2xx attempt
    time.sleep(1.0)
    assert len(app_deliveries(forge, guid=failed["guid"])) == 2 and again["id"] > failed["id"]
    assert workspace_runs(setup, "/feature/missed/train") == 1 and app_markers(forge, pr) == markers
    assert time.monotonic() - started < 60
