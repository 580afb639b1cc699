"""`mlops-bot demo`: start a private stack and play a scenario of signed deliveries through it.

For each delivery it prints what the receiver answered (queued which task with which arguments,
or why it was ignored), then waits until the worker has picked up every queued task. It exits
0 only if every step did what it should.

What is real today: the signed webhooks, the receiver under gunicorn, the private Redis and the
Celery worker. The tasks that call Databricks, GitHub, MLflow and Slack are filled in by later
issues; until then the worker logs each task it receives, and this demo shows that log.
"""
from __future__ import annotations

import json
import signal
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urlencode

from bot import events
from bot.localstack import Service
from bot.localstack.bot import start_web, start_worker
from bot.localstack.redis import start_redis

ROOT = Path(__file__).resolve().parent.parent
# Demo-only secrets: the demo's processes get them in their environment, nothing else does.
SECRETS = {
    "GITHUB_WEBHOOK_SECRET": "demo-github-secret",
    "MLFLOW_WEBHOOK_SECRET": "demo-mlflow-secret",
    "DATABRICKS_WEBHOOK_SECRET": "demo-databricks-secret",
    "SLACK_SIGNING_SECRET": "demo-slack-secret",
}
REPO = {"id": 1, "name": "churn-model", "full_name": "acme/churn-model", "default_branch": "main",
        "owner": {"login": "acme", "type": "Organization"}}
ALICE, BOB = {"login": "alice", "type": "User"}, {"login": "bob", "type": "User"}
BRANCH, SHA, BASE_SHA = "feature/better-features", "3f2a9c1" + "0" * 33, "9" * 40


@dataclass
class Step:
    title: str
    path: str
    body: bytes
    headers: dict
    expect: str  # queued | ignored | duplicate | refused
    tasks: list[str] = field(default_factory=list)


def _github(title: str, event: str, data: dict, expect: str, tasks=(), delivery: str | None = None) -> Step:
    body = json.dumps(data).encode()
    headers = {"Content-Type": "application/json", "X-GitHub-Event": event,
               "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
               "X-Hub-Signature-256": events.github_signature(SECRETS["GITHUB_WEBHOOK_SECRET"], body)}
    return Step(title, "/webhooks/github", body, headers, expect, list(tasks))


def _pull(action: str, **extra) -> dict:
    return {"action": action, "number": 7, "repository": REPO, "sender": ALICE,
            "pull_request": {"number": 7, "title": "Better features", "user": ALICE, "merged": extra.pop("merged", False),
                             "head": {"ref": BRANCH, "sha": SHA, "repo": REPO}, "base": {"ref": "main", "sha": BASE_SHA, "repo": REPO}},
            **extra}


def _comment(body: str, user: dict, comment_id: int) -> dict:
    return {"action": "created", "repository": REPO, "sender": user,
            "issue": {"number": 7, "title": "Better features", "user": ALICE, "pull_request": {"url": "…/pulls/7"}},
            "comment": {"id": comment_id, "body": body, "user": user}}


def scenario() -> list[Step]:
    push = _github("alice pushes feature/better-features", "push",
                   {"ref": f"refs/heads/{BRANCH}", "before": "0" * 40, "after": SHA, "created": True, "deleted": False,
                    "repository": REPO, "pusher": {"name": "alice"}, "sender": ALICE}, "queued", ["sync_branch_jobs"],
                   delivery="demo-push-1")
    mlflow_body = json.dumps({"entity": "model_version", "action": "created", "timestamp": "now",
                              "data": {"name": "churn-model", "version": "1", "run_id": "r1",
                                       "tags": {"branch": BRANCH, "pr": "7"}}}).encode()
    ts, mid = str(int(time.time())), str(uuid.uuid4())
    mlflow = Step("MLflow: churn-model version 1 registered", "/webhooks/mlflow", mlflow_body,
                  {"Content-Type": "application/json", "X-MLflow-Delivery-Id": mid, "X-MLflow-Timestamp": ts,
                   "X-MLflow-Signature": events.mlflow_signature(SECRETS["MLFLOW_WEBHOOK_SECRET"], mid, ts, mlflow_body)},
                  "queued", ["handle_model_event"])
    button = ("payload=" + quote(json.dumps({
        "type": "block_actions", "user": {"id": "U0BOB", "username": "bob"}, "trigger_id": str(uuid.uuid4()),
        "response_url": "http://127.0.0.1:9/none", "actions": [{"action_id": "approve", "value": "churn-model@1"}]}))).encode()
    slack = Step("Slack: bob clicks Approve", "/webhooks/slack/interactions", button,
                 {"Content-Type": "application/x-www-form-urlencoded", "X-Slack-Request-Timestamp": ts,
                  "X-Slack-Signature": events.slack_signature(SECRETS["SLACK_SIGNING_SECRET"], ts, button)},
                 "queued")  # Slack shows the answer to the user: it carries a text, not the task list
    forged = _github("someone posts an unsigned /deploy prod", "issue_comment", _comment("/deploy prod", BOB, 9), "refused")
    forged.headers["X-Hub-Signature-256"] = "sha256=" + "0" * 64
    return [
        push,
        _github("GitHub redelivers the same push", "push", json.loads(push.body), "duplicate", delivery="demo-push-1"),
        _github("alice opens PR #7", "pull_request", _pull("opened"), "queued", ["sync_branch_jobs", "start_run"]),
        _github("alice comments /train toy", "issue_comment", _comment("/train toy --param max_depth=4", ALICE, 1), "queued",
                ["run_command"]),
        _github("alice comments /trian toy (typo)", "issue_comment", _comment("/trian toy", ALICE, 2), "queued",
                ["refuse_command"]),
        _github("alice edits her comment", "issue_comment", {**_comment("/train full", ALICE, 1), "action": "edited"},
                "ignored"),
        mlflow,
        _github("alice comments /approve", "issue_comment", _comment("/approve", ALICE, 3), "queued", ["run_command"]),
        slack,
        forged,
        _github("alice pushes a tag", "push", {"ref": "refs/tags/v1", "after": SHA, "repository": REPO}, "ignored"),
        _github("bob merges PR #7", "pull_request", _pull("closed", merged=True), "queued", ["remove_branch_jobs"]),
    ]


