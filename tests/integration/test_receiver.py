"""The receiver against a real private Redis: every answer the issue lists."""

import json
import time

import pytest

from bot.web import create_app
from core.queue import DEDUPE_PREFIX, DEFAULT_QUEUE, RECENT_KEY
from tests.conftest import payload

pytestmark = pytest.mark.usefixtures("secrets")


@pytest.fixture
def client(settings, redis_client):
    return create_app(settings, redis_client=redis_client).test_client()


def queued_tasks(redis_client) -> list[dict]:
    """The Celery messages waiting in the queue, oldest first, as task name + kwargs."""
    import base64

    out = []
    for raw in reversed(redis_client.lrange(DEFAULT_QUEUE, 0, -1)):
        msg = json.loads(raw)
        _, kwargs, _ = json.loads(base64.b64decode(msg["body"]))
        out.append({"task": msg["headers"]["task"], "kwargs": kwargs})
    return out


def test_signed_pr_comment_is_queued_202(client, signer, redis_client):
    body, headers = signer.github("issue_comment", payload("issue_comment_pr"), delivery="d-100")
    r = client.post("/webhooks/github", data=body, headers=headers)
    assert r.status_code == 202 and r.json["status"] == "queued"
    assert [t["task"] for t in queued_tasks(redis_client)] == ["run_command"]
    assert queued_tasks(redis_client)[0]["kwargs"]["command"]["dataset"] == "toy"


def test_the_202_names_each_queued_task_by_name_and_id_and_never_echoes_its_arguments(client, signer, redis_client):
    """GitHub keeps only a truncated answer in its delivery log: the delivery id and the tasks' names and ids are what a
    person reading it needs. A 3 MB comment used to come back whole inside the answer (twice its size: the refused
    line and the error quoting it); now the answer stays small and the task still carries the whole line."""
    doc = payload("issue_comment_pr")
    doc["comment"]["body"] = "/train " + "x" * 3_000_000  # refused (not a dataset name): the refusal quotes the line
    body, headers = signer.github("issue_comment", doc, delivery="d-big")
    r = client.post("/webhooks/github", data=body, headers=headers)
    assert r.status_code == 202 and len(r.get_data()) < 300, r.get_data()[:300]
    messages = [json.loads(raw) for raw in reversed(redis_client.lrange(DEFAULT_QUEUE, 0, -1))]
    assert r.json == {
        "status": "queued",
        "delivery_id": "d-big",
        "tasks": [{"task": m["headers"]["task"], "id": m["headers"]["id"]} for m in messages],
    }
    assert [t["task"] for t in r.json["tasks"]] == ["refuse_command"]
    assert len(queued_tasks(redis_client)[0]["kwargs"]["line"]) == len("/train ") + 3_000_000


def test_a_webhook_path_answers_405_to_anything_but_post(client):
    r = client.get("/webhooks/github")
    assert r.status_code == 405 and r.headers["Allow"] == "POST" and r.json["status"] == "refused"


def test_a_delivery_is_queued_after_redis_forgot_the_receiver_s_script(client, signer, redis_client):
    """A restarted Redis has no scripts: the receiver loads its dedupe + enqueue script again (NOSCRIPT)."""
    body, headers = signer.github("push", payload("push_new_branch"), delivery="d-script-1")
    assert client.post("/webhooks/github", data=body, headers=headers).status_code == 202
    redis_client.script_flush()
    before = redis_client.llen(DEFAULT_QUEUE)
    doc = payload("push_new_branch") | {"after": "d" * 40}
    body, headers = signer.github("push", doc, delivery="d-script-2")
    assert client.post("/webhooks/github", data=body, headers=headers).status_code == 202
    assert redis_client.llen(DEFAULT_QUEUE) > before and redis_client.exists(DEDUPE_PREFIX + "github:d-script-2")


def test_a_connection_redis_dropped_is_opened_again(client, signer, redis_client, redis_server):
    """Redis closed the receiver's pooled connection (a restart, a timeout): the next delivery connects afresh."""
    import redis

    body, headers = signer.github("push", payload("push_new_branch"), delivery="d-conn-1")
    assert client.post("/webhooks/github", data=body, headers=headers).status_code == 202
    admin = redis.Redis.from_url(redis_server.url)
    assert admin.client_kill_filter(_type="normal", skipme=True) >= 1  # the receiver's connection among them
    admin.close()
    before = redis_client.llen(DEFAULT_QUEUE)
    doc = payload("push_new_branch") | {"after": "e" * 40}
    body, headers = signer.github("push", doc, delivery="d-conn-2")
    assert client.post("/webhooks/github", data=body, headers=headers).status_code == 202
    assert redis_client.llen(DEFAULT_QUEUE) > before and redis_client.exists(DEDUPE_PREFIX + "github:d-conn-2")


def test_same_delivery_again_is_a_duplicate_and_queues_nothing(client, signer, redis_client):
    body, headers = signer.github("push", payload("push_new_branch"), delivery="d-200")
    assert client.post("/webhooks/github", data=body, headers=headers).status_code == 202
    again = client.post("/webhooks/github", data=body, headers=headers)
    assert again.status_code == 200 and again.json == {"status": "duplicate", "delivery_id": "d-200"}
    assert len(queued_tasks(redis_client)) == 1


def test_bad_signature_is_401_and_queues_nothing(client, signer, redis_client):
    body, headers = signer.github("push", payload("push_new_branch"))
    headers["X-Hub-Signature-256"] = "sha256=" + "1" * 64
    r = client.post("/webhooks/github", data=body, headers=headers)
    assert r.status_code == 401 and "does not match" in r.json["reason"]
    assert queued_tasks(redis_client) == []


