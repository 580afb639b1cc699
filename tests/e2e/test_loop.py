"""The whole loop on real processes: the release train as the demo tells it, then what people check afterwards.

One stack for the module (Redis, a real MLflow server, the sandbox forge, the sandbox workspace serving Unity
Catalog, the sandbox Slack, web, worker). The demo's story runs once (fixture `story`: push → PR → /train in dev →
merge → staging training and validation → four eyes → prod → /rollback); the tests assert on what it left behind
and add only cheap steps: a version registered by hand in staging, refused deploys, a replayed event, the audit
CLI, the dashboard.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from urllib.parse import quote

import pytest
import redis

from core import audit, events
from core import vocabulary as V
from core.celery_app import create_celery
from devstack import ROOT
from devstack.demo import DEV, PROD, STAGING, Story, seed_champion, uc_client, uc_env
from devstack.setups import EXAMPLE, REPO, SECRETS, whole_loop
from devstack.waiting import wait_until
from tests.support import browser
from tests.support.webhooks import post

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]  # a stack, then the whole release train


def wait(check, timeout=90.0):
    return wait_until(check, timeout, every=0.3)


class WatchedStory(Story):
    """The demo's story; while the merged PR's version waits for its approval, alice and bob try `/deploy prod`."""

    def approve(self) -> None:
        self.champion_before_approval = self.champion()
        self.deploy_answers = {user: self.answer(user, "/deploy prod") for user in ("alice", "bob")}
        self.prod_deployments_before_approval = len(list(self.repo().get_deployments(environment="prod")))
        super().approve()

    def answer(self, user: str, body: str) -> str:
        c = self.comment(user, body)
        return wait(lambda: self.bot_comments("reply", f"{c.id}-0"))[0].body


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp, whole_loop(tmp_path_factory.mktemp("loop")) as s:
        for key, value in uc_env(s).items():  # uc_client sets these too: restored when the module is done
            mp.setenv(key, value)
        seed_champion(s)
        yield s


@pytest.fixture(scope="module")
def story(stack):
    lines: list[str] = []
    story = WatchedStory(stack, out=lines.append, patience=2.5)  # several stacks share two cores in make test
    story.passed = story.run()
    story.transcript()
    story.registry()
    story.audit()
    story.text = "\n".join(lines)
    if not story.passed:
        logs = {name: (stack.workdir / f"{name}.log").read_text(errors="replace")[-3000:] for name in ("worker", "web")}
        pytest.fail(
            "the demo's story failed:\n" + story.text + "".join(f"\n── {n}.log ──\n{t}" for n, t in logs.items())
        )
    return story


@pytest.fixture(scope="module")
def uc(stack):
    return uc_client(stack)


# --- helpers -------------------------------------------------------------------------------------------------
def register_by_hand(stack, *claims: str) -> str:
    """Train on toy data and register in staging from a notebook, claiming whatever the caller likes in tags."""
    work = stack.workdir / f"notebook-{time.monotonic_ns()}"
    shutil.copytree(EXAMPLE, work)
    env = {
        **os.environ,
        **uc_env(stack),
        "MLFLOW_TRACKING_URI": stack.url("mlflow"),
        "MLFLOW_REGISTRY_URI": "databricks-uc",
        "PYTHONPATH": str(work / "src"),
    }
    argv = [sys.executable, "-m", "churn_model.cli", "--dataset", "toy", "--register", "--model-name", STAGING, *claims]
    out = subprocess.run(argv, cwd=work, env=env, check=True, capture_output=True, text=True).stdout
    return str(json.loads(out.strip().splitlines()[-1])["registered"]["version"])


def databricks_delivery(name: str, version: str) -> tuple[bytes, dict]:
    body = json.dumps(
        {
            "event": "MODEL_VERSION_CREATED",
            "webhook_id": "w1",
            "event_timestamp": int(time.time() * 1000),  # the receiver refuses registry events older than 300 s
            "model_name": name,
            "version": version,
            "text": f"Registered model '{name}' version {version} created.",
        }
    ).encode()
    headers = {
        "Content-Type": "application/json",
        "X-Databricks-Signature": events.databricks_signature(SECRETS["DATABRICKS_WEBHOOK_SECRET"], body),
    }
    return body, headers


def model_event_enqueued(stack, name: str, version: str, delivery_id: str) -> None:
    """What the receiver enqueues for a registry event, put on the worker's queue directly."""
    event = {"registry": "databricks", "kind": "version_created", "model": name, "version": version}
    create_celery(stack.url("redis")).send_task(
        V.HANDLE_MODEL_EVENT, kwargs={"model_event": event, "delivery_id": delivery_id}
    )