def _post(url: str, step: Step) -> tuple[int, dict, float]:
    request = urllib.request.Request(url + step.path, data=step.body, headers=step.headers, method="POST")
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=10) as r:
            status, body = r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        status, body = e.code, json.loads(e.read())
    return status, body, (time.perf_counter() - started) * 1000


def _outcome(path: str, status: int, body: dict) -> str:
    if path.startswith("/webhooks/slack/") and status == 200:
        return {"On it.": "queued", "Already on it.": "duplicate"}.get(body.get("text"), "ignored")
    return body.get("status", "?") if status < 500 else "unavailable"


def _worker_saw(worker: Service) -> dict[str, dict]:
    seen = {}
    for line in worker.log_path.read_text(errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if entry.get("event") == "task.started" and entry.get("task_id"):
            seen[entry["task_id"]] = entry
    return seen


def run_demo(keep: bool = False) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="mlops-bot-demo-"))
    services: list[Service] = []
    print(f"mlops-bot demo — everything runs under {workdir}\n")
    try:
        redis = start_redis(workdir)
        services.append(redis)
        env = {**SECRETS, "REDIS_URL": redis.url, "MLOPS_BOT_CONFIG": str(ROOT / "config.toml")}
        services.append(web := start_web(workdir, env))
        services.append(worker := start_worker(workdir, env, concurrency=1))
        print(f"  redis   {redis.url}\n  web     {web.url}\n  worker  pid {worker.process.pid}\n")

        ok, queued = True, {}
        for n, step in enumerate(scenario(), 1):
            status, body, ms = _post(web.url, step)
            outcome = _outcome(step.path, status, body)
            tasks = [t["task"] for t in body.get("tasks", [])]
            good = outcome == step.expect and tasks == step.tasks
            ok &= good
            print(f"{'✓' if good else '✗'} {n:2}. {step.title}")
            print(f"      → {status} {outcome} in {ms:.1f} ms", end="")
            if body.get("reason") or body.get("text"):
                print(f": {body.get('reason') or body.get('text')}", end="")
            print()
            for t in body.get("tasks", []):
                queued[t["id"]] = t
                args = ", ".join(f"{k}={v!r}" for k, v in t["kwargs"].items() if k != "delivery_id")
                print(f"      queued {t['task']}({args})")
            if not good:
                print(f"      expected {step.expect} {step.tasks or ''}")

        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not set(queued) <= set(_worker_saw(worker)):
            time.sleep(0.1)
        seen = _worker_saw(worker)
        picked = [tid for tid in queued if tid in seen]
        print(f"\nworker picked up {len(picked)} of {len(queued)} queued tasks")
        for tid, task in queued.items():
            print(f"  {'✓' if tid in seen else '✗'} {task['task']:20} {tid}")
        ok &= len(picked) == len(queued)
        print("\nThe tasks that call Databricks, GitHub, MLflow and Slack are not built yet: the worker logs them"
              f" (see {worker.log_path}).")
        print(f"\ndemo {'passed' if ok else 'FAILED'}")
        if keep:
            print(f"\n--keep: web {web.url}, logs in {workdir}. Ctrl-C stops everything.")
            signal.sigwait({signal.SIGINT, signal.SIGTERM})
        return 0 if ok else 1
    except KeyboardInterrupt:
        return 130
    finally:
        for service in reversed(services):
            service.stop()
