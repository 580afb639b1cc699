"""The whole loop on real processes: the demo's story, the Databricks registry path, Slack approvals.

One stack for the module (Redis, MLflow server, sandbox forge/workspace/Slack, web, worker). The
Databricks-registry test runs first, before the MLflow webhook is installed, so that only the
Databricks delivery can start the validation it checks.
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
from mlflow.tracking import MlflowClient

from bot import audit, events
from devstack import ROOT
from devstack.demo import Story, seed_champion
from devstack.setups import EXAMPLE, SECRETS, install_registry_hook, whole_loop
from devstack.waiting import wait_until
from tests.support import browser
from tests.support.webhooks import post


def wait(check, timeout=90.0):
    return wait_until(check, timeout, every=0.3)


pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with whole_loop(tmp_path_factory.mktemp("loop")) as s:
        seed_champion(s)
        yield s


@pytest.fixture(scope="module")
def mlflow(stack):
    return MlflowClient(tracking_uri=stack.url("mlflow"), registry_uri=stack.url("mlflow"))


def register(stack, *params: str) -> str:
    """Train and register a version without lineage, as someone's notebook would."""
    work = stack.workdir / f"nb-{time.monotonic_ns()}"
    shutil.copytree(EXAMPLE, work)
    env = {**os.environ, "MLFLOW_TRACKING_URI": stack.url("mlflow"), "PYTHONPATH": str(work / "src")}
    argv = [sys.executable, "-m", "churn_model.cli", "--dataset", "toy", "--register", "--model-name", "churn-model"]
    for p in params:
        argv += ["--param", p]
    out = subprocess.run(argv, cwd=work, env=env, check=True, capture_output=True, text=True).stdout
    return str(json.loads(out.strip().splitlines()[-1])["registered"]["version"])