def handled(stack, delivery_id: str) -> dict | None:
    """The worker's log line for a handled model event (its `outcome` says what was done)."""
    for line in (stack.workdir / "worker.log").read_text().splitlines():
        if "model_event.handled" in line and delivery_id in line:
            return json.loads(line[line.index("{") :])
    return None


def slack(stack, path: str, payload: dict) -> dict:
    request = urllib.request.Request(
        stack.url("slack") + path,
        data=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as r:
        return json.load(r)


def slack_command(stack, user: str, text: str) -> str:
    """`/mlops <text>` typed by `user` in Slack; the bot's answer through the response URL."""
    sent = slack(stack, "/sandbox/command", {"user": user, "command": "/mlops", "text": text})
    assert sent["status"] == 200, sent
    return answer(stack, sent["response_url"])


def answer(stack, response_url: str) -> str:
    """The bot's verdict posted to a response URL (not the receiver's immediate acknowledgement)."""
    found = wait(
        lambda: [
            r["body"]["text"]
            for r in responses(stack)
            if r["url"] == response_url
            and r.get("via") != "command_reply"
            and r["body"].get("text", "").startswith("@")
        ]
    )
    return found[-1]


def slack_messages(stack) -> list[dict]:
    with urllib.request.urlopen(stack.url("slack") + "/sandbox/messages") as r:
        return json.load(r)["messages"]


def responses(stack) -> list[dict]:
    with urllib.request.urlopen(stack.url("slack") + "/sandbox/responses") as r:
        return json.load(r)["responses"]


def trail(stack, name: str | None = None) -> list[dict]:
    return audit.entries(redis.Redis.from_url(stack.url("redis")), name)


def decisions(stack, name: str, version: str) -> list[tuple[str, str]]:
    return [(e["decision"], e["actor"]) for e in trail(stack, name) if e["version"] == version]


def statuses(deployment) -> list[str]:
    return [s.state for s in reversed(list(deployment.get_statuses()))]


# --- the demo's story and what it left behind ------------------------------------------------------------------
def test_the_demo_story_passes(story):
    assert [ok for _, ok, _ in story.results] == [True] * 6, story.text
    assert "four eyes: @alice opened the pull request" in story.text
    assert f"is now `{PROD}@champion` (v{story.promoted})" in story.text
    print("\n" + "\n".join(f"{title}: {took:.1f} s" for title, _, took in story.results))


def test_every_stage_has_its_registry_and_prod_was_rolled_back(story, uc):
    for name in (DEV, STAGING, PROD):
        assert uc.search_model_versions(f"name='{name}'"), f"no version in {name}"
    staging = uc.get_model_version(STAGING, story.version)
    assert staging.tags["validation_status"] == "passed" and staging.tags["approved_by"] == "bob"
    promoted = uc.get_model_version(PROD, story.promoted)
    assert promoted.tags["copied_from"] == f"{STAGING}@{story.version}" and promoted.tags["approved_by"] == "bob"
    assert story.champion_before_approval == "1"  # merge and validation alone moved nothing
    assert uc.get_model_version_by_alias(PROD, "champion").version == "1"  # rolled back
    assert uc.get_model_version(PROD, "1").tags["deployed_prod_by"] == "bob"  # and deployed again
    assert decisions(story.stack, STAGING, story.version) == [
        ("validated", "mlops-bot"),
        ("requested", "mlops-bot"),
        ("refused", "alice"),
        ("approved", "bob"),
        ("copied", "bob"),
    ]
    prod = [d for d, _ in decisions(story.stack, PROD, story.promoted)] + [
        d for d, _ in decisions(story.stack, PROD, "1")
    ]
    assert prod == ["promoted", "deploy-started", "deployed", "rolled-back", "deploy-started", "deployed"]


def test_the_merged_pr_has_one_release_comment_and_deployments(story):
    comments = story.repo().get_issue(story.pr.number).get_comments()
    [release] = [c for c in comments if "<!-- mlops-bot:release key=churn" in c.body]
    assert release.user.login == "mlops-bot"
    assert f"`{STAGING}`" in release.body and "approved by @bob" in release.body
    assert f"deploy of `{PROD}` v{story.promoted} to prod: [SUCCESS]" in release.body
    [staging] = list(story.repo().get_deployments(environment="staging"))
    assert statuses(staging) == ["in_progress", "success"]
    rollback, promotion = list(story.repo().get_deployments(environment="prod"))  # newest first
    assert statuses(promotion) == ["in_progress", "success", "inactive"]  # replaced by the rollback's
    assert statuses(rollback) == ["in_progress", "success"] and "v1" in rollback.description
    assert story.prod_deployments_before_approval == 0


def test_the_release_comment_and_the_prod_deployment_show_the_rollback(story):
    [release] = story.bot_comments("release", "churn")
    newest = list(story.repo().get_deployments(environment="prod"))[0]
    assert f"back from v{story.promoted} to v1" in release.body and f"v{story.promoted}" not in newest.description


# --- deploys along the chain --------------------------------------------------------------------------------
def test_deploy_prod_is_refused_before_approval_and_for_non_maintainers(story):
    assert "`/deploy` needs maintain permission" in story.deploy_answers["alice"]
    bob = story.deploy_answers["bob"]
    assert "a version reaches prod only after it passed staging with the 1 approval(s) prod requires" in bob, bob
    carol = story.answer("carol", "/deploy prod")
    assert "`/deploy` needs maintain permission" in carol


def test_deploy_staging_runs_for_the_validated_version_for_a_maintainer(story, uc):
    refused = story.answer("alice", "/deploy staging")
    assert "`/deploy` needs maintain permission" in refused
    answer = story.answer("bob", "/deploy staging")
    assert f"deploying {STAGING}@{story.version} to staging" in answer
    wait(lambda: uc.get_model_version(STAGING, story.version).tags.get("deployed_staging_by"), timeout=120)
    assert "staging" in uc.get_model_version(STAGING, story.version).aliases  # set by the example's deploy.py
    assert ("deployed", "bob") in decisions(story.stack, STAGING, story.version)
    assert uc.get_model_version_by_alias(PROD, "champion").version == "1"


# --- a version registered by hand: no lineage the bot can prove -----------------------------------------------
@pytest.fixture(scope="module")
def by_hand(story, uc):
    """A notebook registers in staging, claiming PR #1 and pointing at the bot's own staging training run."""
    trained = uc.get_run(uc.get_model_version(STAGING, story.version).run_id).data.tags["job_run_id"]
    return register_by_hand(
        story.stack, "--repo", REPO, "--branch", "main", "--pr", str(story.pr.number), "--job-run-id", trained
    )


def test_a_databricks_registry_webhook_for_a_staging_version_is_queued(story, by_hand):
    body, headers = databricks_delivery(STAGING, by_hand)
    status, answer = post(story.stack.url("web") + "/webhooks/databricks", body, headers)
    assert status == 202 and answer["tasks"][0]["task"] == V.HANDLE_MODEL_EVENT, answer


@pytest.fixture(scope="module")
def asked(story, uc, by_hand):
    """The hand-registered version's model event on the worker's queue → validated → asked in Slack."""
    model_event_enqueued(story.stack, STAGING, by_hand, "by-hand-1")
    return wait(
        lambda: [
            m
            for m in slack_messages(story.stack)
            if f"*{STAGING}* version {by_hand} " in m["text"] and "Approve" in json.dumps(m.get("blocks"))
        ],
        timeout=120,
    )[-1]


def test_a_version_without_provable_lineage_needs_two_listed_approvers(story, uc, by_hand, asked):
    stack = story.stack
    assert "with no lineage the bot can prove" in asked["text"] and "needs 2 approval(s)" in asked["text"]
    assert f"pr={story.pr.number}" in asked["text"]  # what its tags claim, shown and not trusted
    assert uc.get_model_version(STAGING, by_hand).tags["validation_status"] == "passed"

    # a click with a bad signature is refused before anything happens
    forged = quote(
        json.dumps(
            {
                "type": "block_actions",
                "user": {"id": "U0BOB"},
                "actions": [{"action_id": "approve", "value": f"{STAGING}@{by_hand}"}],
            }
        )
    )
    status, _ = post(
        stack.url("web") + "/webhooks/slack/interactions",
        f"payload={forged}".encode(),
        {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Slack-Request-Timestamp": str(int(time.time())),
            "X-Slack-Signature": "v0=" + "0" * 64,
        },
    )
    assert status == 401

    carol = slack_command(stack, "U0CAROL", f"approve {STAGING} {by_hand}")
    assert carol.startswith("@carol: refused: approving needs write permission"), carol
    alice = slack_command(stack, "U0ALICE", f"approve {STAGING} {by_hand}")
    assert alice.startswith(f"@alice: refused: {STAGING}@{by_hand} has no lineage the bot can prove"), alice
    assert "only the model's listed approvers (bob) may approve it, and it needs two of them" in alice

    clicked = slack(
        stack,
        "/sandbox/click",
        {"user": "U0BOB", "channel": asked["channel"], "ts": asked["ts"], "action_id": "approve"},
    )
    assert clicked["status"] == 200
    bob = answer(stack, clicked["response_url"])
    assert bob == f"@bob: approval 1 of 2 recorded for {STAGING}@{by_hand}.", bob
    again = slack_command(stack, "U0BOB", f"approve {STAGING} {by_hand}")
    assert f"@bob has approved {STAGING}@{by_hand} already" in again, again

    assert uc.get_model_version_by_alias(PROD, "champion").version == "1"
    assert "approved_by" not in uc.get_model_version(STAGING, by_hand).tags
    assert decisions(stack, STAGING, by_hand) == [
        ("validated", "mlops-bot"),
        ("requested", "mlops-bot"),
        ("refused", "carol"),
        ("refused", "alice"),
        ("approved", "bob"),
        ("refused", "bob"),
    ]


# --- replays, the audit trail, the dashboard ------------------------------------------------------------------
def test_a_replayed_registry_event_does_nothing_new(story, uc, by_hand, asked):
    stack = story.stack
    before = len(trail(stack))
    body, headers = databricks_delivery(STAGING, story.version)
    answers = [post(stack.url("web") + "/webhooks/databricks", body, headers)[1]["status"] for _ in range(2)]
    assert answers[1] != "queued", answers  # `duplicate` once the receiver queues these (it ignores them today)
    for version in (story.version, by_hand):  # the merged PR's version, and the hand-registered one, again
        model_event_enqueued(stack, STAGING, version, f"replay-{version}")
        assert wait(lambda v=version: handled(stack, f"replay-{v}"))["outcome"] == "already validating"
    assert len(trail(stack)) == before
    assert uc.get_model_version_by_alias(PROD, "champion").version == "1"


def test_audit_cli_lists_the_decisions(story, asked):
    def cli(*args: str) -> str:
        return subprocess.run(
            [sys.executable, "-m", "bot", "audit", *args],
            capture_output=True,
            text=True,
            env={**os.environ, "REDIS_URL": story.stack.url("redis")},
            check=True,
        ).stdout

    staging = cli("--model", STAGING)
    for text in ("validated", "requested", "four eyes", "approved", "copied", "no lineage the bot can prove"):
        assert text in staging, text
    assert "rolled-back" in cli("--model", PROD) and "promoted" in cli()


@pytest.mark.skipif(not browser.available(), reason="chromium is not installed: `apt-get install -y chromium`")
def test_the_dashboard_shows_the_run_in_a_browser(story, tmp_path):
    url = f"{story.stack.url('web')}/?token={SECRETS['MLOPS_BOT_DASHBOARD_TOKEN']}&refresh=0"
    dom = browser.chromium(["--dump-dom", url], tmp_path / "p1")
    assert dom.returncode == 0, dom.stderr[-2000:]
    for text in ("feature/better-features", "churn-model", "train", "SUCCESS", "promoted", "four eyes"):
        assert text in dom.stdout, text
    artifacts = ROOT / "test-artifacts"
    artifacts.mkdir(exist_ok=True)
    shot = artifacts / "demo-dashboard.png"
    shot.unlink(missing_ok=True)
    assert browser.chromium([f"--screenshot={shot}", "--window-size=1400,1800", url], tmp_path / "p2").returncode == 0
    assert shot.stat().st_size > 10_000
