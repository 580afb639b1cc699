"""Real payloads from GitHub, MLflow, Databricks and Slack (../shared/fixtures) through the real parsers.

Reads them from MLOPS_BOT_FIXTURES (default ../shared/fixtures); skipped, saying so, where absent.
"""

import json
from pathlib import Path
from urllib.parse import quote

import pytest

from core import events
from core.events import Event
from core.routing import Ignored
from handlers import router
from tests.conftest import fixtures_dir

FIXTURES = fixtures_dir()
pytestmark = pytest.mark.skipif(
    not FIXTURES.is_dir(), reason=f"no fixtures folder at {FIXTURES} (set MLOPS_BOT_FIXTURES)"
)


def github_files() -> list[Path]:
    return sorted((FIXTURES / "github").glob("*.payload.json")) if FIXTURES.is_dir() else []


@pytest.mark.parametrize("path", github_files(), ids=lambda p: p.name)
def test_every_github_fixture_verifies_normalises_and_routes(path, settings):
    body = path.read_bytes()
    name = path.name.split("__")[0]
    headers = {
        "X-GitHub-Event": name,
        "X-GitHub-Delivery": "fixture",
        "X-Hub-Signature-256": events.github_signature("s", body),
    }
    event = events.github_event(headers, body, "s")
    outcome = router.dispatch(event, settings)
    # None of these repositories is configured: each is answered with a reason, not a crash.
    assert isinstance(outcome, Ignored) and outcome.reason


def test_real_pr_comment_parses_as_a_pr_comment(settings):
    data = json.loads(
        (FIXTURES / "github" / "issue_comment__created.on-pull-request.elastic-kibana.payload.json").read_text()
    )
    data["repository"]["full_name"] = "acme/churn-model"
    data["comment"]["body"] = "/train toy"
    [action] = router.dispatch(Event("github", "issue_comment", "created", "d", data), settings)
    assert action.kwargs["pr"] == data["issue"]["number"] and action.kwargs["command"]["name"] == "train"


def test_real_branch_push_and_delete(settings):
    new = json.loads((FIXTURES / "github" / "push__with-new-branch.payload.json").read_text())
    new["repository"]["full_name"] = "acme/churn-model"
    [action] = router.dispatch(Event("github", "push", "", "d", new), settings)
    assert action.task == "sync_branch_jobs" and action.kwargs["sha"] == new["after"]
    gone = json.loads(
        (FIXTURES / "github" / "delete__branch.DERIVED-from-octokit-delete-with-installation.payload.json").read_text()
    )
    gone["repository"]["full_name"] = "acme/churn-model"
    [action] = router.dispatch(Event("github", "delete", "", "d", gone), settings)
    assert action.task == "remove_branch_jobs" and action.kwargs["branch"] == gone["ref"]


def mlflow_deliveries() -> list[Path]:
    return sorted((FIXTURES / "mlflow").glob("*.json")) if FIXTURES.is_dir() else []


@pytest.mark.parametrize("path", mlflow_deliveries(), ids=lambda p: p.name)
def test_real_mlflow_deliveries_verify_with_their_secret(path, settings):
    d = json.loads(path.read_text())
    body = d["raw_body"].encode()
    # Captured on 2026-11-26: inject the clock at the delivery's own timestamp.
    now = int(d["headers"]["X-Mlflow-Timestamp"])
    event = events.mlflow_event(_ci(d["headers"]), body, d["secret"], now)
    assert event.delivery_id == d["headers"]["X-Mlflow-Delivery-Id"]
    outcome = router.dispatch(event, settings)
    assert isinstance(outcome, (Ignored, list))
    with pytest.raises(events.Refused):
        events.mlflow_event(_ci(d["headers"]), body, "wrong secret", now)


class _ci(dict):
    """Headers looked up case-insensitively, as Flask's are (MLflow sends X-Mlflow-…)."""

    def get(self, key, default=None):
        return next((v for k, v in self.items() if k.lower() == key.lower()), default)


def test_real_mlflow_version_created_for_a_configured_model(settings):
    d = json.loads((FIXTURES / "mlflow" / "model_version.created.json").read_text())
    body = json.loads(d["raw_body"])
    body["data"]["name"] = "churn-model"
    [action] = router.dispatch(Event("mlflow", body["entity"], body["action"], "d", body["data"]), settings)
    assert action.kwargs["model_event"]["kind"] == "version_created"


@pytest.mark.parametrize("name", ["MODEL_VERSION_TAG_SET", "COMMENT_CREATED", "MODEL_VERSION_TRANSITIONED_STAGE"])
def test_real_databricks_registry_payloads(name, settings):
    body = (FIXTURES / "databricks" / f"registry_webhook__{name}.payload.json").read_bytes()
    sent = json.loads(body)["event_timestamp"] / 1000  # the fixture is from 2020: deliver it when it was sent
    event = events.databricks_event({"X-Databricks-Signature": events.databricks_signature("d", body)}, body, "d", sent)
    data = {**event.data, "model_name": "churn-model"}
    [action] = router.dispatch(Event("databricks", "registry", event.action, event.delivery_id, data), settings)
    assert action.kwargs["model_event"]["registry"] == "databricks"


def test_real_slack_command_and_button():
    raw = (FIXTURES / "slack" / "slash_command.bolt-python-tests.form-urlencoded.txt").read_bytes().strip()
    headers = {"X-Slack-Request-Timestamp": "1000", "X-Slack-Signature": events.slack_signature("s", "1000", raw)}
    event = events.slack_command_event(headers, raw, "s", 1000)
    assert (event.action, event.data["text"], event.delivery_id) == ("hello-world", "Hi", "111.111.xxx")
    button = (FIXTURES / "slack" / "block_actions.bolt-python-tests.payload.json").read_text()
    raw = ("payload=" + quote(button)).encode()
    headers = {"X-Slack-Request-Timestamp": "1000", "X-Slack-Signature": events.slack_signature("s", "1000", raw)}
    event = events.slack_interaction_event(headers, raw, "s", 1000)
    assert (event.name, event.action) == ("block_actions", "a")
