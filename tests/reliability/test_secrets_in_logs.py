"""No secret reaches a log or Redis: the `jobs` stack driven through good and bad deliveries, then read back.

Every secret the bot's processes get is a random value of its own, so that any 8 characters of it found
in a log file under the stack's workdir, or in anything the bot wrote to Redis, can only be a leak.
"""

from __future__ import annotations

import json
import secrets
import time
import urllib.request
from pathlib import Path

import pytest
import redis
from github import Auth, Github

from core import events
from devstack import setups
from devstack.mlrepo import BOT, REPO, TOKENS
from devstack.sandboxes import WORKSPACE_TOKEN
from devstack.waiting import wait_until
from tests.integration.test_receiver_worker import worker_lines
from tests.support.pushes import push_new_commit, push_url
from tests.support.webhooks import post

WINDOW = 8  # a substring this long of a secret counts as the secret


def _secret(kind: str) -> str:
    return f"{kind}-{secrets.token_urlsafe(24)}"


SECRETS = {
    "GITHUB_WEBHOOK_SECRET": _secret("ghwh"),
    "MLFLOW_WEBHOOK_SECRET": _secret("mlwh"),
    "DATABRICKS_WEBHOOK_SECRET": _secret("dbwh"),
    "SLACK_SIGNING_SECRET": _secret("slsig"),
    "MLOPS_BOT_DASHBOARD_TOKEN": _secret("dash"),
    "MLOPS_BOT_DASHBOARD_PASSWORD": _secret("dashpw"),
    # not read by the `jobs` config (it names SANDBOX_*), but in the environment: nothing may dump it
    "GITHUB_TOKEN": "ghp_" + secrets.token_hex(18),
    "DATABRICKS_TOKEN": "dapi" + secrets.token_hex(16),
    "SLACK_BOT_TOKEN": "xoxb-" + secrets.token_hex(16),
    "DATABRICKS_CLIENT_SECRET": "dose" + secrets.token_hex(16),
}
# The credentials the `jobs` setup really uses (fixed by devstack): its GitHub token is 7 characters,
# so it is looked for whole.
USED = {"SANDBOX_GITHUB_TOKEN": TOKENS[BOT], "SANDBOX_DATABRICKS_TOKEN": WORKSPACE_TOKEN}
PR_COMMENT = {"full_name": REPO, "name": REPO.split("/")[1], "owner": {"login": REPO.split("/")[0]}}


def windows(value: str) -> set[str]:
    if len(value) <= WINDOW:
        return {value}
    return {value[i : i + WINDOW] for i in range(len(value) - WINDOW + 1)}


def leaks(text: str, where: str) -> list[str]:
    found = []
    for name, value in {**SECRETS, **USED}.items():
        hit = next((w for w in windows(value) if w in text), None)
        if hit:
            at = text.index(hit)
            found.append(f"{where}: {name} ({hit!r} in …{text[max(0, at - 80) : at + 40]!r}…)")
    return found


def redis_dump(client: redis.Redis) -> dict[str, str]:
    """Every key the stack wrote and its value, as text, whatever its type."""
    out = {}
    for key in client.scan_iter(count=1000):
        kind = client.type(key).decode()
        if kind == "string":
            value = client.get(key)
        elif kind == "hash":
            value = client.hgetall(key)
        elif kind == "list":
            value = client.lrange(key, 0, -1)
        elif kind == "set":
            value = client.smembers(key)
        elif kind == "zset":
            value = client.zrange(key, 0, -1, withscores=True)
        elif kind == "stream":
            value = client.xrange(key)
        else:
            value = kind
        out[key.decode(errors="replace")] = repr(value)
    return out


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("secrets")
    env = {**SECRETS, "MLOPS_BOT_DASHBOARD_USER": "admin", "LOG_LEVEL": "DEBUG", "PYTHONUNBUFFERED": "1"}
    with setups.jobs(workdir, env, worker_concurrency=2) as setup:
        yield setup


def as_user(setup, login: str) -> Github:
    return Github(
        base_url=setup.url("forge"),
        auth=Auth.Token(TOKENS[login]),
        seconds_between_requests=0,
        seconds_between_writes=0,
    )


def push_branch(setup, login: str, branch: str) -> str:
    """`git push` a new branch as `login` over HTTP: the forge sends the signed push delivery."""
    checkout = setup.workdir / f"clone-{branch.replace('/', '-')}"
    return push_new_commit(push_url(setup.url("forge"), REPO, login, TOKENS[login]), checkout, branch, login)


BAD_BODY = json.dumps({"ref": "refs/heads/x", "repository": PR_COMMENT}).encode()


def bad_deliveries(web: str) -> list[int]:
    """Deliveries with wrong signatures, one per source."""
    body = BAD_BODY
    ts = str(int(time.time()))
    sent = [
        post(f"{web}/webhooks/github", body, _github_headers(body, "wrong-secret")),
        post(f"{web}/webhooks/github", body, {**_github_headers(body, "x"), "X-Hub-Signature-256": "sha256=zz"}),
        post(
            f"{web}/webhooks/mlflow",
            body,
            {
                "Content-Type": "application/json",
                "X-MLflow-Delivery-Id": "d-1",
                "X-MLflow-Timestamp": ts,
                "X-MLflow-Signature": events.mlflow_signature("wrong", "d-1", ts, body),
            },
        ),
        post(
            f"{web}/webhooks/databricks",
            body,
            {"Content-Type": "application/json", "X-Databricks-Signature": events.databricks_signature("wrong", body)},
        ),
        post(
            f"{web}/webhooks/slack/commands",
            b"command=%2Fmlops&text=approve",
            {
                "Content-Type": "application/x-www-form-urlencoded",
                "X-Slack-Request-Timestamp": ts,
                "X-Slack-Signature": events.slack_signature("wrong", ts, b"command=%2Fmlops&text=approve"),
            },
        ),
    ]
    return [status for status, _ in sent]