def test_unset_secret_is_401(client, signer, monkeypatch, settings, redis_client):
    monkeypatch.delenv("GITHUB_WEBHOOK_SECRET")
    unsigned = create_app(settings, redis_client=redis_client).test_client()
    body, headers = signer.github("push", payload("push_new_branch"))
    r = unsigned.post("/webhooks/github", data=body, headers=headers)
    assert r.status_code == 401 and "no secret is configured" in r.json["reason"]


def test_stale_mlflow_timestamp_is_401(client, signer):
    body, headers = signer.mlflow(payload("mlflow_model_version_created"), timestamp=1_000_000_000)
    r = client.post("/webhooks/mlflow", data=body, headers=headers)
    assert r.status_code == 401 and "stale" in r.json["reason"]


def test_stale_slack_timestamp_is_401(client, signer):
    body, headers = signer.slack(b"command=%2Fmlops&text=help&user_id=U1", timestamp=1_000_000_000)
    assert client.post("/webhooks/slack/commands", data=body, headers=headers).status_code == 401


def test_oversize_body_is_413(client, signer, settings):
    big = {"padding": "x" * (settings.bot.max_body_bytes + 10)}
    body, headers = signer.github("push", big)
    r = client.post("/webhooks/github", data=body, headers=headers)
    assert r.status_code == 413 and r.json["reason"] == "body too large"


def test_malformed_body_and_missing_headers_are_400(client, signer):
    body, headers = signer.github("push", b"{not json")
    assert client.post("/webhooks/github", data=body, headers=headers).status_code == 400
    body, headers = signer.github("push", payload("push_new_branch"))
    del headers["X-GitHub-Delivery"]
    r = client.post("/webhooks/github", data=body, headers=headers)
    assert r.status_code == 400 and "X-GitHub-Delivery" in r.json["reason"]


def test_ignored_event_is_200_with_reason(client, signer, redis_client):
    body, headers = signer.github("push", payload("push_tag"))
    r = client.post("/webhooks/github", data=body, headers=headers)
    assert (
        r.status_code == 200 and r.json["status"] == "ignored" and r.json["reason"] == "refs/tags/v1.0 is not a branch"
    )
    assert queued_tasks(redis_client) == []
    recent = [json.loads(x) for x in redis_client.lrange(RECENT_KEY, 0, -1)]
    assert recent[0]["outcome"] == "ignored"


def test_redis_down_is_503_so_the_sender_retries(settings, signer, monkeypatch):
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")  # the client the web process builds itself
    client = create_app(settings).test_client()
    body, headers = signer.github("push", payload("push_new_branch"))
    started = time.monotonic()
    r = client.post("/webhooks/github", data=body, headers=headers)
    assert r.status_code == 503 and r.json["status"] == "unavailable"
    assert time.monotonic() - started < 3  # well inside GitHub's 10 s
    assert client.get("/readyz").status_code == 503
    assert client.get("/healthz").status_code == 200


def test_an_evicting_redis_is_not_ready(settings, redis_client):
    """With maxmemory-policy allkeys-lru, Redis may drop the queue, the audit trail or the bot's records."""
    redis_client.config_set("maxmemory-policy", "allkeys-lru")
    try:
        r = create_app(settings, redis_client=redis_client).test_client().get("/readyz")
    finally:
        redis_client.config_set("maxmemory-policy", "noeviction")
    assert r.status_code == 503 and "maxmemory-policy=allkeys-lru" in r.json["redis"]


def test_health_ready_and_metrics(client, signer):
    assert client.get("/healthz").json == {"status": "ok"}
    assert client.get("/readyz").json == {"status": "ready", "redis_problems": []}  # tests' Redis: AOF, noeviction
    body, headers = signer.github("push", payload("push_new_branch"))
    client.post("/webhooks/github", data=body, headers=headers)
    text = client.get("/metrics").get_data(as_text=True)
    assert 'mlops_bot_webhooks_total{outcome="queued",source="github"} 1.0' in text


def test_mlflow_delivery_is_queued_and_replay_is_duplicate(client, signer, redis_client):
    body, headers = signer.mlflow(payload("mlflow_model_version_created"), delivery="m-1")
    assert client.post("/webhooks/mlflow", data=body, headers=headers).status_code == 202
    assert client.post("/webhooks/mlflow", data=body, headers=headers).json["status"] == "duplicate"
    assert [t["task"] for t in queued_tasks(redis_client)] == ["handle_model_event"]


def test_databricks_delivery_dedupes_on_body(client, signer, redis_client):
    fresh = payload("databricks_model_version_created") | {"event_timestamp": int(time.time() * 1000)}  # 300 s window
    body, headers = signer.databricks(fresh)
    assert client.post("/webhooks/databricks", data=body, headers=headers).status_code == 202
    assert client.post("/webhooks/databricks", data=body, headers=headers).json["status"] == "duplicate"


def test_slack_command_and_button_answer_200_for_slack(client, signer, redis_client):
    body, headers = signer.slack(b"command=%2Fmlops&text=approve+churn-model+3&user_id=U0BOB&trigger_id=t-9")
    r = client.post("/webhooks/slack/commands", data=body, headers=headers)
    assert r.status_code == 200 and r.json["response_type"] == "ephemeral"
    from urllib.parse import quote

    body, headers = signer.slack(("payload=" + quote(json.dumps(payload("slack_button")))).encode())
    assert client.post("/webhooks/slack/interactions", data=body, headers=headers).status_code == 200
    assert [t["task"] for t in queued_tasks(redis_client)] == ["run_slack_command", "handle_slack_button"]