def slack(stack, path: str, payload: dict) -> dict:
    request = urllib.request.Request(
        stack.url("slack") + path,
        data=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as r:
        return json.load(r)


def slack_messages(stack) -> list[dict]:
    with urllib.request.urlopen(stack.url("slack") + "/sandbox/messages") as r:
        return json.load(r)["messages"]


def responses(stack) -> list[dict]:
    with urllib.request.urlopen(stack.url("slack") + "/sandbox/responses") as r:
        return json.load(r)["responses"]


def trail(stack, model="churn-model") -> list[dict]:
    return audit.entries(redis.Redis.from_url(stack.services["redis"].url), model)


def test_databricks_registry_event_validates_and_slack_approves(stack, mlflow):
    version = register(stack)  # no lineage: validated on main and reported to Slack only
    body = json.dumps(
        {
            "event": "MODEL_VERSION_CREATED",
            "webhook_id": "w1",
            "event_timestamp": int(time.time() * 1000),  # the receiver refuses registry events older than 300 s
            "model_name": "churn-model",
            "version": version,
            "text": f"Registered model 'churn-model' version {version} created.",
        }
    ).encode()
    headers = {
        "Content-Type": "application/json",
        "X-Databricks-Signature": events.databricks_signature(SECRETS["DATABRICKS_WEBHOOK_SECRET"], body),
    }
    status, answer = post(stack.url("web") + "/webhooks/databricks", body, headers)
    assert status == 202 and answer["tasks"][0]["task"] == "handle_model_event"
    assert post(stack.url("web") + "/webhooks/databricks", body, headers)[1]["status"] == "duplicate"

    ask = wait(
        lambda: [
            m
            for m in slack_messages(stack)
            if f"version {version}" in m["text"] and "Approve" in json.dumps(m.get("blocks"))
        ]
    )[-1]
    assert "no lineage" in ask["text"]
    assert mlflow.get_model_version("churn-model", version).tags["validation_status"] == "passed"

    # a click with a bad signature is refused before anything happens
    forged = (
        "payload="
        + quote(
            json.dumps(
                {
                    "type": "block_actions",
                    "user": {"id": "U0BOB"},
                    "actions": [{"action_id": "approve", "value": f"churn-model@{version}"}],
                }
            )
        )
    ).encode()
    ts = str(int(time.time()))
    status, _ = post(
        stack.url("web") + "/webhooks/slack/interactions",
        forged,
        {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": "v0=" + "0" * 64,
        },
    )
    assert status == 401
    assert mlflow.get_model_version("churn-model", version).aliases == []

    # carol has read access only: refused, and the refusal says which rule
    clicked = slack(
        stack, "/sandbox/click", {"user": "U0CAROL", "channel": ask["channel"], "ts": ask["ts"], "action_id": "approve"}
    )
    assert clicked["status"] == 200
    refusal = wait(lambda: [r for r in responses(stack) if "carol" in json.dumps(r["body"])])[-1]
    assert "refused: approving needs write permission" in refusal["body"]["text"]

    clicked = slack(
        stack, "/sandbox/click", {"user": "U0BOB", "channel": ask["channel"], "ts": ask["ts"], "action_id": "approve"}
    )
    assert clicked["status"] == 200
    wait(lambda: mlflow.get_model_version_by_alias("churn-model", "champion").version == version)
    tags = mlflow.get_model_version("churn-model", version).tags
    assert tags["approved_by"] == "bob" and tags["approval_source"] == "slack" and tags["approved_at"]
    decisions = [(e["decision"], e["actor"], e["source"]) for e in trail(stack) if e["version"] == version]
    assert ("refused", "carol", "slack") in decisions and ("promoted", "bob", "slack") in decisions
    updated = wait(lambda: [m for m in slack_messages(stack) if m["ts"] == ask["ts"] and "Decision" in m["text"]])
    assert "approved by @bob" in updated[0]["text"]


def test_a_failed_validation_blocks_approval(stack, mlflow):
    version = register(stack, "n_estimators=1", "max_depth=1", "learning_rate=0.01")  # worse than the champion
    body = json.dumps({"event": "MODEL_VERSION_CREATED", "model_name": "churn-model", "version": version}).encode()
    post(
        stack.url("web") + "/webhooks/databricks",
        body,
        {
            "Content-Type": "application/json",
            "X-Databricks-Signature": events.databricks_signature(SECRETS["DATABRICKS_WEBHOOK_SECRET"], body),
        },
    )
    wait(lambda: mlflow.get_model_version("churn-model", version).tags.get("validation_status"))
    tags = mlflow.get_model_version("churn-model", version).tags
    assert tags["validation_status"] == "failed" and "accuracy >= champion - 0.01" in tags["validation_summary"]
    answer = slack(
        stack,
        "/sandbox/command",
        {
            "user": "U0BOB",
            "command": "/mlops",
            "text": f"approve churn-model {version}",
            "url": stack.url("web") + "/webhooks/slack/commands",
        },
    )
    assert answer["status"] == 200
    refusal = wait(lambda: [r for r in responses(stack) if "has not passed validation" in json.dumps(r["body"])])
    assert f"churn-model@{version} has not passed validation" in refusal[-1]["body"]["text"]
    assert mlflow.get_model_version_by_alias("churn-model", "champion").version != version


def test_the_demo_story(stack, mlflow):
    """push → jobs; PR → test; /train toy → report; webhook → validation; four eyes; merge → cleanup."""
    assert install_registry_hook(stack) == "created"
    assert install_registry_hook(stack) == "unchanged"  # idempotent
    lines: list[str] = []
    story = Story(stack, out=lines.append)
    assert story.run(), "\n".join(lines)
    story.transcript()
    text = "\n".join(lines)
    assert "four eyes: @alice" in text and "is now `champion`" in text
    decisions = [e["decision"] for e in trail(stack) if e["version"] == story.version]
    assert decisions == ["validated", "requested", "refused", "approved", "promoted"]


def test_deploy_runs_only_for_an_approved_version_and_only_for_maintainers(stack, mlflow):
    gh = {u: Story(stack, out=lambda line: None).repo(u) for u in ("alice", "bob")}
    [pr] = [p for p in gh["bob"].get_pulls(state="closed") if p.title == "Better features"]
    champion = mlflow.get_model_version_by_alias("churn-model", "champion").version
    refused = gh["alice"].get_issue(pr.number).create_comment("/deploy staging")
    reply = wait(lambda: [c for c in gh["bob"].get_issue(pr.number).get_comments() if f"key={refused.id}-0" in c.body])[
        0
    ]
    assert "`/deploy` needs maintain permission" in reply.body
    gh["bob"].get_issue(pr.number).create_comment("/deploy staging")
    report = wait(
        lambda: [
            c
            for c in gh["bob"].get_issue(pr.number).get_comments()
            if "mlops-bot:report key=deploy" in c.body and "— SUCCESS" in c.body
        ],
        timeout=120,
    )
    assert report
    assert mlflow.get_model_version_by_alias("churn-model", "staging").version == champion  # set by deploy.py
    assert ("deployed", "bob") in [(e["decision"], e["actor"]) for e in trail(stack) if e["version"] == champion]


def test_a_replayed_registry_event_does_nothing(stack, mlflow):
    """The same version announced again (a replay, or the other registry's hook) starts nothing new."""
    version = mlflow.get_model_version_by_alias("churn-model", "champion").version
    before = len(trail(stack))
    data = {
        "entity": "model_version",
        "action": "created",
        "timestamp": "t",
        "data": {"name": "churn-model", "version": version, "tags": {}},
    }
    body = json.dumps(data).encode()
    ts, delivery = str(int(time.time())), "replay-1"
    headers = {
        "Content-Type": "application/json",
        "X-MLflow-Delivery-Id": delivery,
        "X-MLflow-Timestamp": ts,
        "X-MLflow-Signature": events.mlflow_signature(SECRETS["MLFLOW_WEBHOOK_SECRET"], delivery, ts, body),
    }
    assert post(stack.url("web") + "/webhooks/mlflow", body, headers)[0] == 202
    assert post(stack.url("web") + "/webhooks/mlflow", body, headers)[1]["status"] == "duplicate"
    time.sleep(2)
    assert len(trail(stack)) == before
    assert mlflow.get_model_version_by_alias("churn-model", "champion").version == version


def test_audit_cli_lists_the_decisions(stack):
    out = subprocess.run(
        [sys.executable, "-m", "bot", "audit", "--model", "churn-model"],
        capture_output=True,
        text=True,
        env={**os.environ, "REDIS_URL": stack.services["redis"].url},
        check=True,
    ).stdout
    assert "promoted" in out and "refused" in out and "four eyes" in out


@pytest.mark.skipif(not browser.available(), reason="chromium is not installed: `apt-get install -y chromium`")
def test_the_dashboard_shows_the_run_in_a_browser(stack, tmp_path):
    url = f"{stack.url('web')}/?token={SECRETS['MLOPS_BOT_DASHBOARD_TOKEN']}&refresh=0"
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