def _github_headers(body: bytes, secret: str, event: str = "push") -> dict:
    return {
        "Content-Type": "application/json",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": f"secrets-{time.monotonic_ns()}",
        "X-Hub-Signature-256": events.github_signature(secret, body),
    }


def dashboard(web: str, path: str = "/", headers: dict | None = None) -> int:
    request = urllib.request.Request(web + path, headers=headers or {})
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(request, timeout=10) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def test_no_secret_reaches_a_log_file_or_redis(stack):
    web = stack.url("web")
    worker = stack.services["worker"]

    # a push and a pull request from the forge, signed with the real secret
    sha = push_branch(stack, "alice", "feature/secrets")
    wait_until(lambda: [e for e in worker_lines(worker) if e.get("event") == "branch.synced"], 60, "the push's jobs")
    pr = as_user(stack, "alice").get_repo(REPO).create_pull(title="s", body="", head="feature/secrets", base="main")
    issue = as_user(stack, "alice").get_repo(REPO).get_issue(pr.number)
    issue.create_comment("/train toy --param lr=0.1")
    as_user(stack, "carol").get_repo(REPO).get_issue(pr.number).create_comment("/train full")  # refused: read only

    # a command on a pull request the forge does not have: every GitHub call of its task fails (404)
    body = json.dumps(
        {
            "action": "created",
            "issue": {"number": 999, "pull_request": {"url": "x"}, "user": {"login": "alice"}},
            "comment": {"id": 123456, "body": "/train toy", "user": {"login": "alice"}},
            "repository": PR_COMMENT,
        }
    ).encode()
    status, _ = post(
        f"{web}/webhooks/github", body, _github_headers(body, SECRETS["GITHUB_WEBHOOK_SECRET"], "issue_comment")
    )
    assert status == 202

    assert bad_deliveries(web) == [401] * 5
    token, password = SECRETS["MLOPS_BOT_DASHBOARD_TOKEN"], SECRETS["MLOPS_BOT_DASHBOARD_PASSWORD"]
    assert dashboard(web, headers={"Authorization": "Bearer " + token[::-1]}) == 401
    assert dashboard(web, "/?token=" + token[:-1]) == 401
    assert dashboard(web, headers={"Authorization": "Bearer " + token}) == 200
    assert dashboard(web, "/?token=" + token) == 303
    basic = __import__("base64").b64encode(f"admin:{password}".encode()).decode()
    assert dashboard(web, headers={"Authorization": "Basic " + basic}) == 200

    def logged(event: str, **match) -> list[dict]:
        return [
            e for e in worker_lines(worker) if e.get("event") == event and all(e.get(k) == v for k, v in match.items())
        ]

    wait_until(lambda: logged("run.reported", workflow="train", result="SUCCESS"), 120, "the /train report", every=0.5)
    wait_until(lambda: logged("task.failed", task="run_command"), 60, "the failed GitHub call of PR #999", every=0.5)
    wait_until(lambda: logged("command.refused", user="carol"), 60, "carol's refusal", every=0.5)
    assert sha

    client = redis.Redis.from_url(stack.url("redis"))
    stored = redis_dump(client)
    client.close()
    stack.stop()  # every process flushed its log

    assert any(k.startswith("mlops-bot:") for k in stored), sorted(stored)[:20]
    problems = [p for key, value in stored.items() for p in leaks(key + " " + value, f"redis {key}")]
    logs = sorted(p for p in stack.workdir.rglob("*") if p.is_file() and _is_log(p))
    assert {p.name for p in logs} >= {"web.log", "worker.log", "forge.log", "workspace.log", "redis.log"}
    # nor the signature a refused delivery should have had: it would let anyone replay that body
    expected_signature = events.github_signature(SECRETS["GITHUB_WEBHOOK_SECRET"], BAD_BODY).removeprefix("sha256=")
    for path in logs:
        text = path.read_text(errors="replace")
        problems += leaks(text, str(path.relative_to(stack.workdir)))
        if expected_signature[:16] in text:
            problems.append(f"{path.name}: the expected signature of a refused delivery")
    assert not problems, "\n".join(problems)


def _is_log(path: Path) -> bool:
    return path.suffix == ".log" or "log" in path.name.lower() and ".git" not in path.parts


def test_the_check_finds_a_secret_cut_into_a_log_line():
    secret = SECRETS["GITHUB_WEBHOOK_SECRET"]
    assert leaks(f'{{"event": "x", "hint": "{secret[5:13]}"}}', "planted") != []
    assert leaks(f"Bearer {TOKENS[BOT]}", "planted") != []
    assert leaks('{"event": "webhook.refused", "reason": "X-Hub-Signature-256 does not match the body"}', "ok") == []
