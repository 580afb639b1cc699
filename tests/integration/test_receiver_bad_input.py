"""Bad input at the receiver gets 4xx, always: one test per bug the receiver fuzz found.

Every delivery is correctly signed (the signer fixture), so it reaches parsing and the handlers.
"""

import io
import json
import time
from pathlib import Path

import pytest

from bot.web import create_app
from core import events
from core.events import Event
from core.routing import Router
from tests.conftest import SECRETS, fixtures_dir, payload

pytestmark = pytest.mark.usefixtures("secrets")
DEEP = b"[" * 100_000 + b"]" * 100_000


@pytest.fixture
def client(settings, redis_client):
    return create_app(settings, redis_client=redis_client).test_client()


def _github(body: bytes, event="push") -> dict:
    return {
        "Content-Type": "application/json",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": "d-bad-1",
        "X-Hub-Signature-256": events.github_signature(SECRETS["GITHUB_WEBHOOK_SECRET"], body),
    }


def _databricks(body: bytes) -> dict:
    signature = events.databricks_signature(SECRETS["DATABRICKS_WEBHOOK_SECRET"], body)
    return {"Content-Type": "application/json", "X-Databricks-Signature": signature}


def test_deeply_nested_json_is_400_not_a_recursion_error(client, signer):
    r = client.post("/webhooks/github", data=DEEP, headers=_github(DEEP))
    assert r.status_code == 400 and r.json["reason"] == "body nests too deeply"
    r = client.post("/webhooks/databricks", data=DEEP, headers=_databricks(DEEP))
    assert r.status_code == 400
    body, headers = signer.slack(b"payload=" + b"%5B" * 100_000)
    assert client.post("/webhooks/slack/interactions", data=body, headers=headers).status_code == 400


def test_chunked_body_over_the_limit_is_413_not_401(client, settings):
    """No Content-Length: Werkzeug cuts the stream at MAX_CONTENT_LENGTH silently, so the signature
    failed on the truncated bytes (401). gunicorn sets `wsgi.input_terminated` for chunked bodies."""
    body = b"x" * (settings.bot.max_body_bytes + 10)
    headers = _github(body) | {"Transfer-Encoding": "chunked"}
    environ = {"wsgi.input_terminated": True}
    r = client.post("/webhooks/github", input_stream=io.BytesIO(body), headers=headers, environ_overrides=environ)
    assert r.status_code == 413 and r.json["reason"] == "body too large"


def test_chunked_body_at_the_limit_is_still_read(client, settings):
    doc = payload("push_new_branch")
    doc["padding"] = ""
    doc["padding"] = "x" * (settings.bot.max_body_bytes - len(json.dumps(doc).encode()))
    body = json.dumps(doc).encode()
    assert len(body) == settings.bot.max_body_bytes
    headers = _github(body) | {"Transfer-Encoding": "chunked"}
    environ = {"wsgi.input_terminated": True}
    r = client.post("/webhooks/github", input_stream=io.BytesIO(body), headers=headers, environ_overrides=environ)
    assert r.status_code == 202, r.json


@pytest.mark.parametrize("digits", [20, 400])
def test_a_timestamp_header_of_many_digits_is_401_not_an_overflow(client, signer, digits):
    body, headers = signer.mlflow(payload("mlflow_model_version_created"), timestamp=int("9" * digits))
    r = client.post("/webhooks/mlflow", data=body, headers=headers)
    assert r.status_code == 401 and "stale" in r.json["reason"]
    body, headers = signer.slack(b"command=%2Fmlops&text=help&user_id=U1", timestamp=int("9" * digits))
    assert client.post("/webhooks/slack/commands", data=body, headers=headers).status_code == 401


@pytest.mark.parametrize(
    "interaction",
    [
        {"type": "block_actions", "actions": {"0": {"action_id": "approve"}}},  # KeyError: 0
        {"type": "block_actions", "actions": 5},  # TypeError
        {"type": "block_actions", "user": "U1", "actions": [{"action_id": "approve"}]},  # AttributeError
        {"type": "block_actions", "actions": [{"action_id": "approve"}], "container": True},  # in the handler
        {"type": "block_actions", "actions": [{"action_id": ["approve"]}]},  # unhashable in the handler
    ],
)
def test_slack_interaction_of_the_wrong_shape_is_4xx(client, signer, interaction):
    from urllib.parse import quote

    body, headers = signer.slack(("payload=" + quote(json.dumps(interaction))).encode())
    r = client.post("/webhooks/slack/interactions", data=body, headers=headers)
    assert r.status_code in (200, 400), r.get_data()  # Slack answers 200 for queued or ignored


