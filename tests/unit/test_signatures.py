"""Signature checks of all four sources: good, bad, missing, unset secret, stale timestamp."""

import json

import pytest

from core import events
from core.events import Refused

NOW = 1_800_000_000


def test_github_documentation_test_vector():
    # From GitHub's "Validating webhook deliveries" page.
    assert events.github_signature("It's a Secret to Everybody", b"Hello, World!") == (
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    )


def _github_headers(body: bytes, secret="s3cret") -> dict:
    return {
        "X-GitHub-Event": "ping",
        "X-GitHub-Delivery": "d-1",
        "X-Hub-Signature-256": events.github_signature(secret, body),
    }


def test_github_good_signature_gives_event():
    body = b'{"zen": "x", "hook_id": 1}'
    event = events.github_event(_github_headers(body), body, "s3cret")
    assert (event.source, event.name, event.delivery_id) == ("github", "ping", "d-1")


@pytest.mark.parametrize(
    "change, status, reason",
    [
        (lambda h, b: ({**h, "X-Hub-Signature-256": "sha256=" + "0" * 64}, b), 401, "does not match"),
        (
            lambda h, b: ({k: v for k, v in h.items() if k != "X-Hub-Signature-256"}, b),
            401,
            "missing X-Hub-Signature-256",
        ),
        (lambda h, b: (h, b + b" "), 401, "does not match"),  # one changed byte of the body
        (lambda h, b: ({k: v for k, v in h.items() if k != "X-GitHub-Event"}, b), 400, "missing header X-GitHub-Event"),
    ],
)
def test_github_refusals(change, status, reason):
    body = b'{"zen": "x"}'
    headers, body = change(_github_headers(body), body)
    with pytest.raises(Refused) as exc:
        events.github_event(headers, body, "s3cret")
    assert exc.value.status == status and reason in exc.value.reason


@pytest.mark.parametrize(
    "verify",
    [
        events.github_event,
        events.mlflow_event,
        events.databricks_event,
        events.slack_command_event,
        events.slack_interaction_event,
    ],
)
def test_unset_secret_refuses_even_a_signed_delivery(verify):
    with pytest.raises(Refused) as exc:
        verify({"X-Hub-Signature-256": "sha256=x"}, b"{}", None, NOW)
    assert exc.value.status == 401 and "no secret is configured" in exc.value.reason


def test_github_signed_but_not_json_is_400():
    body = b"not json"
    with pytest.raises(Refused) as exc:
        events.github_event(_github_headers(body), body, "s3cret")
    assert exc.value.status == 400


def _mlflow(body: bytes, ts: int, secret="m", delivery="d-1") -> dict:
    return {
        "X-MLflow-Delivery-Id": delivery,
        "X-MLflow-Timestamp": str(ts),
        "X-MLflow-Signature": events.mlflow_signature(secret, delivery, str(ts), body),
    }


MLFLOW_BODY = json.dumps(
    {"entity": "model_version", "action": "created", "timestamp": "t", "data": {"name": "m", "version": "1"}}
).encode()


def test_mlflow_good_signature_and_fresh_timestamp():
    event = events.mlflow_event(_mlflow(MLFLOW_BODY, NOW), MLFLOW_BODY, "m", NOW + 10)
    assert (event.source, event.name, event.action, event.data["name"]) == ("mlflow", "model_version", "created", "m")


@pytest.mark.parametrize("skew", [301, -301, 3600])
def test_mlflow_stale_timestamp_is_refused(skew):
    with pytest.raises(Refused) as exc:
        events.mlflow_event(_mlflow(MLFLOW_BODY, NOW), MLFLOW_BODY, "m", NOW + skew)
    assert exc.value.status == 401 and "stale" in exc.value.reason


def test_mlflow_signature_covers_delivery_id_and_timestamp():
    headers = _mlflow(MLFLOW_BODY, NOW)
    headers["X-MLflow-Delivery-Id"] = "d-2"  # replaying a signature under another id
    with pytest.raises(Refused) as exc:
        events.mlflow_event(headers, MLFLOW_BODY, "m", NOW)
    assert exc.value.status == 401


def test_databricks_signature_and_body_hash_dedupe_key():
    body = b'{"event": "MODEL_VERSION_CREATED", "model_name": "m", "version": "1", "event_timestamp": %d}' % (
        NOW * 1000
    )
    headers = {"X-Databricks-Signature": events.databricks_signature("d", body)}
    first = events.databricks_event(headers, body, "d", NOW)
    again = events.databricks_event(headers, body, "d", NOW)
    assert first.action == "MODEL_VERSION_CREATED" and first.delivery_id == again.delivery_id
    with pytest.raises(Refused):
        events.databricks_event({"X-Databricks-Signature": "00"}, body, "d", NOW)


def test_slack_command_signature_window_and_form():
    body = b"command=%2Fmlops&text=approve+churn-model+7&user_id=U1&trigger_id=t-1&response_url=http%3A%2F%2Fx"
    headers = {"X-Slack-Request-Timestamp": str(NOW), "X-Slack-Signature": events.slack_signature("s", str(NOW), body)}
    event = events.slack_command_event(headers, body, "s", NOW)
    assert (event.name, event.action, event.data["text"], event.delivery_id) == (
        "command",
        "mlops",
        "approve churn-model 7",
        "t-1",
    )
    with pytest.raises(Refused) as exc:
        events.slack_command_event(headers, body, "s", NOW + 301)
    assert exc.value.status == 401
    with pytest.raises(Refused):
        events.slack_command_event({**headers, "X-Slack-Signature": "v0=00"}, body, "s", NOW)


def test_slack_interaction_needs_payload():
    body = b"nothing=here"
    headers = {"X-Slack-Request-Timestamp": str(NOW), "X-Slack-Signature": events.slack_signature("s", str(NOW), body)}
    with pytest.raises(Refused) as exc:
        events.slack_interaction_event(headers, body, "s", NOW)
    assert exc.value.status == 400