@pytest.mark.parametrize(
    "event, doc",
    [
        ("push", payload("push_new_branch") | {"ref": 5}),
        ("push", payload("push_new_branch") | {"repository": "acme/churn-model"}),
        ("issue_comment", payload("issue_comment_pr") | {"comment": {"body": 5, "user": "alice"}}),
        ("check_run", {**payload("check_run_rerequested"), "check_run": {"pull_requests": [5]}}),
        ("pull_request", payload("pull_request_opened") | {"action": {"opened": True}}),
    ],
)
def test_github_fields_of_the_wrong_type_are_not_a_500(client, event, doc):
    body = json.dumps(doc).encode()
    r = client.post("/webhooks/github", data=body, headers=_github(body, event))
    assert r.status_code in (200, 202, 400) and r.json["status"] != "malformed", r.json


def test_registry_fields_of_the_wrong_type_are_not_a_500(client, signer):
    # a version, as every tag event names one (issue #18: a tag event without one is ignored at the edge)
    tag = {
        "entity": "model_version_tag",
        "action": "set",
        "data": {"name": "churn-model", "version": "3", "key": ["k"]},
    }
    body, headers = signer.mlflow(tag)
    assert client.post("/webhooks/mlflow", data=body, headers=headers).status_code == 202
    doc = {"event": "MODEL_VERSION_TAG_SET", "model_name": "churn-model", "version": "3", "tags": 5}
    body = json.dumps(doc | {"event_timestamp": int(time.time() * 1000)}).encode()
    assert client.post("/webhooks/databricks", data=body, headers=_databricks(body)).status_code == 202


# --- Databricks registry time window ---------------------------------------------------------
# Registry webhooks sign no timestamp header (PROTOCOLS.md): the body's `event_timestamp` (ms) is
# all there is, so a captured delivery could otherwise be replayed for ever.


def _registry_fixture() -> bytes:
    path = fixtures_dir() / "databricks" / "registry_webhook__MODEL_VERSION_TAG_SET.payload.json"
    doc = json.loads(Path(path).read_text()) | {"model_name": "churn-model"}
    return json.dumps(doc).encode()


def _app_at(settings, redis_client, now: float):
    return create_app(settings, redis_client=redis_client, clock=lambda: now).test_client()


def test_a_databricks_registry_event_from_2020_is_refused(settings, redis_client):
    body = _registry_fixture()
    sent = json.loads(body)["event_timestamp"] / 1000  # 2020-05-19
    for now in (time.time(), sent + events.REPLAY_WINDOW_SECONDS + 1, sent - events.REPLAY_WINDOW_SECONDS - 1):
        r = _app_at(settings, redis_client, now).post("/webhooks/databricks", data=body, headers=_databricks(body))
        assert r.status_code == 401 and "stale or replayed" in r.json["reason"]


def test_a_fresh_databricks_registry_event_is_accepted(settings, redis_client):
    body = _registry_fixture()
    sent = json.loads(body)["event_timestamp"] / 1000
    client = _app_at(settings, redis_client, sent + 5)  # delivered five seconds after the event
    r = client.post("/webhooks/databricks", data=body, headers=_databricks(body))
    assert r.status_code == 202 and r.json["tasks"][0]["task"] == "handle_model_event"


@pytest.mark.parametrize("stamp", ["1589859029343", 1589859029343.5, True, [1]])
def test_a_databricks_event_timestamp_that_is_not_whole_ms_is_400(client, stamp):
    body = json.dumps(
        {"event": "MODEL_VERSION_CREATED", "model_name": "churn-model", "event_timestamp": stamp}
    ).encode()
    r = client.post("/webhooks/databricks", data=body, headers=_databricks(body))
    assert r.status_code == 400 and "event_timestamp" in r.json["reason"]


# --- the last line -----------------------------------------------------------------------------


def test_a_handler_that_raises_is_400_malformed_and_logged(settings, redis_client, caplog):
    """The receiver's last line: never a 500 to the sender, the traceback in `webhook.malformed`.
    tests/reliability asserts it never fires for any fuzzed shape: a handler bug is fixed, not hidden."""
    broken = Router()

    @broken.register("github", "push")
    def on_push(event: Event, settings) -> list:
        raise KeyError("ref")

    client = create_app(settings, redis_client=redis_client, router=broken).test_client()
    body = json.dumps(payload("push_new_branch")).encode()
    r = client.post("/webhooks/github", data=body, headers=_github(body))
    assert r.status_code == 400 and r.json["status"] == "malformed"
    [record] = [rec for rec in caplog.records if rec.getMessage() == "webhook.malformed"]
    assert record.exc_info and record.exc_info[0] is KeyError


def test_a_databricks_body_without_event_timestamp_is_400(client):
    """Every registry-webhook example in Databricks' documentation (../shared/fixtures/databricks) carries
    `event_timestamp`; without it the 300 s replay window cannot be applied, so the body is refused."""
    body = json.dumps({"event": "MODEL_VERSION_CREATED", "model_name": "churn-model", "version": "3"}).encode()
    r = client.post("/webhooks/databricks", data=body, headers=_databricks(body))
    assert r.status_code == 400 and "event_timestamp" in r.json["reason"]
